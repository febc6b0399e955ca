"""Members grouped by (loss, parameters): each group's logit gradient and values are one batched call.

Logits arrive as [M, B, K] views of class-major memory ([M, K, B], as the models produce them). A
group's rows are gathered in that same layout, so the losses run the same kernels, and round the same
way, whichever members share a group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import torch

from losslab.core import Loss
from losslab.core.links import softmax_over_classes
from losslab.core.losses import cross_entropy_grad


@dataclass(frozen=True)
class LossGroup:
    """Members (rows of axis 0) that share one loss and its parameters."""

    loss: Loss
    params: dict
    gradient: Callable[..., torch.Tensor]  # f(z, y, **params): per-example dL/dz
    values: Callable[..., torch.Tensor]  # f(z, y, **params): per-example loss
    index: torch.Tensor  # the members' rows
    rows: slice | None  # the same rows as a slice when they are contiguous


class LossGroups:
    """The loss groups of a block of members (``resolved``: each member's (Loss, parameters))."""

    def __init__(self, resolved: list[tuple[Loss, dict]], binary: bool, device):
        self.binary = binary
        members: dict[tuple, list[int]] = {}
        losses: dict[tuple, Loss] = {}
        for i, (loss, params) in enumerate(resolved):
            key = (loss.name, json.dumps(params, sort_keys=True))
            members.setdefault(key, []).append(i)
            losses[key] = loss  # the Loss object itself, not a fresh lookup of its name
        self.groups: list[LossGroup] = []
        for (name, params_json), idx in members.items():
            loss = losses[(name, params_json)]
            contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
            self.groups.append(
                LossGroup(
                    loss,
                    json.loads(params_json),
                    _pick(loss, "binary_grad" if binary else "grad"),
                    _pick(loss, "binary_values" if binary else "values"),
                    torch.tensor(idx, device=device),
                    slice(idx[0], idx[0] + len(idx)) if contiguous else None,
                )
            )

    def gradient(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-example dL/dz of each member's own loss, shaped like ``logits``."""
        return self._apply(lambda g: g.gradient, logits, targets)

    def scaled_gradient(
        self, logits: torch.Tensor, one_hot: torch.Tensor, scale: torch.Tensor, out: torch.Tensor
    ) -> torch.Tensor:
        """The training step's logit gradient: each member's per-example dL/dz times its ``scale`` ([M]),
        written into ``out`` (shaped and laid out like ``logits``). ``one_hot``: the targets, one-hot rows
        (as the trainer's always are), which lets cross-entropy skip its normalisation (p * sum(y) - y with
        sum(y) = 1 is p - y, bit for bit). Each group's gradient is scaled on its way into ``out``: one pass,
        where scaling the assembled gradient would take two more."""
        shape = (-1,) + (1,) * (logits.dim() - 1)
        for group in self.groups:
            fused = not self.binary and group.loss.grad is cross_entropy_grad
            fn = _one_hot_cross_entropy_grad if fused else group.gradient
            if len(self.groups) == 1:
                return torch.mul(fn(logits, one_hot, **group.params), scale.view(shape), out=out)
            if group.rows is not None:
                rows = group.rows
                torch.mul(fn(logits[rows], one_hot[rows], **group.params), scale[rows].view(shape), out=out[rows])
            else:
                index = group.index
                part = fn(_select_members(logits, index), _select_members(one_hot, index), **group.params)
                out.index_copy_(0, index, part.mul_(scale.index_select(0, index).view(shape)))
        return out

    def values(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-example loss of each member's own loss, [M, B]."""
        return self._apply(lambda g: g.values, logits, targets)

    def _apply(self, pick, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if len(self.groups) == 1:
            group = self.groups[0]
            return pick(group)(logits, targets, **group.params)
        out = None
        for group in self.groups:
            fn = pick(group)
            if group.rows is not None:
                part = fn(logits[group.rows], targets[group.rows], **group.params)
            else:
                part = fn(_select_members(logits, group.index), _select_members(targets, group.index), **group.params)
            if out is None:
                out = _empty_in_layout_of(part, logits.shape[0])
            if group.rows is not None:
                out[group.rows] = part
            else:
                out.index_copy_(0, group.index, part)
        return out


def _one_hot_cross_entropy_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``cross_entropy_grad`` for one-hot targets: p - y (its p * sum(y) is p times exactly 1)."""
    return softmax_over_classes(z).sub_(y)


def _pick(loss: Loss, attribute: str):
    """The loss's function: its closed form, or (for user losses without one) the registry's fallback."""
    accessor = getattr(loss, "logit_gradient_fn", None) if "grad" in attribute else getattr(loss, "values_fn", None)
    if accessor is not None:
        return accessor(attribute.startswith("binary"))
    return getattr(loss, attribute)


def class_major(t: torch.Tensor) -> bool:
    """A [M, B, K] tensor laid out as [M, K, B] in memory, as the models produce logits."""
    return t.dim() == 3 and t.stride(1) == 1 and t.stride(2) != 1


def _select_members(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of axis 0 in t's memory layout (class-major stays class-major)."""
    if class_major(t):
        return t.transpose(1, 2).index_select(0, index).transpose(1, 2)
    return t.index_select(0, index)


def _empty_in_layout_of(part: torch.Tensor, members: int) -> torch.Tensor:
    """An uninitialised [members, *part.shape[1:]] tensor with part's memory layout (class-major or not)."""
    if class_major(part):
        return part.new_empty(members, part.shape[2], part.shape[1]).transpose(1, 2)
    return part.new_empty((members, *part.shape[1:]))
