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
from dataclasses import dataclass, field

import torch

from losslab.core import DEAD_EPSILON
from losslab.models.mlp import DEFAULT_HIDDEN
from losslab.params import Interval, ListOf, Options, Text, check_values, optional, params_of, setting

OPTIMIZERS = ("sgd", "adam")
LINKS = ("auto", "softmax", "sigmoid")
#: How a block computes: the built-in models' products on torch's or numpy's BLAS; an nn.Module model through
#: torch.func's vmap or as one plain module per member in a loop (``module_population``).
MATMUL_BACKENDS = ("auto", "torch", "numpy", "vmap", "loop")
PRECISIONS = ("fp32", "tf32", "bf16")
#: The largest seed: seeds are integers in [0, MAX_SEED] (torch's generators take them).
MAX_SEED = 2**63 - 1
POSITIVE = Interval(float, 0, closed="neither")

#: Configuration fields that choose how a population runs, not what it computes; they are left out of
#: experiment fingerprints (a cell trained with 2 workers or 8 is the same cell).
EXECUTION_FIELDS = ("device", "workers", "block_size", "threads_per_block", "matmul", "memory_limit")


@dataclass(frozen=True)
class Member:
    """One run of the population: its loss, seed, initial logit scale and learning rate."""

    loss: str
    seed: int = setting(Interval(int, 0, MAX_SEED), 0, "initialisation and data order")
    lr: float = setting(POSITIVE, 0.1, "learning rate")
    init_scale: float = setting(POSITIVE, 1.0, "factor on the last layer's initial weights")
    loss_params: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "loss": self.loss,
            "loss_params": json.dumps(self.loss_params, sort_keys=True),
            "seed": self.seed,
            "lr": self.lr,
            "init_scale": self.init_scale,
        }

    def check(self) -> None:
        """Raise ValueError naming the first bad seed, learning rate or initial scale."""
        check_values(MEMBER_PARAMS, {k: getattr(self, k) for k in MEMBER_PARAMS})


MEMBER_PARAMS = params_of(Member)
_POSITIVE_INT = Interval(int, 1)


@dataclass(frozen=True)
class TrainConfig:
    """What the members of a population share. Each field is declared once (``TRAIN_PARAMS``): its constraint,
    default and meaning; ``validate`` checks them and the rules that tie fields together."""

    model: str = setting(Text("a model name"), "mlp", "the population model (losslab list models)")
    hidden: list[int] | None = setting(
        optional(ListOf(_POSITIVE_INT), "a non-empty list of positive layer widths"),
        None,
        "hidden layer widths of the MLP",
        example=list(DEFAULT_HIDDEN),
        default_text=str(list(DEFAULT_HIDDEN)),
    )
    optimizer: str = setting(Options(OPTIMIZERS), "sgd", "the optimiser of every member")
    momentum: float = setting(Interval(float, 0, 1, "left"), 0.9, "SGD's momentum")
    betas: tuple[float, float] = setting(
        ListOf(Interval(float, 0, 1, "left"), length=2), (0.9, 0.999), "Adam's moment decay rates"
    )
    adam_eps: float = setting(POSITIVE, 1e-8, "Adam's epsilon")
    batch_size: int = setting(_POSITIVE_INT, 100, "examples per training step")
    epochs: int = setting(_POSITIVE_INT, 20, "passes over the training split")
    eval_every_steps: int | None = setting(
        optional(_POSITIVE_INT),
        None,
        "steps between evaluations",
        example=50,
        default_text="once per epoch (and at step 0)",
    )
    link: str = setting(
        Options(LINKS),
        "auto",
        "output link; auto: one sigmoid logit for two-class data when every loss has a binary form, else softmax",
    )
    dtype: str = setting(Options(("float32", "float64")), "float32", "floating-point type of the parameters")
    # Matrix-product precision of the training steps; see losslab.train.precision. Evaluations run in float32.
    precision: str = setting(
        Options(PRECISIONS), "fp32", "matmul precision of the training steps: tf32 needs CUDA, bf16 autocasts"
    )
    device: str = setting(Text("'cpu', 'cuda' or 'cuda:N'", r"cpu|cuda|cuda:\d+"), "cpu", "where the population trains")
    dead_epsilon: float = setting(
        POSITIVE, DEAD_EPSILON, "the dead zone: a misclassified example whose |dL/dz| is below this is dead"
    )
    # A fixed evenly spaced subset keeps frequent evaluations cheap.
    train_eval_examples: int | None = setting(
        optional(_POSITIVE_INT),
        2000,
        "training examples the training-set metrics (train_loss, grad_norm, dead_fraction) use",
    )
    eval_chunk_elements: int = setting(_POSITIVE_INT, 1 << 24, "bound on members x chunk x width during evaluation")
    # Execution (see the module docstring). None / "auto": chosen for this machine.
    workers: int | None = setting(optional(_POSITIVE_INT), None, "threads running blocks at once")
    block_size: int | None = setting(optional(_POSITIVE_INT), None, "members per block")
    threads_per_block: int | None = setting(optional(_POSITIVE_INT), None, "intra-op threads inside a block")
    matmul: str = setting(Options(MATMUL_BACKENDS), "auto", "the CPU library of the MLP's products")
    # None: on CUDA, 60% of the GPU memory free at the start (and a block that still runs out of memory is split
    # in two and retried); on CPU, no limit.
    memory_limit: int | None = setting(
        optional(_POSITIVE_INT, "a positive number of bytes or None"), None, "bytes one block may use"
    )

    def validate(self, device_checks: bool = True) -> None:
        """Raise ValueError naming any bad setting. ``device_checks=False`` leaves out what depends on the
        machine that will train (CUDA present; TF32 needs CUDA): specs are read before the device is known."""
        values = {name: getattr(self, name) for name in TRAIN_PARAMS}
        check_values(TRAIN_PARAMS, {**values, "device": str(self.device)})  # a torch.device is welcome too
        check_combination(self)
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
            raise ValueError(
                f"device {self.device!r} requested but CUDA is not available here; use device='cpu' (--device cpu on the command line)"
            )

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def on_cpu(self) -> bool:
        return str(self.device) == "cpu"


#: Every field of ``TrainConfig``, declared: constraint, default, meaning (the spec's [train] keys are these less
#: ``EXECUTION_FIELDS``).
TRAIN_PARAMS = params_of(TrainConfig)


def check_combination(config) -> None:
    """The rules that tie settings together (each setting alone is checked against its declaration)."""
    if config.precision != "fp32" and config.dtype != "float32":
        raise ValueError(f"precision {config.precision!r} needs dtype 'float32', got {config.dtype!r}")
    if config.precision == "bf16" and config.matmul == "numpy":
        raise ValueError(
            "precision 'bf16' needs torch's products (numpy has no bfloat16); use matmul='torch' or 'auto'"
        )


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
