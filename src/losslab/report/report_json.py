"""``report.json``: every grid, table, interval and verdict of the report as records, for tests, scripts and papers.

Written beside ``index.html`` by ``losslab report`` (and ``losslab demo``, ``losslab compare``). Numbers are
plain JSON numbers (fractions, not percents; NaN and infinity are ``null``); texts are English. The layout is
versioned (``format``, ``version``) and described by ``SCHEMA`` (JSON Schema, draft 2020-12), which the tests
check every written file against; ``docs/report-json.md`` explains each field.

Top level: ``format`` ("losslab-report"), ``version``, ``losslab`` (the version that wrote it), ``generated``,
``sources`` (the results folders), ``runs`` (spec, size, command, cells), ``grids`` (the general view: every
grid, condition, loss and comparison with its numbers), ``claims`` and ``findings`` (verdicts, evidence,
rule, and the rule's audit), ``equations`` (the equation ledger), ``tables`` (every table of the page, as
shown, in English).
"""

from __future__ import annotations

import datetime as _dt
import json
import math

from losslab import __version__
from losslab.i18n import render
from losslab.report import grids as G
from losslab.report.verdicts import FINDING_VERDICTS, VERDICTS

FORMAT = "losslab-report"
VERSION = 1

_NUMBER = {"type": ["number", "null"]}
_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_OBJECT = {"type": "object"}


def _array(items: dict | None = None) -> dict:
    return {"type": "array", **({"items": items} if items else {})}


def _record(required: str, **properties) -> dict:
    """A JSON object with these ``properties`` (schemas), of which the space-separated ``required`` must be there."""
    return {"type": "object", "required": required.split(), "properties": properties}


_INTERVAL = _record(
    "mean low high n kind",
    mean=_NUMBER,
    low=_NUMBER,
    high=_NUMBER,
    n={"type": "integer", "minimum": 0},
    kind=_STRING,
    test_sampling={"type": ["boolean", "null"]},
)
_AUDIT = {
    **_record(
        "rule false_agreement power decides",
        rule=_STRING,
        cells=_INTEGER,
        seeds=_array(_INTEGER),
        false_agreement=_NUMBER,
        power=_NUMBER,
        false_disagreement=_NUMBER,
        decides={"type": "boolean"},
        seeds_needed={"type": ["integer", "null"]},
    ),
    "type": ["object", "null"],
}
_VERDICT = _record(
    "verdict evidence rule",
    verdict={"enum": [*VERDICTS, *(v for v in FINDING_VERDICTS if v not in VERDICTS)]},
    evidence=_array(_STRING),
    rule=_STRING,
    audit=_AUDIT,
)
_LOSS = _record(
    "loss name params lrs_tried chosen_lr chosen_on members diverged seeds test_accuracy metrics",
    loss=_STRING,
    name=_STRING,
    params=_OBJECT,
    origin=_STRING,
    lrs_tried=_array({"type": "number"}),
    chosen_lr=_NUMBER,
    edge={"enum": ["low", "high", None]},
    chosen_on=_STRING,
    curve=_array(),
    members=_INTEGER,
    diverged=_INTEGER,
    seeds=_INTEGER,
    val_accuracy=_NUMBER,
    test_accuracy=_INTERVAL,
    metrics={"type": "object", "additionalProperties": _INTERVAL},
)
_COMPARISON = _record(
    "loss baseline difference effect probability_of_improvement outcome",
    loss=_STRING,
    baseline=_STRING,
    difference=_INTERVAL,
    effect=_OBJECT,
    probability_of_improvement=_INTERVAL,
    outcome={"enum": list(G.OUTCOMES)},
)
_CONDITION = _record(
    "cell init_scale losses comparisons",
    cell=_STRING,
    init_scale={"type": "number"},
    dataset=_STRING,
    dataset_options=_OBJECT,
    num_classes=_INTEGER,
    test_examples={"type": ["integer", "null"]},
    losses=_array(_LOSS),
    comparisons=_array(_COMPARISON),
)
_GRID = _record(
    "spec grid role baseline margin conditions",
    spec=_STRING,
    grid=_STRING,
    role={"type": ["string", "null"]},
    model=_STRING,
    baseline=_STRING,
    margin={"type": "object", "required": ["odds_ratio"]},
    varying=_array(_STRING),
    conditions=_array(_CONDITION),
)
_TABLE = _record(
    "id title header rows",
    id=_STRING,
    title=_STRING,
    note=_STRING,
    header=_array(_STRING),
    rows=_array(_array(_STRING)),
)
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "losslab report.json",
    **_record(
        "format version losslab grids claims findings tables",
        format={"const": FORMAT},
        version={"const": VERSION},
        losslab=_STRING,
        generated=_STRING,
        sources=_array(_STRING),
        runs=_array(),
        grids=_array(_GRID),
        claims=_array({**_VERDICT, "required": [*_VERDICT["required"], "id", "title"]}),
        findings=_array({**_VERDICT, "required": [*_VERDICT["required"], "key", "source"]}),
        equations=_array(),
        tables=_array(_TABLE),
    ),
}


def _plain(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def _loss_record(arm: G.Arm) -> dict:
    return {
        "loss": arm.loss,
        "name": arm.name,
        "params": arm.params,
        "origin": arm.origin,
        "lrs_tried": arm.choice.lrs_tried,
        "chosen_lr": arm.choice.lr,
        "edge": arm.choice.edge,
        "chosen_on": arm.choice.chosen_on,
        "curve": [p.as_record() for p in arm.choice.curve],
        "members": arm.members,
        "diverged": arm.diverged,
        "seeds": arm.seeds,
        "val_accuracy": _plain(arm.val_accuracy),
        "test_accuracy": arm.accuracy.as_record(),
        "metrics": {k: v.as_record() for k, v in arm.metrics.items()},
    }


def grid_record(grid: G.Grid) -> dict:
    return {
        "spec": grid.spec,
        "grid": grid.label,
        "role": grid.role,
        "model": grid.model,
        "baseline": grid.baseline,
        "margin": {"odds_ratio": grid.margin, "log_odds": math.log(grid.margin)},
        "varying": grid.varying,
        "conditions": [
            {
                "cell": c.cell,
                "init_scale": c.init_scale,
                "dataset": c.dataset,
                "dataset_options": c.dataset_options,
                "num_classes": c.num_classes,
                "test_examples": c.test_examples,
                "losses": [_loss_record(a) for a in c.arms],
                "comparisons": [
                    {
                        "loss": cmp.loss,
                        "baseline": cmp.baseline,
                        "difference": cmp.difference.as_record(),
                        "effect": cmp.effect.as_record(),
                        "probability_of_improvement": cmp.improvement.as_record(),
                        "outcome": cmp.outcome,
                    }
                    for cmp in c.comparisons
                ],
            }
            for c in grid.conditions
        ],
    }


def _text(value) -> str:
    rendered = render(value, "en")
    return "" if rendered is None else str(rendered)


def _verdict_record(item) -> dict:
    return {
        "verdict": item.verdict,
        "evidence": [_text(e) for e in item.evidence if _text(e)],
        "rule": _text(item.rule),
        "audit": item.audit.as_record() if item.audit is not None else None,
    }


def build(
    grids: list[G.Grid],
    claims: list,
    findings: list,
    tables: list[dict],
    ledger: list,
    sources: list[str],
    runs: list[dict],
) -> dict:
    """The report as one JSON-able dict (see the module docstring and ``SCHEMA``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "losslab": __version__,
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "sources": list(sources),
        "runs": [{k: _text(v) if k == "env" else v for k, v in run.items()} for run in runs],
        "grids": [grid_record(g) for g in grids],
        "claims": [
            {"id": c.id, "title": _text(c.title), "basis": c.basis, "caveat": _text(c.caveat), **_verdict_record(c)}
            for c in claims
        ],
        "findings": [
            {"key": f.key, "source": _text(f.source), "statement": _text(f.statement), **_verdict_record(f)}
            for f in findings
        ],
        "equations": [
            {
                "equation": r.equation,
                "statement": _text(r.statement),
                "method": _text(r.method),
                "status": r.status,
                "max_error": r.max_error,
                "corrected": _text(r.corrected) if r.corrected else None,
            }
            for r in ledger
        ],
        "tables": [
            {
                "id": t["id"],
                "title": _text(t["title"]),
                "note": _text(t.get("note", "")),
                "header": [_text(h) for h in t["header"]],
                "rows": [[_text(cell) for cell in row] for row in t["rows"]],
            }
            for t in tables
        ],
    }


def dumps(record: dict) -> str:
    """The record as JSON text: NaN and infinity become null (JSON has neither), numpy scalars plain numbers."""
    return json.dumps(_clean(record), indent=1, ensure_ascii=False, allow_nan=False)


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
