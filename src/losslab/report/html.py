"""The self-contained HTML report and its ``report.json``.

``write_report(result_dirs, out)`` reads result folders written by ``losslab run`` (it never trains), runs the
equation ledger, summarises every grid (``losslab.report.grids``), decides every declared claim and finding,
draws every figure into the page as base64 PNG (no network needed to view it) and writes ``out/index.html``
and ``out/report.json`` (``losslab.report.report_json``: every table, interval and verdict as records).

The page leads with the experiments when any grid answers a question of its own (no article role): every
grid, each loss at its rate chosen on validation, against the grid's baseline, its rate sensitivity, curves
and calibration. The article's claims ledger follows, its untested claims folded into one line. Results
whose every grid has an article role (the built-in specs) lead with the claims ledger instead.
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
from losslab.report import audit as A
from losslab.report import fonts, report_json, roles
from losslab.report import result_figures as RF
from losslab.report import selection as sel
from losslab.report import tables as T
from losslab.report.claims import verdicts
from losslab.report.figures import FIGURES
from losslab.report.findings import findings
from losslab.report.verdicts import MIN_SEEDS, Evidence, verdict_counts, verdict_word
from losslab.theory.ledger import ledger_summary, verify_all

ANALYSIS_FIGURES = ["sigmoid", "binary-gradient", "gradient-norm", "logit-plane", "loss-margin", "curvature"]


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


def _describe_run(manifest: dict, cells: int | None = None) -> dict:
    """A run as the 'Reproduce' section and the size banners show it: the command the manifest recorded."""
    size = manifest.get("size", "full")
    # The command the run recorded; a run started from Python recorded none: the spec at its size, as typed.
    command = store.recorded_command(manifest)
    if command is None:
        flag = "" if size == "full" else (" --smoke" if size == "smoke" else f" --size {size}")
        command = f"losslab run {manifest['spec']}{flag}"
    return {
        "spec": manifest["spec"],
        "command": command,
        "cells": len(manifest.get("cells", [])) if cells is None else cells,
        "size": size,
        "env": _run_environment(manifest.get("environment", {})),
    }


def _read_results(result_dirs: list[Path]) -> tuple[dict, list[dict]]:
    """Every folder verified through the store (complete, checksums, nothing unlisted); a cell found
    in two folders counts once, and the same cell with other settings or contents is refused."""
    combined = read_results(result_dirs)
    for folder, manifest, _ in combined.sources:
        if manifest.get("size") == "api":  # written by store.save_result: rows without the grids of a spec
            raise ValueError(
                f"{folder} holds one population saved with save_result, which has no grid for the report to show; "
                "read it with load_results, or train it from a spec (losslab init, then losslab run) to report it"
            )
    runs = [_describe_run(manifest, contributed) for _, manifest, contributed in combined.sources if contributed]
    return combined.results, runs


def _grid_figures(grid, lang: str) -> list[tuple[str, EmbeddedFigure]]:
    name = f"grid-{grid.spec}-{grid.label}"
    out = []
    # A sensitivity curve needs a loss with more than one rate; a grid of one rate per loss has none to draw.
    if any(len(arm.choice.curve) > 1 for condition in grid.conditions for arm in condition.arms):
        figure = embed(RF.rate_sensitivity(grid, lang=lang), Message("caption.rates", grid=grid.key), lang)
        out.append((f"{name}-rates", figure))
    out.append(
        (f"{name}-curves", embed(RF.training_curves(grid, lang=lang), Message("caption.curves", grid=grid.key), lang))
    )
    reliability = RF.reliability_diagrams(grid, lang=lang)
    if reliability is not None:
        out.append((f"{name}-reliability", embed(reliability, Message("caption.reliability", cell=grid.key), lang)))
    return out


def _role_figures(evidence: Evidence, lang: str) -> dict[str, EmbeddedFigure]:
    """The figures of every role view present in the results (``losslab.report.roles``), in declared order."""
    figures = {}
    for view in roles.views(evidence):
        captions = dict(view.captions)
        for name, fig in view.figures(evidence, lang).items():
            figures[name] = embed(fig, Message(captions[name]), lang)
    return figures


def _banners(runs: list[dict], tables: list[dict]) -> list[dict]:
    """Warnings for the top of the page: smoke runs, other reduced sizes, settings chosen on test."""
    banners = []
    smoke = [m["command"] for m in runs if m["size"] == "smoke"]
    if smoke:
        banners.append(
            {"level": "alarm", "id": "smoke-banner", "text": Message("banner.smoke", commands="; ".join(smoke))}
        )
    reduced = [m["command"] for m in runs if m["size"] not in ("full", "smoke")]
    if reduced:
        banners.append(
            {"level": "warn", "id": "size-banner", "text": Message("banner.reduced", commands="; ".join(reduced))}
        )
    test_phrase = str(Message("chosen.test"))
    flagged = [t["title"] for t in tables if any(str(c) == test_phrase for row in t["rows"] for c in row)]
    if flagged:
        banners.append(
            {"level": "warn", "id": "validation-banner", "text": Message("banner.validation", tables=Listing(flagged))}
        )
    return banners


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


@dataclass
class Report:
    """A rendered report: the page, its ``report.json`` record, and the claims and findings with their verdicts."""

    html: str
    record: dict
    claims: list
    findings: list


def render_report(
    results: dict[str, tuple[dict, pd.DataFrame]],
    ledger=None,
    runs: list[dict] | None = None,
    sources: list[str] | None = None,
    explorer_href: str | None = None,
    lang: str = "en",
) -> Report:
    """Render the report from results already read (spec name -> (manifest, rows)).
    ``explorer_href``: where the interactive explorer page is, relative to the report, to link it.
    ``lang``: the report's language ('en' or 'zh', ``losslab.i18n.LANGUAGES``); Chinese needs a CJK font for
    the figures (``losslab.report.fonts``), checked before anything is computed."""
    check_language(lang)
    fonts.require(lang)
    runs = runs if runs is not None else [_describe_run(manifest) for manifest, _ in results.values()]
    ledger = ledger if ledger is not None else verify_all(seed=0, trials=100)
    evidence = Evidence(ledger, results)
    claims = verdicts(evidence)
    later = findings(evidence)
    grid_sections = [
        {
            "grid": g,
            "tables": T.grid_tables(g),
            "figures": _grid_figures(g, lang),
            "varying": [Message(f"column.{axis}") for axis in g.varying],
        }
        for g in evidence.grids
    ]
    figures = {name: embed(FIGURES[name].make(lang=lang), FIGURES[name].description, lang) for name in ANALYSIS_FIGURES}
    role_figures = _role_figures(evidence, lang)
    figures.update(role_figures)
    question_tables = [table for view in roles.views(evidence) for table in view.tables(evidence)]
    audit_tables = T.audit_table([*claims, *later])
    all_tables = [t for s in grid_sections for t in s["tables"]] + question_tables + audit_tables
    eps = evidence.dead_epsilon()
    dead_zones = [
        landscape.dead_zone("mse", epsilon=eps).describe(),
        landscape.dead_zone("binary_cross_entropy", epsilon=eps).describe(),
    ] + [
        landscape.dead_zone(name, epsilon=eps, num_classes=10).describe()
        for name in ("mse", "cross_entropy", "square_logits", "focal")
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        # Every {{ value }} that is a catalogue message (a claim's title, a table cell, a rule) is shown in the
        # report's language; plain values (numbers, loss and dataset names, commands) are shown as they are.
        finalize=lambda value: render(value, lang),
    )
    env.globals.update(_template_functions(lang))
    tested = [c for c in claims if c.verdict != "not tested"]
    html = env.get_template("report.html").render(
        lang=lang,
        html_lang=meta(lang, "html_lang"),
        version=__version__,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sources=sources or [],
        banners=_banners(runs, all_tables),
        lead_with_grids=any(g.role is None for g in evidence.grids),
        grid_sections=grid_sections,
        claims=tested,
        untested=[c for c in claims if c.verdict == "not tested"],
        counts=verdict_counts(claims),
        ledger=ledger,
        ledger_summary=ledger_summary(ledger),
        figures=figures,
        analysis_figures=ANALYSIS_FIGURES,
        dead_zones=dead_zones,
        dead_epsilon=eps,
        question_tables=question_tables,
        role_figures=list(role_figures),
        audit_tables=audit_tables,
        findings=later,
        methods=[Message("methods.intervals"), Message("methods.bootstrap"), Message("methods.selection")],
        audit_method=Message(
            "methods.audit",
            power=f"{100 * A.POWER_TARGET:.0f}%",
            limit=f"{100 * A.FALSE_AGREEMENT_LIMIT:.0f}%",
            simulations=f"{A.SIMULATIONS:,}",
        ),
        min_seeds=str(MIN_SEEDS),
        notes=evidence.notes,
        manifests=runs,
        explorer_href=explorer_href,
        chosen_on_test=sel.CHOSEN_ON_TEST,
    )
    record = report_json.build(evidence.grids, claims, later, all_tables, ledger, sources or [], runs)
    return Report(html, record, claims, later)


def build_report(result_dirs: list[Path], ledger=None, explorer_href: str | None = None, lang: str = "en") -> Report:
    """Render the report from result folders in ``lang`` ('en' or 'zh')."""
    results, runs = _read_results(result_dirs)
    return render_report(results, ledger, runs, [str(d) for d in result_dirs], explorer_href, lang=lang)


def write_report(result_dirs: list[Path], out: Path, ledger=None, lang: str = "en") -> tuple[Path, list]:
    """Write ``out/index.html`` and ``out/report.json`` in ``lang`` (linking ``out/explorer.html`` when there is
    one); returns the page's path and the claims with their verdicts.

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
    report = build_report([Path(d) for d in result_dirs], ledger, explorer, lang)
    try:
        out.mkdir(parents=True, exist_ok=True)
        store.atomic_write(out / "report.json", report_json.dumps(report.record).encode("utf-8"))
        store.atomic_write(path, report.html.encode("utf-8"))
    except OSError as exc:
        raise StoreError(
            f"cannot write the report to {out} ({exc.strerror or exc}); choose a writable folder (--out)"
        ) from None
    return path, report.claims
