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
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from losslab.data import Dataset
from losslab.experiments.spec import Cell

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
    def connect(self) -> Iterator[dict]:
        """Connect to Ray (or start a local instance) for the duration of the block; yields what the
        run is using (for the manifest). A cluster that cannot be reached is a ValueError naming the
        address and the fix."""
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
            yield self.describe(ray)
        finally:
            if started_here:
                ray.shutdown()

    def run(
        self, jobs: list[tuple[Cell, Dataset]], work: CellWork, on_connect=None
    ) -> Iterator[tuple[Cell, pd.DataFrame, float]]:
        """Train every (cell, dataset) job as a Ray task; yield (cell, rows, seconds) as each finishes.

        Connects first unless already connected (``connect``); ``on_connect(description)`` is then
        called with what the run is using. An error in a task, or Ctrl-C, cancels the tasks still
        pending and is raised.
        """
        ray = _import_ray()
        with contextlib.ExitStack() as stack:
            if not ray.is_initialized():
                description = stack.enter_context(self.connect())
                if on_connect is not None:
                    on_connect(description)
            yield from self._run(ray, jobs, work)

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

    def _run(self, ray, jobs, work) -> Iterator[tuple[Cell, pd.DataFrame, float]]:
        task = ray.remote(_timed_work)
        stored: dict[int, object] = {}  # each dataset goes to the object store once, shared by its cells
        pending: dict = {}
        for cell, dataset in jobs:
            if id(dataset) not in stored:
                stored[id(dataset)] = ray.put(dataset)
            gpus = 1 if str(cell.train.device).startswith("cuda") else 0
            # A plan whose blocks use several intra-op threads gets as many CPUs: running it on fewer would
            # oversubscribe them (same numbers, several times slower).
            threads = max([p.get("threads_per_block", 1) for p in (cell.plans or {}).values()], default=1)
            cpus = max(self.cpus_per_cell, threads)
            ref = task.options(num_cpus=cpus, num_gpus=gpus, name=f"losslab:{cell.id}").remote(
                work, cell, stored[id(dataset)]
            )
            pending[ref] = cell
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(done[0])
                try:
                    frame, seconds = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    raise RuntimeError(f"cell {cell.id} failed on Ray: {exc.cause!r}") from exc
                yield cell, frame, seconds
        finally:
            for ref in pending:  # an error, Ctrl-C or an abandoned generator: stop what has not run
                ray.cancel(ref, force=True)


def _timed_work(work: CellWork, cell: Cell, dataset: Dataset) -> tuple[pd.DataFrame, float]:
    if cell.plugins:  # the losses, datasets and models the spec's plugins register, as on the driver
        from losslab.experiments.spec_plugins import install

        install(cell.plugins)
    started = time.perf_counter()
    frame = work(cell, dataset)
    return frame, time.perf_counter() - started
