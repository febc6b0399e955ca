"""Every grid of every results folder, summarised the same way, whatever its role: the report's general path.

For each grid: each condition (``selection.CONDITION``: a cell at an initial scale) on its own, and in it each
loss at its learning rate chosen on validation (rates tried, the chosen one and whether it sits at the grid's
edge, validation and test accuracy, the calibration metrics raw and temperature-scaled, the temperature, how
many members the row averages and how many diverged), then each loss against the grid's **baseline** (the
grid's ``baseline`` key; by default cross-entropy where the grid trains it, else its first loss): the paired
difference in test accuracy, the effect on the log-odds scale with its outcome against the grid's margin, and
the probability of improvement. The article's claims (``losslab.report.claims``) read these summaries for the
grids whose role asks their question; a grid without a role is shown all the same.

Outcomes of a comparison, against the grid's ``margin`` (an odds ratio m > 1; the effect is the difference of
log-odds of being right, A minus the baseline, whose interval is [low, high]):

- "better": low > log m;  "worse": high < -log m;
- "equivalent": -log m < low and high < log m;
- "not worse": low > -log m otherwise;  "not better": high < log m otherwise;
- "undecided": the interval reaches past both -log m and log m (or there is no interval).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from losslab.experiments.spec_keys import DEFAULT_MARGIN, default_baseline
from losslab.report import selection as sel
from losslab.report import stats
from losslab.train.metrics import METRICS

# DEFAULT_MARGIN and default_baseline are the grid keys' declared defaults (losslab.experiments.spec_keys). The
# margin is an odds ratio of being right: 1.25 is 98.2% against 97.8% near the top, 64% against 59% in the middle,
# a difference smaller than this is not worth a change of loss.
__all__ = ["DEFAULT_MARGIN", "default_baseline"]
OUTCOMES = ("better", "worse", "equivalent", "not worse", "not better", "undecided")
#: The metrics each loss's row carries beside its accuracy (raw, and temperature-scaled where declared so): every
#: test-set metric declared in ``train.metrics.METRICS`` that the trainer computes from the logits, so a metric
#: declared there reaches the report's summaries and ``report.json`` with no change here.
ROW_METRICS = tuple(
    name for name, m in METRICS.items() if m.split == "test" and m.fn is not None and name != "test_accuracy"
)


@dataclass
class Arm:
    """One loss in one condition, at its chosen rate."""

    loss: str  # its label, e.g. "focal(gamma=2)"
    name: str
    params: dict
    choice: sel.Choice
    members: int  # members averaged: those at the chosen rate that did not diverge
    diverged: int  # members that diverged, over every rate tried
    seeds: int
    accuracy: stats.Interval
    val_accuracy: float
    metrics: dict[str, stats.Interval]
    runs: stats.Runs
    chosen: pd.DataFrame = field(repr=False)  # final rows at the chosen rate
    origin: str = "built-in"


@dataclass
class Comparison:
    """A loss against the grid's baseline in one condition, seeds paired."""

    loss: str
    baseline: str
    difference: stats.Interval  # test accuracy, A - baseline
    effect: stats.Effect  # log-odds, A - baseline
    improvement: stats.Interval  # P(a run of A beats a run of the baseline)
    outcome: str


@dataclass
class Condition:
    cell: str
    init_scale: float
    dataset: str
    dataset_options: dict
    num_classes: int
    test_examples: int | None
    arms: list[Arm]
    comparisons: list[Comparison]

    def arm(self, loss: str) -> Arm | None:
        return next((a for a in self.arms if a.loss == loss), None)


@dataclass
class Grid:
    """One grid of one results folder, summarised."""

    spec: str
    label: str
    role: str | None
    model: str
    baseline: str
    margin: float
    conditions: list[Condition]
    rows: pd.DataFrame = field(repr=False)  # every row of the grid, with loss labels
    settings: dict = field(default_factory=dict)  # target_accuracy, dead_epsilon, ... as the run used them

    @property
    def key(self) -> str:
        return f"{self.spec}/{self.label}"

    @property
    def varying(self) -> list[str]:
        """The condition axes that take more than one value in this grid (each splits the tables)."""
        out = []
        if len({c.cell for c in self.conditions}) > 1:
            out.append("cell")
        if len({c.init_scale for c in self.conditions}) > 1:
            out.append("init_scale")
        return out


def outcome(effect: stats.Effect, margin: float) -> str:
    """The comparison's outcome against an odds-ratio margin (the module docstring's vocabulary)."""
    if not effect.has_interval:
        return "undecided"
    bound = math.log(margin)
    if effect.low > bound:
        return "better"
    if effect.high < -bound:
        return "worse"
    if effect.low > -bound and effect.high < bound:
        return "equivalent"
    if effect.low > -bound:
        return "not worse"
    if effect.high < bound:
        return "not better"
    return "undecided"


def _metric_intervals(chosen: pd.DataFrame) -> dict[str, stats.Interval]:
    out = {}
    for name in (*ROW_METRICS, "temperature"):
        m = METRICS[name]
        for col in m.columns:
            out[col] = stats.interval(sel.column(chosen, col), m.kind, m.upper)
    return out


def _arm(label: str, group: pd.DataFrame, origins: dict[str, str]) -> Arm:
    choice = sel.choose(group)
    alive = group[~group["diverged"]]
    chosen = alive[alive["lr"] == choice.lr] if choice.lr is not None else alive.iloc[0:0]
    runs = sel.runs_of(chosen) if len(chosen) else stats.Runs((), np.zeros(0))
    name = str(group["loss"].iloc[0])
    return Arm(
        loss=label,
        name=name,
        params=json.loads(group["loss_params"].iloc[0] or "{}"),
        choice=choice,
        members=len(chosen),
        diverged=int(group["diverged"].sum()),
        seeds=sel.seed_count(chosen),
        accuracy=stats.accuracy_interval(runs) if len(chosen) else stats.NA,
        val_accuracy=float(sel.column(chosen, "val_accuracy").mean()) if len(chosen) else math.nan,
        metrics=_metric_intervals(chosen),
        runs=runs,
        chosen=chosen,
        origin=origins.get(name, "built-in"),
    )


def _compare(arm: Arm, base: Arm, margin: float) -> Comparison:
    effect = stats.log_odds_effect(arm.runs, base.runs)
    return Comparison(
        arm.loss,
        base.loss,
        stats.difference_interval(arm.runs, base.runs),
        effect,
        stats.probability_of_improvement(arm.runs.accuracy, base.runs.accuracy),
        outcome(effect, margin),
    )


def summarise_grid(spec: str, label: str, info: dict, rows: pd.DataFrame, origins: dict[str, str]) -> Grid:
    """One grid's summary from its rows (all cells); ``info``: role, baseline, margin and settings."""
    final = sel.final_rows(rows)
    losses = list(dict.fromkeys(sel.with_labels(rows)["loss_label"]))
    baseline = info.get("baseline") or default_baseline(losses)
    margin = float(info.get("margin") or DEFAULT_MARGIN)
    conditions = []
    for (cell, scale), group in final.groupby(list(sel.CONDITION), sort=True):
        arms = [_arm(label_, members, origins) for label_, members in group.groupby("loss_label", sort=False)]
        arms.sort(key=lambda a: losses.index(a.loss) if a.loss in losses else len(losses))
        base = next((a for a in arms if a.loss == baseline), None)
        comparisons = (
            [_compare(a, base, margin) for a in arms if a is not base and a.members and base.members]
            if base is not None
            else []
        )
        first = group.iloc[0]
        examples = sel.column(group, "test_examples").dropna()
        conditions.append(
            Condition(
                cell=str(cell),
                init_scale=float(scale),
                dataset=str(first["dataset"]),
                dataset_options=json.loads(first.get("dataset_options", "{}") or "{}"),
                num_classes=int(first["num_classes"]),
                test_examples=int(examples.iloc[0]) if len(examples) else None,
                arms=arms,
                comparisons=comparisons,
            )
        )
    return Grid(
        spec=spec,
        label=label,
        role=info.get("role"),
        model=str(final["model"].iloc[0]) if "model" in final and len(final) else "",
        baseline=baseline,
        margin=margin,
        conditions=conditions,
        rows=sel.with_labels(rows),
        settings={k: v for k, v in info.items() if k not in ("role", "baseline", "margin")},
    )


def summarise(results: dict[str, tuple[dict, pd.DataFrame]], grid_info) -> list[Grid]:
    """Every grid of every results folder, in the order the specs list them. ``grid_info(spec, manifest)`` gives
    each grid label's role, baseline, margin and settings (``losslab.report.claims.grid_info``)."""
    grids = []
    for spec, (manifest, rows) in results.items():
        if rows.empty:
            continue
        info = grid_info(spec, manifest)
        origins = replaced_losses(manifest)
        for label in list(dict.fromkeys([*info, *rows["grid"].unique()])):
            grid_rows = rows[rows["grid"] == label]
            if grid_rows.empty:
                continue
            grids.append(summarise_grid(spec, label, info.get(label, {}), grid_rows, origins))
    return grids


def replaced_losses(manifest: dict) -> dict[str, str]:
    """Where the run's losses that are not built in came from (from the manifest): name -> "from <plugin>" for a
    loss a plugin of the spec registered, "replaced by <plugin>" for a built-in loss a plugin replaced."""
    out = {}
    for plugin in manifest.get("plugins") or []:
        if isinstance(plugin, dict):
            names = [plugin.get("loss"), *((plugin.get("registered") or {}).get("loss") or [])]
            out.update({str(n): f"from {plugin.get('source', '?')}" for n in names if n})
    entries = list(manifest.get("replaced") or [])
    for cell in manifest.get("cells") or []:
        entries += list(cell.get("replaced") or []) if isinstance(cell, dict) else []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("registry", "loss") == "loss" and entry.get("name"):
            out[str(entry["name"])] = f"replaced by {entry.get('by', '?')}"
    return out
