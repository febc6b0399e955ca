"""Input validation shared by every loss, link and likelihood.

Every check raises ``BadInputType`` (a ``TypeError``: wrong kind of object or dtype) or ``ValueError``
(right kind, wrong value) with a message that names the argument, shows the bad
value and says how to fix it. Nothing is clipped or renormalised silently.
"""

from __future__ import annotations

import torch

from losslab.errors import BadInputType

REDUCTIONS = ("mean", "sum", "none")

#: How far a row of probability targets may sum from 1 and still count as a distribution.
TARGET_SUM_TOLERANCE = 1e-4


def non_finite(t: torch.Tensor) -> torch.Tensor | None:
    """The entries of ``t`` that are NaN or infinite, flattened; None where every entry is finite."""
    finite = torch.isfinite(t)
    return None if bool(finite.all()) else t[~finite]


def sums_off_one(t: torch.Tensor, tolerance: float) -> torch.Tensor | None:
    """The sums over the last axis of ``t`` that differ from 1 by more than ``tolerance``; None if none do."""
    sums = t.sum(dim=-1)
    off = (sums - 1).abs() > tolerance
    return sums[off] if bool(off.any()) else None


def _describe(values: torch.Tensor, limit: int = 3) -> str:
    flat = values.detach().flatten()[:limit].tolist()
    more = ", ..." if values.numel() > limit else ""
    return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in flat) + more + "]"


def check_tensor(value, name: str) -> torch.Tensor:
    """Return ``value`` if it is a tensor, else raise a TypeError naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise BadInputType(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; wrap it with torch.as_tensor({name})"
        )
    return value


def check_logits(logits, name: str = "logits", *, binary: bool = False) -> torch.Tensor:
    """Check that logits are a finite floating tensor of shape [batch, K] (or [batch] if binary)."""
    logits = check_tensor(logits, name)
    if not logits.is_floating_point():
        raise BadInputType(
            f"{name} must be a floating-point tensor, got dtype {logits.dtype}; "
            f"convert it with {name}.float() or {name}.double()"
        )
    expected_dim = 1 if binary else 2
    if logits.dim() != expected_dim:
        shape = "[batch]" if binary else "[batch, num_classes]"
        raise ValueError(
            f"{name} must have shape {shape}, got shape {list(logits.shape)}; "
            + (
                "a binary loss takes one logit per example"
                if binary
                else "add a batch dimension with unsqueeze(0) for a single example"
            )
        )
    if not binary and logits.shape[1] < 2:
        raise ValueError(
            f"{name} must have at least 2 classes, got shape {list(logits.shape)}; "
            "use a binary loss (one logit per example) for two-class problems"
        )
    bad = non_finite(logits)
    if bad is not None:
        raise ValueError(
            f"{name} must be finite, got {int(bad.numel())} non-finite value(s) such as {_describe(bad)}; "
            "check the model for overflow or a too-large learning rate"
        )
    return logits


def check_reduction(reduction) -> str:
    """Check that ``reduction`` is one of "mean", "sum", "none"."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    return reduction


def check_probability_targets(targets: torch.Tensor, name: str = "labels") -> torch.Tensor:
    """Check that every row of ``targets`` is a probability vector (non-negative, sums to 1)."""
    if not targets.is_floating_point():
        raise BadInputType(
            f"{name} given as probability targets must be floating point, got dtype {targets.dtype}; "
            "pass class indices as a 1-D integer tensor instead"
        )
    if not bool(torch.isfinite(targets).all()):
        raise ValueError(f"{name} must be finite, got {_describe(targets[~torch.isfinite(targets)])}")
    negative = targets < 0
    if bool(negative.any()):
        raise ValueError(
            f"{name} must be non-negative probabilities, got {_describe(targets[negative])}; "
            "targets are probabilities in [0, 1]"
        )
    off = sums_off_one(targets, TARGET_SUM_TOLERANCE)
    if off is not None:
        raise ValueError(
            f"each row of {name} must sum to 1 (tolerance {TARGET_SUM_TOLERANCE:g}), "
            f"got row sums {_describe(off)}; divide each row by its sum"
        )
    return targets


def check_class_indices(labels: torch.Tensor, num_classes: int, name: str = "labels") -> torch.Tensor:
    """Check that ``labels`` are integer class indices in ``[0, num_classes)``."""
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.is_complex():
        raise BadInputType(
            f"{name} given as class indices must be an integer tensor, got dtype {labels.dtype}; "
            f"use {name}.long(), or pass probability targets of shape [batch, num_classes]"
        )
    out_of_range = (labels < 0) | (labels >= num_classes)
    if bool(out_of_range.any()):
        raise ValueError(
            f"{name} must be class indices in [0, {num_classes - 1}], got {_describe(labels[out_of_range])}; "
            f"the logits have {num_classes} classes"
        )
    return labels


def as_probability_targets(logits: torch.Tensor, labels, name: str = "labels") -> torch.Tensor:
    """Validate ``labels`` against multiclass ``logits`` and return probability targets [batch, K].

    Class indices of shape [batch] become one-hot rows; probability targets of shape
    [batch, K] are checked and returned in the logits' dtype.
    """
    labels = check_tensor(labels, name)
    batch, num_classes = logits.shape
    if labels.dim() == 1:
        if labels.shape[0] != batch:
            raise ValueError(
                f"{name} has batch size {labels.shape[0]} but logits has batch size {batch}; "
                "pass one label per row of logits"
            )
        check_class_indices(labels, num_classes, name)
        return torch.nn.functional.one_hot(labels.long(), num_classes).to(logits.dtype)
    if labels.dim() == 2:
        if labels.shape != logits.shape:
            raise ValueError(
                f"{name} given as probability targets must have the logits' shape {list(logits.shape)}, "
                f"got {list(labels.shape)}"
            )
        return check_probability_targets(labels, name).to(logits.dtype)
    raise ValueError(
        f"{name} must be class indices of shape [batch] or probability targets of shape "
        f"[batch, num_classes], got shape {list(labels.shape)}"
    )


def as_binary_targets(logits: torch.Tensor, labels, name: str = "labels") -> torch.Tensor:
    """Validate binary ``labels`` (0/1 integers or probabilities in [0, 1]) against 1-D logits."""
    labels = check_tensor(labels, name)
    if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{name} must have shape [batch] = [{logits.shape[0]}] to match logits, got {list(labels.shape)}"
        )
    if labels.dtype == torch.bool:
        labels = labels.long()
    if not labels.is_floating_point():
        check_class_indices(labels, 2, name)
        return labels.to(logits.dtype)
    if not bool(torch.isfinite(labels).all()):
        raise ValueError(f"{name} must be finite, got {_describe(labels[~torch.isfinite(labels)])}")
    outside = (labels < 0) | (labels > 1)
    if bool(outside.any()):
        raise ValueError(f"{name} must be probabilities in [0, 1] for a binary loss, got {_describe(labels[outside])}")
    return labels.to(logits.dtype)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` to per-example values: the one place where averaging happens."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def reduce_gradient(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    """Scale per-example logit gradients to match ``reduce``: 1/batch for the mean, 1 otherwise."""
    if reduction == "mean":
        return per_example / per_example.shape[0]
    return per_example
