"""Classification losses, each with its per-example value and its closed-form logit gradient.

Each loss is a pair of pure functions on already validated tensors: ``*_values(z, y)`` gives
one loss per example and ``*_grad(z, y)`` gives d loss / d z for each example. ``z`` has
shape [..., K] (any leading batch dimensions; the population trainer passes [members, batch, K])
and ``y`` is a probability target of the same shape. Binary losses take ``z`` and ``y`` of
shape [...]. The ``Loss`` objects (``losslab.core.loss``) in ``LOSSES`` wrap these pairs with validation and
reduction; they are the public API::

    >>> from losslab.core import LOSSES
    >>> ce = LOSSES["cross_entropy"]
    >>> z = torch.tensor([[2.0, 0.0, -1.0]]); y = torch.tensor([0])
    >>> ce(z, y), ce.gradient(z, y)          # value and p - y

Notation: p = softmax(z) (or sigmoid(z) for binary losses), K = number of classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from losslab.core.links import log_softmax_over_classes, softmax_over_classes, softmax_times
from losslab.core.loss import Loss, LossFn
from losslab.params import REQUIRED, Interval, Param
from losslab.plugins import check_loss_signature, check_name, keyword_defaults
from losslab.registry import Registry, caller_module

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
    """dL/dz = J^T (p - y) with J = diag(p) - p p^T: every term carries a factor p, so it saturates.

    Written out, g_i = p_i (v_i - <p, v>) with v = p - y. For a confident prediction (p_t near 1 for the top
    class t) v_t and <p, v> are both near p_t - y_t and their difference cancels; so the sums are taken
    over the other classes only, whose small terms keep their precision: q_t = 1 - p_t = sum_{j != t} p_j,
    p_t - y_t = (1 - y_t) - q_t, <p, v> = p_t (p_t - y_t) + s with s = sum_{j != t} p_j v_j, and for t the
    bracket is q_t (p_t - y_t) - s. Without this the float64 gradient norm at a margin of -40 (K = 10) is
    a factor 3 off (against mpmath, tests/test_core_losses.py).

    In float32 (training) the direct form is used: its error is absolute, at float32's rounding of O(1)
    terms (1e-7), so it only reaches gradients far inside the dead zone (|dL/dz| < 1e-3), and it costs a
    quarter of the careful form in the training step.
    """
    if z.dtype != torch.float64:
        p = softmax_over_classes(z)
        return softmax_times(p, p - y)
    if z.dim() >= 2 and z.stride(-1) != 1 and z.stride(-2) == 1:
        # Class-major memory (as the population trainer's logits): reduce over the contiguous axis, which
        # is several times faster on CPU than reducing a strided last axis; the values are the same.
        return _mse_grad_over(z.transpose(-1, -2), y.transpose(-1, -2), dim=-2).transpose(-1, -2)
    return _mse_grad_over(z, y, dim=-1)


def _mse_grad_over(z: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    p = torch.softmax(z, dim=dim)
    top = z == z.amax(dim=dim, keepdim=True)
    top &= top.cumsum(dim) == 1  # the first maximum only, should two classes tie
    top = top.to(p.dtype)
    others = 1.0 - top

    def total(t):
        return t.sum(dim=dim, keepdim=True)

    v = p - y
    q_top = total(others * p)  # 1 - p_t, to full relative precision
    rest = total(others * p * v)
    d_top = (1.0 - total(top * y)) - q_top  # p_t - y_t without rounding p_t to 1
    inner = total(top * p) * d_top + rest  # <p, v>
    return p * (others * (v - inner) + top * (q_top * d_top - rest))


def square_logits_values(z: torch.Tensor, y: torch.Tensor, k: float, M: float) -> torch.Tensor:
    """Hui & Belkin (2021) square loss on raw logits, no softmax.

    L = (1/K) [k (z_c - M)^2 + sum_{i != c} z_i^2] for true class c; for probability targets
    L = (1/K) sum_i w_i (z_i - M y_i)^2 with weights w_i = 1 + (k - 1) y_i, which is the same
    for one-hot y. ``k`` weights the true class, ``M`` is its target value.
    """
    weights = 1.0 + (k - 1.0) * y
    return (weights * (z - M * y).square()).sum(dim=-1) / z.shape[-1]


def square_logits_grad(z: torch.Tensor, y: torch.Tensor, k: float, M: float) -> torch.Tensor:
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


def focal_values(z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): L = -sum_i y_i (1 - p_i)^gamma log p_i; gamma = 0 is cross-entropy."""
    log_p, _, q_gamma = _focal_parts(z, gamma)
    return -(y * q_gamma * log_p).sum(dim=-1)


def focal_grad(z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
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


def label_smoothing_cross_entropy_values(z: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Cross-entropy against smoothed targets y' = (1 - epsilon) y + epsilon / K (Szegedy et al. 2016)."""
    return cross_entropy_values(z, _smoothed(y, epsilon))


def label_smoothing_cross_entropy_grad(z: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """dL/dz = p - y'."""
    return cross_entropy_grad(z, _smoothed(y, epsilon))


def squentropy_values(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squentropy (Hui, Belkin & Wright 2023): cross-entropy plus the mean squared logit of the incorrect classes.

    L = -sum_i y_i log p_i + (1 / (K - 1)) sum_i (1 - y_i) z_i^2. For a one-hot y (true class c) this is
    the paper's CE + (1 / (K - 1)) sum_{i != c} z_i^2. For probability targets each class's squared logit
    is weighted by 1 - y_i, the probability that it is an incorrect class: that keeps the loss linear in y,
    so L(z, q) is exactly the expected loss E_{c ~ q} L(z, e_c) (our choice; the paper uses hard labels).
    """
    # The cross-entropy part in log space (as cross_entropy_values); z^2 is finite at z = +-1e4 (1e8).
    weights = 1.0 - y
    return cross_entropy_values(z, y) + (weights * z.square()).sum(dim=-1) / (z.shape[-1] - 1)


def squentropy_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/dz_i = p_i sum(y) - y_i + 2 (1 - y_i) z_i / (K - 1): cross-entropy's p - y plus a linear pull to 0."""
    return cross_entropy_grad(z, y) + 2.0 * (1.0 - y) * z / (z.shape[-1] - 1)


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
# The parameters of the built-in losses, declared (constraint, default, meaning): the one place of each default
# ---------------------------------------------------------------------------------------------

_POSITIVE = Interval(float, 0, closed="neither")
SQUARE_K = Param("k", _POSITIVE, 1.0, "weight of the true class's squared error", example=5.0)
SQUARE_M = Param("M", _POSITIVE, 1.0, "target value of the true class's logit", example=15.0)
FOCAL_GAMMA = Param(
    "gamma",
    Interval(float, 0),
    2.0,
    "focusing exponent: how much well-classified examples are down-weighted",
    note="(0 gives cross-entropy)",
)
SMOOTHING_EPSILON = Param(
    "epsilon", Interval(float, 0, 1, "left"), 0.1, "share of each target spread evenly over the K classes"
)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------

#: The one registry of losses: name -> Loss (``register_loss`` adds one; built-ins below).
LOSSES: Registry[Loss] = Registry("loss", "losses", sort_names=True)


def make_loss(
    name: str,
    values: LossFn | None = None,
    grad: LossFn | None = None,
    binary_values: LossFn | None = None,
    binary_grad: LossFn | None = None,
    *,
    params: Sequence[Param] = (),
    defaults: dict | None = None,
    summary: str = "",
    formula: str = "",
    gradient_formula: str = "",
    check_params: Callable[[dict], None] | None = None,
) -> Loss:
    """Build and validate a ``Loss`` without registering it (``register_loss`` registers one; see it for the arguments)."""
    check_name("loss", name)
    if values is None and binary_values is None:
        raise ValueError(
            f"loss {name!r}: give values= (multiclass, z [..., K]) or binary_values= (one logit per example), or both"
        )
    for arg, fn in (("values", values), ("grad", grad), ("binary_values", binary_values), ("binary_grad", binary_grad)):
        if fn is not None and not callable(fn):
            raise ValueError(f"loss {name!r}: {arg} must be a function f(z, y, **params), got {type(fn).__name__}")
    if grad is not None and values is None:
        raise ValueError(f"loss {name!r}: grad= is the gradient of values=, which is missing; give values= too")
    if binary_grad is not None and binary_values is None:
        raise ValueError(f"loss {name!r}: binary_grad= needs binary_values=; give binary_values= too")
    if isinstance(params, (str, Param)) or not all(isinstance(p, Param) for p in params):
        raise ValueError(f"loss {name!r}: params must be a list of losslab.params.Param declarations, got {params!r}")
    if defaults is None:
        # Parameters are the keyword arguments with defaults of the values function: f(z, y, alpha=0.5).
        defaults = keyword_defaults(values if values is not None else binary_values)
    if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
        raise ValueError(f"loss {name!r}: defaults must be a dict of parameter names to values, got {defaults!r}")
    # A declared parameter's default is its declaration's; one without one keeps the function's keyword default.
    defaults = {**defaults, **{p.name: p.default for p in params if p.default is not REQUIRED}}
    undeclared = [p.name for p in params if p.name not in defaults]
    if undeclared:
        raise ValueError(f"loss {name!r}: parameter(s) {undeclared} have no default; give Param(..., default)")
    for arg, fn in (("values", values), ("grad", grad), ("binary_values", binary_values), ("binary_grad", binary_grad)):
        if fn is not None:
            check_loss_signature(fn, defaults, what=f"loss {name!r}: {arg}")
    if check_params is not None and not callable(check_params):
        raise ValueError(f"loss {name!r}: check_params must be a function of the parameter dict, or None")
    for arg, text in (("summary", summary), ("formula", formula), ("gradient_formula", gradient_formula)):
        if not isinstance(text, str):
            raise ValueError(f"loss {name!r}: {arg} must be a string, got {type(text).__name__}")
    module = getattr(values if values is not None else binary_values, "__module__", None) or "?"
    return Loss(
        name,
        summary,
        formula,
        gradient_formula,
        values,
        grad,
        binary_values,
        binary_grad,
        defaults,
        check_params,
        module,
        tuple(params),
    )


def register_loss(
    name: str,
    values: LossFn | None = None,
    grad: LossFn | None = None,
    binary_values: LossFn | None = None,
    binary_grad: LossFn | None = None,
    *,
    replace: bool = False,
    **declaration,
) -> Loss:
    """Add a loss to ``LOSSES`` (the one registry; the built-ins are registered the same way) and return it.

    The functions may be given positionally or by name; ``declaration`` holds the other arguments of
    ``make_loss``, which builds the ``Loss``: ``params``, ``defaults``, ``summary``, ``formula``,
    ``gradient_formula`` and ``check_params``.

    ``values(z, y, **params)`` takes logits z of shape [..., K] and probability targets y of the same
    shape and returns one loss per example, shape [...]; ``binary_values`` is the one-logit form (z, y of
    shape [...]). ``grad``/``binary_grad`` are the closed-form d L_example / dz (z's shape); without them
    autograd of the values is used. The loss's parameters are the keyword defaults of ``values`` (or
    ``defaults``); ``params`` declares them (``losslab.params.Param``: constraint, default, meaning), so that a
    bad value is refused in one line when a spec is read. ``check_params(resolved)`` may add checks that tie
    parameters together. The first call of each function checks its output (shape, dtype, finite).

        >>> def tempered_ce(z, y, t=2.0):
        ...     return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)
        >>> register_loss("tempered_ce", tempered_ce, summary="cross-entropy of softmax(z / t)")

    Names: letters, digits, '-' and '_', starting with a letter. Registering a name again is an error
    unless ``replace=True``.
    """
    loss = make_loss(name, values, grad, binary_values, binary_grad, **declaration)
    return LOSSES.register(name, loss, replace=replace, module=caller_module())


def get_loss(name) -> Loss:
    """Look a loss up by name (a ``Loss`` is returned as is); an unknown name lists the valid ones."""
    if isinstance(name, Loss):
        return name
    return LOSSES.get(name)


# --- the built-in losses ---------------------------------------------------------------------------

register_loss(
    "cross_entropy",
    values=cross_entropy_values,
    grad=cross_entropy_grad,
    summary="softmax cross-entropy (multinomial negative log-likelihood)",
    formula="L = -sum_i y_i log softmax(z)_i",
    gradient_formula="p - y",
)
register_loss(
    "binary_cross_entropy",
    binary_values=binary_cross_entropy_values,
    binary_grad=binary_cross_entropy_grad,
    summary="sigmoid cross-entropy (Bernoulli negative log-likelihood)",
    formula="L = -[y log sigmoid(z) + (1 - y) log sigmoid(-z)]",
    gradient_formula="p - y",
)
register_loss(
    "mse",
    values=mse_values,
    grad=mse_grad,
    binary_values=binary_mse_values,
    binary_grad=binary_mse_grad,
    summary="squared error on probabilities, eq. (31) (half the Brier score)",
    formula="L = 1/2 sum_i (softmax(z)_i - y_i)^2; binary: 1/2 (sigmoid(z) - y)^2",
    gradient_formula="(diag(p) - p p^T)(p - y); binary: (p - y) p (1 - p)",
)
register_loss(
    "square_logits",
    values=square_logits_values,
    grad=square_logits_grad,
    params=[SQUARE_K, SQUARE_M],
    summary="squared error on raw logits with rescaling (Hui & Belkin 2021)",
    formula="L = (1/K) [k (z_c - M)^2 + sum_{i != c} z_i^2]",
    gradient_formula="(2/K) w (z - M y), w_i = 1 + (k - 1) y_i",
)
register_loss(
    "focal",
    values=focal_values,
    grad=focal_grad,
    params=[FOCAL_GAMMA],
    summary="focal loss (Lin et al. 2017); gamma = 0 is cross-entropy",
    formula="L = -sum_i y_i (1 - p_i)^gamma log p_i",
    gradient_formula="a - p sum(a), a_i = -y_i (1 - p_i)^gamma (1 - gamma p_i log p_i / (1 - p_i))",
)
register_loss(
    "label_smoothing_cross_entropy",
    values=label_smoothing_cross_entropy_values,
    grad=label_smoothing_cross_entropy_grad,
    params=[SMOOTHING_EPSILON],
    summary="cross-entropy with smoothed targets (Szegedy et al. 2016)",
    formula="L = -sum_i y'_i log p_i, y' = (1 - epsilon) y + epsilon / K",
    gradient_formula="p - y'",
)
register_loss(
    "squentropy",
    values=squentropy_values,
    grad=squentropy_grad,
    summary="cross-entropy plus the mean squared incorrect-class logit (Hui, Belkin & Wright 2023)",
    formula="L = -sum_i y_i log p_i + 1/(K-1) sum_i (1 - y_i) z_i^2",
    gradient_formula="p - y + 2 (1 - y) z / (K - 1)",
)

# Convenience functions in the optax style: ``cross_entropy(logits, labels)``.
cross_entropy = LOSSES["cross_entropy"]
binary_cross_entropy = LOSSES["binary_cross_entropy"]
mse = LOSSES["mse"]
square_logits = LOSSES["square_logits"]
focal = LOSSES["focal"]
label_smoothing_cross_entropy = LOSSES["label_smoothing_cross_entropy"]
squentropy = LOSSES["squentropy"]
