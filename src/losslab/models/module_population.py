"""Any ``torch.nn.Module`` trained as a population through ``torch.func``.

The members' parameters (and buffers) are stacked along a leading member axis
(``torch.func.stack_module_state``); one forward pass is ``vmap`` over ``functional_call`` of a
parameter-free copy of the module, and the gradients come from one autograd call through it, so each
member has its own weights and its own data while the whole population is one batched computation.

What ``vmap`` cannot batch is refused with a clear error before training: BatchNorm in training mode
(its running statistics are updated in place) and dropout (its masks come from the global random
generator, so member i would no longer equal its plain run), and, from one batched forward and backward on
two examples, Python control flow on a tensor's value (``if x.sum() > 0:``) or ``.item()``.
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from losslab.errors import BadInputType
from losslab.models.protocol import LogitGrad

#: Where torch lives: frames there are not the user's line of a failure.
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)
#: factory(input_shape, num_outputs, hidden) -> one member's nn.Module
ModuleFactory = Callable[..., nn.Module]


def _last_parameterised_module(module: nn.Module) -> nn.Module | None:
    owners = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    return owners[-1] if owners else None


def member_module(
    name: str,
    factory: ModuleFactory,
    input_shape: tuple[int, ...],
    num_outputs: int,
    seed: int,
    logit_scale: float,
    hidden=None,
    dtype=torch.float32,
) -> nn.Module:
    """One member's module: built under ``torch.manual_seed(seed)`` (PyTorch's default initialisation,
    reproducible per seed, without touching the caller's random state), its last parameterised layer
    multiplied by ``logit_scale``, in ``dtype``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            module = factory(tuple(input_shape), num_outputs, hidden)
        except (ValueError, TypeError) as exc:
            if str(exc).startswith(f"model {name!r}"):  # already names the model and the fix
                raise
            raise ValueError(
                f"model {name!r}: factory(input_shape={tuple(input_shape)}, num_classes={num_outputs}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        except Exception as exc:  # a user's factory: report it as bad input, naming the model
            raise ValueError(
                f"model {name!r}: factory(input_shape={tuple(input_shape)}, num_classes={num_outputs}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(module, nn.Module):
        raise BadInputType(f"model {name!r}: the factory must return a torch.nn.Module, got {type(module).__name__}")
    module = module.to(dtype)
    last = _last_parameterised_module(module)
    if last is None:
        raise ValueError(f"model {name!r} has no parameters to train; its factory must return a module with layers")
    with torch.no_grad():
        for p in last.parameters(recurse=False):
            p.mul_(logit_scale)
    return module


def check_module(name: str, module: nn.Module, input_shape: tuple[int, ...], num_outputs: int) -> int:
    """Refuse what vmap cannot train as a population, and a module whose logits have the wrong shape.
    Returns the number of activation values one example produces (for sizing blocks to memory)."""
    for layer_name, layer in module.named_modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            raise ValueError(
                f"model {name!r}: layer {layer_name!r} ({type(layer).__name__}) updates its running statistics in "
                "place during training, which torch.func's vmap cannot do for a population; use torch.nn.GroupNorm "
                "or torch.nn.LayerNorm instead"
            )
        if isinstance(layer, nn.modules.dropout._DropoutNd) and layer.p > 0:
            raise ValueError(
                f"model {name!r}: layer {layer_name!r} ({type(layer).__name__}, p={layer.p}) draws its masks from the "
                "global random generator, so a member would not equal its own plain run; set p=0 or remove it"
            )
    probe = torch.zeros(2, *input_shape, dtype=next(module.parameters()).dtype)
    produced = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out: produced.append(out.numel() if isinstance(out, torch.Tensor) else 0)
        )
        for m in module.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as exc:
        raise ValueError(
            f"model {name!r} failed on a batch of shape {list(probe.shape)}: {type(exc).__name__}: {exc}; "
            "check that it accepts [batch, *input_shape] inputs"
        ) from exc
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_outputs):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"model {name!r} returned {shape} for a batch of shape {list(probe.shape)}; it must return logits of "
            f"shape [batch, num_classes] = [2, {num_outputs}]"
        )
    return sum(produced) // 2


def _bind(module: nn.Module, name: str, tensor: torch.Tensor, parameter: bool) -> None:
    """Put ``tensor`` in ``module`` as its parameter (or buffer) ``name`` (dotted), sharing its memory."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    if parameter:
        owner._parameters[leaf] = nn.Parameter(tensor, requires_grad=True)
    else:
        owner._buffers[leaf] = tensor


class ModulePopulation:
    """M copies of one module architecture with their own parameters: x [M, B, features] -> logits [M, B, K].

    Two ways to compute a block (``matmul``, chosen by the execution plan like the MLP's products):
    ``vmap``, one batched call through ``torch.func`` for all of the block's members, and ``loop``, each
    member as a plain module (its parameters views of the stacked ones) called and differentiated in turn,
    for the plan to run on worker threads. Which is faster depends on the module and the machine: vmap batches
    small layers that a loop would call one by one, while ops without a batched rule run member by member
    inside vmap anyway. The two round differently (other kernels), so the plan records the choice.
    """

    splittable: ClassVar[bool] = True  # blocks are fixed by the plan, which records them with the results
    matmul_libraries: ClassVar[tuple[str, ...]] = ("vmap", "loop")

    def __init__(
        self,
        name: str,
        base: nn.Module,
        params: dict,
        buffers: dict,
        input_shape: tuple[int, ...],
        activations: int,
        matmul: str = "vmap",
    ):
        self.name, self.base, self.input_shape, self.activations = name, base, tuple(input_shape), activations
        self._params, self._buffers = params, buffers
        self._call = vmap(self._member_call, in_dims=(0, 0, 0))
        self.matmul = matmul
        self._modules: list[nn.Module] | None = None  # the loop's plain modules, made on first use

    def _member_modules(self) -> list[nn.Module]:
        """One plain module per member, its parameters and buffers views of the stacked tensors (so the
        optimiser's in-place updates reach them)."""
        if self._modules is None:
            modules = []
            for i in range(self.members):
                module = copy.deepcopy(self.base)
                for key, value in self._params.items():
                    _bind(module, key, value[i], parameter=True)
                for key, value in self._buffers.items():
                    _bind(module, key, value[i], parameter=False)
                modules.append(module)
            self._modules = modules
        return self._modules

    @classmethod
    def create(
        cls,
        name: str,
        factory: ModuleFactory,
        input_shape,
        num_outputs: int,
        seeds,
        logit_scales,
        hidden=None,
        dtype=torch.float32,
        device="cpu",
    ) -> ModulePopulation:
        modules = [
            member_module(name, factory, input_shape, num_outputs, s, c, hidden, dtype)
            for s, c in zip(seeds, logit_scales)
        ]
        activations = check_module(name, modules[0], tuple(input_shape), num_outputs)
        params, buffers = stack_module_state(modules)
        params = {k: v.detach().to(device) for k, v in params.items()}
        buffers = {k: v.to(device) for k, v in buffers.items()}
        # The module only lends its structure to functional_call: a copy on the meta device holds no memory.
        base = copy.deepcopy(modules[0]).to("meta")
        population = cls(name, base, params, buffers, input_shape, activations)
        population.check_batched()
        return population

    def check_batched(self) -> None:
        """One forward and backward of every member through ``vmap`` on two examples: what vmap cannot batch
        (Python control flow on a tensor's value, ``.item()``) fails here, in one line, before any training."""
        first = next(iter(self._params.values()))
        x = torch.zeros(self.members, 2, math.prod(self.input_shape), dtype=first.dtype, device=first.device)
        try:
            self.forward_backward(x, torch.ones_like)
        except RuntimeError as exc:
            if "vmap" not in str(exc) and "functorch" not in str(exc):
                raise
            raise ValueError(_unbatchable(self.name, exc)) from None

    def _member_call(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    @property
    def params(self) -> list[torch.Tensor]:
        return list(self._params.values())

    @property
    def members(self) -> int:
        return next(iter(self._params.values())).shape[0]

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], *self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.matmul == "loop":
            inputs = self._inputs(x)
            return torch.stack([module(inputs[i]) for i, module in enumerate(self._member_modules())])
        return self._call(self._params, self._buffers, self._inputs(x))

    def forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.matmul == "loop":
            return self._loop_forward_backward(x, logit_grad)
        params = {k: v.detach().requires_grad_(True) for k, v in self._params.items()}
        with torch.enable_grad():
            logits = self._call(params, self._buffers, self._inputs(x))
            grads = torch.autograd.grad(logits, list(params.values()), logit_grad(logits.detach()))
        return logits.detach(), list(grads)

    def _loop_forward_backward(self, x: torch.Tensor, logit_grad: LogitGrad):
        """Each member's plain module forward (graphs kept), the loss gradient of all members at once (the loss
        groups batch across members), then each member's backward into its rows of the gradients."""
        inputs = self._inputs(x)
        modules = self._member_modules()
        with torch.enable_grad():
            outputs = [module(inputs[i]) for i, module in enumerate(modules)]
            logits = torch.stack([o.detach() for o in outputs])
            delta = logit_grad(logits)
            grads = [torch.empty_like(v) for v in self._params.values()]
            for i, (module, output) in enumerate(zip(modules, outputs)):
                member_grads = torch.autograd.grad(output, list(module.parameters()), delta[i])
                for g, row in zip(grads, member_grads):
                    g[i] = row
        return logits, grads

    def select(self, members: slice) -> ModulePopulation:
        params = {k: v[members].clone() for k, v in self._params.items()}
        buffers = {k: v[members].clone() for k, v in self._buffers.items()}
        # functional_call swaps tensors into the module object while it runs, so blocks that may run on
        # different threads at once each get their own (parameter-free) copy of it.
        return ModulePopulation(
            self.name, copy.deepcopy(self.base), params, buffers, self.input_shape, self.activations, self.matmul
        )

    @classmethod
    def concatenate(cls, parts: list[ModulePopulation]) -> ModulePopulation:
        first = parts[0]
        params = {k: torch.cat([p._params[k] for p in parts]) for k in first._params}
        buffers = {k: torch.cat([p._buffers[k] for p in parts]) for k in first._buffers}
        return cls(first.name, first.base, params, buffers, first.input_shape, first.activations, first.matmul)

    def member_bytes(self, batch: int) -> int:
        n_params = sum(v[0].numel() for v in self._params.values())
        element = next(iter(self._params.values())).element_size()
        # Parameters, gradients and optimiser state; inputs, and every layer's output with its gradient.
        return element * (3 * n_params + batch * (math.prod(self.input_shape) + 2 * self.activations))

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's parameters by the module's own names (``module.load_state_dict`` takes them)."""
        return {**{k: v[i] for k, v in self._params.items()}, **{k: v[i] for k, v in self._buffers.items()}}


def _unbatchable(name: str, exc: RuntimeError) -> str:
    """The one line for a module vmap cannot batch: what it does, where (the user's line), and what to write instead."""
    text = str(exc)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(_TORCH_DIR) and Path(f.filename).resolve() != Path(__file__).resolve()
    ]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno}: {(frames[-1].line or '').strip()})" if frames else ""
    if "data-dependent control flow" in text:
        what, fix = (
            "its forward decides with a tensor's value in Python (an if or while on a tensor)",
            "compute both branches and choose with torch.where",
        )
    elif ".item()" in text:
        what, fix = "its forward calls .item() on a tensor", "keep the value a tensor"
    else:
        what, fix = f"vmap cannot batch it ({text.splitlines()[0][:200]})", "use batchable torch operations"
    return f"model {name!r}: {what}{where}, which torch.func's vmap cannot do for a population of members; {fix}"
