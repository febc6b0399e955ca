"""Link functions that map logits to probabilities, and their derivatives (article eq. 1-4).

The sigmoid maps one logit to a probability; the softmax maps K logits to a probability
vector. Both saturate: far from zero their derivatives vanish, which is the article's
optimisation argument. Everything here stays finite for logits of +-1e4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losslab.core.validation import check_logits, check_tensor

#: The dead zone's threshold, the one default of every layer (training's ``dead_epsilon``, the analysis, the
#: figures, the explorer): a wrongly classified example whose logit gradient is below this in norm barely moves.
DEAD_EPSILON = 1e-3


def sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid, eq. (1): f(x) = 1 / (1 + exp(-x)), elementwise.

    Example: ``sigmoid(torch.tensor([0.0]))`` is ``tensor([0.5])``.
    """
    check_tensor(logits, "logits")
    # torch.sigmoid evaluates exp(-|x|) internally, so neither tail overflows.
    return torch.sigmoid(logits)


def log_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """log f(x) = -softplus(-x), elementwise; exact in the far negative tail where f(x) underflows."""
    check_tensor(logits, "logits")
    # log(sigmoid(x)) would give log(0) = -inf at x = -1e4; logsigmoid gives -1e4.
    return F.logsigmoid(logits)


def sigmoid_grad(logits: torch.Tensor) -> torch.Tensor:
    """Derivative of the sigmoid, eq. (2)-(4): f'(x) = e^-x / (1 + e^-x)^2 = f(x) (1 - f(x)).

    Example: ``sigmoid_grad(torch.tensor([0.0]))`` is ``tensor([0.25])``.
    """
    check_tensor(logits, "logits")
    # f(x)(1 - f(x)) = f(x) f(-x): the product of the two tails avoids computing 1 - f(x)
    # by subtraction, which rounds to 0 long before the true value underflows.
    return torch.sigmoid(logits) * torch.sigmoid(-logits)


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension: p_i = exp(z_i) / sum_j exp(z_j). Shape [batch, K] in and out."""
    check_logits(logits)
    # torch.softmax subtracts the row maximum before exponentiating, so z = 1e4 does not overflow.
    return torch.softmax(logits, dim=-1)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log p_i = z_i - logsumexp(z). Shape [batch, K] in and out."""
    check_logits(logits)
    # z - logsumexp(z) stays finite where log(softmax(z)) would be log(0) = -inf.
    return torch.log_softmax(logits, dim=-1)


def _class_major(z: torch.Tensor) -> bool:
    return z.dim() >= 2 and z.stride(-1) != 1 and z.stride(-2) == 1


def softmax_over_classes(z: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis, [..., K] in and out, run on the faster memory layout; no validation.

    When the class axis is strided (class-major memory, as the population trainer produces), CPU
    softmax over the last dimension copies to row-major and runs a kernel ~15x slower than softmax
    over the equivalent strided axis; so the transposed tensor is used. The values are the same.
    """
    if _class_major(z):
        return torch.softmax(z.transpose(-1, -2), dim=-2).transpose(-1, -2)
    return torch.softmax(z, dim=-1)


def log_softmax_over_classes(z: torch.Tensor) -> torch.Tensor:
    """log_softmax over the last axis with the layout choice of ``softmax_over_classes``; no validation."""
    if _class_major(z):
        return torch.log_softmax(z.transpose(-1, -2), dim=-2).transpose(-1, -2)
    return torch.log_softmax(z, dim=-1)


def max_over_classes(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the maximum over the last axis, on the faster layout like ``softmax_over_classes``."""
    if _class_major(z):
        # Reducing a strided last axis is ~50x slower on CPU than reducing the equivalent leading axis.
        return z.transpose(-1, -2).max(dim=-2)
    return z.max(dim=-1)


def softmax_jacobian(logits: torch.Tensor) -> torch.Tensor:
    """Jacobian of the softmax, dp_i/dz_j = p_i (delta_ij - p_j) = diag(p) - p p^T.

    Returns shape [batch, K, K]. It is symmetric, so it is its own transpose.
    """
    p = softmax(logits)
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def softmax_jvp(logits: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """The product (diag(p) - p p^T) v without forming the K x K matrix: p * (v - <p, v>).

    ``vector`` has the logits' shape [batch, K]; so does the result. Because the Jacobian is
    symmetric this is both the Jacobian-vector and the vector-Jacobian product.
    """
    check_tensor(vector, "vector")
    if vector.shape != logits.shape:
        raise ValueError(f"vector must have the logits' shape {list(logits.shape)}, got {list(vector.shape)}")
    p = softmax(logits)
    return softmax_times(p, vector)


def softmax_times(p: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """(diag(p) - p p^T) v for already computed probabilities ``p``; no validation (hot path)."""
    return p * (vector - (p * vector).sum(dim=-1, keepdim=True))


def two_class_logits(logits: torch.Tensor) -> torch.Tensor:
    """Embed binary logits z of shape [batch] as two-class logits [0, z] of shape [batch, 2].

    softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], so any multiclass loss can be evaluated on
    a binary problem, and the gradient with respect to z is the second column of its gradient.
    """
    check_logits(logits, binary=True)
    return torch.stack([torch.zeros_like(logits), logits], dim=-1)
