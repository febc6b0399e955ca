"""Models as populations: M members with parameters stacked along a leading member axis.

Every model maps inputs [M, B, *input_shape] to logits [M, B, K] (K = 1 for a sigmoid model, then
squeezed to [M, B]) in one batched computation, and returns the gradients of a loss whose logit
gradient is given (``forward_backward``). Member i is initialised from its own seed exactly as
``init_member`` would initialise a single model, so a population and a loop of single runs agree.

- ``linear``: softmax / logistic regression, ``mlp``: ReLU MLP with configurable widths, both with
  a hand-written backward made of batched matmuls (``baddbmm``/``bmm``), the fast path on CPU;
- ``cnn``: a small convnet for 28x28 images: on CPU batched (banded) products with a hand-written backward
  (``conv_population.CNNPopulation``), on a GPU members as convolution groups with autograd (``CNN``);
- any ``torch.nn.Module`` (``register_model``; built in: ``cnn1d`` and ``resmlp``, the MNIST-1D reference
  models), trained as a population through ``torch.func`` (see ``module_population``); ``cnn1d`` has a
  hand-written CPU path too (``conv_population.CNN1dPopulation``).

The trainer sees every model through ``PopulationModel``; ``MODELS`` is the one registry of models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from losslab.plugins import check_name

#: Given the logits [M, B, K], returns d(batch-mean loss)/d(logits), the same shape.
LogitGrad = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class PopulationModel(Protocol):
    """What the trainer needs of a model of M members (parameters stacked on a leading member axis).

    ``splittable``: whether the members may be trained in blocks (as separate batched computations)
    without the model choosing different kernels by block, which the execution plan relies on to fix
    blocks by size. ``member_bytes(batch)``: one member's working set in a training step, which sizes
    blocks to stay in cache.
    """

    splittable: ClassVar[bool]
    matmul_libraries: ClassVar[tuple[str, ...]]  # CPU matmul libraries it can use; ``matmul`` picks one
    matmul: str

    @property
    def params(self) -> list[torch.Tensor]: ...

    @property
    def members(self) -> int: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs [M, B, features] (flattened) -> logits [M, B, K]."""
        ...

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the loss's gradient for each of ``params``, given its logit gradient."""
        ...

    def select(self, members: slice) -> PopulationModel:
        """Members ``members`` as a model of their own, with parameters in fresh contiguous memory."""
        ...

    def member_bytes(self, batch: int) -> int: ...


def _uniform(gen: torch.Generator, shape, bound: float, dtype) -> torch.Tensor:
    # Drawn in float64 then cast so that float32 and float64 runs start from the same numbers.
    return ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype)


def _flat_layers(weights: list[torch.Tensor], biases: list[torch.Tensor]):
    """Copies of the layers, back to back in one buffer in ``params`` order (W_1, b_1, W_2, ...): the optimiser
    then updates every parameter in one operation (``optimizer.flat_view``)."""
    from losslab.train.optimizer import flat_like

    pairs = [t for pair in zip(weights, biases) for t in pair]
    flat = flat_like(pairs)
    for target, source in zip(flat, pairs):
        target.copy_(source)
    return flat[0::2], flat[1::2]


@dataclass
class MLP:
    """Population MLP: x [M, B, d] -> ReLU(x W_1 + b_1) ... -> logits [M, B, K]. No hidden layer = linear.

    The last layer is stored transposed (``weights[-1]`` is [M, K, h], ``biases[-1]`` is [M, K, 1]) so
    that logits are computed class-major, [M, K, B] in memory, and returned as a [M, B, K] view. On CPU
    this makes the two K-wide products about 4x faster, and softmax over K runs on the fast strided
    path; the losses see an ordinary [M, B, K] tensor. ``member_layers`` gives the usual orientation.
    """

    weights: list[torch.Tensor]  # hidden W_l [M, in, out]; last [M, K, h] (transposed)
    biases: list[torch.Tensor]  # hidden b_l [M, 1, out]; last [M, K, 1]
    matmul: str = "torch"  # the batched-product library on CPU: "torch" (bmm) or "numpy" (its BLAS), see matmul.py
    # Training-step buffers by batch size, reused every step (and numpy views of them and of the weights).
    _workspace: dict = field(default_factory=dict, repr=False, compare=False)

    splittable: ClassVar[bool] = True
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch", "numpy")

    @staticmethod
    def init_member(sizes: list[int], seed: int, logit_scale: float, dtype=torch.float32):
        """One member's layers as (W [in, out], b [1, out]), PyTorch's nn.Linear default U(+-1/sqrt(fan_in)).

        ``logit_scale`` multiplies the last layer, so the initial logits are scaled by it: a large
        scale starts the member confidently (and mostly wrongly) committed to some class.
        """
        gen = torch.Generator().manual_seed(int(seed))
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1 / math.sqrt(fan_in)
            w, b = _uniform(gen, (fan_in, fan_out), bound, dtype), _uniform(gen, (1, fan_out), bound, dtype)
            if i == len(sizes) - 2:
                w, b = w * logit_scale, b * logit_scale
            layers.append((w, b))
        return layers

    @classmethod
    def create(cls, sizes: list[int], seeds: list[int], logit_scales: list[float], dtype=torch.float32, device="cpu"):
        members = [cls.init_member(sizes, s, c, dtype) for s, c in zip(seeds, logit_scales)]
        weights, biases = [], []
        for l in range(len(sizes) - 1):
            w = torch.stack([m[l][0] for m in members])
            b = torch.stack([m[l][1] for m in members])
            if l == len(sizes) - 2:  # class-major last layer
                w, b = w.transpose(1, 2), b.transpose(1, 2)
            weights.append(w.contiguous().to(device))
            biases.append(b.contiguous().to(device))
        return cls(*_flat_layers(weights, biases))

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def select(self, members: slice) -> MLP:
        return MLP(*_flat_layers([w[members] for w in self.weights], [b[members] for b in self.biases]), self.matmul)

    def member_bytes(self, batch: int) -> int:
        """Parameters, gradients and optimiser state, and a batch of activations and deltas at every layer."""
        widths = self.weights[0].shape[1] + sum(w.shape[2] for w in self.weights[:-1]) + self.weights[-1].shape[1]
        n_params = sum(p[0].numel() for p in self.params)
        return self.weights[0].element_size() * 3 * (n_params + batch * widths)

    @classmethod
    def concatenate(cls, parts: list[MLP]) -> MLP:
        """One population of the members of ``parts``, in order (populations trained in blocks)."""
        weights = [torch.cat(ws) for ws in zip(*(p.weights for p in parts))]
        biases = [torch.cat(bs) for bs in zip(*(p.biases for p in parts))]
        return cls(*_flat_layers(weights, biases), parts[0].matmul)

    def member_layers(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Member i's layers as (W [in, out], b [1, out]), the orientation of ``init_member``."""
        layers = [(w[i], b[i]) for w, b in zip(self.weights[:-1], self.biases[:-1])]
        return layers + [(self.weights[-1][i].T, self.biases[-1][i].T)]

    def _hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        activations = [x]
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            # baddbmm fuses the bias broadcast into the matmul; relu_ avoids another [M, B, h] buffer.
            activations.append(torch.baddbmm(b, activations[-1], w).relu_())
        return activations

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        # [M, K, h] @ [M, h, B] -> [M, K, B], returned as a [M, B, K] view.
        return torch.baddbmm(self.biases[-1], self.weights[-1], h.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [M, B, K] (evaluation: fresh tensors, torch's products)."""
        return self._logits(self._hidden(x)[-1])

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [M, B, K] and the gradients of the loss (in ``params`` order), by hand-written backprop.

        Every product goes through the block's matmul library into buffers reused from step to step; the
        returned logits and gradients live in those buffers until the next step.
        """
        mm = self._products(x.shape[1])
        ws = mm.buffers
        activations = [x]
        for i, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1])):
            activations.append(mm.add_product(ws.hidden[i], b, activations[-1], w).relu_())
        # [M, K, h] @ [M, h, B] -> [M, K, B]: class-major logits, seen as [M, B, K].
        logits = mm.add_product(ws.logits_t, self.biases[-1], self.weights[-1], activations[-1].transpose(1, 2))
        logits = logits.transpose(1, 2)
        delta_t = logit_grad(logits).transpose(1, 2)  # [M, K, B]: d(batch-mean loss) / d logits
        if not delta_t.is_contiguous():
            delta_t = delta_t.contiguous()
        last = len(self.weights) - 1
        grads = ws.grads
        mm.product(grads[2 * last], delta_t, activations[-1])  # [M, K, h]
        torch.sum(delta_t, dim=2, keepdim=True, out=grads[2 * last + 1])  # [M, K, 1]
        if last == 0:
            return logits, grads
        delta = mm.product(ws.deltas[last - 1], delta_t.transpose(1, 2), self.weights[-1])  # [M, B, h]
        for i in range(last - 1, -1, -1):
            # threshold_backward is several times faster on CPU than delta * (h > 0); in place is safe: delta
            # is this layer's own buffer.
            torch.ops.aten.threshold_backward.grad_input(delta, activations[i + 1], 0.0, grad_input=delta)
            mm.product(grads[2 * i], activations[i].transpose(1, 2), delta)  # dW = a^T delta
            torch.sum(delta, dim=1, keepdim=True, out=grads[2 * i + 1])
            if i > 0:
                delta = mm.product(ws.deltas[i - 1], delta, self.weights[i].transpose(1, 2))
        return logits, grads

    def _products(self, batch: int):
        from losslab.train.matmul import BatchedProducts, StepBuffers

        products = self._workspace.get(batch)
        if products is None:
            products = BatchedProducts.of(self.matmul, StepBuffers.for_mlp(self.weights, self.biases, batch))
            self._workspace[batch] = products
        return products


@dataclass
class CNN:
    """Population convnet for [1, 28, 28] inputs: conv(c1, 5) -> ReLU -> pool 2 -> conv(c2, 5) -> ReLU
    -> pool 2 -> linear(K). Members are the groups of grouped convolutions, so one conv serves all."""

    params_list: list[torch.Tensor]
    members: int
    channels: tuple[int, int]

    # Grouped convolutions pick their kernels by group count, so blocks of different sizes round
    # differently: the CNN trains as one block.
    splittable: ClassVar[bool] = False
    matmul_libraries: ClassVar[tuple[str, ...]] = ("torch",)
    matmul: ClassVar[str] = "torch"

    @staticmethod
    def init_member(num_classes: int, channels: tuple[int, int], seed: int, logit_scale: float, dtype=torch.float32):
        gen = torch.Generator().manual_seed(int(seed))
        c1, c2 = channels
        shapes = [
            ((c1, 1, 5, 5), 25),
            ((c1,), 25),
            ((c2, c1, 5, 5), c1 * 25),
            ((c2,), c1 * 25),
            ((c2 * 16, num_classes), c2 * 16),
            ((num_classes,), c2 * 16),
        ]
        params = [_uniform(gen, shape, 1 / math.sqrt(fan_in), dtype) for shape, fan_in in shapes]
        params[4], params[5] = params[4] * logit_scale, params[5] * logit_scale
        return params

    @classmethod
    def create(cls, num_classes: int, seeds, logit_scales, channels=(8, 16), dtype=torch.float32, device="cpu"):
        members = [cls.init_member(num_classes, channels, s, c, dtype) for s, c in zip(seeds, logit_scales)]
        stacked = [torch.stack([m[i] for m in members]).to(device) for i in range(6)]
        return cls(stacked, len(members), tuple(channels))

    @property
    def params(self) -> list[torch.Tensor]:
        return self.params_list

    def select(self, members: slice) -> CNN:
        params = [p[members].clone() for p in self.params_list]
        return CNN(params, params[0].shape[0], self.channels)

    def member_bytes(self, batch: int) -> int:
        c1, c2 = self.channels
        activations = batch * (784 + c1 * 24 * 24 + c2 * 8 * 8) * 2
        return self.params_list[0].element_size() * 3 * (sum(p[0].numel() for p in self.params_list) + activations)

    @classmethod
    def concatenate(cls, parts: list[CNN]) -> CNN:
        """One population of the members of ``parts``, in order (populations trained in blocks)."""
        stacked = [torch.cat(ps) for ps in zip(*(p.params_list for p in parts))]
        return cls(stacked, sum(p.members for p in parts), parts[0].channels)

    def forward(self, x: torch.Tensor, params=None) -> torch.Tensor:
        w1, b1, w2, b2, w3, b3 = params if params is not None else self.params_list
        m, batch = x.shape[:2]
        # [M, B, 1, 28, 28] -> [B, M, 28, 28]: member i's images are input channel i of group i.
        h = x.reshape(m, batch, 28, 28).transpose(0, 1)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w1.flatten(0, 1), b1.flatten(), groups=m)), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w2.flatten(0, 1), b2.flatten(), groups=m)), 2)
        h = h.reshape(batch, m, -1).transpose(0, 1)  # [M, B, c2 * 16]
        return torch.baddbmm(b3.unsqueeze(1), h, w3)

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        params = [p.detach().requires_grad_(True) for p in self.params_list]
        with torch.enable_grad():
            logits = self.forward(x, params)
            grads = torch.autograd.grad(logits, params, logit_grad(logits.detach()))
        return logits.detach(), list(grads)


@dataclass(frozen=True)
class ModelEntry:
    """A registered model. ``build(input_shape, num_outputs, seeds, init_scales, hidden=, dtype=, device=)``
    makes the population; ``module_factory`` (for ``nn.Module`` models) makes one member's plain module,
    ``module_factory(input_shape, num_outputs)``, which the population and the plain reference loop share."""

    name: str
    build: Callable[..., PopulationModel]
    summary: str
    module_factory: Callable[..., torch.nn.Module] | None = None
    builtin: bool = False


def _build_linear(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    return MLP.create([int(math.prod(input_shape)), num_outputs], seeds, logit_scales, dtype, device)


def mlp_widths(hidden) -> list[int]:
    widths = list(hidden if hidden is not None else [100, 100])
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"hidden must list positive layer widths, got {hidden!r}")
    return widths


def _build_mlp(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    sizes = [int(math.prod(input_shape)), *mlp_widths(hidden), num_outputs]
    return MLP.create(sizes, seeds, logit_scales, dtype, device)


def _build_cnn(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
    if tuple(input_shape) not in ((1, 28, 28), (784,)):
        raise ValueError(f"model 'cnn' takes 28x28 images (mnist, fashion-mnist), got input shape {input_shape}")
    if str(device) == "cpu":  # banded products with a hand-written backward (conv_population); cuDNN's on a GPU
        from losslab.train.conv_population import CNNPopulation

        return CNNPopulation.create(num_outputs, seeds, logit_scales, (8, 16), dtype, device)
    return CNN.create(num_outputs, seeds, logit_scales, (8, 16), dtype, device)


#: The one registry of models: name -> ModelEntry. Iterating gives the names.
MODELS: dict[str, ModelEntry] = {
    "linear": ModelEntry("linear", _build_linear, "softmax / logistic regression (one linear layer)", builtin=True),
    "mlp": ModelEntry("mlp", _build_mlp, "ReLU MLP, widths from `hidden` (default [100, 100])", builtin=True),
    "cnn": ModelEntry("cnn", _build_cnn, "small convnet for 28x28 images: conv 8, conv 16, linear", builtin=True),
}


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
        raise TypeError(
            f"model {name!r}: factory must be callable as factory(input_shape, num_classes), got {factory!r}"
        )
    if name in MODELS and not replace:
        raise ValueError(f"model {name!r} is already registered; pass replace=True to replace it")
    doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()

    def module_factory(input_shape, num_outputs, hidden=None):  # a user's factory takes no widths
        return factory(input_shape, num_outputs)

    entry = _module_entry(name, module_factory, summary or (doc[0] if doc else f"user model {name}"))
    MODELS[name] = entry
    return entry


def _module_entry(name: str, module_factory, summary: str, builtin: bool = False) -> ModelEntry:
    from losslab.train.module_population import ModulePopulation

    def build(input_shape, num_outputs, seeds, logit_scales, hidden=None, dtype=torch.float32, device="cpu"):
        return ModulePopulation.create(
            name, module_factory, input_shape, num_outputs, seeds, logit_scales, hidden, dtype, device
        )

    return ModelEntry(name, build, summary, module_factory=module_factory, builtin=builtin)


def get_model(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}") from None


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


def _register_builtin_modules() -> None:
    from dataclasses import replace

    from losslab.train import conv_population, mnist1d_models

    for name, factory, summary in mnist1d_models.BUILTIN:
        MODELS[name] = _module_entry(name, factory, summary, builtin=True)
    # cnn1d trains as batched products with a hand-written backward on the CPU (torch.func's vmap elsewhere);
    # the plain module stays its definition: the reference loop and the members' initialisation use it.
    MODELS["cnn1d"] = replace(MODELS["cnn1d"], build=conv_population.cnn1d_builder(MODELS["cnn1d"]))


_register_builtin_modules()
