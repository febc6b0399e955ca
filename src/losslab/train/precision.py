"""Matrix-product precision of the training steps (``TrainConfig.precision``).

- ``fp32``: exact float32 products (PyTorch's default for CUDA matmuls since 1.12).
- ``tf32``: on CUDA, TensorFloat-32 matmuls and convolutions (inputs rounded to a 10-bit mantissa,
  float32 accumulation): Ampere and later GPUs run them several times faster. CUDA only.
- ``bf16``: the forward and backward products under ``torch.autocast`` to bfloat16 (an 8-bit mantissa),
  parameters, optimiser state and the loss gradient kept in float32. Sound for these small models in the
  sense tested here (tests/test_precision.py): final accuracies within a stated tolerance of fp32.

Evaluations always run in full float32, so every precision is scored the same way.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def step_precision(precision: str, device: torch.device):
    """The context a training step runs in for ``precision``."""
    if precision == "tf32" and device.type == "cuda":
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
    elif precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
