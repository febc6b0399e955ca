"""What the trainer sees of a model: the population-model protocol, and the registry's entry type.

A population model holds M members with parameters stacked along a leading member axis. It maps inputs
[M, B, *input_shape] to logits [M, B, K] (K = 1 for a sigmoid model, then squeezed to [M, B]) in one batched
computation, and returns the gradients of a loss whose logit gradient is given (``forward_backward``).
Member i is initialised from its own seed exactly as a single model would be, so a population and a loop
of single runs agree. ``ModelEntry`` is what ``losslab.models.MODELS`` holds for each name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch

#: Given the logits [M, B, K], returns d(batch-mean loss)/d(logits), the same shape.
LogitGrad = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class PopulationModel(Protocol):
    """What the trainer needs of a model of M members (parameters stacked on a leading member axis).

    ``splittable``: whether the members may be trained in blocks (as separate batched computations)
    without the model choosing different kernels by block, which the execution plan relies on to fix
    blocks by size. ``member_bytes(batch)``: one member's working set in a training step, which sizes
    blocks to stay in cache.
    """

    splittable: ClassVar[bool]
    matmul_libraries: ClassVar[tuple[str, ...]]  # CPU matmul libraries it can use; ``matmul`` picks one
    matmul: str

    @property
    def params(self) -> list[torch.Tensor]: ...

    @property
    def members(self) -> int: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs [M, B, features] (flattened) -> logits [M, B, K]."""
        ...

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the loss's gradient for each of ``params``, given its logit gradient."""
        ...

    def select(self, members: slice) -> PopulationModel:
        """Members ``members`` as a model of their own, with parameters in fresh contiguous memory."""
        ...

    def member_bytes(self, batch: int) -> int: ...


class StackedParameters:
    """For a population model that keeps its stacked parameters in ``params_list`` (``params``, ``members``) and
    the buffers of its hand-written step in ``_workspace``, by batch size (``_new_buffers`` makes them)."""

    params_list: list[torch.Tensor]
    _workspace: dict

    @property
    def params(self) -> list[torch.Tensor]:
        return self.params_list

    @property
    def members(self) -> int:
        return self.params_list[0].shape[0]

    def _buffers(self, batch: int, training: bool) -> dict:
        """The step's buffers for ``batch`` examples, made once by ``_new_buffers`` and reused every step."""
        key = (batch, training)
        buffers = self._workspace.get(key)
        if buffers is None:
            if len(self._workspace) > 8:  # evaluation chunks of many sizes: keep the memory bounded
                self._workspace.clear()
            buffers = self._workspace[key] = self._new_buffers(batch, training)
        return buffers


@dataclass(frozen=True)
class ModelEntry:
    """A registered model. ``build(input_shape, num_outputs, seeds, init_scales, hidden=, dtype=, device=)``
    makes the population; ``module_factory`` (for ``nn.Module`` models) makes one member's plain module,
    ``module_factory(input_shape, num_outputs)``, which the population and the plain reference loop share."""

    name: str
    build: Callable[..., PopulationModel]
    summary: str
    module_factory: Callable[..., torch.nn.Module] | None = None


def uniform(gen: torch.Generator, shape, bound: float, dtype) -> torch.Tensor:
    # Drawn in float64 then cast so that float32 and float64 runs start from the same numbers.
    return ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
