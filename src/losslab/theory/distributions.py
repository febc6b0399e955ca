"""The likelihoods of the article's probability view and their maximum-likelihood estimates.

Bernoulli (eq. 5), binomial (eq. 6-7), multinomial (eq. 8-10, 19-24) and Gaussian (eq. 26-30)
log-likelihoods, evaluated with ``torch.distributions`` in float64 (no hand-written pmfs), and
their closed-form maximisers. Inputs are validated: counts must be non-negative integers,
probabilities must lie in [0, 1] and sum to 1 within ``PROBABILITY_TOLERANCE``, sigma must be > 0.
"""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Binomial, Multinomial, Normal

from losslab.core.validation import check_tensor, sums_off_one
from losslab.params import is_number

#: How far probabilities may sum from 1 (or leave [0, 1]) before they are rejected.
PROBABILITY_TOLERANCE = 1e-9


def _as_float64(value, name: str) -> torch.Tensor:
    if is_number(value):
        # float64 straight away: torch.tensor(0.3) would round p through float32 first.
        value = torch.tensor(value, dtype=torch.float64)
    return check_tensor(value, name).to(torch.float64)


def check_counts(counts, name: str = "counts") -> torch.Tensor:
    """Counts must be finite, non-negative whole numbers; returned as float64."""
    counts = _as_float64(counts, name)
    if not bool(torch.isfinite(counts).all()):
        raise ValueError(f"{name} must be finite, got {counts.flatten()[:4].tolist()}")
    if bool((counts < 0).any()):
        raise ValueError(
            f"{name} must be non-negative, got {counts[counts < 0].flatten()[:4].tolist()}; counts are "
            "numbers of occurrences"
        )
    if bool((counts != counts.round()).any()):
        bad = counts[counts != counts.round()].flatten()[:4].tolist()
        raise ValueError(f"{name} must be whole numbers, got {bad}; round them or pass integer counts")
    return counts


def check_probabilities(probs, name: str = "probs", *, simplex: bool = False) -> torch.Tensor:
    """Probabilities must lie in [0, 1]; with ``simplex`` the last dimension must also sum to 1."""
    probs = _as_float64(probs, name)
    outside = ~((probs >= 0) & (probs <= 1))
    if bool(outside.any()):
        raise ValueError(f"{name} must be probabilities in [0, 1], got {probs[outside].flatten()[:4].tolist()}")
    if simplex:
        if probs.dim() == 0:
            raise ValueError(f"{name} must be a probability vector of shape [K], got a scalar")
        off = sums_off_one(probs, PROBABILITY_TOLERANCE)
        if off is not None:
            raise ValueError(
                f"{name} must sum to 1 over its last dimension (tolerance {PROBABILITY_TOLERANCE:g}), got sums "
                f"{off.flatten()[:4].tolist()}; divide by the sum to normalise"
            )
    return probs


def check_sigma(sigma, name: str = "sigma") -> torch.Tensor:
    sigma = _as_float64(sigma, name)
    if not bool((torch.isfinite(sigma) & (sigma > 0)).all()):
        raise ValueError(f"{name} must be a positive finite standard deviation, got {sigma.flatten()[:4].tolist()}")
    return sigma


def _check_same_last_dim(counts: torch.Tensor, probs: torch.Tensor) -> None:
    if counts.shape[-1:] != probs.shape[-1:]:
        raise ValueError(
            f"counts and theta must have the same number of categories, got shapes {list(counts.shape)} "
            f"and {list(probs.shape)}"
        )


def bernoulli_log_likelihood(x, p) -> torch.Tensor:
    """Eq. (5): log P(x | p) = x log p + (1 - x) log(1 - p), x in {0, 1}; elementwise."""
    x = check_counts(x, "x")
    if bool((x > 1).any()):
        raise ValueError(f"x must be 0 or 1 for a Bernoulli variable, got {x[x > 1].flatten()[:4].tolist()}")
    p = check_probabilities(p, "p")
    return Bernoulli(probs=p).log_prob(x)


def binomial_log_pmf(k, n, p) -> torch.Tensor:
    """Eq. (6): log P(X = k | n, p) = log C(n, k) + k log p + (n - k) log(1 - p)."""
    k, n, p = check_counts(k, "k"), check_counts(n, "n"), check_probabilities(p, "p")
    if bool((k > n).any()):
        raise ValueError(f"k must be at most n, got k = {k.flatten()[:4].tolist()} with n = {n.flatten()[:4].tolist()}")
    return Binomial(total_count=n, probs=p).log_prob(k)


def multinomial_log_pmf(counts, theta) -> torch.Tensor:
    """Eq. (8): log P(m | theta, n) = log n! - sum log m_k! + sum m_k log theta_k, with n = sum m_k.

    ``counts`` and ``theta`` have shape [..., K]; ``theta`` sums to 1 over K (eq. 9).
    """
    counts, theta = check_counts(counts), check_probabilities(theta, "theta", simplex=True)
    _check_same_last_dim(counts, theta)
    # Multinomial needs one total_count for the whole batch; evaluate rows with different n separately.
    counts, theta = torch.broadcast_tensors(counts, theta)
    flat_counts, flat_theta = counts.reshape(-1, counts.shape[-1]), theta.reshape(-1, theta.shape[-1])
    values = [
        Multinomial(total_count=int(row.sum()), probs=th).log_prob(row) for row, th in zip(flat_counts, flat_theta)
    ]
    return torch.stack(values).reshape(counts.shape[:-1])


def gaussian_log_likelihood(x, mu, sigma) -> torch.Tensor:
    """Eq. (26)-(27): log p(x) = -(x - mu)^2 / (2 sigma^2) - 1/2 log(2 pi sigma^2), elementwise."""
    x, mu, sigma = _as_float64(x, "x"), _as_float64(mu, "mu"), check_sigma(sigma)
    return Normal(mu, sigma).log_prob(x)


# --- maximum-likelihood estimates -----------------------------------------------------------------


def bernoulli_mle(k, n) -> torch.Tensor:
    """p* = k / n, the success fraction (the maximiser of the binomial likelihood in p)."""
    k, n = check_counts(k, "k"), check_counts(n, "n")
    if bool((n == 0).any()) or bool((k > n).any()):
        raise ValueError("need n >= 1 and k <= n for the Bernoulli MLE k / n")
    return k / n


def multinomial_mle(counts) -> torch.Tensor:
    """theta*_i = m_i / n, eq. (23)-(24) solved with a Lagrange multiplier (see theory.symbolic)."""
    counts = check_counts(counts)
    total = counts.sum(-1, keepdim=True)
    if bool((total == 0).any()):
        raise ValueError("counts must contain at least one observation (sum > 0) to estimate theta")
    return counts / total


def gaussian_mle(x) -> tuple[torch.Tensor, torch.Tensor]:
    """mu* = mean(x), sigma*^2 = mean((x - mu*)^2) (the biased variance), over the last dimension."""
    x = _as_float64(x, "x")
    if x.shape[-1] < 1:
        raise ValueError("x must contain at least one observation")
    mu = x.mean(-1)
    return mu, (x - mu.unsqueeze(-1)).square().mean(-1)
