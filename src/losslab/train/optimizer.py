"""SGD with momentum and Adam for stacked parameters, one learning rate per member.

The updates are those of ``torch.optim.SGD`` and ``torch.optim.Adam`` (defaults: no weight decay,
no Nesterov, no AMSGrad), applied to parameters stacked along a leading member axis; the tests check
member i against torch.optim on the plain model in float64.
"""

from __future__ import annotations

import math

import torch

from losslab.train.config import TrainConfig


class PopulationOptimizer:
    """The optimiser state of every member of a block; ``step`` updates the parameters in place."""

    def __init__(self, config: TrainConfig, params: list[torch.Tensor], lrs: torch.Tensor):
        self.kind, self.config = config.optimizer, config
        self.lr = [lrs.view(-1, *([1] * (p.dim() - 1))) for p in params]
        self.state = [torch.zeros_like(p) for p in params]
        self.state2 = [torch.zeros_like(p) for p in params] if self.kind == "adam" else None
        self.steps = 0

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        self.steps += 1
        if self.kind == "sgd":
            momentum = self.config.momentum
            for p, g, buf, lr in zip(params, grads, self.state, self.lr):
                if momentum == 0:
                    buf = g
                elif self.steps == 1:
                    buf.copy_(g)  # torch.optim.SGD starts the momentum buffer at the first gradient
                else:
                    buf.mul_(momentum).add_(g)
                p.addcmul_(buf, lr, value=-1.0)
            return
        beta1, beta2 = self.config.betas
        t = self.steps
        correction1, correction2_sqrt = 1 - beta1**t, math.sqrt(1 - beta2**t)
        for p, g, m, v, lr in zip(params, grads, self.state, self.state2, self.lr):
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.config.adam_eps)
            p.sub_(m / denom * (lr / correction1))
