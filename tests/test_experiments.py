"""Specs fail before training; runs are resumable and atomic; warm starts continue the right solution."""

import json
import textwrap

import pytest
import torch

from losslab.experiments import runner
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import SpecError, builtin_specs, load_spec
from losslab.experiments.store import load_results

GOOD = """
name = "tiny"
[train]
epochs = 1
eval_every_steps = 5
batch_size = 20
[[grid]]
label = "a"
dataset = "digits"
classes = [0, 1]
model = "linear"
losses = ["mse", "binary_cross_entropy"]
lrs = { mse = [1.0], binary_cross_entropy = [0.1] }
init_scales = [1, 30]
seeds = 2
[[grid]]
label = "b"
dataset = "blobs"
dataset_options = { num_classes = [3, 4], train_per_class = 20, test_per_class = 10 }
model = "linear"
losses = ["cross_entropy", { name = "square_logits", k = 2.0, M = 3.0 }]
seeds = [7]
[sizes.smoke]
seeds = 1
"""


def write_spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_builtin_specs_expand_at_every_size():
    assert set(builtin_specs()) >= {"saturation", "comparison", "classes", "warmstart"}
    for name in ("saturation", "comparison", "classes", "warmstart"):
        spec = load_spec(name)
        assert "smoke" in spec.sizes
        for size in (None, *spec.sizes):
            assert spec.cells(size)


def test_builtin_specs_carry_their_launch_command():
    for name, path in builtin_specs().items():
        assert f"losslab run {name}" in path.read_text()


def test_spec_expansion(tmp_path):
    spec = load_spec(write_spec(tmp_path, GOOD))
    cells = spec.cells()
    assert [c.id for c in cells] == ["a", "b-num_classes3", "b-num_classes4"]
    assert len(cells[0].members) == 2 * 2 * 2  # losses x scales x seeds
    assert {m.loss_params.get("k") for m in cells[1].members} == {None, 2.0}
    assert [len(c.members) for c in spec.cells("smoke")] == [4, 2, 2]
    assert cells[0].fingerprint() != spec.cells("smoke")[0].fingerprint()


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ("epochs = 1", "epochs = 1\nepoch = 3"),
            r"spec.toml: train: unknown key\(s\) \['epoch'\]; valid keys: adam_eps",
        ),
        (('label = "a"', 'label = "a"\nlosess = ["mse"]'), r"grid\[0\]: unknown key\(s\) \['losess'\]; valid keys:"),
        (('"mse", "binary', '"hinge", "binary'), r"grid\[0\].losses\[0\]: unknown loss 'hinge'; valid losses:"),
        (('dataset = "digits"', 'dataset = "cifar"'), r"grid\[0\].dataset: unknown dataset 'cifar'; valid datasets:"),
        (
            ('model = "linear"\nlosses = ["mse"', 'model = "resnet"\nlosses = ["mse"'),
            r"unknown model 'resnet'; valid models",
        ),
        (
            ("init_scales = [1, 30]", "init_scales = [1, -30]"),
            r"grid\[0\].init_scales: must be a positive finite number",
        ),
        (("seeds = 2", 'seeds = "two"'), r"grid\[0\].seeds: must be a count \(int\) or a non-empty list"),
        (
            ("lrs = { mse = [1.0], binary_cross_entropy = [0.1] }", "lrs = { mse = [1.0] }"),
            r"grid\[0\].lrs: no learning rates for \['binary_cross_entropy'\]",
        ),
        (
            ("num_classes = [3, 4]", "classes_count = [3, 4]"),
            r"grid\[1\].dataset_options: unknown key\(s\) \['classes_count'\]; valid keys: cluster_std",
        ),
        (("k = 2.0", "k = -2.0"), r"grid\[1\].losses\[1\]: k must be a positive finite number"),
        (("epochs = 1", "epochs = 0"), r"train.epochs: must be a positive integer, got 0"),
        (
            ("batch_size = 20", "batch_size = 20\nplan = { blocks = 4 }"),
            r"train.plan: unknown key\(s\) \['blocks'\]; valid keys: block_size, matmul, threads_per_block",
        ),
        (
            ("batch_size = 20", "batch_size = 20\nplan = { block_size = 0 }"),
            r"train.plan.block_size: must be a positive integer, got 0",
        ),
        (
            ("batch_size = 20", 'batch_size = 20\nplan = { matmul = "mkl" }'),
            r"train.plan.matmul: must be one of \['auto', 'torch', 'numpy', 'vmap', 'loop'\], got 'mkl'",
        ),
        (("batch_size = 20", "batch_size = 20\nworkers = 2"), r"train: unknown key\(s\) \['workers'\]"),
        (
            ("batch_size = 20", 'batch_size = 20\nplan = { matmul = "vmap" }'),
            r"cell 'a': matmul 'vmap' does not apply to model 'linear'; use one of \['auto', 'torch', 'numpy'\]",
        ),
        (("[sizes.smoke]", "[sizes.smoke]\nfast = true"), r"sizes.smoke: unknown key\(s\) \['fast'\]"),
        (('name = "tiny"', 'name = "tiny"\ncolour = "blue"'), r"top level: unknown key\(s\) \['colour'\]"),
    ],
)
def test_bad_specs_fail_before_any_training(tmp_path, monkeypatch, change, message):
    def no_training(*args, **kwargs):
        raise AssertionError("training started for a bad spec")

    monkeypatch.setattr(runner, "train_population", no_training)
    old, new = change
    assert old in GOOD
    path = write_spec(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SpecError, match=message):
        run_spec(load_spec(path), tmp_path / "out")


def test_unknown_spec_and_size(tmp_path):
    with pytest.raises(
        SpecError, match=r"no spec file 'nope' and no built-in spec of that name; built-in specs: classes"
    ):
        load_spec("nope")
    spec = load_spec(write_spec(tmp_path, GOOD))
    with pytest.raises(SpecError, match=r"sizes: no size 'huge'; this spec defines: smoke"):
        spec.cells("huge")
    with pytest.raises(SpecError, match=r"not valid TOML"):
        load_spec(write_spec(tmp_path, "name = ", "broken.toml"))


def test_run_writes_results_and_resumes_after_an_interruption(tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path, GOOD))
    out = tmp_path / "out"
    real_run_cell = runner.run_cell
    calls = []

    def interrupted(cell, dataset, progress=None):
        calls.append(cell.id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the second cell
        return real_run_cell(cell, dataset, progress)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_spec(spec, out, log=lambda *_: None)
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["a.parquet"]  # whole files only
    assert [e["status"] for e in json.loads((out / "manifest.json").read_text())["cells"]] == [
        "done",
        "pending",
        "pending",
    ]
    monkeypatch.setattr(
        runner,
        "run_cell",
        lambda cell, dataset, progress=None: (calls.append(cell.id), real_run_cell(cell, dataset))[1],
    )
    summary = run_spec(spec, out, log=lambda *_: None)
    assert summary.skipped == ["a"] and summary.trained == ["b-num_classes3", "b-num_classes4"]
    assert calls == ["a", "b-num_classes3", "b-num_classes3", "b-num_classes4"]
    manifest, rows = load_results(out)
    assert manifest["spec"] == "tiny" and "torch" in manifest["environment"]
    assert set(rows["cell"]) == {"a", "b-num_classes3", "b-num_classes4"}
    assert set(rows[rows["cell"] == "b-num_classes4"]["num_classes"]) == {4}
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    # A changed spec changes the fingerprint: that cell is trained again rather than reused.
    changed = load_spec(write_spec(tmp_path, GOOD.replace("seeds = [7]", "seeds = [8]")))
    summary = run_spec(changed, out, log=lambda *_: None)
    assert summary.skipped == ["a"] and len(summary.trained) == 2


def test_warm_start_continues_from_the_warm_start_solution(tmp_path):
    spec = load_spec(
        write_spec(
            tmp_path,
            """
        name = "ws"
        [train]
        epochs = 1
        [[grid]]
        label = "from-ce"
        dataset = "digits"
        model = "linear"
        losses = ["cross_entropy", "mse"]
        lrs = { cross_entropy = [0.05], mse = [0.5] }
        seeds = 2
        warmstart = { loss = "cross_entropy", epochs = 2, lr = 0.1 }
        """,
        )
    )
    run_spec(spec, tmp_path / "out", log=lambda *_: None)
    _, rows = load_results(tmp_path / "out")
    warm_end = rows[(rows.phase == "warmstart") & (rows.step == rows[rows.phase == "warmstart"].step.max())]
    main_start = rows[(rows.phase == "main") & (rows.epoch == 2)]
    for seed in (0, 1):
        expected = warm_end[warm_end.seed == seed].test_accuracy.item()
        assert set(main_start[main_start.seed == seed].test_accuracy) == {expected}
    assert rows[rows.phase == "main"].epoch.max() == 3


def test_missing_data_files_fail_before_any_training(tmp_path, monkeypatch):
    monkeypatch.delenv("LOSSLAB_DATA", raising=False)
    monkeypatch.setattr(runner, "train_population", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(FileNotFoundError, match=r"dataset 'fashion-mnist' needs its IDX files"):
        run_spec(load_spec("comparison"), tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "cells").exists() or not list((tmp_path / "out" / "cells").iterdir())


def test_run_cli_errors_are_one_line(tmp_path, capsys):
    from losslab.cli import main

    assert main(["run", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no built-in spec of that name" in err
    assert main(["run", "saturation", "--smoke", "--size", "small"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "results folder" in capsys.readouterr().err


def test_the_manifest_records_the_device_and_each_cells_execution_plan(tmp_path):
    lines = []
    run_spec(load_spec(write_spec(tmp_path, GOOD)), tmp_path / "out", device="auto", log=lines.append)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert manifest["environment"]["device"] == expected and lines[0].startswith(f"device: {expected}")
    execution = manifest["cells"][0]["config"]["execution"]["main"]
    assert execution["device"] == expected and execution["precision"] == "fp32"
    assert set(execution["plan"]) >= {"block_size", "threads_per_block", "workers", "matmul", "source"}


@pytest.mark.parametrize("name", sorted(builtin_specs()))
def test_every_builtin_spec_passes_the_pre_training_checks_at_every_size(name, shared_data_or_none):
    # What run_spec checks before it creates anything (datasets loaded, every population checked), for
    # every size: a spec that would fail only at full size (a batch larger than a small dataset) fails here.
    spec = load_spec(name)
    for size in [None, *spec.sizes]:
        for cell in spec.cells(size):
            if cell.dataset in ("mnist", "fashion-mnist") and shared_data_or_none is None:
                continue
            runner._prepare(spec, cell, shared_data_or_none, "cpu", {})


def test_a_tf32_spec_reads_anywhere_and_is_refused_on_the_cpu_before_anything_is_written(tmp_path):
    path = write_spec(tmp_path, GOOD.replace("batch_size = 20", 'batch_size = 20\nprecision = "tf32"'))
    spec = load_spec(path)  # the device is not known when a spec is read: TF32 is checked when it runs
    assert spec.cells()[0].train.precision == "tf32"
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SpecError, match=r"cell 'a': precision 'tf32' applies to CUDA matmuls"):
        run_spec(spec, tmp_path / "out", device="auto", log=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_an_unlabelled_grid_keeps_its_name_at_every_size_and_in_the_manifest(tmp_path):
    text = GOOD.replace('label = "b"\n', 'role = "many-classes"\n').replace(
        "[sizes.smoke]\nseeds = 1", '[sizes.smoke]\nseeds = 1\ngrids = ["grid1"]'
    )
    spec = load_spec(write_spec(tmp_path, text))
    assert [c.grid for c in spec.cells()] == ["a", "grid1", "grid1"]
    assert {c.grid for c in spec.cells("smoke")} == {"grid1"}  # not renumbered grid0 when grid a is left out
    assert spec.data["grid"][1]["label"] == "grid1"  # what the report reads roles and targets by


def test_a_loss_repeated_with_the_same_resolved_parameters_is_refused(tmp_path):
    text = GOOD.replace(
        'losses = ["cross_entropy", { name = "square_logits", k = 2.0, M = 3.0 }]',
        'losses = ["focal", { name = "focal", gamma = 2 }]',
    )
    with pytest.raises(SpecError, match=r"grid\[1\].losses: loss .*'focal'.*is listed twice"):
        load_spec(write_spec(tmp_path, text))


def test_a_spec_plan_fixes_the_arithmetic_and_each_run_records_its_plans(tmp_path):
    """``[train.plan]`` fixes the block size (and threads per block, matmul library) of every cell without
    changing its fingerprint; the driver fixes the rest once per cell, writes it into the manifest before
    training, and a rerun of an unfinished cell uses the plan recorded for it."""
    text = GOOD.replace("batch_size = 20", 'batch_size = 20\n[train.plan]\nblock_size = 2\nmatmul = "numpy"', 1)
    spec = load_spec(write_spec(tmp_path, text))
    plain = load_spec(write_spec(tmp_path, GOOD, "plain.toml"))
    cell = spec.cells()[0]
    assert (cell.train.block_size, cell.train.matmul, cell.train.threads_per_block) == (2, "numpy", None)
    assert cell.fingerprint() == plain.cells()[0].fingerprint()
    out = tmp_path / "out"
    run_spec(spec, out, log=lambda *_: None)
    manifest, _ = load_results(out)
    for entry in manifest["cells"]:
        plan = entry["plan"]["main"]
        assert (plan["block_size"], plan["matmul"], plan["threads_per_block"]) == (2, "numpy", 1)
        ran = entry["config"]["execution"]["main"]["plan"]
        assert (ran["block_size"], ran["matmul"]) == (2, "numpy")
    # An interrupted run left cell "a" unfinished with its plan recorded: the rerun trains it with that plan
    # (where the spec fixes a field, the spec's value).
    out = tmp_path / "plain"
    run_spec(plain, out, log=lambda *_: None)
    manifest, _ = load_results(out)
    assert manifest["cells"][0]["plan"]["main"]["source"] in ("default", "measured", "cached")
    entry = manifest["cells"][0]
    entry.update(status="pending", plan={"main": {"block_size": 3, "threads_per_block": 1, "matmul": "torch"}})
    for key in ("file", "rows", "bytes", "sha256", "config"):
        entry.pop(key)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "cells" / "a.parquet").unlink()
    summary = run_spec(plain, out, log=lambda *_: None)
    assert summary.trained == ["a"]
    again, _ = load_results(out)
    assert again["cells"][0]["plan"]["main"] == {
        "block_size": 3,
        "threads_per_block": 1,
        "matmul": "torch",
        "source": "recorded",
    }
    assert again["cells"][0]["config"]["execution"]["main"]["plan"]["block_size"] == 3
