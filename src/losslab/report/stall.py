"""Claims C4 and C5, decided by the experiments: does MSE stall where cross-entropy trains?

The stall rule reads the grids with the roles ``saturation-binary`` (C4) and ``saturation-softmax`` (C5) through the
report's grid summaries (each loss at its rate chosen on validation), per cell and initial scale; its error rates
are measured by simulation at the design it judges (``stall_audit``). ``losslab.report.claims`` imports this module,
which declares the two claims.
"""

from __future__ import annotations

import math

from losslab.core import DEAD_EPSILON
from losslab.i18n import Message
from losslab.report import audit as A
from losslab.report import decide as D
from losslab.report import stats
from losslab.report.verdicts import (
    MIN_SEEDS,
    RULE_CONSTANTS,
    Claim,
    Evidence,
    chosen_word,
    declare,
    guard,
    seed_shortfall,
)
from losslab.report.wording import accuracy_text, effect_text, pct

DEAD_THRESHOLD = 0.10  # a cell tests C4/C5 if at least this fraction of training examples start dead under MSE
CE_COLLAPSE = 0.10  # cross-entropy "still trains" at a scale if within 10 points of its normal-start accuracy
#: The effect the stall rule's power is measured at: cross-entropy's odds of being right three times MSE's
#: (95% against 86%, or 75% against 50%): a stall as Nielsen (2015, ch. 3) describes one, a quadratic-cost
#: neuron stuck for hundreds of epochs, not a nuance.
STALL_EFFECT = 3.0
RULE_CONSTANTS.update(
    dead_threshold=f"{100 * DEAD_THRESHOLD:.0f}%",
    ce_collapse=f"{100 * CE_COLLAPSE:.0f}",
    stall_effect=f"{STALL_EFFECT:g}",
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
                            accuracy=pct(score[s]),
                            split=Message("word.split_test" if on_test else "word.split_validation"),
                            base_accuracy=pct(score[base]),
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
                status = Message("claim.stall.not_testable", fraction=pct(DEAD_THRESHOLD))
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
                    target=pct(float(target)),
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
                    dead_mse=pct(dead_mse),
                    threshold=f"{grid.settings.get('dead_epsilon', DEAD_EPSILON):g}",
                    dead_ce=pct(_dead_at_start(grid, cell, top, ce)),
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
