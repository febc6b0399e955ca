"""Squared error on the probabilities is the Brier score, and the Brier score is strictly proper: checked.

Twice the article's eq. (31) (``losslab.core.mse``) is the multiclass Brier score mean_n sum_k (p_nk - y_nk)^2
(Brier 1950). A scoring rule S is strictly proper (Gneiting & Raftery 2007) when the expected score under
y ~ q, S(p, q) = sum_j q_j S(p, e_j), is minimised only at p = q. For the Brier score the derivation is one line,
S(p, q) = ||p - q||^2 + 1 - ||q||^2, so S(p, q) - S(q, q) = ||p - q||^2 > 0 for p != q; for the log score the
excess is KL(q || p). ``brier_checks`` computes both sides numerically; the report's Brier finding reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.stats
import torch

from losslab.core import mse as mse_loss


def expected_brier(ps: np.ndarray, q: np.ndarray) -> np.ndarray:
    """S(p, q) = sum_j q_j ||p - e_j||^2 for each row p of ``ps``: the Brier score expected when y ~ q."""
    eye = np.eye(len(q))
    return (q * ((ps[:, None, :] - eye[None]) ** 2).sum(-1)).sum(-1)


def expected_log_score(ps: np.ndarray, q: np.ndarray) -> np.ndarray:
    """sum_j q_j (-log p_j) for each row p of ``ps``: the log score expected when y ~ q."""
    return -(q * np.log(ps)).sum(-1)


def brier_checks(num_classes: list[int], trainer_metric: Callable | None = None, seed: int = 0) -> dict:
    """The largest errors of each check, for each K in ``num_classes``:

    - ``identity_error``: |2 x eq. (31) - Brier| / Brier over 256 seeded random logits (float64), and the same
      for ``trainer_metric(logits [1, N, K], labels) -> [1]`` (the trainer's Brier metric) when given;
    - ``brier_propriety_error`` / ``log_propriety_error``: the largest |S(p, q) - S(q, q) - ||p - q||^2| and
      |log excess - KL(q || p)| over 200 random q on the simplex with 50 random p each;
    - ``min_excess_brier`` / ``min_excess_log``: the smallest excess where ||p - q||^2 > 1e-9 (must be > 0).
    """
    rng = np.random.default_rng(seed)
    identity_error, brier_error, log_error, min_excess_brier, min_excess_log = 0.0, 0.0, 0.0, math.inf, math.inf
    for k in num_classes:
        z = torch.from_numpy(rng.normal(0, 3, (256, k)))
        y = torch.from_numpy(rng.integers(0, k, 256))
        p = np.exp(z.numpy() - z.numpy().max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        direct = float(((p - np.eye(k)[y.numpy()]) ** 2).sum(-1).mean())  # the Brier score, written out
        twice_eq31 = 2 * float(mse_loss(z, y))
        identity_error = max(identity_error, abs(twice_eq31 - direct) / direct)
        if trainer_metric is not None:
            identity_error = max(identity_error, abs(float(trainer_metric(z[None], y)[0]) - direct) / direct)
        for _ in range(200):
            q = rng.dirichlet(np.ones(k))
            ps = rng.dirichlet(np.ones(k), size=50)
            distance = ((ps - q) ** 2).sum(-1)
            apart = distance > 1e-9  # p distinguishable from q at float64 precision: the excess must be > 0
            excess = expected_brier(ps, q) - expected_brier(q[None], q)
            brier_error = max(brier_error, float(np.abs(excess - distance).max()))
            min_excess_brier = min(min_excess_brier, float(excess[apart].min(initial=math.inf)))
            log_excess = expected_log_score(ps, q) - expected_log_score(q[None], q)
            log_error = max(log_error, float(np.abs(log_excess - scipy.stats.entropy(q, ps, axis=-1)).max()))
            min_excess_log = min(min_excess_log, float(log_excess[apart].min(initial=math.inf)))
    return {
        "identity_error": identity_error,
        "brier_propriety_error": brier_error,
        "log_propriety_error": log_error,
        "min_excess_brier": min_excess_brier,
        "min_excess_log": min_excess_log,
        "num_classes": list(num_classes),
    }
