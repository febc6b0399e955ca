"""Per-member metrics from population logits.

All functions take logits [M, N, K] (softmax models) or [M, N] (sigmoid models) and labels [N],
and return one value per member, shape [M]. Probabilities come from the model's link (softmax or
sigmoid) whatever the training loss, so a model trained with the square loss on logits is scored
on softmax(logits) like the others.
"""

from __future__ import annotations

import torch

from losslab.core.links import max_over_classes

ECE_BINS = 15


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """[M, N, K] class probabilities; a sigmoid model's [M, N] logits become [1 - p, p]."""
    if logits.dim() == 2:
        p = torch.sigmoid(logits)
        return torch.stack([1 - p, p], dim=-1)
    return torch.softmax(logits, dim=-1)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    predicted = (logits > 0).long() if logits.dim() == 2 else max_over_classes(logits)[1]
    return (predicted == labels).double().mean(-1)


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean -log p(true class): cross-entropy of the softmax, or binary cross-entropy of the sigmoid."""
    if logits.dim() == 2:
        y = labels.to(logits.dtype).expand_as(logits)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").double().mean(-1)
    # log_softmax keeps confidently wrong predictions finite (log(softmax) would give -inf).
    log_p = torch.log_softmax(logits, dim=-1)
    return -log_p.gather(-1, labels.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1).double().mean(-1)


def brier_score(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over examples of sum_k (p_k - y_k)^2 (Brier 1950); for two classes this is 2 x sklearn's binary score."""
    p = probabilities(logits).double()
    onehot = torch.nn.functional.one_hot(labels, p.shape[-1]).double()
    return (p - onehot).square().sum(-1).mean(-1)


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """Top-label ECE with ``bins`` equal-width confidence bins: sum_b (n_b / N) |accuracy_b - confidence_b|."""
    p = probabilities(logits).double()
    confidence, predicted = max_over_classes(p)  # [M, N]
    correct = (predicted == labels).double()
    # Bin b holds confidences in (b/bins, (b+1)/bins]; confidence is always >= 1/K > 0.
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    members, n = confidence.shape
    count = torch.zeros(members, bins, dtype=torch.float64, device=logits.device)
    count.scatter_add_(1, index, torch.ones_like(confidence))
    conf_sum = torch.zeros_like(count).scatter_add_(1, index, confidence)
    correct_sum = torch.zeros_like(count).scatter_add_(1, index, correct)
    return (conf_sum - correct_sum).abs().sum(-1) / n
