"""Figures of the optimisation view. Each function returns a matplotlib Figure (usable in notebooks).

They are drawn with matplotlib's object-oriented API (``matplotlib.figure.Figure``, ``fig.savefig``), never
pyplot, so importing or drawing them leaves the backend a notebook or program chose as it was. In a
notebook a figure shows when it is a cell's value, or through ``display(fig)``.

``FIGURES`` is the registry behind ``losslab plot``; ``write_figures`` saves a selection. The figures
that compare losses (gradient norm and loss against the margin, the K = 3 logit plane) also draw any
extra losses given to them (``losses=[...]``: registered names or ``Loss`` objects, e.g. a user's loss
via ``losslab plot --loss my_losses.py:my_loss``) beside the built-ins. Colours are
the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), heatmaps use
viridis, and every line also differs in dash style so the figures survive greyscale printing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure  # no pyplot: drawing never touches a notebook's backend

from losslab.analysis import landscape
from losslab.core import DEAD_EPSILON, Loss, get_loss
from losslab.experiments.store import check_writable
from losslab.i18n import Message, check_language, render, translator
from losslab.registry import Registry
from losslab.report.fonts import figure_fonts
from losslab.report.fonts import require as require_fonts

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
DASHES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1))]
#: Legend labels of the built-in losses (catalogue messages: English strings, rendered in the figure's language).
LOSS_LABELS = {
    name: Message(f"figure.loss.{name}")
    for name in (
        "cross_entropy",
        "binary_cross_entropy",
        "mse",
        "square_logits",
        "focal",
        "label_smoothing_cross_entropy",
    )
}
MULTICLASS_LOSSES = ["cross_entropy", "mse", "square_logits", "focal", "label_smoothing_cross_entropy"]


def _label(loss, lang: str = "en") -> str:
    loss = get_loss(loss)
    if not loss.module.startswith("losslab."):
        return Message("figure.yours", name=loss.name).render(lang)
    return render(LOSS_LABELS.get(loss.name, loss.name), lang)


def localized(make: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw a figure function's text with the fonts of its ``lang`` keyword (a CJK font for Chinese)."""

    signature = inspect.signature(make)

    @functools.wraps(make)
    def draw(*args, **kwargs) -> Figure:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with figure_fonts(bound.arguments["lang"]):
            return make(*bound.args, **bound.kwargs)

    return draw


def _extra(losses: Sequence[str | Loss]) -> list[Loss]:
    return [get_loss(loss) for loss in losses]


def style(i: int) -> dict:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": DASHES[i % len(DASHES)], "linewidth": 2}


def _figure(width=7.0, height=4.5, ncols=1):
    fig = Figure(figsize=(width, height), constrained_layout=True)
    return fig, fig.subplots(1, ncols)


@localized
def sigmoid_and_derivative(lang: str = "en") -> Figure:
    """The article's figure: f(x) = 1/(1 + e^-x) and f'(x) = f(x)(1 - f(x)), with the flat tails marked."""
    t = translator(lang)
    x = np.linspace(-10, 10, 801)
    f = 1 / (1 + np.exp(-x))
    fig, ax = _figure()
    ax.plot(x, f, label=t("figure.sigmoid.curve"), **style(0))
    ax.plot(x, f * (1 - f), label=t("figure.sigmoid.derivative"), **style(1))
    flat = np.abs(x) > 6.9  # f' < 1e-3 beyond |x| = 6.9
    ax.fill_between(x, 0, 1, where=flat, color="0.85", label=t("figure.sigmoid.flat"), zorder=0)
    ax.set(
        xlabel=t("figure.sigmoid.xlabel"),
        ylabel=t("figure.sigmoid.ylabel"),
        title=t("figure.sigmoid.title"),
        ylim=(-0.02, 1.02),
    )
    ax.axhline(0.25, color="0.5", linewidth=0.8, linestyle=":")
    ax.annotate(t("figure.sigmoid.peak"), (0, 0.25), (2.5, 0.12), arrowprops={"arrowstyle": "->"})
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


@localized
def binary_gradient_curves(lang: str = "en") -> Figure:
    """dL/dz against z for sigmoid-MSE and BCE, y = 1 and y = 0, with the MSE dead zone shaded."""
    t = translator(lang)
    z = np.linspace(-12, 12, 1201)
    fig, axes = _figure(11, 4.5, ncols=2)
    for ax, label in zip(axes, (1, 0)):
        for i, name in enumerate(["binary_cross_entropy", "mse"]):
            ax.plot(z, landscape.binary_gradient(name, z, label), label=_label(name, lang), **style(i))
        zone = landscape.dead_zone("mse", DEAD_EPSILON)
        threshold = zone.threshold if label == 1 else -zone.threshold
        wrong = (z < threshold) if label == 1 else (z > threshold)
        ax.fill_between(
            z,
            -1.05,
            1.05,
            where=wrong,
            color="0.85",
            zorder=0,
            label=t("figure.binary.dead_zone", side="<" if label else ">", threshold=f"{threshold:.1f}"),
        )
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set(
            xlabel=t("figure.binary.xlabel"),
            ylabel=t("figure.binary.ylabel"),
            ylim=(-1.05, 1.05),
            title=t("figure.binary.title", label=str(label), wrong="z < 0" if label else "z > 0"),
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left" if label else "lower right", fontsize=8)
    fig.suptitle(t("figure.binary.suptitle"))
    return fig


def _per_loss_vs_margin(values, margins, yscale: str, losses: Sequence[str | Loss] = (), lang: str = "en"):
    """One line per multiclass loss of ``values(loss, margins, K=10)``, wrong predictions shaded."""
    fig, ax = _figure()
    for i, loss in enumerate([*MULTICLASS_LOSSES, *_extra(losses)]):
        ax.plot(margins, values(loss, margins, 10), label=_label(loss, lang), **style(i))
    ax.set_yscale(yscale)
    ax.axvspan(margins[0], 0, color="0.92", zorder=0, label=translator(lang)("figure.margin.wrong"))
    return fig, ax


@localized
def multiclass_gradient_norm(losses: Sequence[str | Loss] = (), lang: str = "en") -> Figure:
    """||dL/dz|| against the true-class margin, K = 10, one line per loss (log scale), ``losses`` added."""
    t = translator(lang)
    fig, ax = _per_loss_vs_margin(landscape.gradient_norm_vs_margin, np.linspace(-15, 15, 601), "log", losses, lang)
    ax.axhline(DEAD_EPSILON, color="0.4", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel=t("figure.margin.xlabel"),
        ylabel=t("figure.gradient_norm.ylabel"),
        title=t("figure.gradient_norm.title"),
        ylim=(1e-7, 10),
    )
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3, which="both")
    return fig


@localized
def logit_plane_heatmap(losses: Sequence[str | Loss] = (), lang: str = "en") -> Figure:
    """K = 3, true class 0 at logit 0: log10 ||dL/dz|| over (z_1, z_2) for softmax-MSE, CE and ``losses``."""
    t = translator(lang)
    grid = np.linspace(-12, 12, 241)
    z1, z2 = np.meshgrid(grid, grid)
    logits = np.stack([np.zeros_like(z1), z1, z2], -1).reshape(-1, 3)
    panels = ["mse", "cross_entropy", *_extra(losses)]
    fig, axes = _figure(5.5 * len(panels), 4.8, ncols=len(panels))
    zt = torch.from_numpy(logits)
    y = torch.zeros(len(logits), dtype=torch.long)
    images = []
    for ax, loss in zip(axes, panels):
        norm = get_loss(loss).gradient(zt, y, reduction="none").norm(dim=-1).numpy().reshape(z1.shape)
        images.append(
            ax.imshow(
                np.log10(norm + 1e-300),
                origin="lower",
                extent=(grid[0], grid[-1], grid[0], grid[-1]),
                cmap="viridis",
                vmin=-6,
                vmax=0.5,
                aspect="equal",
            )
        )
        ax.contour(z1, z2, np.log10(norm + 1e-300), levels=[-3], colors="white", linewidths=1.2)
        # Class 0 is predicted only where both rivals are below it: the lower-left quadrant.
        ax.plot([-12, 0, 0], [0, 0, -12], color="white", linewidth=1.0, linestyle="--")
        ax.set(xlabel=t("figure.plane.xlabel"), ylabel=t("figure.plane.ylabel"), title=_label(loss, lang))
        ax.text(6, 6, t("figure.plane.wrong"), color="white", ha="center", va="center", fontsize=9)
        ax.text(-6, -2, t("figure.plane.right"), color="white", ha="center", va="center", fontsize=9)
    fig.colorbar(images[0], ax=axes, label=t("figure.plane.colorbar"))
    fig.suptitle(t("figure.plane.suptitle"))
    return fig


@localized
def loss_vs_margin_curves(losses: Sequence[str | Loss] = (), lang: str = "en") -> Figure:
    """L against the true-class margin, K = 10, one line per loss, ``losses`` added."""
    t = translator(lang)
    fig, ax = _per_loss_vs_margin(landscape.loss_vs_margin, np.linspace(-10, 10, 401), "log", losses, lang)
    ax.set(
        xlabel=t("figure.margin.xlabel"),
        ylabel=t("figure.loss_margin.ylabel"),
        title=t("figure.loss_margin.title"),
        ylim=(1e-4, 30),
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


@localized
def curvature(lang: str = "en") -> Figure:
    """The smallest Hessian eigenvalue in logit space against the margin, K = 3."""
    t = translator(lang)
    m = np.linspace(-10, 10, 201)
    fig, ax = _figure()
    for i, name in enumerate(["cross_entropy", "mse", "square_logits"]):
        ax.plot(m, landscape.curvature_vs_margin(name, m, 3), label=_label(name, lang), **style(i))
    ax.axhline(0, color="0.4", linewidth=0.8)
    ax.set(
        xlabel=t("figure.curvature.xlabel"),
        ylabel=t("figure.curvature.ylabel"),
        title=t("figure.curvature.title"),
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


@dataclass(frozen=True)
class FigureSpec:
    make: Callable[..., Figure]
    description: str
    takes_losses: bool = False  # make(losses=[...]) draws extra losses beside the built-ins


#: The figures of ``losslab plot``, by name, in the order they are listed and drawn.
FIGURES: Registry[FigureSpec] = Registry("figure", "figures", plugins=False)
FIGURES.register("sigmoid", FigureSpec(sigmoid_and_derivative, Message("figure.description.sigmoid")))
FIGURES.register("binary-gradient", FigureSpec(binary_gradient_curves, Message("figure.description.binary_gradient")))
FIGURES.register(
    "gradient-norm",
    FigureSpec(multiclass_gradient_norm, Message("figure.description.gradient_norm"), takes_losses=True),
)
FIGURES.register(
    "logit-plane", FigureSpec(logit_plane_heatmap, Message("figure.description.logit_plane"), takes_losses=True)
)
FIGURES.register(
    "loss-margin", FigureSpec(loss_vs_margin_curves, Message("figure.description.loss_margin"), takes_losses=True)
)
FIGURES.register("curvature", FigureSpec(curvature, Message("figure.description.curvature")))


def get_figure(name: str) -> FigureSpec:
    """The figure ``name``; an unknown name lists the valid ones."""
    return FIGURES.get(name)


def prepare_losses(refs: Sequence[str | Loss]) -> list[Loss]:
    """Resolve ``--loss`` arguments (a registered name, ``MODULE:FUNCTION`` or ``file.py:FUNCTION``) into
    multiclass losses, each checked once at ordinary logits; a bad one is a one-line ValueError."""
    from losslab.analysis.check import resolve_loss

    losses = []
    for ref in refs:
        loss, _ = resolve_loss(ref)
        if not loss.accepts_multiclass:
            raise ValueError(
                f"--loss {ref}: loss {loss.name!r} has only a one-logit (sigmoid) form; these figures need "
                "values(z, y) for logits z of shape [..., K]"
            )
        probe = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 4.0, 0.0]], dtype=torch.float64)
        target = torch.eye(3, dtype=torch.float64)[[0, 2]]
        params = loss.resolve_params({})
        loss.values_fn()(probe, target, **params)
        loss.logit_gradient_fn()(probe, target, **params)
        losses.append(loss)
    return losses


def write_figures(
    names: list[str], out: Path, fmt: str = "png", losses: Sequence[str | Loss] = (), lang: str = "en"
) -> list[Path]:
    """Render the named figures into ``out`` as ``NAME.fmt``; unknown names fail before anything is drawn.

    ``losses`` are drawn beside the built-ins in the figures that compare losses. ``lang``: the language of
    the labels ('en' or 'zh'; Chinese needs a CJK font, checked first).
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"format must be 'png' or 'svg', got {fmt!r}")
    check_language(lang)
    require_fonts(lang)
    specs = [(name, get_figure(name)) for name in names]
    losses = prepare_losses(losses)
    if losses and not any(spec.takes_losses for _, spec in specs):
        taking = ", ".join(n for n, f in FIGURES.items() if f.takes_losses)
        raise ValueError(f"--loss is drawn only in the figures {taking}; none of {', '.join(names)} is one of them")
    out = Path(out)
    check_writable(out, "figures folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in specs:
        fig = spec.make(losses=losses, lang=lang) if spec.takes_losses and losses else spec.make(lang=lang)
        path = out / f"{name}.{fmt}"
        with figure_fonts(lang):
            fig.savefig(path, dpi=110)
        written.append(path)
    return written
