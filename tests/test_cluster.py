"""Cells run as Ray tasks give the results of a local run; failures and a missing Ray are clear errors."""

import os
import shutil
import sys
import time
from pathlib import Path

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


def test_a_cell_lost_beyond_rays_retries_is_one_line_that_says_to_resume(tmp_path, ray_instance):
    """A worker that dies every time (as on a node that keeps failing) is retried 3 times, then one line."""
    spec = load_spec(write_spec(tmp_path, GOOD))
    cell = spec.cells()[0]
    die = lambda cell, dataset: os._exit(1)  # noqa: E731 - a local function travels by value to the worker
    with pytest.raises(
        ValueError,
        match=rf"cell {cell.id} was lost on Ray \(WorkerCrashedError: .+\) after 3 retries; the cells finished so far "
        r"are saved: rerun the same command to resume",
    ):
        list(RayCluster().run([(cell, None)], die))


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


def test_a_plugin_that_imports_modules_beside_it_gives_the_same_rows_on_ray(tmp_path, ray_instance, clean_registries):
    """The plugin's helper modules travel with it: the workers import them from the driver's text (issue #21)."""
    code = tmp_path / "code"
    (code / "shapes").mkdir(parents=True)
    (code / "helpers.py").write_text("EPSILON = -0.5\n")
    (code / "shapes" / "__init__.py").write_text("")
    (code / "shapes" / "poly.py").write_text(
        "import torch\n\n\ndef poly1(z, y, epsilon):\n    log_p = torch.log_softmax(z, dim=-1)\n"
        "    return -(y * log_p).sum(-1) + epsilon * (1 - (y * log_p.exp()).sum(-1))\n"
    )
    (code / "mine.py").write_text(
        "import losslab\nfrom helpers import EPSILON\nfrom shapes.poly import poly1\n\n\n"
        "def poly_half(z, y):\n    return poly1(z, y, epsilon=EPSILON)\n\n\n"
        'losslab.register_loss("poly_half", values=poly_half)\n'
    )
    text = PLUGIN_SPEC.format(plugin="code/mine.py")
    text = text[: text.index("losses = ")] + 'losses = ["cross_entropy", "poly_half"]\nseeds = 2\n'
    spec = load_spec(write_spec(tmp_path, text))
    run_spec(spec, tmp_path / "local", log=lambda *_: None)
    shutil.rmtree(code)  # the workers get the plugin and its helpers as text from the driver
    for name in ("helpers", "shapes", "shapes.poly"):
        sys.modules.pop(name, None)
    run_spec(spec, tmp_path / "ray", log=lambda *_: None, cluster=RayCluster())
    local_manifest, local = load_results(tmp_path / "local")
    manifest, remote = load_results(tmp_path / "ray")
    pd.testing.assert_frame_equal(comparable(local), comparable(remote))
    assert set(remote["loss"]) == {"cross_entropy", "poly_half"}
    assert [h["module"] for h in manifest["plugins"][0]["helpers"]] == ["helpers", "shapes", "shapes.poly"]


def test_a_cell_no_node_can_hold_fails_at_once(tmp_path, ray_instance):
    spec = load_spec(write_spec(tmp_path, GOOD))
    started = time.monotonic()
    with pytest.raises(
        ValueError,
        match=r"--cpus-per-cell 1000: no node of the Ray cluster \(1 node\(s\)\) has "
        r"that many CPUs; the largest, [\d.]+, has 2; give --cpus-per-cell 2 or less",
    ):
        run_spec(spec, tmp_path / "out", log=lambda *_: None, cluster=RayCluster(cpus_per_cell=1000))
    assert time.monotonic() - started < 60 and not (tmp_path / "out").exists()


def test_done_when_the_own_loss_example_goes_through_every_command_here_and_on_ray(
    tmp_path, monkeypatch, capsys, request, clean_registries
):
    """Issue #12's "done when", and examples/own_loss/run.py at smoke size: from a fresh folder, a loss in its own
    .py file goes through check-loss, plot --loss, a spec run and the report (each must exit 0, or the script
    exits), then the same spec runs on Ray with the same rows; nothing is written into the repository."""
    import runpy

    from losslab.cli import main

    example = Path(__file__).resolve().parents[1] / "examples" / "own_loss"
    before = {p: p.read_bytes() for p in example.parent.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSLAB_SMOKE", "1")
    monkeypatch.setattr(sys, "argv", ["run.py"])
    runpy.run_path(str(example / "run.py"), run_name="__main__")
    out = capsys.readouterr().out
    for command in ("check-loss", "plot --loss", "run", "report"):
        assert f"$ losslab {command} " in out
    assert "exit code 0: all checks pass" in out and "--smoke" in out
    written = tmp_path / "own-loss-output"
    assert len(list((written / "figures").glob("*.png"))) == 3
    assert "<td>poly1</td>" in (written / "report" / "index.html").read_text()
    summary = out.split("digits, each loss at the learning rate", 1)[1]
    assert all(name in summary for name in ("cross_entropy", "mse", "poly1 (epsilon=-1)", "wrong one (30)"))

    request.getfixturevalue("ray_instance")  # skips here, after the local part, where Ray cannot start
    spec = os.path.relpath(example / "compare.toml")
    assert main(["run", spec, "--smoke", "--ray", "--out", "on-ray"]) == 0
    here, on_ray = load_results(written / "results")[1], load_results("on-ray")[1]
    pd.testing.assert_frame_equal(comparable(here), comparable(on_ray))
    assert {p: p.read_bytes() for p in example.parent.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------------------------------------
# plans that never change the numbers: the driver fixes each cell's plan, every worker uses it

DIGITS_PLUGIN_SPEC = """
name = "where"
plugins = ["{plugin}"]
[train]
epochs = 2
batch_size = 32
eval_every_steps = 20
model = "mlp"
hidden = [32]
[[grid]]
label = "digits"
role = "loss-comparison"
dataset = "digits"
losses = ["cross_entropy", "mse", "poly1"]
lrs = {{ cross_entropy = [0.03, 0.1, 0.3], mse = [0.1, 0.3, 1.0], poly1 = [0.03, 0.1, 0.3] }}
seeds = 2
[sizes.smoke]
seeds = 1
"""


def assert_bit_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every value equal to the last bit (NaN where NaN), list columns included; assert_frame_equal compares
    floats to a relative tolerance by default."""
    import numpy as np

    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        for x, y in zip(a[column], b[column]):
            if isinstance(x, (list, np.ndarray)) or isinstance(y, (list, np.ndarray)):
                x, y = np.asarray(x), np.asarray(y)
                same = x.shape == y.shape and (
                    np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
                )
            elif isinstance(x, float) and isinstance(y, float):
                same = np.float64(x).tobytes() == np.float64(y).tobytes() or (x != x and y != y)
            else:
                same = x == y or (x is None and y is None)
            assert same, f"column {column!r}: {x!r} != {y!r}"


def test_one_cell_gives_bit_identical_rows_locally_and_on_one_cpu_ray_tasks(tmp_path, ray_instance, clean_registries):
    """Issue #20: a digits MLP cell with a plug-in loss once differed by 38 points of test accuracy between a
    local run and --ray, because the 1-CPU worker chose its own block size and matmul library. The driver now
    fixes the plan (blocks sized for this machine's cores, here two blocks of 9) before either runs; the Ray
    worker, with one CPU, runs both blocks on its one thread and computes the same bits."""
    plugin = tmp_path / "my_losses.py"
    plugin.write_text(POLY_LOSS)
    spec = load_spec(write_spec(tmp_path, DIGITS_PLUGIN_SPEC.format(plugin="my_losses.py")))
    run_spec(spec, tmp_path / "local", log=lambda *_: None)
    run_spec(spec, tmp_path / "ray", log=lambda *_: None, cluster=RayCluster(cpus_per_cell=1))
    local_manifest, local = load_results(tmp_path / "local")
    manifest, remote = load_results(tmp_path / "ray")
    assert_bit_identical(comparable(local), comparable(remote))
    (entry,) = manifest["cells"]
    (local_entry,) = local_manifest["cells"]
    plan = entry["plan"]["main"]
    assert plan == local_entry["plan"]["main"] and set(plan) == {"block_size", "threads_per_block", "matmul", "source"}
    ran = entry["config"]["execution"]["main"]["plan"]
    assert (ran["block_size"], ran["threads_per_block"], ran["matmul"]) == (
        plan["block_size"],
        plan["threads_per_block"],
        plan["matmul"],
    )
    assert manifest["execution"]["executor"] == "ray" and ran["workers"] == 1  # the worker's one CPU
