"""The ``Loss`` type: a pair of per-example functions (values, logit gradient) with validation and reduction.

A ``Loss`` wraps a loss's pure functions (``values(z, y, **params)`` and optionally its closed-form
``grad``; the one-logit forms ``binary_values``/``binary_grad``) with input validation, the reduction
("mean" | "sum" | "none") and a first-use check of every output against the core's contract
(``check_output``). Without a closed form, ``autograd_gradient`` differentiates the values in one
batched reverse pass. The losses themselves and their registry are in ``losslab.core.losses``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from losslab.core.validation import (
    as_binary_targets,
    as_probability_targets,
    check_logits,
    check_reduction,
    non_finite,
    reduce,
    reduce_gradient,
)
from losslab.params import Param, check_values
from losslab.plugins import where_it_failed

LossFn = Callable[..., torch.Tensor]


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
    bad = non_finite(out)
    if bad is not None:
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
    params: tuple[Param, ...] = ()  # the declared parameters (constraint, default, meaning), each checked
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
        """Merge ``params`` into the defaults; unknown parameters, and values their declaration refuses, raise ValueError."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            valid = sorted(self.defaults) or "none"
            raise ValueError(f"loss {self.name!r} got unknown parameter(s) {unknown}; valid parameters: {valid}")
        resolved = {**self.defaults, **params}
        check_values({p.name: p for p in self.params}, resolved)
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
