"""nn.Module populations: torch.func's vmap against one plain module per member on worker threads.

    python benchmarks/module_forms.py            # two user-style modules, 32 members each

A model registered with ``register_model`` trains as a population in one of two ways (``TrainConfig.matmul``,
chosen by the execution plan): ``vmap`` (one batched call through torch.func for a block's members) or
``loop`` (each member its own plain module, called and differentiated in turn; blocks on worker threads).
For each module this prints the population's time with each, in the same blocks and workers, the plain
per-run loop (``train_reference``, a few runs timed and scaled, at the faster of one and all threads), and which the plan's probe chooses. The
modules: the MNIST-1D reference MLP with a residual block (``resmlp``, MNIST-1D, Adam) and the MNIST-1D CNN
as a user would register it (its nn.Module through torch.func, not losslab's hand-written ``cnn1d``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from p1_population import machine_line, timed  # noqa: E402
from p2_cnn import plain_seconds  # noqa: E402

from losslab.data import load_dataset  # noqa: E402
from losslab.models import register_model  # noqa: E402
from losslab.models.mnist1d import cnn1d  # noqa: E402
from losslab.train import Member, TrainConfig, train_population  # noqa: E402
from losslab.train.executor import intra_op_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--plain-runs", type=int, default=2)
    args = parser.parse_args()
    register_model("user-cnn1d", lambda shape, k: cnn1d(shape, k), summary="cnn1d's module, as a user's", replace=True)
    data = load_dataset("mnist1d", validation=0)
    members = [Member(("cross_entropy", "mse")[i * 2 // args.members], seed=i, lr=1e-3) for i in range(args.members)]
    with intra_op_threads(torch.get_num_threads()):
        print(machine_line())
        for model in ("resmlp", "user-cnn1d"):
            config = TrainConfig(
                model=model, optimizer="adam", epochs=args.epochs, batch_size=100, eval_every_steps=10**9
            )
            plain, threads, _ = plain_seconds(data, members, config, args.plain_runs)
            chosen = train_population(data, members, config, progress=False).plan  # measures (or reads the cache)
            print(
                f"{model}: {len(members)} members, Adam, batch 100, {args.epochs} epochs; plain loop {plain:.2f} s "
                f"({args.plain_runs} runs timed, scaled, {threads} thread(s)); the plan chooses {chosen.matmul} "
                f"({chosen.block_size} per block, {chosen.workers} workers, {chosen.source})"
            )
            for form in ("vmap", "loop"):
                fixed = replace(
                    config, matmul=form, block_size=chosen.block_size, threads_per_block=chosen.threads_per_block
                )
                seconds, _ = timed(lambda fixed=fixed: train_population(data, members, fixed, progress=False))
                print(f"  {form:5s} {seconds:7.2f} s  {plain / seconds:5.2f}x the plain loop")


if __name__ == "__main__":
    main()
