"""The core layer: link functions, classification losses with closed-form gradients, validation."""

from losslab.core.links import (
    DEAD_EPSILON,
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    two_class_logits,
)
from losslab.core.loss import Loss, autograd_gradient
from losslab.core.losses import (
    LOSSES,
    binary_cross_entropy,
    cross_entropy,
    focal,
    get_loss,
    label_smoothing_cross_entropy,
    make_loss,
    mse,
    register_loss,
    square_logits,
    squentropy,
)

__all__ = [
    "DEAD_EPSILON",
    "LOSSES",
    "Loss",
    "autograd_gradient",
    "binary_cross_entropy",
    "cross_entropy",
    "focal",
    "get_loss",
    "label_smoothing_cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "make_loss",
    "mse",
    "register_loss",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_jacobian",
    "softmax_jvp",
    "square_logits",
    "squentropy",
    "two_class_logits",
]
