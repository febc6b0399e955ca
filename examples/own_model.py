"""Train a torch.nn.Module of your own as a population, and check it against the plain PyTorch loop.

What it shows:
1. ``losslab.register_model(name, factory)``: ``factory(input_shape, num_classes)`` returns an ordinary
   ``nn.Module`` (here a small residual MLP with LayerNorm and GELU, nothing losslab knows about);
2. a population of such networks (cross-entropy and MSE, several seeds, each member its own learning rate
   and initial logit scale) trained at once through ``torch.func`` (stacked parameters, ``vmap`` over
   ``functional_call``), in float64;
3. member i against the same network trained alone the plain way (``nn.Module`` + ``torch.optim`` +
   autograd, ``losslab.train.reference``): the largest difference of any parameter, which is rounding
   (about 1e-12 at most), not a different training run;
4. what ``vmap`` cannot train, a BatchNorm layer in training mode, refused with one line naming the layer
   and the alternative.

Run:  python examples/own_model.py            (about 10 seconds)
      python examples/own_model.py --smoke    (a few seconds; LOSSLAB_SMOKE=1 does the same)
It writes nothing.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
from torch import nn

import losslab
from losslab.data import load_dataset
from losslab.train import Member, TrainConfig, train_population
from losslab.train.reference import train_reference


class ResidualMLP(nn.Module):
    """x -> LayerNorm -> Linear -> GELU (+ a linear skip) -> Linear: logits."""

    def __init__(self, features: int, classes: int, width: int = 32):
        super().__init__()
        self.norm = nn.LayerNorm(features)
        self.hidden = nn.Linear(features, width)
        self.skip = nn.Linear(features, width, bias=False)
        self.out = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [batch, *input_shape]
        x = self.norm(x.flatten(1))
        return self.out(nn.functional.gelu(self.hidden(x)) + self.skip(x))


def residual_mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A residual MLP with LayerNorm and GELU, 32 wide."""
    return ResidualMLP(math.prod(input_shape), num_classes)


def largest_difference(population_state: dict, plain: nn.Module) -> float:
    return max((population_state[k] - v).abs().max().item() for k, v in plain.state_dict().items())


def main(smoke: bool) -> None:
    losslab.register_model("residual-mlp", residual_mlp)  # the docstring's first line is its summary
    data = load_dataset("digits")
    seeds = range(1 if smoke else 4)
    members = [
        Member(loss, seed=s, lr=lr, init_scale=scale)
        for loss, lr in (("cross_entropy", 0.05), ("mse", 0.5))
        for scale in (1.0, 10.0)
        for s in seeds
    ]
    config = TrainConfig(model="residual-mlp", epochs=1 if smoke else 3, batch_size=64, dtype="float64")
    result = train_population(data, members, config, progress=False)
    final = result.frame[result.frame["step"] == result.frame["step"].max()]
    print(f"{len(members)} residual MLPs trained as one population on digits ({result.seconds:.1f} s), float64")
    table = final.groupby(["loss", "init_scale"])["test_accuracy"].mean().unstack("init_scale")
    print("final test accuracy, mean over seeds, by initial logit scale:")
    print(table.round(3).to_string())

    print("\nmember i against the same network trained alone with nn.Module + torch.optim:")
    worst = 0.0
    for i in (0, len(members) - 1) if smoke else range(0, len(members), len(seeds)):
        plain, accuracy = train_reference(data, members[i], config)
        difference = largest_difference(result.model.member_state(i), plain)
        worst = max(worst, difference)
        m = members[i]
        print(
            f"  member {i:2d} ({m.loss}, seed {m.seed}, scale {m.init_scale:g}): largest |population - plain| = "
            f"{difference:.1e}; test accuracy {final[final.member == i].test_accuracy.item():.4f} vs {accuracy:.4f}"
        )
    print(f"largest difference over the members compared: {worst:.1e}")

    class WithBatchNorm(nn.Module):
        def __init__(self, features: int, classes: int):
            super().__init__()
            self.layer = nn.Linear(features, 16)
            self.bn = nn.BatchNorm1d(16)
            self.out = nn.Linear(16, classes)

        def forward(self, x):
            return self.out(self.bn(self.layer(x.flatten(1))))

    losslab.register_model("with-batchnorm", lambda shape, k: WithBatchNorm(math.prod(shape), k))
    try:
        train_population(data, members[:1], TrainConfig(model="with-batchnorm", epochs=1), progress=False)
    except ValueError as exc:
        print(f"\nwhat vmap cannot train is refused before training:\n  {exc}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds (or LOSSLAB_SMOKE=1)")
    args = parser.parse_args()
    main(args.smoke or os.environ.get("LOSSLAB_SMOKE") == "1")
