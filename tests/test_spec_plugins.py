"""A spec's ``plugins`` key: imported before validation, recorded in the manifest, hashed into fingerprints,
and installable from its text alone (what a Ray worker does)."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

from losslab import plugins
from losslab.core import LOSSES
from losslab.data import DATASETS
from losslab.experiments import spec_plugins
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import SpecError, load_spec
from losslab.experiments.store import load_results
from losslab.models import MODELS

pytestmark = pytest.mark.usefixtures("clean_registries")

MINE = """
import math

import numpy as np
import torch

import losslab


def poly1(z, y, epsilon=1.0):
    \"\"\"Poly-1 (Leng et al. 2022): cross-entropy plus epsilon (1 - p_true).\"\"\"
    log_p = torch.log_softmax(z, dim=-1)  # log space: finite at logits of +-1e4
    return -(y * log_p).sum(-1) + epsilon * (1 - (y * log_p.exp()).sum(-1))


def three_blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(90) % 3
    x = rng.normal(0, 3, (3, 4))[y] + rng.normal(0, 1, (90, 4))
    return {"x_train": x[:60], "y_train": y[:60], "x_test": x[60:], "y_test": y[60:]}


class Tiny(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.hidden = torch.nn.Linear(features, 8)
        self.out = torch.nn.Linear(8, classes)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x.flatten(1))))


losslab.register_loss("poly1", values=poly1, summary="Poly-1 cross-entropy")
losslab.register_dataset("three_blobs", three_blobs, summary="three Gaussian blobs")
losslab.register_model("tiny_tanh", lambda shape, k: Tiny(math.prod(shape), k), summary="one tanh layer")
"""

SPEC = """
name = "mine"
plugins = [{plugins}]
[train]
epochs = 1
batch_size = 20
[[grid]]
label = "a"
dataset = "three_blobs"
model = "tiny_tanh"
losses = ["cross_entropy", {{ name = "poly1", epsilon = 2.0 }}]
seeds = 2
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def quiet(*_args) -> None:
    pass


@pytest.fixture
def layout(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """code/mine.py, specs/mine.toml naming it relative to its own folder, and a current folder elsewhere."""
    plugin = write(tmp_path / "code" / "mine.py", MINE)
    spec = write(tmp_path / "specs" / "mine.toml", SPEC.format(plugins='"../code/mine.py"'))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return spec, plugin


def test_a_spec_trains_a_plugin_loss_dataset_and_model_and_records_the_plugin(layout, tmp_path):
    spec_path, plugin_path = layout
    spec = load_spec(spec_path)
    assert "poly1" in LOSSES and "three_blobs" in DATASETS and "tiny_tanh" in MODELS
    [plugin] = spec.plugins
    digest = hashlib.sha256(plugin_path.read_bytes()).hexdigest()
    assert (plugin.source, plugin.kind, plugin.path, plugin.sha256) == (
        "../code/mine.py",
        "file",
        str(plugin_path.resolve()),
        digest,
    )
    assert plugins.PLUGINS[plugin.module].source == "../code/mine.py"  # listings show it as the spec names it
    run_spec(spec, tmp_path / "R", log=quiet)
    manifest, rows = load_results(tmp_path / "R")
    assert manifest["plugins"] == [
        {
            "source": "../code/mine.py",
            "kind": "file",
            "module": plugin.module,
            "path": plugin.path,
            "sha256": digest,
            "registered": {"loss": ["poly1"], "dataset": ["three_blobs"], "model": ["tiny_tanh"]},
        }
    ]
    assert set(rows["loss"]) == {"cross_entropy", "poly1"} and set(rows["model"]) == {"tiny_tanh"}
    assert manifest["replaced"] == []  # the plugin adds entries and replaces none
    assert not (plugin_path.parent / "__pycache__").exists()  # nothing written beside the plugin


def test_the_manifest_records_a_built_in_that_a_plugin_replaced(tmp_path):
    write(
        tmp_path / "louder.py",
        """
        import torch
        import losslab

        def half_squared(z, y):
            return 0.5 * (torch.softmax(z, dim=-1) - y).square().sum(-1)

        losslab.register_loss("mse", values=half_squared, replace=True)
        """,
    )
    spec = write(
        tmp_path / "r.toml",
        'plugins = ["louder.py"]\n[train]\nepochs = 1\nbatch_size = 20\n[[grid]]\ndataset = "iris"\nmodel = "linear"\nlosses = ["mse"]\n',
    )
    run_spec(load_spec(spec), tmp_path / "R", log=quiet)
    manifest, _ = load_results(tmp_path / "R")
    record = {"registry": "loss", "name": "mse", "by": "louder.py", "was": "built-in"}
    assert manifest["replaced"] == [record]
    # ... and in each cell it changes, in the shape the report reads (issue #21)
    assert [cell["replaced"] for cell in manifest["cells"]] == [[record]]
    from losslab.report.grids import replaced_losses

    assert replaced_losses({"cells": manifest["cells"]}) == {"mse": "replaced by louder.py"}


def test_a_module_plugin_is_imported_by_name(tmp_path, monkeypatch):
    write(tmp_path / "pkg" / "mylosses" / "__init__.py", MINE)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    spec = load_spec(write(tmp_path / "mine.toml", SPEC.format(plugins='"mylosses"')))
    [plugin] = spec.plugins
    assert (plugin.kind, plugin.module, plugin.text) == ("module", "mylosses", None)
    assert plugin.sha256 == hashlib.sha256((tmp_path / "pkg" / "mylosses" / "__init__.py").read_bytes()).hexdigest()
    monkeypatch.delitem(sys.modules, "mylosses")


def test_editing_a_plugin_file_retrains_its_cells_on_resume(layout, tmp_path):
    spec_path, plugin_path = layout
    first = run_spec(load_spec(spec_path), tmp_path / "R", log=quiet)
    again = run_spec(load_spec(spec_path), tmp_path / "R", log=quiet)
    assert first.trained == ["a"] and again.skipped == ["a"]
    # The same process imports the edited file again: it replaces what the old version registered.
    plugin_path.write_text(plugin_path.read_text().replace("epsilon * (1", "0.5 * epsilon * (1"))
    lines = []
    edited = run_spec(load_spec(spec_path), tmp_path / "R", log=lines.append)
    assert edited.trained == ["a"] and "a: its settings or data changed since it was trained; retraining it" in lines
    assert "0.5 * epsilon" in Path(LOSSES["poly1"].values.__code__.co_filename).read_text()


def test_a_plugin_that_fails_half_way_registers_nothing(tmp_path):
    broken = write(
        tmp_path / "half.py",
        """
        import torch
        import losslab

        losslab.register_loss("half_first", values=lambda z, y: -(y * torch.log_softmax(z, -1)).sum(-1))
        raise RuntimeError("the second half is broken")
        """,
    )
    spec = write(
        tmp_path / "half.toml", 'plugins = ["half.py"]\n[[grid]]\ndataset = "digits"\nlosses = ["half_first"]\n'
    )
    with pytest.raises(
        SpecError,
        match=r"half.toml: plugins\[0\] \('half.py'\): plugin '.*half.py' failed to import: RuntimeError: the second "
        r"half is broken \(.*half.py, line 6\); fix the plugin and retry$",
    ):
        load_spec(spec)
    assert "half_first" not in LOSSES
    broken.write_text(broken.read_text().replace('raise RuntimeError("the second half is broken")', ""))
    assert load_spec(spec).cells()[0].members[0].loss == "half_first"  # fixed: no "already registered"


def test_installing_from_the_text_alone_registers_the_driver_version(layout):
    """What a Ray worker does: the file is gone, the text travels with the cell."""
    spec_path, plugin_path = layout
    spec = load_spec(spec_path)
    [plugin] = spec.plugins
    plugin_path.unlink()
    spec_plugins.forget(plugin.module)  # as a fresh worker: none of it imported
    del sys.modules[plugin.module], plugins.PLUGINS[plugin.module]
    assert "poly1" not in LOSSES and "tiny_tanh" not in MODELS
    spec_plugins.install(spec.plugins)
    assert "poly1" in LOSSES and "three_blobs" in DATASETS and "tiny_tanh" in MODELS
    assert sys.modules[plugin.module].__file__ == plugin.path and LOSSES["poly1"].module == plugin.module
    installed = LOSSES["poly1"]
    spec_plugins.install(spec.plugins)  # the next cell on the same worker: not executed again
    assert LOSSES["poly1"] is installed
    spec_plugins.install(())  # a run without it: taken back
    assert "poly1" not in LOSSES and plugin.module not in sys.modules


def test_install_refuses_a_text_that_is_not_the_recorded_one(layout):
    spec_path, _ = layout
    [plugin] = load_spec(spec_path).plugins
    spec_plugins.forget(plugin.module)
    del sys.modules[plugin.module], plugins.PLUGINS[plugin.module]
    tampered = spec_plugins.SpecPlugin(
        plugin.source, plugin.kind, plugin.module, plugin.path, plugin.sha256, plugin.text + b"\n# changed\n"
    )
    with pytest.raises(ValueError, match=r"plugin '../code/mine.py': the text received from the driver does not"):
        spec_plugins.install([tampered])
    assert "poly1" not in LOSSES


def test_install_refuses_another_version_of_a_module_plugin(tmp_path, monkeypatch):
    write(tmp_path / "pkg" / "otherlosses.py", "X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    driver = spec_plugins.SpecPlugin("otherlosses", "module", "otherlosses", "/driver/otherlosses.py", "0" * 64)
    with pytest.raises(
        ValueError,
        match=r"plugin module 'otherlosses' on this worker \(.*otherlosses.py, SHA-256 \w{12}\) is not the driver's "
        r"\(/driver/otherlosses.py, SHA-256 000000000000\); install the same version on every node",
    ):
        spec_plugins.install([driver])
    monkeypatch.delitem(sys.modules, "otherlosses")


def test_a_spec_without_plugins_keeps_its_fingerprints(tmp_path):
    text = '[[grid]]\ndataset = "digits"\nlosses = ["mse"]\n'
    plain = load_spec(write(tmp_path / "a" / "s.toml", text)).cells()[0]
    write(tmp_path / "b" / "empty.py", "")
    with_plugin = load_spec(write(tmp_path / "b" / "s.toml", 'plugins = ["empty.py"]\n' + text)).cells()[0]
    assert plain.plugins == () and with_plugin.plugins[0].source == "empty.py"
    assert plain.fingerprint() != with_plugin.fingerprint()
    # The fingerprint of a spec without plugins is what it was before plugins existed.
    assert plain.fingerprint() == load_spec(write(tmp_path / "c" / "s.toml", text)).cells()[0].fingerprint()


def test_errors_name_the_plugin_even_for_a_function_defined_elsewhere(tmp_path):
    """A plugin may register a function it did not define (here a functools.partial): the spec still knows
    which plugin registered the name, and says so."""
    write(
        tmp_path / "wrapped.py",
        """
        import functools

        import torch

        import losslab


        def scaled_log(z, y, scale):
            return scale * (y * torch.log(torch.softmax(z, -1) - 1)).sum(-1)  # log of a negative number: NaN


        losslab.register_loss("wrapped_nan", values=functools.partial(scaled_log, scale=2.0), defaults={})
        """,
    )
    spec = load_spec(
        write(tmp_path / "s.toml", 'plugins = ["wrapped.py"]\n[[grid]]\ndataset = "digits"\nlosses = ["wrapped_nan"]\n')
    )
    assert LOSSES["wrapped_nan"].module != spec.plugins[0].module
    with pytest.raises(SpecError, match=r"s.toml: cell 'grid0': plugin 'wrapped.py': loss 'wrapped_nan': values"):
        run_spec(spec, tmp_path / "R", log=quiet)
    assert not (tmp_path / "R").exists()
