"""The claims ledger: a verdict for each claim of the article, computed from the measurements.

Each claim is declared (``verdicts.declare``) with the rule that decides it, the docstring of its function,
which the report prints beside the verdict. Three sources decide them: the exact gradient analysis
(``losslab.analysis`` and the link functions of ``losslab.core``: C1, C3), the equation ledger (``losslab
verify``: C2, C6, C7, C10, C11, C12) and the experiments (C4, C5), read by the *role* of their grids, never by a
grid's label, through the same grid summaries the report shows (``losslab.report.grids``: each loss at its
rate chosen on validation, intervals over seeds and test examples). Nothing is written in: with other
measurements, other verdicts, and every rule can come out each way (the tests build results for each outcome).
The experiment rules' error rates are measured by simulation at the design they judge (``report.audit``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from losslab.analysis import landscape
from losslab.core import DEAD_EPSILON, sigmoid, sigmoid_grad, softmax, softmax_jacobian
from losslab.i18n import Message
from losslab.report import audit as A
from losslab.report import decide as D
from losslab.report import stats
from losslab.report.verdicts import (
    MIN_SEEDS,
    RULE_CONSTANTS,
    Claim,
    Evidence,
    cell_name,
    chosen_word,
    decide,
    declare,
    guard,
    seed_shortfall,
)

DEAD_THRESHOLD = 0.10  # a cell tests C4/C5 if at least this fraction of training examples start dead under MSE
CE_COLLAPSE = 0.10  # cross-entropy "still trains" at a scale if within 10 points of its normal-start accuracy
SATURATION_RANGE = (10.0, 50.0)  # C1: |logit| (sigmoid) and rival lead (softmax, K = 10) checked for saturation
#: The effect the stall rule's power is measured at: cross-entropy's odds of being right three times MSE's
#: (95% against 86%, or 75% against 50%): a stall as Nielsen (2015, ch. 3) describes one, a quadratic-cost
#: neuron stuck for hundreds of epochs, not a nuance.
STALL_EFFECT = 3.0
RULE_CONSTANTS.update(
    dead_threshold=f"{100 * DEAD_THRESHOLD:.0f}%",
    ce_collapse=f"{100 * CE_COLLAPSE:.0f}",
    stall_effect=f"{STALL_EFFECT:g}",
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_text(i: stats.Interval) -> str:
    return i.format(100, 1, "%")


def points(i: stats.Interval, digits: int = 1) -> str:
    """A difference in percentage points, '5.0 pt [4.0, 6.0] (n = 6)', with the unit a catalogue word."""
    text = i.format(100, digits, "\0")
    if "\0" not in text:
        return Message("word.na") if text == "n/a" else text
    value, _, rest = text.partition("\0")
    return Message("unit.pt", value=value, rest=rest)


def effect_text(effect: stats.Effect, margin: float, accuracy: float) -> Message:
    """'odds ratio 2.41 [1.52, 3.81]; margin 1.25 (97.8% to 98.5% around 98.2%)': an effect and its margin."""
    if not math.isfinite(effect.estimate):
        return Message("word.na")
    low, high = D.margin_points(margin, accuracy)
    interval = (
        Message("effect.interval", low=f"{math.exp(effect.low):.3g}", high=f"{math.exp(effect.high):.3g}")
        if effect.has_interval
        else ""
    )
    around = (
        Message("effect.around", low=_pct(low), high=_pct(high), accuracy=_pct(accuracy))
        if math.isfinite(low) and margin > 1  # a margin of 1 (any difference) has no band to show
        else ""
    )
    return Message(
        "effect.text",
        odds=f"{math.exp(effect.estimate):.3g}",
        interval=interval,
        margin=f"{margin:g}",
        around=around,
        sampling=Message("effect.two_way" if effect.test_sampling else "effect.seeds_only"),
    )


# --- claims decided by the analysis ------------------------------------------------------------------------


def _flat_from(x: np.ndarray, values: np.ndarray, epsilon: float) -> float:
    """The smallest grid x from which ``values`` stay below epsilon up to the end of the grid (inf: never)."""
    below = values < epsilon
    if not below[-1]:
        return math.inf
    live = np.nonzero(~below)[0]
    return float(x[0] if live.size == 0 else x[live[-1] + 1])


@declare("C1", order=1, figures=("sigmoid", "gradient-norm"))
def claim_c1(ev: Evidence) -> Claim:
    """Supported if all three hold, measured in float64 on losslab's own link functions; not supported otherwise.
    (a) Outputs are probabilities: sigmoid(z) and softmax(z) lie in [0, 1], and softmax rows sum to 1 within
    1e-12, for logits up to +-1e4. (b) The sigmoid saturates: sigmoid'(x) < epsilon at every x with
    10 <= |x| <= 50 (2,001 points per side). (c) The softmax saturates: with K = 10 and a rival class
    m logits ahead of the others, the Frobenius norm of the softmax Jacobian, and the MSE logit gradient
    J^T (p - y) it produces, are < epsilon for every m in [10, 50]. epsilon: the runs' dead-zone threshold
    (dead_epsilon; 1e-3 by default). The range starts at 10, the smallest confidently wrong logit scale of
    the saturation experiment."""
    eps = ev.dead_epsilon()
    lo, hi = SATURATION_RANGE
    z = torch.tensor([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4], dtype=torch.float64)
    zk = torch.stack([z, -z, z / 2, torch.zeros_like(z)], dim=-1)
    p, s = sigmoid(z), softmax(zk)
    outputs_ok = bool(
        ((p >= 0) & (p <= 1)).all() and ((s >= 0) & (s <= 1)).all() and ((s.sum(-1) - 1).abs() <= 1e-12).all()
    )
    x = np.linspace(lo, hi, 2001)
    d_pos = sigmoid_grad(torch.from_numpy(x)).numpy()
    d_neg = sigmoid_grad(torch.from_numpy(-x)).numpy()
    sigmoid_max = float(max(d_pos.max(), d_neg.max()))
    logits = landscape.margin_logits(-x, 10)
    jacobian = softmax_jacobian(logits).flatten(-2).norm(dim=-1).numpy()
    grad = landscape.gradient_norm_vs_margin("mse", -x, 10)
    softmax_max = float(max(jacobian.max(), grad.max()))
    ok = outputs_ok and sigmoid_max < eps and softmax_max < eps
    grid = np.linspace(0.0, hi, 5001)
    sig_from = _flat_from(grid, sigmoid_grad(torch.from_numpy(grid)).numpy(), eps)
    jac_from = _flat_from(
        grid, softmax_jacobian(landscape.margin_logits(-grid, 10)).flatten(-2).norm(dim=-1).numpy(), eps
    )
    return Claim(
        "C1",
        Message("claim.C1.title"),
        "supported" if ok else "not supported",
        [
            Message("claim.C1.outputs", answer=Message("word.yes" if outputs_ok else "word.NO")),
            *(
                Message(
                    f"claim.C1.{link}",
                    lo=f"{lo:g}",
                    hi=f"{hi:g}",
                    largest=f"{largest:.1e}",
                    threshold=f"{eps:g}",
                    flat_from=f"{flat_from:.2f}",
                )
                for link, largest, flat_from in (("sigmoid", sigmoid_max, sig_from), ("softmax", softmax_max, jac_from))
            ),
        ],
        figures=["sigmoid", "gradient-norm"],
        basis="analysis",
    )


def _sigmoid_flat_threshold(epsilon: float) -> float:
    """|x| beyond which sigmoid'(x) < epsilon, by derivation: s (1 - s) = epsilon has the small root
    s = (1 - sqrt(1 - 4 epsilon)) / 2, and x = -log(s / (1 - s))."""
    s = (1 - math.sqrt(1 - 4 * epsilon)) / 2
    return -math.log(s / (1 - s))


@declare("C3", order=3, figures=("sigmoid", "binary-gradient"), helpers=(_sigmoid_flat_threshold,))
def claim_c3(ev: Evidence) -> Claim:
    """Supported if the measured sigmoid derivative (losslab.core.sigmoid_grad, float64, 20,001 points on
    [-50, 50]) is below epsilon on one interval at each end of the range, each end's interval at least as
    long as the live interval around 0 where the derivative is >= epsilon ("wide ranges on both sides"), and
    the measured boundaries agree with the derived one (below) within one grid step. Not supported otherwise.
    epsilon: the runs' dead-zone threshold (dead_epsilon; 1e-3 by default)."""
    eps = ev.dead_epsilon()
    x = np.linspace(-50.0, 50.0, 20001)
    step = x[1] - x[0]
    below = sigmoid_grad(torch.from_numpy(x)).numpy() < eps
    exact = _sigmoid_flat_threshold(eps)
    live = np.nonzero(~below)[0]
    if live.size == 0 or below.all():
        ok, left, right, measured = False, 0.0, 0.0, (math.nan, math.nan)
    else:
        first, last = live[0], live[-1]
        one_live_interval = not below[first : last + 1].any()
        left, right = x[first] - x[0], x[-1] - x[last]  # lengths of the flat ends
        measured = (float(x[first]), float(x[last]))
        width = measured[1] - measured[0]
        ok = (
            one_live_interval
            and min(left, right) >= width
            and abs(-measured[0] - exact) <= step
            and abs(measured[1] - exact) <= step
        )
    fraction = 1 - (~below).mean()
    binary_mse = landscape.dead_zone("mse", epsilon=eps)
    bce = landscape.dead_zone("binary_cross_entropy", epsilon=eps)
    evidence = [
        Message(
            "claim.C3.measured",
            threshold=f"{eps:g}",
            left_end=f"{measured[0]:.2f}",
            right_end=f"{measured[1]:.2f}",
            fraction=_pct(fraction),
            left=f"{left:.1f}",
            right=f"{right:.1f}",
            middle=f"{measured[1] - measured[0]:.1f}",
            derived=f"{exact:.3f}",
        ),
        Message("claim.C3.dead_zones", mse=binary_mse.describe(), bce=bce.describe()),
    ]
    return Claim(
        "C3",
        Message("claim.C3.title"),
        "supported" if ok else "not supported",
        evidence,
        figures=["sigmoid", "binary-gradient"],
        basis="analysis",
    )


# --- claims decided by the equation ledger -----------------------------------------------------------------


def _ledger_claim(
    ev: Evidence,
    claim_id: str,
    title: str,
    equations: set[str],
    evidence: str,
    when_holds: str = "supported",
    caveat: str = "",
    figures: tuple[str, ...] = (),
) -> Claim:
    """A claim decided by equation-ledger rows is supported (with caveat where the text above says so)
    if every listed row holds, is an erratum (the corrected form holds) or is a transcription (its
    mathematics holds); not supported otherwise."""
    ok, err = ev.ledger_status(equations)
    return Claim(
        claim_id,
        title,
        when_holds if ok else "not supported",
        [Message(evidence, err=f"{err:.1e}")],
        caveat,
        list(figures),
        basis="equation ledger",
    )


def _declare_ledger_claim(claim_id: str, equations: set[str], rule: str, caveat: bool = False, figures=()) -> None:
    """Declare the claim ``claim_id`` decided by ``_ledger_claim`` on ``equations``; ``rule``: its printed rule (the
    function's docstring, which the catalogues translate under ``rule.claim_<id>``); ``caveat``: 'supported with
    caveat' when they hold, the caveat being the catalogue's ``claim.<id>.caveat``."""

    def decide(ev: Evidence) -> Claim:
        return _ledger_claim(
            ev,
            claim_id,
            Message(f"claim.{claim_id}.title"),
            equations,
            f"claim.{claim_id}.evidence",
            when_holds="supported with caveat" if caveat else "supported",
            caveat=Message(f"claim.{claim_id}.caveat") if caveat else "",
            figures=figures,
        )

    decide.__name__ = decide.__qualname__ = f"claim_{claim_id.lower()}"
    decide.__doc__ = rule
    globals()[decide.__name__] = declare(claim_id, order=int(claim_id[1:]), figures=figures, helpers=(_ledger_claim,))(
        decide
    )


_declare_ledger_claim(
    "C2",
    {"1", "2", "3", "4"},
    """Equation-ledger rows 1-4 (sympy and float64 checks of the sigmoid and its derivative).""",
    figures=("sigmoid",),
)
_declare_ledger_claim(
    "C6",
    {"26", "27", "28", "29", "30", "31"},
    """Equation-ledger rows 26-31; 'supported with caveat' because the caveat below is a derivation:
    the identity is a Gaussian likelihood, not a prior.""",
    caveat=True,
)
_declare_ledger_claim(
    "C7",
    {"5", "8", "19", "25"},
    """Equation-ledger rows 5, 8, 19 and 25 (Bernoulli and multinomial likelihoods against scipy.stats).""",
)
_declare_ledger_claim(
    "C10",
    {"19", "20", "21", "22", "23", "24", "25"},
    """Equation-ledger rows 19-25 (the multinomial log-likelihood, its maximiser by sympy, the CE identity).""",
)


@declare("C11", order=11, roles=("loss-comparison",))
def claim_c11(ev: Evidence) -> Claim:
    """Equation-ledger row 31: 'supported with caveat' if it holds (the caveat is a derivation: the K outputs
    sum to 1, so they cannot be independent Gaussians), not supported otherwise. The comparison rows only
    add numbers (each loss at its learning rate chosen on validation); they do not decide this verdict."""
    ok, err = ev.ledger_status({"31"})
    evidence = [Message("claim.C11.identity", err=f"{err:.1e}")]
    grids = ev.role_grids("loss-comparison")
    several = len({g.spec for g in grids}) > 1
    for grid in grids:
        for condition in grid.conditions:
            m, c = condition.arm("mse"), condition.arm("cross_entropy")
            if m is None or c is None or not (m.members and c.members):
                continue
            evidence.append(
                Message(
                    "claim.C11.cell",
                    cell=cell_name(grid, condition, several),
                    chosen_on=chosen_word(m.choice.chosen_on),
                    acc_mse=accuracy_text(m.accuracy),
                    acc_ce=accuracy_text(c.accuracy),
                    nll_mse=f"{m.metrics['test_nll'].mean:.3f}",
                    nll_ce=f"{c.metrics['test_nll'].mean:.3f}",
                    ece_mse=f"{m.metrics['test_ece'].mean:.3f}",
                    ece_ce=f"{c.metrics['test_ece'].mean:.3f}",
                )
            )
    return Claim(
        "C11",
        Message("claim.C11.title"),
        "supported with caveat" if ok else "not supported",
        evidence,
        caveat=Message("claim.C11.caveat"),
        basis="equation ledger",
    )


@declare("C12", order=12)
def claim_c12(ev: Evidence) -> Claim:
    """Always 'not tested': losslab runs no regression data."""
    return Claim(
        "C12",
        Message("claim.C12.title"),
        "not tested",
        [Message("claim.C12.evidence")],
        basis="none",
    )


# --- claims decided by the experiments: the stall rule -----------------------------------------------------


def _dead_at_start(grid, cell: str, scale: float, loss: str) -> float:
    """Mean fraction of training examples dead at step 0 (wrong with |dL/dz| < dead_epsilon) for one loss."""
    rows = grid.rows
    start = rows[
        (rows["phase"] == "main")
        & (rows["step"] == 0)
        & (rows["cell"] == cell)
        & (rows["init_scale"] == scale)
        & (rows["loss_label"] == loss)
    ]
    return float(start["dead_fraction"].mean()) if len(start) else math.nan


def _mean_at_start(grid, cell: str, scale: float, loss: str, column: str) -> float:
    rows = grid.rows
    start = rows[(rows["phase"] == "main") & (rows["step"] == 0) & (rows["cell"] == cell)]
    start = start[(start["init_scale"] == scale) & (start["loss_label"] == loss)]
    return float(start[column].mean()) if len(start) else math.nan


def _reached(grid, cell: str, scale: float, loss: str, target: float) -> str:
    rows = grid.rows
    members = rows[
        (rows["phase"] == "main")
        & (rows["cell"] == cell)
        & (rows["init_scale"] == scale)
        & (rows["loss_label"] == loss)
    ]
    hit = members[members["test_accuracy"] >= target].groupby("member")["step"].min()
    return f"{len(hit)}/{members['member'].nunique()}"


def stall_audit(claim_id: str, designs: list[A.Design], bounds: list[float], examples=None) -> A.Audit:
    """The stall rule simulated over its testable cells: false when the effect is exactly each cell's log margin,
    holding with cross-entropy's odds STALL_EFFECT times MSE's (the rule and the tests run this same audit)."""
    return A.audit(
        claim_id,
        designs,
        [A.beyond_rule(b) for b in bounds],
        bounds,
        [math.log(STALL_EFFECT)] * len(designs),
        Message("audit.boundary_margin"),
        Message("audit.effect_odds", odds=f"{STALL_EFFECT:g}"),
        examples,
    )


def _stall_verdict(ev: Evidence, claim_id: str, role: str, mse: str, ce: str) -> tuple[str, list, str, A.Audit | None]:
    """The stall rule (claims C4 and C5), per cell (one dataset and model) of the grids with the claim's role:
    1. Compare CE and MSE at the largest initial logit scale at which cross-entropy itself still trains (its
       mean final validation accuracy within {ce_collapse} points of its accuracy from the normal start, the smallest
       scale): beyond it, large early gradients break training under any loss, which is not saturation. The
       scale is chosen on validation accuracy, never on test accuracy.
    2. The cell tests the claim only if at least {dead_threshold} of its training examples start in the dead
       zone under MSE at that scale (misclassified with |dL/dz| below the run's dead_epsilon): the premise.
    3. A testable cell needs at least {min_seeds} seeds per loss and scale, else it is undecided. The effect is
       logit(CE's mean test accuracy) - logit(MSE's), seeds paired, with its 95% interval over seeds and test
       examples; m is the grid's margin, an odds ratio (default {default_margin}). MSE stalls there if the
       interval lies above log m (cross-entropy's odds of being right exceed MSE's by more than m); it does
       not stall if the interval lies below log m; otherwise the cell is undecided.
    Verdict: not tested if no cell meets the premise; not enough evidence if fewer than half of the testable
    cells are decided; not supported if no decided cell stalls; supported if every decided cell stalls, 'with
    caveat' when from the normal start the effect is below log m in every such cell (the stall needs the
    confidently wrong start), or when some decided cells stall and others do not. The verdict stands only if
    the design can decide it: simulated at these seeds, test sets and seed spread, the rule must agree at
    least {power_target} of the time when cross-entropy's odds are {stall_effect} times MSE's, and at most
    {false_agreement_limit} of the time when they are exactly m times; else not enough evidence."""
    grids = ev.role_grids(role)
    several = len({g.spec for g in grids}) > 1
    evidence, outcomes, normal_close, designs, bounds, examples = [], [], [], [], [], []
    testable = 0
    for grid in grids:
        cells = {}
        for condition in grid.conditions:
            cells.setdefault(condition.cell, {})[condition.init_scale] = condition
        prefix = f"{grid.spec}/" if several else ""
        for cell, by_scale in cells.items():
            scales = sorted(by_scale)
            base = scales[0]
            arms = {s: (by_scale[s].arm(ce), by_scale[s].arm(mse)) for s in scales}
            if any(c is None or m is None for c, m in arms.values()):
                continue
            on_test = any(c.choice.chosen_on.startswith("test") for c, _ in arms.values())
            score = {s: (c.accuracy.mean if on_test else c.val_accuracy) for s, (c, _) in arms.items()}
            usable = [s for s in scales if score[s] >= score[base] - CE_COLLAPSE]
            top = usable[-1]
            for s in scales:
                if s not in usable:
                    evidence.append(
                        Message(
                            "claim.stall.ce_fails",
                            cell=prefix + cell,
                            scale=f"{s:g}",
                            accuracy=_pct(score[s]),
                            split=Message("word.split_test" if on_test else "word.split_validation"),
                            base_accuracy=_pct(score[base]),
                            base=f"{base:g}",
                        )
                    )
            c_top, m_top = arms[top]
            c_base, m_base = arms[base]
            at_top = stats.log_odds_effect(c_top.runs, m_top.runs)
            at_base = stats.log_odds_effect(c_base.runs, m_base.runs)
            dead_mse = _dead_at_start(grid, cell, top, mse)
            bound = math.log(grid.margin)
            status, outcome = "", None
            shortfall = seed_shortfall({k: a.seeds for k, a in enumerate([c_top, m_top, c_base, m_base])})
            if not dead_mse >= DEAD_THRESHOLD:
                status = Message("claim.stall.not_testable", fraction=_pct(DEAD_THRESHOLD))
            else:
                testable += 1
                designs.append(A.Design(min(c_top.seeds, m_top.seeds), at_top.seed_sd, at_top.test_se))
                bounds.append(bound)
                examples.append(by_scale[top].test_examples)
                if shortfall:
                    status = Message("claim.stall.undecided_seeds", shortfall=shortfall)
                elif on_test:
                    status = Message("claim.stall.undecided_test")
                else:
                    decision = D.beyond(at_top.low, at_top.high, bound)
                    outcome = None if decision is None else decision == D.YES
                    if decision is None:
                        status = Message("claim.stall.undecided_interval", margin=f"{grid.margin:g}")
                outcomes.append(outcome)
                if outcome:
                    normal_close.append(D.beyond(at_base.low, at_base.high, bound) != D.YES)
            target = grid.settings.get("target_accuracy")
            reach = (
                Message(
                    "claim.stall.reached",
                    target=_pct(float(target)),
                    mse=_reached(grid, cell, top, mse, float(target)),
                    ce=_reached(grid, cell, top, ce, float(target)),
                )
                if target
                else ""
            )
            evidence.append(
                Message(
                    "claim.stall.cell",
                    cell=prefix + cell,
                    scale=f"{top:g}",
                    dead_mse=_pct(dead_mse),
                    threshold=f"{grid.settings.get('dead_epsilon', DEAD_EPSILON):g}",
                    dead_ce=_pct(_dead_at_start(grid, cell, top, ce)),
                    grad_mse=f"{_mean_at_start(grid, cell, top, mse, 'grad_norm'):.2g}",
                    grad_ce=f"{_mean_at_start(grid, cell, top, ce, 'grad_norm'):.2g}",
                    acc_mse=accuracy_text(m_top.accuracy),
                    acc_ce=accuracy_text(c_top.accuracy),
                    effect=effect_text(at_top, grid.margin, c_top.accuracy.mean),
                    reach=reach,
                    base=f"{base:g}",
                    base_effect=effect_text(at_base, grid.margin, c_base.accuracy.mean),
                    status=status,
                )
            )
    audit = None
    if designs:
        audit = stall_audit(claim_id, designs, bounds, examples)
    if not testable:
        return "not tested", evidence, Message("claim.stall.caveat_no_premise"), audit
    verdict, decided, total = D.aggregate(outcomes)
    evidence.append(Message("claims.decided", decided=str(decided), total=str(total)))
    if verdict == "not enough evidence":
        return verdict, evidence, "", audit
    if verdict == "disagrees":
        return "not supported", evidence, "", audit
    if verdict == "mixed":
        return "supported with caveat", evidence, Message("claim.stall.caveat_some_settings"), audit
    if all(normal_close):
        return "supported with caveat", evidence, Message("claim.stall.caveat_only_wrong_start"), audit
    return "supported", evidence, "", audit


def _stall_claim(ev: Evidence, claim_id: str, role: str, mse: str, ce: str, figures: tuple) -> Claim:
    title = Message(f"claim.{claim_id}.title")
    if not ev.role_grids(role):
        return Claim(claim_id, title, "not tested", [Message(f"claim.{claim_id}.no_grid")], basis="experiments")
    verdict, evidence, caveat, audit = _stall_verdict(ev, claim_id, role, mse, ce)
    verdict = guard(verdict, audit, evidence, ("not tested",))
    return Claim(claim_id, title, verdict, evidence, caveat, list(figures), basis="experiments", audit=audit)


@declare(
    "C4",
    order=4,
    roles=("saturation-binary",),
    min_seeds=MIN_SEEDS,
    figures=("binary-gradient", "saturation-curves"),
    helpers=(_stall_verdict,),
)
def claim_c4(ev: Evidence) -> Claim:
    """Decided by the stall rule below on the grids with role 'saturation-binary' (one sigmoid logit; MSE
    against binary cross-entropy)."""
    return _stall_claim(
        ev, "C4", "saturation-binary", "mse", "binary_cross_entropy", ("binary-gradient", "saturation-curves")
    )


@declare(
    "C5",
    order=5,
    roles=("saturation-softmax", "many-classes"),
    min_seeds=MIN_SEEDS,
    figures=("gradient-norm", "logit-plane", "saturation-curves", "classes"),
    helpers=(_stall_verdict,),
)
def claim_c5(ev: Evidence) -> Claim:
    """Decided by the stall rule below on the grids with role 'saturation-softmax' (softmax outputs; MSE
    against cross-entropy). Grids with role 'many-classes' add numbers (each loss at its learning rate chosen
    on validation, per K) but do not decide the verdict."""
    claim = _stall_claim(
        ev,
        "C5",
        "saturation-softmax",
        "mse",
        "cross_entropy",
        ("gradient-norm", "logit-plane", "saturation-curves", "classes"),
    )
    for grid in ev.role_grids("many-classes"):
        for condition in grid.conditions:
            m, c = condition.arm("mse"), condition.arm("cross_entropy")
            if m is not None and c is not None and m.members and c.members:
                claim.evidence.append(
                    Message(
                        "claim.C5.blobs",
                        k=str(condition.num_classes),
                        chosen_on=chosen_word(m.choice.chosen_on),
                        acc_ce=accuracy_text(c.accuracy),
                        acc_mse=accuracy_text(m.accuracy),
                    )
                )
    return claim


def verdicts(ev: Evidence) -> list[Claim]:
    """Every declared claim, decided (``verdicts.decide``), in the article's order."""
    return decide(ev, "claim")
