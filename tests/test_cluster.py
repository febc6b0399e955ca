"""Cells run as Ray tasks give the results of a local run; failures and a missing Ray are clear errors."""

import sys

import pandas as pd
import pytest
from test_experiments import GOOD, write_spec

from losslab.experiments.cluster import RayCluster
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.experiments.store import load_results


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # a sandbox that cannot start Ray's processes, not a losslab failure
        pytest.skip(f"cannot start a local Ray instance here: {exc}")
    yield ray
    ray.shutdown()


def comparable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns="seconds").sort_values(["cell", "member", "step"]).reset_index(drop=True)


def test_a_ray_run_writes_the_results_of_a_local_run_and_resumes(tmp_path, ray_instance):
    spec = load_spec(write_spec(tmp_path, GOOD))
    run_spec(spec, tmp_path / "local", log=lambda *_: None)
    lines = []
    summary = run_spec(spec, tmp_path / "ray", log=lines.append, cluster=RayCluster(cpus_per_cell=1))
    assert (
        sorted(summary.trained) == ["a", "b-num_classes3", "b-num_classes4"]
        and len([l for l in lines if l.startswith("[")]) == 3
        and lines[0].startswith("device: ")
    )
    local_manifest, local = load_results(tmp_path / "local")
    manifest, remote = load_results(tmp_path / "ray")
    # Ray workers train with one thread where the local run used all: the populations are
    # bit-identical anyway, so the rows are equal to the last digit.
    pd.testing.assert_frame_equal(comparable(local), comparable(remote))
    assert local_manifest["execution"] == {"executor": "local"}
    assert manifest["execution"]["executor"] == "ray" and manifest["execution"]["cluster_cpus"] == 2
    again = run_spec(spec, tmp_path / "ray", log=lambda *_: None, cluster=RayCluster())
    assert again.trained == [] and len(again.skipped) == 3


def test_a_failing_cell_on_ray_names_the_cell(tmp_path, ray_instance):
    spec = load_spec(write_spec(tmp_path, GOOD))
    cell = spec.cells()[0]
    # len(cell, dataset) raises TypeError on the worker, standing in for any failure in training.
    with pytest.raises(RuntimeError, match=f"cell {cell.id} failed on Ray: TypeError"):
        list(RayCluster().run([(cell, None)], len))


def test_without_ray_installed_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    spec = load_spec(write_spec(tmp_path, GOOD))
    with pytest.raises(ValueError, match=r"needs the ray package: pip install 'losslab\[ray\]'"):
        run_spec(spec, tmp_path / "out", log=lambda *_: None, cluster=RayCluster())


def test_ray_options_are_checked(capsys):
    from losslab.cli import main

    with pytest.raises(ValueError, match="cpus_per_cell must be a positive number, got 0"):
        RayCluster(cpus_per_cell=0)
    assert main(["run", "saturation", "--smoke", "--cpus-per-cell", "2"]) == 2
    assert "--cpus-per-cell applies to Ray runs only; add --ray" in capsys.readouterr().err


def test_the_ray_extra_brings_the_client_that_ray_addresses_need():
    """``ray://host:port`` needs Ray's client (grpcio): the documented ``pip install 'losslab[ray]'`` installs it."""
    from importlib.metadata import requires

    extra = [r for r in requires("losslab") if 'extra == "ray"' in r]
    assert extra and all(r.startswith("ray[client]") for r in extra)
    pytest.importorskip("ray")
    import grpc  # noqa: F401  (the dev extra installs ray[client] too)


# ---------------------------------------------------------------------------------------------
# plugins: a loss in its own .py file, named by a spec, on Ray workers

POLY_LOSS = '''
import torch

import losslab


def poly1(z, y, epsilon=1.0):
    """Poly-1 (Leng et al. 2022): cross-entropy plus epsilon (1 - p_true)."""
    log_p = torch.log_softmax(z, dim=-1)  # log space: finite at logits of +-1e4
    return -(y * log_p).sum(-1) + epsilon * (1 - (y * log_p.exp()).sum(-1))


losslab.register_loss("poly1", values=poly1, summary="Poly-1: cross-entropy + epsilon (1 - p_true)")
'''

PLUGIN_SPEC = """
name = "plug"
plugins = ["{plugin}"]
[train]
epochs = 1
batch_size = 20
eval_every_steps = 5
model = "linear"
[[grid]]
label = "a"
role = "loss-comparison"
dataset = "blobs"
dataset_options = {{ num_classes = 3, train_per_class = 20, test_per_class = 10 }}
losses = ["cross_entropy", "mse", "poly1", {{ name = "poly1", epsilon = -0.5 }}]
seeds = 2
[sizes.smoke]
seeds = 1
"""


def test_a_spec_naming_a_plugin_loss_gives_the_same_rows_on_ray(tmp_path, ray_instance, clean_registries):
    plugin = tmp_path / "code" / "my_losses.py"
    plugin.parent.mkdir()
    plugin.write_text(POLY_LOSS)
    spec = load_spec(write_spec(tmp_path, PLUGIN_SPEC.format(plugin="code/my_losses.py")))
    run_spec(spec, tmp_path / "local", log=lambda *_: None)
    # The workers get the plugin's text with each cell: they need neither the file nor a shared filesystem.
    plugin.unlink()
    run_spec(spec, tmp_path / "ray", log=lambda *_: None, cluster=RayCluster())
    local_manifest, local = load_results(tmp_path / "local")
    manifest, remote = load_results(tmp_path / "ray")
    pd.testing.assert_frame_equal(comparable(local), comparable(remote))
    assert set(remote["loss"]) == {"cross_entropy", "mse", "poly1"} and manifest["execution"]["executor"] == "ray"
    assert manifest["plugins"] == local_manifest["plugins"] and manifest["plugins"][0]["source"] == "code/my_losses.py"


def test_done_when_a_loss_in_its_own_file_goes_through_every_command(
    tmp_path, monkeypatch, capsys, ray_instance, clean_registries
):
    """Issue #12: from a fresh folder, a loss in a separate .py file goes through check-loss, plot, a spec run
    (here and on Ray) and the report, each exiting 0, and the report shows the loss."""
    from losslab.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_losses.py").write_text(POLY_LOSS)
    (tmp_path / "compare.toml").write_text(PLUGIN_SPEC.format(plugin="my_losses.py"))
    assert main(["check-loss", "my_losses.py:poly1"]) == 0
    assert "check-loss poly1" in capsys.readouterr().out
    assert main(["plot", "--loss", "my_losses.py:poly1", "--out", "figures"]) == 0
    assert len(list((tmp_path / "figures").glob("*.png"))) == 3
    assert main(["run", "compare.toml", "--smoke", "--out", "here"]) == 0
    assert main(["run", "compare.toml", "--smoke", "--out", "on-ray", "--ray"]) == 0
    pd.testing.assert_frame_equal(comparable(load_results("here")[1]), comparable(load_results("on-ray")[1]))
    assert main(["report", "here", "--out", "report"]) == 0
    assert "<td>poly1</td>" in (tmp_path / "report" / "index.html").read_text()
    assert capsys.readouterr().err == ""
