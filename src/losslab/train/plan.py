"""The execution plan of a population: how its members are split into blocks and run on this machine.

A block is a contiguous run of ``block_size`` members trained as one batched computation with
``threads_per_block`` intra-op threads and one CPU matmul library (``matmul``); ``workers`` threads run
blocks at the same time. The blocks are fixed before any of them runs and a block's arithmetic does not
depend on which thread runs it or what runs beside it, so ``workers`` never changes a result. The
block size, the threads per block and the matmul library can change float32 results in the last bits
(kernels round differently); each run records its plan, and giving the same plan reproduces it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from losslab.train.config import TrainConfig

# Blocks of the linear and MLP models are sized so that a block's working set stays within about
# half of a server CPU's last-level cache. Measured on P1's MLP (40-100-100-10, batch 100, one
# thread, two epochs): 19.7 ms per member in blocks of 8 to 32 members, 22.1 in blocks of 64, 24.4
# in 128 and 28.4 in 512, as the working set outgrows the cache and steps stream from memory.
BLOCK_BYTES = 16 * 2**20
MIN_BLOCK_MEMBERS = 8  # a cache-sized block never goes below this: the per-step Python overhead needs sharing


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


def default_plan(config: TrainConfig, n_members: int, member_bytes: int, splittable: bool) -> ExecutionPlan:
    """The plan from the configuration alone (no measurement): what the config gives, else the defaults.

    Defaults: on CPU, splittable models run in cache-sized blocks on one thread each, spread over torch's
    intra-op threads as workers; other models (and every model on a GPU) run as one block.
    """
    cores = torch.get_num_threads()
    matmul = "torch" if config.matmul == "auto" else config.matmul
    given = any(getattr(config, f) is not None for f in ("block_size", "threads_per_block", "workers"))
    source = "given" if given or config.matmul != "auto" else "default"
    if not config.on_cpu or not splittable:
        block = min(config.block_size or n_members, n_members)
        parallel = (config.workers or 1) > 1  # workers asked for: one thread per block unless told otherwise
        threads = config.threads_per_block or (cores if config.on_cpu and not parallel else 1)
        blocks = math.ceil(n_members / block)
        workers = 1 if threads > 1 else min(config.workers or 1, blocks)
        return ExecutionPlan(block, threads, workers, matmul, source)
    threads = config.threads_per_block or 1
    if config.block_size is not None:
        block = min(config.block_size, n_members)
    else:
        cache_cap = max(MIN_BLOCK_MEMBERS, BLOCK_BYTES // max(1, member_bytes))
        parallel = cores if threads == 1 else 1
        block = max(1, min(cache_cap, math.ceil(n_members / parallel)))
    blocks = math.ceil(n_members / block)
    # Blocks with several intra-op threads each run one after another: torch's thread pool is per process.
    workers = 1 if threads > 1 else min(config.workers or cores, blocks)
    return ExecutionPlan(block, threads, workers, matmul, source)
