"""Benchmark P1: the population trainer against the plain per-run loop, its own bounds and the machine's peak.

Workload (../shared/PERFORMANCE-NOTES.md, beside the repository): MNIST-1D (4,000 train / 1,000 test, 40 features), MLP
40-100-100-10 ReLU, SGD lr 0.1 momentum 0.9, batch 100, 20 epochs (800 steps a run), cross-entropy
and MSE-on-probabilities x 16 seeds = 32 runs, float32. About 230 GFLOP of matmul work (3 x forward).

    python benchmarks/p1_population.py                 # CPU, the whole picture (several minutes on 2 cores)
    python benchmarks/p1_population.py --quick         # 4 epochs, 32 and 128 members
    python benchmarks/p1_population.py --device cuda   # GPU: plain loop, 32 to 16,384 members, fp32 and TF32

Everything is a ratio against the plain loop measured in the same run (timings on shared machines vary
by 15% or more run to run). On CPU it prints: the machine's large-matmul peak for torch's and numpy's BLAS;
the plain loop; the population with the plan chosen by measurement (first run, which measures, and a
second, which reuses the cached plan); each matmul library and each worker count; the matmul-only bounds
(the step's eight batched products alone, in the plan's blocks and threads, with each library: no
implementation of this formulation can be faster than them here); how the time grows with the members.
On CUDA: the plain loop on the GPU, populations of 32, 1,024, 4,096 and 16,384 members in fp32 and TF32,
and the fp32 and TF32 matmul bounds with TFLOP/s and the ratio to the bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import replace

import numpy as np
import torch

from losslab.data import load_dataset
from losslab.models import MLP
from losslab.models.matmul import BatchedProducts, StepBuffers
from losslab.train import Member, TrainConfig, train_population
from losslab.train.executor import intra_op_threads, run_blocks
from losslab.train.plan import blas_libraries, cpu_model
from losslab.train.reference import train_reference

LOSSES = ("cross_entropy", "mse")
SEEDS = 16
HIDDEN = [100, 100]
SIZES = [40, *HIDDEN, 10]


def flops_per_member(steps: int, batch: int = 100) -> float:
    forward = sum(2 * a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return 3 * forward * steps * batch  # forward, and the two products of the backward pass per layer


def members_of(count: int) -> list[Member]:
    """Half cross-entropy, half MSE, each over seeds 0, 1, ...: P1's 32 runs, listed loss by loss."""
    return [Member(LOSSES[i * 2 // count], seed=i % (count // 2), lr=0.1) for i in range(count)]


def final_accuracy(result) -> dict[str, list[float]]:
    final = result.frame[result.frame.step == result.frame.step.max()]
    return {loss: final[final.loss == loss].test_accuracy.tolist() for loss in LOSSES}


def summarise(accuracies: dict[str, list[float]]) -> str:
    return ", ".join(
        f"{loss} {100 * statistics.mean(a):.1f} +- {100 * statistics.stdev(a):.1f}%"
        for loss, a in accuracies.items()
        if len(a) > 1
    )


#: This process's CPU seconds in the last ``timed`` call (all its threads).
LAST_CPU = [0.0]


def timed(fn):
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - started, out


def plain_thread_count(one_run) -> int:
    """The faster thread count for the plain loop, 1 or all, by the better of two timings of ``one_run`` each in
    CPU seconds over the threads (``alone``): torch's thread pool spins while it waits for a core that another
    process holds, so on a shared machine the wall clock of one try can pick all threads by chance."""
    best = {}
    for threads in sorted({1, torch.get_num_threads()}):
        tries = []
        with intra_op_threads(threads):
            for _ in range(2):
                timed(one_run)
                tries.append(alone(threads))
        best[threads] = min(tries)
    return min(best, key=best.get)


def alone(threads: int) -> float:
    """The last ``timed`` call's CPU seconds over the threads it kept busy: its wall time had it had the machine to
    itself (on a machine shared with other work the wall clock also counts the time spent waiting for a core)."""
    return LAST_CPU[0] / max(1, threads)


def peak_gflops(library: str, device: str, n: int = 2048, repeats: int = 3, tf32: bool = False) -> float:
    """The best of ``repeats`` n x n x n float32 products on all threads (or the GPU)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        if library == "numpy":
            an, bn = a.numpy(), b.numpy()
            seconds, _ = timed(lambda an=an, bn=bn: an @ bn)
        else:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            if device == "cuda":
                torch.cuda.synchronize()
            seconds, _ = timed(lambda: (a @ b, torch.cuda.synchronize() if device == "cuda" else None))
            torch.backends.cuda.matmul.allow_tf32 = False
        best = min(best, seconds)
    return 2 * n**3 / best / 1e9


def matmul_bound(plan, n_members: int, steps: int, device: str = "cpu", tf32: bool = False) -> float:
    """Seconds for the batched products of ``steps`` training steps alone: the eight products of each step
    in the trainer's own buffers and layouts, in the plan's blocks, threads and matmul library."""
    blocks = plan.blocks(n_members)

    def products_of(block: slice):
        m = block.stop - block.start
        model = MLP.create(SIZES, list(range(m)), [1.0] * m, device=device)
        buffers = StepBuffers.for_mlp(model.weights, model.biases, 100)
        mm = BatchedProducts.of(plan.matmul, buffers)
        x = torch.randn(m, 100, SIZES[0], device=device)
        delta_t = torch.randn(m, SIZES[-1], 100, device=device)
        w, b = model.weights, model.biases

        def step():
            h1 = mm.add_product(buffers.hidden[0], b[0], x, w[0])
            h2 = mm.add_product(buffers.hidden[1], b[1], h1, w[1])
            mm.add_product(buffers.logits_t, b[2], w[2], h2.transpose(1, 2))
            mm.product(buffers.grads[4], delta_t, h2)
            d2 = mm.product(buffers.deltas[1], delta_t.transpose(1, 2), w[2])
            mm.product(buffers.grads[2], h1.transpose(1, 2), d2)
            d1 = mm.product(buffers.deltas[0], d2, w[1].transpose(1, 2))
            mm.product(buffers.grads[0], x.transpose(1, 2), d1)

        return step

    steps_of = {b.start: products_of(b) for b in blocks}  # made before the clock starts

    def run(block):
        for _ in range(steps):
            steps_of[block.start]()

    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run_blocks(blocks, plan.workers, plan.threads_per_block, run, threading.Event())
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


def machine_line() -> str:
    blas = ", ".join(
        f"{i['internal_api']} {i.get('version') or ''} {i.get('architecture') or ''}".strip() for i in blas_libraries()
    )
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    return (
        f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}; {blas}; "
        f"OpenBLAS environment: {env or 'none'}"
    )


#: The plain loop's time alone (CPU seconds), for the "alone" column of ``row``.
PLAIN_ALONE = [0.0]


def row(label: str, seconds: float, plain: float, gflop: float, note: str = "", cpu: float | None = None) -> None:
    """One setup: wall seconds, ratio to the plain loop and GFLOP/s; with ``cpu`` (seconds alone, see ``alone``)
    that time and its ratio to the plain loop's time alone."""
    by_cpu = f"{cpu:8.2f} {PLAIN_ALONE[0] / cpu:7.1f}x" if cpu else f"{'':8s} {'':8s}"
    print(f"{label:52s} {seconds:8.2f} {plain / seconds:8.1f}x {gflop / seconds:9.1f} | {by_cpu}  {note}")


def cpu_benchmark(args) -> None:
    epochs = 4 if args.quick else 20
    data = load_dataset("mnist1d", validation=0)  # P1 trains on all 4,000 training sequences
    steps = (data.x_train.shape[0] // 100) * epochs
    # Evaluate at the start and the end only, like the plain loop.
    config = TrainConfig(model="mlp", hidden=HIDDEN, epochs=epochs, batch_size=100, eval_every_steps=10**9)
    members = members_of(2 * SEEDS)
    gflop = flops_per_member(steps) * len(members) / 1e9
    print(
        f"P1: MNIST-1D, MLP 40-100-100-10, SGD 0.1/0.9, batch 100, {epochs} epochs ({steps} steps), 32 runs, {gflop:.0f} GFLOP"
    )
    print(machine_line())
    cores = torch.get_num_threads()
    peaks = {lib: peak_gflops(lib, "cpu") for lib in ("torch", "numpy")}
    limit = gflop / max(peaks.values())
    print(
        f"large-matmul peak (2048^3, {cores} threads): torch {peaks['torch']:.0f} GFLOP/s, numpy {peaks['numpy']:.0f} "
        f"GFLOP/s: P1's products alone at the better peak take {limit:.2f} s"
    )

    # 1. The plain loop: one nn.Module + torch.optim run after another.
    plain_acc: dict[str, list[float]] = {loss: [] for loss in LOSSES}

    def plain_loop():
        for m in members:
            plain_acc[m.loss].append(train_reference(data, m, config)[1])

    # At the faster of one and all threads (measured on one run): on a machine shared with other work, torch's
    # thread pool can make the plain loop several times slower on all threads than on one, which would flatter
    # every ratio below.
    plain_threads = plain_thread_count(lambda: train_reference(data, members[0], config))
    with intra_op_threads(plain_threads):
        plain, _ = timed(plain_loop)
    plain_cpu = PLAIN_ALONE[0] = alone(plain_threads)

    # 2. The population: the first run measures its plan (and caches it), the second reuses it.
    train_population(data, members[:2], replace(config, epochs=1), progress=False)  # warm-up
    first_seconds, first = timed(lambda: train_population(data, members, config, progress=False))
    first_cpu = alone(cores)
    default_seconds, default = timed(lambda: train_population(data, members, config, progress=False))
    plan = default.plan
    default_cpu = alone(plan.workers * plan.threads_per_block)
    print()
    print(
        "wall: the clock; alone: this process's CPU seconds over the threads it kept busy (the wall time with the\n"
        "machine to itself: other work on a shared machine makes the clock also count the waits for a core)"
    )
    print(f"{'setup':52s} {'wall s':>8s} {'vs plain':>9s} {'GFLOP/s':>9s} | {'alone s':>8s} {'vs plain':>8s}  notes")
    row(
        f"plain per-run loop (nn.Module + torch.optim, {plain_threads} thread(s))",
        plain,
        plain,
        gflop,
        summarise(plain_acc),
        plain_cpu,
    )
    row(
        f"population, first run (measures its plan: {first.plan.source})",
        first_seconds,
        plain,
        gflop,
        summarise(final_accuracy(first)),
        first_cpu,
    )
    row(
        "population, default (plan from the cache)",
        default_seconds,
        plain,
        gflop,
        f"plan {plan.describe()}",
        default_cpu,
    )
    for t in first.plan_timings or default.plan_timings or []:
        print(
            f"    probe: blocks of {t['block_size']}, {t['threads_per_block']} thread(s), {t['workers']} worker(s), "
            f"{t['matmul']}: {t['member_steps_per_second']:.0f} member-steps/s"
        )

    # 3. Each matmul library and each worker count (one-thread blocks), and one block on all threads.
    settings = [("matmul", lib) for lib in ("torch", "numpy")]
    settings += [("workers", w) for w in range(1, cores + 1)]
    results = {}
    for key, value in settings:
        if key == "matmul":
            variant = replace(
                config, matmul=value, block_size=plan.block_size, threads_per_block=plan.threads_per_block
            )
            label = f"  matmul {value}, the default's blocks"
        else:
            variant = replace(config, workers=value, threads_per_block=1, matmul=plan.matmul)
            label = f"  workers={value}, one-thread blocks, {plan.matmul}"
        seconds, result = timed(lambda variant=variant: train_population(data, members, variant, progress=False))
        cpu = alone(result.plan.workers * result.plan.threads_per_block)
        results[(key, value)] = (seconds, cpu)
        row(label, seconds, plain, gflop, f"blocks {result.blocks}", cpu)
    one_block = replace(config, block_size=len(members), threads_per_block=cores, workers=1, matmul=plan.matmul)
    seconds, _ = timed(lambda: train_population(data, members, one_block, progress=False))
    results["one block"] = (seconds, alone(cores))
    row(f"  one block on all {cores} threads, {plan.matmul}", seconds, plain, gflop, "", results["one block"][1])
    for i, kind in ((0, "wall"), (1, "alone")):
        best = min(r[i] for r in results.values())
        default = (default_seconds, default_cpu)[i]
        print(
            f"  {kind}: the default takes {default / best:.2f}x the best setting above and "
            f"{default / results[('workers', 1)][i]:.2f}x workers=1"
        )

    # 4. The bounds: the step's products alone, in the default plan's blocks and threads, with each library.
    for lib in ("torch", "numpy"):
        bound, _ = timed(lambda lib=lib: matmul_bound(replace(plan, matmul=lib), len(members), steps))
        bound_cpu = alone(plan.workers * plan.threads_per_block)
        row(
            f"  matmul-only bound, {lib} products, the default's blocks",
            bound,
            plain,
            gflop,
            f"the default takes {default_seconds / bound:.2f}x this bound (alone: {default_cpu / bound_cpu:.2f}x)",
            bound_cpu,
        )
    row("  the machine's limit: P1's products at the large-matmul peak", limit, plain, gflop)

    # 5. How the time grows with the number of members.
    print()
    print(f"{'members':>8s} {'alone s':>8s} {'s per member':>13s} {'GFLOP/s':>8s} {'vs the plain loop':>18s}  plan")
    per_run_plain = plain_cpu / len(members)
    base = None
    for count in (32, 128) if args.quick else (32, 128, 1024):
        crowd = members_of(count)
        seconds, result = timed(lambda crowd=crowd: train_population(data, crowd, config, progress=False))
        seconds = alone(result.plan.workers * result.plan.threads_per_block)  # the machine is shared
        per_member = seconds / count
        base = base or per_member
        print(
            f"{count:8d} {seconds:8.2f} {per_member:13.4f} {gflop / len(members) * count / seconds:8.1f} "
            f"{per_run_plain / per_member:17.1f}x  {result.plan.block_size} per block, {result.plan.workers} workers, "
            f"{result.plan.matmul} ({per_member / base:.2f}x the time per member of 32)"
        )


def cuda_benchmark(args) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device here")
    epochs = 4 if args.quick else 20
    data = load_dataset("mnist1d", validation=0)
    steps = (data.x_train.shape[0] // 100) * epochs
    config = TrainConfig(
        model="mlp", hidden=HIDDEN, epochs=epochs, batch_size=100, eval_every_steps=10**9, device="cuda"
    )
    print(
        f"P1 on {torch.cuda.get_device_name(0)}: MNIST-1D, MLP 40-100-100-10, SGD 0.1/0.9, batch 100, {steps} steps a member"
    )
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(
        f"large-matmul peak (8192^3): fp32 {peak_gflops('torch', 'cuda', 8192) / 1e3:.1f} TFLOP/s, "
        f"TF32 {peak_gflops('torch', 'cuda', 8192, tf32=True) / 1e3:.1f} TFLOP/s"
    )
    plain_runs = 8 if args.quick else 32
    plain_members = members_of(plain_runs)
    reference = replace(config, device="cuda")
    torch.cuda.synchronize()
    plain, _ = timed(lambda: [train_reference(data.to("cuda"), m, reference) for m in plain_members])
    per_run = plain / plain_runs
    print(f"plain nn.Module + torch.optim loop on the GPU: {per_run:.3f} s a run ({plain_runs} runs)")
    train_population(data, members_of(32), replace(config, epochs=1), progress=False)  # warm-up
    print()
    print(
        f"{'members':>8s} {'precision':>9s} {'wall s':>8s} {'ms/member':>10s} {'TFLOP/s':>8s} {'vs plain':>9s} "
        f"{'bound s':>8s} {'x bound':>8s}"
    )
    for count in (32, 1024) if args.quick else (32, 1024, 4096, 16384):
        for precision in ("fp32", "tf32"):
            if count == 32 and precision == "tf32":
                continue
            variant = replace(config, precision=precision)
            torch.cuda.synchronize()
            seconds, result = timed(
                lambda variant=variant, count=count: train_population(data, members_of(count), variant, progress=False)
            )
            bound = matmul_bound(result.plan, count, steps, device="cuda", tf32=precision == "tf32")
            tflops = flops_per_member(steps) * count / seconds / 1e12
            print(
                f"{count:8d} {precision:>9s} {seconds:8.2f} {1e3 * seconds / count:10.2f} {tflops:8.2f} "
                f"{per_run * count / seconds:8.0f}x {bound:8.2f} {seconds / bound:8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs and fewer sizes, for a fast look")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with intra_op_threads(torch.get_num_threads()):  # numpy's BLAS on the same thread count as torch
        (cuda_benchmark if args.device == "cuda" else cpu_benchmark)(args)


if __name__ == "__main__":
    main()
