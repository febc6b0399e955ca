"""The decisions every verdict rule is made of: an interval against a margin, and an aggregate over cells.

Each is a pure function of numbers, so the rules that use them can be simulated (``losslab.report.audit``)
with exactly the code that decides the report's verdicts.
"""

from __future__ import annotations

import math

YES, NO = "yes", "no"


def beyond(low: float, high: float, bound: float) -> str | None:
    """Is the effect beyond ``bound``? 'yes' if the whole interval lies above it, 'no' if the whole interval
    lies below it (the effect, if any, is smaller than what matters), None (undecided) if it straddles it."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low > bound:
        return YES
    if high < bound:
        return NO
    return None


def within(low: float, high: float, lo: float, hi: float) -> str | None:
    """Is the effect inside the band [lo, hi]? 'yes' if the whole interval lies inside it, 'no' if the whole
    interval lies outside it (entirely below lo or above hi), None otherwise."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if lo < low and high < hi:
        return YES
    if high < lo or low > hi:
        return NO
    return None


def aggregate(outcomes: list[bool | None]) -> tuple[str, int, int]:
    """A finding over cells: (verdict, decided, total). Each cell agrees (True), disagrees (False) or is undecided
    (None). 'not tested' without cells; 'not enough evidence' when fewer than half of the cells are decided;
    otherwise 'agrees' / 'disagrees' when every decided cell does, 'mixed' when they differ."""
    total = len(outcomes)
    decided = [o for o in outcomes if o is not None]
    if total == 0:
        return "not tested", 0, 0
    if 2 * len(decided) < total:
        return "not enough evidence", len(decided), total
    if all(decided):
        return "agrees", len(decided), total
    if not any(decided):
        return "disagrees", len(decided), total
    return "mixed", len(decided), total


def margin_points(margin: float, accuracy: float) -> tuple[float, float]:
    """The accuracies an odds-ratio margin allows around ``accuracy``: (lower, upper), e.g. 1.25 at 0.982 ->
    (0.9776, 0.9855). For printing a margin where readers think in points."""
    if not 0 < accuracy < 1 or not math.isfinite(accuracy):
        return math.nan, math.nan
    odds = accuracy / (1 - accuracy)
    return odds / margin / (1 + odds / margin), odds * margin / (1 + odds * margin)
