"""The gradient landscape in logit space: the optimisation view of the article, measured exactly.

Everything here runs in float64 on any loss: a name registered in ``losslab.core.LOSSES`` or a ``Loss``
object (e.g. ``losslab.core.make_loss(...)``, not registered). Losses without a closed-form gradient are
differentiated by autograd through ``Loss.logit_gradient_fn``.


- ``binary_gradient``: dL/dz against the logit z of a one-logit (sigmoid) model, for y = 1 or 0.
- ``margin_logits`` / ``gradient_norm_vs_margin``: K-class logits along the true-class margin
  m = z_true - max_other, and the norm of the logit gradient there.
- ``dead_zone``: the wrongly classified margins whose gradient is below epsilon, as numbers.
- ``hessian_eigenvalues`` / ``curvature_vs_margin``: the Hessian in logit space, where cross-entropy
  is convex and softmax-MSE is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq

from losslab.core import DEAD_EPSILON, get_loss, two_class_logits
from losslab.i18n import Message

DTYPE = torch.float64


def _as_grid(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=DTYPE)


def binary_gradient(loss_name, logits, label: int, **params) -> np.ndarray:
    """dL/dz for a single-logit model, p = sigmoid(z), at each z in ``logits``; ``label`` is 0 or 1.

    Losses with a binary form (``mse``: 1/2 (p - y)^2, ``binary_cross_entropy``) use it; any other
    loss is evaluated on the two-class logits [0, z] (softmax([0, z]) = [1 - p, p]), whose second
    column is dL/dz. For ``cross_entropy`` that equals binary cross-entropy exactly.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1 for a binary model, got {label!r}")
    loss = get_loss(loss_name)
    z = _as_grid(logits)
    y = torch.full(z.shape, label, dtype=torch.long)
    if loss.accepts_binary:
        return loss.gradient(z, y, reduction="none", **params).numpy()
    return loss.gradient(two_class_logits(z), y, reduction="none", **params)[:, 1].numpy()


def binary_loss(loss_name, logits, label: int, **params) -> np.ndarray:
    """L(z) for a single-logit model, matching ``binary_gradient``."""
    loss = get_loss(loss_name)
    z = _as_grid(logits)
    y = torch.full(z.shape, label, dtype=torch.long)
    if loss.accepts_binary:
        return loss(z, y, reduction="none", **params).numpy()
    return loss(two_class_logits(z), y, reduction="none", **params).numpy()


def margin_logits(margins, num_classes: int) -> torch.Tensor:
    """K-class logits along the true-class margin m = z_true - max_other; the true class is 0.

    The path: z_true = max(m, 0), one rival class z_1 = max(-m, 0), every other class at 0.
    For m < 0 the rival is ahead by |m| (confidently wrong, the rest level with the truth); for
    m > 0 the true class is ahead of all others by m. Shape [len(margins), K].
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    m = _as_grid(margins)
    z = torch.zeros(m.shape[0], num_classes, dtype=DTYPE)
    z[:, 0] = m.clamp_min(0)
    z[:, 1] = (-m).clamp_min(0)
    return z


def gradient_norm_vs_margin(loss_name, margins, num_classes: int = 10, **params) -> np.ndarray:
    """||dL/dz||_2 at each margin of ``margin_logits`` with the true class 0."""
    z = margin_logits(margins, num_classes)
    y = torch.zeros(z.shape[0], dtype=torch.long)
    return get_loss(loss_name).gradient(z, y, reduction="none", **params).norm(dim=-1).numpy()


def loss_vs_margin(loss_name, margins, num_classes: int = 10, **params) -> np.ndarray:
    """L at each margin of ``margin_logits`` with the true class 0."""
    z = margin_logits(margins, num_classes)
    y = torch.zeros(z.shape[0], dtype=torch.long)
    return get_loss(loss_name)(z, y, reduction="none", **params).numpy()


@dataclass(frozen=True)
class DeadZone:
    """The wrongly classified margins m < 0 (down to ``lower``) where |dL/dz| < epsilon."""

    loss: str
    epsilon: float
    num_classes: int | None  # None: the binary (sigmoid) model
    threshold: float | None  # every margin below this has gradient < epsilon; None: no dead zone
    measure: float  # length of the dead part of [lower, 0)
    lower: float

    def describe(self) -> Message:
        """One sentence (a catalogue message: English, or any language through ``losslab.i18n.render``)."""
        if self.num_classes is None:
            model = Message("deadzone.binary")
        else:
            model = Message("deadzone.classes", k=str(self.num_classes))
        if self.threshold is None:
            return Message(
                "deadzone.none", loss=self.loss, model=model, lower=f"{self.lower:g}", epsilon=f"{self.epsilon:g}"
            )
        return Message(
            "deadzone.below",
            loss=self.loss,
            model=model,
            threshold=f"{self.threshold:.2f}",
            epsilon=f"{self.epsilon:g}",
            measure=f"{self.measure:.1f}",
            length=f"{-self.lower:g}",
            lower=f"{self.lower:g}",
        )


def dead_zone(
    loss_name,
    epsilon: float = DEAD_EPSILON,
    num_classes: int | None = None,
    lower: float = -50.0,
    points: int = 20001,
    loss_params: dict | None = None,
    **params,
) -> DeadZone:
    """Measure the dead zone: wrongly classified margins in [lower, 0) whose gradient norm is < epsilon.

    ``num_classes=None`` uses the binary sigmoid model with y = 1 (margin = z); otherwise the K-class
    margin path of ``margin_logits``. The boundary is refined with Brent's method on the grid bracket.
    The loss's parameters come as keywords, or as ``loss_params`` when one is named like an argument
    here (label smoothing's ``epsilon``).
    """
    params = {**(loss_params or {}), **params}
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon!r}")
    if not lower < 0:
        raise ValueError(f"lower must be negative (the dead zone is among wrong predictions), got {lower!r}")
    name = get_loss(loss_name).name

    def grad_norm(m):
        m = np.atleast_1d(np.asarray(m, dtype=np.float64))
        if num_classes is None:
            return np.abs(binary_gradient(loss_name, m, 1, **params))
        return gradient_norm_vs_margin(loss_name, m, num_classes, **params)

    grid = np.linspace(lower, 0.0, points, endpoint=False)
    dead = grad_norm(grid) < epsilon
    measure = float(dead.mean() * -lower)
    if not dead.any():
        return DeadZone(name, epsilon, num_classes, None, 0.0, lower)
    if dead.all():
        return DeadZone(name, epsilon, num_classes, 0.0, -lower, lower)
    # The threshold is the first live margin from below if the dead set is a left interval.
    first_live = int(np.argmin(dead))
    threshold = None
    if first_live > 0 and not dead[first_live:].any():
        a, b = grid[first_live - 1], grid[first_live]
        threshold = brentq(lambda m: float(grad_norm(m)[0]) - epsilon, a, b, xtol=1e-12)
    return DeadZone(name, epsilon, num_classes, threshold, measure, lower)


def hessian_eigenvalues(loss_name, logits, label: int, **params) -> np.ndarray:
    """Eigenvalues (ascending) of the Hessian of L with respect to the logits of one example."""
    loss = get_loss(loss_name)
    z = _as_grid(logits)
    y = torch.tensor([label])
    if z.dim() != 1:
        raise ValueError(f"logits must be the logits of one example, shape [K], got {list(z.shape)}")

    def value(v):
        return loss(v.unsqueeze(0), y, reduction="sum", **params)

    hessian = torch.autograd.functional.hessian(value, z)
    return torch.linalg.eigvalsh(hessian).numpy()


def curvature_vs_margin(loss_name, margins, num_classes: int = 3, **params) -> np.ndarray:
    """The smallest Hessian eigenvalue in logit space at each margin of ``margin_logits``.

    Cross-entropy's Hessian diag(p) - p p^T is positive semi-definite everywhere (convex in the logits);
    softmax-MSE has negative eigenvalues, so it is not convex there.
    """
    z = margin_logits(margins, num_classes)
    return np.array([hessian_eigenvalues(loss_name, row, 0, **params)[0] for row in z])


def binary_curvature(loss_name, logits, label: int = 1, **params) -> np.ndarray:
    """d^2L/dz^2 of the single-logit model, by differentiating the logit gradient (closed form or autograd)."""
    z = _as_grid(logits).requires_grad_(True)
    loss = get_loss(loss_name)
    y = torch.full(z.shape, label, dtype=torch.long)
    resolved = loss.resolve_params(params)
    if loss.accepts_binary:
        g = loss.logit_gradient_fn(binary=True)(z, y.to(DTYPE), **resolved)
    else:
        g = loss.logit_gradient_fn()(
            torch.stack([torch.zeros_like(z), z], -1), torch.nn.functional.one_hot(y, 2).to(DTYPE), **resolved
        )[:, 1]
    (second,) = torch.autograd.grad(g.sum(), z)
    return second.detach().numpy()


def hessians(loss_name, logits, targets, binary: bool = False, **params) -> torch.Tensor:
    """Per-example Hessians of L in logit space, [N, K, K] (or [N] if ``binary``), for N examples at once.

    Differentiates the values twice by autograd (not the closed-form gradient: this measures the loss as
    defined); one backward per class, never a loop over examples. ``targets`` are probability targets
    shaped like ``logits`` (class indices are one-hot encoded).
    """
    loss = get_loss(loss_name)
    resolved = loss.resolve_params(params)
    z = _as_grid(logits)
    y = torch.as_tensor(targets)
    if not binary and y.dim() == 1:
        y = torch.nn.functional.one_hot(y.long(), z.shape[-1])
    y = y.to(DTYPE)
    values = loss.values_fn(binary)
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(values(leaf, y, **resolved).sum(), leaf, create_graph=True)
        if binary:
            (h,) = torch.autograd.grad(g.sum(), leaf, allow_unused=True)
            return torch.zeros_like(z) if h is None else h.detach()
        rows = []
        for k in range(z.shape[-1]):  # row k of every example's Hessian: d(dL/dz_k)/dz
            (h,) = torch.autograd.grad(g[..., k].sum(), leaf, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(z) if h is None else h.detach())
    return torch.stack(rows, dim=-2)


def max_sigmoid_mse_gradient() -> tuple[float, float]:
    """The largest |dL/dz| of sigmoid-MSE and where it occurs, in p: analytically 4/27 at p = 2/3 (y = 0)."""
    z = np.linspace(-10, 10, 200001)
    g = np.abs(binary_gradient("mse", z, 0))
    i = int(np.argmax(g))
    return float(g[i]), float(1 / (1 + math.exp(-z[i])))
