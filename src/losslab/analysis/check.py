"""The battery every built-in loss passes, run on any loss: ``check_loss`` and ``losslab check-loss``.

Two kinds of rows:

- **checks** (PASS or FAIL; a FAIL makes ``exit_code`` 1): the values are computed per example, whatever
  the other examples in the batch; values and logit gradients are finite at logits of +-1e4 in float32 and
  float64; a closed-form gradient agrees with autograd of the values (float64).
- **findings** (always INFO, with ``holds`` True or False; they never change the exit code, because MSE and
  focal are legitimate losses that are neither proper through softmax nor convex): whether the loss composed
  with softmax is a strictly proper scoring rule; its dead zone; convexity in logit space.

A loss that breaks the core's contract outright (wrong output shape, a non-tensor, non-finite values at
ordinary logits, an exception) is bad input: ``check_loss`` raises a one-line ValueError (CLI exit 2).

    >>> from losslab import check_loss
    >>> result = check_loss("squentropy")
    >>> result.exit_code, result.row("proper").holds
    (0, False)

Everything runs in float64 except the float32 finiteness row.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from losslab import plugins
from losslab.analysis import landscape
from losslab.core import DEAD_EPSILON, Loss, autograd_gradient, get_loss, make_loss

DTYPE = torch.float64
EXTREME = 1e4
#: Closed form vs autograd: |closed - auto| <= GRAD_ATOL + GRAD_RTOL |auto| everywhere both are finite.
GRAD_RTOL, GRAD_ATOL = 1e-6, 1e-9
#: Strict propriety: the minimiser's probabilities lie within this of every target q (max norm).
PROPER_TOL = 1e-4
#: Convexity: smallest Hessian eigenvalue >= -CONVEX_TOL x max(1, largest |eigenvalue|).
CONVEX_TOL = 1e-9
PROPER_TARGETS = [
    [0.7, 0.2, 0.1],
    [0.5, 0.3, 0.2],
    [1 / 3, 1 / 3, 1 / 3],
    [0.9, 0.07, 0.03],
    [0.1, 0.25, 0.65],
]
PROPER_BINARY_TARGETS = [0.05, 0.3, 0.5, 0.8, 0.97]


@dataclass(frozen=True)
class CheckRow:
    """One row of the battery. ``decides_exit``: a FAIL here makes the exit code 1."""

    check: str  # short id: "per-example", "finite-float32", "gradient", "proper", "dead-zone", "convex"
    title: str
    status: str  # PASS, FAIL or INFO
    value: float | None
    detail: str
    decides_exit: bool
    holds: bool | None = None  # whether the row's property holds: passed; proper; has a dead zone; convex


@dataclass
class LossCheck:
    """The battery's result for one loss."""

    loss: str
    source: str
    params: dict
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(r.status == "FAIL" and r.decides_exit for r in self.rows) else 0

    def row(self, check: str) -> CheckRow:
        for r in self.rows:
            if r.check == check:
                return r
        raise KeyError(f"no row {check!r}; rows: {', '.join(r.check for r in self.rows)}")

    def as_dict(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "loss": self.loss,
            "source": self.source,
            "params": self.params,
            "exit_code": self.exit_code,
            "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)


# --- resolving what the user gave -----------------------------------------------------------------


def _name_for(fn: Callable) -> str:
    name = getattr(fn, "__name__", "user_loss")
    return name if plugins.NAME_PATTERN.fullmatch(name) else "user_loss"


def _callable_from(ref, what: str) -> tuple[Callable, str]:
    if isinstance(ref, str):
        fn, plugin = plugins.resolve_callable(ref)
        return fn, plugin.source
    if not callable(ref):
        raise ValueError(f"{what} must be a function, a MODULE:FUNCTION string or a loss name, got {ref!r}")
    return ref, plugins.origin_of(getattr(ref, "__module__", None))


def resolve_loss(loss, grad=None, binary: bool = False) -> tuple[Loss, str]:
    """Turn a loss name, ``Loss``, function or ``MODULE:FUNCTION`` string (and an optional gradient) into a Loss.

    Returns (loss, where it came from). A function becomes an unregistered loss named after it; with
    ``binary`` it is the one-logit form (z, y of shape [batch]).
    """
    if isinstance(loss, str) and ":" not in loss:
        found = get_loss(loss)
        source = plugins.origin_of(found.module)
    elif isinstance(loss, Loss):
        found, source = loss, plugins.origin_of(loss.module)
    else:
        obj, source = _callable_from(loss, "loss")
        if isinstance(obj, Loss):
            found = obj
        else:
            key = "binary_values" if binary else "values"
            found = make_loss(_name_for(obj), **{key: obj})
    if grad is not None:
        grad_fn, _ = _callable_from(grad, "grad")
        binary_form = binary or not found.accepts_multiclass
        found = make_loss(
            found.name,
            values=found.values,
            grad=None if binary_form else grad_fn,
            binary_values=found.binary_values,
            binary_grad=grad_fn if binary_form else found.binary_grad,
            params=found.params,
            defaults=found.defaults,
            summary=found.summary,
            formula=found.formula,
            check_params=found.check_params,
        )
    return found, source


# --- the checks -------------------------------------------------------------------------------------


def _extreme_inputs(binary: bool, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    if binary:
        z = torch.tensor([EXTREME, -EXTREME, EXTREME, -EXTREME, EXTREME, -EXTREME], dtype=dtype)
        y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.3], dtype=dtype)
        return z, y
    e = EXTREME
    z = torch.tensor(
        [[e, -e, 0.0], [-e, e, e], [e, e, e], [-e, -e, -e], [e, -e, 0.0], [-e, 0.0, e]],
        dtype=dtype,
    )
    y = torch.tensor(
        [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]],
        dtype=dtype,
    )
    return z, y


def _random_inputs(gen, binary: bool, batch: int = 16, k: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    cases = []
    for scale in (0.1, 3.0, 30.0):
        if binary:
            z = torch.randn(batch, generator=gen, dtype=DTYPE) * scale
            cases.append((z, torch.randint(0, 2, (batch,), generator=gen).to(DTYPE)))
            cases.append((z, torch.rand(batch, generator=gen, dtype=DTYPE)))
        else:
            z = torch.randn(batch, k, generator=gen, dtype=DTYPE) * scale
            hard = torch.nn.functional.one_hot(torch.randint(0, k, (batch,), generator=gen), k).to(DTYPE)
            soft = torch.softmax(torch.randn(batch, k, generator=gen, dtype=DTYPE) * 2, -1)
            cases += [(z, hard), (z, soft)]
    return cases


def _form(binary: bool) -> str:
    return " (one logit)" if binary else ""


def _first_use(loss: Loss, params: dict, binary: bool) -> None:
    """The contract at ordinary logits: anything wrong here is bad input, raised as a one-line ValueError."""
    gen = torch.Generator().manual_seed(12345)
    z, y = _random_inputs(gen, binary, batch=6, k=4)[2]
    loss.values_fn(binary)(z, y, **params)
    loss.logit_gradient_fn(binary)(z, y, **params)


def _per_example_row(loss: Loss, params: dict, binary: bool) -> CheckRow:
    gen = torch.Generator().manual_seed(7)
    shape = (2, 6) if binary else (2, 6, 4)
    z = torch.randn(*shape, generator=gen, dtype=DTYPE) * 2
    y = (
        torch.rand(*shape, generator=gen, dtype=DTYPE)
        if binary
        else torch.softmax(torch.randn(*shape, generator=gen, dtype=DTYPE), -1)
    )
    values = loss.raw_values_fn(binary)
    title = "values per example, any leading dims" + _form(binary)
    check = "per-example" + ("-binary" if binary else "")
    try:
        full = values(z, y, **params)  # [members, batch]
        perm = torch.randperm(6, generator=gen)
        parts = [
            (values(z[0], y[0], **params), full[0]),
            (values(z[:, :1], y[:, :1], **params), full[:, :1]),
            (values(z[:, perm], y[:, perm], **params), full[:, perm]),
        ]
        diff = max(float((a - b).abs().max()) for a, b in parts)
        scale = float(full.abs().max()) or 1.0
    except Exception as exc:  # noqa: BLE001 - a loss that breaks on [members, batch, K] input fails this row
        return CheckRow(check, title, "FAIL", None, f"{type(exc).__name__}: {exc}".splitlines()[0][:200], True, False)
    ok = diff <= 1e-12 * max(1.0, scale)
    detail = (
        "an example's value is the same alone, in a sub-batch, permuted and under a member axis"
        if ok
        else "an example's value depends on the other examples (it averages or normalises over the batch): "
        "compute each example's loss from its own row only"
    )
    return CheckRow(check, title, "PASS" if ok else "FAIL", diff, detail, True, ok)


def _finite_row(loss: Loss, params: dict, binary: bool, dtype) -> CheckRow:
    z, y = _extreme_inputs(binary, dtype)
    dname = str(dtype).removeprefix("torch.")
    title = f"finite at logits +-1e4, {dname}" + _form(binary)
    gradient = "closed-form" if loss.has_closed_form(binary) else "autograd"
    try:
        v = loss.raw_values_fn(binary)(z, y, **params)
        g = loss.raw_gradient_fn(binary)(z, y, **params)
    except Exception as exc:  # noqa: BLE001
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return CheckRow(f"finite-{dname}{'-binary' if binary else ''}", title, "FAIL", None, message, True, False)
    bad_v = int((~torch.isfinite(v)).sum())
    bad_g = int((~torch.isfinite(g)).sum())
    ok = bad_v == 0 and bad_g == 0
    detail = f"{bad_v} non-finite of {v.numel()} values, {bad_g} of {g.numel()} {gradient} gradient entries" + (
        "" if ok else "; compute in log space (log_softmax, logsumexp, logsigmoid) to survive large logits"
    )
    check = f"finite-{dname}{'-binary' if binary else ''}"
    return CheckRow(check, title, "PASS" if ok else "FAIL", float(bad_v + bad_g), detail, True, ok)


def _gradient_row(loss: Loss, params: dict, binary: bool) -> CheckRow:
    check = "gradient" + ("-binary" if binary else "")
    title = "closed-form gradient = autograd, float64" + _form(binary)
    if not loss.has_closed_form(binary):
        return CheckRow(check, title, "INFO", None, "no closed form given: autograd of the values is used", False)
    closed_fn = loss.raw_gradient_fn(binary)
    auto_fn = _autograd(loss, binary)
    gen = torch.Generator().manual_seed(3)
    cases = _random_inputs(gen, binary) + [_extreme_inputs(binary, DTYPE)]
    worst, bad, skipped, compared = 0.0, 0, 0, 0
    try:
        for z, y in cases:
            closed, auto = closed_fn(z, y, **params), auto_fn(z, y, **params)
            both = torch.isfinite(closed) & torch.isfinite(auto)
            skipped += int((~torch.isfinite(auto)).sum())
            bad += int((torch.isfinite(auto) & ~torch.isfinite(closed)).sum())
            diff = (closed - auto).abs()[both]
            tol = GRAD_ATOL + GRAD_RTOL * auto.abs()[both]
            compared += int(both.sum())
            bad += int((diff > tol).sum())
            if diff.numel():
                worst = max(worst, float(diff.max()))
    except Exception as exc:  # noqa: BLE001
        return CheckRow(check, title, "FAIL", None, f"{type(exc).__name__}: {exc}".splitlines()[0][:200], True, False)
    ok = bad == 0
    detail = f"max |closed - autograd| = {worst:.3g} over {compared} entries (random and +-1e4 logits)"
    if skipped:
        detail += f"; {skipped} entries skipped where autograd itself is not finite"
    if not ok:
        detail += f"; {bad} entries disagree beyond {GRAD_RTOL:g} relative: the closed form is wrong"
    return CheckRow(check, title, "PASS" if ok else "FAIL", worst, detail, True, ok)


def _autograd(loss: Loss, binary: bool):
    return autograd_gradient(loss.raw_values_fn(binary), loss.name)


def _expected_loss(loss: Loss, params: dict, q: torch.Tensor, binary: bool):
    """R(z) = sum_i q_i L(z, e_i) for P problems at once: q [P, K] (binary: [P], the probability of y = 1).

    Returns f(z [P, K] or [P]) -> R [P]: one call of the loss's values for every problem.
    """
    values = loss.raw_values_fn(binary)
    if binary:
        weights = torch.stack([q, 1 - q], -1)  # [P, 2]: y = 1, y = 0
        y = torch.tensor([1.0, 0.0], dtype=DTYPE)
    else:
        weights = q
        y = torch.eye(q.shape[-1], dtype=DTYPE)

    def expected(z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1] if not binary else z.shape
        if binary:
            zz = z.unsqueeze(-1).expand(*lead, 2).contiguous()
            yy = y.expand(*lead, 2).contiguous()
        else:
            k = z.shape[-1]
            zz = z.unsqueeze(-2).expand(*lead, k, k).contiguous()  # every class as the label, same logits
            yy = y.expand(*lead, k, k).contiguous()
        return (weights.reshape(weights.shape[0], *[1] * (len(lead) - 1), -1) * values(zz, yy, **params)).sum(-1)

    return expected


def _proper_row(loss: Loss, params: dict, binary: bool) -> CheckRow:
    title = "strictly proper composed with " + ("sigmoid" if binary else "softmax")
    targets = torch.tensor(PROPER_BINARY_TARGETS if binary else PROPER_TARGETS, dtype=DTYPE)
    n_starts = 4
    gen = torch.Generator().manual_seed(0)
    # Where softmax(z) = q (sigmoid: z = logit q); the starts: 0, near it, and two random points.
    at_q = torch.log(targets / (1 - targets)) if binary else torch.log(targets)
    starts = torch.stack(
        [
            torch.zeros_like(at_q),
            at_q + torch.randn(at_q.shape, generator=gen, dtype=DTYPE),
            2 * torch.randn(at_q.shape, generator=gen, dtype=DTYPE),
            2 * torch.randn(at_q.shape, generator=gen, dtype=DTYPE),
        ],
        1,
    )  # [T, starts, (K)]
    problems = targets.repeat_interleave(n_starts, 0)  # [T * starts, (K)]
    expected = _expected_loss(loss, params, problems, binary)
    shape = (problems.shape[0],) if binary else tuple(problems.shape)

    def solve(function, shape, x0):
        """Trust-region Newton (exact Hessian by double autograd; K is small). A line-search method can
        leap along a ray onto a plateau of a saturating loss (MSE) and stop there with a zero gradient;
        a trust region moves at most its radius per step."""
        cache = {}

        def derivatives(x):
            key = x.tobytes()
            if key not in cache:
                cache.clear()
                with torch.enable_grad():
                    z = torch.tensor(x, dtype=DTYPE).reshape(shape).requires_grad_(True)
                    total = function(z).sum()
                    (g,) = torch.autograd.grad(total, z, create_graph=True)
                    g = g.reshape(-1)
                    rows = [torch.autograd.grad(g[i], z, retain_graph=True)[0].reshape(-1) for i in range(g.numel())]
                cache[key] = (float(total.detach()), g.detach().numpy(), torch.stack(rows).detach().numpy())
            return cache[key]

        res = minimize(
            lambda x: derivatives(x)[0],
            x0,
            jac=lambda x: derivatives(x)[1],
            hess=lambda x: derivatives(x)[2],
            method="trust-exact",
            options={"gtol": 1e-10, "maxiter": 500, "initial_trust_radius": 1.0, "max_trust_radius": 10.0},
        )
        return res.x

    try:
        # One small problem per (q, start): a joint problem over all of them stops when the total stops
        # improving, which can leave one of them (MSE, on a plateau) far from its minimum.
        solved = [
            solve(_expected_loss(loss, params, problems[i : i + 1], binary), (1, *shape[1:]), x0)
            for i, x0 in enumerate(starts.reshape(problems.shape[0], -1).numpy())
        ]
        with torch.no_grad():
            z = torch.tensor(np.stack(solved), dtype=DTYPE).reshape(shape)
            p = torch.sigmoid(z) if binary else torch.softmax(z, -1)
            gap = (p - problems).abs().reshape(len(targets), n_starts, -1).amax(dim=(1, 2))  # [T]
            gap = torch.where(torch.isfinite(gap), gap, torch.full_like(gap, math.inf))
            best = expected(z).reshape(len(targets), n_starts).amin(1)
            # The fairest z with softmax(z) = q: log q shifted by the best constant (z is not shift-invariant
            # for every loss), found on a grid of shifts; a sigmoid has one such z.
            shifts = torch.zeros(1, dtype=DTYPE) if binary else torch.linspace(-30, 30, 1201, dtype=DTYPE)
            on_q = at_q.unsqueeze(1) + (shifts.reshape(1, -1) if binary else shifts.reshape(1, -1, 1))
            at_best_q = _expected_loss(loss, params, targets, binary)(on_q).amin(1)
    except Exception as exc:  # noqa: BLE001
        return CheckRow(
            "proper", title, "INFO", None, f"not computed: {type(exc).__name__}: {exc}".splitlines()[0][:200], False
        )
    worst = int(gap.argmax())
    worst_gap = float(gap[worst])
    excess = float((at_best_q - best).max())
    holds = worst_gap < PROPER_TOL
    shown = ", ".join(f"{v:.2f}" for v in targets[worst].reshape(-1).tolist())
    what = "sigmoid" if binary else "softmax"
    detail = f"max |{what}(z*) - q| = {worst_gap:.3g} over {len(targets)} targets q x {n_starts} starts"
    if not holds:
        detail += f" (worst q = [{shown}]): the expected loss is not minimised at {what}(z) = q"
        if excess > 1e-9:
            detail += f"; its minimum is {excess:.3g} below the best z with {what}(z) = q"
    return CheckRow("proper", title, "INFO", worst_gap, detail, False, holds)


def _dead_zone_row(loss: Loss, params: dict, binary: bool) -> CheckRow:
    k = None if binary else 10
    title = f"dead zone: wrong and |dL/dz| < {DEAD_EPSILON:g}, " + ("one logit" if binary else "K = 10")
    try:
        zone = landscape.dead_zone(loss, DEAD_EPSILON, num_classes=k, loss_params=params)
    except Exception as exc:  # noqa: BLE001
        return CheckRow(
            "dead-zone", title, "INFO", None, f"not computed: {type(exc).__name__}: {exc}".splitlines()[0][:200], False
        )
    dead = zone.measure > 0.0
    if not dead:
        detail = f"no wrongly classified margin in [{zone.lower:g}, 0) has gradient < {DEAD_EPSILON:g}"
    elif zone.threshold is not None:
        detail = (
            f"every margin below {zone.threshold:.2f} is dead ({zone.measure:.1f} of the {-zone.lower:g} units of "
            f"[{zone.lower:g}, 0))"
        )
    else:
        detail = f"{zone.measure:.1f} of the {-zone.lower:g} units of [{zone.lower:g}, 0) are dead"
    return CheckRow("dead-zone", title, "INFO", zone.measure, detail, False, dead)


def _convex_row(loss: Loss, params: dict, binary: bool) -> CheckRow:
    title = "convex in logit space (smallest Hessian eigenvalue)" + ("" if binary else ", K = 3")
    gen = torch.Generator().manual_seed(11)
    try:
        if binary:
            z = torch.linspace(-20, 20, 401, dtype=DTYPE).repeat(2)
            y = torch.cat([torch.ones(401, dtype=DTYPE), torch.zeros(401, dtype=DTYPE)])
            eig = landscape.hessians(loss, z, y, binary=True, **params).unsqueeze(-1)
        else:
            margins = torch.linspace(-10, 10, 41, dtype=DTYPE)
            parts = [landscape.margin_logits(margins.numpy(), 3)]
            labels = [torch.zeros(41, dtype=torch.long)]
            for scale in (1.0, 3.0, 10.0):
                parts.append(torch.randn(40, 3, generator=gen, dtype=DTYPE) * scale)
                labels.append(torch.randint(0, 3, (40,), generator=gen))
            z = torch.cat(parts)
            y = torch.nn.functional.one_hot(torch.cat(labels), 3).to(DTYPE)
            soft = torch.softmax(torch.randn(40, 3, generator=gen, dtype=DTYPE), -1)
            z = torch.cat([z, parts[2]])
            y = torch.cat([y, soft])
            h = landscape.hessians(loss, z, y, **params)
            eig = torch.linalg.eigvalsh((h + h.transpose(-1, -2)) / 2)
    except Exception as exc:  # noqa: BLE001
        return CheckRow(
            "convex", title, "INFO", None, f"not computed: {type(exc).__name__}: {exc}".splitlines()[0][:200], False
        )
    finite = torch.isfinite(eig).all(dim=-1)
    eig = eig[finite]
    smallest = float(eig.min()) if eig.numel() else math.nan
    largest = float(eig.abs().max()) if eig.numel() else math.nan
    holds = bool(eig.numel()) and smallest >= -CONVEX_TOL * max(1.0, largest)
    detail = f"smallest eigenvalue {smallest:.3g} over {int(finite.sum())} sampled logits" + (
        "" if binary else " (margin path, random logits, hard and soft targets)"
    )
    if not holds:
        detail += ": not convex"
    return CheckRow("convex", title, "INFO", smallest, detail, False, holds)


def check_loss(loss, *, grad=None, params: dict | None = None, binary: bool = False) -> LossCheck:
    """Run the battery on ``loss``: a registered name, a ``Loss``, a function ``f(z, y, **params)`` or a
    ``"MODULE:FUNCTION"`` / ``"path/file.py:FUNCTION"`` string; ``grad`` the same for its closed-form gradient.

    ``params`` override the loss's defaults; ``binary`` says a bare function is the one-logit form.
    Returns a ``LossCheck`` (``exit_code``: 1 if a check fails, findings never count). A loss that
    breaks the contract at ordinary logits raises ValueError.
    """
    found, source = resolve_loss(loss, grad, binary)
    resolved = found.resolve_params(params)
    forms = [b for b in (False, True) if (found.accepts_binary if b else found.accepts_multiclass)]
    for b in forms:
        _first_use(found, resolved, b)
    threads = torch.get_num_threads()
    # Every tensor here has a few dozen entries: intra-op threads only add synchronisation (100x slower
    # per operation on a busy machine), so the battery runs on one thread and restores the setting.
    torch.set_num_threads(1)
    try:
        return _battery(found, source, resolved, forms)
    finally:
        torch.set_num_threads(threads)


def _battery(found: Loss, source: str, resolved: dict, forms: list[bool]) -> LossCheck:
    result = LossCheck(found.name, source, resolved)
    for b in forms:
        result.rows.append(_per_example_row(found, resolved, b))
        result.rows.append(_finite_row(found, resolved, b, torch.float32))
        result.rows.append(_finite_row(found, resolved, b, torch.float64))
        result.rows.append(_gradient_row(found, resolved, b))
    primary = forms[0]  # the multiclass form where there is one
    result.rows.append(_proper_row(found, resolved, primary))
    result.rows.append(_dead_zone_row(found, resolved, primary))
    result.rows.append(_convex_row(found, resolved, primary))
    return result


def print_loss_check(result: LossCheck, console=None) -> None:
    """The battery as a rich table, then what decides the exit code."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # The terminal's width (or $COLUMNS); piped into a file or a pager, wide enough not to break a row's text.
    console = console or Console(width=shutil.get_terminal_size((200, 24)).columns)
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    table = Table(
        title=escape(f"check-loss {result.loss}" + (f" ({params})" if params else "") + f"  from {result.source}")
    )
    table.add_column("check")
    table.add_column("status")
    table.add_column("value", justify="right")
    table.add_column("result")
    colours = {"PASS": "green", "FAIL": "bold red", "INFO": "cyan"}
    for row in result.rows:
        status = row.status
        if row.holds is not None and not row.decides_exit:
            status = f"INFO ({'yes' if row.holds else 'no'})"
        value = "" if row.value is None else f"{row.value:.3g}"
        table.add_row(escape(row.title), f"[{colours[row.status]}]{status}[/]", value, escape(row.detail))
    console.print(table)
    failed = [r.title for r in result.rows if r.status == "FAIL" and r.decides_exit]
    console.print(
        "Checks (PASS/FAIL) decide the exit code: values per example, finite at +-1e4, gradient agreement. "
        "Findings (INFO: proper, dead zone, convex) are properties, not errors, and never change it."
    )
    console.print(
        f"exit code {result.exit_code}: " + ("all checks pass" if not failed else "failed: " + "; ".join(failed))
    )
