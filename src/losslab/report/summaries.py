"""Tables computed from result rows: the numbers behind every verdict, table and figure of the report.

Intervals: one method everywhere
--------------------------------
Every "mean [low, high] (n = ...)" over seeds in the report, its figures and its verdicts is a 95%
Student-t interval over the n seeds, computed on a scale where the quantity is unbounded and
transformed back (``interval(values, kind)``):

- ``proportion`` (accuracy, ECE and the other calibration errors, in [0, 1]; the Brier score, in [0, 2],
  as a proportion of 2): the logit scale;
- ``positive`` (NLL, temperature: >= 0, unbounded above): the log scale;
- ``difference`` (a paired per-seed difference of two proportions, in [-1, 1]): the atanh scale;
- ``real`` (anything unbounded): no transform.

On the transformed scale g the interval is centred at g(mean) with the delta-method standard error
|g'(mean)| s / sqrt(n) (s: the standard deviation over seeds) and the t quantile with n - 1 degrees
of freedom; both ends are mapped back through g^-1. Why this form:

- the interval can never leave the quantity's range (no accuracy above 100%, no negative ECE), and it
  widens on the side away from a bound, as the sampling distribution of a mean near a bound does;
- it always contains the arithmetic mean that the tables report (the centre is g(mean), and g is
  monotone), and far from a bound it equals the usual t interval to first order;
- it needs no continuity correction when some seeds sit exactly on a bound (a seed at 100% test
  accuracy): only the mean enters g. The one case where g(mean) is infinite, every seed on the bound
  (all at 100%, all ECE = 0), is a sample with no spread, and the interval is the point itself,
  as it is whenever all seeds are equal: an interval over seeds measures seed-to-seed variation, and
  these seeds show none. The bootstrap intervals over test examples (below) are the place to read
  test-set uncertainty;
- with n = 1 there is no interval (shown as "(n = 1)"), and with n = 2 the t quantile (12.7) makes
  it honestly wide.

A bootstrap over seeds was the alternative; with the 5 to 10 seeds a run affords, percentile
intervals of a resampled mean are too narrow (about 80% coverage at n = 5 instead of 95%) and
degenerate at n = 2, where the t quantile is exact for normal data.

Uncertainty over test examples: the trainer stores 500 bootstrap replicates of test NLL and ECE per
member, computed on the same resamples of the test set for every member (``*_boot`` columns).
Replicate b of a mean over seeds is the mean of the members' replicate b, and the interval is the
2.5th and 97.5th percentile of those replicate means (``bootstrap_interval``).

Comparisons between two losses use the paired per-seed difference: members with the same seed share
their initial weights and data order, so pairing removes the variation both share.

Selection on validation, never on test
--------------------------------------
Where a loss was trained at several learning rates (or any other searched setting), the report
chooses one per loss and cell by the mean final *validation* accuracy over seeds; ties (means equal
to 1e-12) go to the lower mean validation NLL, then to the smaller learning rate. Test metrics are
then reported once, for the chosen setting. A choice at either end of the searched grid is flagged:
the best rate may lie outside the grid. Results written before the trainer had a validation split
have no ``val_accuracy``: their settings are chosen on test accuracy, every table says so, and the
verdicts that depend on such a choice say "not enough evidence".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats

from losslab.i18n import Message

CONFIDENCE = 0.95
TIE_TOLERANCE = 1e-12
KINDS = ("proportion", "positive", "difference", "real")
#: The range of each kind, checked before an interval is computed.
_RANGES = {
    "proportion": (0.0, 1.0),
    "positive": (0.0, math.inf),
    "difference": (-1.0, 1.0),
    "real": (-math.inf, math.inf),
}
#: A value may exceed its range by float rounding (an accuracy of 1 + 1e-16); beyond this it is an error.
_RANGE_SLACK = 1e-9

#: The methods in one paragraph each, for the report's "How the numbers are computed" section (catalogue messages).
INTERVAL_METHOD = Message("methods.intervals")
BOOTSTRAP_METHOD = Message("methods.bootstrap")
SELECTION_RULE = Message("methods.selection")

CHOSEN_ON_VALIDATION = "validation"
CHOSEN_ON_TEST = "test (no validation split)"
ONLY_SETTING = "only setting"


@dataclass(frozen=True)
class Interval:
    """A point estimate (the arithmetic mean over n seeds, or a full-test-set value) and its 95% interval."""

    mean: float
    low: float
    high: float
    n: int
    kind: str = "real"

    def __str__(self) -> str:
        return self.format()

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def format(self, scale: float = 1.0, digits: int = 1, unit: str = "", n: bool = True) -> str:
        """'mean [low, high] (n = ...)' with the values times ``scale``; ``n=False`` leaves out the count."""

        def num(x: float) -> str:
            text = f"{x * scale:.{digits}f}"
            return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"

        if not math.isfinite(self.mean):
            return "n/a"
        count = f" (n = {self.n})" if n else ""
        if not self.has_interval:
            return f"{num(self.mean)}{unit}" + (f" (n = {self.n})" if n or self.n < 2 else "")
        return f"{num(self.mean)}{unit} [{num(self.low)}, {num(self.high)}]{count}"

    @property
    def excludes_zero(self) -> bool:
        return self.has_interval and (self.low > 0 or self.high < 0)


def _transform(kind: str):
    """(g, g^-1, g') for an interval kind."""
    if kind == "proportion":
        return scipy.special.logit, scipy.special.expit, lambda m: 1.0 / (m * (1.0 - m))
    if kind == "positive":
        return np.log, np.exp, lambda m: 1.0 / m
    if kind == "difference":
        return np.arctanh, np.tanh, lambda m: 1.0 / (1.0 - m * m)
    return (lambda x: x), (lambda x: x), (lambda m: 1.0)


def interval(values, kind: str = "real", upper: float = 1.0) -> Interval:
    """Mean over seeds and its 95% t interval on the scale of ``kind`` (see the module docstring).

    ``values``: one number per seed (NaN and inf are dropped). ``kind``: "proportion" (in [0, upper]),
    "positive" (>= 0), "difference" (in [-1, 1]) or "real". ``upper``: the top of a proportion's range
    (2 for the multiclass Brier score). Returns ``Interval(mean, low, high, n)``; low and high are NaN
    when n < 2.

        >>> interval([1.0, 1.0, 0.98], "proportion").high <= 1.0
        True
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "proportion" and upper != 1.0:
        scaled = interval(np.asarray(values, dtype=np.float64) / upper, kind)
        return Interval(scaled.mean * upper, scaled.low * upper, scaled.high * upper, scaled.n, kind)
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, kind)
    lo_range, hi_range = _RANGES[kind]
    if v.min() < lo_range - _RANGE_SLACK or v.max() > hi_range + _RANGE_SLACK:
        raise ValueError(
            f"values must lie in [{lo_range:g}, {hi_range:g}] for a {kind} interval, got "
            f"{sorted({float(x) for x in v if not lo_range <= x <= hi_range})[:3]}; use kind='real' for unbounded values"
        )
    v = np.clip(v, lo_range, hi_range)
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, kind)
    s = float(v.std(ddof=1))
    if s == 0.0 or mean in (lo_range, hi_range):
        # No spread over seeds (every seed equal, which includes every seed on a bound): the point itself.
        return Interval(mean, mean, mean, n, kind)
    g, g_inv, g_prime = _transform(kind)
    half = float(scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * abs(g_prime(mean)) * s / math.sqrt(n)
    centre = float(g(mean))
    low, high = float(g_inv(centre - half)), float(g_inv(centre + half))
    # Back-transforming can round a far tail onto the bound (expit(40) == 1.0); keep the mean inside.
    return Interval(mean, min(low, mean), max(high, mean), n, kind)


def bootstrap_interval(replicates, point: float | None = None) -> Interval:
    """Percentile 95% interval of a mean over members from their bootstrap replicates over test examples.

    ``replicates``: one list of B replicate values per member, the same B resamples of the test set for
    every member, so replicate b of the mean over members is the mean of their replicate b.
    ``point``: the estimate to report (default: the mean of the replicate means). ``n`` is the number of
    members (seeds). Members without replicates (None, NaN) are left out.
    """
    lists = [np.asarray(r, dtype=np.float64) for r in replicates if _is_list(r)]
    if not lists:
        return Interval(math.nan if point is None else float(point), math.nan, math.nan, 0, "bootstrap")
    lengths = {len(r) for r in lists}
    if len(lengths) != 1:
        raise ValueError(
            f"replicates must have the same length for every member (the same resamples), got lengths {sorted(lengths)}"
        )
    means = np.vstack(lists).mean(axis=0)
    means = means[np.isfinite(means)]
    estimate = float(means.mean()) if point is None else float(point)
    if len(means) < 2:
        return Interval(estimate, math.nan, math.nan, len(lists), "bootstrap")
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), len(lists), "bootstrap")


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0


def loss_label(loss: str, params_json: str) -> str:
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
    """The last evaluation of every member of every cell (main phase)."""
    main = rows[rows["phase"] == "main"]
    last = main.groupby("cell")["step"].transform("max")
    return with_labels(main[main["step"] == last])


def has_validation(frame: pd.DataFrame) -> bool:
    """Whether these rows carry validation metrics (results from a trainer with a validation split)."""
    return "val_accuracy" in frame.columns and bool(frame["val_accuracy"].notna().any())


def seed_count(frame: pd.DataFrame, metric: str = "test_accuracy") -> int:
    """Distinct seeds with a finite value of ``metric``."""
    values = column(frame, metric)
    return int(frame.loc[np.isfinite(values.to_numpy(dtype=float)), "seed"].nunique())


# --- choosing each loss's setting on validation ------------------------------------------------------


def _choose(group: pd.DataFrame, searched: tuple[str, ...]) -> tuple[tuple, str]:
    """The searched setting (a tuple of values) with the best mean final validation accuracy, and how it was chosen.

    Rule: highest mean validation accuracy over seeds; ties (within 1e-12) go to the lower mean
    validation NLL, then to the smaller setting (the smaller learning rate). Without validation
    metrics the same rule runs on test accuracy and NLL, and the choice says so.
    """
    if len(group[list(searched)].drop_duplicates()) == 1:
        return tuple(group[list(searched)].iloc[0]), ONLY_SETTING
    on_validation = has_validation(group)
    acc, nll = ("val_accuracy", "val_nll") if on_validation else ("test_accuracy", "test_nll")
    table = (
        pd.DataFrame({"acc": column(group, acc), "nll": column(group, nll), **{k: group[k] for k in searched}})
        .groupby(list(searched), sort=True)[["acc", "nll"]]
        .mean()
    )
    best = table["acc"].max()
    tied = table[table["acc"] >= best - TIE_TOLERANCE]
    if len(tied) > 1 and tied["nll"].notna().any():
        tied = tied[tied["nll"] <= tied["nll"].min() + TIE_TOLERANCE]
    key = tied.index[0]  # sorted ascending: the smallest setting among the tied
    key = key if isinstance(key, tuple) else (key,)
    return key, CHOSEN_ON_VALIDATION if on_validation else CHOSEN_ON_TEST


def selection_table(
    rows: pd.DataFrame, by: tuple[str, ...] = ("cell", "loss_label"), searched: tuple[str, ...] = ("lr",)
) -> pd.DataFrame:
    """Per group (default: cell and loss), the setting chosen on validation and its test metrics.

    Columns: the ``by`` keys, ``loss`` (the loss label), ``dataset``, ``grid``, ``num_classes``,
    ``best_lr`` (the chosen learning rate), ``lrs_tried``, ``best_at_edge`` and ``edge`` ("low" or "high":
    the chosen rate is the grid's smallest or largest, so the best rate may lie outside the grid),
    ``chosen_on`` ("validation", "test (no validation split)" or "only setting"), ``val_accuracy``
    (mean at the chosen setting), intervals ``accuracy``, ``nll``, ``brier``, ``ece`` over seeds, and
    ``seeds``.
    """
    final = final_rows(rows)
    records = []
    for keys, group in final.groupby(list(by), sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        chosen, chosen_on = _choose(group, searched)
        mask = np.ones(len(group), dtype=bool)
        for name, value in zip(searched, chosen):
            mask &= (group[name] == value).to_numpy()
        picked = group[mask]
        lrs = sorted(float(x) for x in group["lr"].unique())
        best_lr = float(picked["lr"].iloc[0])
        edge = None
        if "lr" in searched and len(lrs) > 1:
            edge = "low" if best_lr == lrs[0] else ("high" if best_lr == lrs[-1] else None)
        record = dict(zip(by, keys))
        record.update(
            {
                "loss": picked["loss_label"].iloc[0],
                "dataset": picked["dataset"].iloc[0],
                "grid": picked["grid"].iloc[0],
                "num_classes": int(picked["num_classes"].iloc[0]),
                "best_lr": best_lr,
                "chosen": dict(zip(searched, chosen)),
                "lrs_tried": lrs,
                "best_at_edge": edge is not None,
                "edge": edge,
                "chosen_on": chosen_on,
                "val_accuracy": float(column(picked, "val_accuracy").mean()),
                "accuracy": interval(picked["test_accuracy"], "proportion"),
                "nll": interval(column(picked, "test_nll"), "positive"),
                "brier": interval(column(picked, "test_brier"), "proportion", upper=2.0),
                "ece": interval(column(picked, "test_ece"), "proportion"),
                "seeds": seed_count(picked),
            }
        )
        records.append(record)
    return pd.DataFrame(records)


def selected_rows(
    rows: pd.DataFrame, by: tuple[str, ...] = ("cell", "loss_label"), searched: tuple[str, ...] = ("lr",)
) -> pd.DataFrame:
    """The final rows of each group at its chosen setting, for paired comparisons (with a ``chosen_on``
    column, and ``edge``: "low" or "high" where the chosen rate is at the edge of its grid, else None)."""
    final = final_rows(rows)
    table = selection_table(rows, by, searched)
    if table.empty:
        return final.iloc[0:0].assign(chosen_on=pd.Series(dtype=str), edge=pd.Series(dtype=object))
    keep = []
    for record in table.to_dict("records"):
        mask = np.ones(len(final), dtype=bool)
        for name in by:
            mask &= (final[name] == record[name]).to_numpy()
        for name, value in record["chosen"].items():
            mask &= (final[name] == value).to_numpy()
        keep.append(final[mask].assign(chosen_on=record["chosen_on"], edge=record["edge"]))
    return pd.concat(keep, ignore_index=True)


# Names kept from before selection moved to validation.
best_lr_table = selection_table
best_lr_rows = selected_rows


def chosen_phrase(chosen_on) -> Message:
    """How the settings behind a table or figure were chosen, for its title: e.g. 'learning rates chosen on validation'."""
    ways = set(chosen_on)
    if CHOSEN_ON_TEST in ways:
        return Message("chosen.phrase_test")
    if CHOSEN_ON_VALIDATION in ways:
        return Message("chosen.phrase_validation")
    return Message("chosen.phrase_only")


def paired_difference(final: pd.DataFrame, metric: str, a: dict, b: dict, kind: str = "difference") -> Interval:
    """Interval of metric(a) - metric(b) over the (cell, seed) pairs both have; members selected by the column
    values in a and b.

    ``kind``: "difference" for proportions (accuracy: the atanh scale), "real" for unbounded metrics.
    """

    # A pair is the same seed in the same cell: across cells (two grids, two folders) seeds are other runs.
    keys = ["cell", "seed"] if "cell" in final.columns else ["seed"]

    def pick(sel):
        frame = final
        for key, value in sel.items():
            frame = frame[frame[key] == value]
        return frame.set_index(keys)[metric]

    left, right = pick(a), pick(b)
    pairs = left.index.intersection(right.index)
    return interval((left.loc[pairs] - right.loc[pairs]).to_numpy(), kind)


# --- calibration -------------------------------------------------------------------------------------

#: Calibration metrics of the report: column, label. Each has a temperature-scaled twin ``<column>_ts``.
CALIBRATION_METRICS = (
    ("test_nll", "NLL"),
    ("test_brier", "Brier"),
    ("test_ece", "ECE"),
    ("test_ece_adaptive", "adaptive ECE"),
    ("test_ece_classwise", "classwise ECE"),
    ("test_mce", "MCE"),
)
#: The interval kind of each calibration metric and the top of its range.
METRIC_RANGE = {
    "test_nll": ("positive", 1.0),
    "test_brier": ("proportion", 2.0),
    "test_ece": ("proportion", 1.0),
    "test_ece_adaptive": ("proportion", 1.0),
    "test_ece_classwise": ("proportion", 1.0),
    "test_mce": ("proportion", 1.0),
}
BOOTSTRAP_METRICS = ("test_nll", "test_ece", "test_nll_ts", "test_ece_ts")
RELIABILITY_BINS = 15


def calibration_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell and loss at its chosen setting: the temperature and every calibration metric, raw and scaled.

    Columns: cell, dataset, loss, best_lr, chosen_on, temperature, then ``<metric>`` and ``<metric>_ts``
    for each of ``CALIBRATION_METRICS`` (intervals over seeds on the log scale), and seeds.
    """
    chosen = selected_rows(rows)
    records = []
    for (cell, label), group in chosen.groupby(["cell", "loss_label"], sort=True):
        record = {
            "cell": cell,
            "dataset": group["dataset"].iloc[0],
            "loss": label,
            "best_lr": float(group["lr"].iloc[0]),
            "chosen_on": group["chosen_on"].iloc[0],
            "temperature": interval(column(group, "temperature"), "positive"),
            "seeds": seed_count(group),
        }
        for metric, _ in CALIBRATION_METRICS:
            kind, upper = METRIC_RANGE[metric]
            record[metric] = interval(column(group, metric), kind, upper)
            record[f"{metric}_ts"] = interval(column(group, f"{metric}_ts"), kind, upper)
        records.append(record)
    return pd.DataFrame(records)


def bootstrap_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell and loss at its chosen setting: 95% bootstrap intervals over test examples of NLL and ECE, raw and scaled.

    ``<metric>``: the mean over seeds of the full-test-set value with the percentile interval of the replicates;
    ``<metric>_resampled``: the mean of the replicates. ECE is biased upward on a resample (resampling adds
    noise to every bin, and |accuracy - confidence| turns noise into error), so its interval can lie above
    the full-test-set value: the report shows both.
    """
    chosen = selected_rows(rows)
    records = []
    for (cell, label), group in chosen.groupby(["cell", "loss_label"], sort=True):
        record = {"cell": cell, "dataset": group["dataset"].iloc[0], "loss": label}
        for metric in BOOTSTRAP_METRICS:
            replicates = list(column(group, f"{metric}_boot"))
            record[metric] = bootstrap_interval(replicates, column(group, metric).mean())
            record[f"{metric}_resampled"] = bootstrap_interval(replicates).mean
        records.append(record)
    return pd.DataFrame(records)


def reliability(group: pd.DataFrame, scaled: bool = False) -> pd.DataFrame:
    """The 15 equal-width confidence bins of a group of members (final rows), aggregated over members.

    Count: the sum of the members' counts. Confidence and accuracy: count-weighted means over the members
    whose bin is not empty (NaN for a bin empty in every member). ``scaled``: the temperature-scaled bins.
    Columns: bin, lower, upper, count, confidence, accuracy.
    """
    suffix = "_ts" if scaled else ""
    counts, conf_sum, acc_sum = np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS), np.zeros(RELIABILITY_BINS)
    for c, conf, acc in zip(
        column(group, f"rel_count{suffix}"),
        column(group, f"rel_confidence{suffix}"),
        column(group, f"rel_accuracy{suffix}"),
    ):
        if not (_is_list(c) and _is_list(conf) and _is_list(acc)):
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
    return "rel_count" in frame.columns and any(_is_list(v) for v in frame["rel_count"])


# --- learning rates ----------------------------------------------------------------------------------


def _grid_step(lrs: list[float], chosen: float) -> float:
    """The factor between the chosen rate and its neighbours in the grid (geometric mean of the two gaps)."""
    i = lrs.index(chosen)
    gaps = [lrs[i] / lrs[i - 1]] if i > 0 else []
    gaps += [lrs[i + 1] / lrs[i]] if i + 1 < len(lrs) else []
    return float(np.exp(np.mean(np.log(gaps)))) if gaps else math.nan


def edge_of(record: dict) -> str | None:
    """ "low", "high" or None (a missing value read back from a frame may be NaN rather than None)."""
    edge = record.get("edge")
    return edge if edge in ("low", "high") else None


def lr_ratio(numerator: dict, denominator: dict) -> dict:
    """How the ratio of two chosen learning rates becomes a range. A rate chosen inside its grid stands
    for a best rate within half a grid step of it (a factor sqrt(step) either way); a rate at the top of
    its grid only says the best rate is at least that high, one at the bottom that it is at most that
    low. The range of the ratio follows from those of the two rates: it is a value with both ends
    finite, a lower bound, an upper bound, or open at both ends.
    """
    # numerator, denominator: selection records (best_lr, lrs_tried, edge). Returns ratio (the measured
    # value), low and high (0 or inf at an open end) and bound: "value", "lower bound", "upper bound", "none".
    r = numerator["best_lr"] / denominator["best_lr"]
    sn = math.sqrt(_grid_step(numerator["lrs_tried"], numerator["best_lr"]))
    sd = math.sqrt(_grid_step(denominator["lrs_tried"], denominator["best_lr"]))
    top, bottom = edge_of(numerator), edge_of(denominator)
    # Lower end of the ratio: the numerator's smallest and the denominator's largest plausible best rate.
    low = 0.0 if top == "low" or bottom == "high" else r / (sn * sd)
    high = math.inf if top == "high" or bottom == "low" else r * sn * sd
    if top is None and bottom is None:
        bound = "value"
    elif low > 0:
        bound = "lower bound"
    elif math.isfinite(high):
        bound = "upper bound"
    else:
        bound = "none"
    return {"ratio": r, "low": low, "high": high, "bound": bound}


# --- saturation --------------------------------------------------------------------------------------


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
                "accuracy": interval(group["test_accuracy"], "proportion"),
                "start_accuracy": float(begin["train_accuracy"].mean()),
                "start_dead_fraction": float(begin["dead_fraction"].mean()),
                "start_grad_norm": float(begin["grad_norm"].mean()),
                "target": target,
                "reached": int(reach.notna().sum()) if reach is not None else None,
                "members": len(group),
                "seeds": seed_count(group),
                "median_steps_to_target": float(reach.median()) if reach is not None and reach.notna().any() else None,
            }
        )
    return pd.DataFrame(records)


def curves(rows: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """Mean of ``metric`` over seeds at each step, per group."""
    rows = with_labels(rows)
    return rows.groupby([*by, "step"])[metric].mean().reset_index()


# --- settings of a run -------------------------------------------------------------------------------


def run_setting(manifest: dict, grid_label: str | None, key: str, default):
    """A training setting (e.g. ``dead_epsilon``) as the run used it: the spec's [train] table, then the
    size's train override, then the grid's own train table, each overriding the one before (as
    ``losslab.experiments.spec.expand`` merges them); ``default`` (the trainer's default) when none sets it."""
    data = manifest.get("spec_data", {}) or {}
    value = data.get("train", {}).get(key, default)
    size = manifest.get("size")
    if size and size != "full":
        value = data.get("sizes", {}).get(size, {}).get("train", {}).get(key, value)
    for grid in data.get("grid", []):
        if grid.get("label") == grid_label:
            value = grid.get("train", {}).get(key, value)
    return value
