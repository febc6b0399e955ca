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
from losslab.plugins import check_loss_signature, check_name, keyword_defaults, origin_of, where_it_failed

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


def check_output(loss_name: str, what: str, out, z: torch.Tensor, expected_shape) -> torch.Tensor:
    """Check one output of a loss function against the core's contract; a one-line ValueError if it fails.

    ``what`` names the call (e.g. "values(z, y)"); ``expected_shape`` is z.shape[:-1] for multiclass values
    (one value per example), z.shape for binary values and for every gradient.
    """
    expected = list(expected_shape)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"loss {loss_name!r}: {what} returned a {type(out).__name__}, not a torch.Tensor; compute it from z "
            f"and y with torch operations and return a tensor of shape {expected}"
        )
    if list(out.shape) != expected:
        if what.startswith("values") or what.startswith("binary_values"):
            fix = (
                f"return one value per example, shape {expected} (sum over the class axis with .sum(dim=-1); "
                "do not average over the batch)"
            )
        else:
            fix = f"return dL/dz with the logits' shape {expected}"
        raise ValueError(
            f"loss {loss_name!r}: {what} returned shape {list(out.shape)} for logits of shape {list(z.shape)}; {fix}"
        )
    if out.dtype != z.dtype:
        raise ValueError(
            f"loss {loss_name!r}: {what} returned dtype {out.dtype} for {z.dtype} logits; compute in the logits' "
            "dtype (create constants with dtype=z.dtype)"
        )
    finite = torch.isfinite(out)
    if not bool(finite.all()):
        bad = out[~finite]
        kinds = sorted({"nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") for v in bad[:1000].tolist()})
        raise ValueError(
            f"loss {loss_name!r}: {what} returned {int(bad.numel())} non-finite value(s) ({', '.join(kinds)}) for "
            f"finite logits of shape {list(z.shape)}; work in log space (torch.log_softmax, torch.logsumexp) and "
            "avoid dividing by, or taking the log or square root of, values that can be 0"
        )
    return out


def autograd_gradient(values: LossFn, loss_name: str = "loss", what: str = "values(z, y)") -> LossFn:
    """The per-example logit gradient of per-example ``values`` by one reverse pass over the whole tensor.

    ``f(z, y, **params) -> dL_example/dz`` for z of any shape [..., K] (e.g. [members, batch, K]). Each
    example's value depends only on its own logits, so the gradient of the sum over all leading axes is
    every example's own gradient at once: one backward, no Python loop over members or examples. Works
    inside ``torch.no_grad`` (it enables autograd locally) in float32 and float64.
    """

    def gradient(z: torch.Tensor, y: torch.Tensor, **params) -> torch.Tensor:
        with torch.enable_grad():  # callers such as evaluation loops may run under torch.no_grad
            leaf = z.detach().requires_grad_(True)
            out = values(leaf, y.detach(), **params)
            if not isinstance(out, torch.Tensor):
                check_output(loss_name, what, out, z, z.shape[:-1])
            if not out.requires_grad:
                raise ValueError(
                    f"loss {loss_name!r}: {what} does not depend on z through autograd (does it call .detach(), "
                    ".item(), .numpy() or build a new tensor?); compute it with torch operations on z, or give grad="
                )
            (grad,) = torch.autograd.grad(out.sum(), leaf, allow_unused=True)
        return torch.zeros_like(z) if grad is None else grad

    gradient.__name__ = gradient.__qualname__ = f"autograd_gradient_of_{getattr(values, '__name__', 'values')}"
    return gradient


@dataclass(frozen=True)
class Loss:
    """A registered loss: validated per-example values, reduction, and the logit gradient.

    Call it as ``loss(logits, labels, reduction="mean", **params)``; ``loss.gradient`` takes the
    same arguments and returns d(reduced loss)/d(logits), shaped like ``logits``. With
    ``reduction="none"`` the gradient rows are each example's own gradient. ``grad`` may be None:
    ``logit_gradient_fn`` then differentiates ``values`` by autograd. Create losses with ``register_loss``.
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
    module: str = __name__  # where the values function is defined: "built-in" or a plugin, for listings
    # First-use output checks done (kind, binary), and the checked accessors, per loss object.
    _checked: set = field(default_factory=set, init=False, repr=False, compare=False)
    _accessors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self):  # the cached accessors are closures: rebuild them after unpickling (Ray)
        return {k: v for k, v in self.__dict__.items() if k not in ("_checked", "_accessors")}

    def __setstate__(self, state):
        self.__dict__.update(state, _checked=set(), _accessors={})

    @property
    def accepts_multiclass(self) -> bool:
        return self.values is not None

    @property
    def accepts_binary(self) -> bool:
        return self.binary_values is not None

    def has_closed_form(self, binary: bool = False) -> bool:
        """Whether a closed-form logit gradient was given (else autograd of the values is used)."""
        return (self.binary_grad if binary else self.grad) is not None

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

    # --- accessors: what the trainer and the analysis call --------------------------------------

    def raw_values_fn(self, binary: bool = False) -> LossFn:
        """The values function as registered, without the first-use output check."""
        fn = self.binary_values if binary else self.values
        if fn is None:
            form, fix = (
                ("one-logit (sigmoid)", "use a softmax model with two logits")
                if binary
                else ("multiclass", "use it on a one-logit (sigmoid) model")
            )
            raise ValueError(f"loss {self.name!r} has no {form} form; {fix}, or register binary_values/values")
        return fn

    def raw_gradient_fn(self, binary: bool = False) -> LossFn:
        """The closed-form gradient where given, else autograd of the raw values; no output check."""
        closed = self.binary_grad if binary else self.grad
        if closed is not None:
            return closed
        return autograd_gradient(self.raw_values_fn(binary), self.name, self._what("values", binary))

    def values_fn(self, binary: bool = False) -> LossFn:
        """``f(z, y, **params)`` -> one value per example, z [..., K] ([...] if ``binary``).

        The first call checks the output (a tensor of shape z.shape[:-1], the logits' dtype, finite) and
        raises a one-line ValueError naming this loss and the fix if it is not.
        """
        return self._checked_fn("values", binary, lambda: self.raw_values_fn(binary))

    def logit_gradient_fn(self, binary: bool = False) -> LossFn:
        """``f(z, y, **params)`` -> dL_example/dz, z's shape: the closed form where given, else a batched
        autograd gradient of ``values_fn(binary)`` (one backward over the whole tensor, any leading dims).
        The first call checks the output like ``values_fn``.
        """

        def make():
            closed = self.binary_grad if binary else self.grad
            if closed is not None:
                return closed
            return autograd_gradient(self.values_fn(binary), self.name, self._what("values", binary))

        return self._checked_fn("gradient", binary, make)

    def _what(self, kind: str, binary: bool) -> str:
        closed = self.has_closed_form(binary)
        if kind == "values":
            return "binary_values(z, y)" if binary else "values(z, y)"
        if closed:
            return "binary_grad(z, y)" if binary else "grad(z, y)"
        return "the autograd gradient of " + ("binary_values(z, y)" if binary else "values(z, y)")

    def _checked_fn(self, kind: str, binary: bool, make: Callable[[], LossFn]) -> LossFn:
        key = (kind, binary)
        cached = self._accessors.get(key)
        if cached is not None:
            return cached
        fn, what, checked = make(), self._what(kind, binary), self._checked

        def call(z: torch.Tensor, y: torch.Tensor, **params) -> torch.Tensor:
            if key in checked:
                return fn(z, y, **params)
            try:
                out = fn(z, y, **params)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - user code: one line naming the loss, file and line
                raise ValueError(
                    f"loss {self.name!r}: {what} raised {type(exc).__name__}: {exc} ({where_it_failed(exc, None)}); "
                    "it must accept logits z [..., K] and probability targets y of the same shape"
                ) from exc
            expected = z.shape if kind == "gradient" or binary else z.shape[:-1]
            check_output(self.name, what, out, z, expected)
            checked.add(key)
            return out

        call.__name__ = call.__qualname__ = f"{self.name}_{kind}{'_binary' if binary else ''}"
        self._accessors[key] = call
        return call

    # --- the validated public API ---------------------------------------------------------------

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
        return reduce(self.values_fn(binary)(logits, targets, **params), reduction)

    def gradient(self, logits, labels, reduction: str = "mean", **params) -> torch.Tensor:
        binary, logits, targets, params = self._prepare(logits, labels, reduction, params)
        return reduce_gradient(self.logit_gradient_fn(binary)(logits, targets, **params), reduction)


LOSSES: dict[str, Loss] = {}


def make_loss(
    name: str,
    *,
    values: LossFn | None = None,
    grad: LossFn | None = None,
    binary_values: LossFn | None = None,
    binary_grad: LossFn | None = None,
    defaults: dict | None = None,
    summary: str = "",
    formula: str = "",
    gradient_formula: str = "",
    check_params: Callable[[dict], None] | None = None,
) -> Loss:
    """Build and validate a ``Loss`` without registering it (``register_loss`` registers one)."""
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
    if defaults is None:
        # Parameters are the keyword arguments with defaults of the values function: f(z, y, alpha=0.5).
        defaults = keyword_defaults(values if values is not None else binary_values)
    if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
        raise ValueError(f"loss {name!r}: defaults must be a dict of parameter names to values, got {defaults!r}")
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
        dict(defaults),
        check_params,
        module,
    )


def register_loss(
    name: str,
    *,
    values: LossFn | None = None,
    grad: LossFn | None = None,
    binary_values: LossFn | None = None,
    binary_grad: LossFn | None = None,
    defaults: dict | None = None,
    summary: str = "",
    formula: str = "",
    gradient_formula: str = "",
    check_params: Callable[[dict], None] | None = None,
    replace: bool = False,
) -> Loss:
    """Add a loss to ``LOSSES`` (the one registry; the built-ins are registered the same way) and return it.

    ``values(z, y, **params)`` takes logits z of shape [..., K] and probability targets y of the same
    shape and returns one loss per example, shape [...]; ``binary_values`` is the one-logit form (z, y of
    shape [...]). ``grad``/``binary_grad`` are the closed-form d L_example / dz (z's shape); without them
    autograd of the values is used. ``defaults`` are the parameters and their defaults (None: the keyword
    defaults of ``values``). The first call of each function checks its output (shape, dtype, finite).

        >>> def tempered_ce(z, y, t=2.0):
        ...     return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)
        >>> register_loss("tempered_ce", values=tempered_ce, summary="cross-entropy of softmax(z / t)")

    Names: letters, digits, '-' and '_', starting with a letter. Registering a name again is an error
    unless ``replace=True``.
    """
    loss = make_loss(
        name,
        values=values,
        grad=grad,
        binary_values=binary_values,
        binary_grad=binary_grad,
        defaults=defaults,
        summary=summary,
        formula=formula,
        gradient_formula=gradient_formula,
        check_params=check_params,
    )
    if not isinstance(replace, bool):
        raise ValueError(f"replace must be True or False, got {replace!r}")
    if name in LOSSES and not replace:
        raise ValueError(
            f"loss {name!r} is already registered ({origin_of(LOSSES[name].module)}); choose another name, or pass "
            "replace=True to replace it"
        )
    LOSSES[name] = loss
    return loss


def get_loss(name) -> Loss:
    """Look a loss up by name (a ``Loss`` is returned as is); an unknown name lists the valid ones."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(sorted(LOSSES))}") from None


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
    defaults={"k": 1.0, "M": 1.0},
    check_params=_check_square_params,
    summary="squared error on raw logits with rescaling (Hui & Belkin 2021)",
    formula="L = (1/K) [k (z_c - M)^2 + sum_{i != c} z_i^2]",
    gradient_formula="(2/K) w (z - M y), w_i = 1 + (k - 1) y_i",
)
register_loss(
    "focal",
    values=focal_values,
    grad=focal_grad,
    defaults={"gamma": 2.0},
    check_params=_check_gamma,
    summary="focal loss (Lin et al. 2017); gamma = 0 is cross-entropy",
    formula="L = -sum_i y_i (1 - p_i)^gamma log p_i",
    gradient_formula="a - p sum(a), a_i = -y_i (1 - p_i)^gamma (1 - gamma p_i log p_i / (1 - p_i))",
)
register_loss(
    "label_smoothing_cross_entropy",
    values=label_smoothing_cross_entropy_values,
    grad=label_smoothing_cross_entropy_grad,
    defaults={"epsilon": 0.1},
    check_params=_check_epsilon,
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
