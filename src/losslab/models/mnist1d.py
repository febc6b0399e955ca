"""The MNIST-1D reference models (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024),
as ``torch.nn.Module`` factories that losslab trains as populations through ``torch.func``.

The architectures follow the paper's reference code (its ``notebooks/models.py``): a CNN of three
1-D convolutions with 25 channels (kernel 5 then 3 and 3, stride 2, padding 1, ReLU) and a linear head on
the flattened features (125 of them for length-40 inputs), and an MLP whose second hidden layer is a
residual block, h = h + relu(W h). Logistic regression is losslab's ``linear`` model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from losslab.models.mlp import mlp_widths


def _conv_length(length: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class CNN1d(nn.Module):
    """conv(25, k5, s2, p1) -> ReLU -> conv(25, k3, s2, p1) -> ReLU -> conv(25, k3, s2, p1) -> ReLU -> linear."""

    def __init__(self, length: int, num_outputs: int, channels: int = 25):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        features = channels * _conv_length(_conv_length(_conv_length(length, 5), 3), 3)
        self.linear = nn.Linear(features, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], 1, -1)  # [B, 40] -> [B, 1, 40]: one input channel
        h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()
        return self.linear(h.flatten(1))


class ResidualMLP(nn.Module):
    """x -> h = relu(W_1 x) -> h = h + relu(W_i h) for each further hidden layer -> W_out h."""

    def __init__(self, features: int, widths: list[int], num_outputs: int):
        super().__init__()
        if len(set(widths)) != 1:
            raise ValueError(f"model 'resmlp' needs equal hidden widths (its blocks are residual), got {widths}")
        width = widths[0]
        self.input = nn.Linear(features, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in widths[1:])
        self.output = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x.flatten(1)).relu()
        for block in self.blocks:
            h = h + block(h).relu()
        return self.output(h)


def cnn1d(input_shape, num_outputs, hidden=None) -> nn.Module:
    if len(input_shape) != 1 or input_shape[0] < 8:
        raise ValueError(
            f"model 'cnn1d' takes 1-D sequences of length >= 8 (e.g. mnist1d), got input shape {input_shape}"
        )
    return CNN1d(input_shape[0], num_outputs)


def resmlp(input_shape, num_outputs, hidden=None) -> nn.Module:
    return ResidualMLP(int(math.prod(input_shape)), mlp_widths(hidden), num_outputs)


BUILTIN = [
    ("cnn1d", cnn1d, "MNIST-1D reference CNN: three Conv1d(25) layers, stride 2, and a linear head"),
    ("resmlp", resmlp, "MLP with residual hidden blocks (MNIST-1D reference MLP for hidden = [100, 100])"),
]
