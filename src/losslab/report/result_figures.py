"""Figures drawn from experiment results (training curves, comparisons); each returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from losslab.report import summaries as S  # noqa: E402
from losslab.report.figures import OKABE_ITO, style  # noqa: E402

LOSS_DASH = {"mse": "--", "cross_entropy": "-", "binary_cross_entropy": "-"}


def saturation_curves(rows: pd.DataFrame) -> plt.Figure:
    """Test accuracy and logit-gradient norm over steps, per cell, loss and initial logit scale."""
    cells = list(dict.fromkeys(rows["cell"]))
    fig, axes = plt.subplots(2, len(cells), figsize=(5 * len(cells), 7), constrained_layout=True, squeeze=False)
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
                label=f"{label}, scale {scale:g}",
            )
            g = grad[(grad["cell"] == cell) & (grad["loss_label"] == label) & (grad["init_scale"] == scale)]
            axes[1, j].semilogy(
                g["step"], g["grad_norm"].clip(lower=1e-12), color=colour, linestyle=dash, linewidth=1.8
            )
        axes[0, j].set(
            title=f"{cell}: test accuracy", xlabel="training step", ylabel="test accuracy (%)", ylim=(0, 100)
        )
        axes[1, j].set(
            title=f"{cell}: mean ||dL/dz|| on training examples",
            xlabel="training step",
            ylabel="logit-gradient norm (log scale)",
        )
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Saturation experiment: solid = cross-entropy, dashed = MSE on probabilities; colour = initial "
        "logit scale (mean over seeds)"
    )
    return fig


def comparison_bars(best: pd.DataFrame) -> plt.Figure:
    """Best-learning-rate test accuracy with 95% intervals, per dataset and loss."""
    cells = list(dict.fromkeys(best["cell"]))
    losses = list(dict.fromkeys(best["loss"]))
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * len(cells)), 4.5), constrained_layout=True)
    width = 0.8 / len(losses)
    for i, loss in enumerate(losses):
        sub = best[best["loss"] == loss].set_index("cell").reindex(cells)
        means = np.array([a.mean if isinstance(a, S.Interval) else np.nan for a in sub["accuracy"]]) * 100
        errors = (
            np.array(
                [
                    [a.mean - a.low, a.high - a.mean] if isinstance(a, S.Interval) and a.n > 1 else [0, 0]
                    for a in sub["accuracy"]
                ]
            ).T
            * 100
        )
        ax.bar(
            np.arange(len(cells)) + (i - (len(losses) - 1) / 2) * width,
            means,
            width,
            yerr=errors,
            capsize=3,
            color=OKABE_ITO[i % len(OKABE_ITO)],
            label=loss,
        )
    ax.set_xticks(np.arange(len(cells)), cells)
    low = np.nanmin([a.low for a in best["accuracy"] if a.n > 1] or [0.5]) * 100
    ax.set(
        ylabel="test accuracy (%), best learning rate each",
        ylim=(max(0, low - 5), 100),
        title="Loss comparison: mean and 95% interval over seeds",
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars fill the axes
    ax.grid(alpha=0.3, axis="y")
    return fig


def classes_curve(rows: pd.DataFrame) -> plt.Figure:
    """Final test accuracy against the number of classes K, one line per loss at its best learning rate."""
    final = S.best_lr_rows(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for i, (label, group) in enumerate(final.groupby("loss_label")):
        stats = group.groupby("num_classes")["test_accuracy"].agg(["mean", "std", "count"]).reset_index()
        ax.errorbar(
            stats["num_classes"],
            100 * stats["mean"],
            yerr=100 * stats["std"] / np.sqrt(stats["count"]),
            label=label,
            capsize=3,
            **style(i),
        )
    ax.set(
        xscale="log",
        xlabel="number of classes K (log scale)",
        ylabel="test accuracy (%)",
        title="Blobs with K classes: accuracy at the best learning rate (mean +- s.e.)",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def warmstart_curves(rows: pd.DataFrame) -> plt.Figure:
    """Test accuracy over epochs: the warm start, then CE continued vs MSE; and both from scratch."""
    rows = S.with_labels(rows)
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    i = 0
    for (grid, label, lr), group in rows.groupby(["grid", "loss_label", "lr"]):
        phase = group[group["phase"] == "main"]
        mean = phase.groupby("epoch")["test_accuracy"].mean()
        ax.plot(mean.index, 100 * mean.values, label=f"{grid}: {label} (lr {lr:g})", **style(i))
        i += 1
    warm = rows[rows["phase"] == "warmstart"]
    if not warm.empty:
        mean = warm.groupby("epoch")["test_accuracy"].mean()
        ax.plot(mean.index, 100 * mean.values, color="0.3", linewidth=2.5, label="warm start (cross-entropy)")
        ax.axvline(mean.index.max(), color="0.5", linestyle=":", linewidth=1)
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Warm start (Golik et al. 2013): MSE after a CE solution")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig
