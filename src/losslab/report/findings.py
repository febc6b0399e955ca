"""What later research adds: a verdict for each finding, computed from the measurements.

Each finding is declared (``verdicts.declare``, kind "finding") with the rule that decides it, its function's
docstring. They read the grid summaries (``losslab.report.grids``) of the grids whose role asks their
question; every effect is a difference of log-odds of being right with its 95% interval over seeds and test
examples, judged against the grid's margin (an odds ratio); every finding over several cells says how many it
decided, and decides nothing from fewer than half; every experiment verdict stands only where the audit
(``losslab.report.audit``) finds the design able to decide it.
"""

from __future__ import annotations

import math

import numpy as np

from losslab.i18n import Message
from losslab.report import audit as A
from losslab.report import decide as D
from losslab.report import grids as G
from losslab.report import (
    reproduction,  # noqa: F401  (declares the MNIST-1D finding)
    stats,
)
from losslab.report import selection as sel
from losslab.report.claims import claim_c5
from losslab.report.verdicts import (
    MIN_SEEDS,
    RULE_CONSTANTS,
    Evidence,
    Finding,
    cell_name,
    chosen_word,
    decide,
    declare,
    edge_word,
    guard,
    outcome_word,
    seed_shortfall,
    verdict_word,
)
from losslab.report.wording import accuracy_text, effect_text, points
from losslab.theory.brier import brier_checks
from losslab.train.metrics import brier_score

NUMERIC_TOLERANCE = 1e-12
NIELSEN_RATIO = (3.0, 6.0)  # Nielsen: quadratic-cost learning rates about 3-6x the cross-entropy ones
NIELSEN_EFFECT = math.sqrt(NIELSEN_RATIO[0] * NIELSEN_RATIO[1])  # the band's middle, on the log scale
#: Golik et al. (2013): from random initialisation squared error "does not converge to a good local optimum";
#: power is measured at cross-entropy's odds of being right twice MSE's.
GOLIK_STUCK_EFFECT = 2.0
#: ... and a few squared-error epochs after a cross-entropy solution cut the word error rate from 30.9% to 30.5%
#: (speech) and 22.7% to 21.9% (handwriting): odds ratios of being right of 1.02 and 1.05. Power is measured
#: at the larger.
GOLIK_IMPROVES_EFFECT = 1.05
LR_BOOTSTRAP = 1000

# What the rules print: numbers as "g" formats them (3, 1.05, 1e-12), the bootstrap count with a thousands comma.
RULE_CONSTANTS.update(
    {
        name: f"{value:g}"
        for name, value in (
            ("nielsen_low", NIELSEN_RATIO[0]),
            ("nielsen_high", NIELSEN_RATIO[1]),
            ("golik_stuck_effect", GOLIK_STUCK_EFFECT),
            ("golik_improves_effect", GOLIK_IMPROVES_EFFECT),
            ("numeric_tolerance", NUMERIC_TOLERANCE),
        )
    },
    nielsen_effect=f"{NIELSEN_EFFECT:.2f}",
    lr_bootstrap=f"{LR_BOOTSTRAP:,}",
)


def _several(grids) -> bool:
    return len({g.spec for g in grids}) > 1


@declare("nielsen-saturation", order=10, kind="finding", roles=("saturation-softmax",))
def finding_nielsen_saturation(ev: Evidence) -> Finding:
    """Follows claim C5's verdict: agrees if C5 is supported (with or without caveat), disagrees if not
    supported, and not enough evidence / not tested when C5 is."""
    c5 = claim_c5(ev)
    verdict = {"supported": "agrees", "supported with caveat": "agrees", "not supported": "disagrees"}.get(
        c5.verdict, c5.verdict
    )
    return Finding(
        Message("finding.nielsen_saturation.source"),
        Message("finding.nielsen_saturation.statement"),
        verdict,
        [Message("finding.nielsen_saturation.evidence", verdict=verdict_word(c5.verdict))],
        key="nielsen-saturation",
        audit=c5.audit,
    )


# --- Golik et al.: stuck from scratch, improved from a cross-entropy start ---------------------------------------


def _golik_part(ev: Evidence, role: str, name: str, better: str, worse: str, effect: float):
    """One half of Golik's finding over the grids with ``role``: per condition, is ``better`` ahead of ``worse``
    beyond the grid's margin? Returns (aggregate verdict or None when absent, evidence, audit Part)."""
    grids = ev.role_grids(role)
    if not grids:
        return None, [Message("finding.no_role", role=role)], None
    evidence, outcomes, designs, bounds, examples = [], [], [], [], []
    several = _several(grids)
    for grid in grids:
        bound = math.log(grid.margin)
        for condition in grid.conditions:
            a, b = condition.arm(better), condition.arm(worse)
            where = cell_name(grid, condition, several)
            if a is None or b is None or not (a.members and b.members):
                evidence.append(Message("finding.golik.not_both", role=role))
                continue
            eff = stats.log_odds_effect(a.runs, b.runs)
            designs.append(A.Design(min(a.seeds, b.seeds), eff.seed_sd, eff.test_se))
            bounds.append(bound)
            examples.append(condition.test_examples)
            on = sorted({a.choice.chosen_on, b.choice.chosen_on} - {sel.ONLY_SETTING})
            shortfall = seed_shortfall({0: a.seeds, 1: b.seeds})
            outcome, why = None, ""
            if shortfall:
                why = shortfall
            elif sel.CHOSEN_ON_TEST in on:
                why = Message("finding.golik.why_test")
            else:
                outcome = D.beyond(eff.low, eff.high, bound)
                why = "" if outcome else Message("finding.golik.why_interval", margin=f"{grid.margin:g}")
                # 'yes' (a beats b) could be overturned by a better b, 'no' by a better a.
                at_risk = {D.YES: b, D.NO: a}.get(outcome)
                if at_risk is not None and at_risk.choice.edge:
                    why = Message("finding.golik.why_edge", loss=at_risk.loss, edge=edge_word(at_risk.choice.edge))
                    outcome = None
            outcomes.append(None if outcome is None else outcome == D.YES)
            result = (
                Message("finding.golik.decided", part=Message(f"finding.golik.{name}"), outcome=outcome_word(outcome))
                if outcome
                else Message("finding.golik.undecided", why=why)
            )
            evidence.append(
                Message(
                    f"finding.golik.{name}_difference",
                    cell=where,
                    difference=points(stats.difference_interval(a.runs, b.runs)),
                    effect=effect_text(eff, grid.margin, b.accuracy.mean),
                    how=[Message("finding.golik.loss_lr", loss=x.loss, lr=f"{x.choice.lr:g}") for x in (a, b)],
                    on=[chosen_word(x) for x in on] or [Message("finding.golik.one_rate")],
                    result=result,
                )
            )
    verdict, decided, total = D.aggregate(outcomes)
    evidence.append(Message("claims.decided", decided=str(decided), total=str(total)))
    return verdict, evidence, (golik_part(designs, bounds, effect), examples)


def golik_part(designs: list[A.Design], bounds: list[float], effect: float) -> A.Part:
    """One half of Golik's finding as the audit simulates it: false at each cell's log margin, holding at ``effect``."""
    return A.Part(designs, [A.beyond_rule(b) for b in bounds], [bounds], [math.log(effect)] * len(designs))


def golik_audit(parts: list[A.Part], examples=None) -> A.Audit:
    """Golik's two halves simulated together (the finding agrees only where both do)."""
    return A.audit_parts(
        "golik",
        parts,
        Message("audit.boundary_margin"),
        Message("audit.effect_golik", improves=f"{GOLIK_IMPROVES_EFFECT:g}", stuck=f"{GOLIK_STUCK_EFFECT:g}"),
        examples,
    )


@declare(
    "golik",
    order=20,
    kind="finding",
    roles=("warm-start", "from-scratch"),
    min_seeds=MIN_SEEDS,
)
def finding_golik(ev: Evidence) -> Finding:
    """Two parts, from the grids with roles 'warm-start' and 'from-scratch', each loss at its learning rate
    chosen on validation, at least {min_seeds} seeds per loss. Improves: MSE continued against CE continued, on
    the warm-start grids. Stuck: CE against MSE from scratch. Each part, per condition: 'yes' if the interval of
    the effect (the difference of log-odds of being right) lies above log m, for the grid's margin m (an odds
    ratio; the warm-start spec sets m = 1, any improvement, since Golik's own gains are odds ratios of 1.02 to
    {golik_improves_effect}), 'no' if it lies below log m, undecided otherwise, and undecided too where the
    loss that could overturn the outcome was chosen at the edge of its learning-rate grid. A part agrees if
    every decided condition says 'yes' and at least half are decided.
    Verdict: agrees if both parts agree; disagrees if a part disagrees and neither agrees; mixed if one agrees
    and the other disagrees; not tested if neither role is in the results, or only one is and it agrees; not
    enough evidence otherwise. The verdict stands only if the design can decide it: simulated at these seeds,
    test sets and seed spread, it must agree at least {power_target} of the time when MSE continued is ahead by
    an odds ratio of {golik_improves_effect} and CE from scratch by {golik_stuck_effect}, and at most
    {false_agreement_limit} of the time when either part sits exactly at its margin."""
    parts = {}
    evidence = []
    audit_parts = []
    for role, name, better, worse, effect in (
        ("warm-start", "improves", "mse", "cross_entropy", GOLIK_IMPROVES_EFFECT),
        ("from-scratch", "stuck", "cross_entropy", "mse", GOLIK_STUCK_EFFECT),
    ):
        verdict, lines, part = _golik_part(ev, role, name, better, worse, effect)
        evidence += lines
        if verdict is not None:
            parts[name] = verdict
        if part is not None and part[0].designs:
            audit_parts.append(part)
    values = list(parts.values())
    if not values:
        verdict = "not tested"
    elif "agrees" in values and "disagrees" in values:
        verdict = "mixed"
    elif "disagrees" in values:
        verdict = "disagrees"
    elif any(v != "agrees" for v in values):
        verdict = "not enough evidence"
    elif len(values) == 2:
        verdict = "agrees"
    else:
        verdict = "not tested"  # one part measured and it agrees: the other half of the statement is untested
    audit = None
    if len(audit_parts) == 2:
        audit = golik_audit([part for part, _ in audit_parts], [n for _, examples in audit_parts for n in examples])
    verdict = guard(verdict, audit, evidence, ("not tested",))
    return Finding(
        Message("finding.golik.source"), Message("finding.golik.statement"), verdict, evidence, key="golik", audit=audit
    )


# --- Hui & Belkin: the square loss matches cross-entropy -------------------------------------------------------


def hui_belkin_audit(designs: list[A.Design], bounds: list[float], examples=None) -> A.Audit:
    """Non-inferiority simulated over the conditions: false with the variant worse by exactly the margin
    (``bounds``: -log m per condition), holding with equal accuracy."""
    return A.audit(
        "hui-belkin",
        designs,
        [A.beyond_rule(b) for b in bounds],
        bounds,
        [0.0] * len(designs),
        Message("audit.boundary_noninferiority"),
        Message("audit.effect_equal"),
        examples,
    )


@declare("hui-belkin", order=30, kind="finding", roles=("loss-comparison", "many-classes"), min_seeds=MIN_SEEDS)
def finding_hui_belkin(ev: Evidence) -> Finding:
    """Per condition of the grids with role 'loss-comparison', and per square-loss variant (the square loss on
    logits, with or without its rescaling), each loss at its learning rate chosen on validation, at least
    {min_seeds} seeds each: the effect is logit(the variant's mean test accuracy) - logit(CE's), seeds paired,
    with its 95% interval over seeds and test examples, and m the grid's margin, an odds ratio (default
    {default_margin}). The variant matches or beats CE if the interval lies above -log m (non-inferiority: its
    odds of being right are not below CE's by a factor m); it is worse if the interval lies below -log m;
    otherwise, with too few seeds, or with rates chosen on test accuracy, the condition is undecided; it is
    undecided too where the loss that could overturn the outcome was chosen at the edge of its learning-rate
    grid (CE for 'matches or beats', the variant for 'worse'). Verdict: not tested without such conditions;
    not enough evidence if fewer than half are decided; agrees if every decided condition matches or beats,
    disagrees if every decided one is worse, mixed otherwise. The verdict stands only if the design can decide
    it: simulated at these seeds, test sets and seed spread, the rule must agree at least {power_target} of the
    time when the variant is as accurate as CE (Hui and Belkin's finding on most of their 28 tasks), and at
    most {false_agreement_limit} of the time when it is worse by exactly m. Grids with role 'many-classes' add
    numbers only."""
    statement, source = Message("finding.hui_belkin.statement"), Message("finding.hui_belkin.source")
    grids = ev.role_grids("loss-comparison")
    if not grids:
        return Finding(source, statement, "not tested", [Message("finding.no_role", role="loss-comparison")])
    evidence, outcomes, designs, bounds, examples = [], [], [], [], []
    several = _several(grids)
    for grid in grids:
        bound = -math.log(grid.margin)
        for condition in grid.conditions:
            ce = condition.arm("cross_entropy")
            variants = [a for a in condition.arms if a.name == "square_logits" and a.members]
            if ce is None or not ce.members:
                continue
            for variant in variants:
                eff = stats.log_odds_effect(variant.runs, ce.runs)
                designs.append(A.Design(min(variant.seeds, ce.seeds), eff.seed_sd, eff.test_se))
                bounds.append(bound)
                examples.append(condition.test_examples)
                shortfall = seed_shortfall({0: variant.seeds, 1: ce.seeds})
                on = sorted({variant.choice.chosen_on, ce.choice.chosen_on})
                decided = None
                if shortfall:
                    outcome = Message("finding.hui_belkin.undecided_seeds", shortfall=shortfall)
                elif sel.CHOSEN_ON_TEST in on:
                    outcome = Message("finding.hui_belkin.undecided_test")
                else:
                    decision = D.beyond(eff.low, eff.high, bound)
                    at_risk = {D.YES: ce, D.NO: variant}.get(decision)
                    if decision is None:
                        outcome = Message("finding.hui_belkin.undecided_interval", margin=f"{grid.margin:g}")
                    elif at_risk.choice.edge:
                        outcome = Message(
                            "finding.hui_belkin.undecided_edge", loss=at_risk.loss, edge=edge_word(at_risk.choice.edge)
                        )
                    else:
                        decided = decision == D.YES
                        outcome = Message("finding.hui_belkin.matches" if decided else "finding.hui_belkin.worse")
                outcomes.append(decided)
                evidence.append(
                    Message(
                        "finding.hui_belkin.cell",
                        cell=cell_name(grid, condition, several),
                        variant=variant.loss,
                        difference=points(stats.difference_interval(variant.runs, ce.runs)),
                        effect=effect_text(eff, grid.margin, ce.accuracy.mean),
                        on=[chosen_word(x) for x in on],
                        outcome=outcome,
                    )
                )
    for grid in ev.role_grids("many-classes"):
        top = max(grid.conditions, key=lambda c: c.num_classes, default=None)
        if top is None:
            continue
        plain, ce = top.arm("square_logits"), top.arm("cross_entropy")
        rescaled = [a for a in top.arms if a.name == "square_logits" and a.params]
        if plain is not None and ce is not None and rescaled:
            evidence.append(
                Message(
                    "finding.hui_belkin.blobs",
                    k=str(top.num_classes),
                    plain=accuracy_text(plain.accuracy),
                    variant=rescaled[0].loss,
                    rescaled=accuracy_text(rescaled[0].accuracy),
                    ce=accuracy_text(ce.accuracy),
                )
            )
    if not outcomes:
        return Finding(source, statement, "not tested", evidence or [Message("finding.hui_belkin.no_cell")])
    verdict, decided, total = D.aggregate(outcomes)
    evidence.append(Message("claims.decided", decided=str(decided), total=str(total)))
    audit = hui_belkin_audit(designs, bounds, examples)
    verdict = guard(verdict, audit, evidence, ("not tested",))
    return Finding(source, statement, verdict, evidence, key="hui-belkin", audit=audit)


@declare("kornblith", order=40, kind="finding")
def finding_kornblith(ev: Evidence) -> Finding:
    """Always 'not tested': ImageNet is not run."""
    return Finding(
        Message("finding.kornblith.source"),
        Message("finding.kornblith.statement"),
        "not tested",
        [Message("finding.kornblith.evidence")],
        key="kornblith",
    )


@declare("brier", order=50, kind="finding")
def finding_brier(ev: Evidence) -> Finding:
    """A derivation, checked numerically (no experiment needed): agrees if both checks pass, disagrees
    otherwise. (1) 2 x eq. (31) (losslab.core.mse) equals the multiclass Brier score mean_n sum_k (p_nk -
    y_nk)^2, written out in numpy, and the trainer's metric (losslab.train.metrics.brier_score, behind the
    results' test_brier) equals it too: 256 seeded random logits (float64) for each number of classes K in
    the results (K = 2 and 10 when there are none), largest relative error <= {numeric_tolerance}. (2) Strictly
    proper: for 200 random q on each simplex and 50 random p each, the expected score under q, S(p, q) =
    sum_j q_j ||p - e_j||^2, exceeds S(q, q) by exactly ||p - q||^2 (the derivation: S(p, q) = ||p - q||^2 +
    1 - ||q||^2), within {numeric_tolerance} absolute, and the excess is > 0 wherever ||p - q||^2 > 1e-9; the
    log score's excess equals KL(q || p) within {numeric_tolerance} and is > 0 likewise."""
    ks = ev.num_classes() or [2, 10]
    c = brier_checks(ks, trainer_metric=brier_score)
    identity_ok = c["identity_error"] <= NUMERIC_TOLERANCE
    proper_ok = (
        c["brier_propriety_error"] <= NUMERIC_TOLERANCE
        and c["log_propriety_error"] <= NUMERIC_TOLERANCE
        and c["min_excess_brier"] > 0
        and c["min_excess_log"] > 0
    )
    evidence = [
        Message(
            "finding.brier.identity",
            ks=", ".join(map(str, ks)),
            error=f"{c['identity_error']:.1e}",
            tolerance=f"{NUMERIC_TOLERANCE:g}",
        ),
        Message(
            "finding.brier.propriety",
            brier_error=f"{c['brier_propriety_error']:.1e}",
            brier_excess=f"{c['min_excess_brier']:.2g}",
            log_error=f"{c['log_propriety_error']:.1e}",
            log_excess=f"{c['min_excess_log']:.2g}",
        ),
    ]
    grids = ev.role_grids("loss-comparison")
    for grid in grids:
        for condition in grid.conditions:
            m, ce = condition.arm("mse"), condition.arm("cross_entropy")
            if m is not None and ce is not None and m.members and ce.members:
                evidence.append(
                    Message(
                        "finding.brier.cell",
                        cell=cell_name(grid, condition, _several(grids)),
                        mse=m.metrics["test_brier"].format(1, 3),
                        ce=ce.metrics["test_brier"].format(1, 3),
                    )
                )
    return Finding(
        Message("finding.brier.source"),
        Message("finding.brier.statement"),
        "agrees" if identity_ok and proper_ok else "disagrees",
        evidence,
        key="brier",
    )


# --- Nielsen: MSE's learning rate 3-6x cross-entropy's ---------------------------------------------------------


def _vertex(x: np.ndarray, y: np.ndarray) -> float | None:
    """The maximiser, in x, of the parabola through the best point of ``y`` and its two neighbours; None where the
    best point is at either end (or a neighbour is missing): the optimum may then lie outside the grid."""
    if len(y) < 3 or not np.isfinite(y).any():
        return None
    i = int(np.nanargmax(y))
    if i == 0 or i == len(y) - 1 or not np.isfinite(y[[i - 1, i + 1]]).all():
        return None
    (x0, x1, x2), (y0, y1, y2) = x[i - 1 : i + 2], y[i - 1 : i + 2]
    denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denominator
    if a >= 0:  # flat or convex through the best point: the middle point is the estimate
        return float(x1)
    return float(np.clip(-b / (2 * a), x0, x2))


def _log_lr_ratio(condition: G.Condition, grid: G.Grid) -> tuple[float, float, float, int] | None:
    """How the best rates are estimated: for each loss, the parabola through its mean final validation accuracy
    (members that diverged left out) at the chosen rate and at the two neighbouring rates, on a log scale of
    the rate; its top is the loss's best rate. The log of the ratio, MSE's over CE's, comes with a 95%
    percentile interval from {lr_bootstrap} resamples of the seeds (the same seeds for both losses). Where
    either best rate is at the edge of its grid, in the data or in more than 5% of the resamples, there is no
    estimate, only a bound."""
    # Returns (log ratio, low, high, seeds), or None where there is no estimate.
    rows = sel.final_rows(grid.rows)
    rows = rows[(rows["cell"] == condition.cell) & (rows["init_scale"] == condition.init_scale)]
    tables = {}
    for loss in ("mse", "cross_entropy"):
        mine = rows[rows["loss_label"] == loss]
        mine = mine.assign(val=np.where(mine["diverged"], np.nan, sel.column(mine, "val_accuracy")))
        tables[loss] = mine.pivot_table(index="seed", columns="lr", values="val", aggfunc="mean", dropna=False)
    seeds = sorted(set(tables["mse"].index) & set(tables["cross_entropy"].index))
    if len(seeds) < 2:
        return None
    arrays = {k: t.loc[seeds].to_numpy(dtype=float) for k, t in tables.items()}
    logs = {k: np.log(np.asarray(t.columns, dtype=float)) for k, t in tables.items()}

    def ratio(index) -> float | None:
        top = {k: _vertex(logs[k], np.nanmean(arrays[k][index], axis=0)) for k in arrays}
        return None if None in top.values() else top["mse"] - top["cross_entropy"]

    point = ratio(np.arange(len(seeds)))
    if point is None:
        return None
    rng = np.random.default_rng(0)
    draws = [ratio(rng.integers(0, len(seeds), len(seeds))) for _ in range(LR_BOOTSTRAP)]
    found = np.array([d for d in draws if d is not None])
    if len(found) < 0.95 * LR_BOOTSTRAP:
        return None
    low, high = np.percentile(found, [2.5, 97.5])
    return point, float(low), float(high), len(seeds)


def nielsen_audit(designs: list[A.Design]) -> A.Audit:
    """The band test simulated over the conditions: false at a ratio of exactly 3 or 6, holding at the middle."""
    lo, hi = math.log(NIELSEN_RATIO[0]), math.log(NIELSEN_RATIO[1])
    return A.audit(
        "nielsen-lr",
        designs,
        A.within_rule(lo, hi),
        [[lo] * len(designs), [hi] * len(designs)],
        [math.log(NIELSEN_EFFECT)] * len(designs),
        Message("audit.boundary_band", lo=f"{NIELSEN_RATIO[0]:g}", hi=f"{NIELSEN_RATIO[1]:g}"),
        Message("audit.effect_ratio", ratio=f"{NIELSEN_EFFECT:.2f}"),
    )


@declare(
    "nielsen-lr", order=60, kind="finding", roles=("loss-comparison",), min_seeds=MIN_SEEDS, helpers=(_log_lr_ratio,)
)
def finding_nielsen_lr(ev: Evidence) -> Finding:
    """Per condition of the grids with role 'loss-comparison': the ratio of MSE's best learning rate to CE's,
    each best rate the top of a parabola through the loss's mean final validation accuracy at its chosen rate
    and the two neighbouring rates (on a log scale), with a 95% interval from {lr_bootstrap} bootstrap
    resamples of the seeds. It agrees with Nielsen's {nielsen_low}-{nielsen_high}x if the whole interval lies
    inside [{nielsen_low}, {nielsen_high}], disagrees if it lies wholly outside, and is undecided otherwise,
    with fewer than {min_seeds} seeds, rates chosen on test accuracy, one rate per loss, or a best rate at the
    edge of its grid (then only a bound is known). Verdict: not tested without such conditions; not enough
    evidence if fewer than half are decided; agrees / disagrees if every decided condition does; mixed
    otherwise. The verdict stands only if the design can decide it: simulated at these seeds with the
    interval's measured width, the rule must agree at least {power_target} of the time when the true ratio is
    {nielsen_effect} (the band's middle), and at most {false_agreement_limit} of the time when it is exactly
    {nielsen_low} or {nielsen_high}; learning-rate grids in steps of 3x rarely place a ratio that precisely."""
    statement, source = Message("finding.nielsen_lr.statement"), Message("finding.nielsen_lr.source")
    grids = ev.role_grids("loss-comparison")
    if not grids:
        return Finding(source, statement, "not tested", [Message("finding.no_role", role="loss-comparison")])
    lo, hi = math.log(NIELSEN_RATIO[0]), math.log(NIELSEN_RATIO[1])
    evidence, outcomes, designs = [], [], []
    several = _several(grids)
    for grid in grids:
        for condition in grid.conditions:
            m, c = condition.arm("mse"), condition.arm("cross_entropy")
            if m is None or c is None or not (m.members and c.members):
                continue
            estimate = _log_lr_ratio(condition, grid)
            decided, shown = None, Message("finding.nielsen_lr.shown_none")
            if estimate is not None:
                point, low, high, n = estimate
                shown = Message(
                    "finding.nielsen_lr.shown_value",
                    ratio=f"{math.exp(point):.3g}",
                    low=f"{math.exp(low):.2g}",
                    high=f"{math.exp(high):.2g}",
                )
                # The interval's width stands for its standard error in the simulation: half-width / 1.96.
                designs.append(A.Design(n, (high - low) / (2 * 1.96) * math.sqrt(n), 0.0))
            if min(m.seeds, c.seeds) < MIN_SEEDS:
                outcome = Message("finding.nielsen_lr.undecided_seeds", seeds=str(MIN_SEEDS))
            elif sel.CHOSEN_ON_TEST in (m.choice.chosen_on, c.choice.chosen_on):
                outcome = Message("finding.nielsen_lr.undecided_test")
            elif sel.ONLY_SETTING in (m.choice.chosen_on, c.choice.chosen_on):
                outcome = Message("finding.nielsen_lr.undecided_one_rate")
            elif estimate is None:
                outcome = Message("finding.nielsen_lr.undecided_edge")
            else:
                decision = D.within(estimate[1], estimate[2], lo, hi)
                decided = None if decision is None else decision == D.YES
                key = {True: "inside", False: "outside", None: "undecided"}[decided]
                outcome = Message(f"finding.nielsen_lr.{key}", lo=f"{NIELSEN_RATIO[0]:g}", hi=f"{NIELSEN_RATIO[1]:g}")
            outcomes.append(decided)
            evidence.append(
                Message(
                    "finding.nielsen_lr.cell",
                    cell=cell_name(grid, condition, several),
                    mse_lr=f"{m.choice.lr:g}",
                    ce_lr=f"{c.choice.lr:g}",
                    shown=shown,
                    outcome=outcome,
                )
            )
    if not outcomes:
        return Finding(source, statement, "not tested", [Message("finding.nielsen_lr.no_cell")])
    verdict, decided, total = D.aggregate(outcomes)
    evidence.append(Message("claims.decided", decided=str(decided), total=str(total)))
    audit = None
    if designs:
        audit = nielsen_audit(designs)
    elif verdict != "not tested":
        audit = nielsen_audit([])  # no condition has an estimate: no power
    verdict = guard(verdict, audit, evidence, ("not tested",))
    evidence.append(Message("finding.nielsen_lr.note"))
    return Finding(source, statement, verdict, evidence, key="nielsen-lr", audit=audit)


def findings(ev: Evidence) -> list[Finding]:
    """Every declared finding, decided (``verdicts.decide``), in the order declared."""
    return decide(ev, "finding")
