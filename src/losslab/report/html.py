"""The self-contained HTML report: claims ledger first, then equations, figures, tables, later research.

``write_report(result_dirs, out)`` reads result folders written by ``losslab run`` (it never trains),
runs the equation ledger, draws every figure into the page as base64 PNG (no network needed to view
it) and writes ``out/index.html``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt

from losslab import __version__
from losslab.analysis import landscape
from losslab.experiments import store
from losslab.experiments.store import StoreError, read_results
from losslab.report import result_figures as RF
from losslab.report import summaries as S
from losslab.report.claims import Evidence, findings, verdict_counts, verdicts
from losslab.report.figures import FIGURES
from losslab.theory.ledger import verify_all

ANALYSIS_FIGURES = ["sigmoid", "binary-gradient", "gradient-norm", "logit-plane", "loss-margin", "curvature"]
TRAINING_FIGURES = ["saturation-curves", "comparison", "classes", "warmstart"]


@dataclass
class EmbeddedFigure:
    data: str
    caption: str


def embed(fig, caption: str) -> EmbeddedFigure:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return EmbeddedFigure(base64.b64encode(buffer.getvalue()).decode("ascii"), caption)


def _read_results(result_dirs: list[Path]) -> tuple[dict, list[dict]]:
    """Every folder verified through the store (complete, checksums, nothing unlisted); a cell found
    in two folders counts once, and the same cell with other settings or contents is refused."""
    combined = read_results(result_dirs)
    manifests = []
    for _folder, manifest, contributed in combined.sources:
        if not contributed:
            continue  # every cell already came from an earlier folder (e.g. 'report R R')
        name = manifest["spec"]
        env = manifest.get("environment", {})
        size = manifest.get("size", "full")
        flag = "" if size == "full" else (" --smoke" if size == "smoke" else f" --size {size}")
        manifests.append(
            {
                "command": f"losslab run {name}{flag}",
                "cells": contributed,
                "size": size,
                "env": f"torch {env.get('torch')}, {env.get('device')}, "
                f"commit {str(env.get('git_commit', 'unknown'))[:10]}",
            }
        )
    return combined.results, manifests


def _fmt(interval: S.Interval, scale=100.0, digits=1, unit="%") -> str:
    return interval.format(scale, digits, unit)


def _tables(results: dict) -> list[dict]:
    tables = []
    if "comparison" in results and not results["comparison"][1].empty:
        best = S.best_lr_table(results["comparison"][1])
        tables.append(
            {
                "title": "Loss comparison (each loss at its best learning rate)",
                "note": "Test metrics at the last epoch; mean [95% t-interval] over seeds. NLL, Brier and ECE use the "
                "softmax of the logits for every loss. '*' marks a best learning rate at the edge of the grid.",
                "header": ["dataset", "loss", "best lr", "accuracy", "NLL", "Brier", "ECE (15 bins)", "seeds"],
                "rows": [
                    [
                        r.cell,
                        r.loss,
                        f"{r.best_lr:g}{'*' if r.best_at_edge else ''}",
                        _fmt(r.accuracy),
                        _fmt(r.nll, 1, 3, ""),
                        _fmt(r.brier, 1, 3, ""),
                        _fmt(r.ece, 1, 3, ""),
                        r.seeds,
                    ]
                    for r in best.itertuples()
                ],
            }
        )
    if "saturation" in results and not results["saturation"][1].empty:
        manifest, rows = results["saturation"]
        targets = {
            g.get("label"): g["target_accuracy"] for g in manifest["spec_data"]["grid"] if "target_accuracy" in g
        }
        table = S.saturation_table(rows, targets)
        tables.append(
            {
                "title": "Saturation: normal versus confidently wrong starts",
                "note": "Dead fraction: training examples misclassified with logit-gradient norm < 1e-3, at step 0. "
                "Steps to target: median over the members that reached the target test accuracy.",
                "header": [
                    "cell",
                    "loss",
                    "init scale",
                    "final accuracy",
                    "dead at start",
                    "||dL/dz|| at start",
                    "reached target",
                    "median steps to target",
                ],
                "rows": [
                    [
                        r.cell,
                        r.loss,
                        f"{r.init_scale:g}",
                        _fmt(r.accuracy),
                        f"{100 * r.start_dead_fraction:.1f}%",
                        f"{r.start_grad_norm:.3g}",
                        "" if r.target is None else f"{r.reached}/{r.members} (target {100 * r.target:.0f}%)",
                        ""
                        if r.median_steps_to_target is None or r.median_steps_to_target != r.median_steps_to_target
                        else f"{r.median_steps_to_target:.0f}",
                    ]
                    for r in table.itertuples()
                ],
            }
        )
    if "classes" in results and not results["classes"][1].empty:
        best = S.best_lr_table(results["classes"][1])
        tables.append(
            {
                "title": "Many classes (blobs)",
                "note": "Final test accuracy per number of classes K.",
                "header": ["cell", "K", "loss", "lr", "accuracy", "NLL", "seeds"],
                "rows": [
                    [r.cell, r.num_classes, r.loss, f"{r.best_lr:g}", _fmt(r.accuracy), _fmt(r.nll, 1, 3, ""), r.seeds]
                    for r in best.sort_values(["num_classes", "loss"]).itertuples()
                ],
            }
        )
    if "warmstart" in results and not results["warmstart"][1].empty:
        final = S.final_rows(results["warmstart"][1])
        grouped = final.groupby(["grid", "loss_label", "lr"])["test_accuracy"]
        tables.append(
            {
                "title": "Warm start",
                "note": "Final test accuracy; 'from-ce' continues a cross-entropy solution.",
                "header": ["grid", "loss", "lr", "accuracy"],
                "rows": [[g, l, f"{lr:g}", _fmt(S.interval(v))] for (g, l, lr), v in grouped],
            }
        )
    return tables


def _figures(results: dict) -> dict[str, EmbeddedFigure]:
    figures = {name: embed(FIGURES[name].make(), FIGURES[name].description) for name in ANALYSIS_FIGURES}
    if "saturation" in results and not results["saturation"][1].empty:
        figures["saturation-curves"] = embed(
            RF.saturation_curves(results["saturation"][1]),
            "Saturation experiment: accuracy and logit-gradient norm over training",
        )
    if "comparison" in results and not results["comparison"][1].empty:
        figures["comparison"] = embed(
            RF.comparison_bars(S.best_lr_table(results["comparison"][1])),
            "Best-learning-rate test accuracy per dataset and loss",
        )
    if "classes" in results and not results["classes"][1].empty:
        figures["classes"] = embed(RF.classes_curve(results["classes"][1]), "Accuracy against the number of classes")
    if "warmstart" in results and not results["warmstart"][1].empty:
        figures["warmstart"] = embed(
            RF.warmstart_curves(results["warmstart"][1]), "Warm start: MSE after a cross-entropy solution"
        )
    return figures


def build_report(result_dirs: list[Path], ledger=None) -> tuple[str, list]:
    """Render the report; returns (html, claims)."""
    results, manifests = _read_results(result_dirs)
    ledger = ledger if ledger is not None else verify_all(seed=0, trials=100)
    evidence = Evidence(ledger, results)
    claims = verdicts(evidence)
    figures = _figures(results)
    dead_zones = [landscape.dead_zone("mse").describe(), landscape.dead_zone("binary_cross_entropy").describe()]
    dead_zones += [
        landscape.dead_zone(name, num_classes=10).describe()
        for name in ("mse", "cross_entropy", "square_logits", "focal")
    ]
    environment = Path(__file__).parent / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(environment), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = env.get_template("report.html").render(
        version=__version__,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sources=[str(d) for d in result_dirs],
        claims=claims,
        counts=verdict_counts(claims),
        ledger=ledger,
        ledger_counts={s: sum(r.status == s for r in ledger) for s in ("holds", "erratum", "FAILS")},
        figures=figures,
        analysis_figures=ANALYSIS_FIGURES,
        training_figures=TRAINING_FIGURES,
        training_figures_present=any(name in figures for name in TRAINING_FIGURES),
        dead_zones=dead_zones,
        tables=_tables(results),
        findings=findings(evidence),
        manifests=manifests,
    )
    return html, claims


def write_report(result_dirs: list[Path], out: Path, ledger=None) -> tuple[Path, list]:
    """Write ``out/index.html``; returns its path and the claims with their verdicts.

    Every results folder is read and verified before anything is written; a folder that is missing,
    incomplete, damaged or in conflict with another is a StoreError naming it and the fix.
    """
    out = Path(out)
    path = out / "index.html"
    store.check_writable(out, "report folder")
    html, claims = build_report([Path(d) for d in result_dirs], ledger)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(
            f"cannot write the report to {path} ({exc.strerror or exc}); choose a writable folder (--out)"
        ) from None
    return path, claims
