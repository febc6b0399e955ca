"""Batched matrix products for the hand-written MLP, from one of two CPU libraries.

The MLP's training step is eight batched products ([M, a, b] @ [M, b, c]) and some elementwise work.
Two implementations compute the products in the same memory, into buffers reused every step:

- ``torch``: ``torch.bmm`` / ``torch.baddbmm`` (MKL in PyTorch's x86 wheels, whose AVX-512 kernels run
  only on Intel CPUs; elsewhere its AVX2 code);
- ``numpy``: ``numpy.matmul`` on zero-copy views of the same tensors (the BLAS numpy ships, OpenBLAS,
  with kernels chosen for the CPU at run time), ``out=`` the step's buffers; bias added by torch.

Which is faster depends on the CPU and the shapes (measured: either can win by 2x), so the execution
plan measures both on the run's own shapes (``losslab.train.plan``). Both agree with float64 to float32
rounding; they may differ from each other in the last bits, which is why the plan records the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from losslab.models.flat import flat_like

LIBRARIES = ("torch", "numpy")


@dataclass
class StepBuffers:
    """The tensors one MLP training step writes: hidden activations, class-major logits, deltas, gradients."""

    hidden: list[torch.Tensor]  # [M, B, out] per hidden layer
    logits_t: torch.Tensor  # [M, K, B]
    deltas: list[torch.Tensor]  # [M, B, out] per hidden layer: d loss / d (that layer's output)
    grads: list[torch.Tensor]  # like the parameters

    @classmethod
    def for_mlp(cls, weights: list[torch.Tensor], biases: list[torch.Tensor], batch: int) -> StepBuffers:
        members = weights[0].shape[0]
        like = weights[0]
        hidden = [like.new_empty(members, batch, w.shape[2]) for w in weights[:-1]]
        logits_t = like.new_empty(members, weights[-1].shape[1], batch)
        deltas = [like.new_empty(members, batch, w.shape[2]) for w in weights[:-1]]
        # Back to back in one buffer, like the parameters: the optimiser updates them in one operation.
        grads = flat_like([p for pair in zip(weights, biases) for p in pair])
        return cls(hidden, logits_t, deltas, grads)


class BatchedProducts:
    """``product(out, a, b)``: out = a @ b; ``add_product(out, bias, a, b)``: out = bias + a @ b (batched)."""

    name = ""

    def __init__(self, buffers: StepBuffers):
        self.buffers = buffers

    @staticmethod
    def of(library: str, buffers: StepBuffers) -> BatchedProducts:
        if library == "numpy":
            return NumpyProducts(buffers)
        if library == "torch":
            return TorchProducts(buffers)
        raise ValueError(f"matmul must be one of {list(LIBRARIES)}, got {library!r}")

    def product(self, out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def add_product(self, out: torch.Tensor, bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _autocasting(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (torch >= 2.4 takes the device type; older versions do not)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


class TorchProducts(BatchedProducts):
    name = "torch"

    def product(self, out, a, b):
        if _autocasting(out.device.type):  # out= variants are not autocast: product, then store
            return out.copy_(torch.bmm(a, b))
        return torch.bmm(a, b, out=out)

    def add_product(self, out, bias, a, b):
        if _autocasting(out.device.type):
            return out.copy_(torch.baddbmm(bias, a, b))
        # baddbmm adds the bias inside the product (BLAS's beta), no extra pass over out.
        return torch.baddbmm(bias, a, b, out=out)


class NumpyProducts(BatchedProducts):
    name = "numpy"

    def product(self, out, a, b):
        # .numpy() views share the tensors' memory (transposed views stay views): numpy hands each [a, b]
        # slice to its BLAS's gemm with the matching transpose flag, writing straight into out. A member
        # whose learning rate is too large overflows: that is its result (as with torch), not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            np.matmul(a.numpy(), b.numpy(), out=out.numpy())
        return out

    def add_product(self, out, bias, a, b):
        self.product(out, a, b)
        return out.add_(bias)
