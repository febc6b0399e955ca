"""Figures drawn from experiment results (training curves, comparisons); each returns a Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: drawing never touches a notebook's backend

from losslab.i18n import translator
from losslab.report import summaries as S
from losslab.report.figures import OKABE_ITO, localized, style

LOSS_DASH = {"mse": "--", "cross_entropy": "-", "binary_cross_entropy": "-"}


@localized
def saturation_curves(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Test accuracy and logit-gradient norm over steps, per cell, loss and initial logit scale."""
    t = translator(lang)
    cells = list(dict.fromkeys(rows["cell"]))
    fig = Figure(figsize=(max(8, 5 * len(cells)), 7), constrained_layout=True)
    axes = fig.subplots(2, len(cells), squeeze=False)
    acc = S.curves(rows[rows["phase"] == "main"], "test_accuracy", ["cell", "loss_label", "init_scale"])
    grad = S.curves(rows[rows["phase"] == "main"], "grad_norm", ["cell", "loss_label", "init_scale"])
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
def comparison_differences(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Test accuracy of each loss minus cross-entropy's, paired by seed, per dataset, with 95% intervals.

    Each loss at its learning rate chosen on validation. Drawn as differences (zero = cross-entropy) so
    that no truncated accuracy axis can exaggerate a gap; the band marks +-2 points, the difference the
    verdicts treat as practical.
    """
    t = translator(lang)
    chosen = S.selected_rows(rows)
    cells = sorted(chosen["cell"].unique())
    losses = [l for l in dict.fromkeys(sorted(chosen["loss_label"])) if l != "cross_entropy"]
    fig = Figure(figsize=(max(7, 2.4 * len(cells)), 4.8), constrained_layout=True)
    ax = fig.subplots()
    width = 0.8 / max(1, len(losses))
    ticks, labelled = [], set()
    for j, cell in enumerate(cells):
        group = chosen[chosen["cell"] == cell]
        ce = group[group["loss_label"] == "cross_entropy"]
        ce_acc = S.interval(ce["test_accuracy"], "proportion")
        ticks.append(
            t("figure.comparison.tick", cell=cell, accuracy=f"{ce_acc.mean * 100:.1f}%")
            if ce_acc.n
            else t("figure.comparison.tick_no_ce", cell=cell)
        )
        for i, loss in enumerate(losses):
            if ce.empty or loss not in set(group["loss_label"]):
                continue
            d = S.paired_difference(group, "test_accuracy", {"loss_label": loss}, {"loss_label": "cross_entropy"})
            x = j + (i - (len(losses) - 1) / 2) * width
            err = [[100 * (d.mean - d.low)], [100 * (d.high - d.mean)]] if d.has_interval else None
            ax.errorbar(
                x,
                100 * d.mean,
                yerr=err,
                fmt="o",
                capsize=4,
                color=OKABE_ITO[i % len(OKABE_ITO)],
                label=None if loss in labelled else loss,
            )
            labelled.add(loss)
    ax.axhline(0, color="0.2", linewidth=1)
    ax.axhspan(-2, 2, color="0.9", zorder=0, label=t("figure.comparison.band"))
    ax.set_xticks(np.arange(len(cells)), ticks)
    ax.set(
        ylabel=t("figure.comparison.ylabel"),
        title=t("figure.comparison.title", chosen=S.chosen_phrase(chosen["chosen_on"])),
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="y")
    return fig


@localized
def classes_curve(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Final test accuracy against the number of classes K, one line per loss at its rate chosen on validation."""
    t = translator(lang)
    best = S.selection_table(rows)
    fig = Figure(figsize=(7, 4.5), constrained_layout=True)
    ax = fig.subplots()
    for i, (label, group) in enumerate(best.groupby("loss")):
        group = group.sort_values("num_classes")
        means = np.array([a.mean for a in group["accuracy"]])
        errors = np.array(
            [[a.mean - a.low, a.high - a.mean] if a.has_interval else [0.0, 0.0] for a in group["accuracy"]]
        ).T
        ax.errorbar(group["num_classes"], 100 * means, yerr=100 * errors, label=label, capsize=3, **style(i))
    ax.set(
        xscale="log",
        xlabel=t("figure.classes.xlabel"),
        ylabel=t("figure.test_accuracy"),
        ylim=(0, 100),
        title=t("figure.classes.title", chosen=S.chosen_phrase(best["chosen_on"])),
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


@localized
def reliability_diagrams(rows: pd.DataFrame, cell: str, lang: str = "en") -> Figure:
    """Reliability diagrams of one cell: one column per loss at its chosen setting, raw and temperature-scaled.

    Top: accuracy per equal-width confidence bin (15 bins; bars: raw softmax, outline: after temperature
    scaling) against the diagonal of perfect calibration. Bottom: how many test examples fall in each
    bin, summed over seeds (log scale). Bins are aggregated over seeds, weighted by their counts.
    """
    t = translator(lang)
    chosen = S.selected_rows(rows)
    chosen = chosen[chosen["cell"] == cell]
    losses = sorted(chosen["loss_label"].unique())
    fig = Figure(figsize=(2.9 * len(losses), 5.2), constrained_layout=True)
    axes = fig.subplots(2, len(losses), squeeze=False, gridspec_kw={"height_ratios": [3, 1.2]}, sharey="row")
    for j, loss in enumerate(losses):
        group = chosen[chosen["loss_label"] == loss]
        raw, scaled = S.reliability(group), S.reliability(group, scaled=True)
        top, bottom = axes[0, j], axes[1, j]
        centres, width = (raw["lower"] + raw["upper"]) / 2, 1 / S.RELIABILITY_BINS
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
        top.set(
            xlim=(0, 1),
            ylim=(0, 1),
            title=t("figure.reliability.panel", loss=loss, lr=f"{group['lr'].iloc[0]:g}"),
            xticks=[0, 0.5, 1],
        )
        bottom.bar(centres - width / 4, raw["count"], width=width / 2, color=OKABE_ITO[0])
        bottom.bar(centres + width / 4, scaled["count"], width=width / 2, color=OKABE_ITO[1])
        bottom.set(xlim=(0, 1), yscale="symlog", xlabel=t("figure.reliability.xlabel"), xticks=[0, 0.5, 1])
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(t("figure.reliability.ylabel"))
    axes[1, 0].set_ylabel(t("figure.reliability.count_ylabel"))
    axes[0, 0].legend(fontsize=7, loc="upper left")
    # wrap: with one or two losses the figure is narrower than the title
    fig.suptitle(t("figure.reliability.suptitle", cell=cell, chosen=S.chosen_phrase(chosen["chosen_on"])), wrap=True)
    return fig


@localized
def warmstart_curves(rows: pd.DataFrame, lang: str = "en") -> Figure:
    """Test accuracy over epochs: the warm start, then CE continued vs MSE; and both from scratch."""
    t = translator(lang)
    rows = S.with_labels(rows)
    fig = Figure(figsize=(8, 4.5), constrained_layout=True)
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
