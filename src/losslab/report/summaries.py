"""Tables behind the article's own questions and the figures: saturation, reliability bins, training curves,
and the test-set bootstrap of NLL and ECE.

The general per-grid numbers (each loss at its rate chosen on validation, intervals, comparisons) are
``losslab.report.grids``; the intervals themselves ``losslab.report.stats``. What is here reads result rows
directly: the start of training (dead fractions, gradient norms, steps to a target accuracy) and the list
columns the trainer writes at the final evaluation (reliability bins, bootstrap replicates).

Uncertainty over test examples for NLL and ECE: the trainer stores 500 bootstrap replicates of each per
member, computed on the same resamples of the test set for every member (``*_boot`` columns). Replicate b of
a mean over seeds is the mean of the members' replicate b, and the interval is the 2.5th and 97.5th
percentile of those replicate means (``stats.bootstrap_interval``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from losslab.report import selection as sel
from losslab.report import stats

BOOTSTRAP_METRICS = ("test_nll", "test_ece", "test_nll_ts", "test_ece_ts")
RELIABILITY_BINS = 15


def bootstrap(chosen: pd.DataFrame) -> dict[str, stats.Interval]:
    """For the members of one loss at its chosen rate: per metric of ``BOOTSTRAP_METRICS``, the mean over seeds of
    the full-test-set value with the percentile interval of the replicates (``<metric>``), and the mean of the
    replicates (``<metric>_resampled``; ECE is biased upward on a resample, so its interval can lie above the
    full-test-set value)."""
    out = {}
    for metric in BOOTSTRAP_METRICS:
        replicates = list(sel.column(chosen, f"{metric}_boot"))
        out[metric] = stats.bootstrap_interval(replicates, sel.column(chosen, metric).mean())
        out[f"{metric}_resampled"] = stats.bootstrap_interval(replicates)
    return out


def reliability(group: pd.DataFrame, scaled: bool = False) -> pd.DataFrame:
    """The 15 equal-width confidence bins of a group of members (final rows), aggregated over members.

    Count: the sum of the members' counts. Confidence and accuracy: count-weighted means over the members
    whose bin is not empty (NaN for a bin empty in every member). ``scaled``: the temperature-scaled bins.
    Columns: bin, lower, upper, count, confidence, accuracy.
    """
    suffix = "_ts" if scaled else ""
    counts, conf_sum, acc_sum = np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS)
    for c, conf, acc in zip(
        sel.column(group, f"rel_count{suffix}"),
        sel.column(group, f"rel_confidence{suffix}"),
        sel.column(group, f"rel_accuracy{suffix}"),
    ):
        if not (stats.is_list(c) and stats.is_list(conf) and stats.is_list(acc)):
            continue
        c, conf, acc = (np.asarray(x, dtype=np.float64) for x in (c, conf, acc))
        if not len(c) == len(conf) == len(acc) == RELIABILITY_BINS:
            raise ValueError(
                f"reliability bins must have {RELIABILITY_BINS} entries, got {len(c)}, {len(conf)}, {len(acc)}"
            )
        filled = c > 0
        counts += np.where(filled, c, 0.0)
        conf_sum += np.where(filled, c * np.nan_to_num(conf), 0.0)
        acc_sum += np.where(filled, c * np.nan_to_num(acc), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(counts > 0, conf_sum / counts, np.nan)
        accuracy = np.where(counts > 0, acc_sum / counts, np.nan)
    edges = np.arange(RELIABILITY_BINS + 1) / RELIABILITY_BINS
    return pd.DataFrame(
        {
            "bin": np.arange(RELIABILITY_BINS),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": counts,
            "confidence": confidence,
            "accuracy": accuracy,
        }
    )


def has_reliability(frame: pd.DataFrame) -> bool:
    return "rel_count" in frame.columns and any(stats.is_list(v) for v in frame["rel_count"])


def steps_to_target(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per member: the first evaluated step with test accuracy >= target (NaN if never)."""
    rows = sel.with_labels(rows[rows["phase"] == "main"])
    reached = rows[rows["test_accuracy"] >= target]
    first = reached.groupby(["cell", "member"])["step"].min()
    members = rows.groupby(["cell", "member"]).first()[["loss_label", "init_scale", "seed", "lr"]]
    out = members.join(first.rename("steps_to_target"))
    return out.reset_index()


def saturation_table(rows: pd.DataFrame, targets: dict[str, float]) -> pd.DataFrame:
    """Per cell, loss and initial scale: final accuracy, dead fraction and gradient norm at the start, steps to target."""
    final = sel.final_rows(rows)
    start = sel.with_labels(rows[(rows["phase"] == "main") & (rows["step"] == 0)])
    grids = final.groupby("cell")["grid"].first()
    # Steps to target once per cell, then picked per (loss, scale) below.
    reach_by_cell = {
        cell: steps_to_target(rows[rows["cell"] == cell], targets[grid])
        for cell, grid in grids.items()
        if targets.get(grid)
    }
    records = []
    for (cell, label, scale), group in final.groupby(["cell", "loss_label", "init_scale"]):
        begin = start[(start["cell"] == cell) & (start["loss_label"] == label) & (start["init_scale"] == scale)]
        target = targets.get(grids[cell])
        reach = reach_by_cell.get(cell)
        if reach is not None:
            reach = reach[(reach["loss_label"] == label) & (reach["init_scale"] == scale)]["steps_to_target"]
        records.append(
            {
                "cell": cell,
                "dataset": group["dataset"].iloc[0],
                "loss": label,
                "init_scale": scale,
                "accuracy": stats.interval(group["test_accuracy"], "proportion"),
                "start_accuracy": float(begin["train_accuracy"].mean()),
                "start_dead_fraction": float(begin["dead_fraction"].mean()),
                "start_grad_norm": float(begin["grad_norm"].mean()),
                "target": target,
                "reached": int(reach.notna().sum()) if reach is not None else None,
                "members": len(group),
                "diverged": int(group["diverged"].sum()),
                "seeds": sel.seed_count(group),
                "median_steps_to_target": float(reach.median()) if reach is not None and reach.notna().any() else None,
            }
        )
    return pd.DataFrame(records)


def curves(rows: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean of ``metric`` over seeds at each step, per group."""
    rows = sel.with_labels(rows)
    return rows.groupby([*by, "step"])[metric].mean().reset_index()
