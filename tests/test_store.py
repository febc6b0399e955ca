"""The results store: what a folder holds, what readers verify, the lock, and the report's de-duplication."""

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from test_bad_inputs import TINY, fake_results, quiet

from losslab.cli import main
from losslab.experiments import store
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.experiments.store import lock as store_lock


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    (root / "tiny.toml").write_text(TINY)
    with contextlib.redirect_stdout(io.StringIO()):  # through the command line, which records its command
        assert main(["run", str(root / "tiny.toml"), "--out", str(root / "R")]) == 0
    return root / "R"


def test_manifest_lists_every_cell_with_its_fingerprint_rows_and_checksum(finished):
    manifest = store.read_manifest(finished)
    spec_cells = load_spec(finished.parent / "tiny.toml").cells()
    assert manifest["format"] == "losslab-results" and manifest["version"] == store.VERSION
    assert (manifest["spec"], manifest["size"]) == ("tiny", "full")
    assert [e["id"] for e in manifest["cells"]] == [c.id for c in spec_cells]
    for entry, cell in zip(manifest["cells"], spec_cells):
        data = (finished / entry["file"]).read_bytes()
        assert entry["status"] == "done" and entry["fingerprint"] == cell.fingerprint()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["rows"] == len(pd.read_parquet(finished / entry["file"]))
        assert entry["config"]["members"][0]["loss"] == cell.members[0].loss
    assert sorted(p.name for p in finished.iterdir()) == ["cells", "manifest.json"]  # the lock is gone
    assert manifest["command"] == f"losslab run {finished.parent / 'tiny.toml'}"


def test_the_command_line_records_its_command_and_python_records_none(tmp_path):
    """The store never builds a command: a run from Python records none, and the messages say which run to repeat."""
    (tmp_path / "tiny.toml").write_text(TINY)
    run_spec(load_spec(tmp_path / "tiny.toml"), tmp_path / "P", log=quiet)
    manifest = store.read_manifest(tmp_path / "P")
    assert manifest["command"] == "" and store.recorded_command(manifest) is None
    assert store.resume_command(manifest, tmp_path / "P") is None
    header = {"spec": "tiny", "size": "full", "spec_data": {"grid": []}}
    with store.open_run(tmp_path / "Q", header, [{"id": "a", "fingerprint": "f"}], log=quiet):
        pass  # interrupted before any cell finished: the folder keeps its pending manifest
    with pytest.raises(store.StoreError, match=r"finish them by running spec 'tiny' at size 'full' into .*Q again$"):
        store.load_results(tmp_path / "Q")


def test_list_columns_and_every_dtype_round_trip(tmp_path):
    """Rows may hold the trainer's list columns (bootstrap replicates, reliability bins), None elsewhere."""
    frame = pd.DataFrame(
        {
            "cell": ["x"] * 4,
            "member": [0, 0, 1, 1],
            "loss": ["mse", "mse", "cross_entropy", "cross_entropy"],
            "test_nll": [0.5, float("nan"), 0.25, 1e-300],
            "temperature": [float("nan")] * 4,
            "test_nll_boot": [None, [0.1, 0.2, 0.3], None, [1.5, float("nan"), -2.5e-98]],
            "rel_count": [None, [3.0, 0.0, 7.0], None, [1.0, 2.0, 3.0]],
        }
    )
    header = {"spec": "lists", "size": "full", "spec_data": {"grid": []}, "command": "losslab run lists"}
    with store.open_run(tmp_path / "R", header, [{"id": "x", "fingerprint": "f"}], log=quiet) as run:
        run.record("x", frame, seconds=1.0)
    _, rows = store.load_results(tmp_path / "R")
    back = rows.drop(columns="experiment")
    assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
    for column in ("member", "test_nll", "temperature"):
        np.testing.assert_array_equal(back[column].to_numpy(), frame[column].to_numpy())
    assert list(back["loss"]) == list(frame["loss"])
    for column in ("test_nll_boot", "rel_count"):
        for got, want in zip(back[column], frame[column]):
            if want is None:
                assert got is None
            else:
                assert isinstance(got, list) and len(got) == len(want)
                assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want))


def test_report_counts_a_cell_found_twice_once(finished, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    _, rows = store.load_results(finished)
    for folders in ([finished, finished], [finished, copy], [copy, finished, copy]):
        combined = store.read_results(folders)
        manifest, merged = combined.results["tiny"]
        assert len(merged) == len(rows) and combined.duplicates == 3 * (len(folders) - 1)
        assert [contributed for _, _, contributed in combined.sources] == [3] + [0] * (len(folders) - 1)

    from losslab.report.html import _read_results

    _, manifests = _read_results([finished, copy])
    assert len(manifests) == 1 and manifests[0]["cells"] == 3  # the copy adds no provenance row


def test_report_merges_different_cells_of_one_spec(tmp_path):
    fake_results(tmp_path / "A", cells=["a"])
    fake_results(tmp_path / "B", cells=["b"])
    combined = store.read_results([tmp_path / "A", tmp_path / "B"])
    assert sorted(combined.results["tiny"][1]["cell"]) == ["a", "b"] and combined.duplicates == 0


def test_list_cells_reports_each_state(finished, tmp_path):
    out = tmp_path / "R"
    shutil.copytree(finished, out)
    (out / "cells" / "a.parquet").unlink()
    (out / "cells" / "b.parquet").write_bytes(b"PAR1 not really")
    (out / "cells" / "extra.parquet").write_bytes(b"")
    (out / "cells" / ".a.parquet.tmp-123").write_bytes(b"")  # a killed run's temporary: never read
    states = {c.id: c.state for c in store.list_cells(out)}
    assert states == {"a": "missing", "b": "damaged", "c": "done", "extra": "unlisted"}
    fake_results(tmp_path / "P", cells=["a", "b"], done=1)
    assert [c.state for c in store.list_cells(tmp_path / "P")] == ["done", "pending"]
    manifest, rows = store.load_results(tmp_path / "P", complete=False)  # what is done so far, verified
    assert list(rows["cell"]) == ["a"]


def test_changed_spec_retrains_changed_cells_and_removes_dropped_ones(finished, tmp_path):
    out = tmp_path / "R"
    shutil.copytree(finished, out)
    (tmp_path / "tiny.toml").write_text(
        TINY.replace("seeds = [3, 4]", "seeds = [3, 5]").replace('[[grid]]\nlabel = "c"', '[[grid]]\nlabel = "d"')
    )
    lines = []
    summary = run_spec(load_spec(tmp_path / "tiny.toml"), out, log=lines.append)
    assert summary.skipped == ["a"] and summary.trained == ["b", "d"]
    assert "b: its settings or data changed since it was trained; retraining it" in lines
    assert "c: no longer a cell of this spec; removed its results" in lines
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["a.parquet", "b.parquet", "d.parquet"]
    store.verify(out)


def test_save_result_writes_a_store_folder_and_replaces_its_own_cell(tmp_path):
    from losslab.train import Member, PopulationResult, TrainConfig

    def result(accuracy):
        frame = pd.DataFrame({"member": [0], "loss": ["mse"], "test_accuracy": [accuracy]})
        return PopulationResult(frame, None, TrainConfig(epochs=1), [Member("mse")], 0.5)

    path = store.save_result(result(0.5), tmp_path / "S", "mine")
    assert path == tmp_path / "S" / "cells" / "mine.parquet"
    store.save_result(result(0.75), tmp_path / "S", "mine")
    manifest, rows = store.load_results(tmp_path / "S")
    assert list(rows["test_accuracy"]) == [0.75] and manifest["size"] == "api"
    assert manifest["cells"][0]["config"]["members"] == [
        {"loss": "mse", "seed": 0, "lr": 0.1, "init_scale": 1.0, "loss_params": {}}
    ]


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    store.atomic_write(target, b"old")

    def fails(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fails)
    with pytest.raises(OSError):
        store.atomic_write(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


# ---------------------------------------------------------------------------------------------
# the lock


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    lock = store.acquire_lock(tmp_path, log=quiet)
    info = json.loads((tmp_path / ".lock").read_text())
    assert info["pid"] == os.getpid() and info["host"]
    assert store.lock_holder(tmp_path)["pid"] == os.getpid()
    with pytest.raises(store.LockedError, match=rf"in use by another losslab run \(pid {os.getpid()} on "):
        store.acquire_lock(tmp_path, log=quiet)
    lock.release()
    assert not (tmp_path / ".lock").exists() and store.lock_holder(tmp_path) is None
    store.acquire_lock(tmp_path, log=quiet).release()


def test_wait_takes_the_lock_when_its_holder_releases_it(tmp_path):
    first = store.acquire_lock(tmp_path, log=quiet)
    lines, got = [], []
    thread = threading.Thread(target=lambda: got.append(store.acquire_lock(tmp_path, wait=True, log=lines.append)))
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and lines and lines[0].startswith(f"waiting for the run writing into {tmp_path}")
    first.release()
    thread.join(timeout=30)
    assert got and json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    got[0].release()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"}))
    assert store.lock_holder(tmp_path) is None
    lines = []
    lock = store.acquire_lock(tmp_path, log=lines.append)
    assert lines == [
        f"taking over the stale lock {tmp_path / '.lock'} of pid {pid} on {socket.gethostname()}, "
        "started then, which is no longer running"
    ]
    lock.release()


def test_lock_of_a_live_process_on_a_filesystem_without_locks_is_respected(tmp_path, monkeypatch):
    """Where flock is unavailable, a live pid in the lock file still guards the folder."""
    monkeypatch.setattr(store_lock, "_flock", lambda fd, shared=False: None)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "now"}
        (tmp_path / ".lock").write_text(json.dumps(info))
        with pytest.raises(store.LockedError, match=rf"pid {sleeper.pid} on "):
            store.acquire_lock(tmp_path, log=quiet)
    finally:
        sleeper.kill()
        sleeper.wait()
    store.acquire_lock(tmp_path, log=quiet).release()  # now dead: taken over


def test_lock_left_on_another_host_is_not_taken_over(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "then"}))
    with pytest.raises(
        store.LockedError, match=r"pid 1 on elsewhere.example.*if that run is no longer running, delete"
    ):
        store.acquire_lock(tmp_path, log=quiet)


def test_a_data_file_edited_in_place_makes_its_cells_train_again(tmp_path):
    """A file: dataset's contents are part of each cell's fingerprint, so resume never keeps stale cells."""

    def save(seed):
        rng = np.random.default_rng(seed)
        y_train, y_test = np.arange(120) % 2, np.arange(40) % 2
        np.savez(
            tmp_path / "data.npz",
            x_train=y_train[:, None] * 2.0 + rng.normal(0, 1, (120, 3)),
            y_train=y_train,
            x_test=y_test[:, None] * 2.0 + rng.normal(0, 1, (40, 3)),
            y_test=y_test,
        )

    spec_text = """
    name = "onfile"
    [train]
    epochs = 1
    batch_size = 20
    model = "linear"
    [[grid]]
    label = "f"
    dataset = "file:data.npz"
    losses = ["cross_entropy"]
    seeds = 1
    """
    (tmp_path / "onfile.toml").write_text("\n".join(line.strip() for line in spec_text.splitlines()))
    save(0)
    run_spec(load_spec(tmp_path / "onfile.toml"), tmp_path / "R", log=quiet)
    again = run_spec(load_spec(tmp_path / "onfile.toml"), tmp_path / "R", log=quiet)
    assert again.skipped == ["f"]
    save(1)
    lines = []
    edited = run_spec(load_spec(tmp_path / "onfile.toml"), tmp_path / "R", log=lines.append)
    assert edited.trained == ["f"] and any("settings or data changed" in line for line in lines)


def test_a_readers_brief_look_at_a_stale_lock_does_not_make_a_run_fail(tmp_path):
    # lock_holder (report, check_target) takes a shared lock on .lock for an instant; a run starting in that
    # instant, over a lock left by a dead run, must take the lock over rather than call the folder busy.
    import fcntl

    (tmp_path / ".lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    fd = os.open(tmp_path / ".lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    threading.Timer(0.2, lambda: (fcntl.flock(fd, fcntl.LOCK_UN), os.close(fd))).start()
    lines = []
    lock = store.acquire_lock(tmp_path, log=lines.append)
    lock.release()
    assert lines and "taking over the stale lock" in lines[0]
