"""Where a training step's time goes: one block's steps under torch's profiler, products marked.

    python benchmarks/profile_step.py                       # P1's MLP block: 16 members, numpy products
    python benchmarks/profile_step.py --matmul torch --members 32
    python benchmarks/profile_step.py --model cnn1d --optimizer adam

One block of ``--members`` members (half cross-entropy, half MSE, as in P1) trains ``--steps`` steps on one
thread, as a worker of the default plan does, after a warm-up. It prints the time per step and per member-step,
the share spent in the batched products (each product call is wrapped in a ``products`` range, which also
covers numpy's BLAS, invisible to torch's profiler otherwise) and torch's operator table (self CPU time):
what remains besides the products is the elementwise work (bias, ReLU and its backward, the loss gradient,
the optimiser) and the batch gather.
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile, record_function

from losslab.data import load_dataset
from losslab.models import matmul as matmul_module
from losslab.train import Member, TrainConfig, evaluation
from losslab.train.executor import intra_op_threads
from losslab.train.population import _time_steps, build_population, check_population


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--matmul", choices=["torch", "numpy"], default="numpy")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rows", type=int, default=25, help="operators listed")
    args = parser.parse_args()

    data = load_dataset("mnist1d", validation=0)
    members = [Member(("cross_entropy", "mse")[i * 2 // args.members], seed=i, lr=0.1) for i in range(args.members)]
    config = TrainConfig(
        model=args.model, hidden=[100, 100], optimizer=args.optimizer, batch_size=100, epochs=20, matmul=args.matmul
    )
    binary, resolved = check_population(data, members, config)
    prepared = evaluation.prepare(data, binary, config)

    # Mark every batched product (torch's or numpy's) as a "products" range; numpy's add_product is its product
    # and a separate bias pass, which stays outside.
    marked_methods = [(matmul_module.TorchProducts, "product"), (matmul_module.TorchProducts, "add_product")]
    for cls, name in [*marked_methods, (matmul_module.NumpyProducts, "product")]:
        method = getattr(cls, name)

        def marked(self, *a, _method=method):
            with record_function("products"):
                return _method(self, *a)

        setattr(cls, name, marked)

    with intra_op_threads(1):
        model = build_population(data, members, binary, config)
        model.matmul = args.matmul
        _time_steps(model, prepared, members, resolved, binary, config, 5, 20)  # warm-up
        seconds, cpu = float("inf"), float("inf")
        for _ in range(3):  # wall and this process's CPU time: on a shared machine the CPU time waits for no one
            cpu_started = time.process_time()
            seconds = min(seconds, _time_steps(model, prepared, members, resolved, binary, config, 0, args.steps))
            cpu = min(cpu, time.process_time() - cpu_started)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _time_steps(model, prepared, members, resolved, binary, config, 0, args.steps)
    averages = prof.key_averages()
    products = next((e.cpu_time_total for e in averages if e.key == "products"), 0.0) / 1e6
    total = sum(e.self_cpu_time_total for e in averages) / 1e6
    print(
        f"{args.model}, {args.members} members, {args.matmul} products, {args.optimizer}, batch 100, one thread: "
        f"{1e3 * seconds / args.steps:.3f} ms a step, {1e3 * seconds / args.steps / args.members:.4f} ms a member-step "
        f"(best of 3 x {args.steps} steps, without the profiler); CPU time {1e3 * cpu / args.steps:.3f} ms a step"
    )
    print(
        f"under the profiler: {total:.3f} s of operators, of which products {products:.3f} s ({100 * products / total:.0f}%); "
        f"the rest {total - products:.3f} s ({100 * (total - products) / total:.0f}%)"
    )
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
