"""The execution plan of a population: how its members are split into blocks and run on this machine.

A block is a contiguous run of members trained as one batched computation with ``threads_per_block``
intra-op threads and one CPU matmul library (``matmul``); ``workers`` threads run blocks at the same
time. The blocks are fixed before any of them runs (a function of the member count and the block size
only), and a block's arithmetic does not depend on which thread runs it or what runs beside it, so
``workers`` never changes a result. The block size, the threads per block and the matmul library can
change float32 results in the last bits (kernels round differently): each run records its plan, and
giving the same plan on the same machine reproduces it bit for bit.

How the plan is chosen (``choose_plan``), for CPU training of models that may be split:

1. Whatever the configuration fixes (``block_size``, ``threads_per_block``, ``workers``, ``matmul``) is kept.
2. The rest is measured on this machine, on the run's own shapes, unless the training is too short for a
   measurement to pay (then the defaults below): each candidate layout, (a) blocks of one thread each on
   as many workers as there are intra-op threads, and (b) one block at a time using all the threads, is
   timed with each matmul library for a few steps, twice; the fastest by members trained per second wins
   if it beats the default (below) by 15% (more than run-to-run noise), else the default stays.
   The choice is cached per machine and shapes (``$LOSSLAB_CACHE_DIR``, default ``~/.cache/losslab``), so
   later runs of the same shapes reuse it without measuring and reproduce the same bits.
3. Defaults without a measurement: layout (a) with the model's first library (torch's products; ``vmap``
   for ``nn.Module`` models). A GPU, and models that may not be split, run as one block.

A driver that hands cells to other machines (``losslab run``, locally or on Ray) calls this once per cell
and fixes the result in the cell's configuration (``ExecutionPlan.fixed_fields``, ``ARITHMETIC_FIELDS``),
so that every machine computes the same bits; only ``workers`` is left to the machine that trains.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from losslab.plugins import fingerprint
from losslab.train.config import TrainConfig

# Blocks of the linear and MLP models are sized so that a block's working set stays within about
# half of a server CPU's last-level cache. Measured on P1's MLP (40-100-100-10, batch 100, one
# thread, two epochs): 19.7 ms per member in blocks of 8 to 32 members, 22.1 in blocks of 64, 24.4
# in 128 and 28.4 in 512, as the working set outgrows the cache and steps stream from memory.
BLOCK_BYTES = 16 * 2**20
MIN_BLOCK_MEMBERS = 8  # a cache-sized block never goes below this: the per-step Python overhead needs sharing
PROBE_WARMUP_STEPS = 3
PROBE_STEPS = 10
PROBE_SCREEN_STEPS = 2  # a candidate's first look, after one warm-up step
PROBE_SCREEN_RATIO = 3  # a candidate this many times slower than the best so far at its first look is dropped
PROBE_MARGIN = 0.15  # another plan replaces the default only if it is this much faster (run-to-run noise is ~10%)
# Measure only when the probe costs under 15% of the training it plans (in rounds of block-steps).
PROBE_SHARE = 0.15
CACHE_VERSION = 1
#: What decides a plan's arithmetic: a driver fixes these for every worker; ``workers`` only schedules.
ARITHMETIC_FIELDS = ("block_size", "threads_per_block", "matmul")


@dataclass(frozen=True)
class ExecutionPlan:
    block_size: int
    threads_per_block: int
    workers: int
    matmul: str  # "torch" or "numpy"
    source: str = "default"  # "default", "given", "measured" or "cached"

    def blocks(self, n_members: int) -> list[slice]:
        """The fewest contiguous blocks of at most ``block_size`` members, near-equal in size, in member
        order: a function of the member count and the block size only."""
        count = math.ceil(n_members / self.block_size)
        bounds = [n_members * i // count for i in range(count + 1)]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def describe(self) -> dict:
        return asdict(self)

    def fixed_fields(self) -> dict:
        """The ``TrainConfig`` fields that fix this plan's arithmetic (``workers`` is left to each machine)."""
        return {key: getattr(self, key) for key in ARITHMETIC_FIELDS}

    def same_arithmetic(self, other: ExecutionPlan) -> bool:
        """Whether the two plans compute the same bits (they may differ in workers and source)."""
        return (self.block_size, self.threads_per_block, self.matmul) == (
            other.block_size,
            other.threads_per_block,
            other.matmul,
        )


def _memory_cap(config: TrainConfig, member_bytes: int) -> int:
    """The most members a block of ``config.memory_limit`` bytes holds (at least one)."""
    if config.memory_limit is None:
        return 2**62
    return max(1, config.memory_limit // max(1, member_bytes))


def _layout(config: TrainConfig, n_members: int, member_bytes: int, threads: int, cores: int) -> tuple[int, int]:
    """(block size, workers) for blocks of ``threads`` intra-op threads each."""
    if config.block_size is not None:
        block = min(config.block_size, n_members)
    else:
        cache_cap = max(MIN_BLOCK_MEMBERS, BLOCK_BYTES // max(1, member_bytes))
        parallel = cores if threads == 1 else 1
        cap = max(1, min(cache_cap, _memory_cap(config, member_bytes)))
        # As many blocks as the cap needs, rounded up to a multiple of the workers: 32 members with a cap of
        # 13 on 2 workers run as 4 blocks of 8 in two full rounds, not as 10, 11 and 11 with a worker idle.
        count = max(parallel, math.ceil(n_members / cap))
        count = min(n_members, parallel * math.ceil(count / parallel))
        block = math.ceil(n_members / count)
    blocks = math.ceil(n_members / block)
    # Blocks with several intra-op threads each run one after another: torch's thread pool is per process.
    workers = 1 if threads > 1 else min(config.workers or cores, blocks)
    return block, workers


def default_plan(
    config: TrainConfig, n_members: int, member_bytes: int, splittable: bool, libraries: tuple[str, ...] = ("torch",)
) -> ExecutionPlan:
    """The plan from the configuration alone (no measurement): what the config gives, else the defaults (the
    model's first library: torch's products, or vmap for nn.Module models)."""
    cores = torch.get_num_threads()
    matmul = libraries[0] if config.matmul == "auto" else config.matmul
    given = any(getattr(config, f) is not None for f in ("block_size", "threads_per_block", "workers"))
    source = "given" if given or config.matmul != "auto" else "default"
    if not config.on_cpu or not splittable:
        block = min(config.block_size or n_members, n_members, _memory_cap(config, member_bytes))
        parallel = (config.workers or 1) > 1  # workers asked for: one thread per block unless told otherwise
        threads = config.threads_per_block or (cores if config.on_cpu and not parallel else 1)
        blocks = math.ceil(n_members / block)
        workers = 1 if threads > 1 else min(config.workers or 1, blocks)
        return ExecutionPlan(block, threads, workers, matmul, source)
    threads = config.threads_per_block or 1
    block, workers = _layout(config, n_members, member_bytes, threads, cores)
    return ExecutionPlan(block, threads, workers, matmul, source)


def candidate_plans(
    config: TrainConfig, n_members: int, member_bytes: int, libraries: tuple[str, ...]
) -> list[ExecutionPlan]:
    """The plans a measurement compares: each free layout with each free matmul library."""
    cores = torch.get_num_threads()
    thread_options = [config.threads_per_block] if config.threads_per_block else sorted({1, cores})
    if config.workers is not None and config.workers > 1 and not config.threads_per_block:
        thread_options = [1]
    library_options = [config.matmul] if config.matmul != "auto" else list(libraries)
    plans = []
    for threads in thread_options:
        block, workers = _layout(config, n_members, member_bytes, threads, cores)
        for library in library_options:
            plans.append(ExecutionPlan(block, threads, workers, library, "measured"))
    return plans


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_libraries() -> list[dict]:
    """The BLAS and OpenMP libraries loaded in this process, as threadpoolctl describes them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # scikit-learn brings it; without it the plan cache is keyed without the BLAS
        return []
    return threadpool_info()


def _machine() -> dict:
    """What decides which plan is fastest here: the CPU, the thread count and the libraries' versions."""
    import numpy

    blas = ";".join(f"{i.get('internal_api')}:{i.get('architecture')}" for i in blas_libraries())
    return {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "blas": blas,
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "MKL_"))},
    }


def cache_path() -> Path:
    root = os.environ.get("LOSSLAB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "losslab")
    return Path(root) / "plans.json"


def _cache_key(shape_key: dict) -> str:
    return fingerprint({"v": CACHE_VERSION, "machine": _machine(), "shape": shape_key}, length=24)


def _read_cache() -> dict:
    try:
        return json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, plan: ExecutionPlan, timings: list[dict]) -> None:
    path = cache_path()
    entries = _read_cache()
    entries[key] = {"plan": plan.describe(), "timings": timings}
    try:  # a cache that cannot be written only means measuring again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def choose_plan(
    config: TrainConfig,
    n_members: int,
    member_bytes: int,
    splittable: bool,
    libraries: tuple[str, ...],
    total_steps: int,
    shape_key: dict,
    time_plan: Callable[[ExecutionPlan, int, int], float],
) -> tuple[ExecutionPlan, list[dict]]:
    """The plan for this run, and the measurements behind it (empty when none was made).

    ``time_plan(plan, warmup, steps)`` trains throwaway copies of the plan's first round of blocks (as
    many as run at once) for ``warmup + steps`` steps and returns the seconds of the last ``steps``.
    """
    plan = default_plan(config, n_members, member_bytes, splittable, libraries)
    fixed = all(getattr(config, f) is not None for f in ("block_size", "threads_per_block", "workers"))
    if not config.on_cpu or not splittable or (fixed and config.matmul != "auto"):
        return plan, []
    candidates = candidate_plans(config, n_members, member_bytes, libraries)
    if len(candidates) < 2:
        return plan, []
    key = _cache_key(
        {
            **shape_key,
            "members": n_members,
            "fixed": {
                f: getattr(config, f) for f in ("block_size", "threads_per_block", "workers", "matmul", "memory_limit")
            },
        }
    )
    cached = _read_cache().get(key)
    if cached is not None:
        return replace(ExecutionPlan(**cached["plan"]), source="cached"), cached.get("timings", [])
    rounds = total_steps * math.ceil(len(plan.blocks(n_members)) / plan.workers)
    if 2 * len(candidates) * (PROBE_WARMUP_STEPS + PROBE_STEPS) > PROBE_SHARE * rounds:
        return plan, []  # too short a run to be worth measuring: the defaults, not cached
    # Each candidate twice, in opposite orders (a slow moment then hurts no candidate more than another),
    # keeping its better time; the default layout keeps its place unless another beats it by PROBE_MARGIN,
    # so that timing noise alone never moves a run off the default.
    # A candidate far slower than the best so far (OpenBLAS's threads on small products while another process
    # holds a core: 50x slower, measured) is dropped after a short screen instead of costing the run minutes.
    rates: dict[ExecutionPlan, float] = {}
    dropped: set[ExecutionPlan] = set()
    for candidate in [*candidates, *reversed(candidates)]:
        if candidate in dropped:
            continue
        first_round = candidate.blocks(n_members)[: candidate.workers]
        members = sum(b.stop - b.start for b in first_round)
        if rates and candidate not in rates:
            screen = members * PROBE_SCREEN_STEPS / time_plan(candidate, 1, PROBE_SCREEN_STEPS)
            if screen * PROBE_SCREEN_RATIO < max(rates.values()):
                rates[candidate] = screen
                dropped.add(candidate)
                continue
        seconds = time_plan(candidate, PROBE_WARMUP_STEPS, PROBE_STEPS)
        rates[candidate] = max(rates.get(candidate, 0.0), members * PROBE_STEPS / seconds)  # member-steps/s
    timings = [{**c.describe(), "member_steps_per_second": round(r, 1)} for c, r in rates.items()]
    default = next((c for c in candidates if c.same_arithmetic(replace(plan, source="measured"))), candidates[0])
    best = max(rates, key=rates.get)
    if rates[best] < (1 + PROBE_MARGIN) * rates.get(default, 0.0):
        best = default
    _write_cache(key, best, timings)
    return best, timings
