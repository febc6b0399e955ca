"""Every key a spec file may hold, declared once: type, constraint, default, meaning and an example.

A spec is read into these typed dataclasses (``SpecFile``, ``GridSpec``, ``WarmStart``, ``SizeSpec``; ``[train]``
is ``TrainConfig``, whose fields are declared in ``losslab.train.config``), and the declarations are also what
``losslab init`` writes, what ``docs/spec.md`` and ``losslab schema`` say, and what ``KEY=VALUE`` overrides are
checked against, so none of them can drift from the validator. The values a constraint cannot judge alone (a
loss name, learning rates per loss, a baseline among the grid's losses) are checked in ``losslab.experiments.spec``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from losslab.core import LOSSES
from losslab.experiments.store import NAME_PATTERN, NAME_RULE
from losslab.params import (
    AnyOf,
    Constraint,
    Interval,
    ListOf,
    Options,
    Param,
    Table,
    Text,
    is_integer,
    params_of,
    setting,
)
from losslab.registry import Registry
from losslab.train.config import EXECUTION_FIELDS, MAX_SEED, MEMBER_PARAMS, TRAIN_PARAMS, TrainConfig
from losslab.train.plan import ARITHMETIC_FIELDS


class SpecError(ValueError):
    """A spec that cannot run; the message names the file, the key and the valid values."""


#: The roles a grid can play in the report: which of the article's questions it answers (the report's claims read
#: grids by these names, and ``losslab.report.roles`` gives each its tables and figures); name -> what it is for.
ROLES: Registry[str] = Registry("role", "roles", plugins=False)
for _role, _question in {
    "saturation-binary": "one sigmoid logit from normal and confidently wrong starts, MSE against binary "
    "cross-entropy: the report judges claim C4 from it (does MSE stall where cross-entropy trains?)",
    "saturation-softmax": "softmax outputs from normal and confidently wrong starts, MSE against cross-entropy: "
    "claim C5 and Nielsen's saturation finding",
    "loss-comparison": "each loss over its own learning-rate grid on one dataset: claim C11 (calibration), the "
    "Hui & Belkin finding and Nielsen's learning-rate finding",
    "many-classes": "the same losses as the number of classes grows: claim C5 and the Hui & Belkin finding",
    "warm-start": "a cross-entropy solution continued with each loss: Golik et al.'s finding (2013), with the "
    "from-scratch grid (does MSE improve a cross-entropy solution?)",
    "from-scratch": "the warm-start grid's losses from a random start for the same total epochs: Golik et al.'s "
    "finding (does MSE get stuck from scratch?)",
    "reference-linear": "MNIST-1D logistic regression under the reference's training: the reproduction finding, "
    "against Greydanus's published 32%",
    "reference-mlp": "the MNIST-1D MLP under the reference's training: the reproduction finding, against 68%",
    "reference-cnn": "the MNIST-1D CNN under the reference's training: the reproduction finding, against 94%",
}.items():
    ROLES.register(_role, _question)
#: A count of seeds expands to range(count): bounded, so that a typo like 10**20 is an error, not a hang.
MAX_SEED_COUNT = 100_000
#: The [train] keys of a spec: ``TrainConfig``'s fields less where and how a population runs, which is chosen
#: at run time and does not change the results.
#: ``[train.plan]``: the execution plan's arithmetic (``losslab.train.plan``), fixed for every machine that runs
#: the spec; what it leaves out the driver chooses once per cell and records in the manifest.
PLAN_PARAMS = {  # a key written in a file has a value: "or None" is only for the dataclass's unset default
    k: replace(p, constraint=p.constraint.options[0]) if isinstance(p.constraint, AnyOf) else p
    for k, p in ((k, TRAIN_PARAMS[k]) for k in ARITHMETIC_FIELDS)
}
SPEC_TRAIN_PARAMS = {
    **{k: p for k, p in TRAIN_PARAMS.items() if k not in EXECUTION_FIELDS},
    "plan": Param(
        "plan",
        Table(text="a table of block_size, threads_per_block, matmul"),
        {},
        "the CPU execution plan fixed for every machine (members per block, intra-op threads per block, matmul "
        "library); left out, the driver measures and chooses one per cell and records it in the manifest",
        example={},
    ),
}
REPEATED = "is listed twice; each would train (and count) the same run twice"
POSITIVE = Interval(float, 0, closed="neither")


def name_text(what: str) -> Text:
    return Text(f"{what} of {NAME_RULE}", NAME_PATTERN)


def unset(constraint: Constraint, meaning: str, example, default_text: str = "none"):
    """A key whose absence means something (``default_text``) that no TOML value writes."""
    return setting(constraint, None, meaning, example=example, default_text=default_text)


def named(what: str, meaning: str, default_text: str, example: str):
    """A key that names something (a file is named after it): checked as an identifier."""
    return setting(name_text(what), meaning=meaning, default_text=default_text, example=example)


def repeated(values, show=repr) -> str | None:
    """'<value> is listed twice; ...' for the first value listed twice, else None."""
    seen = set()
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value
        if key in seen:
            return f"{show(value)} {REPEATED}"
        seen.add(key)
    return None


class Seeds(Constraint):
    """A count of seeds (0..n-1) or a non-empty list of distinct seeds in [0, 2**63 - 1]."""

    _count = Interval(int, 1, MAX_SEED_COUNT)
    _seed = MEMBER_PARAMS["seed"].constraint  # the seed range, declared once with Member's seed

    def problem(self, value) -> str | None:
        if is_integer(value):
            if not self._count.accepts(value):
                return (
                    f"a count of seeds must be in [1, {MAX_SEED_COUNT}], got {value}; give a list for particular seeds"
                )
            return None
        if isinstance(value, list) and value and all(is_integer(v) for v in value):
            bad = next((v for v in value if not self._seed.accepts(v)), None)
            if bad is not None:
                return f"seeds must be integers in [0, {MAX_SEED}], got {bad}"
            return repeated(value, lambda v: f"seed {v}")
        return f"must be a count (int) or a non-empty list of integer seeds, got {value!r}"

    def accepts(self, value) -> bool:
        return self.problem(value) is None

    def describe(self) -> str:
        return "a count (int) or a non-empty list of integer seeds"

    def schema(self) -> dict:
        seed = self._seed.schema()
        return {"anyOf": [self._count.schema(), {"type": "array", "items": seed, "minItems": 1, "uniqueItems": True}]}

    @staticmethod
    def expand(value) -> list[int]:
        return list(range(value)) if isinstance(value, int) else list(value)


class Numbers(Constraint):
    """A positive finite number or a non-empty list of distinct ones (learning rates, initial scales)."""

    def problem(self, value) -> str | None:
        values = value if isinstance(value, list) else [value]
        if not values or not all(POSITIVE.accepts(v) for v in values):
            return f"must be a positive finite number or a non-empty list of them, got {value!r}"
        return repeated([float(v) for v in values], lambda v: f"{v:g}")

    def accepts(self, value) -> bool:
        return self.problem(value) is None

    def describe(self) -> str:
        return "a positive finite number or a non-empty list of them"

    def schema(self) -> dict:
        one = POSITIVE.schema()
        return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "uniqueItems": True}]}

    @staticmethod
    def expand(value) -> list[float]:
        return [float(v) for v in (value if isinstance(value, list) else [value])]


class LearningRates(Numbers):
    """Numbers for every loss, or a table of them per loss name (checked against the grid's losses later)."""

    def problem(self, value) -> str | None:
        return None if isinstance(value, dict) else super().problem(value)

    def describe(self) -> str:
        return "a positive finite number, a non-empty list of them, or a table of such lists by loss"

    def schema(self) -> dict:
        numbers = super().schema()
        return {"anyOf": [*numbers["anyOf"], {"type": "object", "additionalProperties": numbers}]}


class LossList(Constraint):
    """A non-empty list of loss names or tables ``{ name = "focal", gamma = 1.0 }`` (each checked in ``spec``)."""

    def accepts(self, value) -> bool:
        return isinstance(value, list) and bool(value)

    def describe(self) -> str:
        return "a non-empty list of loss names or tables"

    def schema(self) -> dict:
        # A loss of a plugin may have any name and parameters; the built-ins' parameters are checked by name.
        table = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
        table["allOf"] = [
            {
                "if": {"properties": {"name": {"const": name}}},
                "then": {
                    "properties": {"name": {}, **{p.name: p.schema() for p in loss.params}},
                    "additionalProperties": False,
                },
            }
            for name, loss in LOSSES.items()
            if LOSSES.origin(name) == "built-in"
        ]
        return {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": "string"}, table]}}


@dataclass(frozen=True, kw_only=True)
class WarmStart:
    """``warmstart = { loss = "cross_entropy", epochs = 10, lr = 0.1 }``: every member first trains with this."""

    loss: str = setting(Text("a loss name"), "cross_entropy", "the loss of the warm-start epochs")
    epochs: int = setting(Interval(int, 1), 10, "epochs trained with it before each member's own loss takes over")
    lr: float = setting(POSITIVE, 0.1, "the learning rate of the warm-start epochs")


@dataclass(frozen=True)
class LossEntry:
    name: str
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


def default_baseline(losses: list[str]) -> str:
    """Cross-entropy where the grid trains it (binary cross-entropy for a sigmoid grid), else its first loss."""
    for name in ("cross_entropy", "binary_cross_entropy"):
        if name in losses:
            return name
    return losses[0]


@dataclass(frozen=True, kw_only=True)
class GridSpec:
    """One ``[[grid]]``: a dataset, a model and the members trained together (losses x rates x scales x seeds)."""

    label: str = named(
        "a grid label",
        "names the grid's cells (and result files) and its report section",
        "grid0, grid1, ...",
        "digits",
    )
    dataset: str = setting(
        Text("a dataset name"),
        meaning="a registered dataset (losslab list datasets) or file:path/to/data.npz (.csv, .parquet), "
        "relative to the spec's folder",
        example="digits",
    )
    dataset_options: dict = setting(
        Table(),
        {},
        "the dataset's options (docs/spec.md lists each dataset's); a list sweeps a value, one cell per combination",
        example={"seed": [0, 1]},
    )
    classes: list[int] | None = unset(
        ListOf(
            Interval(int, 0),
            min_items=2,
            unique=True,
            text="a list of at least 2 distinct class indices (>= 0)",
            must="list at least 2 distinct class indices (>= 0)",
        ),
        "keep only these classes, relabelled 0..k-1 ([0, 1]: a two-class problem)",
        [0, 1],
        "every class",
    )
    model: str | None = unset(
        Text("a model name"),
        "the model (losslab list models); the same as train.model, for this grid",
        "mlp",
        "the [train] model",
    )
    losses: list[LossEntry] = setting(
        LossList(),
        meaning="the losses compared: names, or tables of a name and parameters",
        example=["cross_entropy", "mse", {"name": "focal", "gamma": 1.0}],
    )
    lrs: list[float] | dict = setting(
        LearningRates(),
        [MEMBER_PARAMS["lr"].default],  # a member's own default, declared with Member
        "learning rates: one list for every loss, or a table of one list per loss",
        example={"cross_entropy": [0.03, 0.1, 0.3], "mse": [0.1, 0.3, 1.0]},
    )
    init_scales: list[float] = setting(
        Numbers(),
        [MEMBER_PARAMS["init_scale"].default],
        "initial logit scales: the last layer's initial weights are multiplied by each (30: a confidently wrong start)",
        example=[1.0, 30.0],
    )
    seeds: list[int] = setting(Seeds(), 3, "a count n (seeds 0..n-1) or a list of seeds", example=5)
    # Read: the spec's [train] (with the size's) and this table, checked and merged into a TrainConfig.
    train: TrainConfig | dict = setting(Table(), {}, "[train] keys for this grid only", example={})
    warmstart: WarmStart | None = unset(
        Table(),
        "first train every member with one loss (loss, epochs, lr), then continue with its own",
        {"loss": "cross_entropy", "epochs": 10, "lr": 0.1},
    )
    target_accuracy: float | None = unset(
        Interval(float, 0, 1, "right"),
        "the report counts the steps until each member first reaches this test accuracy",
        0.9,
    )
    role: str | None = unset(
        Options(ROLES),
        "which of the article's questions the grid answers (docs/spec.md, Roles); the report shows every grid, role or not",
        "loss-comparison",
    )
    baseline: str | None = unset(
        Text("a loss of the grid"),
        "the loss every other loss of the grid is compared with in the report",
        "cross_entropy",
        "cross_entropy where the grid trains it (binary_cross_entropy for one logit), else its first loss",
    )
    margin: float = setting(
        Interval(float, 1, text="an odds ratio >= 1"),
        1.25,
        "the odds ratio of being right below which a difference between two losses does not matter in the report",
        example=1.5,
        note="(1.25: a difference below 25% in the odds of being right does not matter; 1: any difference does)",
    )


@dataclass(frozen=True, kw_only=True)
class SizeSpec:
    """``[sizes.NAME]``: a named size (``--size NAME``; ``--smoke`` is ``--size smoke``) that shrinks the spec."""

    train: dict = setting(Table(), {}, "[train] keys merged into the spec's [train]", example={"epochs": 2})
    seeds: list[int] | None = unset(Seeds(), "seeds of every grid kept", 2, "each grid's")
    init_scales: list[float] | None = unset(Numbers(), "initial scales of every grid kept", [1.0], "each grid's")
    lrs: list[float] | dict | None = unset(LearningRates(), "learning rates of every grid kept", [0.1], "each grid's")
    grids: list[str] | None = unset(
        ListOf(Text("a grid label"), text="a non-empty list of grid labels"),
        "the labels of the grids to keep",
        ["digits"],
        "every grid",
    )
    dataset_options: dict = setting(
        Table(text="a table of grid labels"),
        {},
        "per grid label, dataset options merged into the grid's",
        example={"digits": {"seed": 1}},
    )


@dataclass(frozen=True, kw_only=True)
class SpecFile:
    """The top level of a spec file."""

    name: str = named("a spec name", "names the results folder (losslab-results/NAME)", "the file's name", "my-study")
    description: str = setting(Text(), "", "one line saying what the spec compares", example="CE vs MSE on digits")
    plugins: list[str] = setting(
        ListOf(Text("a module name or a .py file"), min_items=0),
        [],
        "Python modules or .py files (relative to the spec's folder) imported first, to register losses, datasets "
        "and models",
        example=["my_losses.py"],
    )
    train: dict = setting(Table(), {}, "training settings shared by every grid ([train], below)")
    grid: list[GridSpec] = setting(
        ListOf(Table(), text="an array of [[grid]] tables"),
        meaning="the grids ([[grid]], below): each one population per cell",
    )
    sizes: dict[str, SizeSpec] = setting(
        Table(Table(), text="a table of named sizes"), {}, "named sizes ([sizes.NAME], below)"
    )


TOP_PARAMS = params_of(SpecFile)
GRID_PARAMS = params_of(GridSpec)
WARMSTART_PARAMS = params_of(WarmStart)
SIZE_PARAMS = params_of(SizeSpec)
#: Size names are checked like spec names.
SIZE_NAME = Param("size", name_text("a size name"))
#: The report's default margin: the grid key's declared default.
DEFAULT_MARGIN = GRID_PARAMS["margin"].default
