"""Benchmark P2: CNN populations against the plain per-run loop, their matmul-only bounds and the machine's peak.

Workloads (issue #20):

- MNIST ``cnn`` (conv 8 -> pool -> conv 16 -> pool -> linear), SGD 0.05 / momentum 0.9, batch 64, 1 epoch of the
  60,000 training images, cross-entropy and MSE x 16 seeds = 32 members; about 115 GFLOP per member-epoch.
- ``cnn1d`` on MNIST-1D (three strided Conv1d of 25 channels and a linear head), Adam 1e-3, batch 100, 20 epochs
  of the 4,000 training sequences, cross-entropy and MSE x 16 seeds = 32 members.

    python benchmarks/p2_cnn.py --data-dir ../shared/data        # both (MNIST files from --data-dir or $LOSSLAB_DATA)
    python benchmarks/p2_cnn.py --quick                          # a quarter of MNIST's images, 4 cnn1d epochs
    python benchmarks/p2_cnn.py --only cnn1d                     # one workload

Everything is a ratio against measurements made in the same run. For each workload it prints: the plain loop
(``train_reference``: nn.Module + torch.optim, one run after another; timed on ``--plain-members`` runs and scaled
to all members, every run being the same work; at the faster of 1 and all threads, since on a loaded machine
torch's thread pool can make the plain loop several times slower than one thread); the population at its
default plan (the first call measures the plan and caches it; the timed call reuses it); and the matmul-only
bounds, the step's products alone in the plan's blocks, threads and workers, with each library:

- "im2col": every convolution as the textbook unfolded product (forward, weight gradient, input gradient;
  the MNIST cnn's first convolution is [B*576, 25] @ [25, 8]), the bound the issue states;
- "own": the products this implementation runs (``losslab.models.cnn_population``).

The tightest bound is the smaller of the four; the population's time over it is how much the step spends
outside products. "peak" is the im2col multiply-adds at the machine's large-matmul rate (2048^3, all threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p1_population import alone, machine_line, peak_gflops, plain_thread_count, timed  # noqa: E402

from losslab.data import (
    Dataset,  # noqa: E402
    load_dataset,  # noqa: E402
)
from losslab.models.cnn_population import TILE  # noqa: E402
from losslab.train import Member, TrainConfig, train_population  # noqa: E402
from losslab.train.executor import intra_op_threads, run_blocks  # noqa: E402
from losslab.train.reference import train_reference  # noqa: E402

LOSSES = ("cross_entropy", "mse")

# A product [rows, inner] @ [inner, cols] per member: (rows, inner, cols).
Product = tuple[int, int, int]


def conv_products(batch: int, positions: int, k: int, cout: int, input_grad: bool) -> list[Product]:
    """A convolution as unfolded products: forward [B P, k] @ [k, C], weight gradient [k, B P] @ [B P, C], input
    gradient [B P, C] @ [C, k]."""
    rows = batch * positions
    out = [(rows, k, cout), (k, rows, cout)]
    return out + [(rows, cout, k)] if input_grad else out


def head_products(batch: int, features: int, classes: int) -> list[Product]:
    return [(batch, features, classes), (features, batch, classes), (batch, classes, features)]


def mnist_cnn_products(batch: int, own: bool) -> list[Product]:
    if not own:
        return (
            conv_products(batch, 24 * 24, 25, 8, False)
            + conv_products(batch, 8 * 8, 200, 16, True)
            + head_products(batch, 256, 10)
        )
    # The banded tiles of models/cnn_population.py: [N, K] @ [K, R] forward, [N, R] @ [R, K] weight, [R, N] @ [N, K] input.
    r1, k1, n1 = batch * 24 * 24 // TILE, 5 * (TILE + 4), 8 * TILE
    r2, k2, n2 = batch * 8 * 8 // TILE, 5 * (TILE + 4) * 8, 16 * TILE
    banded = [(n1, k1, r1), (n1, r1, k1), (n2, k2, r2), (n2, r2, k2), (r2, n2, k2)]
    return banded + head_products(batch, 256, 10)


def cnn1d_products(batch: int, own: bool) -> list[Product]:
    # models/cnn1d_population.py runs cnn1d's convolutions unfolded: both formulations are the same products.
    return (
        conv_products(batch, 19, 5, 25, False)
        + conv_products(batch, 10, 75, 25, True)
        + conv_products(batch, 5, 75, 25, True)
        + head_products(batch, 125, 10)
    )


def useful_flops(products: list[Product]) -> float:
    return sum(2 * r * i * c for r, i, c in products)


def mlp_products(batch: int, sizes: list[int]) -> list[Product]:
    """An MLP's step: each layer's forward and weight-gradient products, and the input gradient of all but the first."""
    out = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        out += [(batch, a, b), (a, batch, b)] + ([(batch, b, a)] if i > 0 else [])
    return out


def product_bound(
    products: list[Product], plan, n_members: int, steps: int, library: str, first_round: bool = False
) -> float:
    """Seconds for ``steps`` steps of ``products`` alone, in the plan's blocks, threads and workers (with
    ``first_round``, only the blocks that run at once first)."""
    blocks = plan.blocks(n_members)
    if first_round:
        blocks = blocks[: plan.workers]

    def step_of(block: slice):
        m = block.stop - block.start
        operands = [(torch.randn(m, r, i), torch.randn(m, i, c), torch.empty(m, r, c)) for r, i, c in products]
        if library == "numpy":
            operands = [(a.numpy(), b.numpy(), o.numpy()) for a, b, o in operands]

            def step():
                for a, b, o in operands:
                    np.matmul(a, b, out=o)
        else:

            def step():
                for a, b, o in operands:
                    torch.bmm(a, b, out=o)

        return step

    steps_of = {b.start: step_of(b) for b in blocks}  # allocated before the clock starts

    def run(block):
        for _ in range(steps):
            steps_of[block.start]()

    started = time.perf_counter()
    run_blocks(blocks, plan.workers, plan.threads_per_block, run, threading.Event())
    return time.perf_counter() - started


def members_of(count: int, lr: float) -> list[Member]:
    return [Member(LOSSES[i * 2 // count], seed=i % (count // 2), lr=lr) for i in range(count)]


def plain_seconds(data, members, config, runs: int) -> tuple[float, int, float]:
    """The plain loop's seconds for all ``members``, from ``runs`` of them (every run is the same work), at the
    faster of one thread and all threads (``plain_thread_count``), that thread count, and the seconds alone
    (CPU time over the threads, ``p1_population.alone``)."""
    threads = plain_thread_count(lambda: train_reference(data, members[0], config))
    with intra_op_threads(threads):
        seconds, _ = timed(lambda: [train_reference(data, m, config) for m in members[:runs]])
    scale = len(members) / runs
    return seconds * scale, threads, alone(threads) * scale


def row(
    label: str, seconds: float, plain: float, gflop: float, note: str = "", cpu: float = 0.0, plain_cpu: float = 0.0
) -> None:
    by_cpu = f"{cpu:9.2f} {plain_cpu / cpu:8.2f}x" if cpu else f"{'':9s} {'':9s}"
    print(f"  {label:58s} {seconds:9.2f} {plain / seconds:8.2f}x {gflop / seconds:8.1f} | {by_cpu}  {note}")


def workload(name: str, data: Dataset, config: TrainConfig, lr: float, args, peak: float) -> None:
    members = members_of(args.members, lr)
    steps = (data.x_train.shape[0] // config.batch_size) * config.epochs
    products = mnist_cnn_products if config.model == "cnn" else cnn1d_products
    flop_per_step = useful_flops(products(config.batch_size, own=False))
    gflop = flop_per_step * steps * len(members) / 1e9
    print()
    print(
        f"{name}: {config.model}, {config.optimizer} lr {lr}, batch {config.batch_size}, {config.epochs} epoch(s) of "
        f"{data.x_train.shape[0]} examples ({steps} steps), {len(members)} members, {gflop:.0f} GFLOP (im2col count)"
    )
    plain, plain_threads, plain_cpu = plain_seconds(data, members, config, args.plain_members)
    train_population(data, members[:2], replace(config, epochs=1), progress=False)  # warm-up
    first_seconds, first = timed(lambda: train_population(data, members, config, progress=False))
    first_cpu = alone(torch.get_num_threads())
    seconds, result = timed(lambda: train_population(data, members, config, progress=False))
    plan = result.plan
    cpu = alone(plan.workers * plan.threads_per_block)
    print(f"  {'setup':58s} {'wall s':>9s} {'vs plain':>9s} {'GFLOP/s':>8s} | {'alone s':>9s} {'vs plain':>9s}  notes")
    row(
        f"plain per-run loop ({args.plain_members} runs timed, {plain_threads} thread(s))",
        plain,
        plain,
        gflop,
        "scaled to all members",
        plain_cpu,
        plain_cpu,
    )
    row(f"population, first run (plan: {first.plan.source})", first_seconds, plain, gflop, "", first_cpu, plain_cpu)
    row("population, default (plan from the cache)", seconds, plain, gflop, f"plan {plan.describe()}", cpu, plain_cpu)
    for t in first.plan_timings or result.plan_timings or []:
        print(
            f"      probe: blocks of {t['block_size']}, {t['threads_per_block']} thread(s), {t['workers']} worker(s), "
            f"{t['matmul']}: {t['member_steps_per_second']:.0f} member-steps/s"
        )
    final = result.frame[result.frame.step == result.frame.step.max()]
    accuracy = ", ".join(
        f"{loss} {100 * statistics.mean(final[final.loss == loss].test_accuracy):.1f}%" for loss in LOSSES
    )
    print(f"      final test accuracy (mean over seeds): {accuracy}")
    bounds, bounds_cpu = {}, {}
    bound_steps = min(steps, args.bound_steps)
    for own in (False, True):
        for library in ("numpy", "torch"):
            bound, _ = timed(
                lambda own=own, library=library: product_bound(
                    products(config.batch_size, own), replace(plan, matmul=library), len(members), bound_steps, library
                )
            )
            bound *= steps / bound_steps
            bound_cpu = alone(plan.workers * plan.threads_per_block) * steps / bound_steps
            key = ("own" if own else "im2col", library)
            bounds[key], bounds_cpu[key] = bound, bound_cpu
            row(
                f"  matmul-only bound, {key[0]} products, {library}",
                bound,
                plain,
                gflop,
                f"the default takes {seconds / bound:.2f}x this bound (alone: {cpu / bound_cpu:.2f}x)",
                bound_cpu,
                plain_cpu,
            )
    row("  the machine's limit: im2col products at the large-matmul peak", gflop / peak, plain, gflop)
    for kind, (pop, bnd, pl) in (("wall", (seconds, bounds, plain)), ("alone", (cpu, bounds_cpu, plain_cpu))):
        tightest = min(bnd, key=bnd.get)
        print(
            f"  => {kind}: population {pl / pop:.2f}x the plain loop; {pop / bnd[tightest]:.2f}x its tightest "
            f"matmul-only bound ({tightest[0]}, {tightest[1]}); {pop / bnd[('im2col', plan.matmul)]:.2f}x the "
            f"im2col bound in its own library ({plan.matmul})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files (default: $LOSSLAB_DATA)")
    parser.add_argument("--quick", action="store_true", help="a quarter of MNIST's images and 4 cnn1d epochs")
    parser.add_argument("--only", choices=["cnn", "cnn1d"], default=None)
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--plain-members", type=int, default=4, help="plain-loop runs timed (then scaled)")
    parser.add_argument("--bound-steps", type=int, default=300, help="steps timed for each bound (then scaled)")
    parser.add_argument("--mnist-batch", type=int, default=64)
    args = parser.parse_args()
    with intra_op_threads(torch.get_num_threads()):  # numpy's BLAS on the same thread count as torch
        print("P2: CNN populations")
        print(machine_line())
        peaks = {lib: peak_gflops(lib, "cpu") for lib in ("torch", "numpy")}
        peak = max(peaks.values())
        print(
            f"large-matmul peak (2048^3, {torch.get_num_threads()} threads): torch {peaks['torch']:.0f} GFLOP/s, "
            f"numpy {peaks['numpy']:.0f} GFLOP/s"
        )
        if args.only in (None, "cnn"):
            mnist = load_dataset("mnist", data_dir=args.data_dir, validation=0)
            if args.quick:
                n = mnist.x_train.shape[0] // 4
                mnist = Dataset(
                    "mnist-quarter", mnist.x_train[:n], mnist.y_train[:n], mnist.x_test, mnist.y_test, mnist.class_names
                )
            config = TrainConfig(model="cnn", epochs=1, batch_size=args.mnist_batch, eval_every_steps=10**9)
            workload("MNIST cnn", mnist, config, 0.05, args, peak)
        if args.only in (None, "cnn1d"):
            mnist1d = load_dataset("mnist1d", validation=0)
            config = TrainConfig(
                model="cnn1d",
                optimizer="adam",
                epochs=4 if args.quick else 20,
                batch_size=100,
                eval_every_steps=10**9,
            )
            workload("MNIST-1D cnn1d", mnist1d, config, 1e-3, args, peak)


if __name__ == "__main__":
    main()
