"""The report's tables: every grid's, the article's questions', and the audit of the rules.

A table is a dict ``{"id", "title", "note", "header", "rows"}`` whose texts are catalogue messages (rendered
in the report's language) and whose cells are messages or plain values. The same tables go into
``report.json`` (``losslab.report.report_json``), rendered in English, so every number on the page is also
there.
"""

from __future__ import annotations

import math

from losslab.i18n import Message
from losslab.report import audit as A
from losslab.report import decide as D
from losslab.report import findings as F
from losslab.report import grids as G
from losslab.report import reproduction as RP
from losslab.report import selection as sel
from losslab.report import summaries as S
from losslab.report.verdicts import Evidence, chosen_word, verdict_word
from losslab.report.wording import points
from losslab.train.metrics import METRICS


def header(*keys: str) -> list[Message]:
    """Column headers: a declared metric's label (``losslab.train.metrics.METRICS``), else ``column.<key>``."""
    return [Message(METRICS[key].label) if key in METRICS else Message(f"column.{key}") for key in keys]


def na(text) -> str:
    """A table cell: 'n/a' (a missing number) as its catalogue word."""
    return Message("word.na") if text == "n/a" else text


def percent(i, n: bool = False) -> str:
    return na(i.format(100, 1, "%", n=n))


def number(i, digits: int = 3) -> str:
    return na(i.format(1, digits, "", n=False))


def mean(i, digits: int = 3) -> str:
    """A table cell: the mean alone (the interval is in another table and in report.json)."""
    return Message("word.na") if not math.isfinite(i.mean) else f"{i.mean:.{digits}f}"


def lr_cell(choice: sel.Choice) -> str:
    if choice.lr is None:
        return Message("chosen.all_diverged")
    if choice.edge is None:
        return f"{choice.lr:g}"
    return Message(f"table.lr_{choice.edge}", lr=f"{choice.lr:g}")


def _axes(grid: G.Grid) -> list[str]:
    return [{"cell": "cell", "init_scale": "init_scale"}[a] for a in grid.varying]


def _axis_cells(grid: G.Grid, condition: G.Condition) -> list:
    return [condition.cell if a == "cell" else f"{condition.init_scale:g}" for a in grid.varying]


def _members(arm: G.Arm) -> str:
    if arm.diverged:
        return Message("table.members_diverged", members=str(arm.members), diverged=str(arm.diverged))
    return str(arm.members)


def _scaled(arm: G.Arm, metric: str) -> str:
    raw, scaled = arm.metrics[metric], arm.metrics.get(f"{metric}_ts")
    if scaled is None or not scaled.n:
        return number(raw)
    return Message("table.raw_scaled", raw=number(raw), scaled=number(scaled))


#: The bootstrap table's columns, in its header's order: NLL raw and scaled, then ECE raw and scaled.
BOOTSTRAP_COLUMNS = ("test_nll", "test_nll_ts", "test_ece", "test_ece_ts")


def grid_tables(grid: G.Grid) -> list[dict]:
    """Every table of one grid: each loss at its chosen rate; each loss against the baseline; calibration."""
    axes = _axes(grid)
    prefix = f"grid-{grid.spec}-{grid.label}"
    results = {
        "id": f"{prefix}-results",
        "title": Message("table.grid.title", grid=grid.key),
        "note": Message("table.grid.note", chosen=_chosen_note(grid)),
        "header": header(*axes, "loss", "rates_tried", "chosen_lr", "chosen_on", "members", "val_accuracy")
        + header("test_accuracy_two_way", "test_nll", "test_brier", "test_ece", "temperature"),
        "rows": [
            [
                *_axis_cells(grid, c),
                _loss_cell(a),
                ", ".join(f"{x:g}" for x in a.choice.lrs_tried),
                lr_cell(a.choice),
                chosen_word(a.choice.chosen_on),
                _members(a),
                Message("word.na") if not math.isfinite(a.val_accuracy) else f"{100 * a.val_accuracy:.1f}%",
                percent(a.accuracy),
                mean(a.metrics["test_nll"]),
                mean(a.metrics["test_brier"]),
                mean(a.metrics["test_ece"]),
                mean(a.metrics["temperature"], 2),
            ]
            for c in grid.conditions
            for a in c.arms
        ],
    }
    tables = [results]
    comparisons = [(c, cmp) for c in grid.conditions for cmp in c.comparisons]
    if comparisons:
        tables.append(
            {
                "id": f"{prefix}-baseline",
                "title": Message("table.baseline.title", grid=grid.key, baseline=grid.baseline),
                "note": Message("table.baseline.note", margin=f"{grid.margin:g}", baseline=grid.baseline),
                "header": header(*axes, "loss", "difference", "odds_ratio", "outcome", "improvement", "pairs"),
                "rows": [
                    [
                        *_axis_cells(grid, c),
                        cmp.loss,
                        points(cmp.difference),
                        _odds(cmp.effect),
                        Message(f"outcome.{cmp.outcome.replace(' ', '_')}", margin=f"{grid.margin:g}"),
                        percent(cmp.improvement),
                        str(cmp.effect.n),
                    ]
                    for c, cmp in comparisons
                ],
            }
        )
    tables.append(
        {
            "id": f"{prefix}-calibration",
            "title": Message("table.grid_calibration.title", grid=grid.key),
            "note": Message("table.grid_calibration.note"),
            "header": header(*axes, "loss", "temperature", "test_nll", "test_brier", "test_ece", "test_ece_adaptive")
            + header("test_ece_classwise", "test_mce"),
            "rows": [
                [
                    *_axis_cells(grid, c),
                    a.loss,
                    number(a.metrics["temperature"], 2),
                    *(_scaled(a, m) for m in ("test_nll", "test_brier", "test_ece", "test_ece_adaptive")),
                    *(_scaled(a, m) for m in ("test_ece_classwise", "test_mce")),
                ]
                for c in grid.conditions
                for a in c.arms
                if a.members
            ],
        }
    )
    boot = [(c, a, S.bootstrap(a.chosen)) for c in grid.conditions for a in c.arms if a.members]
    if any(b["test_ece"].has_interval for _, _, b in boot):
        tables.append(
            {
                "id": f"{prefix}-bootstrap",
                "title": Message("table.bootstrap.title", grid=grid.key),
                "note": Message("table.bootstrap.note"),
                "header": header(*axes, "loss", "nll_raw", "nll_scaled", "ece_raw", "ece_scaled"),
                "rows": [
                    [*_axis_cells(grid, c), a.loss, *(_boot(b, m) for m in BOOTSTRAP_COLUMNS)] for c, a, b in boot
                ],
            }
        )
    return tables


def _loss_cell(arm: G.Arm) -> str:
    if arm.origin != "built-in":
        return Message("table.loss_origin", loss=arm.loss, origin=arm.origin)
    return arm.loss


def _odds(effect) -> str:
    if not math.isfinite(effect.estimate):
        return Message("word.na")
    if not effect.has_interval:
        return f"{math.exp(effect.estimate):.3g}"
    return f"{math.exp(effect.estimate):.3g} [{math.exp(effect.low):.3g}, {math.exp(effect.high):.3g}]"


def _chosen_note(grid: G.Grid) -> Message:
    ways = {a.choice.chosen_on for c in grid.conditions for a in c.arms}
    if sel.CHOSEN_ON_TEST in ways:
        return Message("table.chosen_note_test")
    if sel.CHOSEN_ON_VALIDATION in ways:
        return Message("table.chosen_note_validation")
    return Message("table.chosen_note_only")


def _boot(record: dict, metric: str) -> str:
    """'0.016; resamples 0.025 [0.017, 0.034]': the full-test-set value, then the replicates' mean and interval."""
    i = record[metric]
    if not i.has_interval:
        return number(i)
    return Message(
        "table.bootstrap.cell",
        value=f"{i.mean:.3f}",
        resampled=f"{record[metric + '_resampled'].mean:.3f}",
        low=f"{i.low:.3f}",
        high=f"{i.high:.3f}",
    )


# --- the article's questions ---------------------------------------------------------------------------------


def saturation_table(ev: Evidence) -> list[dict]:
    rows = ev.role_rows("saturation-binary", "saturation-softmax")
    if rows is None:
        return []
    targets = dict(zip(rows["grid"], rows["target_accuracy"]))
    table = S.saturation_table(rows, {g: t for g, t in targets.items() if t == t and t is not None})
    eps = sorted({f"{e:g}" for e in rows["dead_epsilon"]})
    return [
        {
            "id": "table-saturation",
            "title": Message("table.saturation.title"),
            "note": Message("table.saturation.note", epsilon=", ".join(eps)),
            "header": header(
                "cell", "loss", "init_scale", "final_accuracy", "dead_at_start", "grad_at_start", "reached_target"
            )
            + header("median_steps", "seeds"),
            "rows": [
                [
                    r.cell,
                    r.loss,
                    f"{r.init_scale:g}",
                    percent(r.accuracy),
                    f"{100 * r.start_dead_fraction:.1f}%",
                    f"{r.start_grad_norm:.3g}",
                    ""
                    if r.target is None
                    else Message(
                        "table.saturation.reached",
                        reached=str(r.reached),
                        members=str(r.members),
                        target=f"{100 * r.target:.0f}%",
                    ),
                    ""
                    if r.median_steps_to_target is None or r.median_steps_to_target != r.median_steps_to_target
                    else f"{r.median_steps_to_target:.0f}",
                    r.seeds,
                ]
                for r in table.itertuples()
            ],
        }
    ]


def lr_ratio_table(ev: Evidence) -> list[dict]:
    rows = []
    for grid in ev.role_grids("loss-comparison"):
        for condition in grid.conditions:
            m, c = condition.arm("mse"), condition.arm("cross_entropy")
            if m is None or c is None or not (m.members and c.members):
                continue
            estimate = F._log_lr_ratio(condition, grid)
            if estimate is None:
                shown, outcome = Message("finding.nielsen_lr.shown_none"), Message("word.na")
            else:
                point, low, high, _ = estimate
                shown = f"{math.exp(point):.3g} [{math.exp(low):.2g}, {math.exp(high):.2g}]"
                decision = D.within(low, high, math.log(F.NIELSEN_RATIO[0]), math.log(F.NIELSEN_RATIO[1]))
                outcome = Message({D.YES: "word.inside", D.NO: "word.outside", None: "word.undecided"}[decision])
            rows.append([f"{grid.key}/{condition.cell}", lr_cell(c.choice), lr_cell(m.choice), shown, outcome])
    if not rows:
        return []
    return [
        {
            "id": "table-lr-ratio",
            "title": Message("table.lr_ratio.title"),
            "note": Message("table.lr_ratio.note"),
            "header": header("cell", "ce_lr", "mse_lr", "ratio", "inside_band"),
            "rows": rows,
        }
    ]


def reproduction_tables(ev: Evidence) -> list[dict]:
    table = RP.reproduction_table(ev)
    if not table:
        return []
    return [
        {
            "id": "table-mnist1d-reference",
            "title": Message("table.mnist1d_reference.title"),
            "note": Message("table.mnist1d_reference.note", seeds=str(RP.MIN_SEEDS)),
            "header": header("model", "role", "lr", "published", "reference_run", "ours", "odds_ratio", "band")
            + header("outcome"),
            "rows": [
                [
                    r["model"],
                    r["role"],
                    f"{r['lr']:g}",
                    f"{100 * r['published']:.0f}%",
                    f"{100 * r['reference_run']:.1f}%",
                    percent(r["ours"], n=True),
                    f"{r['odds_ratio'][0]:.3g} [{r['odds_ratio'][1]:.3g}, {r['odds_ratio'][2]:.3g}]",
                    Message(
                        "table.mnist1d_reference.band",
                        margin=f"{r['margin']:g}",
                        low=f"{100 * r['band'][0]:.1f}%",
                        high=f"{100 * r['band'][1]:.1f}%",
                    ),
                    verdict_word(r["outcome"]),
                ]
                for r in table
            ],
        }
    ]


def audit_table(items: list) -> list[dict]:
    """'How often this rule is wrong': every experiment rule's measured error rates at the design it judged."""
    rows = []
    for item in items:
        audit: A.Audit | None = item.audit
        if audit is None:
            continue
        name = getattr(item, "id", None) or getattr(item, "key", "")
        seeds = sorted(set(audit.seeds))
        examples = sorted({n for n in audit.test_examples if n})
        rows.append(
            [
                name,
                str(audit.cells),
                ", ".join(map(str, seeds)) or "-",
                ", ".join(f"{n:,}" for n in examples) or Message("audit.seeds_only"),
                audit.boundary,
                _rate(audit.false_agreement),
                audit.effect,
                _rate(audit.power),
                _rate(audit.false_disagreement),
                Message("word.yes" if audit.decides else "word.no"),
                str(audit.seeds_needed) if audit.seeds_needed else Message("audit.no_seed_count"),
            ]
        )
    if not rows:
        return []
    return [
        {
            "id": "table-audit",
            "title": Message("table.audit.title"),
            "note": Message(
                "table.audit.note",
                simulations=f"{A.SIMULATIONS:,}",
                power=f"{100 * A.POWER_TARGET:.0f}%",
                limit=f"{100 * A.FALSE_AGREEMENT_LIMIT:.0f}%",
            ),
            "header": header("rule", "cells", "seeds", "test_examples", "false_when", "false_agreement", "holds_when")
            + header("power", "false_disagreement", "decides", "seeds_needed"),
            "rows": rows,
        }
    ]


def _rate(x: float) -> str:
    return Message("word.na") if not math.isfinite(x) else f"{100 * x:.1f}%"
