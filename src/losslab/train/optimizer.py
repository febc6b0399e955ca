"""SGD with momentum and Adam for stacked parameters, one learning rate per member.

The updates are those of ``torch.optim.SGD`` and ``torch.optim.Adam`` (defaults: no weight decay,
no Nesterov, no AMSGrad), applied to parameters stacked along a leading member axis; the tests check
member i against torch.optim on the plain model in float64.

SGD takes its learning rate early: the trainer multiplies each member's logit gradient by
``gradient_scale`` (lr / batch for SGD, 1 / batch for Adam), and the gradients of the parameters are
linear in it, so SGD receives lr x g. With b' = lr b the update of torch.optim.SGD, b = m b + g,
p -= lr b, becomes b' = lr g + m b', p -= b': the same numbers up to rounding, two passes over the
parameters with no per-member broadcast (on large populations the update is memory-bound).
"""

from __future__ import annotations

import math

import torch

from losslab.models.flat import flat_like, flat_view
from losslab.train.config import TrainConfig


class PopulationOptimizer:
    """The optimiser state of every member of a block; ``step`` updates the parameters in place."""

    def __init__(self, config: TrainConfig, params: list[torch.Tensor], lrs: torch.Tensor):
        self.kind, self.config = config.optimizer, config
        self.lr = [lrs.view(-1, *([1] * (p.dim() - 1))) for p in params]
        # Multiplies the per-member logit gradient [M, B, ...] of the batch-summed loss (see the module doc).
        self.gradient_scale = (lrs if self.kind == "sgd" else torch.ones_like(lrs)) / config.batch_size
        self.state = flat_like(params, zero=True)
        self.state2 = [torch.zeros_like(p) for p in params] if self.kind == "adam" else None
        self.steps = 0

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """Update ``params`` in place from ``grads`` (as scaled by ``gradient_scale``).

        SGD with momentum takes ownership of the gradient tensors: ``grads`` (the list object the model
        handed in) gets the previous momentum buffers in their place, which the model overwrites on its
        next step. That makes the update two passes over the parameters: g += m b (the new buffer), p -= g.
        """
        # torch._foreach_* ops update all parameter tensors in one call each: fewer dispatches on CPU,
        # fewer kernel launches on a GPU, the same arithmetic as the per-tensor loop.
        self.steps += 1
        if self.kind == "sgd":
            momentum = self.config.momentum  # grads arrive as lr x g: the buffer holds lr x b
            flat = [flat_view(ts) for ts in (params, grads, self.state)]
            if all(f is not None for f in flat):  # the same arithmetic, two operations in all
                p, g, b = flat
                if momentum != 0 and self.steps > 1:
                    g.add_(b, alpha=momentum)
                p.sub_(g)
            else:
                if momentum != 0 and self.steps > 1:  # torch.optim.SGD starts the buffer at the first gradient
                    torch._foreach_add_(grads, self.state, alpha=momentum)
                torch._foreach_sub_(params, grads)
            if momentum != 0:
                for i, (g, b) in enumerate(zip(grads, self.state)):
                    self.state[i], grads[i] = g, b
            return
        beta1, beta2 = self.config.betas
        t = self.steps
        correction1, correction2_sqrt = 1 - beta1**t, math.sqrt(1 - beta2**t)
        torch._foreach_lerp_(self.state, grads, 1 - beta1)
        torch._foreach_mul_(self.state2, beta2)
        torch._foreach_addcmul_(self.state2, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(self.state2)
        torch._foreach_div_(denom, correction2_sqrt)
        torch._foreach_add_(denom, self.config.adam_eps)
        update = torch._foreach_div(self.state, denom)
        torch._foreach_mul_(update, self.step_sizes(correction1))
        torch._foreach_sub_(params, update)

    def step_sizes(self, correction1: float) -> list[torch.Tensor]:
        return [lr / correction1 for lr in self.lr]
