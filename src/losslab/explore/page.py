"""Build the explorer page: the template, its CSS and JavaScript inlined, and the measured rows as JSON.

The page computes the gradient explorer and Nielsen's neuron itself (``explorer.js`` ports the closed
forms of ``losslab.core.losses``); the only data it carries is a saturation experiment's rows, reduced
to the mean, minimum and maximum over seeds per cell, loss, learning rate, initial logit scale and
evaluation step. It reads result folders and never trains.

The page is a jinja2 template (``explorer.html``, autoescaped) into which the CSS, the JavaScript and the data
are inlined. Its words come from the message catalogues (``src/losslab/i18n/<lang>.toml``), ids ``explore.*``:
the template's ``{{ t('id') }}`` (ids ending in ``_html`` as HTML, the rest escaped), and the plain messages
the JavaScript needs (``explore.*`` and the loss names ``figure.loss.*``) travel in the page's JSON, where
``explorer.js`` reads them with its own ``t(id, params)``.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import json
import math
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from losslab import __version__
from losslab.core import DEAD_EPSILON
from losslab.experiments.store import check_writable, load_results
from losslab.i18n import check_language, messages, meta, placeholders

FILENAME = "explorer.html"
# Measurements are rounded to this many significant digits: far below the seed-to-seed spread, and
# it keeps the embedded data a few tens of kilobytes.
DIGITS = 6
_MEASURED = {"test_accuracy": "acc", "grad_norm": "grad", "dead_fraction": "dead"}
_REQUIRED = ["cell", "loss", "lr", "init_scale", "step", "member", *_MEASURED]
# The messages the page's JavaScript may read (HTML messages stay in the template).
SCRIPT_MESSAGE_PREFIXES = ("explore.", "figure.loss.")


def _asset(name: str) -> str:
    return resources.files("losslab.explore").joinpath(name).read_text(encoding="utf-8")


def _load_rows(folder: Path):
    """The one place that reads result rows: through the results store (complete, every checksum verified)."""
    return load_results(folder)


def _command(spec: str, size: str) -> str:
    """How the page tells a reader to run the spec again at this size (by its name, as the report does)."""
    flag = "" if size == "full" else (" --smoke" if size == "smoke" else f" --size {size}")
    return f"losslab run {spec}{flag}"


def _round(value) -> float | None:
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


def measured_data(folder: Path) -> dict:
    """The rows of a results folder, reduced for the page's scrubber.

    Returns ``{"source", "spec", "size", "command", "cells": [...]}``; each cell has its evaluation
    ``steps`` and one series per (loss, loss_params, lr, init_scale) with, for every step, the mean,
    minimum and maximum over seeds of the test accuracy and the logit-gradient norm, and the mean
    dead fraction (None where a series has no row at that step).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"results folder {folder} does not exist; create it with 'losslab run saturation --smoke --out {folder}'"
        )
    manifest, rows = _load_rows(folder)
    if rows.empty:
        raise ValueError(
            f"results folder {folder} has no finished cells; run 'losslab run {manifest.get('spec', 'saturation')} "
            f"--out {folder}' to finish it"
        )
    missing = [c for c in _REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"results folder {folder} lacks the columns {missing}; rerun it with this losslab version")
    if "phase" in rows.columns:
        rows = rows[rows["phase"].fillna("main") == "main"]
    if "loss_params" not in rows.columns:
        rows = rows.assign(loss_params="{}")
    rows = rows.assign(loss_params=rows["loss_params"].fillna("{}").replace("", "{}"))
    targets = {
        g.get("label"): g.get("target_accuracy") for g in manifest.get("spec_data", {}).get("grid", []) if "label" in g
    }
    size = manifest.get("size", "full")
    cells = []
    for cell, cell_rows in rows.groupby("cell", sort=False):
        steps = sorted(int(s) for s in cell_rows["step"].unique())
        index = {s: i for i, s in enumerate(steps)}
        first = cell_rows.iloc[0]
        series = []
        keys = ["loss", "loss_params", "lr", "init_scale"]
        for (loss, params, lr, scale), group in cell_rows.groupby(keys, sort=True):
            stats = group.groupby("step")[list(_MEASURED)].agg(["mean", "min", "max"])
            entry = {
                "loss": str(loss),
                "params": json.loads(params),
                "lr": float(lr),
                "init_scale": float(scale),
                "seeds": int(group["member"].nunique()),
            }
            for column, short in _MEASURED.items():
                for stat, suffix in (("mean", ""), ("min", "_lo"), ("max", "_hi")):
                    if short == "dead" and stat != "mean":
                        continue
                    values = [None] * len(steps)
                    for step, value in stats[(column, stat)].items():
                        values[index[int(step)]] = _round(value)
                    entry[short + suffix] = values
            series.append(entry)
        cells.append(
            {
                "cell": str(cell),
                "dataset": str(first.get("dataset", "")),
                "model": str(first.get("model", "")),
                "num_classes": int(first["num_classes"]) if "num_classes" in cell_rows else None,
                "target": targets.get(first.get("grid", cell)),
                "steps": steps,
                "series": series,
            }
        )
    return {
        "source": str(folder),
        "spec": str(manifest.get("spec", "")),
        "size": size,
        "command": _command(str(manifest.get("spec", "saturation")), size),
        "cells": cells,
    }


def _json_for_script(data) -> str:
    # Inside <script> the text "</script" would end the element; \u003c keeps the JSON valid and inert.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def script_messages(lang: str) -> dict[str, str]:
    """The messages embedded for the page's JavaScript: plain-text ``explore.*`` and ``figure.loss.*``."""
    return {
        k: v for k, v in messages(lang).items() if k.startswith(SCRIPT_MESSAGE_PREFIXES) and not k.endswith("_html")
    }


def _template_text(id: str, lang: str) -> Markup:
    """A message of the template, ready for HTML: ``_html`` messages as written, the others escaped."""
    template = messages(lang).get(id)
    if template is None or not id.startswith("explore."):
        raise RuntimeError(f"the explorer template uses the message {id!r}, which is not an explore.* message")
    if placeholders(template):
        raise RuntimeError(f"the explorer template's message {id!r} has placeholders; fill it in explorer.js")
    text = template.format()  # {{ and }} become braces
    return Markup(text if id.endswith("_html") else _html.escape(text))


# Autoescaped: a value the page is given is escaped unless it is Markup (the inlined sources and data, and the
# messages, escaped by _template_text). StrictUndefined: a name the template uses and the page lacks fails.
_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def build_explorer(results: Path | None = None, lang: str = "en") -> str:
    """The explorer page as one HTML string: CSS and JavaScript inlined, nothing loaded from elsewhere.

    ``results``: a saturation results folder (``losslab run saturation``) whose rows the page's third
    section embeds; None leaves that section with instructions for getting data. ``lang``: the language
    of its words (``en``, ``zh``); numbers, formulas and the state in the URL are the same in every language.
    """
    check_language(lang)
    data = {
        "version": __version__,
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "lang": lang,
        "dead_epsilon": DEAD_EPSILON,  # the dead zone's threshold, as everywhere else
        "messages": script_messages(lang),
        "measured": None if results is None else measured_data(Path(results)),
    }
    template = _ENVIRONMENT.from_string(_asset("explorer.html"))
    return template.render(
        lang=meta(lang, "html_lang"),
        css=Markup(_asset("explorer.css")),
        data=Markup(_json_for_script(data)),  # inert inside <script>: see _json_for_script
        js=Markup(_asset("explorer.js")),
        t=lambda id: _template_text(id, lang),
    )


def write_explorer(out: Path, results: Path | None = None, lang: str = "en") -> Path:
    """Write ``out/explorer.html`` in ``lang`` (see ``build_explorer``) and return its path."""
    out = Path(out)
    check_writable(out, "explorer folder")
    html = build_explorer(results, lang)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILENAME
    path.write_text(html, encoding="utf-8")
    return path
