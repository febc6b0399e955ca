"""Figures drawn from experiment results; each returns a matplotlib ``Figure``.

Built with matplotlib's object-oriented API (``matplotlib.figure.Figure``): no pyplot state and no backend
choice, so importing or calling these never changes a notebook user's backend. Every grid gets the same
three figures (``rate_sensitivity``, ``training_curves``, ``reliability_diagrams``); the article's roles add
theirs (``saturation_curves``, ``baseline_differences``, ``classes_curve``, ``warmstart_curves``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from losslab.i18n import translator
from losslab.report import decide as D
from losslab.report import grids as G
from losslab.report import selection as sel
from losslab.report import summaries as S
from losslab.report.figures import DASHES, OKABE_ITO, localized, style

LOSS_DASH = {"mse": "--", "cross_entropy": "-", "binary_cross_entropy": "-"}
MAX_COLUMNS = 4  # panels per row before a grid's figure wraps


def _panels(count: int, width: float = 4.2, height: float = 3.4, rows_per: int = 1, **kwargs):
    """A constrained-layout figure with ``count`` panels (``rows_per`` stacked rows each), wrapped at MAX_COLUMNS."""
    columns = min(count, MAX_COLUMNS)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(max(6.0, width * columns), height * rows * rows_per), layout="constrained")
    axes = fig.subplots(rows * rows_per, columns, squeeze=False, **kwargs)
    return fig, axes, columns


def _condition_title(grid: G.Grid, condition: G.Condition) -> str:
    parts = []
    if "cell" in grid.varying or not grid.varying:
        parts.append(condition.cell)
    if "init_scale" in grid.varying:
        parts.append(f"x{condition.init_scale:g}")
    return " ".join(parts)


def _per_condition(grid: G.Grid, draw, title: str, legend: str) -> Figure:
    """A figure with a panel per condition of the grid: ``draw(ax, condition)`` fills one; unused panels hidden."""
    fig, axes, columns = _panels(len(grid.conditions))
    for k, condition in enumerate(grid.conditions):
        ax = axes[k // columns, k % columns]
        draw(ax, condition)
        ax.set_title(_condition_title(grid, condition))
        ax.grid(alpha=0.3)
    for k in range(len(grid.conditions), axes.size):
        axes.flat[k].set_visible(False)
    axes[0, 0].legend(fontsize=7, loc=legend)
    fig.suptitle(title, wrap=True)
    return fig


@localized
def rate_sensitivity(grid: G.Grid, lang: str = "en") -> Figure:
    """Mean final validation accuracy against the learning rate, one line per loss and one panel per condition;
    the chosen rate filled, rates where a member diverged marked with a cross on the axis."""
    t = translator(lang)

    def draw(ax, condition: G.Condition) -> None:
        on_test = any(arm.choice.chosen_on == sel.CHOSEN_ON_TEST for arm in condition.arms)
        for i, arm in enumerate(condition.arms):
            curve = arm.choice.curve
            lrs = np.array([p.lr for p in curve])
            values = np.array([p.test_accuracy if on_test else p.val_accuracy for p in curve])
            colour, dash = OKABE_ITO[i % len(OKABE_ITO)], DASHES[i % len(DASHES)]
            ax.plot(lrs, 100 * values, color=colour, linestyle=dash, marker="o", fillstyle="none", label=arm.loss)
            if arm.choice.lr is not None:
                chosen = next(p for p in curve if p.lr == arm.choice.lr)
                value = chosen.test_accuracy if on_test else chosen.val_accuracy
                ax.plot([chosen.lr], [100 * value], color=colour, marker="o", markersize=8)
            broken = [p.lr for p in curve if p.diverged]
            if broken:
                ax.plot(
                    broken, [0] * len(broken), color=colour, marker="x", linestyle="none", markersize=9, clip_on=False
                )
        ax.set(
            xscale="log",
            ylim=(0, 100),
            xlabel=t("figure.rates.xlabel"),
            ylabel=t("figure.rates.ylabel_test" if on_test else "figure.rates.ylabel"),
        )
        # Ticks at the rates tried, no minor ticks: what was measured, and far cheaper to draw than log minor ticks.
        tried = sorted({p.lr for arm in condition.arms for p in arm.choice.curve})
        shown = tried if len(tried) <= 8 else tried[:: math.ceil(len(tried) / 8)]
        ax.xaxis.set_major_locator(FixedLocator(shown))
        ax.xaxis.set_major_formatter(FixedFormatter([f"{lr:g}" for lr in shown]))
        ax.xaxis.set_minor_locator(NullLocator())

    return _per_condition(grid, draw, t("figure.rates.title", grid=grid.key), "lower left")


@localized
def training_curves(grid: G.Grid, lang: str = "en") -> Figure:
    """Test accuracy over training steps for each loss at its chosen rate: the mean over its seeds, and a band
    from the lowest to the highest seed; one panel per condition."""
    t = translator(lang)
    main = grid.rows[grid.rows["phase"] == "main"]

    def draw(ax, condition: G.Condition) -> None:
        here = main[(main["cell"] == condition.cell) & (main["init_scale"] == condition.init_scale)]
        for i, arm in enumerate(condition.arms):
            if arm.choice.lr is None:
                continue
            members = here[(here["loss_label"] == arm.loss) & (here["lr"] == arm.choice.lr)]
            by_step = members.groupby("step")["test_accuracy"]
            mean, low, high = by_step.mean(), by_step.min(), by_step.max()
            colour, dash = OKABE_ITO[i % len(OKABE_ITO)], DASHES[i % len(DASHES)]
            ax.plot(mean.index, 100 * mean.values, color=colour, linestyle=dash, linewidth=1.8, label=arm.loss)
            ax.fill_between(mean.index, 100 * low.values, 100 * high.values, color=colour, alpha=0.15, linewidth=0)
        ax.set(ylim=(0, 100), xlabel=t("figure.step"), ylabel=t("figure.test_accuracy"))

    return _per_condition(grid, draw, t("figure.curves.title", grid=grid.key), "lower right")


@localized
def reliability_diagrams(grid: G.Grid, lang: str = "en") -> Figure | None:
    """Reliability diagrams of a grid: a pair of rows per condition, one column per loss at its chosen rate.

    Top of each pair: accuracy per equal-width confidence bin (15 bins; bars: raw softmax, outline: after
    temperature scaling) against the diagonal of perfect calibration. Below it: how many test examples fall in
    each bin, summed over seeds (log scale). Bins are aggregated over seeds, weighted by their counts. None
    where no condition has reliability bins (results of an older trainer).
    """
    t = translator(lang)
    conditions = [c for c in grid.conditions if any(a.members and S.has_reliability(a.chosen) for a in c.arms)]
    if not conditions:
        return None
    columns = max(sum(1 for a in c.arms if a.members) for c in conditions)
    fig = Figure(figsize=(max(4.5, 2.9 * columns), 5.2 * len(conditions)), layout="constrained")
    axes = fig.subplots(
        2 * len(conditions), columns, squeeze=False, gridspec_kw={"height_ratios": [3, 1.2] * len(conditions)}
    )
    width = 1 / S.RELIABILITY_BINS
    for r, condition in enumerate(conditions):
        arms = [a for a in condition.arms if a.members]
        for j in range(columns):
            top, bottom = axes[2 * r, j], axes[2 * r + 1, j]
            if j >= len(arms):
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            arm = arms[j]
            raw, scaled = S.reliability(arm.chosen), S.reliability(arm.chosen, scaled=True)
            centres = (raw["lower"] + raw["upper"]) / 2
            top.bar(
                centres,
                raw["accuracy"].fillna(0),
                width=width,
                color=OKABE_ITO[0],
                alpha=0.75,
                label=t("figure.reliability.raw"),
            )
            if scaled["count"].sum() > 0:
                top.bar(
                    centres,
                    scaled["accuracy"].fillna(0),
                    width=width,
                    fill=False,
                    edgecolor=OKABE_ITO[1],
                    linewidth=1.5,
                    label=t("figure.reliability.scaled"),
                )
            top.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label=t("figure.reliability.perfect"))
            name = f"{_condition_title(grid, condition)}: {arm.loss}" if len(conditions) > 1 else arm.loss
            top.set(
                xlim=(0, 1),
                ylim=(0, 1),
                title=t("figure.reliability.panel", loss=name, lr=f"{arm.choice.lr:g}"),
                xticks=[0, 0.5, 1],
            )
            bottom.bar(centres - width / 4, raw["count"], width=width / 2, color=OKABE_ITO[0])
            bottom.bar(centres + width / 4, scaled["count"], width=width / 2, color=OKABE_ITO[1])
            bottom.set(xlim=(0, 1), yscale="symlog", xlabel=t("figure.reliability.xlabel"), xticks=[0, 0.5, 1])
            for ax in (top, bottom):
                ax.grid(alpha=0.3)
        axes[2 * r, 0].set_ylabel(t("figure.reliability.ylabel"))
        axes[2 * r + 1, 0].set_ylabel(t("figure.reliability.count_ylabel"))
    axes[0, 0].legend(fontsize=7, loc="upper left")
    chosen = t(sel.chosen_phrase(a.choice.chosen_on for c in conditions for a in c.arms))
    # wrap: with one or two losses the figure is narrower than the title
    fig.suptitle(t("figure.reliability.suptitle", cell=grid.key, chosen=chosen), wrap=True)
    return fig


@localized
def saturation_curves(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Test accuracy and logit-gradient norm over steps, per cell, loss and initial logit scale."""
    t = translator(lang)
    cells = list(dict.fromkeys(rows["cell"]))
    fig = Figure(figsize=(max(8, 5 * len(cells)), 7), layout="constrained")
    axes = fig.subplots(2, len(cells), squeeze=False)
    main = rows[rows["phase"] == "main"]
    acc = S.curves(main, "test_accuracy", ["cell", "loss_label", "init_scale"])
    grad = S.curves(main, "grad_norm", ["cell", "loss_label", "init_scale"])
    scales = sorted(rows["init_scale"].unique())
    for j, cell in enumerate(cells):
        for (label, scale), group in acc[acc["cell"] == cell].groupby(["loss_label", "init_scale"]):
            colour = OKABE_ITO[scales.index(scale) % len(OKABE_ITO)]
            dash = LOSS_DASH.get(label, ":")
            axes[0, j].plot(
                group["step"],
                100 * group["test_accuracy"],
                color=colour,
                linestyle=dash,
                linewidth=1.8,
                label=t("figure.saturation.line", loss=label, scale=f"{scale:g}"),
            )
            g = grad[(grad["cell"] == cell) & (grad["loss_label"] == label) & (grad["init_scale"] == scale)]
            axes[1, j].semilogy(
                g["step"], g["grad_norm"].clip(lower=1e-12), color=colour, linestyle=dash, linewidth=1.8
            )
        axes[0, j].set(
            title=t("figure.saturation.accuracy_title", cell=cell),
            xlabel=t("figure.step"),
            ylabel=t("figure.test_accuracy"),
            ylim=(0, 100),
        )
        axes[1, j].set(
            title=t("figure.saturation.gradient_title", cell=cell),
            xlabel=t("figure.step"),
            ylabel=t("figure.saturation.gradient_ylabel"),
        )
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(t("figure.saturation.suptitle"))
    return fig


@localized
def baseline_differences(grids: list[G.Grid], lang: str = "en") -> Figure:
    """Each loss minus its grid's baseline in test accuracy, paired by seed, per condition, with 95% intervals
    over seeds and test examples. Drawn as differences (zero = the baseline) so that no truncated accuracy axis
    can exaggerate a gap; the band marks each grid's margin around the baseline's accuracy."""
    t = translator(lang)
    columns = [(g, c) for g in grids for c in g.conditions if c.comparisons]
    losses = list(dict.fromkeys(cmp.loss for _, c in columns for cmp in c.comparisons))
    fig = Figure(figsize=(max(7, 2.0 * len(columns)), 4.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(losses))
    ticks, labelled = [], set()
    for j, (grid, condition) in enumerate(columns):
        base = condition.arm(grid.baseline)
        accuracy = base.accuracy.mean if base is not None else math.nan
        ticks.append(
            t(
                "figure.comparison.tick",
                cell=f"{grid.label}\n{_condition_title(grid, condition)}",
                baseline=grid.baseline,
                accuracy=f"{100 * accuracy:.1f}%",
            )
        )
        low, high = D.margin_points(grid.margin, accuracy)  # accuracies the margin allows around the baseline's
        low, high = low - accuracy, high - accuracy
        ax.fill_between(
            [j - 0.45, j + 0.45],
            [100 * low] * 2,
            [100 * high] * 2,
            color="0.9",
            zorder=0,
            label=None if j else t("figure.comparison.band"),
        )
        for cmp in condition.comparisons:
            i = losses.index(cmp.loss)
            d = cmp.difference
            x = j + (i - (len(losses) - 1) / 2) * width
            err = [[100 * (d.mean - d.low)], [100 * (d.high - d.mean)]] if d.has_interval else None
            ax.errorbar(
                x,
                100 * d.mean,
                yerr=err,
                fmt="o",
                capsize=4,
                color=OKABE_ITO[i % len(OKABE_ITO)],
                label=None if cmp.loss in labelled else cmp.loss,
            )
            labelled.add(cmp.loss)
    ax.axhline(0, color="0.2", linewidth=1)
    ax.set_xticks(np.arange(len(columns)), ticks, fontsize=7)
    ax.set(ylabel=t("figure.comparison.ylabel"), title=t("figure.comparison.title"))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="y")
    return fig


@localized
def classes_curve(grids: list[G.Grid], lang: str = "en") -> Figure:
    """Final test accuracy against the number of classes K, one line per loss at its rate chosen on validation."""
    t = translator(lang)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    losses: dict[str, list] = {}
    for grid in grids:
        for condition in grid.conditions:
            for arm in condition.arms:
                if arm.members:
                    losses.setdefault(arm.loss, []).append((condition.num_classes, arm.accuracy))
    for i, (label, points) in enumerate(losses.items()):
        points.sort(key=lambda p: p[0])
        ks = [k for k, _ in points]
        means = np.array([a.mean for _, a in points])
        errors = np.array([[a.mean - a.low, a.high - a.mean] if a.has_interval else [0.0, 0.0] for _, a in points]).T
        ax.errorbar(ks, 100 * means, yerr=100 * errors, label=label, capsize=3, **style(i))
    ax.set(
        xscale="log",
        xlabel=t("figure.classes.xlabel"),
        ylabel=t("figure.test_accuracy"),
        ylim=(0, 100),
        title=t("figure.classes.title"),
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


@localized
def warmstart_curves(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Test accuracy over epochs: the warm start, then CE continued vs MSE; and both from scratch."""
    t = translator(lang)
    rows = sel.with_labels(rows)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    i = 0
    for (grid, label, lr), group in rows.groupby(["grid", "loss_label", "lr"]):
        phase = group[group["phase"] == "main"]
        mean = phase.groupby("epoch")["test_accuracy"].mean()
        ax.plot(
            mean.index,
            100 * mean.values,
            label=t("figure.warmstart.line", grid=grid, loss=label, lr=f"{lr:g}"),
            **style(i),
        )
        i += 1
    warm = rows[rows["phase"] == "warmstart"]
    if not warm.empty:
        mean = warm.groupby("epoch")["test_accuracy"].mean()
        ax.plot(mean.index, 100 * mean.values, color="0.3", linewidth=2.5, label=t("figure.warmstart.warm"))
        ax.axvline(mean.index.max(), color="0.5", linestyle=":", linewidth=1)
    ax.set(xlabel=t("figure.warmstart.xlabel"), ylabel=t("figure.test_accuracy"), title=t("figure.warmstart.title"))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig
