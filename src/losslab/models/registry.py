"""The one registry of models, ``MODELS``: name -> ``ModelEntry``, and ``build_model`` that makes a population.

- ``linear``: softmax / logistic regression, ``mlp``: ReLU MLP with configurable widths, both with
  a hand-written backward made of batched matmuls (``baddbmm``/``bmm``), the fast path on CPU (``mlp``);
- ``cnn``: a small convnet for 28x28 images: on CPU batched (banded) products with a hand-written backward
  (``cnn_population``), on a GPU members as convolution groups, backward by autograd (``cnn``);
- any ``torch.nn.Module`` (``register_model``; built in: ``cnn1d`` and ``resmlp``, the MNIST-1D reference
  models of ``mnist1d``), trained as a population through ``torch.func`` (see ``module_population``); ``cnn1d``
  has a hand-written CPU path too (``cnn1d_population``).

The trainer sees every model through ``PopulationModel`` (``protocol``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from losslab.errors import BadInputType
from losslab.models import mnist1d
from losslab.models.cnn import CNN
from losslab.models.cnn1d_population import cnn1d_builder
from losslab.models.cnn_population import CNNPopulation
from losslab.models.mlp import MLP, mlp_widths
from losslab.models.module_population import ModulePopulation
from losslab.models.protocol import ModelEntry, PopulationModel
from losslab.plugins import check_name
from losslab.registry import Registry, caller_module


def _build_linear(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    return MLP.create([int(math.prod(input_shape)), num_outputs], seeds, logit_scales, dtype, device)


def _build_mlp(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    sizes = [int(math.prod(input_shape)), *mlp_widths(hidden), num_outputs]
    return MLP.create(sizes, seeds, logit_scales, dtype, device)


def _build_cnn(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    if tuple(input_shape) not in ((1, 28, 28), (784,)):
        raise ValueError(f"model 'cnn' takes 28x28 images (mnist, fashion-mnist), got input shape {input_shape}")
    if str(device) == "cpu":  # banded products with a hand-written backward; cuDNN's grouped convolutions on a GPU
        return CNNPopulation.create(num_outputs, seeds, logit_scales, (8, 16), dtype, device)
    return CNN.create(num_outputs, seeds, logit_scales, (8, 16), dtype, device)


#: The one registry of models: name -> ModelEntry. Iterating gives the names.
MODELS: Registry[ModelEntry] = Registry("model", "models")
MODELS.register("linear", ModelEntry("linear", _build_linear, "softmax / logistic regression (one linear layer)"))
MODELS.register("mlp", ModelEntry("mlp", _build_mlp, "ReLU MLP, widths from `hidden` (default [100, 100])"))
MODELS.register("cnn", ModelEntry("cnn", _build_cnn, "small convnet for 28x28 images: conv 8, conv 16, linear"))


def register_model(name: str, factory: Callable[..., torch.nn.Module], *, summary: str = "", replace: bool = False):
    """Make ``factory(input_shape, num_classes) -> torch.nn.Module`` trainable as a population model ``name``.

    Each member is ``factory(input_shape, num_classes)`` built under ``torch.manual_seed(seed)`` (so PyTorch's
    default initialisation, reproducible per seed), with its last parameterised layer multiplied by the
    member's initial logit scale. ``num_classes`` is the number of logits: 1 for a one-logit (sigmoid) model.
    The population runs the module through ``torch.func`` (stacked parameters, ``vmap`` over
    ``functional_call``); member i equals the plain module trained alone with ``torch.optim``.

        >>> register_model("tiny", lambda shape, k: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(shape), k)))
    """
    check_name("model", name)
    if not callable(factory):
        raise BadInputType(
            f"model {name!r}: factory must be callable as factory(input_shape, num_classes), got {factory!r}"
        )
    doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()

    def module_factory(input_shape, num_outputs, hidden=None):  # a user's factory takes no widths
        return factory(input_shape, num_outputs)

    entry = _module_entry(name, module_factory, summary or (doc[0] if doc else f"user model {name}"))
    return MODELS.register(name, entry, replace=replace, module=caller_module())


def _module_entry(name: str, module_factory, summary: str) -> ModelEntry:
    def build(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
        return ModulePopulation.create(
            name, module_factory, input_shape, num_outputs, seeds, logit_scales, hidden, dtype, device
        )

    return ModelEntry(name, build, summary, module_factory=module_factory)


def get_model(name: str) -> ModelEntry:
    """The registered model ``name``; an unknown name lists the valid ones."""
    return MODELS.get(name)


def build_model(
    kind: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    seeds,
    logit_scales,
    hidden: list[int] | None = None,
    dtype=torch.float32,
    device="cpu",
) -> PopulationModel:
    """Create a population model by name; an unknown name lists the valid ones."""
    return get_model(kind).build(
        tuple(input_shape), num_outputs, list(seeds), list(logit_scales), hidden=hidden, dtype=dtype, device=device
    )


for _name, _factory, _summary in mnist1d.BUILTIN:
    _entry = _module_entry(_name, _factory, _summary)
    if _name == "cnn1d":
        # Batched products with a hand-written backward on the CPU (torch.func's vmap on a GPU); the plain module
        # stays its definition: the reference loop and the members' initialisation use it.
        _entry = replace(_entry, build=cnn1d_builder(_entry))
    MODELS.register(_name, _entry)
