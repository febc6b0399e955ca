"""Run experiment cells as Ray tasks: on a local Ray instance, or on a cluster when one machine is not enough.

Optional: ``pip install 'losslab[ray]'``. The driver (the process running ``losslab run``) loads and
checks every dataset once and puts it in Ray's object store; each cell then trains as one task
wherever the cluster has room, and its rows come back to the driver, which alone writes the results
folder, with the same atomic writes and resume as a local run. Worker nodes therefore need neither
the data files nor a shared filesystem, only the same losslab installed (the cluster's image, or
Ray's ``runtime_env``). A spec's plugins travel with each cell and are imported on the worker before
it trains (``spec_plugins.install``): a ``.py`` file as its text, checked against its SHA-256; a module
by name, which must then be installed on every node.

    losslab run comparison --ray                 # RAY_ADDRESS's cluster, else a new local instance
    losslab run comparison --ray auto            # the cluster this machine belongs to
    losslab run comparison --ray ray://head:10001 --cpus-per-cell 4

A cell with ``device = "cuda"`` asks Ray for one GPU. Results do not depend on where a cell ran: the driver
fixes each cell's execution plan (block size, threads per block, matmul library) before any cell runs
(``runner.plan_cell``), so a worker computes the same bits as a local run on the same CPU model; only the
number of worker threads adapts to the worker's CPUs.

Faults: a cell whose node dies is retried elsewhere (Ray's task retries, ``MAX_RETRIES`` times); one lost beyond
that, or a cluster lost altogether, ends the run in one line (the cells finished so far are saved, and the rerun
resumes). A cell that no node can ever hold (more CPUs per cell than the largest node has, or a GPU where no node
has one) fails at once naming the largest node, instead of waiting forever; on an autoscaling cluster, where larger
nodes come when asked for, set ``LOSSLAB_RAY_AUTOSCALING=1`` to skip that check. While cells are queued or running
the run says so every few minutes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from losslab.data import Dataset
from losslab.errors import INPUT_ERRORS
from losslab.experiments import progress
from losslab.experiments.spec import Cell

#: How often Ray runs a cell again whose worker or node died (it would, by default, too: said here on purpose).
MAX_RETRIES = 3

#: What a worker runs for each cell: the runner's ``run_cell`` (passed in, so this module does not
#: import the runner that imports it).
CellWork = Callable[[Cell, Dataset], pd.DataFrame]


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ValueError("running on Ray needs the ray package: pip install 'losslab[ray]'") from exc
    return ray


@contextlib.contextmanager
def _quiet_ray():
    """Ray logs and warns on stderr while it connects (and before it fails); our error says it in one line."""
    logger = logging.getLogger("ray")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class RayCluster:
    """Where and with what resources cells run.

    ``address``: None connects to ``RAY_ADDRESS`` if set, else starts a local Ray instance (which is
    shut down when the run ends); ``"auto"`` joins the cluster this machine belongs to; or a
    ``ray://host:port`` client address. ``cpus_per_cell``: CPUs reserved per cell, which is also the
    number of threads the cell's training uses.
    """

    address: str | None = None
    cpus_per_cell: float = 1.0

    def __post_init__(self):
        if (
            isinstance(self.cpus_per_cell, bool)
            or not isinstance(self.cpus_per_cell, (int, float))
            or not math.isfinite(self.cpus_per_cell)
            or self.cpus_per_cell <= 0
        ):
            raise ValueError(f"cpus_per_cell must be a positive number, got {self.cpus_per_cell!r}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ValueError(f"address must be 'auto', ray://host:port or host:port, got {self.address!r}")

    @contextlib.contextmanager
    def connect(self, log=None) -> Iterator[dict]:
        """Connect to Ray (or start a local instance) for the duration of the block; yields what the
        run is using (for the manifest). A cluster that cannot be reached is a ValueError naming the
        address and the fix. ``log``: where Ray's own reports (a node died, a task is retried) go, each as
        one line, instead of Ray's multi-line messages on stdout."""
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            try:
                with _quiet_ray():
                    ray.init(
                        address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
                    )
            except Exception as exc:  # Ray raises ConnectionError, ValueError or RuntimeError, by version and address
                with contextlib.suppress(Exception):
                    ray.shutdown()
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                where = f"--ray {self.address}" if self.address else "--ray"
                raise ValueError(
                    f"{where}: cannot connect to a Ray cluster ({reason}); start one with 'ray start --head', "
                    "give its address (auto, or ray://host:10001 with pip install 'losslab[ray]'), "
                    "or leave out --ray to run here"
                ) from None
        try:
            with _ray_reports(log) if log is not None else contextlib.nullcontext():
                yield self.describe(ray)
        finally:
            if started_here:
                ray.shutdown()

    def run(
        self, jobs: list[tuple[Cell, Dataset]], work: CellWork, on_connect=None, log=lambda line: None
    ) -> Iterator[tuple[Cell, pd.DataFrame, float]]:
        """Train every (cell, dataset) job as a Ray task; yield (cell, rows, seconds) as each finishes.

        Connects first unless already connected (``connect``); ``on_connect(description)`` is then
        called with what the run is using. A cell that no node can hold is a ValueError before any task
        starts. An error in a task, a cell lost with its node beyond Ray's retries, or Ctrl-C, cancels the
        tasks still pending and is raised (bad input and lost cells as a one-line ValueError). ``log`` gets
        a line every few minutes while cells are queued or running.
        """
        ray = _import_ray()
        with contextlib.ExitStack() as stack:
            if not ray.is_initialized():
                description = stack.enter_context(self.connect())
                if on_connect is not None:
                    on_connect(description)
            yield from self._run(ray, jobs, work, log)

    def describe(self, ray) -> dict:
        resources = ray.cluster_resources()
        return {
            "executor": "ray",
            "ray": ray.__version__,
            "address": self.address or "default (RAY_ADDRESS or a local instance)",
            "cpus_per_cell": self.cpus_per_cell,
            "cluster_cpus": resources.get("CPU", 0),
            "cluster_gpus": resources.get("GPU", 0),
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        }

    @property
    def task_threads(self) -> int:
        """The threads per block a cell's plan may use on this cluster: the whole CPUs each task gets."""
        return max(1, int(self.cpus_per_cell))

    def check_cells(self, cells: list[Cell]) -> None:
        """Before any work: refuse cells that no live node of the (connected) cluster can hold."""
        self.check_fits(_import_ray(), max((_gpus(c) for c in cells), default=0), self.task_threads)

    def check_fits(self, ray, gpus: int, plan_threads: int = 1) -> None:
        """Refuse cells that no live node can ever hold: they would wait forever, silently, holding the lock."""
        if os.environ.get("LOSSLAB_RAY_AUTOSCALING", "").strip() not in ("", "0"):
            return  # an autoscaler adds larger nodes when asked for: Ray's queue is the right place to wait
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if not nodes:
            return

        def has(node, resource: str) -> float:
            return float((node.get("Resources") or {}).get(resource, 0))

        def name(node) -> str:
            return str(node.get("NodeManagerAddress") or node.get("NodeID", "?"))

        largest = max(nodes, key=lambda n: has(n, "CPU"))
        if self.cpus_per_cell > has(largest, "CPU"):
            raise ValueError(
                f"--cpus-per-cell {self.cpus_per_cell:g}: no node of the Ray cluster ({len(nodes)} node(s)) has that "
                f"many CPUs; the largest, {name(largest)}, has {has(largest, 'CPU'):g}; give --cpus-per-cell "
                f"{max(has(largest, 'CPU'), 1):g} or less, or add a larger node (on an autoscaling cluster, set "
                "LOSSLAB_RAY_AUTOSCALING=1 to wait for one)"
            )
        if plan_threads > has(largest, "CPU"):
            raise ValueError(
                f"a cell's plan runs blocks on {plan_threads} threads, but no node of the Ray cluster ({len(nodes)} "
                f"node(s)) has that many CPUs; the largest, {name(largest)}, has {has(largest, 'CPU'):g}; set "
                f"[train.plan] threads_per_block = {max(int(has(largest, 'CPU')), 1)} or less in the spec, or add a "
                "larger node"
            )
        if gpus:
            best = max(nodes, key=lambda n: has(n, "GPU"))
            if has(best, "GPU") < gpus:
                raise ValueError(
                    f"--device cuda: no node of the Ray cluster ({len(nodes)} node(s), the largest {name(largest)} "
                    f"with {has(largest, 'CPU'):g} CPUs) has a GPU; leave out --device cuda, or add GPU nodes (on an "
                    "autoscaling cluster, set LOSSLAB_RAY_AUTOSCALING=1 to wait for one)"
                )

    def _run(self, ray, jobs, work, log=lambda line: None) -> Iterator[tuple[Cell, pd.DataFrame, float]]:
        self.check_fits(
            ray,
            max((_gpus(cell) for cell, _ in jobs), default=0),
            max((_plan_threads(cell) for cell, _ in jobs), default=1),
        )
        task = ray.remote(_timed_work)
        stored: dict[int, object] = {}  # each dataset goes to the object store once, shared by its cells
        pending: dict = {}
        for cell, dataset in jobs:
            if id(dataset) not in stored:
                stored[id(dataset)] = ray.put(dataset)
            ref = task.options(
                num_cpus=max(self.cpus_per_cell, _plan_threads(cell)),
                num_gpus=_gpus(cell),
                name=f"losslab:{cell.id}",
                max_retries=MAX_RETRIES,  # a dead worker or node: run the cell again elsewhere
                retry_exceptions=False,  # an error in the cell itself would only fail again
            ).remote(work, cell, stored[id(dataset)])
            pending[ref] = cell
        started = time.perf_counter()
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=progress.HEARTBEAT_SECONDS)
                if not done:
                    log(
                        f"waiting for {len(pending)} cell(s) on Ray ({len(jobs) - len(pending)} of {len(jobs)} done, "
                        f"{progress.format_duration(time.perf_counter() - started)} so far)"
                    )
                    continue
                cell = pending.pop(done[0])
                try:
                    frame, seconds = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, INPUT_ERRORS):  # a plugin failing on the worker: bad input, one line
                        raise ValueError(f"cell {cell.id} failed on Ray: {exc.cause}") from None
                    raise RuntimeError(f"cell {cell.id} failed on Ray: {exc.cause!r}") from exc
                except ray.exceptions.RayError as exc:  # its worker or node died more often than Ray retries
                    reason = " ".join(str(exc).split())[:240] or type(exc).__name__
                    raise ValueError(
                        f"cell {cell.id} was lost on Ray ({type(exc).__name__}: {reason}) after {MAX_RETRIES} "
                        "retries; the cells finished so far are saved: rerun the same command to resume"
                    ) from None
                yield cell, frame, seconds
        finally:
            for ref in pending:  # an error, Ctrl-C or an abandoned generator: stop what has not run
                ray.cancel(ref, force=True)


@contextlib.contextmanager
def _ray_reports(log):
    """Ray's driver prints what its cluster reports (a node died, a task will be retried) on stdout in several
    long lines; while the block runs, each becomes one line through ``log``. This uses a private hook of Ray
    (``ray._private.worker.print_to_stdstream``): where a Ray version lacks it, Ray prints as it does."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        yield
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None:
        yield
        return

    def report(data, ignore_prefix=False):
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        for message in data.get("lines") or []:
            log(f"ray: {_one_ray_line(str(message))}")

    ray_worker.print_to_stdstream = report
    try:
        yield
    finally:
        ray_worker.print_to_stdstream = original


def _one_ray_line(message: str) -> str:
    """One of Ray's reports in one line: a dead node and a retried cell said plainly, anything else shortened."""
    text = " ".join(message.split())
    node = re.search(r"node id:? (\w+)", text, re.IGNORECASE)
    address = re.search(r"(?:Node IP|address): ([\w.:-]+)", text)
    where = f"node {node.group(1)[:8]}" if node else "a node"
    where += f" at {address.group(1)}" if address else ""
    retries = re.search(r"There are (\d+) retries remaining", text)
    if retries and "dead or unavailable" in text:
        return (
            f"{where} died while running a cell; Ray runs that cell again elsewhere ({retries.group(1)} retries left)"
        )
    if "marked dead" in text:
        return f"{where} is marked dead; its cells are run again elsewhere"
    return text[:240] + ("..." if len(text) > 240 else "")


def _plan_threads(cell: Cell) -> int:
    """The intra-op threads of the cell's widest block: a Ray task gets that many CPUs, since running the plan on
    fewer would oversubscribe them (the same numbers, several times slower)."""
    return max([p.get("threads_per_block", 1) for p in (cell.plans or {}).values()], default=1)


def _gpus(cell: Cell) -> int:
    return 1 if str(cell.train.device).startswith("cuda") else 0


def _timed_work(work: CellWork, cell: Cell, dataset: Dataset) -> tuple[pd.DataFrame, float]:
    if cell.plugins:  # the losses, datasets and models the spec's plugins register, as on the driver
        from losslab.experiments.spec_plugins import install

        install(cell.plugins)
    started = time.perf_counter()
    try:
        frame = work(cell, dataset)
    except SystemExit as exc:  # a plugin's code called sys.exit: the worker would die and Ray would retry it
        from losslab.plugins import where_it_failed

        raise ValueError(
            f"sys.exit({exc.code!r}) was called by {where_it_failed(exc, None)} while the cell trained; a plugin's "
            "functions must return or raise, never exit"
        ) from None
    seconds = time.perf_counter() - started
    ray = _import_ray()
    # Where it ran, for the manifest: which node a cell ran on (and so which cells a lost node's retries redid).
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    frame.attrs["execution"] = {**frame.attrs.get("execution", {}), "node": node}
    return frame, seconds
