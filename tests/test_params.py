"""Parameters declared once (losslab.params): constraints, messages, defaults, and every declaration in use."""

import dataclasses
import math
import tomllib

import pytest

from losslab.core import LOSSES
from losslab.data import DATASETS
from losslab.data.dataset import COMMON_PARAMS
from losslab.data.files import TABLE_PARAMS
from losslab.experiments.spec_keys import GRID_PARAMS, SIZE_PARAMS, TOP_PARAMS, WARMSTART_PARAMS
from losslab.params import (
    NONE,
    REQUIRED,
    AnyOf,
    Boolean,
    Interval,
    ListOf,
    Options,
    Param,
    Table,
    Text,
    check_values,
    optional,
    params_of,
    setting,
    toml_value,
)
from losslab.train.config import MEMBER_PARAMS, TRAIN_PARAMS, Member, TrainConfig


@pytest.mark.parametrize(
    "constraint, good, bad, text",
    [
        (Interval(int, 1), [1, 2, 10**30], [0, -1, 1.0, True, "1", None], "a positive integer"),
        (Interval(int, 0, 9), [0, 9], [-1, 10, False], "an integer in [0, 9]"),
        (
            Interval(float, 0, closed="neither"),
            [1e-300, 2, 3.5],
            [0, -1, math.inf, math.nan, True],
            "a positive finite number",
        ),
        (Interval(float, 0), [0, 0.0, 7], [-1e-9, math.inf, False], "a finite number >= 0"),
        (Interval(float, 0, 1, "left"), [0, 0.5], [1, 1.0, -0.1, math.nan], "a number in [0, 1)"),
        (Interval(float, 0, 1, "right"), [1, 0.25], [0, 1.01], "a number in (0, 1]"),
        (Options(("sgd", "adam")), ["sgd", "adam"], ["SGD", 1, None], "one of ['sgd', 'adam']"),
        (Text("a name", r"[a-z]+"), ["abc"], ["ab1", 3, ""], "a name"),
        (Boolean(), [True, False], [0, 1, "true"], "true or false"),
        (ListOf(Interval(int, 1)), [[1], [1, 2]], [[], [0], 1, [True]], "a non-empty list of positive integers"),
        (
            ListOf(Interval(float, 0, 1, "left"), length=2),
            [[0.9, 0.99], (0, 0.5)],
            [[0.9], [1, 0]],
            "two numbers in [0, 1)",
        ),
        (optional(Interval(int, 1)), [None, 3], [0, "x"], "a positive integer or None"),
        (Table(), [{}, {"a": 1}], [[], 1], "a table"),
    ],
)
def test_constraints_accept_refuse_and_describe_themselves(constraint, good, bad, text):
    assert all(constraint.accepts(v) for v in good), good
    assert not any(constraint.accepts(v) for v in bad), bad
    assert constraint.describe() == text


def test_a_param_says_what_is_wrong_in_the_api_form_and_the_spec_form():
    p = Param("gamma", Interval(float, 0), 2.0, "focusing exponent", note="(0 gives cross-entropy)")
    assert p.check(0.5) == 0.5
    with pytest.raises(ValueError, match=r"^gamma must be a finite number >= 0 \(0 gives cross-entropy\), got -1$"):
        p.check(-1)
    with pytest.raises(ValueError, match=r"^grid\[0\]\.losses\[1\]: must be a finite number >= 0 .*got True$"):
        p.check(True, "grid[0].losses[1]")
    fixed = Param("validation", Interval(float, 0, 0.5, "left"), 0.1, fix="0 means none")
    assert fixed.problem(0.7) == "must be a number in [0, 0.5), got 0.7; 0 means none"
    with pytest.raises(ValueError, match=r"^b must be true or false, got 'yes'$"):
        check_values({"b": Param("b", Boolean())}, {"a": 1, "b": "yes"})  # keys without a declaration pass


def test_setting_declares_a_dataclass_field_and_params_of_reads_it_back():
    @dataclasses.dataclass(frozen=True)
    class Thing:
        size: int = setting(Interval(int, 1), 3, "how many")
        widths: list = setting(ListOf(Interval(int, 1)), [4, 4], "widths")
        plain: str = "x"

    params = params_of(Thing)
    assert list(params) == ["size", "widths"] and params["size"].name == "size"
    assert Thing().size == 3 and Thing().widths == [4, 4] and Thing().widths is not Thing().widths
    assert params["widths"].meaning == "widths" and params["size"].default == 3


def declared():
    """Every declaration in losslab, named by where it is declared."""
    groups = {
        "train": TRAIN_PARAMS,
        "member": MEMBER_PARAMS,
        "top": TOP_PARAMS,
        "grid": GRID_PARAMS,
        "warmstart": WARMSTART_PARAMS,
        "size": SIZE_PARAMS,
        "dataset-common": COMMON_PARAMS,
        "file": {p.name: p for p in TABLE_PARAMS},
    }
    for name in LOSSES:
        groups[f"loss {name}"] = {p.name: p for p in LOSSES[name].params}
    for name in DATASETS:
        groups[f"dataset {name}"] = {p.name: p for p in DATASETS[name].params}
    return [(f"{group}.{key}", p) for group, params in groups.items() for key, p in params.items()]


@pytest.mark.parametrize("where, param", declared(), ids=[w for w, _ in declared()])
def test_every_declaration_has_a_meaning_and_a_default_its_constraint_accepts(where, param):
    assert param.meaning, f"{where} has no meaning"
    if param.default is not REQUIRED and param.default is not None and param.default_text is None:
        assert param.constraint.accepts(param.default), f"{where}: default {param.default!r} refused"
    example = param.show_example()
    if example is not REQUIRED and example is not None and not isinstance(param.constraint, Table):
        assert param.constraint.accepts(example) or where.startswith("dataset blobs"), f"{where}: example {example!r}"


def test_train_config_and_member_are_declared_field_by_field():
    assert list(TRAIN_PARAMS) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert list(MEMBER_PARAMS) == ["seed", "lr", "init_scale"]
    defaults = TrainConfig()
    for name, p in TRAIN_PARAMS.items():  # the dataclass default is the declaration's: one place
        assert getattr(defaults, name) == p.default
    with pytest.raises(ValueError, match=r"^member 0: seed must be an integer in \[0, 9223372036854775807\]"):
        from losslab.train.population import _check_members

        _check_members([Member("mse", seed=-1)], binary=False)
    with pytest.raises(ValueError, match=r"^momentum must be a number in \[0, 1\), got 1$"):
        TrainConfig(momentum=1).validate()


def test_toml_values_read_back_as_written():
    for value in (0.1, 1e-8, 3, "mlp", [100, 100], {"k": 1.0, "M": 15.0}, ["a", {"name": "focal"}], True, []):
        assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
    assert AnyOf(Interval(int, 1), NONE).schema() == {"type": "integer", "minimum": 1}  # TOML writes no None
