"""Bad inputs and faults, as a demanding user and an adversary would try them.

Every bad input (CLI and API) must fail with one line that names the argument or file, the bad value
and the fix (exit code 2 for the CLI, ValueError/TypeError for the API), and leave the disk exactly as
it was: each case snapshots the whole workspace (every file's bytes and mode, every folder and link)
before and after. The fault cases kill, truncate, bit-flip, race and write-protect real runs.

Run just this suite with ``python -m pytest -q tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch

from losslab.cli import main
from losslab.data import load_dataset
from losslab.experiments import runner, store
from losslab.experiments.cluster import RayCluster
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import SpecError, load_spec
from losslab.experiments.store import write as store_write
from losslab.train import Member, PopulationResult, TrainConfig, check_population, train_population

TINY = """
name = "tiny"
[train]
epochs = 1
batch_size = 50
model = "linear"
[[grid]]
label = "a"
dataset = "digits"
classes = [0, 1]
losses = ["mse", "binary_cross_entropy"]
seeds = 2
[[grid]]
label = "b"
dataset = "digits"
losses = ["cross_entropy", "mse"]
seeds = [3, 4]
[[grid]]
label = "c"
dataset = "blobs"
dataset_options = { num_classes = 3, train_per_class = 30, test_per_class = 10 }
losses = ["cross_entropy"]
seeds = 1
[sizes.smoke]
seeds = 1
"""
CELLS = ["a", "b", "c"]


def quiet(*_args) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# the workspace, its snapshot, and fixtures for results folders


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (hidden ones too): files by content hash and mode, folders, links."""
    state = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            info = os.lstat(path)
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", info.st_mode)
            elif not stat.S_ISREG(info.st_mode):  # a named pipe or a device: reading it would block or never end
                state[rel] = ("special", info.st_mode)
            else:
                state[rel] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A complete results folder of the tiny spec (trained once for the whole module)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.toml").write_text(TINY)
    with contextlib.redirect_stdout(io.StringIO()):  # through the command line, which records its command
        assert main(["run", str(root / "tiny.toml"), "--out", str(root / "R")]) == 0
    return root / "R"


def fake_results(folder: Path, spec: str = "tiny", size: str = "full", cells=("a",), done: int | None = None) -> Path:
    """A results folder written through the store without training: ``done`` of ``cells`` finished."""
    header = {
        "spec": spec,
        "size": size,
        "description": "",
        "claims": [],
        "source": "",
        "command": f"losslab run {spec}" + ("" if size == "full" else f" --size {size}"),
        "spec_data": {"grid": []},
        "environment": {},
        "execution": {"executor": "local"},
    }
    planned = [{"id": c, "fingerprint": f"fp-{c}", "members": 1} for c in cells]
    with store.open_run(folder, header, planned, log=quiet) as run:
        for cell in list(cells)[: len(cells) if done is None else done]:
            run.record(cell, pd.DataFrame({"cell": [cell], "test_accuracy": [0.5]}), seconds=0.0)
    return folder


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def flip_bit(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def read_only_place() -> Path:
    """A path where even root cannot create anything (sysfs refuses new entries), checked to fail first."""
    for base in ("/sys", "/proc"):
        probe = Path(base) / f"losslab-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            return Path(base) / "losslab-out"
        probe.rmdir()
    pytest.skip("no read-only location (sysfs, procfs) on this machine")


@pytest.fixture
def ws(tmp_path, monkeypatch, finished, clean_registries) -> Path:
    """A workspace (the current folder) with a valid spec, a finished results folder R, a file and a
    non-empty folder. It lies two levels below tmp_path, so '../..' escapes are still inside the snapshot."""
    root = tmp_path / "outer" / "ws"
    root.mkdir(parents=True)
    (root / "tiny.toml").write_text(TINY)
    shutil.copytree(finished, root / "R")
    (root / "file.txt").write_text("not a folder\n")
    (root / "notempty").mkdir()
    (root / "notempty" / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(root)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("LOSSLAB_DATA", raising=False)
    # Training must never start in a bad-input case.
    monkeypatch.setattr(runner, "train_population", lambda *a, **k: pytest.fail("training started"))
    yield root
    while HELD:  # locks a case's setup holds for the length of the case
        os.close(HELD.pop())


#: File descriptors holding locks for the case in progress (closed when it ends).
HELD: list[int] = []


def hold_garbage_lock(folder: Path) -> None:
    """``folder/.lock`` holding bytes no losslab run writes, locked (as a live process, not losslab, would)."""
    import fcntl

    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"\x00garbage, not JSON\xff")
    fcntl.flock(fd, fcntl.LOCK_EX)
    HELD.append(fd)


def spec_file(text: str, name: str = "bad.toml"):
    def setup(root: Path) -> None:
        (root / name).write_text(textwrap.dedent(text))

    return setup


def tiny_with(*changes: tuple[str, str], name: str = "bad.toml"):
    text = TINY
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return spec_file(text, name)


def one_grid(lines: str, name: str = "bad.toml"):
    """A one-grid spec on digits whose grid has ``lines`` added (later keys override nothing: TOML
    forbids repeats, so callers give only keys that are not already there)."""
    return spec_file(f'name = "one"\n[train]\nepochs = 1\nmodel = "linear"\n[[grid]]\n{lines}\n', name)


def with_plugin(plugin: str, grid: str = 'dataset = "digits"\nlosses = ["mse"]', plugins: str = '["bad_plugin.py"]'):
    """bad_plugin.py holding ``plugin``, and a one-grid spec bad.toml whose ``plugins`` lists it."""

    def setup(root: Path) -> None:
        (root / "bad_plugin.py").write_text(textwrap.dedent(plugin))
        (root / "bad.toml").write_text(
            f'name = "one"\nplugins = {plugins}\n[train]\nepochs = 1\nmodel = "linear"\n[[grid]]\n{grid}\n'
        )

    return setup


def copy_of_r(name: str, damage=None, cell: str = "b"):
    def setup(root: Path) -> None:
        shutil.copytree(root / "R", root / name)
        if damage is not None:
            damage(root / name / "cells" / f"{cell}.parquet")

    return setup


def with_manifest(name: str, change):
    def setup(root: Path) -> None:
        shutil.copytree(root / "R", root / name)
        edit_manifest(root / name, change)

    return setup


def raw_manifest(name: str, content: bytes):
    def setup(root: Path) -> None:
        shutil.copytree(root / "R", root / name)
        (root / name / "manifest.json").write_bytes(content)

    return setup


def conflicting_copy(root: Path) -> None:
    """R2: the same spec and cells as R, but cell b trained again (other contents, same fingerprint)."""
    shutil.copytree(root / "R", root / "R2")
    path = root / "R2" / "cells" / "b.parquet"
    frame = pd.read_parquet(path)
    frame["seconds"] = frame["seconds"] + 1.0
    data = store.frame_to_bytes(frame)
    path.write_bytes(data)

    def change(m):
        entry = next(e for e in m["cells"] if e["id"] == "b")
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

    edit_manifest(root / "R2", change)


def several(*setups):
    def setup(root: Path) -> None:
        for s in setups:
            s(root)

    return setup


# ---------------------------------------------------------------------------------------------
# CLI cases: argv (run in the workspace), the pinned message, and what each needs first


@dataclass
class Case:
    id: str
    argv: list[str]
    pattern: str
    setup: object = None
    code: int = 2
    absent: list[str] = field(default_factory=list)  # absolute paths that must not exist afterwards
    needs: str = ""  # "ray": skip without Ray installed
    env: dict = field(default_factory=dict)  # environment variables set for the case


CLI_CASES = [
    # --- arguments
    Case(
        "run-unknown-spec", ["run", "nope"], r"no spec file 'nope' and no built-in spec of that name; built-in specs:"
    ),
    Case("run-spec-is-folder", ["run", "notempty"], r"spec 'notempty' is a folder; give a spec TOML file"),
    Case(
        "run-smoke-and-size", ["run", "tiny.toml", "--smoke", "--size", "full"], r"--smoke and --size full contradict"
    ),
    Case(
        "run-unknown-size",
        ["run", "tiny.toml", "--size", "huge"],
        r"tiny.toml: sizes: no size 'huge'; this spec defines: smoke",
    ),
    Case(
        "run-bad-device",
        ["run", "tiny.toml", "--device", "tpu"],
        r"--device must be auto, cpu, cuda or cuda:N, got 'tpu'",
    ),
    Case(
        "run-bad-cuda-index",
        ["run", "tiny.toml", "--device", "cuda:x"],
        r"--device must be auto, cpu, cuda or cuda:N, got 'cuda:x'",
    ),
    Case(
        "demo-bad-device",
        ["demo", "--out", "d", "--device", "gpu"],
        r"--device must be auto, cpu, cuda or cuda:N, got 'gpu'",
    ),
    *(
        []
        if torch.cuda.is_available()
        else [
            Case(
                "demo-cuda-without-a-gpu",
                ["demo", "--out", "d", "--size", "smoke", "--device", "cuda"],
                r"device 'cuda' requested but CUDA is not available here; use device='cpu'",
            ),
            Case(
                "run-cuda-without-a-gpu",
                ["run", "tiny.toml", "--device", "cuda"],
                r"device 'cuda' requested but CUDA is not available here",
            ),
        ]
    ),
    Case(
        "run-cpus-without-ray",
        ["run", "tiny.toml", "--cpus-per-cell", "2"],
        r"--cpus-per-cell applies to Ray runs only; add --ray",
    ),
    Case(
        "run-cpus-zero",
        ["run", "tiny.toml", "--ray", "--cpus-per-cell", "0"],
        r"--cpus-per-cell must be a positive number, got 0.0",
    ),
    Case(
        "run-cpus-nan",
        ["run", "tiny.toml", "--ray", "--cpus-per-cell", "nan"],
        r"--cpus-per-cell must be a positive number, got nan",
    ),
    Case(
        "run-cpus-not-a-number",
        ["run", "tiny.toml", "--cpus-per-cell", "two"],
        r"argument --cpus-per-cell: invalid float value: 'two'",
    ),
    Case("run-out-empty", ["run", "tiny.toml", "--out", ""], r"--out is empty; give a folder for the results"),
    Case(
        "run-out-is-file",
        ["run", "tiny.toml", "--out", "file.txt"],
        r"results folder \(--out\) /.*/ws/file.txt is a file; give a new folder",
    ),
    Case(
        "run-out-under-file",
        ["run", "tiny.toml", "--out", "file.txt/R"],
        r"results folder \(--out\) /.*/ws/file.txt/R: .*file.txt is a file, not a folder; choose another --out",
    ),
    Case(
        "run-out-not-results",
        ["run", "tiny.toml", "--out", "notempty"],
        r"results folder \(--out\) /.*/ws/notempty is not empty and is not a results folder \(no manifest.json; it holds "
        r"'notes.txt'\)",
    ),
    Case(
        "run-out-read-only-place",
        ["run", "tiny.toml", "--out", "<READ_ONLY>"],
        r"cannot create results folder .*losslab-out \(.+\); choose a writable --out",
    ),
    Case(
        "run-other-spec-into-folder",
        ["run", "bad.toml", "--out", "R"],
        r"/ws/R holds spec 'tiny' at size 'full', and this run is spec 'other' at size 'full'; a results folder holds one "
        r"spec at one size: use another --out, or delete /.*/ws/R to start over",
        tiny_with(('name = "tiny"', 'name = "other"')),
    ),
    Case(
        "run-other-size-into-folder",
        ["run", "tiny.toml", "--smoke", "--out", "R"],
        r"R holds spec 'tiny' at size 'full', and this run is spec 'tiny' at size 'smoke'",
    ),
    Case(
        "run-broken-manifest",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: not valid JSON \(Expecting value at line 1, column 1\); the manifest is damaged",
        raw_manifest("RB", b"garbage"),
    ),
    Case(
        "run-manifest-not-utf8",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: not UTF-8 text \(byte 0\)",
        raw_manifest("RB", b"\xff\xfe{}"),
    ),
    Case(
        "run-manifest-without-spec",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: no 'spec' key; the manifest is damaged or not losslab's",
        with_manifest("RB", lambda m: m.pop("spec")),
    ),
    Case(
        "run-manifest-format-1",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: results format 1 \(an older losslab, without checksums\) cannot be verified",
        raw_manifest("RB", json.dumps({"version": 1, "spec": "tiny", "cells": []}).encode()),
    ),
    Case(
        "run-manifest-traversal-id",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: cells\[0\].id is '../../x', not a cell id",
        with_manifest("RB", lambda m: m["cells"][0].update(id="../../x")),
    ),
    Case(
        "run-manifest-is-list",
        ["run", "tiny.toml", "--out", "RB"],
        r"RB/manifest.json: holds a list, not a JSON object",
        raw_manifest("RB", b"[]"),
    ),
    Case(
        "run-cells-is-a-link",
        ["run", "tiny.toml", "--out", "RL"],
        r"/ws/RL/cells is a link or a file, and results are written only inside /.*/ws/RL;",
        lambda root: (
            shutil.copytree(root / "R", root / "RL"),
            shutil.rmtree(root / "RL" / "cells"),
            (root / "RL" / "cells").symlink_to(root / "notempty"),
        ),
    ),
    Case(
        "run-missing-data-files",
        ["run", "bad.toml", "--data-dir", "notempty"],
        r"dataset 'mnist': missing file train-images-idx3-ubyte.gz in /.*/ws/notempty",
        one_grid('dataset = "mnist"\nlosses = ["mse"]\nseeds = 1'),
    ),
    Case(
        "run-ray-auto-without-cluster",
        ["run", "tiny.toml", "--out", "new", "--ray", "auto"],
        r"--ray auto: cannot connect to a Ray cluster \(.+\); start one with 'ray start --head'",
        needs="ray",
    ),
    # --- spec contents: names that would write elsewhere, values that would train nonsense
    Case(
        "spec-name-traversal",
        ["run", "bad.toml"],
        r"bad.toml: name: must be a spec name of letters, digits, '-' and '_'.*got '../../escaped'",
        tiny_with(('name = "tiny"', 'name = "../../escaped"')),
    ),
    Case(
        "spec-name-absolute",
        ["run", "bad.toml"],
        r"bad.toml: name: must be a spec name .*got '/tmp/losslab-escaped-by-name'",
        tiny_with(('name = "tiny"', 'name = "/tmp/losslab-escaped-by-name"')),
        absent=["/tmp/losslab-escaped-by-name"],
    ),
    Case(
        "spec-name-with-space",
        ["run", "bad.toml"],
        r"bad.toml: name: must be a spec name .*got 'my spec'",
        tiny_with(('name = "tiny"', 'name = "my spec"')),
    ),
    Case(
        "spec-file-name-not-a-name",
        ["run", "my spec.toml"],
        r"my spec.toml: name: the file name 'my spec' is not a spec name",
        spec_file('[[grid]]\ndataset = "digits"\nlosses = ["mse"]\n', "my spec.toml"),
    ),
    Case(
        "spec-label-traversal",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].label: must be a grid label .*got '../../../x'",
        tiny_with(('label = "a"', 'label = "../../../x"')),
    ),
    Case(
        "spec-label-with-slash",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].label: must be a grid label .*got 'b/c'",
        tiny_with(('label = "b"', 'label = "b/c"')),
    ),
    Case(
        "spec-label-empty",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].label: must be a grid label .*got ''",
        tiny_with(('label = "a"', 'label = ""')),
    ),
    Case(
        "spec-size-name-traversal",
        ["run", "bad.toml"],
        r"bad.toml: sizes.../x: must be a size name .*got '../x'",
        tiny_with(("[sizes.smoke]", '[sizes."../x"]')),
    ),
    Case(
        "spec-swept-value-with-slash",
        ["run", "bad.toml"],
        r"bad.toml: grid\[2\].dataset_options.seed: must be an integer >= 0, got 'a/b'",
        tiny_with(("num_classes = 3,", 'num_classes = 3, seed = ["a/b"],')),
    ),
    Case(
        "spec-cell-ids-differ-by-case",
        ["run", "bad.toml"],
        r"bad.toml: grid: cell ids must be unique \(ignoring case\), got \['a', 'A', 'c'\]",
        tiny_with(('label = "b"', 'label = "A"')),
    ),
    Case(
        "spec-duplicate-seeds",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].seeds: seed 3 is listed twice; each would train \(and count\) the same run twice",
        tiny_with(("seeds = [3, 4]", "seeds = [3, 3]")),
    ),
    Case(
        "spec-duplicate-lrs",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].lrs: 0.1 is listed twice",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nlrs = [0.1, 0.1]'),
    ),
    Case(
        "spec-duplicate-init-scales",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].init_scales: 30 is listed twice",
        one_grid('dataset = "digits"\nlosses = ["mse"]\ninit_scales = [30, 30.0]'),
    ),
    Case(
        "spec-duplicate-losses",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].losses: loss \{'name': 'mse'\} is listed twice",
        tiny_with(('losses = ["cross_entropy", "mse"]', 'losses = ["mse", "mse"]')),
    ),
    Case(
        "spec-seed-count-huge",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].seeds: a count of seeds must be in \[1, 100000\], got 100000000000000000000",
        tiny_with(("seeds = [3, 4]", "seeds = 100000000000000000000")),
    ),
    Case(
        "spec-seed-negative",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].seeds: seeds must be integers in \[0, 9223372036854775807\], got -1",
        tiny_with(("seeds = [3, 4]", "seeds = [3, -1]")),
    ),
    Case(
        "spec-seed-too-large",
        ["run", "bad.toml"],
        r"bad.toml: grid\[1\].seeds: seeds must be integers in \[0, 9223372036854775807\], got 9223372036854775808",
        tiny_with(("seeds = [3, 4]", "seeds = [9223372036854775808]")),
    ),
    Case(
        "spec-lr-inf",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].lrs: must be a positive finite number or a non-empty list of them, got \[inf\]",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nlrs = [inf]'),
    ),
    Case(
        "spec-lr-nan",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].lrs: must be a positive finite number .*got \[nan\]",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nlrs = [nan]'),
    ),
    Case(
        "spec-lrs-for-a-loss-not-in-grid",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].lrs: learning rates for \['msee'\], which is not a loss of this grid",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nlrs = { mse = [0.1], msee = [0.2] }'),
    ),
    Case(
        "spec-binary-loss-on-ten-classes",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': member 0: loss 'binary_cross_entropy' takes one logit per example and needs a "
        r"two-class dataset",
        one_grid('dataset = "digits"\nlosses = ["binary_cross_entropy"]\nseeds = 1'),
    ),
    Case(
        "spec-batch-larger-than-data",
        ["run", "bad.toml"],
        r"bad.toml: cell 'a': batch_size 5000 exceeds the \d+ training examples of 'digits\[0,1\]'",
        tiny_with(("batch_size = 50", "batch_size = 5000")),
    ),
    Case(
        "spec-cnn-on-vectors",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': model 'cnn' takes 28x28 images",
        spec_file('name = "one"\n[train]\nepochs = 1\n[[grid]]\ndataset = "digits"\nmodel = "cnn"\nlosses = ["mse"]\n'),
    ),
    Case(
        "spec-hidden-zero",
        ["run", "bad.toml"],
        r"bad.toml: train.hidden: must be a non-empty list of positive layer widths, got \[0\]",
        spec_file(
            'name = "one"\n[train]\nepochs = 1\nhidden = [0]\n[[grid]]\ndataset = "digits"\nmodel = "mlp"\nlosses = ["mse"]\n'
        ),
    ),
    Case(
        "spec-classes-repeated",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].classes: must list at least 2 distinct class indices \(>= 0\), got \[0, 0\]",
        tiny_with(("classes = [0, 1]", "classes = [0, 0]")),
    ),
    Case(
        "spec-class-out-of-range",
        ["run", "bad.toml"],
        r"bad.toml: cell 'a': .*99",
        tiny_with(("classes = [0, 1]", "classes = [0, 99]")),
    ),
    Case(
        "spec-size-selects-unknown-grid",
        ["run", "bad.toml"],
        r"bad.toml: sizes.smoke.grids: no grid labelled 'z'; grid labels: a, b, c",
        tiny_with(("[sizes.smoke]\nseeds = 1", '[sizes.smoke]\nseeds = 1\ngrids = ["z"]')),
    ),
    Case(
        "spec-size-selects-nothing",
        ["run", "bad.toml"],
        r"bad.toml: sizes.smoke.grids: must be a non-empty list of grid labels, got \[\]",
        tiny_with(("[sizes.smoke]\nseeds = 1", "[sizes.smoke]\nseeds = 1\ngrids = []")),
    ),
    Case(
        "spec-warmstart-epochs-text",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].warmstart.epochs: must be a positive integer, got 'ten'",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nwarmstart = { epochs = "ten" }'),
    ),
    Case(
        "spec-warmstart-lr-inf",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].warmstart.lr: must be a positive finite number",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nwarmstart = { lr = inf }'),
    ),
    Case(
        "spec-empty-option-sweep",
        ["run", "bad.toml"],
        r"bad.toml: grid\[2\].dataset_options.num_classes: an empty list selects no value",
        tiny_with(("num_classes = 3,", "num_classes = [],")),
    ),
    Case(
        "spec-target-accuracy-above-one",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].target_accuracy: must be a number in \(0, 1\], got 2",
        one_grid('dataset = "digits"\nlosses = ["mse"]\ntarget_accuracy = 2'),
    ),
    Case(
        "spec-claims-removed",
        ["run", "bad.toml"],
        r"bad.toml: claims: this key was removed: the report reads each grid's 'role'",
        tiny_with(('name = "tiny"', 'name = "tiny"\nclaims = "C1"')),
    ),
    Case(
        "spec-train-not-a-table",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].train: must be a table, got 5",
        one_grid('dataset = "digits"\nlosses = ["mse"]\ntrain = 5'),
    ),
    Case(
        "spec-dataset-a-list",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].dataset: unknown dataset \['digits'\]; valid datasets:",
        one_grid('dataset = ["digits"]\nlosses = ["mse"]'),
    ),
    Case(
        "spec-train-value-true",
        ["run", "bad.toml"],
        r"bad.toml: train.epochs: must be a positive integer, got True",
        tiny_with(("epochs = 1", "epochs = true")),
    ),
    Case(
        "spec-betas-out-of-range",
        ["run", "bad.toml"],
        r"bad.toml: train.betas: must be two numbers in \[0, 1\), got \[2, 3\]",
        tiny_with(("epochs = 1", 'epochs = 1\noptimizer = "adam"\nbetas = [2, 3]')),
    ),
    Case(
        "spec-adam-eps-negative",
        ["run", "bad.toml"],
        r"bad.toml: train.adam_eps: must be a positive finite number, got -1.0",
        tiny_with(("epochs = 1", "epochs = 1\nadam_eps = -1.0")),
    ),
    Case(
        "spec-size-duplicate-seeds",
        ["run", "bad.toml"],
        r"bad.toml: sizes.smoke.seeds: seed 1 is listed twice",
        tiny_with(("[sizes.smoke]\nseeds = 1", "[sizes.smoke]\nseeds = [1, 1]")),
    ),
    Case(
        "spec-size-train-epochs-zero",
        ["run", "bad.toml"],
        r"bad.toml: sizes.smoke.train.epochs: must be a positive integer, got 0",
        tiny_with(("[sizes.smoke]\nseeds = 1", "[sizes.smoke]\nseeds = 1\ntrain = { epochs = 0 }")),
    ),
    Case(
        "run-out-inside-cells",
        ["run", "tiny.toml", "--out", "R/cells/new"],
        r"results folder \(--out\) /.*/ws/R/cells/new is inside .*R/cells, the cells folder of a results folder",
    ),
    Case(
        "spec-not-utf8",
        ["run", "bad.toml"],
        r"bad.toml: not UTF-8 text \(byte 8\); save the spec as UTF-8",
        lambda root: (root / "bad.toml").write_bytes(b'name = "\xff"\n'),
    ),
    Case("spec-not-toml", ["run", "bad.toml"], r"bad.toml: not valid TOML: ", spec_file("name = \n")),
    # --- a spec's plugins: bad lists, files and modules that do not import, losses and data that break the contract
    Case(
        "spec-plugins-not-a-list",
        ["run", "bad.toml"],
        r"bad.toml: plugins: must be a list of module names or .py file paths \(relative to the spec's folder\), "
        r"got 'bad_plugin.py'",
        with_plugin("", plugins='"bad_plugin.py"'),
    ),
    Case(
        "spec-plugin-listed-twice",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[1\]: 'bad_plugin.py' is listed twice; list each plugin once",
        with_plugin("", plugins='["bad_plugin.py", "bad_plugin.py"]'),
    ),
    Case(
        "spec-plugin-file-missing",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('nope.py'\): plugin file 'nope.py' does not exist \(looked at .*/ws/nope.py\); "
        r"check the path",
        with_plugin("", plugins='["nope.py"]'),
    ),
    Case(
        "spec-plugin-module-missing",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('nopkg.losses'\): plugin module 'nopkg.losses' not found \(no module named "
        r"'nopkg'\); install it, add its folder to PYTHONPATH, or give the path of a .py file",
        with_plugin("", plugins='["nopkg.losses"]'),
    ),
    Case(
        "spec-plugin-syntax-error",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('bad_plugin.py'\): plugin 'bad_plugin.py' failed to import: SyntaxError: .+ "
        r"\(.*bad_plugin.py, line 2\); fix the plugin and retry",
        with_plugin("\ndef poly(z, y:\n"),
    ),
    Case(
        "spec-plugin-imports-a-missing-package",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('bad_plugin.py'\): plugin 'bad_plugin.py' failed to import: ModuleNotFoundError: "
        r"No module named 'not_installed_anywhere' \(.*bad_plugin.py, line 2\)",
        with_plugin("\nimport not_installed_anywhere\n"),
    ),
    Case(
        "spec-plugin-loss-wrong-signature",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('bad_plugin.py'\): plugin 'bad_plugin.py' failed to import: ValueError: loss "
        r"'one_argument': values 'one_argument' \(.*bad_plugin.py, line 4\) has signature \(z\), which cannot be "
        r"called as \(z, y\)",
        with_plugin(
            """
            import losslab

            def one_argument(z):
                return z.sum(-1)

            losslab.register_loss("one_argument", values=one_argument)
            """,
            'dataset = "digits"\nlosses = ["one_argument"]',
        ),
    ),
    Case(
        "spec-plugin-loss-one-value-per-batch",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': plugin 'bad_plugin.py': loss 'batch_mean': values\(z, y\) returned shape \[\] for "
        r"logits of shape \[2, 3, 10\]; return one value per example, shape \[2, 3\]",
        with_plugin(
            """
            import torch
            import losslab

            def batch_mean(z, y):
                return -(y * torch.log_softmax(z, dim=-1)).sum(-1).mean()

            losslab.register_loss("batch_mean", values=batch_mean)
            """,
            'dataset = "digits"\nlosses = ["cross_entropy", "batch_mean"]',
        ),
    ),
    Case(
        "spec-plugin-loss-nan",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': plugin 'bad_plugin.py': loss 'log_of_probability': values\(z, y\) returned 6 "
        r"non-finite value\(s\) \(nan\) for finite logits of shape \[2, 3, 10\]; work in log space",
        with_plugin(
            """
            import torch
            import losslab

            def log_of_probability(z, y):
                return (y * torch.log(torch.softmax(z, -1) - 2)).sum(-1)

            losslab.register_loss("log_of_probability", values=log_of_probability)
            """,
            'dataset = "digits"\nlosses = ["log_of_probability"]',
        ),
    ),
    Case(
        "spec-plugin-dataset-labels-out-of-range",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': plugin 'bad_plugin.py': dataset 'three_kinds': y_train \(labels\) has label 7 at "
        r"example 5, outside \[0, 2\]: class_names lists 3 classes; labels must be 0..2",
        with_plugin(
            """
            import numpy as np
            import losslab

            def three_kinds():
                x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 3
                y[5] = 7
                return {"x_train": x, "y_train": y, "x_test": x, "y_test": y, "class_names": ["a", "b", "c"]}

            losslab.register_dataset("three_kinds", three_kinds)
            """,
            'dataset = "three_kinds"\nlosses = ["mse"]',
        ),
    ),
    Case(
        "spec-plugin-model-with-batchnorm",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': plugin 'bad_plugin.py': model 'with_batchnorm': layer '1' \(BatchNorm1d\) updates "
        r"its running statistics in place .*; use torch.nn.GroupNorm or torch.nn.LayerNorm instead",
        with_plugin(
            """
            import torch
            import losslab

            losslab.register_model(
                "with_batchnorm",
                lambda shape, k: torch.nn.Sequential(torch.nn.Linear(shape[0], 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, k)),
            )
            """,
            'dataset = "digits"\nlosses = ["mse"]\nmodel = "with_batchnorm"',
        ),
    ),
    # --- report
    Case(
        "report-missing-folder",
        ["report", "missing"],
        r"results folder missing does not exist; write one with 'losslab run SPEC --out missing'",
    ),
    Case("report-on-a-file", ["report", "file.txt"], r"file.txt is a file, not a results folder"),
    Case("report-not-results", ["report", "notempty"], r"notempty is not a results folder \(no manifest.json\)"),
    Case("report-out-is-file", ["report", "R", "--out", "file.txt"], r"report folder \(--out\) file.txt is a file"),
    Case(
        "report-out-read-only-place",
        ["report", "R", "--out", "<READ_ONLY>"],
        r"cannot create report folder .*losslab-out \(.+\); choose a writable --out",
    ),
    Case(
        "report-incomplete",
        ["report", "RI"],
        r"RI: 2 of 3 cells are not finished \(b, c\); finish them with 'losslab run tiny --out RI'",
        lambda root: fake_results(root / "RI", cells=CELLS, done=1),
    ),
    Case(
        "report-bit-flip",
        ["report", "RD"],
        r"RD/cells/b.parquet: damaged \(its SHA-256 differs from the one the manifest records\); rerun "
        r"'losslab run .*tiny.toml --out RD' to retrain it",
        copy_of_r("RD", flip_bit),
    ),
    Case(
        "report-truncated",
        ["report", "RD"],
        r"RD/cells/b.parquet: damaged \(\d+ bytes where the manifest records \d+\); rerun",
        copy_of_r("RD", truncate),
    ),
    Case(
        "report-cell-file-missing",
        ["report", "RD"],
        r"RD/cells/b.parquet: missing, though RD/manifest.json lists cell 'b' as done",
        copy_of_r("RD", lambda p: p.unlink()),
    ),
    Case(
        "report-cell-replaced-by-other-table",
        ["report", "RD"],
        r"RD/cells/b.parquet: damaged",
        copy_of_r("RD", lambda p: shutil.copyfile(p.with_name("c.parquet"), p)),
    ),
    Case(
        "report-unlisted-cell-file",
        ["report", "RD"],
        r"RD/cells/zz.parquet: not listed in RD/manifest.json, so it cannot be trusted; move it out of RD/cells",
        copy_of_r("RD", lambda p: shutil.copyfile(p, p.with_name("zz.parquet"))),
    ),
    Case(
        "report-conflicting-copies",
        ["report", "R", "R2"],
        r"R and R2 both hold cell 'b' of spec 'tiny', with other contents \(another run of the same settings\); "
        r"report one of the two folders",
        conflicting_copy,
    ),
    Case(
        "report-other-settings-same-cell",
        ["report", "R", "RS"],
        r"R and RS both hold cell 'a' of spec 'tiny', with other settings \(fingerprints differ\)",
        lambda root: edit_manifest(
            fake_results(root / "RS", cells=["a"]),
            lambda m: m.update(spec_data=store.read_manifest(root / "R")["spec_data"]),
        ),
    ),
    Case(
        "report-two-specs-one-name",
        ["report", "R", "RN"],
        r"R and RN hold two different specs both named 'tiny' \(their texts differ\); report them separately",
        lambda root: fake_results(root / "RN", cells=["z"]),
    ),
    Case(
        "report-manifest-without-spec",
        ["report", "RB"],
        r"RB/manifest.json: no 'spec' key",
        with_manifest("RB", lambda m: m.pop("spec")),
    ),
    Case(
        "report-out-into-cells",
        ["report", "R", "--out", "R/cells"],
        r"report folder \(--out\) R/cells is inside .*R/cells, the cells folder of a results folder; give another",
    ),
    Case("report-out-empty", ["report", "R", "--out", ""], r"--out is empty; give a folder for index.html"),
    # --- verify and demo
    Case("verify-seed-negative", ["verify", "--seed", "-1"], r"--seed must be a non-negative integer, got -1"),
    Case(
        "verify-trials-huge", ["verify", "--trials", "1000000000"], r"--trials must be in \[1, 100000\], got 1000000000"
    ),
    Case("verify-json-is-folder", ["verify", "--json", "notempty"], r"--json notempty is a folder; give a file name"),
    Case(
        "verify-json-no-parent",
        ["verify", "--json", "nowhere/x.json"],
        r"--json nowhere/x.json: folder nowhere does not exist",
    ),
    Case(
        "verify-json-read-only-place",
        ["verify", "--json", "<READ_ONLY>.json"],
        r"--json .*losslab-out.json: cannot write \(.+\); give a writable path",
    ),
    Case("demo-out-is-file", ["demo", "--out", "file.txt"], r"demo folder \(--out\) file.txt is a file; give a folder"),
    Case(
        "demo-out-read-only-place",
        ["demo", "--size", "smoke", "--out", "<READ_ONLY>"],
        r"cannot create demo folder .*losslab-out \(.+\); choose a writable --out",
    ),
    Case(
        "demo-smoke-into-small",
        ["demo", "--size", "smoke", "--out", "D"],
        r"D/results/saturation holds spec 'saturation' at size 'small', and this run is spec 'saturation' at size 'smoke'",
        lambda root: fake_results(root / "D" / "results" / "saturation", spec="saturation", size="small"),
    ),
    Case("plot-unknown-figure", ["plot", "nosuch"], r"unknown figure 'nosuch'; valid figures: sigmoid"),
]

# --- issue #21: hostile plugins, huge numbers, odd paths, broken data, locks and signals (one line each, as above)


def plugin_file(text: str, name: str = "p.py"):
    """A plugin file ``name`` in the workspace (for --plugin)."""

    def setup(root: Path) -> None:
        (root / name).write_text(textwrap.dedent(text))

    return setup


def table_file(name: str, content: bytes | None = None, link_to: str | None = None, fifo: bool = False):
    """A data file for a ``file:`` dataset, and a one-grid spec bad.toml training on it."""

    def setup(root: Path) -> None:
        path = root / name
        if link_to is not None:
            path.symlink_to(link_to)
        elif fifo:
            os.mkfifo(path)
        elif content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
        one_grid(f'dataset = "file:{name}"\nlosses = ["mse"]\nseeds = 1')(root)

    return setup


def stray_files(count: int):
    def setup(root: Path) -> None:
        shutil.copytree(root / "R", root / "RS")
        for i in range(count):
            (root / "RS" / "cells" / f"stray{i:05d}.parquet").write_bytes(b"")

    return setup


BRANCHY_MODEL = """
import torch
import losslab

class Branchy(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.layer = torch.nn.Linear(features, classes)

    def forward(self, x):
        if x.sum() > 0:
            return self.layer(x)
        return -self.layer(x)

losslab.register_model("branchy", lambda shape, k: Branchy(shape[0], k))
"""

ITEM_MODEL = """
import torch
import losslab

class Scaled(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.layer = torch.nn.Linear(features, classes)

    def forward(self, x):
        return self.layer(x) / (1 + x.abs().max().item())

losslab.register_model("scaled", lambda shape, k: Scaled(shape[0], k))
"""

HOSTILE_CASES = [
    # hostile plugins: exits, interrupts, signals and odd exceptions at import, and at call time
    Case(
        "plugin-sys-exit-0",
        ["run", "bad.toml"],
        r"bad.toml: plugins\[0\] \('bad_plugin.py'\): plugin 'bad_plugin.py' called sys.exit\(0\) while being imported "
        r"\(.*bad_plugin.py, line 3\); a plugin only defines and registers",
        with_plugin("import sys\n\nsys.exit(0)\n"),
    ),
    Case(
        "plugin-raise-system-exit-text",
        ["run", "bad.toml"],
        r"plugin 'bad_plugin.py' called sys.exit\('bye'\) while being imported",
        with_plugin("raise SystemExit('bye')\n"),
    ),
    Case(
        "plugin-keyboard-interrupt",
        ["run", "bad.toml"],
        r"losslab run: interrupted while importing plugin 'bad_plugin.py' \(.*bad_plugin.py, line 1\); nothing was "
        r"written",
        with_plugin("raise KeyboardInterrupt\n"),
        code=130,
    ),
    Case(
        "plugin-sends-itself-sigint",
        ["run", "bad.toml"],
        r"losslab run: interrupted while importing plugin 'bad_plugin.py'",
        with_plugin("import os, signal, time\n\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"),
        code=130,
    ),
    Case(
        "plugin-sends-itself-sigterm",
        ["run", "bad.toml"],
        r"losslab run: terminated \(SIGTERM\) while importing plugin 'bad_plugin.py'.*; nothing was written",
        with_plugin("import os, signal, time\n\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(5)\n"),
        code=143,
    ),
    Case(
        "plugin-raises-a-base-exception",
        ["run", "bad.toml"],
        r"plugin 'bad_plugin.py' failed to import: Sneaky: not an Exception \(.*bad_plugin.py, line 5\)",
        with_plugin("class Sneaky(BaseException):\n    pass\n\n\nraise Sneaky('not an Exception')\n"),
    ),
    Case(
        "plugin-recursion",
        ["run", "bad.toml"],
        r"plugin 'bad_plugin.py' failed to import: RecursionError: maximum recursion depth exceeded",
        with_plugin("def f():\n    return f()\n\n\nf()\n"),
    ),
    Case(
        "plugin-chdir-then-bad-spec",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].losses: must be a non-empty list",
        with_plugin("import os\n\nos.chdir('/')\n", grid='dataset = "digits"\nlosses = []'),
    ),
    Case(
        "plugin-model-if-on-a-tensor",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': plugin 'bad_plugin.py': model 'branchy': its forward decides with a tensor's value "
        r"in Python \(an if or while on a tensor\) \(.*bad_plugin.py, line 11: if x.sum\(\) > 0:\), which torch.func's "
        r"vmap cannot do for a population of members; compute both branches and choose with torch.where",
        with_plugin(BRANCHY_MODEL, grid='dataset = "digits"\nlosses = ["mse"]\nmodel = "branchy"'),
    ),
    Case(
        "plugin-model-item",
        ["run", "bad.toml"],
        r"plugin 'bad_plugin.py': model 'scaled': its forward calls .item\(\) on a tensor \(.*bad_plugin.py, line 11",
        with_plugin(ITEM_MODEL, grid='dataset = "digits"\nlosses = ["mse"]\nmodel = "scaled"'),
    ),
    Case(
        "plugin-loss-exits-when-called",
        ["run", "bad.toml"],
        r"losslab run: error: sys.exit\(3\) was called by .*bad_plugin.py, line 6 while losslab run ran; finished "
        r"cells are saved; a plugin's functions must return or raise, never exit",
        with_plugin(
            """
            import sys
            import losslab

            def quitter(z, y):
                sys.exit(3)

            losslab.register_loss("quitter", values=quitter)
            """,
            'dataset = "digits"\nlosses = ["quitter"]',
        ),
    ),
    Case(
        "plugin-loader-exits-when-called",
        ["run", "bad.toml"],
        r"sys.exit\(None\) was called by .*bad_plugin.py, line 6 while losslab run ran",
        with_plugin(
            """
            import sys
            import losslab

            def nothing():
                sys.exit()

            losslab.register_dataset("nothing", nothing)
            """,
            'dataset = "nothing"\nlosses = ["mse"]',
        ),
    ),
    Case(
        "check-loss-plugin-exits",
        ["check-loss", "mse", "--plugin", "p.py", "--json"],
        r"losslab check-loss: error: plugin 'p.py' called sys.exit\(0\) while being imported",
        plugin_file("raise SystemExit(0)\n"),
    ),
    Case(
        "list-plugin-interrupt",
        ["list", "losses", "--plugin", "p.py"],
        r"losslab list: interrupted while importing plugin 'p.py' \(.*p.py, line 1\); nothing was written",
        plugin_file("raise KeyboardInterrupt\n"),
        code=130,
    ),
    Case(
        "plot-plugin-exits",
        ["plot", "--plugin", "p.py", "--out", "figs"],
        r"losslab plot: error: plugin 'p.py' called sys.exit\(2\)",
        plugin_file("import os, sys\n\nos.chdir('/')\nsys.exit(2)\n"),
    ),
    # numbers far beyond reason: refused before training, with the estimate and the way to run it anyway
    Case(
        "spec-epochs-1e18",
        ["run", "bad.toml"],
        r"bad.toml: this run would take at least [\d,]+ years of training \(2.0e\+19 member-steps; cell 'grid0': "
        r"2 member\(s\) x 10,000,000,000,000,000,000 steps\), more than --max-days 30; shrink epochs, seeds, learning "
        r"rates or grids .* or pass --max-days inf \(or LOSSLAB_MAX_DAYS=inf\) to run it anyway",
        spec_file(
            'name = "one"\n[train]\nepochs = 1000000000000000000\nmodel = "linear"\n[[grid]]\ndataset = "digits"\n'
            'losses = ["mse", "cross_entropy"]\nseeds = 1\n'
        ),
    ),
    Case(
        "spec-epochs-largest-toml-integer",
        ["run", "bad.toml"],
        r"bad.toml: this run would take at least .* years of training",
        tiny_with(("epochs = 1", "epochs = 9223372036854775807")),
    ),
    Case(
        "spec-warmstart-epochs-huge",
        ["run", "bad.toml"],
        r"bad.toml: this run would take at least .* years .*more than --max-days 30",
        one_grid('dataset = "digits"\nlosses = ["mse"]\nseeds = 1\nwarmstart = { epochs = 100000000000000 }'),
    ),
    Case(
        "run-max-days-flag-beats-the-environment",
        ["run", "bad.toml", "--max-days", "0.5"],
        r"bad.toml: this run would take at least 13.9 h of training \(5.0e\+10 member-steps; cell 'grid0': 100 "
        r"member\(s\) x 500,000,000 steps\), more than --max-days 0.5",
        spec_file(
            'name = "one"\n[train]\nepochs = 50000000\nmodel = "linear"\n[[grid]]\ndataset = "digits"\n'
            'losses = ["mse"]\nseeds = 100\n'
        ),
        env={"LOSSLAB_MAX_DAYS": "inf"},
    ),
    Case("run-max-days-zero", ["run", "tiny.toml", "--max-days", "0"], r"--max-days must be a positive number of days"),
    Case(
        "run-max-days-nan", ["run", "tiny.toml", "--max-days", "nan"], r"--max-days must be a positive number of days"
    ),
    Case(
        "run-max-days-env-not-a-number",
        ["run", "tiny.toml"],
        r"LOSSLAB_MAX_DAYS must be a number of days \(or inf\), got 'forever'",
        env={"LOSSLAB_MAX_DAYS": "forever"},
    ),
    Case(
        "spec-hidden-width-absurd",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': cannot build model 'mlp': .*can't allocate memory",
        spec_file(
            'name = "one"\n[train]\nepochs = 1\nmodel = "mlp"\nhidden = [1000000000000]\n[[grid]]\ndataset = "digits"\n'
            'losses = ["mse"]\nseeds = 1\n'
        ),
    ),
    Case(
        "spec-batch-size-huge",
        ["run", "bad.toml"],
        r"bad.toml: cell 'a': batch_size 1000000000000000000 exceeds the \d+ training examples",
        tiny_with(("batch_size = 50", "batch_size = 1000000000000000000")),
    ),
    # odd paths: devices, pipes and links where files belong
    Case(
        "spec-is-dev-null",
        ["run", "/dev/null"],
        r"spec '/dev/null' is not a regular file \(/dev/null\); give a spec TOML file",
    ),
    Case(
        "spec-is-a-link-to-dev-zero",
        ["run", "zero.toml"],
        r"spec 'zero.toml' is not a regular file \(/dev/zero\); give a spec TOML file",
        lambda root: (root / "zero.toml").symlink_to("/dev/zero"),
    ),
    Case(
        "spec-is-a-named-pipe",
        ["run", "pipe.toml"],
        r"spec 'pipe.toml' is not a regular file",
        lambda root: os.mkfifo(root / "pipe.toml"),
    ),
    Case(
        "spec-with-byte-order-mark",
        ["run", "bad.toml"],
        r"bad.toml: starts with a UTF-8 byte-order mark \(BOM\), which TOML does not allow; save the spec as UTF-8 "
        r"without BOM",
        lambda root: (root / "bad.toml").write_bytes(b"\xef\xbb\xbf" + TINY.encode()),
    ),
    Case(
        "spec-empty-file",
        ["run", "bad.toml"],
        r"bad.toml: grid: a spec needs at least one \[\[grid\]\] table",
        spec_file(""),
    ),
    Case(
        "run-out-is-dev-null",
        ["run", "tiny.toml", "--out", "/dev/null"],
        r"results folder \(--out\) /dev/null is a file",
    ),
    Case(
        "run-lock-file-is-a-link",
        ["run", "tiny.toml", "--out", "RL"],
        r"/ws/RL/.lock is a link, and a run writes only inside .*/ws/RL; delete the link",
        lambda root: (shutil.copytree(root / "R", root / "RL"), (root / "RL" / ".lock").symlink_to(root / "file.txt")),
    ),
    # broken data files
    Case(
        "data-csv-header-only",
        ["run", "bad.toml"],
        r"bad.toml: cell 'grid0': .*/ws/data.csv: no rows, only a header \(a, b, label\); a dataset needs examples",
        table_file("data.csv", b"a,b,label\n"),
    ),
    Case(
        "data-csv-empty-file",
        ["run", "bad.toml"],
        r"/ws/data.csv: cannot read it as csv \(No columns to parse from file\)",
        table_file("data.csv", b""),
    ),
    Case(
        "data-csv-link-to-dev-zero",
        ["run", "bad.toml"],
        r"bad.toml: grid\[0\].dataset: dataset 'file:data.csv': .*/ws/data.csv is a link to /dev/zero, a character "
        r"device, not a data file; give a regular file",
        table_file("data.csv", link_to="/dev/zero"),
    ),
    Case(
        "data-csv-named-pipe",
        ["run", "bad.toml"],
        r"dataset 'file:data.csv': .*/ws/data.csv is a named pipe, not a data file",
        table_file("data.csv", fifo=True),
    ),
    Case(
        "data-csv-is-a-folder",
        ["run", "bad.toml"],
        r"dataset 'file:data.csv': .*/ws/data.csv is a folder, not a data file",
        table_file("data.csv"),
    ),
    Case(
        "data-csv-broken-link",
        ["run", "bad.toml"],
        r"dataset 'file:data.csv': .*/ws/data.csv is a link to /nonexistent/losslab/data.csv, which does not exist; "
        r"check the path",
        table_file("data.csv", link_to="/nonexistent/losslab/data.csv"),
    ),
    Case(
        "data-npz-is-text",
        ["run", "bad.toml"],
        r"/ws/data.npz: not a .npz file \(not a zip archive\); write it with numpy.savez",
        table_file("data.npz", b"x_train,y_train\n1,2\n"),
    ),
    Case(
        "data-parquet-is-garbage",
        ["run", "bad.toml"],
        r"/ws/data.parquet: cannot read it as parquet",
        table_file("data.parquet", bytes(range(256)) * 4),
    ),
    Case(
        "data-csv-binary-garbage",
        ["run", "bad.toml"],
        r"/ws/data.csv: cannot read it as csv \('utf-8' codec can't decode byte 0xff in position 3",
        table_file("data.csv", b"\x00\x01\x02\xff\xfe" * 50),
    ),
    # results folders as others left them
    Case(
        "report-a-thousand-stray-files",
        ["report", "RS"],
        r"RS/cells: 1000 files are not listed in RS/manifest.json \(stray00000.parquet, stray00001.parquet, ...\), "
        r"so they cannot be trusted; move them out of RS/cells",
        stray_files(1_000),
    ),
    Case(
        "report-two-stray-files",
        ["report", "RS"],
        r"RS/cells: 2 files are not listed in RS/manifest.json \(stray00000.parquet, stray00001.parquet\)",
        stray_files(2),
    ),
    Case(
        "report-folder-with-garbage-lock-held",
        ["report", "RI"],
        r"RI: 2 of 3 cells are not finished \(b, c\) \(a run is writing into it: pid and host unknown: its .lock file "
        r"is damaged or not losslab's\)",
        lambda root: (fake_results(root / "RI", cells=CELLS, done=1), hold_garbage_lock(root / "RI")),
    ),
    Case(
        "run-into-folder-with-garbage-lock-held",
        ["run", "tiny.toml", "--out", "R"],
        r"R is in use by another losslab run \(pid and host unknown: its .lock file is damaged or not losslab's\); wait "
        r"for it with --wait",
        lambda root: hold_garbage_lock(root / "R"),
    ),
]

CLI_CASES += HOSTILE_CASES


def no_ray_cluster_in_sight(monkeypatch) -> None:
    """'--ray auto' joins any Ray instance running on this machine (another program's too): hide them."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    services = pytest.importorskip("ray._private.services")
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [], raising=False)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None, raising=False)
    try:
        found = services.get_ray_address_from_environment("auto", None)
    except Exception:
        return  # nothing to join: the case can run
    pytest.skip(f"cannot hide the Ray cluster at {found} running on this machine")


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input_is_one_line_and_changes_nothing(case, ws, capsys, monkeypatch):
    if case.needs == "ray":
        no_ray_cluster_in_sight(monkeypatch)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    argv = [a.replace("<READ_ONLY>", str(read_only_place())) if "<READ_ONLY>" in a else a for a in case.argv]
    if case.setup is not None:
        case.setup(ws)
    before = snapshot(ws.parent.parent)
    capsys.readouterr()
    assert main(argv) == case.code
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.endswith("\n"), err
    ending = {130: "interrupted", 143: r"terminated \(SIGTERM\)"}.get(case.code, "error:")
    assert re.match(rf"losslab( [\w-]+)?: {ending} ", err), err
    assert re.search(case.pattern, err), f"{case.pattern!r} not in {err!r}"
    assert "Traceback" not in out + err
    assert snapshot(ws.parent.parent) == before
    for path in case.absent:
        assert not os.path.lexists(path)


# ---------------------------------------------------------------------------------------------
# API cases: the same checks from Python, with the exception type pinned


def digits_data():
    return load_dataset("digits")


def a_result() -> PopulationResult:
    frame = pd.DataFrame({"member": [0], "loss": ["mse"], "test_accuracy": [0.5]})
    return PopulationResult(frame, None, TrainConfig(epochs=1), [Member("mse")], 0.0)


def hold_lock(root: Path):
    """Lock R from this process through another file descriptor, as a second run would find it."""
    lock = store.acquire_lock(root / "R", log=quiet)
    return lock


def locked_run(root: Path):
    lock = hold_lock(root)
    try:
        run_spec(load_spec("tiny.toml"), root / "R", log=quiet)
    finally:
        lock.release()


@dataclass
class ApiCase:
    id: str
    call: object  # call(workspace)
    error: type
    pattern: str
    setup: object = None


API_CASES = [
    ApiCase(
        "member-seed-2**64",
        lambda root: train_population(digits_data(), [Member("mse", seed=2**64)], TrainConfig(epochs=1)),
        ValueError,
        r"member 0: seed must be an integer in \[0, 9223372036854775807\], got 18446744073709551616",
    ),
    ApiCase(
        "member-seed-negative",
        lambda root: check_population(digits_data(), [Member("mse"), Member("mse", seed=-1)], TrainConfig()),
        ValueError,
        r"member 1: seed must be an integer in \[0, 9223372036854775807\], got -1",
    ),
    ApiCase(
        "member-seed-float",
        lambda root: check_population(digits_data(), [Member("mse", seed=1.5)], TrainConfig()),
        ValueError,
        r"member 0: seed must be an integer .*got 1.5",
    ),
    ApiCase(
        "member-seed-bool",
        lambda root: check_population(digits_data(), [Member("mse", seed=True)], TrainConfig()),
        ValueError,
        r"member 0: seed must be an integer .*got True",
    ),
    ApiCase(
        "member-seed-text",
        lambda root: check_population(digits_data(), [Member("mse", seed="3")], TrainConfig()),
        ValueError,
        r"member 0: seed must be an integer .*got '3'",
    ),
    ApiCase(
        "member-lr-inf",
        lambda root: check_population(digits_data(), [Member("mse", lr=float("inf"))], TrainConfig()),
        ValueError,
        r"member 0: lr must be a positive finite number, got inf",
    ),
    ApiCase(
        "member-lr-nan",
        lambda root: check_population(digits_data(), [Member("mse", lr=float("nan"))], TrainConfig()),
        ValueError,
        r"member 0: lr must be a positive finite number, got nan",
    ),
    ApiCase(
        "binary-loss-on-ten-classes",
        lambda root: check_population(digits_data(), [Member("binary_cross_entropy")], TrainConfig()),
        ValueError,
        r"member 0: loss 'binary_cross_entropy' takes one logit per example and needs a two-class dataset",
    ),
    ApiCase(
        "load-spec-folder",
        lambda root: load_spec(root / "notempty"),
        SpecError,
        r"spec '.*notempty' is a folder; give a spec TOML file or a built-in name",
    ),
    ApiCase(
        "run-spec-out-is-file",
        lambda root: run_spec(load_spec("tiny.toml"), root / "file.txt", log=quiet),
        store.StoreError,
        r"results folder \(--out\) .*file.txt is a file",
    ),
    ApiCase(
        "run-spec-other-size",
        lambda root: run_spec(load_spec("tiny.toml"), root / "R", size="smoke", log=quiet),
        store.StoreError,
        r"R holds spec 'tiny' at size 'full', and this run is spec 'tiny' at size 'smoke'",
    ),
    ApiCase(
        "run-spec-locked",
        locked_run,
        store.LockedError,
        rf"R is in use by another losslab run \(pid {os.getpid()} on .+, started .+\); wait for it with --wait, "
        r"or use another --out",
    ),
    ApiCase(
        "load-results-missing",
        lambda root: store.load_results(root / "missing"),
        store.StoreError,
        r"results folder .*missing does not exist",
    ),
    ApiCase(
        "load-results-incomplete",
        lambda root: store.load_results(root / "RI"),
        store.StoreError,
        r"RI: 1 of 2 cells are not finished \(b\)",
        lambda root: fake_results(root / "RI", cells=["a", "b"], done=1),
    ),
    ApiCase(
        "load-results-bit-flip",
        lambda root: store.load_results(root / "RD"),
        store.StoreError,
        r"RD/cells/b.parquet: damaged",
        copy_of_r("RD", flip_bit),
    ),
    ApiCase(
        "read-results-conflict",
        lambda root: store.read_results([root / "R", root / "R2"]),
        store.StoreError,
        r"R and .*R2 both hold cell 'b' of spec 'tiny'",
        conflicting_copy,
    ),
    ApiCase(
        "read-manifest-broken",
        lambda root: store.read_manifest(root / "RB"),
        store.StoreError,
        r"RB/manifest.json: not valid JSON",
        raw_manifest("RB", b"{"),
    ),
    ApiCase(
        "cell-path-traversal",
        lambda root: store.cell_path(root / "R", "../../x"),
        store.StoreError,
        r"cell id '../../x' is not a safe file name",
    ),
    ApiCase(
        "save-result-bad-name",
        lambda root: store.save_result(a_result(), root / "S", "../x"),
        ValueError,
        r"name must be letters, digits, '-' and '_'.*got '../x'",
    ),
    ApiCase(
        "save-result-into-spec-folder",
        lambda root: store.save_result(a_result(), root / "R", "mine"),
        store.StoreError,
        r"R holds spec 'tiny' at size 'full', and this run is spec 'mine' at size 'api'",
    ),
    ApiCase(
        "ray-cpus-zero",
        lambda root: RayCluster(cpus_per_cell=0),
        ValueError,
        r"cpus_per_cell must be a positive number, got 0",
    ),
    ApiCase(
        "ray-cpus-inf",
        lambda root: RayCluster(cpus_per_cell=float("inf")),
        ValueError,
        r"cpus_per_cell must be a positive number, got inf",
    ),
    ApiCase(
        "ray-address-empty",
        lambda root: RayCluster(address=" "),
        ValueError,
        r"address must be 'auto', ray://host:port or host:port, got ' '",
    ),
    ApiCase(
        "write-report-out-is-file",
        lambda root: __import__("losslab.report.html", fromlist=["write_report"]).write_report(
            [root / "R"], root / "file.txt"
        ),
        store.StoreError,
        r"report folder \(--out\) .*file.txt is a file",
    ),
    ApiCase(
        "load-spec-plugin-missing",
        lambda root: load_spec("bad.toml"),
        SpecError,
        r"bad.toml: plugins\[0\] \('nope.py'\): plugin file 'nope.py' does not exist",
        with_plugin("", plugins='["nope.py"]'),
    ),
    ApiCase(
        "load-dataset-unknown",
        lambda root: load_dataset("cifar"),
        ValueError,
        r"unknown dataset 'cifar'; valid datasets:",
    ),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c.id for c in API_CASES])
def test_api_bad_input_raises_and_changes_nothing(case, ws):
    if case.setup is not None:
        case.setup(ws)
    before = snapshot(ws.parent.parent)
    with pytest.raises(case.error) as info:
        case.call(ws)
    message = str(info.value)
    assert "\n" not in message and re.search(case.pattern, message), message
    assert snapshot(ws.parent.parent) == before


def test_the_suite_is_as_large_as_promised():
    assert len(CLI_CASES) + len(API_CASES) >= 60


# ---------------------------------------------------------------------------------------------
# faults: kill, damage, race, write-protect


HOOKED_RUN = textwrap.dedent(
    """
    import sys, time, pathlib
    from losslab.experiments import runner
    from losslab.cli import main

    marker, go, stop_at = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    real = runner.run_cell

    def hooked(cell, dataset, progress=None):
        if cell.id == stop_at:  # tell the test where we are, then wait for its go (or its SIGKILL)
            marker.write_text("in " + cell.id)
            while not go.exists():
                time.sleep(0.02)
        return real(cell, dataset, progress)

    runner.run_cell = hooked
    sys.exit(main(sys.argv[4:]))
    """
)


def start_hooked_run(root: Path, stop_at: str, out: str = "R") -> tuple[subprocess.Popen, Path, Path]:
    marker, go = root / f"marker-{stop_at}", root / f"go-{stop_at}"
    process = subprocess.Popen(
        [sys.executable, "-c", HOOKED_RUN, str(marker), str(go), stop_at, "run", "tiny.toml", "--out", out],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the hooked run ended early: {process.communicate()}")
        assert time.monotonic() < deadline, "the hooked run never reached its cell"
        time.sleep(0.02)
    return process, marker, go


def cell_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "cells").glob("*.parquet"))}


def test_sigkill_mid_cell_then_resume_loses_nothing_and_repeats_nothing(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    process, _, _ = start_hooked_run(tmp_path, stop_at="b")  # cell a is finished, b is in progress
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    out = tmp_path / "R"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["status"] for e in manifest["cells"]] == ["done", "pending", "pending"]
    assert json.loads((out / ".lock").read_text())["pid"] == process.pid  # the killed run's lock is left behind
    kept = cell_bytes(out)
    assert list(kept) == ["a.parquet"]

    trained, lines = [], []
    real = runner.run_cell
    monkeypatch.setattr(
        runner, "run_cell", lambda cell, data, progress=None: (trained.append(cell.id), real(cell, data))[1]
    )
    summary = run_spec(load_spec("tiny.toml"), out, log=lines.append)
    assert trained == ["b", "c"] and summary.skipped == ["a"]  # the killed cell is retrained once, nothing else
    assert any(f"taking over the stale lock {out / '.lock'} of pid {process.pid}" in line for line in lines), lines
    assert cell_bytes(out)["a.parquet"] == kept["a.parquet"]  # the finished cell keeps its bytes
    manifest, rows = store.load_results(out)
    assert rows.groupby(["cell", "member", "step"]).size().max() == 1  # no row counted twice
    assert sorted(rows["cell"].unique()) == CELLS and not (out / ".lock").exists()


@pytest.mark.parametrize("damage", [truncate, flip_bit], ids=["truncated", "bit-flipped"])
def test_damaged_cell_is_refused_by_report_and_retrained_by_resume(damage, finished, tmp_path, monkeypatch, capsys):
    out = tmp_path / "R"
    shutil.copytree(finished, out)
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    good = cell_bytes(out)
    damage(out / "cells" / "b.parquet")
    assert main(["report", "R", "--out", "rep"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "R/cells/b.parquet: damaged" in err and "to retrain it" in err
    assert not (tmp_path / "rep").exists()
    assert main(["run", "tiny.toml", "--out", "R"]) == 0
    printed = capsys.readouterr().out
    assert f"b: {out}/cells/b.parquet is damaged" in printed and "retraining it" in printed
    assert "[1/3] a: already done, skipped" in printed and "[3/3] c: already done, skipped" in printed
    repaired = cell_bytes(out)
    assert repaired["a.parquet"] == good["a.parquet"] and repaired["c.parquet"] == good["c.parquet"]
    _, rows = store.load_results(out)
    assert len(rows[rows.cell == "b"]) == len(pd.read_parquet(io_bytes(good["b.parquet"])))


def io_bytes(data: bytes):
    import io

    return io.BytesIO(data)


def test_two_runs_into_one_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    process, _, go = start_hooked_run(tmp_path, stop_at="a")  # holds the lock, waiting in cell a
    try:
        started = time.monotonic()
        assert main(["run", "tiny.toml", "--out", "R"]) == 2
        err = capsys.readouterr().err
        assert time.monotonic() - started < 30  # at once: no dataset is loaded, nothing trained
        assert err.count("\n") == 1
        assert re.search(
            rf"R is in use by another losslab run \(pid {process.pid} on .+, started .+\); wait for it with --wait", err
        ), err

        waited: dict = {}
        thread = threading.Thread(target=lambda: waited.update(code=main(["run", "tiny.toml", "--out", "R", "--wait"])))
        thread.start()
        printed, deadline = "", time.monotonic() + 120
        while "waiting for the run writing into" not in printed:  # it checks everything, then waits for the lock
            assert thread.is_alive() and time.monotonic() < deadline, printed
            time.sleep(0.05)
            printed += capsys.readouterr().out
        assert f"waiting for the run writing into {tmp_path / 'R'} (pid {process.pid} on " in printed
        go.write_text("go")
        out, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
        thread.join(timeout=120)
        assert waited["code"] == 0
        printed += capsys.readouterr().out
        assert "0 cell(s) trained, 3 already done" in printed  # the first run did everything
    finally:
        go.write_text("go")
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (tmp_path / "R" / ".lock").exists()
    store.load_results(tmp_path / "R")


def test_ctrl_c_is_exit_130_in_one_line_and_keeps_finished_cells(tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    real = runner.run_cell

    def interrupted(cell, dataset, progress=None):
        if cell.id == "b":
            raise KeyboardInterrupt
        return real(cell, dataset, progress)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    assert main(["run", "tiny.toml", "--out", "R"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted; finished cells are saved" in err
    assert [c.state for c in store.list_cells(tmp_path / "R")] == ["done", "pending", "pending"]
    assert not (tmp_path / "R" / ".lock").exists()


def test_interrupt_before_the_first_cell_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(TINY)

    def interrupted(cell, dataset, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_spec(load_spec(tmp_path / "tiny.toml"), tmp_path / "new" / "R", log=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_a_crash_between_cell_file_and_manifest_never_shows_the_cell(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(TINY)
    out = tmp_path / "R"
    real_write = store_write.atomic_write
    writes = []

    def dies_on_second_manifest_update(path, data):
        writes.append(Path(path).name)
        if Path(path).name == "manifest.json" and writes.count("b.parquet") == 1:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, data)

    monkeypatch.setattr(store_write, "atomic_write", dies_on_second_manifest_update)
    with pytest.raises(OSError):
        run_spec(load_spec(tmp_path / "tiny.toml"), out, log=quiet)
    monkeypatch.setattr(store_write, "atomic_write", real_write)
    assert (out / "cells" / "b.parquet").exists()  # written, but not listed: not part of the results
    assert [c.state for c in store.list_cells(out)] == ["done", "pending", "pending"]
    with pytest.raises(store.StoreError, match=r"2 of 3 cells are not finished"):
        store.load_results(out)
    summary = run_spec(load_spec(tmp_path / "tiny.toml"), out, log=quiet)
    assert summary.trained == ["b", "c"]
    store.load_results(out)


NOBODY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from losslab.cli import main
    import contextlib, io
    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        results.append([code, err.getvalue()])
    print(json.dumps(results))
    """
)


def as_unprivileged(root: Path) -> list[str] | None:
    """How to run a command that cannot write into ``root``: as 'nobody' when we are root (chmod does
    not stop root), else as ourselves after making ``root`` read-only. None if neither is possible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    try:
        import pwd

        nobody = pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    return [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]


def test_read_only_results_folder(finished):
    """run, report and verify --json into folders this user cannot write: one line each, nothing changed."""
    base = Path(tempfile.mkdtemp(prefix="losslab-ro-"))
    mpl = Path(tempfile.mkdtemp(prefix="losslab-mpl-"))  # matplotlib's cache, writable by whoever runs
    try:
        os.chmod(base, 0o755)  # readable by the unprivileged user, writable only by its owner
        shutil.copytree(finished, base / "R")
        (base / "tiny.toml").write_text(TINY)
        prefix = as_unprivileged(base)
        if prefix is None:
            pytest.skip("running as root without setpriv and a 'nobody' user: no way to get a read-only folder")
        if not prefix:
            for path in [base, *base.rglob("*")]:
                os.chmod(path, 0o555 if path.is_dir() else 0o444)
        commands = [
            ["run", "tiny.toml", "--out", "R"],
            ["report", "R", "--out", "R/report"],
            ["verify", "--trials", "1", "--json", "R/ledger.json"],
        ]
        before = snapshot(base)
        env = {**os.environ, "HOME": str(base), "MPLCONFIGDIR": str(mpl)}
        os.chmod(mpl, 0o777)
        done = subprocess.run(
            [*prefix, sys.executable, "-c", NOBODY_SCRIPT, json.dumps(commands)],
            cwd=base,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(done.stdout.strip().splitlines()[-1])
        patterns = [
            r"losslab run: error: cannot write into results folder /.*/R \(Permission denied\); choose a writable --out",
            r"losslab report: error: cannot create report folder R/report \(Permission denied\); choose a writable --out",
            r"losslab: error: --json R/ledger.json: cannot write \(Permission denied\); give a writable path",
        ]
        for (code, err), pattern in zip(results, patterns):
            assert code == 2 and err.count("\n") == 1 and re.match(pattern, err), err
        assert snapshot(base) == before
    finally:
        for path in [base, *base.rglob("*")]:
            with __import__("contextlib").suppress(OSError):
                os.chmod(path, 0o755)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(mpl, ignore_errors=True)


def test_the_largest_seed_trains():
    """The seed range the checks promise is the range that works: 2**63 - 1 trains like any seed."""
    data = load_dataset("digits", classes=[0, 1])
    members = [Member("mse", seed=0), Member("mse", seed=2**63 - 1)]
    result = train_population(data, members, TrainConfig(model="linear", epochs=1, batch_size=50), progress=False)
    assert sorted(result.frame.seed.unique()) == [0, 2**63 - 1]


# ---------------------------------------------------------------------------------------------
# issue #21: what contains a plugin, what SIGTERM and a full disk leave, what a run says as it goes


def test_a_plugins_prints_go_to_stderr_and_check_loss_json_stays_clean(tmp_path, monkeypatch, capfd, clean_registries):
    (tmp_path / "chatty.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            import torch
            import losslab

            print("imported!")                       # Python's print
            os.write(1, b"straight to descriptor 1\\n")  # and C's

            def chatty(z, y):
                print("called!")
                return -(y * torch.log_softmax(z, dim=-1)).sum(-1)

            losslab.register_loss("chatty", values=chatty)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check-loss", "chatty", "--plugin", "chatty.py", "--json"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["loss"] == "chatty"  # stdout is the JSON and nothing else
    assert "imported!" in err and "straight to descriptor 1" in err and "called!" in err


def test_a_plugins_chdir_does_not_move_a_relative_out(tmp_path, monkeypatch, capsys, clean_registries):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "mover.py").write_text(f"import os\n\nos.chdir({str(elsewhere)!r})\n")
    (tmp_path / "s.toml").write_text(
        'plugins = ["mover.py"]\n[train]\nepochs = 1\nbatch_size = 20\nmodel = "linear"\n[[grid]]\ndataset = "iris"\n'
        'losses = ["mse"]\nseeds = 1\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "s.toml", "--out", "R"]) == 0
    assert os.getcwd() == str(tmp_path)  # the plugin's chdir is undone once it has imported
    store.load_results(tmp_path / "R")
    assert list(elsewhere.iterdir()) == []


def test_a_plugin_cannot_take_ctrl_c_or_sigterm_away(tmp_path, clean_registries):
    from losslab.plugins import import_plugin

    (tmp_path / "deaf.py").write_text(
        "import signal\n\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    )
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    import_plugin(str(tmp_path / "deaf.py"))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


HELPER = "SCALE = 0.5\n"
USES_HELPER = """
import torch
import losslab
from helpers import SCALE          # helpers.py, beside this file
from shapes.square import square   # shapes/square.py, a package beside it

def half_mse(z, y):
    return SCALE * square(torch.softmax(z, dim=-1) - y).sum(-1)

losslab.register_loss("half_mse", values=half_mse)
"""


def plugin_with_helpers(root: Path) -> Path:
    (root / "code" / "shapes").mkdir(parents=True)
    (root / "code" / "helpers.py").write_text(HELPER)
    (root / "code" / "shapes" / "__init__.py").write_text("")
    (root / "code" / "shapes" / "square.py").write_text("def square(x):\n    return x * x\n")
    (root / "code" / "mine.py").write_text(USES_HELPER)
    spec = root / "h.toml"
    spec.write_text(
        'plugins = ["code/mine.py"]\n[train]\nepochs = 1\nbatch_size = 20\nmodel = "linear"\n[[grid]]\n'
        'dataset = "iris"\nlosses = ["half_mse"]\nseeds = 1\n'
    )
    return spec


def test_a_plugin_imports_the_modules_beside_it_and_they_count_in_the_fingerprint(
    tmp_path, monkeypatch, clean_registries
):
    spec = plugin_with_helpers(tmp_path)
    monkeypatch.chdir(tmp_path / "code" / "shapes")  # the current folder does not matter, as for a script
    before = list(sys.path)
    run_spec(load_spec(spec), tmp_path / "R", log=quiet)
    assert sys.path == before  # the plugin's folder is on the path only while it imports
    manifest, rows = store.load_results(tmp_path / "R")
    helpers = manifest["plugins"][0]["helpers"]
    assert [(h["module"], h["path"]) for h in helpers] == [
        ("helpers", "helpers.py"),
        ("shapes", "shapes/__init__.py"),
        ("shapes.square", "shapes/square.py"),
    ]
    assert set(rows["loss"]) == {"half_mse"}
    # Editing a helper (not the plugin) retrains the cell, as editing the plugin does.
    (tmp_path / "code" / "helpers.py").write_text("SCALE = 0.25\n")
    for name in ("helpers", "shapes", "shapes.square"):
        sys.modules.pop(name, None)
    lines = []
    summary = run_spec(load_spec(spec), tmp_path / "R", log=lines.append)
    assert summary.trained == ["grid0"] and any("its settings or data changed" in line for line in lines)
    for name in ("helpers", "shapes", "shapes.square"):
        sys.modules.pop(name, None)


def test_sigterm_is_handled_as_ctrl_c_the_lock_released_and_the_rerun_resumes(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    process, _, _ = start_hooked_run(tmp_path, stop_at="b")  # cell a finished, b in progress
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err == "losslab run: terminated (SIGTERM); finished cells are saved, rerun the same command to resume\n"
    out_dir = tmp_path / "R"
    assert not (out_dir / ".lock").exists()  # released, not left for the next run to "take over"
    assert [c.state for c in store.list_cells(out_dir)] == ["done", "pending", "pending"]
    assert not list((out_dir / "cells").glob(".*"))  # no half-written file
    lines = []
    summary = run_spec(load_spec("tiny.toml"), out_dir, log=lines.append)
    assert summary.skipped == ["a"] and summary.trained == ["b", "c"]
    assert not any("taking over" in line for line in lines)


FULL_DISK = textwrap.dedent(
    """
    import resource, sys
    from losslab.cli import main

    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))  # as ulimit -f does
    sys.exit(main(sys.argv[2:]))
    """
)


def test_a_full_disk_names_the_file_and_says_to_free_space_and_the_rerun_resumes(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "6000", "run", "tiny.toml", "--out", "R"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert re.match(
        rf"losslab run: error: cannot write {tmp_path}/R/\S+: File too large; the disk is full or a quota or "
        r"file-size limit \(ulimit -f\) was reached: free some space or raise the limit, then rerun the same command "
        r"to resume \(finished cells are saved\)$",
        done.stderr,
    ), done.stderr
    leftovers = [p for p in tmp_path.rglob(".*") if ".tmp-" in p.name]
    assert leftovers == [] and not (tmp_path / "R" / ".lock").exists()
    assert main(["run", "tiny.toml", "--out", "R"]) == 0  # with space again, the same command finishes the run
    store.load_results(tmp_path / "R")


def test_atomic_write_names_the_file_when_the_disk_says_no(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(28, "No space left on device")  # what write() raises: no file name

    monkeypatch.setattr(builtins, "open", lambda path, mode="r", *a, **k: Full(real_open(path, mode, *a, **k)))
    with pytest.raises(OSError) as info:
        store.atomic_write(tmp_path / "x.json", b"{}")
    monkeypatch.setattr(builtins, "open", real_open)
    assert info.value.errno == 28 and info.value.filename == str(tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


def test_ten_thousand_stray_files_are_one_warning(tmp_path, monkeypatch, finished):
    shutil.copytree(finished, tmp_path / "R")
    for i in range(10_000):
        (tmp_path / "R" / "cells" / f"stray{i:05d}.parquet").write_bytes(b"")
    (tmp_path / "tiny.toml").write_text(TINY)
    lines = []
    run_spec(load_spec(tmp_path / "tiny.toml"), tmp_path / "R", log=lines.append)
    warnings = [line for line in lines if "not a cell of this run" in line]
    assert warnings == [
        f"warning: 10000 files in {tmp_path / 'R' / 'cells'} are not a cell of this run (the first: "
        "stray00000.parquet); 'losslab report' will refuse the folder until they are moved out"
    ]


DIVERGING = """
name = "nan"
plugins = ["naive.py"]
[train]
epochs = 2
batch_size = 20
model = "linear"
[[grid]]
label = "fast"
dataset = "iris"
model = "mlp"
train = { hidden = [16] }
losses = ["mse", "cross_entropy"]
lrs = [0.1, 1000000.0]
seeds = 2
[[grid]]
label = "naive"
dataset = "iris"
losses = ["naive_ce"]
init_scales = [1, 1000]
seeds = 1
"""

NAIVE_CE = """
import torch
import losslab

def naive_ce(z, y):
    return -(y * torch.log(torch.softmax(z, dim=-1))).sum(-1)   # log(softmax): -inf for a confident mistake

losslab.register_loss("naive_ce", values=naive_ce)
"""


def test_diverged_members_are_counted_and_named_in_one_line_per_cell(tmp_path, capsys, monkeypatch, clean_registries):
    (tmp_path / "naive.py").write_text(NAIVE_CE)
    (tmp_path / "nan.toml").write_text(DIVERGING)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "nan.toml", "--out", "R"]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, out  # one line per cell, not one per member
    fast, naive = warnings
    assert re.match(r"warning: \[1/2\] fast: [1-4] of 8 members diverged \(logits no longer finite\): ", fast), fast
    assert "lr=1e+06" in fast and "lr=0.1" not in fast and "lower those learning rates or initial scales" in fast
    assert re.match(
        r"warning: \[2/2\] naive: 1 of 2 members diverged .*naive_ce lr=0.1 init_scale=1000 \(seed 0\)", naive
    )
    assert re.search(r"member\(s\) diverged in 2 cell\(s\) \(fast, naive\): see the warnings above$", out.strip())
    manifest, rows = store.load_results(tmp_path / "R")
    counts = {c["id"]: c["diverged"] for c in manifest["cells"]}
    assert counts["naive"] == 1 and 1 <= counts["fast"] <= 4
    final = rows[rows.step == rows.step.max()]
    assert final.groupby("cell").diverged.sum().to_dict() == counts


def test_a_long_cell_says_it_is_still_training(tmp_path, monkeypatch):
    from losslab.experiments import progress

    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.05)
    real = runner.run_cell
    monkeypatch.setattr(runner, "run_cell", lambda *a, **k: (time.sleep(0.3), real(*a, **k))[1])
    lines = []
    run_spec(load_spec(tmp_path / "tiny.toml"), tmp_path / "R", size="smoke", log=lines.append)
    assert any(re.fullmatch(r"\[1/3\] a: still training, 0 s so far", line) for line in lines), lines


def test_a_long_run_says_its_estimate_and_max_days_inf_lets_it_start(tmp_path, monkeypatch):
    (tmp_path / "long.toml").write_text(
        'name = "long"\n[train]\nepochs = 10000000000\nmodel = "linear"\n[[grid]]\ndataset = "digits"\n'
        'losses = ["mse"]\nseeds = 100\n'
    )
    spec = load_spec(tmp_path / "long.toml")
    with pytest.raises(SpecError, match=r"at least 116 days of training .* more than --max-days 30"):
        run_spec(spec, tmp_path / "R", log=quiet)
    assert not (tmp_path / "R").exists()

    def stop(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_cell", stop)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        run_spec(spec, tmp_path / "R", log=lines.append, max_days=float("inf"))
    assert (
        "estimated: at least 116 days of training (1.0e+13 member-steps; cell 'grid0': 100 member(s) x "
        in "\n".join(lines)
    )


def test_interrupted_commands_say_what_they_kept(tmp_path, monkeypatch, capsys, finished):
    import losslab.cli as cli
    import losslab.report.html as html
    from losslab.analysis import check

    monkeypatch.chdir(tmp_path)

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    cases = [
        (html, "write_report", ["report", str(finished)], "losslab report: interrupted; rerun the same command"),
        (check, "check_loss", ["check-loss", "mse"], "losslab check-loss: interrupted; nothing was written"),
        (cli, "build_parser", ["plot"], "losslab: interrupted; nothing was written"),  # Ctrl-C during start-up
    ]
    for module, name, argv, expected in cases:
        with monkeypatch.context() as patch:
            patch.setattr(module, name, interrupt)
            assert main(argv) == 130
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(expected) and "cells" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_garbage_lock_nobody_holds_is_taken_over_and_said_so(tmp_path, finished):
    shutil.copytree(finished, tmp_path / "R")
    (tmp_path / "R" / ".lock").write_bytes(b"\x00garbage, not JSON\xff")
    (tmp_path / "tiny.toml").write_text(TINY)
    lines = []
    summary = run_spec(load_spec(tmp_path / "tiny.toml"), tmp_path / "R", log=lines.append)
    assert summary.skipped == CELLS and not (tmp_path / "R" / ".lock").exists()
    assert f"taking over the lock {tmp_path / 'R' / '.lock'}, which nobody holds and whose record is damaged" in lines
    assert not any("None" in line for line in lines)


def test_suite_has_grown_by_the_issue_21_cases():
    assert len(HOSTILE_CASES) >= 40
