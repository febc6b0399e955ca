"""The population MLP (``linear`` and ``mlp``): ReLU layers with a hand-written backward of batched products.

Its batched products (``baddbmm``/``bmm``, or numpy's BLAS on the same memory) go through
``losslab.models.matmul``, into buffers reused from step to step: the fast path on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from losslab.models.flat import flat_like
from losslab.models.matmul import BatchedProducts, StepBuffers
from losslab.models.protocol import LogitGrad, uniform
from losslab.params import Interval, ListOf


def _flat_layers(weights: list[torch.Tensor], biases: list[torch.Tensor]):
    """Copies of the layers, back to back in one buffer in ``params`` order (W_1, b_1, W_2, ...): the optimiser
    then updates every parameter in one operation (``flat.flat_view``)."""
    pairs = [t for pair in zip(weights, biases) for t in pair]
    flat = flat_like(pairs)
    for target, source in zip(flat, pairs):
        target.copy_(source)
    return flat[0::2], flat[1::2]


@dataclass
class MLP:
    """Population MLP: x [M, B, d] -> ReLU(x W_1 + b_1) ... -> logits [M, B, K]. No hidden layer = linear.

    The last layer is stored transposed (``weights[-1]`` is [M, K, h], ``biases[-1]`` is [M, K, 1]) so
    that logits are computed class-major, [M, K, B] in memory, and returned as a [M, B, K] view. On CPU
    this makes the two K-wide products about 4x faster, and softmax over K runs on the fast strided
    path; the losses see an ordinary [M, B, K] tensor. ``member_layers`` gives the usual orientation.
    """

    weights: list[torch.Tensor]  # hidden W_l [M, in, out]; last [M, K, h] (transposed)
    biases: list[torch.Tensor]  # hidden b_l [M, 1, out]; last [M, K, 1]
    matmul: str = "torch"  # the batched-product library on CPU: "torch" (bmm) or "numpy" (its BLAS), see matmul.py
    # Training-step buffers by batch size, reused every step (and numpy views of them and of the weights).
    _workspace: dict = field(default_factory=dict, repr=False, compare=False)

    splittable: ClassVar[bool] = True
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch", "numpy")

    @staticmethod
    def init_member(sizes: list[int], seed: int, logit_scale: float, dtype=torch.float32):
        """One member's layers as (W [in, out], b [1, out]), PyTorch's nn.Linear default U(+-1/sqrt(fan_in)).

        ``logit_scale`` multiplies the last layer, so the initial logits are scaled by it: a large
        scale starts the member confidently (and mostly wrongly) committed to some class.
        """
        gen = torch.Generator().manual_seed(int(seed))
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1 / math.sqrt(fan_in)
            w, b = uniform(gen, (fan_in, fan_out), bound, dtype), uniform(gen, (1, fan_out), bound, dtype)
            if i == len(sizes) - 2:
                w, b = w * logit_scale, b * logit_scale
            layers.append((w, b))
        return layers

    @classmethod
    def create(cls, sizes: list[int], seeds: list[int], logit_scales: list[float], dtype=torch.float32, device="cpu"):
        members = [cls.init_member(sizes, s, c, dtype) for s, c in zip(seeds, logit_scales)]
        weights, biases = [], []
        for l in range(len(sizes) - 1):
            w = torch.stack([m[l][0] for m in members])
            b = torch.stack([m[l][1] for m in members])
            if l == len(sizes) - 2:  # class-major last layer
                w, b = w.transpose(1, 2), b.transpose(1, 2)
            weights.append(w.contiguous().to(device))
            biases.append(b.contiguous().to(device))
        return cls(*_flat_layers(weights, biases))

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def select(self, members: slice) -> MLP:
        return MLP(*_flat_layers([w[members] for w in self.weights], [b[members] for b in self.biases]), self.matmul)

    def member_bytes(self, batch: int) -> int:
        """Parameters, gradients and optimiser state, and a batch of activations and deltas at every layer."""
        widths = self.weights[0].shape[1] + sum(w.shape[2] for w in self.weights[:-1]) + self.weights[-1].shape[1]
        n_params = sum(p[0].numel() for p in self.params)
        return self.weights[0].element_size() * 3 * (n_params + batch * widths)

    @classmethod
    def concatenate(cls, parts: list[MLP]) -> MLP:
        """One population of the members of ``parts``, in order (populations trained in blocks)."""
        weights = [torch.cat(ws) for ws in zip(*(p.weights for p in parts))]
        biases = [torch.cat(bs) for bs in zip(*(p.biases for p in parts))]
        return cls(*_flat_layers(weights, biases), parts[0].matmul)

    def member_layers(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Member i's layers as (W [in, out], b [1, out]), the orientation of ``init_member``."""
        layers = [(w[i], b[i]) for w, b in zip(self.weights[:-1], self.biases[:-1])]
        return layers + [(self.weights[-1][i].T, self.biases[-1][i].T)]

    def _hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        activations = [x]
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            # baddbmm fuses the bias broadcast into the matmul; relu_ avoids another [M, B, h] buffer.
            activations.append(torch.baddbmm(b, activations[-1], w).relu_())
        return activations

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        # [M, K, h] @ [M, h, B] -> [M, K, B], returned as a [M, B, K] view.
        return torch.baddbmm(self.biases[-1], self.weights[-1], h.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [M, B, K] (evaluation: fresh tensors, torch's products)."""
        return self._logits(self._hidden(x)[-1])

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the gradients of the loss (in ``params`` order), by hand-written backprop.

        Every product goes through the block's matmul library into buffers reused from step to step; the
        returned logits and gradients live in those buffers until the next step.
        """
        mm = self._products(x.shape[1])
        ws = mm.buffers
        activations = [x]
        for i, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1])):
            activations.append(mm.add_product(ws.hidden[i], b, activations[-1], w).relu_())
        # [M, K, h] @ [M, h, B] -> [M, K, B]: class-major logits, seen as [M, B, K].
        logits = mm.add_product(ws.logits_t, self.biases[-1], self.weights[-1], activations[-1].transpose(1, 2))
        logits = logits.transpose(1, 2)
        delta_t = logit_grad(logits).transpose(1, 2)  # [M, K, B]: d(batch-mean loss) / d logits
        if not delta_t.is_contiguous():
            delta_t = delta_t.contiguous()
        last = len(self.weights) - 1
        grads = ws.grads
        mm.product(grads[2 * last], delta_t, activations[-1])  # [M, K, h]
        torch.sum(delta_t, dim=2, keepdim=True, out=grads[2 * last + 1])  # [M, K, 1]
        if last == 0:
            return logits, grads
        delta = mm.product(ws.deltas[last - 1], delta_t.transpose(1, 2), self.weights[-1])  # [M, B, h]
        for i in range(last - 1, -1, -1):
            # threshold_backward is several times faster on CPU than delta * (h > 0); in place is safe: delta
            # is this layer's own buffer.
            torch.ops.aten.threshold_backward.grad_input(delta, activations[i + 1], 0.0, grad_input=delta)
            mm.product(grads[2 * i], activations[i].transpose(1, 2), delta)  # dW = a^T delta
            torch.sum(delta, dim=1, keepdim=True, out=grads[2 * i + 1])
            if i > 0:
                delta = mm.product(ws.deltas[i - 1], delta, self.weights[i].transpose(1, 2))
        return logits, grads

    def _products(self, batch: int) -> BatchedProducts:
        products = self._workspace.get(batch)
        if products is None:
            products = BatchedProducts.of(self.matmul, StepBuffers.for_mlp(self.weights, self.biases, batch))
            self._workspace[batch] = products
        return products


#: The MLP's hidden widths where a configuration gives none.
DEFAULT_HIDDEN = (100, 100)
_WIDTHS = ListOf(Interval(int, 1))


def mlp_widths(hidden) -> list[int]:
    """The hidden widths of an MLP (default ``DEFAULT_HIDDEN``); raises unless they are positive integers."""
    widths = list(hidden if hidden is not None else DEFAULT_HIDDEN)
    if not _WIDTHS.accepts(widths):
        raise ValueError(f"hidden must list positive layer widths, got {hidden!r}")
    return widths
