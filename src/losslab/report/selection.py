"""Each loss's learning rate, chosen on validation: never on test, never a rate at which a member diverged.

A grid trains every loss over its own learning rates, at each of its initial scales and on each of its cells
(a cell per combination of swept dataset options), with several seeds. The report compares losses within a
*condition*: one cell at one initial scale (``CONDITION``). Nothing is pooled across conditions: every table
row, interval and verdict is about one condition, and says how many members it averages.

Within a condition, each loss's rate is chosen by the mean final **validation** accuracy over its seeds;
ties (means equal to 1e-12) go to the lower mean validation NLL, then to the smaller rate. Test metrics are
then reported once, for the chosen rate. A rate at which any member **diverged** (its logits stopped being
finite) is never chosen, however its other seeds did: a rate that sometimes blows up is not a setting
anyone would keep, and the survivors' mean would flatter it. The chosen rate is flagged when it is the
smallest or largest of the rates tried (the best may lie outside the grid), and the whole curve (validation
accuracy against rate, diverged rates marked) is kept for the report's sensitivity figure. Results without a
validation split fall back to test accuracy and say so; the verdicts that rest on such a choice are then
"not enough evidence".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from losslab.report import stats
from losslab.train.metrics import unpack_correct

TIE_TOLERANCE = 1e-12
CHOSEN_ON_VALIDATION = "validation"
CHOSEN_ON_TEST = "test (no validation split)"
ONLY_SETTING = "only setting"
ALL_DIVERGED = "every rate diverged"
#: What identifies a condition within a grid: the cell (its dataset options) and the initial logit scale.
CONDITION = ("cell", "init_scale")


def loss_label(loss: str, params_json: str | None) -> str:
    """'focal(gamma=2)': a loss and its parameters, the name rows and tables use for one arm of a comparison."""
    params = json.loads(params_json) if params_json else {}
    if not params:
        return loss
    return f"{loss}(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"


def with_labels(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    rows["loss_label"] = [loss_label(l, p) for l, p in zip(rows["loss"], rows["loss_params"])]
    return rows


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """``frame[name]``, or NaN for every row when results written by an older trainer lack the column."""
    return frame[name] if name in frame.columns else pd.Series(math.nan, index=frame.index, dtype=float)


def final_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every member of every cell (main phase), with ``loss_label`` and ``diverged``."""
    main = rows[rows["phase"] == "main"]
    last = main.groupby("cell")["step"].transform("max")
    final = with_labels(main[main["step"] == last])
    final["diverged"] = diverged(final)
    return final


def diverged(frame: pd.DataFrame) -> pd.Series:
    """Whether each member had diverged: the trainer's flag, or (older results) a non-finite loss or NLL."""
    flag = frame["diverged"].fillna(False).astype(bool) if "diverged" in frame.columns else False
    broken = ~np.isfinite(column(frame, "train_loss").to_numpy(dtype=float))
    broken |= ~np.isfinite(column(frame, "test_nll").to_numpy(dtype=float)) & column(frame, "test_nll").notna()
    return pd.Series(np.asarray(flag) | broken, index=frame.index)


def has_validation(frame: pd.DataFrame) -> bool:
    """Whether these rows carry validation metrics (results from a trainer with a validation split)."""
    return "val_accuracy" in frame.columns and bool(frame["val_accuracy"].notna().any())


def seed_count(frame: pd.DataFrame, metric: str = "test_accuracy") -> int:
    """Distinct seeds with a finite value of ``metric``."""
    values = column(frame, metric)
    return int(frame.loc[np.isfinite(values.to_numpy(dtype=float)), "seed"].nunique())


@dataclass(frozen=True)
class RatePoint:
    """One learning rate of one loss in one condition: its members and how they ended."""

    lr: float
    members: int
    diverged: int
    val_accuracy: float  # mean over the members that did not diverge (NaN: none, or no validation split)
    test_accuracy: float
    val_nll: float

    def as_record(self) -> dict:
        def plain(x):
            return float(x) if math.isfinite(x) else None

        return {
            "lr": self.lr,
            "members": self.members,
            "diverged": self.diverged,
            "val_accuracy": plain(self.val_accuracy),
            "test_accuracy": plain(self.test_accuracy),
        }


@dataclass(frozen=True)
class Choice:
    """A loss's chosen rate in one condition and the curve it was chosen from."""

    lr: float | None  # None: every rate diverged
    chosen_on: str
    edge: str | None  # "low" / "high": the chosen rate is the smallest / largest tried
    curve: tuple[RatePoint, ...] = field(default_factory=tuple)

    @property
    def lrs_tried(self) -> list[float]:
        return [p.lr for p in self.curve]

    @property
    def diverged_lrs(self) -> list[float]:
        return [p.lr for p in self.curve if p.diverged]


def choose(group: pd.DataFrame) -> Choice:
    """The learning rate of one loss in one condition (final rows of its members), chosen as the module says."""
    on_validation = has_validation(group)
    acc_column, nll_column = ("val_accuracy", "val_nll") if on_validation else ("test_accuracy", "test_nll")
    curve = []
    for lr, members in group.groupby("lr", sort=True):
        alive = members[~members["diverged"]]
        curve.append(
            RatePoint(
                float(lr),
                len(members),
                int(members["diverged"].sum()),
                float(column(alive, "val_accuracy").mean()) if len(alive) else math.nan,
                float(column(alive, "test_accuracy").mean()) if len(alive) else math.nan,
                float(column(alive, "val_nll").mean()) if len(alive) else math.nan,
            )
        )
    eligible = [p for p in curve if p.diverged == 0]
    if not eligible:
        return Choice(None, ALL_DIVERGED, None, tuple(curve))
    if len(curve) == 1:
        return Choice(curve[0].lr, ONLY_SETTING, None, tuple(curve))
    score = {
        p.lr: (
            float(column(group[group["lr"] == p.lr], acc_column).mean()),
            float(column(group[group["lr"] == p.lr], nll_column).mean()),
        )
        for p in eligible
    }
    best = max(acc for acc, _ in score.values())
    tied = [lr for lr, (acc, _) in score.items() if acc >= best - TIE_TOLERANCE]
    if len(tied) > 1 and any(math.isfinite(score[lr][1]) for lr in tied):
        lowest = min(score[lr][1] for lr in tied if math.isfinite(score[lr][1]))
        tied = [lr for lr in tied if math.isfinite(score[lr][1]) and score[lr][1] <= lowest + TIE_TOLERANCE]
    chosen = min(tied)
    lrs = [p.lr for p in curve]
    edge = "low" if chosen == lrs[0] else ("high" if chosen == lrs[-1] else None)
    return Choice(chosen, CHOSEN_ON_VALIDATION if on_validation else CHOSEN_ON_TEST, edge, tuple(curve))


def runs_of(members: pd.DataFrame) -> stats.Runs:
    """The chosen members of one loss as ``stats.Runs``: per-seed accuracy and, where recorded, right/wrong bits."""
    members = members.sort_values("seed")
    accuracy = members["test_accuracy"].to_numpy(dtype=np.float64)
    accuracy = np.where(members["diverged"].to_numpy(dtype=bool), np.nan, accuracy)
    correct = None
    if "test_correct" in members.columns and "test_examples" in members.columns:
        packed = list(members["test_correct"])
        sizes = members["test_examples"].to_numpy(dtype=float)
        if packed and all(isinstance(p, (bytes, bytearray)) for p in packed) and np.isfinite(sizes).all():
            correct = np.stack([unpack_correct(p, int(n)) for p, n in zip(packed, sizes)])
    return stats.Runs(tuple(int(s) for s in members["seed"]), accuracy, correct)


def chosen_phrase(chosen_on) -> str:
    """How the settings behind a table or figure were chosen: the catalogue key of a phrase."""
    ways = set(chosen_on)
    if CHOSEN_ON_TEST in ways:
        return "chosen.phrase_test"
    if CHOSEN_ON_VALIDATION in ways:
        return "chosen.phrase_validation"
    return "chosen.phrase_only"
