"""Where the full ``comparison`` spec's time goes: each cell's training and evaluation time, estimated from a slice.

    python benchmarks/comparison_cells.py --data-dir ../shared/data          # every cell of the full spec
    python benchmarks/comparison_cells.py --cells mnist-cnn mnist1d-cnn      # some of them
    python benchmarks/comparison_cells.py --size small                       # another size of the spec

Running the full spec takes hours on 2 CPU cores; this takes minutes. For each cell of
``src/losslab/experiments/specs/comparison.toml`` (at the full size unless ``--size``) it fixes the cell's
execution plan as ``losslab run`` does (``runner.plan_cell``: measured, or taken from the plan cache), then, on
the first round of blocks (the blocks that run at once on the plan's workers; every round is the same work):

- trains ``--steps`` steps after ``--warmup`` (every member its own data order, loss and optimiser, as in a
  run) and scales to the cell's steps;
- times one ordinary evaluation (train subset, validation and test: every metric of a row) and one final
  evaluation (bootstrap, reliability bins, temperature scaling), and scales to the cell's evaluations
  (step 0 and every epoch; the last one final);
- times the step's products alone in the same blocks ("matmul-only bound": for the CNNs the textbook
  im2col products, as benchmarks/p2_cnn.py), with the plan's library;

then multiplies by the rounds of blocks. It prints each cell's estimate, the share of evaluation, the ratio to
its bound, and the total in minutes. Estimates, not measurements of a run: the slice's steps see caches
warmed by the same shapes, and a run's time also includes loading data and writing results (seconds).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from dataclasses import replace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p1_population import machine_line  # noqa: E402
from p2_cnn import cnn1d_products, mlp_products, mnist_cnn_products, product_bound  # noqa: E402

from losslab.experiments.runner import _load_cell_dataset, plan_cell  # noqa: E402
from losslab.experiments.spec import load_spec  # noqa: E402
from losslab.models import mlp_widths  # noqa: E402
from losslab.train import evaluation  # noqa: E402
from losslab.train.executor import intra_op_threads, run_blocks  # noqa: E402
from losslab.train.loss_groups import LossGroups  # noqa: E402
from losslab.train.population import _time_steps, build_population, check_population  # noqa: E402


def cell_products(cell, dataset, binary: bool) -> list:
    config = cell.train
    outputs = 1 if binary else dataset.num_classes
    if config.model == "cnn":
        return mnist_cnn_products(config.batch_size, own=False)
    if config.model == "cnn1d":
        return cnn1d_products(config.batch_size, own=False)
    hidden = [] if config.model == "linear" else mlp_widths(config.hidden)
    return mlp_products(config.batch_size, [dataset.num_features, *hidden, outputs])


def estimate(cell, dataset, args) -> dict:
    """Seconds of training, of evaluation and of products alone for the whole cell, from the first round."""
    config = replace(cell.train, **{k: cell.plans["main"][k] for k in ("block_size", "threads_per_block", "matmul")})
    members = cell.members
    binary, resolved = check_population(dataset, members, config)
    data = evaluation.prepare(dataset, binary, config)
    model = build_population(dataset, members, binary, config)
    from losslab.train.plan import default_plan

    plan = default_plan(config, len(members), model.member_bytes(config.batch_size), model.splittable)
    blocks = plan.blocks(len(members))
    rounds = math.ceil(len(blocks) / plan.workers)
    first = blocks[: plan.workers]
    steps_per_epoch = data.x_train.shape[0] // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    steps = min(args.steps, total_steps)

    def train_slice(block: slice) -> float:
        part = model.select(block)
        part.matmul = plan.matmul
        return _time_steps(part, data, members[block], resolved[block], binary, config, args.warmup, steps)

    def evaluations(block: slice) -> tuple[float, float]:
        part = model.select(block)
        part.matmul = plan.matmul
        groups = LossGroups(resolved[block], binary, torch.device(config.device))
        evaluation.evaluate(part, groups, data, binary, config, False)  # warm-up
        started = time.perf_counter()
        evaluation.evaluate(part, groups, data, binary, config, False)
        ordinary = time.perf_counter() - started
        started = time.perf_counter()
        evaluation.evaluate(part, groups, data, binary, config, True)
        return ordinary, time.perf_counter() - started

    stop = threading.Event()
    cpu_share = len(first)  # blocks running at once: the CPU time of a round divided by them is its time alone

    def run_round(work):
        cpu = time.process_time()
        out = run_blocks(first, plan.workers, plan.threads_per_block, work, stop)
        return out, (time.process_time() - cpu) / cpu_share

    # The better of two tries for the slice and the bound: other work on the machine only ever slows them.
    tries = [run_round(train_slice) for _ in range(2)]
    scale = total_steps / steps
    train = min(max(out) for out, _ in tries) * scale
    train_cpu = min(cpu for _, cpu in tries) * scale * steps / (steps + args.warmup)  # the CPU time had a warm-up
    timed, eval_cpu = run_round(evaluations)
    ordinary, final = max(t[0] for t in timed), max(t[1] for t in timed)
    evaluate = config.epochs * ordinary + final  # step 0 and each epoch's end; the last is the final one
    # The CPU time covered a warm-up, an ordinary and a final evaluation: count the warm-up as ordinary.
    evaluate_cpu = eval_cpu * evaluate / (2 * ordinary + final)
    products = cell_products(cell, dataset, binary)
    bounds = []
    for _ in range(2):
        cpu = time.process_time()
        wall = product_bound(products, plan, len(members), steps, plan.matmul, first_round=True)
        bounds.append((wall, (time.process_time() - cpu) / cpu_share))
    bound = min(w for w, _ in bounds) * scale
    bound_cpu = min(c for _, c in bounds) * scale
    return {
        "members": len(members),
        "steps": total_steps,
        "plan": plan,
        "rounds": rounds,
        "train": train * rounds,
        "evaluate": evaluate * rounds,
        "bound": bound * rounds,
        "train_cpu": train_cpu * rounds,
        "evaluate_cpu": evaluate_cpu * rounds,
        "bound_cpu": bound_cpu * rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST / Fashion-MNIST files")
    parser.add_argument("--size", default=None, help="a size of the spec (default: the full spec)")
    parser.add_argument("--cells", nargs="*", default=None, help="cell ids (default: all)")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per cell (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    spec = load_spec("comparison")
    cells = [c for c in spec.cells(args.size) if args.cells is None or c.id in args.cells]
    with intra_op_threads(torch.get_num_threads()):
        print(f"comparison spec ({args.size or 'full'}), per-cell estimates from {args.steps}-step slices")
        print(machine_line())
        print(
            "wall: seconds on the clock; cpu: this process's CPU seconds divided by the blocks running at once (the\n"
            "wall time it would take with the machine to itself, where other work shares the machine)"
        )
        print(
            f"{'cell':20s} {'members':>7s} {'steps':>6s} {'plan':>22s} {'train s':>9s} {'eval s':>8s} "
            f"{'total s':>9s} {'eval %':>6s} {'bound s':>8s} {'x bound':>7s} | {'cpu: train':>10s} {'eval':>6s} "
            f"{'total':>7s} {'bound':>7s} {'x bound':>7s}"
        )
        totals = dict.fromkeys(("train", "evaluate", "bound", "train_cpu", "evaluate_cpu", "bound_cpu"), 0.0)
        cache: dict = {}
        for cell in cells:
            dataset = _load_cell_dataset(cell, args.data_dir, "cpu", cache)
            cell = plan_cell(cell, dataset)
            e = estimate(cell, dataset, args)
            for key in totals:
                totals[key] += e[key]
            plan = f"{e['plan'].block_size}x{e['rounds']}r {e['plan'].matmul} {e['plan'].workers}w"
            print(f"{cell.id:20s} {e['members']:7d} {e['steps']:6d} {plan:>22s} " + columns(e))
        print(f"{'total':20s} {'':7s} {'':6s} {'':>22s} " + columns(totals))
        for kind, suffix in (("wall", ""), ("cpu", "_cpu")):
            train, evaluate = totals[f"train{suffix}"], totals[f"evaluate{suffix}"]
            print(
                f"estimated time of these cells ({kind}): {(train + evaluate) / 60:.1f} min (training {train / 60:.1f}, "
                f"evaluation {evaluate / 60:.1f}; matmul-only bound of the training {totals[f'bound{suffix}'] / 60:.1f})"
            )


def columns(e: dict) -> str:
    total, total_cpu = e["train"] + e["evaluate"], e["train_cpu"] + e["evaluate_cpu"]
    return (
        f"{e['train']:9.0f} {e['evaluate']:8.0f} {total:9.0f} {100 * e['evaluate'] / total:5.0f}% {e['bound']:8.0f} "
        f"{e['train'] / e['bound']:6.2f}x | {e['train_cpu']:10.0f} {e['evaluate_cpu']:6.0f} {total_cpu:7.0f} "
        f"{e['bound_cpu']:7.0f} {e['train_cpu'] / e['bound_cpu']:6.2f}x"
    )


if __name__ == "__main__":
    main()
