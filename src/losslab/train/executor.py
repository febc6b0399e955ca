"""Run the blocks of a population: in order on this thread, or on worker threads.

A block is a contiguous run of members trained as one batched computation. Blocks are fixed before
any of them runs (``losslab.train.plan``), and a block computes the same thing whichever thread runs
it and whatever runs beside it, so the number of workers never changes a result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager

import torch


class Cancelled(Exception):
    """Raised inside a block when another block failed or the run was interrupted."""


@contextmanager
def intra_op_threads(count: int):
    """torch's intra-op threads (and the BLAS threads numpy uses) set to ``count`` for the duration."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(count, user_api="blas")
    except ImportError:  # scikit-learn brings threadpoolctl; without it numpy keeps its own setting
        limits = None
    try:
        yield
    finally:
        if limits is not None:
            limits.restore_original_limits()
        torch.set_num_threads(previous)


def run_blocks(
    blocks: list[slice],
    workers: int,
    threads_per_block: int,
    train_block: Callable[[slice], object],
    stop: threading.Event,
) -> list:
    """``train_block`` on every block with ``threads_per_block`` intra-op threads each, on ``workers``
    threads; the results in block order. The first failure (or Ctrl-C) sets ``stop``, which the other
    blocks see at their next step, and is raised."""
    with intra_op_threads(threads_per_block):
        if workers == 1:
            return [train_block(block) for block in blocks]
        with ThreadPoolExecutor(workers, thread_name_prefix="losslab") as pool:
            futures = [pool.submit(train_block, block) for block in blocks]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C while waiting
                stop.set()
                raise
            failed = [f for f in futures if f.done() and f.exception() is not None]
            if failed:
                stop.set()
                raise failed[0].exception()
            return [future.result() for future in futures]
