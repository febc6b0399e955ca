"""What every verdict is made of: the vocabulary, the evidence, and the declared claims.

Claim verdicts: "supported", "supported with caveat", "not supported", "not enough evidence" (the evidence
exists but cannot decide: fewer seeds than the claim declares, an interval too wide, settings chosen on test
accuracy, fewer than half of the cells decided, or a design too weak to decide at all, by the audit) and "not
tested" (no evidence). Findings of later research: "agrees", "disagrees", "mixed" (complete evidence that goes
both ways), "not enough evidence", "not tested". Missing evidence is never "mixed".

A claim is **declared** (``declare``): its id, the grid roles it reads, the seeds it needs per compared group,
the figures it points to, and the function that decides it, whose docstring is the rule the report prints.
Rule texts carry ``{placeholders}`` for the constants that decide them (``RULE_CONSTANTS``), filled when the
rule is shown, so changing a constant changes every printed rule, in every language. The report shows every
declared claim; adding one is one decorated function (and its messages in the catalogues).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from losslab.core import DEAD_EPSILON
from losslab.experiments.spec import SpecError, builtin_specs, load_spec
from losslab.i18n import Message, Rule
from losslab.registry import Registry
from losslab.report import audit as A
from losslab.report import grids as G
from losslab.report import selection as sel

VERDICTS = ("supported", "supported with caveat", "not supported", "not enough evidence", "not tested")
FINDING_VERDICTS = ("agrees", "disagrees", "mixed", "not enough evidence", "not tested")

MIN_SEEDS = 5  # fewest seeds per compared group (each loss at each setting) before an experiment may decide
DEFAULT_DEAD_EPSILON = DEAD_EPSILON  # the trainer's default dead_epsilon, used where no run says otherwise

#: The constants rule texts print (``{name}`` in a docstring or its translation). Each rule module adds its own.
RULE_CONSTANTS: dict[str, str] = {
    "min_seeds": str(MIN_SEEDS),
    "default_margin": f"{G.DEFAULT_MARGIN:g}",
    "power_target": f"{100 * A.POWER_TARGET:.0f}%",
    "false_agreement_limit": f"{100 * A.FALSE_AGREEMENT_LIMIT:.0f}%",
}


def verdict_word(verdict: str) -> Message:
    """A verdict ('not enough evidence', 'agrees', ...) as its catalogue message, for display."""
    return Message("verdict." + verdict.replace(" ", "_"))


def outcome_word(outcome: str) -> Message:
    """'yes' / 'no' (a decision's values) as catalogue messages."""
    return Message(f"word.{outcome}")


def chosen_word(chosen_on: str) -> Message:
    """How a setting was chosen (``selection.CHOSEN_ON_*``) as its catalogue message, for display."""
    key = {
        sel.CHOSEN_ON_VALIDATION: "validation",
        sel.CHOSEN_ON_TEST: "test",
        sel.ONLY_SETTING: "only",
        sel.ALL_DIVERGED: "all_diverged",
    }[chosen_on]
    return Message(f"chosen.{key}")


def edge_word(edge: str) -> Message:
    return Message(f"word.edge_{edge}")


@dataclass
class Claim:
    """A claim and its verdict. The texts (title, evidence, caveat, rule) are catalogue messages: English
    strings that the report renders in its language; ``verdict`` and ``basis`` are plain values."""

    id: str
    title: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    caveat: str = ""
    figures: list[str] = field(default_factory=list)
    rule: str = ""  # the docstring of the function that decided it
    basis: str = ""  # analysis / equation ledger / experiments / none
    audit: A.Audit | None = None  # the rule's measured error rates at this design (experiments only)


@dataclass
class Finding:
    source: str
    statement: str
    verdict: str  # one of FINDING_VERDICTS
    evidence: list[str] = field(default_factory=list)
    rule: str = ""
    key: str = ""
    audit: A.Audit | None = None


def grid_info(spec: str, manifest: dict, notes: list | None = None) -> dict[str, dict]:
    """Per grid label of a run: its role, baseline, margin, dead_epsilon and target accuracy.

    A manifest written before grids had roles takes them from the built-in spec of the same name, matched by
    label (and says so in ``notes``); a grid with no role is read by no claim, and is shown all the same.
    """
    grids = (manifest.get("spec_data") or {}).get("grid", [])
    builtin = {}
    if any("role" not in g for g in grids) and spec in builtin_specs():
        try:
            builtin = {g.get("label"): g.get("role") for g in load_spec(spec).data["grid"]}
        except SpecError:
            builtin = {}
    info = {}
    for i, g in enumerate(grids):
        label = g.get("label", f"grid{i}")
        role = g.get("role")
        if role is None and builtin.get(label):
            role = builtin[label]
            note = Message("claims.note_roles_from_builtin", spec=spec)
            if notes is not None and note not in notes:
                notes.append(note)
        info[label] = {
            "role": role,
            "baseline": g.get("baseline"),
            "margin": g.get("margin"),
            "dead_epsilon": float(run_setting(manifest, label, "dead_epsilon", DEFAULT_DEAD_EPSILON)),
            "target_accuracy": g.get("target_accuracy"),
        }
    return info


def run_setting(manifest: dict, grid_label: str | None, key: str, default):
    """A training setting (e.g. ``dead_epsilon``) as the run used it: the spec's [train] table, then the size's
    train override, then the grid's own train table, each overriding the one before; ``default`` otherwise."""
    data = manifest.get("spec_data", {}) or {}
    value = data.get("train", {}).get(key, default)
    size = manifest.get("size")
    if size and size != "full":
        value = data.get("sizes", {}).get(size, {}).get("train", {}).get(key, value)
    for grid in data.get("grid", []):
        if grid.get("label") == grid_label:
            value = grid.get("train", {}).get(key, value)
    return value


@dataclass
class Evidence:
    """Everything the verdicts are computed from: the equation ledger, the results, and their grid summaries."""

    ledger: list  # LedgerRow
    results: dict[str, tuple[dict, pd.DataFrame]]  # spec name -> (manifest, rows)
    notes: list[str] = field(default_factory=list)  # how the evidence was read (shown in the report)
    grids: list[G.Grid] = field(default_factory=list)

    def __post_init__(self):
        if not self.grids:
            self.grids = G.summarise(self.results, lambda spec, manifest: grid_info(spec, manifest, self.notes))

    def role_grids(self, *roles: str) -> list[G.Grid]:
        return [g for g in self.grids if g.role in roles]

    def role_rows(self, *roles: str) -> pd.DataFrame | None:
        """Rows of every grid whose role is one of ``roles`` (None if none), with ``role``, ``dead_epsilon`` and
        ``target_accuracy`` columns; cells are named "<spec>/<cell>" when several specs contribute."""
        frames = []
        for spec, (manifest, rows) in self.results.items():
            if rows.empty:
                continue
            info = grid_info(spec, manifest)
            role_of = {label: entry["role"] for label, entry in info.items()}
            keep = rows[rows["grid"].map(role_of).isin(roles)]
            if keep.empty:
                continue
            frames.append(
                keep.assign(
                    role=keep["grid"].map(role_of),
                    dead_epsilon=keep["grid"].map({k: e["dead_epsilon"] for k, e in info.items()}),
                    target_accuracy=keep["grid"].map({k: e["target_accuracy"] for k, e in info.items()}),
                    experiment=spec,
                )
            )
        if not frames:
            return None
        out = pd.concat(frames, ignore_index=True)
        if out["experiment"].nunique() > 1:
            out["cell"] = out["experiment"] + "/" + out["cell"]
        return out

    def ledger_status(self, equations) -> tuple[bool, float]:
        rows = [r for r in self.ledger if r.equation in equations]
        ok = bool(rows) and all(r.status in ("holds", "erratum", "transcription") for r in rows)
        errors = [r.max_error for r in rows if r.max_error is not None]
        return ok, max(errors) if errors else math.nan

    def dead_epsilon(self) -> float:
        """The dead-zone threshold of the runs given (the largest, if they differ), else the trainer's default."""
        values = {e["dead_epsilon"] for spec, (m, _) in self.results.items() for e in grid_info(spec, m).values()}
        return max(values) if values else DEFAULT_DEAD_EPSILON

    def num_classes(self) -> list[int]:
        return sorted({c.num_classes for g in self.grids for c in g.conditions})


def cell_name(grid: G.Grid, condition: G.Condition, several_specs: bool) -> str:
    """How a verdict names a condition: its cell, with the initial scale where the grid varies it."""
    name = f"{grid.spec}/{condition.cell}" if several_specs else condition.cell
    return f"{name} (x{condition.init_scale:g})" if "init_scale" in grid.varying else name


def seed_shortfall(counts: dict, minimum: int = MIN_SEEDS) -> str:
    """'' if every compared group has at least ``minimum`` seeds, else a sentence saying how many the fewest has."""
    short = [n for n in counts.values() if n < minimum]
    if not short:
        return ""
    return Message("claims.seed_shortfall", seeds=str(min(short)), minimum=str(minimum))


def guard(verdict: str, audit: A.Audit | None, evidence: list, untested: tuple[str, ...]) -> str:
    """An experiment verdict stands only if the audit says the design can decide it: power at least the
    target and false agreement at most the limit; otherwise 'not enough evidence', saying why."""
    if audit is None or verdict in untested or audit.decides:
        return verdict
    if audit.cells and audit.power < A.POWER_TARGET:
        needed = (
            Message("audit.needs_seeds", seeds=str(audit.seeds_needed))
            if audit.seeds_needed
            else Message("audit.needs_test_set")
        )
        evidence.append(
            Message(
                "audit.underpowered",
                power=f"{100 * audit.power:.0f}%",
                target=RULE_CONSTANTS["power_target"],
                needed=needed,
            )
        )
    return "not enough evidence"


# --- the declared claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """A claim or finding as registered: what it reads and needs, and the function that decides it."""

    id: str
    kind: str  # "claim" or "finding"
    decide: Callable
    roles: tuple[str, ...] = ()
    min_seeds: int | None = None
    figures: tuple[str, ...] = ()
    order: float = 0.0  # where the report shows it among its kind


#: Every claim and finding (``declare``); the report shows each kind in its own section, by ``order``.
DECLARED: Registry[Declared] = Registry("claim", "claims", plugins=False)


def declare(
    id: str,
    *,
    kind: str = "claim",
    roles: tuple[str, ...] = (),
    min_seeds: int | None = None,
    figures: tuple[str, ...] = (),
    helpers: tuple[Callable, ...] = (),
    constants: dict | None = None,
    order: float = 0.0,
):
    """Register the decorated function as the rule of claim (or finding) ``id``, shown at ``order`` among its kind
    (a claim's number orders it; ties keep the order of declaration); its docstring, and its helpers', become the
    printed rule, with ``RULE_CONSTANTS`` (and ``constants``) filled in."""

    def register(fn):
        fn.rule_text = Rule([fn, *helpers], constants={**RULE_CONSTANTS, **(constants or {})})
        DECLARED.register(id, Declared(id, kind, fn, tuple(roles), min_seeds, tuple(figures), order))  # once only
        return fn

    return register


def _flag_replaced_losses(ev: Evidence, entry: Declared, item) -> None:
    """A verdict that reads a built-in loss a plugin replaced says so; "supported" becomes "supported with
    caveat", since the claim is about the built-in loss."""
    replaced = sorted(
        {
            f"{arm.loss} ({arm.origin})"
            for grid in ev.role_grids(*entry.roles)
            for condition in grid.conditions
            for arm in condition.arms
            if arm.origin.startswith("replaced by")
        }
    )
    if not replaced or item.verdict in ("not tested", "not enough evidence"):
        return
    note = Message("verdict.replaced_loss", losses=", ".join(replaced))
    item.evidence.append(note)
    if item.verdict == "supported":
        item.verdict, item.caveat = "supported with caveat", item.caveat or note


def decide(ev: Evidence, kind: str) -> list:
    """Every declared claim (``kind`` "claim") or finding ("finding"), decided on the evidence, with its rule
    text attached; a verdict outside the kind's vocabulary is a bug."""
    allowed = VERDICTS if kind == "claim" else FINDING_VERDICTS
    out = []
    for entry in sorted(DECLARED.values(), key=lambda e: e.order):
        if entry.kind != kind:
            continue
        item = entry.decide(ev)
        item.rule = getattr(entry.decide, "rule_text", inspect.getdoc(entry.decide) or "")
        _flag_replaced_losses(ev, entry, item)
        if kind == "finding":
            item.key = entry.id  # every return path of a finding names it the same way
        if item.verdict not in allowed:
            raise AssertionError(f"{entry.id}: verdict {item.verdict!r} is not one of {allowed}")
        out.append(item)
    return out


def verdict_counts(claims: list[Claim]) -> dict[str, int]:
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
