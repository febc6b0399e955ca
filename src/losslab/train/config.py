"""What a population trains: its members (``Member``) and what they share (``TrainConfig``).

A member is one run: its loss (and loss parameters), seed (initialisation and data order), initial
logit scale and learning rate. The members of a population share the dataset, the model, the
optimiser kind, the batch size and the number of epochs, and the execution settings.

Execution settings say how the work is laid out on the machine, not what is computed: ``device``,
``workers`` (threads that run blocks at the same time), and the execution plan: ``block_size``
(members trained as one batched computation), ``threads_per_block`` and ``matmul`` (the CPU matrix
library). Left at None / "auto" the plan is chosen per machine (see ``losslab.train.plan``). The plan
can change float32 results in the last bits (different kernels round differently); ``workers`` never
does: blocks are fixed before any of them runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import torch

OPTIMIZERS = ("sgd", "adam")
LINKS = ("auto", "softmax", "sigmoid")
#: How a block computes: the built-in models' products on torch's or numpy's BLAS; an nn.Module model through
#: torch.func's vmap or as one plain module per member in a loop (``module_population``).
MATMUL_BACKENDS = ("auto", "torch", "numpy", "vmap", "loop")
PRECISIONS = ("fp32", "tf32", "bf16")

#: Configuration fields that choose how a population runs, not what it computes; they are left out of
#: experiment fingerprints (a cell trained with 2 workers or 8 is the same cell).
EXECUTION_FIELDS = ("device", "workers", "block_size", "threads_per_block", "matmul", "memory_limit")


@dataclass(frozen=True)
class Member:
    """One run of the population: its loss, seed, initial logit scale and learning rate."""

    loss: str
    seed: int = 0
    lr: float = 0.1
    init_scale: float = 1.0
    loss_params: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "loss": self.loss,
            "loss_params": json.dumps(self.loss_params, sort_keys=True),
            "seed": self.seed,
            "lr": self.lr,
            "init_scale": self.init_scale,
        }


def _positive_int_or_none(name: str, value) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """What the members of a population share."""

    model: str = "mlp"
    hidden: list[int] | None = None  # MLP widths; default [100, 100]
    optimizer: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    batch_size: int = 100
    epochs: int = 20
    eval_every_steps: int | None = None  # default: once per epoch (and at step 0)
    link: str = "auto"  # auto: sigmoid (one logit) for two-class data when every loss has a binary form
    dtype: str = "float32"
    # Matrix-product precision of the training steps: "fp32", "tf32" (CUDA only) or "bf16" (autocast);
    # see losslab.train.precision. Evaluations always run in float32.
    precision: str = "fp32"
    device: str = "cpu"
    dead_epsilon: float = 1e-3
    # Training-set metrics (train_loss, grad_norm, dead_fraction) use this many training examples,
    # a fixed evenly spaced subset, to keep frequent evaluations cheap; None uses them all.
    train_eval_examples: int | None = 2000
    eval_chunk_elements: int = 1 << 24  # bound on M x chunk x width during evaluation
    # Execution (see the module docstring): threads running blocks at once; members per block; intra-op
    # threads inside a block; the CPU matmul library. None / "auto": chosen for this machine.
    workers: int | None = None
    block_size: int | None = None
    threads_per_block: int | None = None
    matmul: str = "auto"
    # Bytes one block may use; blocks are made small enough to fit. None: on CUDA, 60% of the GPU memory
    # free at the start (and a block that still runs out of memory is split in two and retried); on CPU, no limit.
    memory_limit: int | None = None

    def validate(self, device_checks: bool = True) -> None:
        """Raise ValueError naming any bad setting. ``device_checks=False`` leaves out what depends on the
        machine that will train (CUDA present; TF32 needs CUDA): specs are read before the device is known."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {self.link!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "fp32" and self.dtype != "float32":
            raise ValueError(f"precision {self.precision!r} needs dtype 'float32', got {self.dtype!r}")
        if self.precision == "bf16" and self.matmul == "numpy":
            raise ValueError(
                "precision 'bf16' needs torch's products (numpy has no bfloat16); use matmul='torch' or 'auto'"
            )
        if self.memory_limit is not None and (
            not isinstance(self.memory_limit, int) or isinstance(self.memory_limit, bool) or self.memory_limit < 1
        ):
            raise ValueError(f"memory_limit must be a positive number of bytes or None, got {self.memory_limit!r}")
        if self.matmul not in MATMUL_BACKENDS:
            raise ValueError(f"matmul must be one of {list(MATMUL_BACKENDS)}, got {self.matmul!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("eval_every_steps", "train_eval_examples", "workers", "block_size", "threads_per_block"):
            _positive_int_or_none(name, getattr(self, name))
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (
            isinstance(self.dead_epsilon, (int, float)) and math.isfinite(self.dead_epsilon) and self.dead_epsilon > 0
        ):
            raise ValueError(f"dead_epsilon must be a positive number, got {self.dead_epsilon!r}")
        device = str(self.device)
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if device_checks:
            self.check_device()

    def check_device(self) -> None:
        """The checks that depend on the device that trains: CUDA must be there, and TF32 needs it."""
        device = str(self.device)
        if self.precision == "tf32" and not device.startswith("cuda"):
            raise ValueError(
                "precision 'tf32' applies to CUDA matmuls; on the CPU use 'fp32' or 'bf16' (or train with --device cuda)"
            )
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available here; use device='cpu'")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def on_cpu(self) -> bool:
        return str(self.device) == "cpu"


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when PyTorch sees a GPU, else the CPU; any other value is returned as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def describe_device(device: str) -> str:
    """One line naming the device a run trains on, as it is printed at the start of the run."""
    if str(device).startswith("cuda"):
        index = torch.device(device).index or 0
        return f"{device} ({torch.cuda.get_device_name(index)})"
    return (
        f"cpu ({torch.get_num_threads()} threads; no CUDA device seen by PyTorch)"
        if not torch.cuda.is_available()
        else "cpu"
    )
