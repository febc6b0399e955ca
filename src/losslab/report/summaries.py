"""Tables computed from result rows: the numbers behind every verdict and figure of the report.

Intervals are 95% Student-t intervals over seeds. Comparisons between two losses use the paired
difference per seed: members with the same seed share their initial weights and data order, so
pairing removes the seed-to-seed variation that both share.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return self.format()

    def format(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        if self.n < 2 or not math.isfinite(self.low):
            return f"{self.mean * scale:.{digits}f}{unit} (n = {self.n})"
        return (
            f"{self.mean * scale:.{digits}f}{unit} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
            f" (n = {self.n})"
        )

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)


def interval(values) -> Interval:
    """Mean and 95% t-interval of ``values`` (NaN-free)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(scipy.stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def loss_label(loss: str, params_json: str) -> str:
    params = json.loads(params_json) if params_json else {}
    if not params:
        return loss
    return f"{loss}(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"


def with_labels(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    rows["loss_label"] = [loss_label(l, p) for l, p in zip(rows["loss"], rows["loss_params"])]
    return rows


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every member of every cell (main phase)."""
    main = rows[rows["phase"] == "main"]
    last = main.groupby("cell")["step"].transform("max")
    return with_labels(main[main["step"] == last])


def paired_difference(final: pd.DataFrame, metric: str, a: dict, b: dict) -> Interval:
    """Interval of metric(a) - metric(b) over seeds, members selected by the column values in a and b."""

    def pick(sel):
        frame = final
        for key, value in sel.items():
            frame = frame[frame[key] == value]
        return frame.set_index("seed")[metric]

    left, right = pick(a), pick(b)
    seeds = left.index.intersection(right.index)
    return interval((left.loc[seeds] - right.loc[seeds]).to_numpy())


def steps_to_target(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per member: the first evaluated step with test accuracy >= target (NaN if never)."""
    rows = with_labels(rows[rows["phase"] == "main"])
    reached = rows[rows["test_accuracy"] >= target]
    first = reached.groupby(["cell", "member"])["step"].min()
    members = rows.groupby(["cell", "member"]).first()[["loss_label", "init_scale", "seed", "lr"]]
    out = members.join(first.rename("steps_to_target"))
    return out.reset_index()


def saturation_table(rows: pd.DataFrame, targets: dict[str, float]) -> pd.DataFrame:
    """Per cell, loss and initial scale: final accuracy, dead fraction and gradient norm at the start, steps to target."""
    final = final_rows(rows)
    start = with_labels(rows[(rows["phase"] == "main") & (rows["step"] == 0)])
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
                "accuracy": interval(group["test_accuracy"]),
                "start_accuracy": float(begin["train_accuracy"].mean()),
                "start_dead_fraction": float(begin["dead_fraction"].mean()),
                "start_grad_norm": float(begin["grad_norm"].mean()),
                "target": target,
                "reached": int(reach.notna().sum()) if reach is not None else None,
                "members": len(group),
                "median_steps_to_target": float(reach.median()) if reach is not None and reach.notna().any() else None,
            }
        )
    return pd.DataFrame(records)


def best_lr_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell and loss: the learning rate with the best mean final test accuracy, and its metrics."""
    final = final_rows(rows)
    records = []
    for (cell, label), group in final.groupby(["cell", "loss_label"]):
        by_lr = group.groupby("lr")["test_accuracy"].mean()
        best = float(by_lr.idxmax())
        chosen = group[group["lr"] == best]
        records.append(
            {
                "cell": cell,
                "dataset": group["dataset"].iloc[0],
                "num_classes": int(group["num_classes"].iloc[0]),
                "loss": label,
                "best_lr": best,
                "lrs_tried": sorted(float(x) for x in by_lr.index),
                "best_at_edge": best in (by_lr.index.min(), by_lr.index.max()) and len(by_lr) > 1,
                "accuracy": interval(chosen["test_accuracy"]),
                "nll": interval(chosen["test_nll"]),
                "brier": interval(chosen["test_brier"]),
                "ece": interval(chosen["test_ece"]),
                "seeds": len(chosen),
            }
        )
    return pd.DataFrame(records)


def best_lr_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The final rows of each loss at its best learning rate (per cell), for paired comparisons."""
    final = final_rows(rows)
    best = best_lr_table(rows)
    keep = final.merge(
        best[["cell", "loss", "best_lr"]].rename(columns={"loss": "loss_label"}), on=["cell", "loss_label"]
    )
    return keep[keep["lr"] == keep["best_lr"]]


def curves(rows: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean of ``metric`` over seeds at each step, per group."""
    rows = with_labels(rows)
    return rows.groupby([*by, "step"])[metric].mean().reset_index()
