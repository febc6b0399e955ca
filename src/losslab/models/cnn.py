"""The population convnet (``cnn``) for 28x28 images: the members are the groups of grouped convolutions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from losslab.models.protocol import LogitGrad, uniform


@dataclass
class CNN:
    """Population convnet for [1, 28, 28] inputs: conv(c1, 5) -> ReLU -> pool 2 -> conv(c2, 5) -> ReLU
    -> pool 2 -> linear(K). Members are the groups of grouped convolutions, so one conv serves all."""

    params_list: list[torch.Tensor]
    members: int
    channels: tuple[int, int]

    # Grouped convolutions pick their kernels by group count, so blocks of different sizes round
    # differently: the CNN trains as one block.
    splittable: ClassVar[bool] = False
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch",)
    matmul: ClassVar[str] = "torch"

    @staticmethod
    def init_member(num_classes: int, channels: tuple[int, int], seed: int, logit_scale: float, dtype=torch.float32):
        gen = torch.Generator().manual_seed(int(seed))
        c1, c2 = channels
        shapes = [
            ((c1, 1, 5, 5), 25),
            ((c1,), 25),
            ((c2, c1, 5, 5), c1 * 25),
            ((c2,), c1 * 25),
            ((c2 * 16, num_classes), c2 * 16),
            ((num_classes,), c2 * 16),
        ]
        params = [uniform(gen, shape, 1 / math.sqrt(fan_in), dtype) for shape, fan_in in shapes]
        params[4], params[5] = params[4] * logit_scale, params[5] * logit_scale
        return params

    @classmethod
    def create(cls, num_classes: int, seeds, logit_scales, channels=(8, 16), dtype=torch.float32, device="cpu"):
        members = [cls.init_member(num_classes, channels, s, c, dtype) for s, c in zip(seeds, logit_scales)]
        stacked = [torch.stack([m[i] for m in members]).to(device) for i in range(6)]
        return cls(stacked, len(members), tuple(channels))

    @property
    def params(self) -> list[torch.Tensor]:
        return self.params_list

    def select(self, members: slice) -> CNN:
        params = [p[members].clone() for p in self.params_list]
        return CNN(params, params[0].shape[0], self.channels)

    def member_bytes(self, batch: int) -> int:
        c1, c2 = self.channels
        activations = batch * (784 + c1 * 24 * 24 + c2 * 8 * 8) * 2
        return self.params_list[0].element_size() * 3 * (sum(p[0].numel() for p in self.params_list) + activations)

    @classmethod
    def concatenate(cls, parts: list[CNN]) -> CNN:
        """One population of the members of ``parts``, in order (populations trained in blocks)."""
        stacked = [torch.cat(ps) for ps in zip(*(p.params_list for p in parts))]
        return cls(stacked, sum(p.members for p in parts), parts[0].channels)

    def forward(self, x: torch.Tensor, params=None) -> torch.Tensor:
        w1, b1, w2, b2, w3, b3 = params if params is not None else self.params_list
        m, batch = x.shape[:2]
        # [M, B, 1, 28, 28] -> [B, M, 28, 28]: member i's images are input channel i of group i.
        h = x.reshape(m, batch, 28, 28).transpose(0, 1)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w1.flatten(0, 1), b1.flatten(), groups=m)), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w2.flatten(0, 1), b2.flatten(), groups=m)), 2)
        h = h.reshape(batch, m, -1).transpose(0, 1)  # [M, B, c2 * 16]
        return torch.baddbmm(b3.unsqueeze(1), h, w3)

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        params = [p.detach().requires_grad_(True) for p in self.params_list]
        with torch.enable_grad():
            logits = self.forward(x, params)
            grads = torch.autograd.grad(logits, params, logit_grad(logits.detach()))
        return logits.detach(), list(grads)
