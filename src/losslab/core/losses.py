"""Classification losses, each with its per-example value and its closed-form logit gradient.

Each loss is a pair of pure functions on already validated tensors: ``*_values(z, y)`` gives
one loss per example and ``*_grad(z, y)`` gives d loss / d z for each example. ``z`` has
shape [..., K] (any leading batch dimensions; the population trainer passes [members, batch, K])
and ``y`` is a probability target of the same shape. Binary losses take ``z`` and ``y`` of
shape [...]. The ``Loss`` objects in ``LOSSES`` wrap these pairs with validation and reduction;
they are the public API::

    >>> from losslab.core import LOSSES
    >>> ce = LOSSES["cross_entropy"]
    >>> z = torch.tensor([[2.0, 0.0, -1.0]]); y = torch.tensor([0])
    >>> ce(z, y), ce.gradient(z, y)          # value and p - y

Notation: p = softmax(z) (or sigmoid(z) for binary losses), K = number of classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from losslab.core.links import log_softmax_over_classes, softmax_over_classes, softmax_times
from losslab.core.validation import (
    as_binary_targets,
    as_probability_targets,
    check_logits,
    check_reduction,
    reduce,
    reduce_gradient,
)

# ---------------------------------------------------------------------------------------------
# Multiclass losses: z, y of shape [..., K]
# ---------------------------------------------------------------------------------------------


def cross_entropy_values(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, eq. (25): L = -sum_i y_i log p_i."""
    # log_softmax = z - logsumexp(z): finite for z = +-1e4 where log(softmax(z)) is log(0).
    return -(y * log_softmax_over_classes(z)).sum(dim=-1)


def cross_entropy_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dz = p * sum(y) - y = p - y for targets that sum to 1: the sigmoid factor cancels."""
    return softmax_over_classes(z) * y.sum(dim=-1, keepdim=True) - y


def mse_values(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. (31) per example: L = 1/2 ||p - y||^2, summed over the K classes.

    Relation to other names: ``torch.nn.functional.mse_loss(p, y)`` (mean reduction) divides
    by batch x K, so it equals (2 / K) times the batch mean of this loss; the multiclass Brier
    score (Brier 1950) is sum_i (p_i - y_i)^2, i.e. exactly 2 x this loss.
    """
    return 0.5 * (softmax_over_classes(z) - y).square().sum(dim=-1)


def mse_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dz = J^T (p - y) with J = diag(p) - p p^T: every term carries a factor p, so it saturates."""
    p = softmax_over_classes(z)
    return softmax_times(p, p - y)


def square_logits_values(z: torch.Tensor, y: torch.Tensor, k: float = 1.0, M: float = 1.0) -> torch.Tensor:
    """Hui & Belkin (2021) square loss on raw logits, no softmax.

    L = (1/K) [k (z_c - M)^2 + sum_{i != c} z_i^2] for true class c; for probability targets
    L = (1/K) sum_i w_i (z_i - M y_i)^2 with weights w_i = 1 + (k - 1) y_i, which is the same
    for one-hot y. ``k`` weights the true class, ``M`` is its target value.
    """
    weights = 1.0 + (k - 1.0) * y
    return (weights * (z - M * y).square()).sum(dim=-1) / z.shape[-1]


def square_logits_grad(z: torch.Tensor, y: torch.Tensor, k: float = 1.0, M: float = 1.0) -> torch.Tensor:
    """dL/dz_i = (2/K) w_i (z_i - M y_i): linear in z, it never saturates."""
    weights = 1.0 + (k - 1.0) * y
    return 2.0 * weights * (z - M * y) / z.shape[-1]


def _focal_parts(z: torch.Tensor, gamma: float):
    """Return log p, log(1 - p) and (1 - p)^gamma, each accurate for p near 0 and near 1."""
    log_p = log_softmax_over_classes(z)
    top = z.argmax(dim=-1, keepdim=True)
    # For the most likely class 1 - p is the mass of the others: a leave-one-out logsumexp gives
    # log(1 - p) exactly even where p rounds to 1 (z = 1e4), and log p = log1p(-(1 - p)).
    log_q_top = torch.logsumexp(z.scatter(-1, top, float("-inf")), dim=-1, keepdim=True) - torch.logsumexp(
        z, dim=-1, keepdim=True
    )
    # Every other class has p <= 1/2, where log(1 - p) = log(-expm1(log p)) is accurate; the clamp
    # only keeps the replaced top entry away from log(0), whose gradient would be NaN.
    log_q = torch.log(-torch.expm1(log_p.clamp_max(-math.log(2.0)))).scatter(-1, top, log_q_top)
    log_p = log_p.scatter(-1, top, torch.log1p(-torch.exp(log_q_top)))
    return log_p, log_q, torch.exp(gamma * log_q)


def focal_values(z: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): L = -sum_i y_i (1 - p_i)^gamma log p_i; gamma = 0 is cross-entropy."""
    log_p, _, q_gamma = _focal_parts(z, gamma)
    return -(y * q_gamma * log_p).sum(dim=-1)


def focal_grad(z: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """dL/dz_j = a_j - p_j sum_i a_i, with a_i = -y_i (1 - p_i)^gamma (1 - gamma p_i log p_i / (1 - p_i)).

    Derived from dp_i/dz_j = p_i (delta_ij - p_j). For gamma = 0, a = -y and this is p - y.
    """
    log_p, log_q, q_gamma = _focal_parts(z, gamma)
    p, q = log_p.exp(), log_q.exp()
    # r = p log p / (1 - p) -> -1 + q/2 as q = 1 - p -> 0 (error O(q^2)); use the series there,
    # where the quotient would be 0/0.
    tiny = log_q < -20.0
    ratio = torch.where(tiny, q / 2 - 1.0, p * log_p / torch.where(tiny, torch.ones_like(q), q))
    a = -y * q_gamma * (1.0 - gamma * ratio)
    return a - p * a.sum(dim=-1, keepdim=True)


def _smoothed(y: torch.Tensor, epsilon: float) -> torch.Tensor:
    return (1.0 - epsilon) * y + epsilon / y.shape[-1]


def label_smoothing_cross_entropy_values(z: torch.Tensor, y: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against smoothed targets y' = (1 - epsilon) y + epsilon / K (Szegedy et al. 2016)."""
    return cross_entropy_values(z, _smoothed(y, epsilon))


def label_smoothing_cross_entropy_grad(z: torch.Tensor, y: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """dL/dz = p - y'."""
    return cross_entropy_grad(z, _smoothed(y, epsilon))


# ---------------------------------------------------------------------------------------------
# Binary losses: one logit per example, z, y of shape [...]
# ---------------------------------------------------------------------------------------------


def binary_cross_entropy_values(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy = Bernoulli NLL, eq. (5): L = -[y log p + (1 - y) log(1 - p)]."""
    # log p = logsigmoid(z) and log(1 - p) = logsigmoid(-z): finite at z = +-1e4.
    return -(y * F.logsigmoid(z) + (1.0 - y) * F.logsigmoid(-z))


def binary_cross_entropy_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dz = p - y."""
    return torch.sigmoid(z) - y


def binary_mse_values(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error on the sigmoid output: L = 1/2 (p - y)^2."""
    return 0.5 * (torch.sigmoid(z) - y).square()


def binary_mse_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dz = (p - y) p (1 - p): the sigmoid's derivative (eq. 4) survives and saturates."""
    # p (1 - p) = sigmoid(z) sigmoid(-z), which keeps its precision in both tails.
    return (torch.sigmoid(z) - y) * torch.sigmoid(z) * torch.sigmoid(-z)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

LossFn = Callable[..., torch.Tensor]


def _check_positive(name: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_gamma(params: dict) -> None:
    gamma = params["gamma"]
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0 (0 gives cross-entropy), got {gamma!r}")


def _check_epsilon(params: dict) -> None:
    epsilon = params["epsilon"]
    if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not 0 <= epsilon < 1:
        raise ValueError(f"epsilon must be a number in [0, 1), got {epsilon!r}")


def _check_square_params(params: dict) -> None:
    _check_positive("k", params["k"])
    _check_positive("M", params["M"])


@dataclass(frozen=True)
class Loss:
    """A registered loss: validated per-example values, reduction, and the closed-form gradient.

    Call it as ``loss(logits, labels, reduction="mean", **params)``; ``loss.gradient`` takes the
    same arguments and returns d(reduced loss)/d(logits), shaped like ``logits``. With
    ``reduction="none"`` the gradient rows are each example's own gradient.
    """

    name: str
    summary: str
    formula: str
    gradient_formula: str
    values: LossFn | None  # multiclass: logits [..., K]
    grad: LossFn | None
    binary_values: LossFn | None = None  # binary: one logit per example
    binary_grad: LossFn | None = None
    defaults: dict = field(default_factory=dict)
    check_params: Callable[[dict], None] | None = None

    @property
    def accepts_multiclass(self) -> bool:
        return self.values is not None

    @property
    def accepts_binary(self) -> bool:
        return self.binary_values is not None

    def resolve_params(self, params: dict | None = None) -> dict:
        """Merge ``params`` into the defaults; unknown or invalid parameters raise ValueError."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = sorted(self.defaults) or "none"
            raise ValueError(f"loss {self.name!r} got unknown parameter(s) {unknown}; valid parameters: {valid}")
        resolved = {**self.defaults, **params}
        if self.check_params is not None:
            self.check_params(resolved)
        return resolved

    def _prepare(self, logits, labels, reduction, params):
        check_reduction(reduction)
        params = self.resolve_params(params)
        binary = getattr(logits, "dim", lambda: 2)() == 1
        if binary and not self.accepts_binary:
            raise ValueError(
                f"loss {self.name!r} takes logits of shape [batch, num_classes], got shape {list(logits.shape)}; "
                "for a binary problem pass losslab.core.two_class_logits(logits)"
            )
        if not binary and not self.accepts_multiclass:
            raise ValueError(
                f"loss {self.name!r} takes one logit per example (shape [batch]), got shape "
                f"{list(getattr(logits, 'shape', []))}; use 'cross_entropy' for multiclass logits"
            )
        logits = check_logits(logits, binary=binary)
        targets = as_binary_targets(logits, labels) if binary else as_probability_targets(logits, labels)
        return binary, logits, targets, params

    def __call__(self, logits, labels, reduction: str = "mean", **params) -> torch.Tensor:
        binary, logits, targets, params = self._prepare(logits, labels, reduction, params)
        fn = self.binary_values if binary else self.values
        return reduce(fn(logits, targets, **params), reduction)

    def gradient(self, logits, labels, reduction: str = "mean", **params) -> torch.Tensor:
        binary, logits, targets, params = self._prepare(logits, labels, reduction, params)
        fn = self.binary_grad if binary else self.grad
        return reduce_gradient(fn(logits, targets, **params), reduction)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss(
            "cross_entropy",
            "softmax cross-entropy (multinomial negative log-likelihood)",
            "L = -sum_i y_i log softmax(z)_i",
            "p - y",
            cross_entropy_values,
            cross_entropy_grad,
        ),
        Loss(
            "binary_cross_entropy",
            "sigmoid cross-entropy (Bernoulli negative log-likelihood)",
            "L = -[y log sigmoid(z) + (1 - y) log sigmoid(-z)]",
            "p - y",
            None,
            None,
            binary_cross_entropy_values,
            binary_cross_entropy_grad,
        ),
        Loss(
            "mse",
            "squared error on probabilities, eq. (31) (half the Brier score)",
            "L = 1/2 sum_i (softmax(z)_i - y_i)^2; binary: 1/2 (sigmoid(z) - y)^2",
            "(diag(p) - p p^T)(p - y); binary: (p - y) p (1 - p)",
            mse_values,
            mse_grad,
            binary_mse_values,
            binary_mse_grad,
        ),
        Loss(
            "square_logits",
            "squared error on raw logits with rescaling (Hui & Belkin 2021)",
            "L = (1/K) [k (z_c - M)^2 + sum_{i != c} z_i^2]",
            "(2/K) w (z - M y), w_i = 1 + (k - 1) y_i",
            square_logits_values,
            square_logits_grad,
            defaults={"k": 1.0, "M": 1.0},
            check_params=_check_square_params,
        ),
        Loss(
            "focal",
            "focal loss (Lin et al. 2017); gamma = 0 is cross-entropy",
            "L = -sum_i y_i (1 - p_i)^gamma log p_i",
            "a - p sum(a), a_i = -y_i (1 - p_i)^gamma (1 - gamma p_i log p_i / (1 - p_i))",
            focal_values,
            focal_grad,
            defaults={"gamma": 2.0},
            check_params=_check_gamma,
        ),
        Loss(
            "label_smoothing_cross_entropy",
            "cross-entropy with smoothed targets (Szegedy et al. 2016)",
            "L = -sum_i y'_i log p_i, y' = (1 - epsilon) y + epsilon / K",
            "p - y'",
            label_smoothing_cross_entropy_values,
            label_smoothing_cross_entropy_grad,
            defaults={"epsilon": 0.1},
            check_params=_check_epsilon,
        ),
    ]
}


def get_loss(name: str) -> Loss:
    """Look a loss up by name; an unknown name raises ValueError listing the valid ones."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(sorted(LOSSES))}") from None


# Convenience functions in the optax style: ``cross_entropy(logits, labels)``.
cross_entropy = LOSSES["cross_entropy"]
binary_cross_entropy = LOSSES["binary_cross_entropy"]
mse = LOSSES["mse"]
square_logits = LOSSES["square_logits"]
focal = LOSSES["focal"]
label_smoothing_cross_entropy = LOSSES["label_smoothing_cross_entropy"]
