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
import markupsafe
import pandas as pd

from losslab import __version__
from losslab.analysis import landscape
from losslab.experiments import store
from losslab.experiments.store import StoreError, read_results
from losslab.i18n import Listing, Message, check_language, messages, meta, placeholders, render
from losslab.report import claims as C
from losslab.report import fonts
from losslab.report import result_figures as RF
from losslab.report import summaries as S
from losslab.report.claims import Evidence, chosen_word, findings, verdict_counts, verdict_word, verdicts
from losslab.report.figures import FIGURES
from losslab.theory.ledger import ledger_summary, verify_all

ANALYSIS_FIGURES = ["sigmoid", "binary-gradient", "gradient-norm", "logit-plane", "loss-margin", "curvature"]
TRAINING_FIGURES = ["saturation-curves", "comparison", "classes", "warmstart"]


@dataclass
class EmbeddedFigure:
    data: str
    caption: str


def embed(fig, caption: str, lang: str = "en") -> EmbeddedFigure:
    """The figure as base64 PNG, drawn with the language's fonts (a CJK font for Chinese labels)."""
    buffer = io.BytesIO()
    with fonts.figure_fonts(lang):
        fig.savefig(buffer, format="png", dpi=90)
    return EmbeddedFigure(base64.b64encode(buffer.getvalue()).decode("ascii"), caption)


def _run_environment(env: dict) -> Message:
    return Message(
        "report.reproduce.env",
        torch=str(env.get("torch")),
        device=str(env.get("device")),
        commit=str(env.get("git_commit", "unknown"))[:10],
    )


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
                "env": _run_environment(env),
            }
        )
    return combined.results, manifests


def _fmt(interval: S.Interval, scale=100.0, digits=1, unit="%", n=False) -> str:
    """A table cell: the tables have a seeds column, so the count is left out unless asked for."""
    return interval.format(scale, digits, unit, n=n)


def _num(interval: S.Interval, digits=3, n=False) -> str:
    return interval.format(1, digits, "", n=n)


def _lr(record) -> str:
    edge = S.edge_of(record)
    if edge is None:
        return f"{record['best_lr']:g}"
    return Message(f"table.lr_{edge}", lr=f"{record['best_lr']:g}")


def _na(text: str) -> str:
    """A table cell: 'n/a' (a missing number) as its catalogue word."""
    return Message("word.na") if text == "n/a" else text


def _chosen_on(table: pd.DataFrame) -> Message:
    """A sentence for a table note: how the settings of these rows were chosen."""
    ways = set(table["chosen_on"]) if "chosen_on" in table else set()
    if S.CHOSEN_ON_TEST in ways:
        return Message("table.chosen_note_test")
    if S.CHOSEN_ON_VALIDATION in ways:
        return Message("table.chosen_note_validation")
    return Message("table.chosen_note_only")


def _header(*keys: str) -> list[Message]:
    return [Message(f"column.{key}") for key in keys]


def _comparison_tables(rows: pd.DataFrame) -> list[dict]:
    best = S.selection_table(rows)
    tables = [
        {
            "id": "table-comparison",
            "title": Message("table.comparison.title", chosen=S.chosen_phrase(best["chosen_on"])),
            "note": Message("table.comparison.note", chosen=_chosen_on(best)),
            "header": _header(
                "dataset",
                "loss",
                "chosen_lr",
                "rates_tried",
                "chosen_on",
                "val_accuracy",
                "test_accuracy",
                "nll",
                "brier",
                "ece15",
                "seeds",
            ),
            "rows": [
                [
                    r["cell"],
                    r["loss"],
                    _lr(r),
                    ", ".join(f"{x:g}" for x in r["lrs_tried"]),
                    chosen_word(r["chosen_on"]),
                    Message("word.na") if r["val_accuracy"] != r["val_accuracy"] else f"{100 * r['val_accuracy']:.1f}%",
                    _na(_fmt(r["accuracy"])),
                    _na(_num(r["nll"])),
                    _na(_num(r["brier"])),
                    _na(_num(r["ece"])),
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
            overlaps = ratio["low"] <= C.NIELSEN_RATIO[1] and ratio["high"] >= C.NIELSEN_RATIO[0]
            ratios.append(
                [
                    cell,
                    _lr(c),
                    _lr(m),
                    f"{ratio['ratio']:.3g}",
                    Message("bound." + ratio["bound"].split()[0]),
                    f"[{ratio['low']:.2g}, {ratio['high']:.2g}]",
                    Message("word.yes" if overlaps else "word.no"),
                ]
            )
    if ratios:
        tables.append(
            {
                "id": "table-lr-ratio",
                "title": Message("table.lr_ratio.title"),
                "note": Message("table.lr_ratio.note"),
                "header": _header("dataset", "ce_lr", "mse_lr", "ratio", "kind", "ratio_range", "overlaps"),
                "rows": ratios,
            }
        )
    return tables


def _calibration_tables(rows: pd.DataFrame) -> list[dict]:
    table = S.calibration_table(rows)
    if table.empty:
        return []
    scaled = any(r.n for r in table["test_nll_ts"])
    fair = Message("table.calibration.fair" if scaled else "table.calibration.unscaled")
    tables = [
        {
            "id": "table-calibration",
            "title": Message("table.calibration.title", chosen=S.chosen_phrase(table["chosen_on"])),
            "note": Message("table.calibration.note", fair=fair),
            "header": _header(
                "dataset",
                "loss",
                "lr",
                "temperature",
                "nll_raw",
                "nll_scaled",
                "brier_raw",
                "brier_scaled",
                "ece_raw",
                "ece_scaled",
                "seeds",
            ),
            "rows": [
                [
                    r["cell"],
                    r["loss"],
                    f"{r['best_lr']:g}",
                    *(
                        _na(_num(r[k], 2 if k == "temperature" else 3))
                        for k in (
                            "temperature",
                            "test_nll",
                            "test_nll_ts",
                            "test_brier",
                            "test_brier_ts",
                            "test_ece",
                            "test_ece_ts",
                        )
                    ),
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
                "title": Message("table.calibration_errors.title"),
                "note": Message("table.calibration_errors.note"),
                "header": _header(
                    "dataset",
                    "loss",
                    "adaptive_ece_raw",
                    "scaled",
                    "classwise_ece_raw",
                    "scaled",
                    "mce_raw",
                    "scaled",
                ),
                "rows": [
                    [
                        r["cell"],
                        r["loss"],
                        *(
                            _na(_num(r[k]))
                            for k in (
                                "test_ece_adaptive",
                                "test_ece_adaptive_ts",
                                "test_ece_classwise",
                                "test_ece_classwise_ts",
                                "test_mce",
                                "test_mce_ts",
                            )
                        ),
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
                "title": Message("table.bootstrap.title"),
                "note": Message("table.bootstrap.note"),
                "header": _header("dataset", "loss", "nll_raw", "nll_scaled", "ece_raw", "ece_scaled"),
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
        return _na(_num(i))
    return Message(
        "table.bootstrap.cell",
        value=f"{i.mean:.3f}",
        resampled=f"{record[metric + '_resampled']:.3f}",
        low=f"{i.low:.3f}",
        high=f"{i.high:.3f}",
    )


def _reproduction_tables(evidence: Evidence) -> list[dict]:
    table = C.reproduction_table(evidence)
    if table.empty:
        return []
    tables = [
        {
            "id": "table-mnist1d-reference",
            "title": Message("table.mnist1d_reference.title"),
            "note": Message("table.mnist1d_reference.note", seeds=str(C.MIN_SEEDS["mnist1d-reference"])),
            "header": _header(
                "model", "role", "lr", "published", "reference_run", "ours", "difference", "tolerance", "outcome"
            ),
            "rows": [
                [
                    r["model"],
                    r["role"],
                    f"{r['lr']:g}",
                    f"{100 * r['published']:.0f}%",
                    f"{100 * r['reference_run']:.1f}%",
                    _na(_fmt(r["ours"], n=True)),
                    Message("unit.pt", value=f"{100 * r['difference']:+.1f}", rest=""),
                    Message("word.na")
                    if r["tolerance"] != r["tolerance"]
                    else Message("unit.pt", value=f"{100 * r['tolerance']:.1f}", rest=""),
                    verdict_word(r["outcome"]),
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
                    chosen_word(this["chosen_on"].iloc[0]),
                    _na(_fmt(S.interval(this["test_accuracy"], "proportion"), n=True)),
                    "" if diff is None else C.points(diff),
                ]
            )
    if len(others) > len(table):
        tables.append(
            {
                "id": "table-mnist1d-losses",
                "title": Message("table.mnist1d_losses.title"),
                "note": Message("table.mnist1d_losses.note"),
                "header": _header("role", "loss", "lr", "chosen_on", "test_accuracy", "minus_ce"),
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
                "title": Message("table.saturation.title"),
                "note": Message("table.saturation.note", epsilon=", ".join(eps)),
                "header": _header(
                    "cell",
                    "loss",
                    "init_scale",
                    "final_accuracy",
                    "dead_at_start",
                    "grad_at_start",
                    "reached_target",
                    "median_steps",
                    "seeds",
                ),
                "rows": [
                    [
                        r.cell,
                        r.loss,
                        f"{r.init_scale:g}",
                        _na(_fmt(r.accuracy)),
                        f"{100 * r.start_dead_fraction:.1f}%",
                        f"{r.start_grad_norm:.3g}",
                        ""
                        if r.target is None
                        else Message(
                            "table.saturation.reached",
                            reached=str(r.reached),
                            members=str(r.members),
                            target=f"{100 * r.target:.0f}%",
                        ),
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
                "title": Message("table.classes.title", chosen=S.chosen_phrase(best["chosen_on"])),
                "note": Message("table.classes.note", chosen=_chosen_on(best)),
                "header": _header("cell", "k", "loss", "chosen_lr", "accuracy", "nll", "seeds"),
                "rows": [
                    [
                        r["cell"],
                        r["num_classes"],
                        r["loss"],
                        _lr(r),
                        _na(_fmt(r["accuracy"])),
                        _na(_num(r["nll"])),
                        r["seeds"],
                    ]
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
                "title": Message("table.warmstart.title"),
                "note": Message("table.warmstart.note"),
                "header": _header("role", "grid", "loss", "lr", "accuracy"),
                "rows": [
                    [role, g, l, f"{lr:g}", _na(_fmt(S.interval(v, "proportion")))] for (role, g, l, lr), v in grouped
                ],
            }
        )
    return tables


def _figures(evidence: Evidence, lang: str = "en") -> dict[str, EmbeddedFigure]:
    figures = {name: embed(FIGURES[name].make(lang=lang), FIGURES[name].description, lang) for name in ANALYSIS_FIGURES}
    saturation = evidence.role_rows("saturation-binary", "saturation-softmax")
    if saturation is not None:
        figures["saturation-curves"] = embed(
            RF.saturation_curves(saturation, lang=lang), Message("caption.saturation_curves"), lang
        )
    comparison = evidence.role_rows("loss-comparison")
    if comparison is not None:
        figures["comparison"] = embed(
            RF.comparison_differences(comparison, lang=lang),
            Message("caption.comparison", chosen=S.chosen_phrase(S.selected_rows(comparison)["chosen_on"])),
            lang,
        )
    classes = evidence.role_rows("many-classes")
    if classes is not None:
        figures["classes"] = embed(RF.classes_curve(classes, lang=lang), Message("caption.classes"), lang)
    warm = evidence.role_rows("warm-start", "from-scratch")
    if warm is not None:
        figures["warmstart"] = embed(RF.warmstart_curves(warm, lang=lang), Message("caption.warmstart"), lang)
    return figures


def _reliability_figures(evidence: Evidence, roles: tuple[str, ...], lang: str = "en") -> dict[str, EmbeddedFigure]:
    figures = {}
    rows = evidence.role_rows(*roles)
    if rows is not None and S.has_reliability(S.final_rows(rows)):
        for cell in list(dict.fromkeys(rows["cell"])):
            figures[f"reliability-{cell}"] = embed(
                RF.reliability_diagrams(rows[rows["cell"] == cell], cell, lang=lang),
                Message("caption.reliability", cell=cell),
                lang,
            )
    return figures


def _banners(manifests: list[dict], evidence: Evidence, tables: list[dict]) -> list[dict]:
    """Warnings for the top of the page: smoke runs, other reduced sizes, settings chosen on test."""
    banners = []
    smoke = [m["command"] for m in manifests if m["size"] == "smoke"]
    if smoke:
        banners.append(
            {"level": "alarm", "id": "smoke-banner", "text": Message("banner.smoke", commands="; ".join(smoke))}
        )
    reduced = [m["command"] for m in manifests if m["size"] not in ("full", "smoke")]
    if reduced:
        banners.append(
            {"level": "warn", "id": "size-banner", "text": Message("banner.reduced", commands="; ".join(reduced))}
        )
    flagged = [t["title"] for t in tables if S.CHOSEN_ON_TEST in " ".join(str(c) for row in t["rows"] for c in row)]
    if flagged:
        banners.append(
            {"level": "warn", "id": "validation-banner", "text": Message("banner.validation", tables=Listing(flagged))}
        )
    return banners


def build_report(
    result_dirs: list[Path], ledger=None, explorer_href: str | None = None, lang: str = "en"
) -> tuple[str, list]:
    """Render the report from result folders in ``lang`` ('en' or 'zh'); returns (html, claims)."""
    results, manifests = _read_results(result_dirs)
    return render_report(results, ledger, manifests, [str(d) for d in result_dirs], explorer_href, lang=lang)


def _describe_run(manifest: dict) -> dict:
    """A run as the 'Reproduce' section and the size banners show it."""
    env = manifest.get("environment", {})
    size = manifest.get("size", "full")
    flag = "" if size == "full" else (" --smoke" if size == "smoke" else f" --size {size}")
    return {
        "command": f"losslab run {manifest['spec']}{flag}",
        "cells": len(manifest.get("cells", [])),
        "size": size,
        "env": _run_environment(env),
    }


def _template_functions(lang: str) -> dict:
    """What the template calls: ``t(id, **args)`` renders a catalogue message as HTML (arguments made with
    ``code``/``link`` keep their markup, everything else is escaped); ``word(kind, value)`` shows a data value
    (a verdict, a ledger status, a claim's basis) in the language."""

    def t(id: str, /, **args) -> markupsafe.Markup:
        template = messages(lang).get(id, messages("en").get(id))
        if template is None or set(args) != placeholders(template):
            Message(id, **{k: str(v) for k, v in args.items()})  # raises, naming the id and its arguments
        values = {k: v if isinstance(v, markupsafe.Markup) else render(v, lang) for k, v in args.items()}
        return markupsafe.Markup(markupsafe.escape(template)).format(**values)

    def code(text) -> markupsafe.Markup:
        return markupsafe.Markup("<code>{}</code>").format(render(text, lang))

    def link(href: str, text) -> markupsafe.Markup:
        return markupsafe.Markup('<a href="{}">{}</a>').format(href, render(text, lang))

    def word(kind: str, value: str) -> str:
        if kind == "verdict":
            return verdict_word(value).render(lang)
        if kind == "status":
            return Message(f"status.{value}").render(lang)
        return Message(f"{kind}.{value.replace(' ', '_')}").render(lang)

    return {"t": t, "code": code, "link": link, "word": word}


def render_report(
    results: dict[str, tuple[dict, pd.DataFrame]],
    ledger=None,
    manifests: list[dict] | None = None,
    sources: list[str] | None = None,
    explorer_href: str | None = None,
    lang: str = "en",
) -> tuple[str, list]:
    """Render the report from results already read (spec name -> (manifest, rows)); returns (html, claims).
    ``explorer_href``: where the interactive explorer page is, relative to the report, to link it.
    ``lang``: the report's language ('en' or 'zh', ``losslab.i18n.LANGUAGES``); Chinese needs a CJK font for
    the figures (``losslab.report.fonts``), checked before anything is computed."""
    check_language(lang)
    fonts.require(lang)
    if manifests is None:
        manifests = [_describe_run(manifest) for manifest, _ in results.values()]
    ledger = ledger if ledger is not None else verify_all(seed=0, trials=100)
    evidence = Evidence(ledger, results)
    claims = verdicts(evidence)
    later = findings(evidence)
    figures = _figures(evidence, lang)
    reliability = _reliability_figures(evidence, ("loss-comparison",), lang)
    reference_reliability = _reliability_figures(evidence, tuple(C.MNIST1D_PUBLISHED), lang)
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
        loader=jinja2.FileSystemLoader(environment),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        # Every {{ value }} that is a catalogue message (a claim's title, a table cell, a rule) is shown in the
        # report's language; plain values (numbers, loss and dataset names, commands) are shown as they are.
        finalize=lambda value: render(value, lang),
    )
    env.globals.update(_template_functions(lang))
    html = env.get_template("report.html").render(
        lang=lang,
        html_lang=meta(lang, "html_lang"),
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
        min_seeds=[
            Message("report.methods.seed_item", what=C.MIN_SEEDS_LABELS[k], n=str(n)) for k, n in C.MIN_SEEDS.items()
        ],
        methods=[S.INTERVAL_METHOD, S.BOOTSTRAP_METHOD, S.SELECTION_RULE],
        notes=evidence.notes,
        manifests=manifests,
        explorer_href=explorer_href,
    )
    return html, claims


def write_report(result_dirs: list[Path], out: Path, ledger=None, lang: str = "en") -> tuple[Path, list]:
    """Write ``out/index.html`` in ``lang`` (linking ``out/explorer.html`` when there is one); returns its path
    and the claims with their verdicts.

    Every results folder is read and verified before anything is written; a folder that is missing,
    incomplete, damaged or in conflict with another is a StoreError naming it and the fix. A language
    whose figures need a font this machine lacks fails first, saying how to install one.
    """
    check_language(lang)
    fonts.require(lang)
    out = Path(out)
    path = out / "index.html"
    store.check_writable(out, "report folder")
    # The explorer written beside the report (as the demo does) is linked from it.
    explorer = "explorer.html" if (out / "explorer.html").is_file() else None
    html, claims = build_report([Path(d) for d in result_dirs], ledger, explorer, lang)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise StoreError(
            f"cannot write the report to {path} ({exc.strerror or exc}); choose a writable folder (--out)"
        ) from None
    return path, claims
