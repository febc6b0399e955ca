"""Ray as users run it: a real two-node cluster (``ray start --head``, ``ray start --address``) on this machine.

The cluster is started once for the module: a head and a second node of one CPU each, in their own process
groups, with token authentication (Ray's default) and fast health checks so that a killed node is noticed in
a second or two, not a minute. ``losslab run SPEC --ray HOST:PORT`` then runs as a user's shell would run it,
as a separate process, and the tests kill what a cluster loses: the second node in the middle of a run (its
cell is run again on the head by Ray's task retries), the driver (the rerun resumes), and ask for more CPUs per
cell than any node has (one line at once). Every run's rows equal a local run's.

The spec trains in float64, and the rows are compared to pandas' default tolerance: the driver fixes each cell's
plan for a Ray task of one CPU (``--cpus-per-cell``), and a local run on two cores may choose another (blocks,
threads), which rounds float32 differently in the last bits; in float64 every plan agrees to ~1e-12. Bit-identical
rows, local and on Ray, for one plan: ``tests/test_cluster.py``.

Skips without Ray or where Ray's processes cannot start. About 60-90 s on two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.experiments.store import load_results

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SPEC = """
name = "spread"
[train]
epochs = 60
batch_size = 50
model = "linear"
dtype = "float64"
[[grid]]
label = "a"
dataset = "digits"
losses = ["cross_entropy", "mse"]
seeds = [0, 1]
[[grid]]
label = "b"
dataset = "digits"
losses = ["cross_entropy", "mse"]
seeds = [2, 3]
[[grid]]
label = "c"
dataset = "digits"
losses = ["cross_entropy", "mse"]
seeds = [4, 5]
[[grid]]
label = "d"
dataset = "digits"
losses = ["cross_entropy", "mse"]
seeds = [6, 7]
"""
CELLS = ["a", "b", "c", "d"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One ``ray start --block`` in its own process group: a head, or a node joining ``address``."""

    def __init__(self, log: Path, env: dict, temp_dir: str, address: str | None = None, port: int | None = None):
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
        if ray is None:
            pytest.skip("the ray command (pip install 'losslab[ray]') is not installed")
        ports = [
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--disable-usage-stats",
            "--dashboard-agent-listen-port",
            str(free_port()),
            "--metrics-export-port",
            str(free_port()),
            "--runtime-env-agent-port",
            str(free_port()),
        ]
        if address is None:
            where = ["--head", "--port", str(port), "--temp-dir", temp_dir, "--include-dashboard", "false"]
            where += ["--ray-client-server-port", str(free_port())]
        else:
            where = ["--address", address]
        self.log = log
        self.process = subprocess.Popen(
            [ray, "start", "--block", *where, *ports],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: killing it kills this node only
        )

    def wait_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "block forever" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.skip(f"cannot start a Ray node here: {self.log.read_text(errors='replace')[-600:]}")
            time.sleep(0.2)

    def processes(self) -> set[int]:
        """Its process group, and the workers its raylet started (each in a session of its own)."""
        rows = subprocess.run(["ps", "-eo", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout.split("\n")
        table = [tuple(int(v) for v in row.split()) for row in rows if row.strip()]
        group = {pid for pid, _, pgid in table if pgid == self.process.pid}
        return group | {pid for pid, ppid, _ in table if ppid in group}

    def kill(self, sig=signal.SIGKILL, wait: float = 10) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=wait)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    temp_dir = tempfile.mkdtemp(prefix="lray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",  # Ray's default for a started cluster; every process needs the token
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_health_check_initial_delay_ms": "0",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
        "LOSSLAB_CACHE_DIR": str(root / "plans"),
    }
    env.pop("RAY_ADDRESS", None)
    head = Node(root / "head.log", env, temp_dir, port=port)
    nodes = [head]
    try:
        head.wait_up()
        second = Node(root / "second.log", env, temp_dir, address=f"127.0.0.1:{port}")
        nodes.append(second)
        second.wait_up()
        (root / "spread.toml").write_text(SPEC)
        run_spec(load_spec(root / "spread.toml"), root / "local", log=lambda _line: None)  # the reference
        yield {"root": root, "address": f"127.0.0.1:{port}", "env": env, "head": head, "second": second}
    finally:
        for node in reversed(nodes):
            node.kill(signal.SIGTERM, wait=2)  # a moment to clean up, then no more
            node.kill(signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def losslab_run(cluster, out: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "losslab.cli", "run", "spread.toml", "--out", out, "--ray", cluster["address"], *extra],
        cwd=cluster["root"],
        env=cluster["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def comparable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns="seconds").sort_values(["cell", "member", "step"]).reset_index(drop=True)


def same_rows_as_local(cluster, out: str) -> dict:
    manifest, rows = load_results(cluster["root"] / out)
    pd.testing.assert_frame_equal(comparable(load_results(cluster["root"] / "local")[1]), comparable(rows))
    return manifest


def finished(folder: Path) -> int:
    try:
        return sum(c["status"] == "done" for c in json.loads((folder / "manifest.json").read_text())["cells"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_first_cell(process: subprocess.Popen, folder: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while finished(folder) < 1:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no cell finished"
        time.sleep(0.05)


def test_a_cell_no_node_can_hold_fails_at_once_naming_the_largest_node(cluster):
    started = time.monotonic()
    process = losslab_run(cluster, "too-big", "--cpus-per-cell", "2")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.count("\n") == 1, err
    assert re.fullmatch(
        r"losslab run: error: --cpus-per-cell 2: no node of the Ray cluster \(2 node\(s\)\) has that many CPUs; the "
        r"largest, [\d.]+, has 1; give --cpus-per-cell 1 or less, or add a larger node \(on an autoscaling cluster, "
        r"set LOSSLAB_RAY_AUTOSCALING=1 to wait for one\)\n",
        err,
    ), err
    assert time.monotonic() - started < 60 and not (cluster["root"] / "too-big").exists()


def test_killing_the_driver_then_rerunning_resumes_over_both_nodes(cluster):
    folder = cluster["root"] / "driver-lost"
    process = losslab_run(cluster, "driver-lost")
    wait_for_first_cell(process, folder)
    process.send_signal(signal.SIGKILL)  # the machine running 'losslab run' is gone
    process.wait(timeout=30)
    kept = finished(folder)
    assert 1 <= kept < len(CELLS) and (folder / ".lock").exists()
    again = losslab_run(cluster, "driver-lost")
    out, err = again.communicate(timeout=300)
    print(out, err)  # what the user saw, in the test's log
    assert again.returncode == 0, err
    assert f"taking over the stale lock {folder / '.lock'} of pid {process.pid}" in out
    assert f"{len(CELLS) - kept} cell(s) trained, {kept} already done" in out
    manifest = same_rows_as_local(cluster, "driver-lost")
    assert manifest["execution"]["nodes"] == 2 and manifest["execution"]["cluster_cpus"] == 2
    nodes = {c["config"]["execution"]["node"] for c in manifest["cells"]}
    assert len(nodes) == 2, nodes  # the cells spread over both nodes


def test_killing_the_second_node_mid_run_retries_its_cell_on_the_head(cluster):
    folder = cluster["root"] / "node-lost"
    process = losslab_run(cluster, "node-lost")
    wait_for_first_cell(process, folder)  # both nodes are busy: one cell done, the others running or queued
    cluster["second"].kill()
    out, err = process.communicate(timeout=300)
    print(out, err)
    assert process.returncode == 0, err
    # Which line Ray sends depends on whether the node was running a cell when it died.
    lost = r"died while running a cell; Ray runs that cell again elsewhere|is marked dead; its cells are run again"
    assert re.search(rf"ray: node \w+ at [\d.]+ ({lost})", out), out
    assert "Traceback" not in out + err and "(raylet)" not in out + err
    assert f"{len(CELLS)} cell(s) trained" in out
    manifest = same_rows_as_local(cluster, "node-lost")
    assert [c["status"] for c in manifest["cells"]] == ["done"] * len(CELLS)
