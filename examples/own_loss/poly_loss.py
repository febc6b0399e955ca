"""Poly-1 cross-entropy, a loss of one's own in its own file: what ``plugins = ["poly_loss.py"]`` imports.

Leng et al. (2022, "PolyLoss") expand cross-entropy in powers of (1 - p_t), where p_t is the probability of
the true class, -log p_t = sum_j (1 - p_t)^j / j, and perturb the first coefficient:

    L = -log p_t + epsilon (1 - p_t)                    (for probability targets y: p_t = sum_i y_i p_i)

epsilon = 0 is cross-entropy; epsilon > 0 pushes harder on examples that are still wrong. The file follows
the core's contract: ``values(z, y, **params)`` takes logits z [..., K] and probability targets y of the same
shape and returns one value per example [...]; its keyword parameters (``epsilon``) are the loss's
parameters. It works in log space so that it stays finite at logits of +-1e4, and gives its closed-form
gradient, which ``losslab check-loss`` compares with autograd. Importing it registers ``poly1``.

Try it:  losslab check-loss poly_loss.py:poly1 --grad poly_loss.py:poly1_grad --param epsilon=1
"""

import torch

import losslab


def poly1(z: torch.Tensor, y: torch.Tensor, epsilon: float = 1.0) -> torch.Tensor:
    """-sum_i y_i log p_i + epsilon (1 - sum_i y_i p_i), p = softmax(z); one value per example."""
    # log_softmax, not log(softmax(z)): softmax underflows to 0 at confident logits and its log is -inf.
    log_p = torch.log_softmax(z, dim=-1)
    p_true = (y * log_p.exp()).sum(dim=-1)
    return -(y * log_p).sum(dim=-1) + epsilon * (1 - p_true)


def poly1_grad(z: torch.Tensor, y: torch.Tensor, epsilon: float = 1.0) -> torch.Tensor:
    """dL/dz = p - y - epsilon p (y - p_t), with p_t = sum_i y_i p_i (targets summing to 1), z's shape."""
    p = torch.softmax(z, dim=-1)  # bounded in [0, 1]: no overflow at any logit
    p_true = (y * p).sum(dim=-1, keepdim=True)
    return p - y - epsilon * p * (y - p_true)


losslab.register_loss(
    "poly1",
    values=poly1,
    grad=poly1_grad,
    summary="Poly-1 cross-entropy (Leng et al. 2022): cross-entropy + epsilon (1 - p_true)",
    formula="L = -sum_i y_i log p_i + epsilon (1 - sum_i y_i p_i)",
    gradient_formula="p - y - epsilon p (y - p_true)",
)
