"""losslab.registry: one Registry[T] behind losses, datasets, models and figures."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from losslab import plugins, registry
from losslab.core import LOSSES, get_loss
from losslab.data import DATASETS
from losslab.experiments import spec_plugins
from losslab.models import MODELS, get_model
from losslab.registry import Registry
from losslab.report.figures import FIGURES, get_figure


@dataclass(frozen=True)
class Entry:
    summary: str


def test_any_value_type_with_names_origins_and_iteration():
    things: Registry[object] = Registry("thing", "things")

    def shout(text):
        return text.upper()

    things.register("fn", shout)
    things.register("entry", Entry("a dataclass"))
    assert things.get("fn") is shout and things["entry"] == Entry("a dataclass")
    assert list(things) == things.names() == ["fn", "entry"] and len(things) == 2
    assert "fn" in things and "nope" not in things and ["fn"] not in things
    assert things.items() == [("fn", shout), ("entry", Entry("a dataclass"))]
    assert things.origin("fn") == "test_registry"  # the module whose code registered it
    assert things.replacements() == []


def test_names_are_checked_and_a_second_registration_needs_replace():
    things: Registry[int] = Registry("thing", "things")
    with pytest.raises(ValueError, match=r"^thing name '\.\./x' is not valid; use letters, digits"):
        things.register("../x", 1)
    things.register("one", 1, module="losslab.somewhere")
    with pytest.raises(
        ValueError,
        match=r"^thing 'one' is already registered \(built-in\); choose another name, or pass replace=True to replace "
        r"it$",
    ):
        things.register("one", 2)
    with pytest.raises(ValueError, match=r"replace must be True or False, got 'yes'"):
        things.register("one", 2, replace="yes")
    assert things.register("one", 2, replace=True) == 2 and things.get("one") == 2


def test_an_unknown_name_lists_the_valid_ones_and_the_plugin_route():
    with pytest.raises(ValueError) as info:
        get_loss("tempered")
    valid = ", ".join(sorted(LOSSES))
    assert str(info.value) == (
        f"unknown loss 'tempered'; valid losses: {valid}; a loss of your own: pass --plugin FILE.py "
        '(or plugins = ["FILE.py"] in a spec)'
    )
    with pytest.raises(ValueError, match=r"^unknown model 'resnet'; valid models: linear, mlp, cnn, cnn1d, resmlp; a "):
        get_model("resnet")
    with pytest.raises(
        ValueError, match=r"valid datasets: digits, .*, or file:path/to/data.npz \(.csv, .parquet\); a "
    ):
        DATASETS.get("cifar")
    with pytest.raises(ValueError, match=r"^unknown figure 'nosuch'; valid figures: sigmoid, [a-z, -]+$"):
        get_figure("nosuch")  # figures are losslab's own: no plugin route
    with pytest.raises(ValueError, match=r"^unknown loss \['mse'\]; valid losses"):
        get_loss(["mse"])  # not a name at all


def test_a_replacement_is_recorded_and_forgetting_the_plugin_puts_the_original_back(tmp_path, clean_registries):
    original = LOSSES["cross_entropy"]
    path = tmp_path / "my_losses.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            import losslab

            def louder_ce(z, y):
                return -(y * torch.log_softmax(z, dim=-1)).sum(dim=-1)

            losslab.register_loss("cross_entropy", values=louder_ce, replace=True)
            losslab.register_loss("louder", values=louder_ce)
            """
        ),
        encoding="utf-8",
    )
    plugin = plugins.import_plugin(str(path))
    assert LOSSES["cross_entropy"] is not original and LOSSES.origin("cross_entropy") == str(path)
    assert [r.describe() for r in LOSSES.replacements()] == [f"cross_entropy: replaced by plugin {path} (was built-in)"]
    assert LOSSES.registered_by(plugin.module) == ["cross_entropy", "louder"]
    assert spec_plugins.registered_by("loss", "louder") == str(path)
    assert spec_plugins.registered_by("loss", "mse") is None
    spec_plugins.forget(plugin.module)
    assert LOSSES["cross_entropy"] is original and "louder" not in LOSSES and LOSSES.replacements() == []


def test_forgetting_one_of_two_replacements_keeps_the_other():
    things: Registry[str] = Registry("thing", "things")
    things.register("x", "built", module="losslab.here")
    things.register("x", "first", replace=True, module="plugin_a")
    things.register("x", "second", replace=True, module="plugin_b")
    things.forget("plugin_a")
    assert things.get("x") == "second" and things.record("x").replaced.value == "built"
    things.forget("plugin_b")
    assert things.get("x") == "built" and things.record("x").replaced is None


def test_snapshot_and_restore_every_registry():
    saved = registry.snapshot_all()
    assert {LOSSES, DATASETS, MODELS, FIGURES} <= set(saved)
    try:
        MODELS.register("linear", MODELS["mlp"], replace=True)
        FIGURES.register("extra", FIGURES["sigmoid"])
    finally:
        registry.restore_all(saved)
    assert MODELS["linear"] is not MODELS["mlp"] and "extra" not in FIGURES
    assert MODELS.replacements() == []
