"""How the report words a number: accuracies, differences in points and effects with their margins."""

from __future__ import annotations

import math

from losslab.i18n import Message
from losslab.report import decide as D
from losslab.report import stats


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_text(i: stats.Interval) -> str:
    return i.format(100, 1, "%")


def points(i: stats.Interval, digits: int = 1) -> str:
    """A difference in percentage points, '5.0 pt [4.0, 6.0] (n = 6)', with the unit a catalogue word."""
    text = i.format(100, digits, "\0")
    if "\0" not in text:
        return Message("word.na") if text == "n/a" else text
    value, _, rest = text.partition("\0")
    return Message("unit.pt", value=value, rest=rest)


def effect_text(effect: stats.Effect, margin: float, accuracy: float) -> Message:
    """'odds ratio 2.41 [1.52, 3.81]; margin 1.25 (97.8% to 98.5% around 98.2%)': an effect and its margin."""
    if not math.isfinite(effect.estimate):
        return Message("word.na")
    low, high = D.margin_points(margin, accuracy)
    interval = (
        Message("effect.interval", low=f"{math.exp(effect.low):.3g}", high=f"{math.exp(effect.high):.3g}")
        if effect.has_interval
        else ""
    )
    around = (
        Message("effect.around", low=pct(low), high=pct(high), accuracy=pct(accuracy))
        if math.isfinite(low) and margin > 1  # a margin of 1 (any difference) has no band to show
        else ""
    )
    return Message(
        "effect.text",
        odds=f"{math.exp(effect.estimate):.3g}",
        interval=interval,
        margin=f"{margin:g}",
        around=around,
        sampling=Message("effect.two_way" if effect.test_sampling else "effect.seeds_only"),
    )
