"""The core layer: link functions, classification losses with closed-form gradients, validation."""

from losslab.core.links import (
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    two_class_logits,
)
from losslab.core.losses import (
    LOSSES,
    Loss,
    binary_cross_entropy,
    cross_entropy,
    focal,
    get_loss,
    label_smoothing_cross_entropy,
    mse,
    square_logits,
)

__all__ = [
    "LOSSES",
    "Loss",
    "binary_cross_entropy",
    "cross_entropy",
    "focal",
    "get_loss",
    "label_smoothing_cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "mse",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_jacobian",
    "softmax_jvp",
    "square_logits",
    "two_class_logits",
]
