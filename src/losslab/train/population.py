"""Train a population of models at once: one batched forward/backward per step for all members.

Each member has its own loss (and loss parameters), seed (initialisation and data order), initial
logit scale and learning rate, and its own optimiser state; members share the dataset, the model
architecture, the optimiser kind, the batch size and the number of epochs. Member i gives the same
result as the same configuration trained alone (``train_population([member])``, and a plain
PyTorch loop, see tests/test_population.py).

    >>> from losslab.train import Member, TrainConfig, load_dataset, train_population
    >>> data = load_dataset("digits")
    >>> members = [Member("cross_entropy", seed=s) for s in range(4)] + [Member("mse", seed=s, lr=0.5) for s in range(4)]
    >>> result = train_population(data, members, TrainConfig(model="mlp", hidden=[64], epochs=5))
    >>> result.frame.groupby("loss").test_accuracy.last()

Steps: every epoch each member draws a fresh permutation of the training set from its own
generator and walks it in batches of ``batch_size`` (the last partial batch is dropped, so every
step of every member sees exactly ``batch_size`` examples).

On CPU the members are trained in contiguous blocks on parallel worker threads (``TrainConfig.workers``),
each block one batched computation on one intra-op thread.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import torch

from losslab.core import get_loss
from losslab.core.links import max_over_classes
from losslab.train import metrics
from losslab.train.allocator import keep_freed_memory_in_heap
from losslab.train.datasets import Dataset
from losslab.train.models import build_model

OPTIMIZERS = ("sgd", "adam")
LINKS = ("auto", "softmax", "sigmoid")


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
    device: str = "cpu"
    dead_epsilon: float = 1e-3
    # Training-set metrics (train_loss, grad_norm, dead_fraction) use this many training examples,
    # a fixed evenly spaced subset, to keep frequent evaluations cheap; None uses them all.
    train_eval_examples: int | None = 2000
    eval_chunk_elements: int = 1 << 24  # bound on M x chunk x width during evaluation
    # CPU worker threads, each training a contiguous block of members with one intra-op thread.
    # None: as many as torch has intra-op threads for the linear and MLP models, whose results are
    # bit-identical for every value (an execution detail); 1 for the CNN, whose grouped convolutions
    # pick kernels by group count, so blocks would change its rounding; 1 on CUDA.
    workers: int | None = None

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {self.link!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.eval_every_steps is not None and (
            not isinstance(self.eval_every_steps, int) or self.eval_every_steps < 1
        ):
            raise ValueError(f"eval_every_steps must be a positive integer or None, got {self.eval_every_steps!r}")
        if self.train_eval_examples is not None and (
            not isinstance(self.train_eval_examples, int) or self.train_eval_examples < 1
        ):
            raise ValueError(
                f"train_eval_examples must be a positive integer or None, got {self.train_eval_examples!r}"
            )
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be a positive integer or None, got {self.workers!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available here; use device='cpu'")


@dataclass
class PopulationResult:
    frame: pd.DataFrame  # one row per member and evaluation
    model: object  # the trained population model (MLP or CNN), parameters stacked on axis 0
    config: TrainConfig
    members: list[Member]
    seconds: float
    blocks: list[int] = field(default_factory=list)  # how the members were split: members per block, in order
    workers: int = 1  # threads that trained the blocks


def data_order_generator(seed: int) -> torch.Generator:
    """The generator of a member's data order; separate from its initialisation stream."""
    # Modulo 2**64, the generator's seed range: unchanged below 2**63 - 500_001, valid up to 2**63 - 1.
    return torch.Generator().manual_seed((int(seed) * 2 + 1_000_003) % 2**64)


def _check_members(members: list[Member], binary: bool) -> list[tuple]:
    if not members:
        raise ValueError("members must list at least one Member")
    resolved = []
    for i, m in enumerate(members):
        loss = get_loss(m.loss)
        params = loss.resolve_params(m.loss_params)
        if binary and not loss.accepts_binary:
            raise ValueError(f"member {i}: loss {m.loss!r} has no sigmoid (one-logit) form; use link='softmax'")
        if not binary and not loss.accepts_multiclass:
            raise ValueError(
                f"member {i}: loss {m.loss!r} takes one logit per example and needs a two-class dataset with "
                "link='sigmoid' or 'auto'; for more classes use 'cross_entropy'"
            )
        if isinstance(m.seed, bool) or not isinstance(m.seed, int) or not 0 <= m.seed <= 2**63 - 1:
            raise ValueError(f"member {i}: seed must be an integer in [0, 9223372036854775807], got {m.seed!r}")
        if not (isinstance(m.lr, (int, float)) and math.isfinite(m.lr) and m.lr > 0):
            raise ValueError(f"member {i}: lr must be a positive number, got {m.lr!r}")
        if not (isinstance(m.init_scale, (int, float)) and math.isfinite(m.init_scale) and m.init_scale > 0):
            raise ValueError(f"member {i}: init_scale must be a positive number, got {m.init_scale!r}")
        resolved.append((loss, params))
    return resolved


class _LossGroups:
    """Members grouped by (loss, parameters): each group's logit gradient is one batched call."""

    def __init__(self, resolved: list[tuple], binary: bool, device):
        keys: dict[tuple, list[int]] = {}
        for i, (loss, params) in enumerate(resolved):
            keys.setdefault((loss.name, json.dumps(params, sort_keys=True)), []).append(i)
        self.groups = []
        for (name, params_json), idx in keys.items():
            loss = get_loss(name)
            params = json.loads(params_json)
            grad = loss.binary_grad if binary else loss.grad
            value = loss.binary_values if binary else loss.values
            contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
            index = torch.tensor(idx, device=device)
            self.groups.append((grad, value, params, index, slice(idx[0], idx[0] + len(idx)) if contiguous else None))
        self.single = len(self.groups) == 1

    def apply(self, fn_pick, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Apply each group's function (chosen by ``fn_pick``) to its members' rows; members on axis 0."""
        if self.single:
            fn, params = fn_pick(self.groups[0]), self.groups[0][2]
            return fn(logits, targets, **params)
        out = None
        for group in self.groups:
            fn, params, index, sl = fn_pick(group), group[2], group[3], group[4]
            part = (
                fn(logits[sl], targets[sl], **params)
                if sl is not None
                else fn(_select_members(logits, index), _select_members(targets, index), **params)
            )
            if out is None:
                out = _empty_in_layout_of(part, logits.shape[0])
            if sl is not None:
                out[sl] = part
            else:
                out.index_copy_(0, index, part)
        return out

    def gradient(self, logits, targets):
        return self.apply(lambda g: g[0], logits, targets)

    def values(self, logits, targets):
        return self.apply(lambda g: g[1], logits, targets)


def _class_major(t: torch.Tensor) -> bool:
    """A [M, B, K] tensor laid out as [M, K, B] in memory, as the models produce logits."""
    return t.dim() == 3 and t.stride(1) == 1 and t.stride(2) != 1


def _select_members(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of axis 0 in t's memory layout. Keeping a class-major tensor class-major makes
    the losses run the same kernels, and round the same way, whichever members share a group."""
    if _class_major(t):
        return t.transpose(1, 2).index_select(0, index).transpose(1, 2)
    return t.index_select(0, index)


def _empty_in_layout_of(part: torch.Tensor, members: int) -> torch.Tensor:
    """An uninitialised [members, *part.shape[1:]] tensor with part's memory layout (class-major or not)."""
    if _class_major(part):
        return part.new_empty(members, part.shape[2], part.shape[1]).transpose(1, 2)
    return part.new_empty((members, *part.shape[1:]))


class _Optimizer:
    """SGD with momentum or Adam, as torch.optim defines them, with one learning rate per member."""

    def __init__(self, config: TrainConfig, params: list[torch.Tensor], lrs: torch.Tensor):
        self.kind, self.config = config.optimizer, config
        self.lr = [lrs.view(-1, *([1] * (p.dim() - 1))) for p in params]
        self.state = [torch.zeros_like(p) for p in params]
        self.state2 = [torch.zeros_like(p) for p in params] if self.kind == "adam" else None
        self.steps = 0

    def step(self, params, grads) -> None:
        self.steps += 1
        if self.kind == "sgd":
            momentum = self.config.momentum
            for p, g, buf, lr in zip(params, grads, self.state, self.lr):
                if momentum == 0:
                    buf = g
                elif self.steps == 1:
                    buf.copy_(g)  # torch.optim.SGD starts the momentum buffer at the first gradient
                else:
                    buf.mul_(momentum).add_(g)
                p.addcmul_(buf, lr, value=-1.0)
            return
        beta1, beta2 = self.config.betas
        t = self.steps
        correction1, correction2_sqrt = 1 - beta1**t, math.sqrt(1 - beta2**t)
        for p, g, m, v, lr in zip(params, grads, self.state, self.state2, self.lr):
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.config.adam_eps)
            p.sub_(m / denom * (lr / correction1))


def _progress(total: int, description: str, enabled: bool | None):
    """A rich progress bar on a terminal; a no-op otherwise (logs, CI, notebooks that are not TTYs)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    )
    bar.start()
    bar.add_task(description, total=total)
    return bar


def train_population(
    dataset: Dataset,
    members: list[Member],
    config: TrainConfig = TrainConfig(),
    progress: bool | None = None,
    description: str = "training",
    initial_params: list[torch.Tensor] | None = None,
) -> PopulationResult:
    """Train every member at once and evaluate them all at step 0 and every ``eval_every_steps``.

    ``initial_params`` (stacked like ``model.params``, one row per member) replaces the seeded
    initialisation, e.g. to continue from another population's solution (a warm start).

    On CPU the members are split into contiguous blocks trained on ``config.workers`` parallel
    threads, each with one intra-op thread: small batched kernels scale better across cores that
    way than split inside each kernel. Blocks of the linear and MLP models are also kept small
    enough for their working set to stay in cache. Every member's arithmetic is unchanged.
    """
    binary, resolved = check_population(dataset, members, config)
    if str(config.device) == "cpu":
        keep_freed_memory_in_heap()
    n_train = dataset.x_train.shape[0]
    # A one-member model checks the architecture before any thread starts, and gives the parameter shapes.
    probe = _build(dataset, members[:1], binary, config)
    shapes = [(len(members), *p.shape[1:]) for p in probe.params]
    if initial_params is not None and (
        len(initial_params) != len(shapes) or any(tuple(a.shape) != b for a, b in zip(initial_params, shapes))
    ):
        raise ValueError(
            "initial_params must match the model's parameters: shapes "
            f"{[list(s) for s in shapes]}, got {[list(p.shape) for p in initial_params]}"
        )
    blocks, workers = _plan_blocks(config, len(members), probe)
    data = _prepare_tensors(dataset, binary, config)
    total_steps = (n_train // config.batch_size) * config.epochs
    bar = _progress(total_steps, description, progress)
    stop = threading.Event()

    def train_block(block: slice):
        def on_step():
            if stop.is_set():
                raise _Cancelled
            if bar is not None:
                bar.advance(0, 1 / len(blocks))

        model = _build(dataset, members[block], binary, config)
        if initial_params is not None:
            for p, source in zip(model.params, initial_params):
                p.copy_(source[block])
        rows = _train_block(model, data, members[block], resolved[block], binary, config, on_step, started)
        return rows, model

    started = time.perf_counter()
    try:
        parts = run_blocks(blocks, workers, train_block, stop)
    finally:
        if bar is not None:
            bar.stop()
    frames = []
    for block, (rows, _) in zip(blocks, parts):
        frame = pd.DataFrame(rows)
        frame["member"] += block.start
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True).sort_values(["step", "member"], kind="stable")
    frame = frame.drop_duplicates(subset=["member", "step"], keep="last").reset_index(drop=True)
    models = [model for _, model in parts]
    model = models[0] if len(models) == 1 else type(models[0]).concatenate(models)
    seconds = time.perf_counter() - started
    sizes = [b.stop - b.start for b in blocks]
    return PopulationResult(frame, model, config, list(members), seconds, sizes, workers)


class _Cancelled(Exception):
    """Raised inside a block when another block failed or the run was interrupted."""


def run_blocks(blocks: list, workers: int, train_block, stop: threading.Event) -> list:
    """``train_block`` on every block, in order on this thread or on ``workers`` threads with one
    intra-op thread each; the results in block order. The first failure (or Ctrl-C) sets ``stop``,
    which the other blocks see at their next step, and is raised. (The trainer's executor; the P1
    benchmark times its matmul-only bound with it.)"""
    if workers == 1:
        return [train_block(block) for block in blocks]
    with _intra_op_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="losslab") as pool:
        futures = [pool.submit(train_block, block) for block in blocks]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C while waiting
            stop.set()
            raise
        failed = [f for f in futures if f.done() and f.exception() is not None]
        if failed:
            stop.set()
            raise failed[0].exception()
        return [future.result() for future in futures]


def check_population(dataset: Dataset, members: list[Member], config: TrainConfig) -> tuple[bool, list[tuple]]:
    """Every check ``train_population`` makes before training, without training: raises ValueError or
    TypeError naming the bad value. Returns (whether the model has one sigmoid logit, each member's
    (loss, resolved parameters))."""
    config.validate()
    binary = _uses_sigmoid_link(dataset, members, config)
    resolved = _check_members(members, binary)
    n_train = dataset.x_train.shape[0]
    if config.batch_size > n_train:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {n_train} training examples of {dataset.name!r}")
    return binary, resolved


def _uses_sigmoid_link(dataset: Dataset, members: list[Member], config: TrainConfig) -> bool:
    all_binary = all(get_loss(m.loss).accepts_binary for m in members)
    binary = config.link == "sigmoid" or (config.link == "auto" and dataset.num_classes == 2 and all_binary)
    if binary and dataset.num_classes != 2:
        raise ValueError(
            f"link='sigmoid' needs a two-class dataset, {dataset.name!r} has {dataset.num_classes} classes"
        )
    return binary


def _build(dataset: Dataset, members: list[Member], binary: bool, config: TrainConfig):
    return build_model(
        config.model,
        dataset.input_shape,
        1 if binary else dataset.num_classes,
        [m.seed for m in members],
        [m.init_scale for m in members],
        hidden=config.hidden,
        dtype=getattr(torch, config.dtype),
        device=torch.device(config.device),
    )


# Blocks of the linear and MLP models are sized so that a block's working set stays within about
# half of a server CPU's last-level cache. Measured on P1's MLP (40-100-100-10, batch 100, one
# thread, two epochs): 19.7 ms per member in blocks of 8 to 32 members, 22.1 in blocks of 64, 24.4
# in 128 and 28.4 in 512, as the working set outgrows the cache and steps stream from memory.
_BLOCK_BYTES = 16 * 2**20
_MIN_BLOCK_MEMBERS = 8  # below this the per-step Python overhead is shared by too few members


def _plan_blocks(config: TrainConfig, n_members: int, probe) -> tuple[list[slice], int]:
    """The member blocks and the number of worker threads that train them."""
    # Only the linear and MLP models on CPU are split by default: one GPU runs the whole population
    # as one batch, and the CNN's rounding depends on its block size (see TrainConfig.workers).
    splittable = str(config.device) == "cpu" and config.model != "cnn"
    if config.workers is not None:
        workers = config.workers
    else:
        workers = torch.get_num_threads() if splittable else 1
    workers = max(1, min(workers, n_members))
    n_blocks = workers
    if splittable:
        most = max(_MIN_BLOCK_MEMBERS, _BLOCK_BYTES // _member_bytes(probe, config.batch_size))
        n_blocks = max(workers, math.ceil(n_members / most))
    return _member_blocks(n_members, n_blocks), workers


def _member_bytes(probe, batch: int) -> int:
    """One MLP member's rough working set in a step: parameters, gradients and optimiser state, and a
    batch of activations and deltas at every layer (widths read from the one-member ``probe``)."""
    weights = probe.weights  # hidden [1, in, out]; last [1, K, h]
    widths = weights[0].shape[1] + sum(w.shape[2] for w in weights[:-1]) + weights[-1].shape[1]
    n_params = sum(p[0].numel() for p in probe.params)
    return probe.params[0].element_size() * 3 * (n_params + batch * widths)


def _member_blocks(n_members: int, n_blocks: int) -> list[slice]:
    """Contiguous, near-equal blocks: members listed by loss stay in few loss groups per block."""
    bounds = [n_members * i // n_blocks for i in range(n_blocks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@contextmanager
def _intra_op_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class _Tensors:
    """The dataset on the training device in the forms the steps and evaluations read; made once and
    shared, read-only, by every block."""

    x_train: torch.Tensor  # [N, features]
    t_train: torch.Tensor  # targets: [N, K] probabilities, class-major, or [N] 0/1 floats for sigmoid models
    x_eval: torch.Tensor  # the training examples the train-set metrics use, and their labels and targets
    y_eval: torch.Tensor
    t_eval: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _prepare_tensors(dataset: Dataset, binary: bool, config: TrainConfig) -> _Tensors:
    dtype, device = getattr(torch, config.dtype), torch.device(config.device)
    n_train = dataset.x_train.shape[0]
    # Flatten inputs: the MLP reads feature vectors and the CNN reshapes them to images itself.
    x_train = dataset.x_train.reshape(n_train, -1).to(device, dtype)
    x_test = dataset.x_test.reshape(dataset.x_test.shape[0], -1).to(device, dtype)
    y_train, y_test = dataset.y_train.to(device), dataset.y_test.to(device)
    # Targets in the form the losses take: probabilities [N, K], or 0/1 floats [N] for sigmoid models.
    # Stored class-major ([K, N] memory seen as [N, K]) like the model's logits: elementwise ops on two
    # tensors of different layouts run several times slower on CPU.
    if binary:
        t_train = y_train.to(dtype)
    else:
        t_train = torch.nn.functional.one_hot(y_train, dataset.num_classes).to(dtype).T.contiguous().T
    limit = config.train_eval_examples
    # The evenly spaced rows are computed on the CPU so that every device evaluates the same examples.
    eval_rows = (
        torch.linspace(0, n_train - 1, limit).long() if limit is not None and limit < n_train else torch.arange(n_train)
    ).to(device)
    t_eval = t_train[eval_rows] if binary else t_train.T[:, eval_rows].contiguous().T  # class-major like logits
    return _Tensors(x_train, t_train, x_train[eval_rows], y_train[eval_rows], t_eval, x_test, y_test)


def _train_block(
    model,
    data: _Tensors,
    members: list[Member],
    resolved: list[tuple],
    binary: bool,
    config: TrainConfig,
    on_step: Callable[[], None],
    started: float,
) -> list[dict]:
    """Train ``model``, a block of members, as one batch; returns its evaluation rows (members numbered
    from 0, ``seconds`` counted from ``started``, when the population started)."""
    dtype, device = getattr(torch, config.dtype), torch.device(config.device)
    x_train, t_train = data.x_train, data.t_train
    n_members, n_train = len(members), x_train.shape[0]
    params = model.params
    groups = _LossGroups(resolved, binary, device)
    optimizer = _Optimizer(config, params, torch.tensor([m.lr for m in members], dtype=dtype, device=device))
    order_generators = [data_order_generator(m.seed) for m in members]

    batch = config.batch_size
    steps_per_epoch = n_train // batch
    total_steps = steps_per_epoch * config.epochs
    eval_every = config.eval_every_steps or steps_per_epoch
    rows: list[dict] = []
    member_info = [m.describe() for m in members]

    def evaluate(step: int) -> None:
        # One transfer per metric (not one per member and metric: each would synchronise a GPU).
        stats = {k: v.tolist() for k, v in _evaluate(model, groups, data, binary, config).items()}
        elapsed = time.perf_counter() - started
        for i in range(n_members):
            rows.append(
                {
                    "member": i,
                    **member_info[i],
                    "step": step,
                    "epoch": step / steps_per_epoch,
                    **{k: v[i] for k, v in stats.items()},
                    "seconds": elapsed,
                }
            )

    evaluate(0)
    step = 0
    for _epoch in range(config.epochs):
        # Each member's permutation from its own generator (on the CPU, so every device agrees).
        order = torch.stack([torch.randperm(n_train, generator=g) for g in order_generators]).to(device)
        for start in range(0, steps_per_epoch * batch, batch):
            idx = order[:, start : start + batch].reshape(-1)
            # index_select is several times faster than fancy indexing X[idx] on CPU.
            xb = x_train.index_select(0, idx).view(n_members, batch, -1)
            if binary:
                tb = t_train.index_select(0, idx).view(n_members, batch)
            else:  # gather along N of the class-major [K, N] targets: [K, M * B] -> a [M, B, K] view
                tb = t_train.T.index_select(1, idx).view(-1, n_members, batch).permute(1, 2, 0)

            def logit_grad(logits, tb=tb):
                z = logits.squeeze(-1) if binary else logits
                g = groups.gradient(z, tb) / batch  # closed form, for the batch-mean loss
                return g.unsqueeze(-1) if binary else g

            _, grads = model.forward_backward(xb, logit_grad)
            optimizer.step(params, grads)
            step += 1
            on_step()
            if step % eval_every == 0 or step == total_steps:
                evaluate(step)
    return rows


@torch.no_grad()
def _evaluate(model, groups: _LossGroups, data: _Tensors, binary, config) -> dict:
    """Metrics per member on the evaluation rows of the training set and on the test set, in memory-bounded chunks."""
    y_train, t_train, y_test = data.y_eval, data.t_eval, data.y_test
    train_logits = _logits_in_chunks(model, data.x_eval, config)
    test_logits = _logits_in_chunks(model, data.x_test, config)
    members = train_logits.shape[0]
    z_train = train_logits.squeeze(-1) if binary else train_logits
    z_test = test_logits.squeeze(-1) if binary else test_logits
    targets = t_train.expand(members, *t_train.shape)
    own_loss = groups.values(z_train, targets)  # [M, N] each member's own training loss
    grad = groups.gradient(z_train, targets)
    grad_norm = grad.abs() if binary else grad.norm(dim=-1)
    wrong = ((z_train > 0).long() if binary else max_over_classes(z_train)[1]) != y_train
    return {
        "train_loss": own_loss.double().mean(-1),
        "train_accuracy": metrics.accuracy(z_train, y_train),
        "test_accuracy": metrics.accuracy(z_test, y_test),
        "test_nll": metrics.negative_log_likelihood(z_test, y_test),
        "test_brier": metrics.brier_score(z_test, y_test),
        "test_ece": metrics.expected_calibration_error(z_test, y_test),
        "grad_norm": grad_norm.double().mean(-1),
        "dead_fraction": (wrong & (grad_norm < config.dead_epsilon)).double().mean(-1),
    }


def _logits_in_chunks(model, x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    members = model.params[0].shape[0]
    width = max(p.shape[-1] for p in model.params)
    chunk = max(1, config.eval_chunk_elements // max(1, members * max(width, x.shape[-1])))
    parts = [model.forward(x[i : i + chunk].unsqueeze(0).expand(members, -1, -1)) for i in range(0, x.shape[0], chunk)]
    # Concatenate class-major ([M, K, N] memory) as the model produced it: softmax over K is then fast.
    return torch.cat([p.transpose(1, 2) for p in parts], dim=2).transpose(1, 2)
