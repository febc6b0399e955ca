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
import pandas as pd

from losslab import __version__
from losslab.analysis import landscape
from losslab.experiments import store
from losslab.experiments.store import StoreError, read_results
from losslab.report import claims as C
from losslab.report import result_figures as RF
from losslab.report import summaries as S
from losslab.report.claims import Evidence, findings, verdict_counts, verdicts
from losslab.report.figures import FIGURES
from losslab.theory.ledger import ledger_summary, verify_all

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


def _fmt(interval: S.Interval, scale=100.0, digits=1, unit="%", n=False) -> str:
    """A table cell: the tables have a seeds column, so the count is left out unless asked for."""
    return interval.format(scale, digits, unit, n=n)


def _num(interval: S.Interval, digits=3, n=False) -> str:
    return interval.format(1, digits, "", n=n)


def _lr(record) -> str:
    mark = {"low": " (lowest tried)", "high": " (highest tried)"}.get(S.edge_of(record) or "", "")
    return f"{record['best_lr']:g}{mark}"


def _chosen_on(table: pd.DataFrame) -> str:
    """A sentence for a table note: how the settings of these rows were chosen."""
    ways = set(table["chosen_on"]) if "chosen_on" in table else set()
    if S.CHOSEN_ON_TEST in ways:
        return (
            "No validation split in these results: learning rates chosen on test accuracy, which this report "
            "flags (the test numbers below are optimistic, and no verdict uses them)."
        )
    if S.CHOSEN_ON_VALIDATION in ways:
        return (
            "Learning rate chosen on validation: the highest mean final validation accuracy over seeds (ties: "
            "lower validation NLL, then the smaller rate); test metrics are reported once, for that rate."
        )
    return "One learning rate per loss: nothing was chosen."


def _comparison_tables(rows: pd.DataFrame) -> list[dict]:
    best = S.selection_table(rows)
    tables = [
        {
            "id": "table-comparison",
            "title": f"Loss comparison ({S.chosen_phrase(best['chosen_on'])})",
            "note": f"{_chosen_on(best)} Final test metrics; mean [95% interval] over seeds (t on the logit scale "
            "for accuracy, ECE and Brier / 2, the log scale for NLL). NLL, Brier and ECE use the softmax of the logits "
            "for every loss. '(lowest tried)' / '(highest tried)': the chosen rate is at the edge of its grid, so "
            "the best rate may lie outside it.",
            "header": [
                "dataset",
                "loss",
                "chosen lr",
                "rates tried",
                "chosen on",
                "val. accuracy",
                "test accuracy",
                "NLL",
                "Brier",
                "ECE (15 bins)",
                "seeds",
            ],
            "rows": [
                [
                    r["cell"],
                    r["loss"],
                    _lr(r),
                    ", ".join(f"{x:g}" for x in r["lrs_tried"]),
                    r["chosen_on"],
                    "n/a" if r["val_accuracy"] != r["val_accuracy"] else f"{100 * r['val_accuracy']:.1f}%",
                    _fmt(r["accuracy"]),
                    _num(r["nll"]),
                    _num(r["brier"]),
                    _num(r["ece"]),
                    r["seeds"],
                ]
                for r in best.to_dict("records")
            ],
        }
    ]
    ratios = []
    indexed = best.set_index(["cell", "loss"])
    for cell in sorted({c for c, _ in indexed.index}):
        if (cell, "mse") in indexed.index and (cell, "cross_entropy") in indexed.index:
            m, c = indexed.loc[(cell, "mse")].to_dict(), indexed.loc[(cell, "cross_entropy")].to_dict()
            ratio = S.lr_ratio(m, c)
            ratios.append(
                [
                    cell,
                    _lr(c),
                    _lr(m),
                    f"{ratio['ratio']:.3g}",
                    ratio["bound"],
                    f"[{ratio['low']:.2g}, {ratio['high']:.2g}]",
                    "yes" if ratio["low"] <= C.NIELSEN_RATIO[1] and ratio["high"] >= C.NIELSEN_RATIO[0] else "no",
                ]
            )
    if ratios:
        tables.append(
            {
                "id": "table-lr-ratio",
                "title": "Nielsen's learning-rate ratio: MSE's chosen rate over cross-entropy's",
                "note": "Nielsen predicts about 3-6x (sigma' averages about 1/6). A rate chosen inside its grid stands "
                "for a best rate within half a grid step; one at the edge of its grid is only a bound. The range "
                "combines both; it overlaps [3, 6] or not. Rates chosen as in the comparison table.",
                "header": ["dataset", "CE lr", "MSE lr", "ratio", "kind", "range of the ratio", "overlaps 3-6x"],
                "rows": ratios,
            }
        )
    return tables


def _calibration_tables(rows: pd.DataFrame) -> list[dict]:
    table = S.calibration_table(rows)
    if table.empty:
        return []
    scaled = any(r.n for r in table["test_nll_ts"])
    fair = (
        "Temperature scaling divides each member's logits by one T > 0 fitted on the validation split (minimum "
        "validation NLL). The square loss on logits is trained without a softmax, so its raw logits read through "
        "an unscaled softmax look badly calibrated; after scaling every loss is read through its best softmax "
        "temperature and the comparison is fair."
    )
    if not scaled:
        fair = (
            "These results have no temperature-scaled metrics (no validation split, or an older trainer): only "
            "raw numbers are shown, and the square loss on logits, read through an unscaled softmax, looks worse "
            "calibrated than it is."
        )
    tables = [
        {
            "id": "table-calibration",
            "title": f"Calibration: raw and after temperature scaling ({S.chosen_phrase(table['chosen_on'])})",
            "note": f"{fair} Test NLL, Brier score and ECE (15 equal-width bins [b/15, (b+1)/15), confidence 1 in the "
            "last bin); mean [95% interval over seeds: log scale for NLL and T, logit scale for ECE and Brier / 2]; "
            "T: the fitted temperature.",
            "header": [
                "dataset",
                "loss",
                "lr",
                "T",
                "NLL raw",
                "NLL scaled",
                "Brier raw",
                "Brier scaled",
                "ECE raw",
                "ECE scaled",
                "seeds",
            ],
            "rows": [
                [
                    r["cell"],
                    r["loss"],
                    f"{r['best_lr']:g}",
                    _num(r["temperature"], 2),
                    _num(r["test_nll"]),
                    _num(r["test_nll_ts"]),
                    _num(r["test_brier"]),
                    _num(r["test_brier_ts"]),
                    _num(r["test_ece"]),
                    _num(r["test_ece_ts"]),
                    r["seeds"],
                ]
                for r in table.to_dict("records")
            ],
        }
    ]
    if any(r.n for r in table["test_ece_adaptive"]):
        tables.append(
            {
                "id": "table-calibration-errors",
                "title": "Other calibration errors, raw and temperature-scaled",
                "note": "Adaptive ECE: 15 equal-mass bins. Classwise ECE: the mean over classes of the 15-bin ECE of "
                "p_k against 1[y = k]. MCE: the largest |accuracy - confidence| over non-empty equal-width bins. "
                "Mean [95% interval over seeds, logit scale].",
                "header": [
                    "dataset",
                    "loss",
                    "adaptive ECE raw",
                    "scaled",
                    "classwise ECE raw",
                    "scaled",
                    "MCE raw",
                    "scaled",
                ],
                "rows": [
                    [
                        r["cell"],
                        r["loss"],
                        _num(r["test_ece_adaptive"]),
                        _num(r["test_ece_adaptive_ts"]),
                        _num(r["test_ece_classwise"]),
                        _num(r["test_ece_classwise_ts"]),
                        _num(r["test_mce"]),
                        _num(r["test_mce_ts"]),
                    ]
                    for r in table.to_dict("records")
                ],
            }
        )
    boot = S.bootstrap_table(rows)
    if not boot.empty and any(r.has_interval for r in boot["test_ece"]):
        tables.append(
            {
                "id": "table-bootstrap",
                "title": "Test-set uncertainty: bootstrap intervals over test examples",
                "note": "Mean over seeds of each metric on the full test set; then the mean and the 95% percentile "
                "interval of 500 bootstrap resamples of the test examples (the same resamples for every member, so "
                "replicate b of the mean over seeds is the mean of the members' replicate b). This is the "
                "uncertainty from the finite test set, which the intervals over seeds above do not include. ECE is "
                "biased upward on resamples (resampling adds noise to every bin, and |accuracy - confidence| counts "
                "noise as miscalibration), so its interval can sit above the full-test-set value; NLL, a mean, has "
                "no such bias.",
                "header": ["dataset", "loss", "NLL raw", "NLL scaled", "ECE raw", "ECE scaled"],
                "rows": [
                    [
                        r["cell"],
                        r["loss"],
                        *(_boot(r, m) for m in ("test_nll", "test_nll_ts", "test_ece", "test_ece_ts")),
                    ]
                    for r in boot.to_dict("records")
                ],
            }
        )
    return tables


def _boot(record: dict, metric: str) -> str:
    """'0.016; resamples 0.025 [0.017, 0.034]': the full-test-set value, then the replicates' mean and interval."""
    i = record[metric]
    if not i.has_interval:
        return _num(i)
    return f"{i.mean:.3f}; resamples {record[metric + '_resampled']:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _reproduction_tables(evidence: Evidence) -> list[dict]:
    table = C.reproduction_table(evidence)
    if table.empty:
        return []
    tables = [
        {
            "id": "table-mnist1d-reference",
            "title": "MNIST-1D: ours against the published numbers (cross-entropy)",
            "note": "Published: Greydanus (2020), README and paper of MNIST-1D, one run per model, whole percents, no "
            "spread reported. Tolerance: a 95% prediction interval for a single run from our seeds, t s sqrt(1 + "
            "1/n), plus the published rounding of 0.5 points: the reference's own run-to-run spread, which our "
            "seeds measure on the same test set. Agrees if |ours - published| <= tolerance (at least "
            f"{C.MIN_SEEDS['mnist1d-reference']} seeds).",
            "header": ["model", "role", "lr", "published", "ours", "difference", "tolerance", "outcome"],
            "rows": [
                [
                    r["model"],
                    r["role"],
                    f"{r['lr']:g}",
                    f"{100 * r['published']:.0f}%",
                    _fmt(r["ours"], n=True),
                    f"{100 * r['difference']:+.1f} pt",
                    "n/a" if r["tolerance"] != r["tolerance"] else f"{100 * r['tolerance']:.1f} pt",
                    r["outcome"],
                ]
                for r in table.to_dict("records")
            ],
        }
    ]
    rows = evidence.role_rows(*C.MNIST1D_PUBLISHED)
    chosen = S.selected_rows(rows, by=("role", "cell", "loss_label"))
    others = []
    order = {role: i for i, role in enumerate(C.MNIST1D_PUBLISHED)}
    for (_, role, _cell), group in chosen.assign(order=chosen["role"].map(order)).groupby(["order", "role", "cell"]):
        for label in sorted(group["loss_label"].unique()):
            this = group[group["loss_label"] == label]
            diff = (
                S.paired_difference(group, "test_accuracy", {"loss_label": label}, {"loss_label": "cross_entropy"})
                if label != "cross_entropy" and "cross_entropy" in set(group["loss_label"])
                else None
            )
            others.append(
                [
                    role,
                    label,
                    f"{this['lr'].iloc[0]:g}",
                    this["chosen_on"].iloc[0],
                    _fmt(S.interval(this["test_accuracy"], "proportion"), n=True),
                    "" if diff is None else diff.format(100, 1, " pt"),
                ]
            )
    if len(others) > len(table):
        tables.append(
            {
                "id": "table-mnist1d-losses",
                "title": "MNIST-1D reference models with each loss: does the article's claim hold beyond MLPs?",
                "note": "Test accuracy, mean [95% interval over seeds]; the difference from cross-entropy is paired by "
                "seed (atanh scale).",
                "header": ["role", "loss", "lr", "chosen on", "test accuracy", "minus CE"],
                "rows": others,
            }
        )
    return tables


def _tables(results: dict, evidence: Evidence) -> list[dict]:
    tables = []
    comparison = evidence.role_rows("loss-comparison")
    if comparison is not None:
        tables += _comparison_tables(comparison)
    saturation = evidence.role_rows("saturation-binary", "saturation-softmax")
    if saturation is not None:
        targets = dict(zip(saturation["grid"], saturation["target_accuracy"]))
        table = S.saturation_table(saturation, {g: t for g, t in targets.items() if t == t and t is not None})
        eps = sorted({f"{e:g}" for e in saturation["dead_epsilon"]})
        tables.append(
            {
                "id": "table-saturation",
                "title": "Saturation: normal versus confidently wrong starts",
                "note": f"Dead fraction: training examples misclassified with logit-gradient norm below the run's "
                f"dead_epsilon ({', '.join(eps)}), at step 0. Final accuracy: mean [95% interval over seeds, logit "
                "scale]. Steps to target: median over the members that reached the target test accuracy.",
                "header": [
                    "cell",
                    "loss",
                    "init scale",
                    "final accuracy",
                    "dead at start",
                    "||dL/dz|| at start",
                    "reached target",
                    "median steps to target",
                    "seeds",
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
                        r.seeds,
                    ]
                    for r in table.itertuples()
                ],
            }
        )
    classes = evidence.role_rows("many-classes")
    if classes is not None:
        best = S.selection_table(classes)
        tables.append(
            {
                "id": "table-classes",
                "title": f"Many classes (blobs; {S.chosen_phrase(best['chosen_on'])})",
                "note": f"{_chosen_on(best)} Final test accuracy and NLL per number of classes K; mean [95% interval "
                "over seeds].",
                "header": ["cell", "K", "loss", "chosen lr", "accuracy", "NLL", "seeds"],
                "rows": [
                    [r["cell"], r["num_classes"], r["loss"], _lr(r), _fmt(r["accuracy"]), _num(r["nll"]), r["seeds"]]
                    for r in best.sort_values(["num_classes", "loss"]).to_dict("records")
                ],
            }
        )
    warm = evidence.role_rows("warm-start", "from-scratch")
    if warm is not None:
        final = S.final_rows(warm)
        grouped = final.groupby(["role", "grid", "loss_label", "lr"])["test_accuracy"]
        tables.append(
            {
                "id": "table-warmstart",
                "title": "Warm start",
                "note": "Final test accuracy, every learning rate tried; mean [95% interval over seeds]. Role "
                "'warm-start' continues a cross-entropy solution; the verdict compares each loss at its rate chosen "
                "on validation.",
                "header": ["role", "grid", "loss", "lr", "accuracy"],
                "rows": [[role, g, l, f"{lr:g}", _fmt(S.interval(v, "proportion"))] for (role, g, l, lr), v in grouped],
            }
        )
    return tables


def _figures(evidence: Evidence) -> dict[str, EmbeddedFigure]:
    figures = {name: embed(FIGURES[name].make(), FIGURES[name].description) for name in ANALYSIS_FIGURES}
    saturation = evidence.role_rows("saturation-binary", "saturation-softmax")
    if saturation is not None:
        figures["saturation-curves"] = embed(
            RF.saturation_curves(saturation),
            "Saturation experiment: accuracy and logit-gradient norm over training",
        )
    comparison = evidence.role_rows("loss-comparison")
    if comparison is not None:
        figures["comparison"] = embed(
            RF.comparison_differences(comparison),
            "Each loss minus cross-entropy in test accuracy, paired by seed, per dataset: mean and 95% interval "
            f"({S.chosen_phrase(S.selected_rows(comparison)['chosen_on'])}; zero is cross-entropy)",
        )
    classes = evidence.role_rows("many-classes")
    if classes is not None:
        figures["classes"] = embed(RF.classes_curve(classes), "Accuracy against the number of classes")
    warm = evidence.role_rows("warm-start", "from-scratch")
    if warm is not None:
        figures["warmstart"] = embed(RF.warmstart_curves(warm), "Warm start: MSE after a cross-entropy solution")
    return figures


def _reliability_figures(evidence: Evidence, roles: tuple[str, ...]) -> dict[str, EmbeddedFigure]:
    figures = {}
    rows = evidence.role_rows(*roles)
    if rows is not None and S.has_reliability(S.final_rows(rows)):
        for cell in list(dict.fromkeys(rows["cell"])):
            figures[f"reliability-{cell}"] = embed(
                RF.reliability_diagrams(rows[rows["cell"] == cell], cell),
                f"{cell}: reliability diagrams, raw (bars) and temperature-scaled (outlines), per loss at its "
                "chosen learning rate; below, the test examples per bin (summed over seeds)",
            )
    return figures


def _banners(manifests: list[dict], evidence: Evidence, tables: list[dict]) -> list[dict]:
    """Warnings for the top of the page: smoke runs, other reduced sizes, settings chosen on test."""
    banners = []
    smoke = [m["command"] for m in manifests if m["size"] == "smoke"]
    if smoke:
        banners.append(
            {
                "level": "alarm",
                "id": "smoke-banner",
                "text": "Smoke run: some results come from a seconds-long smoke size ("
                + "; ".join(smoke)
                + "). A few epochs and 2 seeds: experiment-based verdicts say 'not enough evidence', and no number "
                "here describes the losses. Run without --smoke for results.",
            }
        )
    reduced = [m["command"] for m in manifests if m["size"] not in ("full", "smoke")]
    if reduced:
        banners.append(
            {
                "level": "warn",
                "id": "size-banner",
                "text": "Reduced size: " + "; ".join(reduced) + " (fewer datasets or epochs than the full specs).",
            }
        )
    flagged = [t["title"] for t in tables if S.CHOSEN_ON_TEST in " ".join(str(c) for row in t["rows"] for c in row)]
    if flagged:
        banners.append(
            {
                "level": "warn",
                "id": "validation-banner",
                "text": "No validation split in some results: learning rates chosen on test accuracy, which this "
                "report flags (tables: " + "; ".join(flagged) + "). Verdicts that depend on such a choice say "
                "'not enough evidence'. Rerun with a current losslab to get a validation split.",
            }
        )
    return banners


def build_report(result_dirs: list[Path], ledger=None, explorer_href: str | None = None) -> tuple[str, list]:
    """Render the report from result folders; returns (html, claims)."""
    results, manifests = _read_results(result_dirs)
    return render_report(results, ledger, manifests, [str(d) for d in result_dirs], explorer_href)


def _describe_run(manifest: dict) -> dict:
    """A run as the 'Reproduce' section and the size banners show it."""
    env = manifest.get("environment", {})
    size = manifest.get("size", "full")
    flag = "" if size == "full" else (" --smoke" if size == "smoke" else f" --size {size}")
    return {
        "command": f"losslab run {manifest['spec']}{flag}",
        "cells": len(manifest.get("cells", [])),
        "size": size,
        "env": f"torch {env.get('torch')}, {env.get('device')}, commit {str(env.get('git_commit', 'unknown'))[:10]}",
    }


def render_report(
    results: dict[str, tuple[dict, pd.DataFrame]],
    ledger=None,
    manifests: list[dict] | None = None,
    sources: list[str] | None = None,
    explorer_href: str | None = None,
) -> tuple[str, list]:
    """Render the report from results already read (spec name -> (manifest, rows)); returns (html, claims).
    ``explorer_href``: where the interactive explorer page is, relative to the report, to link it."""
    if manifests is None:
        manifests = [_describe_run(manifest) for manifest, _ in results.values()]
    ledger = ledger if ledger is not None else verify_all(seed=0, trials=100)
    evidence = Evidence(ledger, results)
    claims = verdicts(evidence)
    later = findings(evidence)
    figures = _figures(evidence)
    reliability = _reliability_figures(evidence, ("loss-comparison",))
    reference_reliability = _reliability_figures(evidence, tuple(C.MNIST1D_PUBLISHED))
    figures.update(reliability)
    figures.update(reference_reliability)
    eps = evidence.dead_epsilon()
    dead_zones = [
        landscape.dead_zone("mse", epsilon=eps).describe(),
        landscape.dead_zone("binary_cross_entropy", epsilon=eps).describe(),
    ]
    dead_zones += [
        landscape.dead_zone(name, epsilon=eps, num_classes=10).describe()
        for name in ("mse", "cross_entropy", "square_logits", "focal")
    ]
    tables = _tables(results, evidence)
    comparison = evidence.role_rows("loss-comparison")
    calibration = _calibration_tables(comparison) if comparison is not None else []
    reproduction = _reproduction_tables(evidence)
    environment = Path(__file__).parent / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(environment), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = env.get_template("report.html").render(
        version=__version__,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sources=sources or [],
        banners=_banners(manifests, evidence, tables + calibration + reproduction),
        claims=claims,
        counts=verdict_counts(claims),
        ledger=ledger,
        ledger_summary=ledger_summary(ledger),
        figures=figures,
        analysis_figures=ANALYSIS_FIGURES,
        training_figures=TRAINING_FIGURES,
        training_figures_present=any(name in figures for name in TRAINING_FIGURES),
        dead_zones=dead_zones,
        dead_epsilon=eps,
        tables=tables,
        calibration=calibration,
        reliability=list(reliability),
        reference_reliability=list(reference_reliability),
        reproduction=reproduction,
        findings=later,
        min_seeds={C.MIN_SEEDS_LABELS[k]: n for k, n in C.MIN_SEEDS.items()},
        methods=[S.INTERVAL_METHOD, S.BOOTSTRAP_METHOD, S.SELECTION_RULE],
        notes=evidence.notes,
        manifests=manifests,
        explorer_href=explorer_href,
    )
    return html, claims


def write_report(result_dirs: list[Path], out: Path, ledger=None) -> tuple[Path, list]:
    """Write ``out/index.html`` (linking ``out/explorer.html`` when there is one); returns its path and the
    claims with their verdicts.

    Every results folder is read and verified before anything is written; a folder that is missing,
    incomplete, damaged or in conflict with another is a StoreError naming it and the fix.
    """
    out = Path(out)
    path = out / "index.html"
    store.check_writable(out, "report folder")
    # The explorer written beside the report (as the demo does) is linked from it.
    explorer = "explorer.html" if (out / "explorer.html").is_file() else None
    html, claims = build_report([Path(d) for d in result_dirs], ledger, explorer)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(
            f"cannot write the report to {path} ({exc.strerror or exc}); choose a writable folder (--out)"
        ) from None
    return path, claims
