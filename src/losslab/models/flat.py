"""Tensors laid out back to back in one buffer, and the one view that covers them.

The MLP keeps its parameters and gradients this way, and the optimiser keeps its state the same way: an update
of all of them is then one operation on one tensor (``flat_view``) instead of one per tensor (torch's
``_foreach`` operations loop over the tensors on CPU, and on P1's six small tensors the loop costs more than the
arithmetic).
"""

from __future__ import annotations

import torch


def flat_like(tensors: list[torch.Tensor], zero: bool = False) -> list[torch.Tensor]:
    """New tensors shaped like ``tensors``, laid out back to back in one buffer (``flat_view`` finds it)."""
    total = sum(t.numel() for t in tensors)
    like = tensors[0]
    buffer = like.new_zeros(total) if zero else like.new_empty(total)
    views, start = [], 0
    for t in tensors:
        views.append(buffer[start : start + t.numel()].view(t.shape))
        start += t.numel()
    return views


def flat_view(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """One 1-D view covering ``tensors`` when they lie back to back, contiguous, in one buffer (as ``flat_like``
    makes them), else None."""
    first = tensors[0]
    storage = first.untyped_storage().data_ptr()
    if not all(t.is_contiguous() and t.untyped_storage().data_ptr() == storage for t in tensors):
        return None
    start = first.storage_offset()
    offset = start
    for t in tensors:
        if t.storage_offset() != offset or t.dtype != first.dtype:
            return None
        offset += t.numel()
    return first.as_strided((offset - start,), (1,), start)
