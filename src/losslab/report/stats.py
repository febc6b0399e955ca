"""Intervals and comparisons: every "mean [low, high]" and every comparison of two losses in the report.

Two sources of uncertainty
--------------------------
A loss's test accuracy in a results folder is a mean over n seeds, each scored on the same N test examples.
It is uncertain for two reasons: the seeds are a sample of training runs (another n seeds give another mean),
and the test set is a sample of examples (another N examples give another mean). The report's intervals for
accuracy, and for differences between two losses, include both, as the **sum of the two variances**:

    V = s^2 / n  +  sigma^2 / N

``s``: the standard deviation of the per-seed accuracies; ``sigma``: the standard deviation over test
examples of each example's accuracy averaged over the seeds. For a paired comparison of losses A and B the
same formula runs on differences: per seed (A's accuracy minus B's, the two runs sharing their seed's
initial weights and data order) and per example (A's mean correctness on that example minus B's), so what
both share cancels. The degrees of freedom follow Welch and Satterthwaite, V^2 / ((s^2/n)^2 / (n - 1) +
(sigma^2/N)^2 / (N - 1)); a few seeds keep them near n - 1, a seed spread far below the test-set noise
lets them grow towards N - 1.

Each interval is computed on a scale where the quantity is unbounded (``Scale``) and mapped back: accuracy
on the logit scale, a difference of accuracies on the atanh scale, the verdicts' effect (a difference of
log-odds) as it is. On that scale the interval is centred at the estimate with the delta-method standard
error and the t quantile; it can never leave the quantity's range and always contains the reported mean.

Results written before the trainer kept each member's right and wrong test examples have no ``sigma``: their
intervals are over seeds only, and every table that shows one says so (``TwoWay.test_sampling``).

The probability of improvement (Agarwal et al. 2021, rliable): P(A > B) = the share of pairs (a run of A, a
run of B) in which A's run is more accurate, ties counting one half; its 95% interval is the percentile
interval of 2,000 bootstrap resamples of each loss's seeds, resampled separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats

CONFIDENCE = 0.95
KINDS = ("proportion", "positive", "difference", "real")
#: The range of each interval kind, checked before an interval is computed.
RANGES = {
    "proportion": (0.0, 1.0),
    "positive": (0.0, math.inf),
    "difference": (-1.0, 1.0),
    "real": (-math.inf, math.inf),
}
#: A value may exceed its range by float rounding (an accuracy of 1 + 1e-16); beyond this it is an error.
RANGE_SLACK = 1e-9
POI_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate (a mean over n seeds, or a full-test-set value) and its 95% interval.

    ``test_sampling``: whether the interval includes the test set's sampling (the two-way intervals) or only
    the spread over seeds (None where the question does not arise, e.g. a bootstrap interval)."""

    mean: float
    low: float
    high: float
    n: int
    kind: str = "real"
    test_sampling: bool | None = None

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

    def as_record(self) -> dict:
        """The interval as plain JSON values (NaN and inf become None)."""

        def plain(x):
            return float(x) if x is not None and math.isfinite(x) else None

        return {
            "mean": plain(self.mean),
            "low": plain(self.low) if self.has_interval else None,
            "high": plain(self.high) if self.has_interval else None,
            "n": int(self.n),
            "kind": self.kind,
            "test_sampling": self.test_sampling,
        }


NA = Interval(math.nan, math.nan, math.nan, 0)


def _transform(kind: str):
    """(g, g^-1, g') for an interval kind: the scale on which the quantity is unbounded."""
    if kind == "proportion":
        return scipy.special.logit, scipy.special.expit, lambda m: 1.0 / (m * (1.0 - m))
    if kind == "positive":
        return np.log, np.exp, lambda m: 1.0 / m
    if kind == "difference":
        return np.arctanh, np.tanh, lambda m: 1.0 / (1.0 - m * m)
    return (lambda x: x), (lambda x: x), (lambda m: 1.0)


def _check_range(values: np.ndarray, kind: str) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    lo, hi = RANGES[kind]
    if values.size and (values.min() < lo - RANGE_SLACK or values.max() > hi + RANGE_SLACK):
        bad = sorted({float(x) for x in values if not lo <= x <= hi})[:3]
        raise ValueError(
            f"values must lie in [{lo:g}, {hi:g}] for a {kind} interval, got {bad}; use kind='real' for unbounded values"
        )
    return np.clip(values, lo, hi)


def _t_interval(mean: float, variance: float, df: float, kind: str, n: int, test_sampling) -> Interval:
    """The interval mean +- t_df sqrt(variance) on ``kind``'s scale (delta method), mapped back."""
    lo_range, hi_range = RANGES[kind]
    if variance <= 0.0 or mean in (lo_range, hi_range) or not math.isfinite(df):
        # No spread (every seed and every example alike, which includes every value on a bound): the point.
        return Interval(mean, mean, mean, n, kind, test_sampling)
    g, g_inv, g_prime = _transform(kind)
    half = float(scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * abs(g_prime(mean)) * math.sqrt(variance)
    centre = float(g(mean))
    low, high = float(g_inv(centre - half)), float(g_inv(centre + half))
    # Back-transforming can round a far tail onto the bound (expit(40) == 1.0); keep the mean inside.
    return Interval(mean, min(low, mean), max(high, mean), n, kind, test_sampling)


def interval(values, kind: str = "real", upper: float = 1.0) -> Interval:
    """Mean over seeds and its 95% t interval (n - 1 degrees of freedom) on the scale of ``kind``.

    ``values``: one number per seed (NaN and inf are dropped). ``kind``: "proportion" (in [0, upper]),
    "positive" (>= 0), "difference" (in [-1, 1]) or "real". ``upper``: the top of a proportion's range (2 for
    the multiclass Brier score). This is the interval over seeds alone: for the metrics without a
    per-example record (NLL, Brier, calibration errors), whose test-set uncertainty the bootstrap table shows.

        >>> interval([1.0, 1.0, 0.98], "proportion").high <= 1.0
        True
    """
    if kind == "proportion" and upper != 1.0:
        scaled = interval(np.asarray(values, dtype=np.float64) / upper, kind)
        return Interval(scaled.mean * upper, scaled.low * upper, scaled.high * upper, scaled.n, kind)
    v = np.asarray(values, dtype=np.float64).ravel()
    v = _check_range(v[np.isfinite(v)], kind)
    n = len(v)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, kind)
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, kind)
    return _t_interval(mean, float(v.var(ddof=1)) / n, n - 1, kind, n, None)


# --- the two-way intervals: seeds and test examples ----------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    """One loss at its chosen setting: per-seed test accuracies and, where recorded, which test examples each
    seed got right (``correct``: [seeds, N] bool, rows in the order of ``seeds``)."""

    seeds: tuple[int, ...]
    accuracy: np.ndarray  # [seeds]
    correct: np.ndarray | None = None  # [seeds, N] bool

    def pick(self, seeds) -> Runs:
        index = [self.seeds.index(s) for s in seeds]
        correct = None if self.correct is None else self.correct[index]
        return Runs(tuple(seeds), self.accuracy[index], correct)


def _two_way(per_seed: np.ndarray, per_example: np.ndarray | None) -> tuple[float, float, float]:
    """(mean, variance, degrees of freedom) of a mean over seeds by the sum of the seed and test-set variances."""
    n = len(per_seed)
    mean = float(per_seed.mean())
    seed_var = float(per_seed.var(ddof=1)) / n if n > 1 else 0.0
    if per_example is None:
        return mean, seed_var, n - 1.0
    big_n = len(per_example)
    test_var = float(per_example.var(ddof=1)) / big_n if big_n > 1 else 0.0
    variance = seed_var + test_var
    parts = (seed_var**2 / (n - 1) if n > 1 else 0.0) + (test_var**2 / (big_n - 1) if big_n > 1 else 0.0)
    df = variance**2 / parts if parts > 0 else math.inf
    return mean, variance, df


def accuracy_interval(runs: Runs) -> Interval:
    """Mean test accuracy over the seeds, with the 95% interval of both the seeds' and the test set's sampling
    (logit scale; seeds only where ``runs.correct`` is missing)."""
    acc = np.asarray(runs.accuracy, dtype=np.float64)
    keep = np.isfinite(acc)
    acc = _check_range(acc[keep], "proportion")
    n = len(acc)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "proportion")
    per_example = None if runs.correct is None else runs.correct[keep].mean(axis=0)
    mean, variance, df = _two_way(acc, per_example)
    if n < 2 and per_example is None:
        return Interval(mean, math.nan, math.nan, n, "proportion", False)
    return _t_interval(mean, variance, max(df, 1.0), "proportion", n, per_example is not None)


def _pairs(a: Runs, b: Runs) -> tuple[Runs, Runs]:
    """The two losses' runs restricted to the seeds both have with a finite accuracy, in one order."""
    finite_a = {s for s, x in zip(a.seeds, a.accuracy) if math.isfinite(x)}
    finite_b = {s for s, x in zip(b.seeds, b.accuracy) if math.isfinite(x)}
    shared = sorted(finite_a & finite_b)
    return a.pick(shared), b.pick(shared)


def difference_interval(a: Runs, b: Runs) -> Interval:
    """Paired difference of mean test accuracy, A - B (seeds paired), with the two-way 95% interval (atanh scale)."""
    a, b = _pairs(a, b)
    if not a.seeds:
        return Interval(math.nan, math.nan, math.nan, 0, "difference")
    per_seed = a.accuracy - b.accuracy
    per_example = None
    if a.correct is not None and b.correct is not None:
        per_example = a.correct.mean(axis=0) - b.correct.mean(axis=0)
    mean, variance, df = _two_way(per_seed, per_example)
    if len(per_seed) < 2 and per_example is None:
        return Interval(mean, math.nan, math.nan, len(per_seed), "difference", False)
    return _t_interval(mean, variance, max(df, 1.0), "difference", len(per_seed), per_example is not None)


@dataclass(frozen=True)
class Effect:
    """The effect a verdict reads: logit(mean accuracy of A) - logit(mean accuracy of B), A and B paired by seed,
    with its 95% interval (two-way where the right and wrong examples are recorded). exp(effect) is the odds
    ratio of being right; a margin is an odds ratio, so 'beyond the margin' reads the same at 60% as at 99%.
    ``se`` and ``df``: its standard error and degrees of freedom (for the audit's simulations)."""

    estimate: float
    low: float
    high: float
    se: float
    df: float
    n: int
    test_sampling: bool
    seed_sd: float = math.nan  # standard deviation of the per-seed influence values (the seed part of se)
    test_se: float = 0.0  # the test set's part of se: sqrt(sigma^2 / N)

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def as_record(self) -> dict:
        def plain(x):
            return float(x) if math.isfinite(x) else None

        return {
            "log_odds": plain(self.estimate),
            "low": plain(self.low),
            "high": plain(self.high),
            "odds_ratio": plain(math.exp(self.estimate)) if math.isfinite(self.estimate) else None,
            "n": self.n,
            "test_sampling": self.test_sampling,
        }


def _logit_slope(p: float) -> float:
    return 1.0 / (p * (1.0 - p)) if 0.0 < p < 1.0 else math.inf


def log_odds_effect(a: Runs, b: Runs) -> Effect:
    """logit(mean accuracy of A) - logit(mean accuracy of B) with its two-way interval (delta method: each seed's
    and each example's influence on the two logits, so what A and B share cancels)."""
    a, b = _pairs(a, b)
    n = len(a.seeds)
    if n == 0:
        return Effect(math.nan, math.nan, math.nan, math.nan, math.nan, 0, False)
    # Half an example's worth away from 0 and 1: a mean of exactly 100% has no finite log-odds.
    big_n = a.correct.shape[1] if a.correct is not None else 10_000
    eps = 0.5 / (big_n * n)
    pa = min(max(float(a.accuracy.mean()), eps), 1 - eps)
    pb = min(max(float(b.accuracy.mean()), eps), 1 - eps)
    slope_a, slope_b = _logit_slope(pa), _logit_slope(pb)
    per_seed = a.accuracy * slope_a - b.accuracy * slope_b
    per_example = None
    if a.correct is not None and b.correct is not None:
        per_example = a.correct.mean(axis=0) * slope_a - b.correct.mean(axis=0) * slope_b
    _, variance, df = _two_way(per_seed, per_example)
    estimate = float(scipy.special.logit(pa) - scipy.special.logit(pb))
    seed_sd = float(per_seed.std(ddof=1)) if n > 1 else math.nan
    test_se = float(per_example.std(ddof=1)) / math.sqrt(len(per_example)) if per_example is not None else 0.0
    recorded = per_example is not None
    if (n < 2 and per_example is None) or variance <= 0:
        low = high = estimate if variance <= 0 and n >= 2 else math.nan
        se = 0.0 if variance <= 0 else math.nan
        return Effect(estimate, low, high, se, df, n, recorded, seed_sd, test_se)
    se = math.sqrt(variance)
    df = max(df, 1.0)
    half = float(scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return Effect(estimate, estimate - half, estimate + half, se, df, n, recorded, seed_sd, test_se)


def probability_of_improvement(a, b, seed: int = 0) -> Interval:
    """P(a run of A is more accurate than a run of B), ties one half, over every pair of runs (rliable's
    probability of improvement), with the percentile interval of ``POI_RESAMPLES`` bootstrap resamples of each
    loss's seeds (resampled separately). ``a``, ``b``: per-seed accuracies (NaN dropped)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return Interval(math.nan, math.nan, math.nan, 0, "proportion")

    def score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # x: [..., n], y: [..., m] -> the mean over pairs of 1[x > y] + 0.5 1[x == y]
        diff = x[..., :, None] - y[..., None, :]
        return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-1, -2))

    point = float(score(a, b))
    n = min(len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return Interval(point, math.nan, math.nan, n, "proportion")
    rng = np.random.default_rng(seed)
    ra = a[rng.integers(0, len(a), (POI_RESAMPLES, len(a)))]
    rb = b[rng.integers(0, len(b), (POI_RESAMPLES, len(b)))]
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(score(ra, rb), [tail, 100 - tail])
    return Interval(point, min(float(low), point), max(float(high), point), n, "proportion")


def bootstrap_interval(replicates, point: float | None = None) -> Interval:
    """Percentile 95% interval of a mean over members from their bootstrap replicates over test examples.

    ``replicates``: one list of B replicate values per member, the same B resamples of the test set for
    every member, so replicate b of the mean over members is the mean of their replicate b.
    ``point``: the estimate to report (default: the mean of the replicate means). ``n`` is the number of
    members (seeds). Members without replicates (None, NaN) are left out.
    """
    lists = [np.asarray(r, dtype=np.float64) for r in replicates if is_list(r)]
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


def is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0
