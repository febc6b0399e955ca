"""Benchmark P1: the population trainer against the plain per-run loop and scikit-learn, in one run.

Workload (shared/PERFORMANCE-NOTES.md): MNIST-1D (4,000 train / 1,000 test, 40 features), MLP
40-100-100-10 ReLU, SGD lr 0.1 momentum 0.9, batch 100, 20 epochs (800 steps a run), cross-entropy
and MSE-on-probabilities x 16 seeds = 32 runs, float32. About 230 GFLOP of matmul work (3 x forward).

    python benchmarks/p1_population.py            # full: plain loop, population, sklearn, 32/128/1024 members
    python benchmarks/p1_population.py --quick    # 4 epochs and 32/128 members, for a fast look

Timings on shared 2-core machines vary by +-15% run to run, so everything is compared as ratios
against the plain loop measured in the same run. The population trainer runs as configured by
default (blocks of members on parallel worker threads) and on one worker with all intra-op threads;
the matmul-only bound times the batched products of its steps alone, in the same blocks and
threads, which is the least time any implementation of this formulation could take here.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import threading
import time
import warnings
from dataclasses import replace

import numpy as np
import torch

from losslab.train import Member, TrainConfig, load_dataset, train_population
from losslab.train.executor import run_blocks
from losslab.train.reference import train_reference

LOSSES = ("cross_entropy", "mse")
SEEDS = 16


def flops_per_run(features: int, hidden: list[int], classes: int, examples_seen: int) -> float:
    sizes = [features, *hidden, classes]
    forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * forward * examples_seen  # forward + two backward products per layer


def matmul_bound(blocks: list[int], sizes: list[int], batch: int, steps: int, workers: int) -> float:
    """Seconds for the batched products of ``steps`` training steps alone (forward, weight gradients and
    the backpropagated deltas, in the trainer's layouts), run by the trainer's own block executor."""

    def products(m: int):
        r = torch.randn
        acts = [r(m, batch, w) for w in sizes[:-1]]  # the input and the hidden activations
        hidden = list(zip(sizes[:-2], sizes[1:-1]))
        weights = [r(m, a, b) for a, b in hidden]
        biases = [r(m, 1, b) for _, b in hidden]
        last_w, last_b, delta_t = r(m, sizes[-1], sizes[-2]), r(m, sizes[-1], 1), r(m, sizes[-1], batch)
        deltas = [r(m, batch, b) for _, b in hidden]

        def step():
            for a, w, b in zip(acts, weights, biases):
                torch.baddbmm(b, a, w)
            torch.baddbmm(last_b, last_w, acts[-1].transpose(1, 2))
            torch.bmm(delta_t, acts[-1])
            torch.bmm(delta_t.transpose(1, 2), last_w)
            for i, (a, d) in enumerate(zip(acts[:-1], deltas)):
                torch.bmm(a.transpose(1, 2), d)
                if i > 0:
                    torch.bmm(d, weights[i].transpose(1, 2))

        return step

    steps_of = [products(m) for m in blocks]  # made before the clock starts

    def run(step):
        for _ in range(steps):
            step()

    started = time.perf_counter()
    run_blocks(steps_of, workers, 1, run, threading.Event())
    return time.perf_counter() - started


def summarise(accuracies: dict[str, list[float]]) -> str:
    return ", ".join(
        f"{loss} {100 * statistics.mean(a):.1f} +- {100 * statistics.stdev(a):.1f}%" for loss, a in accuracies.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs and 32/128 members only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = 4 if args.quick else 20
    data = load_dataset("mnist1d")
    hidden = [100, 100]
    config = TrainConfig(
        model="mlp", hidden=hidden, epochs=epochs, batch_size=100, momentum=0.9, eval_every_steps=10**9
    )  # evaluate at the start and the end only, like the plain loop
    members = [Member(loss, seed=s, lr=0.1) for loss in LOSSES for s in range(SEEDS)]
    steps = (data.x_train.shape[0] // 100) * epochs
    gflop = flops_per_run(40, hidden, 10, steps * 100) * len(members) / 1e9
    print(
        f"P1: MNIST-1D, MLP 40-100-100-10, SGD 0.1/0.9, batch 100, {epochs} epochs ({steps} steps), "
        f"{len(members)} runs, {gflop:.0f} GFLOP"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")

    # 1. The plain loop: one nn.Module + torch.optim run after another.
    started = time.perf_counter()
    plain_acc: dict[str, list[float]] = {loss: [] for loss in LOSSES}
    for m in members:
        plain_acc[m.loss].append(train_reference(data, m, config)[1])
    plain = time.perf_counter() - started

    # 2. The population trainer: all 32 runs at once, as configured by default (blocks of members on
    # parallel worker threads) and on one worker using all intra-op threads.
    train_population(data, members[:2], TrainConfig(model="mlp", hidden=hidden, epochs=1), progress=False)  # warm-up
    started = time.perf_counter()
    result = train_population(data, members, config, progress=False)
    population = time.perf_counter() - started
    final = result.frame[result.frame.step == result.frame.step.max()]
    pop_acc = {loss: final[final.loss == loss].test_accuracy.tolist() for loss in LOSSES}
    workers = result.workers
    started = time.perf_counter()
    single = train_population(data, members, replace(config, workers=1), progress=False)
    one_block = time.perf_counter() - started
    same = all(torch.equal(a, b) for a, b in zip(result.model.params, single.model.params))
    bound = matmul_bound(result.blocks, [40, *hidden, 10], 100, steps, workers)

    # 3. scikit-learn's MLPClassifier, cross-entropy only (it has no MSE-on-probabilities option).
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    started = time.perf_counter()
    sk_acc = []
    for s in range(SEEDS):
        clf = MLPClassifier(
            hidden_layer_sizes=tuple(hidden),
            solver="sgd",
            learning_rate_init=0.1,
            momentum=0.9,
            nesterovs_momentum=False,
            batch_size=100,
            max_iter=epochs,
            alpha=0.0,
            random_state=s,
            n_iter_no_change=epochs + 1,
            tol=0.0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(data.x_train.numpy(), data.y_train.numpy())
        sk_acc.append(clf.score(data.x_test.numpy(), data.y_test.numpy()))
    sklearn_seconds = time.perf_counter() - started

    print()
    print(f"{'setup':44s} {'wall s':>8s} {'vs plain':>9s} {'GFLOP/s':>8s}  test accuracy (mean +- std over 16 seeds)")
    print(
        f"{'plain per-run loop (nn.Module + torch.optim)':44s} {plain:8.2f} {1:8.1f}x {gflop / plain:8.1f}  "
        f"{summarise(plain_acc)}"
    )
    print(
        f"{f'losslab population trainer ({workers} workers)':44s} {population:8.2f} {plain / population:8.1f}x "
        f"{gflop / population:8.1f}  {summarise(pop_acc)}"
    )
    print(
        f"{'  one worker on all intra-op threads':44s} {one_block:8.2f} {plain / one_block:8.1f}x "
        f"{gflop / one_block:8.1f}  ({'bit-identical parameters' if same else 'parameters DIFFER'})"
    )
    print(
        f"{'  matmul-only bound, same blocks and threads':44s} {bound:8.2f} {plain / bound:8.1f}x "
        f"{gflop / bound:8.1f}  (the trainer takes {population / bound:.2f}x the bound)"
    )
    print(
        f"{'scikit-learn MLPClassifier (16 CE runs only)':44s} {sklearn_seconds:8.2f} {'':>9s} "
        f"{gflop / 2 / sklearn_seconds:8.1f}  cross_entropy {100 * np.mean(sk_acc):.1f} +- {100 * np.std(sk_acc, ddof=1):.1f}%"
    )

    # 4. How the time grows with the number of members.
    print()
    print(f"{'members':>8s} {'wall s':>8s} {'s per member':>13s} {'GFLOP/s':>8s} {'vs 32 runs of the plain loop':>30s}")
    sizes = (32, 128) if args.quick else (32, 128, 1024)
    for count in sizes:
        crowd = [Member(LOSSES[i % 2], seed=i, lr=0.1) for i in range(count)]
        started = time.perf_counter()
        train_population(data, crowd, config, progress=False)
        seconds = time.perf_counter() - started
        per_run_plain = plain / len(members)
        print(
            f"{count:8d} {seconds:8.2f} {seconds / count:13.4f} {gflop / len(members) * count / seconds:8.1f} "
            f"{per_run_plain * count / seconds:29.1f}x"
        )


if __name__ == "__main__":
    main()
