"""Train a population of models at once: one batched forward/backward per step for all members.

Each member has its own loss (and loss parameters), seed (initialisation and data order), initial
logit scale and learning rate, and its own optimiser state; members share the dataset, the model
architecture, the optimiser kind, the batch size and the number of epochs (``losslab.train.config``).
Member i gives the same result as the same configuration trained alone with a plain PyTorch loop
(``losslab.train.reference``; tests/test_population.py checks it in float64).

    >>> from losslab.data import load_dataset
    >>> from losslab.train import Member, TrainConfig, train_population
    >>> data = load_dataset("digits")
    >>> members = [Member("cross_entropy", seed=s) for s in range(4)] + [Member("mse", seed=s, lr=0.5) for s in range(4)]
    >>> result = train_population(data, members, TrainConfig(model="mlp", hidden=[64], epochs=5))
    >>> result.frame.groupby("loss").test_accuracy.last()

Steps: every epoch each member draws a fresh permutation of the training set from its own
generator and walks it in batches of ``batch_size`` (the last partial batch is dropped, so every
step of every member sees exactly ``batch_size`` examples).

The pieces: ``config`` (Member, TrainConfig), ``losslab.models`` (the population models and their registry),
``loss_groups`` (each member's loss, batched by loss), ``optimizer`` (SGD/Adam per member),
``evaluation`` (the metrics), ``plan`` and ``executor`` (blocks of members on worker threads).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd
import torch

from losslab.core import get_loss
from losslab.data import Dataset
from losslab.models import PopulationModel, build_model
from losslab.train import evaluation
from losslab.train.allocator import keep_freed_memory_in_heap
from losslab.train.config import LINKS, OPTIMIZERS, Member, TrainConfig
from losslab.train.executor import Cancelled, run_blocks
from losslab.train.loss_groups import LossGroups
from losslab.train.optimizer import PopulationOptimizer
from losslab.train.plan import ExecutionPlan, choose_plan
from losslab.train.precision import step_precision

__all__ = [
    "LINKS",
    "OPTIMIZERS",
    "Member",
    "PopulationResult",
    "TrainConfig",
    "check_population",
    "data_order_generator",
    "plan_population",
    "train_population",
]


@dataclass
class PopulationResult:
    frame: pd.DataFrame  # one row per member and evaluation
    model: PopulationModel  # the trained population, parameters stacked on axis 0
    config: TrainConfig
    members: list[Member]
    seconds: float
    plan: ExecutionPlan | None = None  # how the members were split and run
    plan_timings: list[dict] | None = None  # the measurements that chose the plan (empty: none made)

    @property
    def blocks(self) -> list[int]:
        """Members per block, in order."""
        return [b.stop - b.start for b in self.plan.blocks(len(self.members))] if self.plan else [len(self.members)]

    @property
    def workers(self) -> int:
        return self.plan.workers if self.plan else 1


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
        try:
            m.check()
        except ValueError as exc:
            raise ValueError(f"member {i}: {exc}") from None
        resolved.append((loss, params))
    return resolved


def check_population(
    dataset: Dataset, members: list[Member], config: TrainConfig, device_checks: bool = True
) -> tuple[bool, list[tuple]]:
    """Every check ``train_population`` makes before training, without training: raises ValueError or
    BadInputType (a TypeError) naming the bad value (``device_checks=False``: not those of ``TrainConfig.check_device``).
    Returns (whether the model has one sigmoid logit, each member's (loss, resolved parameters))."""
    config.validate(device_checks)
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


def build_population(dataset: Dataset, members: list[Member], binary: bool, config: TrainConfig) -> PopulationModel:
    """The population model of ``members``, each initialised from its own seed and initial logit scale."""
    return build_model(
        config.model,
        dataset.input_shape,
        1 if binary else dataset.num_classes,
        [m.seed for m in members],
        [m.init_scale for m in members],
        hidden=config.hidden,
        dtype=config.torch_dtype,
        device=torch.device(config.device),
    )


def _choose_plan(model, data, members, resolved, binary, config: TrainConfig) -> tuple[ExecutionPlan, list[dict]]:
    """The execution plan of ``members`` (``losslab.train.plan.choose_plan``), timing candidates on copies of
    ``model``'s blocks when a measurement is due; ``model`` itself is left as it was."""
    total_steps = (data.x_train.shape[0] // config.batch_size) * config.epochs
    plan_config = replace(config, memory_limit=_memory_limit(config))

    def time_plan(candidate: ExecutionPlan, warmup: int, steps: int) -> float:
        """Seconds for ``steps`` steps of the candidate's first round of blocks, after ``warmup`` steps."""
        round_blocks = candidate.blocks(len(members))[: candidate.workers]

        def probe(block: slice) -> float:
            part = model.select(block)
            part.matmul = candidate.matmul
            return _time_steps(part, data, members[block], resolved[block], binary, config, warmup, steps)

        return max(run_blocks(round_blocks, candidate.workers, candidate.threads_per_block, probe, threading.Event()))

    shape_key = {
        "model": config.model,
        "params": [list(p.shape[1:]) for p in model.params],
        "batch": config.batch_size,
        "dtype": config.dtype,
    }
    return choose_plan(
        plan_config,
        len(members),
        model.member_bytes(config.batch_size),
        model.splittable,
        matmul_choices(model, config),
        total_steps,
        shape_key,
        time_plan,
    )


def matmul_choices(model, config: TrainConfig) -> tuple[str, ...]:
    """The ways the model's blocks may compute here; a ``matmul`` the model has no use for is an error."""
    libraries = model.matmul_libraries
    if config.precision != "fp32":  # numpy has no bfloat16 and no TF32
        libraries = tuple(lib for lib in libraries if lib != "numpy")
    if config.matmul != "auto" and config.matmul not in libraries:
        raise ValueError(
            f"matmul {config.matmul!r} does not apply to model {config.model!r}"
            f"{'' if config.precision == 'fp32' else f' at precision {config.precision!r}'}; "
            f"use one of {['auto', *libraries]}"
        )
    return libraries


def plan_population(
    dataset: Dataset, members: list[Member], config: TrainConfig | None = None
) -> tuple[ExecutionPlan, list[dict]]:
    """The execution plan ``train_population`` would use for these members here, without training: what the
    configuration fixes, the rest measured (or taken from the plan cache) on this machine. Returns the plan
    and the measurements behind it (empty when none was made).

    A driver that hands cells to other machines chooses their plans with this, and fixes them in each
    cell's configuration (``plan.fixed_fields``): every worker then computes the same bits.
    """
    config = config if config is not None else TrainConfig()
    binary, resolved = check_population(dataset, members, config)
    if config.on_cpu:
        keep_freed_memory_in_heap()
    model = build_population(dataset, members, binary, config)
    data = evaluation.prepare(dataset, binary, config)
    return _choose_plan(model, data, members, resolved, binary, config)


def train_population(
    dataset: Dataset,
    members: list[Member],
    config: TrainConfig | None = None,
    progress: bool | None = None,
    description: str = "training",
    initial_params: list[torch.Tensor] | None = None,
) -> PopulationResult:
    """Train every member at once and evaluate them all at step 0 and every ``eval_every_steps``.

    ``initial_params`` (stacked like ``model.params``, one row per member) replaces the seeded
    initialisation, e.g. to continue from another population's solution (a warm start).

    The members are split into the blocks of the execution plan (``losslab.train.plan``), trained on
    worker threads; every member's arithmetic is that of its block, whatever the number of workers.
    """
    config = config if config is not None else TrainConfig()
    binary, resolved = check_population(dataset, members, config)
    if config.on_cpu:
        keep_freed_memory_in_heap()

    def fresh_model() -> PopulationModel:
        model = build_population(dataset, members, binary, config)
        if initial_params is not None:
            shapes = [tuple(p.shape) for p in model.params]
            if len(initial_params) != len(shapes) or any(tuple(a.shape) != b for a, b in zip(initial_params, shapes)):
                raise ValueError(
                    "initial_params must match the model's parameters: shapes "
                    f"{[list(s) for s in shapes]}, got {[list(p.shape) for p in initial_params]}"
                )
            for p, source in zip(model.params, initial_params):
                p.copy_(source)
        return model

    model = fresh_model()
    data = evaluation.prepare(dataset, binary, config)
    total_steps = (dataset.x_train.shape[0] // config.batch_size) * config.epochs
    plan, probe_timings = _choose_plan(model, data, members, resolved, binary, config)
    bar = _progress(total_steps, description, progress)
    started = time.perf_counter()
    try:
        while True:
            try:
                parts = _run_plan(model, plan, data, members, resolved, binary, config, bar, started)
                break
            except _OUT_OF_MEMORY:
                if config.on_cpu or plan.block_size == 1:
                    raise
                # The estimate of a block's memory was short: halve the blocks and start again from scratch.
                plan = replace(
                    plan, block_size=math.ceil(plan.block_size / 2), source=f"{plan.source}, halved after out of memory"
                )
                model = fresh_model()
                if bar is not None:
                    bar.reset(0)
    finally:
        if bar is not None:
            bar.stop()
    blocks = plan.blocks(len(members))
    frames = []
    for block, (rows, _) in zip(blocks, parts):
        frame = pd.DataFrame(rows)
        frame["member"] += block.start
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True).sort_values(["step", "member"], kind="stable")
    frame = frame.drop_duplicates(subset=["member", "step"], keep="last").reset_index(drop=True)
    trained = [part for _, part in parts]
    model = trained[0] if len(trained) == 1 else type(trained[0]).concatenate(trained)
    return PopulationResult(frame, model, config, list(members), time.perf_counter() - started, plan, probe_timings)


_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _memory_limit(config: TrainConfig) -> int | None:
    """Bytes a block may use: the configured limit, else 60% of the GPU memory free now; None on CPU."""
    if config.memory_limit is not None or config.on_cpu:
        return config.memory_limit
    free, _ = torch.cuda.mem_get_info(torch.device(config.device))
    return int(0.6 * free)


def _run_plan(model, plan: ExecutionPlan, data, members, resolved, binary, config, bar, started) -> list:
    """Train the plan's blocks; returns (rows, trained block model) per block, in block order."""
    blocks = plan.blocks(len(members))
    stop = threading.Event()

    def train_block(block: slice):
        def on_step():
            if stop.is_set():
                raise Cancelled
            if bar is not None:
                bar.advance(0, 1 / len(blocks))

        part = model if len(blocks) == 1 else model.select(block)
        if len(model.matmul_libraries) > 1:
            part.matmul = plan.matmul
        rows = _train_block(part, data, members[block], resolved[block], binary, config, on_step, started)
        return rows, part

    return run_blocks(blocks, plan.workers, plan.threads_per_block, train_block, stop)


def _train_block(
    model: PopulationModel,
    data: evaluation.PreparedData,
    members: list[Member],
    resolved: list[tuple],
    binary: bool,
    config: TrainConfig,
    on_step: Callable[[], None],
    started: float,
) -> list[dict]:
    """Train ``model``, a block of members, as one batch; returns its evaluation rows (members numbered
    from 0, ``seconds`` counted from ``started``, when the population started)."""
    dtype, device = config.torch_dtype, torch.device(config.device)
    n_members, n_train = len(members), data.x_train.shape[0]
    params = model.params
    groups = LossGroups(resolved, binary, device)
    optimizer = PopulationOptimizer(config, params, torch.tensor([m.lr for m in members], dtype=dtype, device=device))

    batch = config.batch_size
    steps_per_epoch = n_train // batch
    total_steps = steps_per_epoch * config.epochs
    eval_every = config.eval_every_steps or steps_per_epoch
    rows: list[dict] = []
    member_info = [m.describe() for m in members]

    def evaluate(step: int) -> None:
        final = step == total_steps
        # One transfer per metric (not one per member and metric: each would synchronise a GPU).
        stats = {
            k: v.tolist() if isinstance(v, torch.Tensor) else v
            for k, v in evaluation.evaluate(model, groups, data, binary, config, final).items()
        }
        elapsed = time.perf_counter() - started
        for i in range(n_members):
            rows.append(
                {
                    "member": i,
                    **member_info[i],
                    "step": step,
                    "epoch": step / steps_per_epoch,
                    **dict.fromkeys(evaluation.FINAL_ONLY),  # None unless this evaluation fills them
                    **{k: v[i] for k, v in stats.items()},
                    "seconds": elapsed,
                }
            )

    evaluate(0)
    step = 0
    gradient_buffers: dict = {}
    for xb, tb in _batches(data, members, binary, config):
        with step_precision(config.precision, device):
            logit_grad = _logit_gradient(groups, tb, binary, optimizer.gradient_scale, gradient_buffers)
            _, grads = model.forward_backward(xb, logit_grad)
        optimizer.step(params, grads)
        step += 1
        on_step()
        if step % eval_every == 0 or step == total_steps:
            evaluate(step)
    return rows


def _batches(data: evaluation.PreparedData, members: list[Member], binary: bool, config: TrainConfig):
    """Every step's inputs [M, B, features] and targets ([M, B, K] or [M, B]), each member in its own order."""
    device = torch.device(config.device)
    x_train, t_train = data.x_train, data.t_train
    n_members, n_train, batch = len(members), x_train.shape[0], config.batch_size
    order_generators = [data_order_generator(m.seed) for m in members]
    steps = n_train // batch
    for _epoch in range(config.epochs):
        # Each member's permutation from its own generator (on the CPU, so every device agrees), laid out
        # step-major once per epoch so that each step's indices are one contiguous row.
        order = torch.stack([torch.randperm(n_train, generator=g)[: steps * batch] for g in order_generators])
        order = order.view(n_members, steps, batch).transpose(0, 1).reshape(steps, n_members * batch).to(device)
        for idx in order:
            # index_select is several times faster than fancy indexing X[idx] on CPU.
            xb = x_train.index_select(0, idx).view(n_members, batch, -1)
            if binary:
                tb = t_train.index_select(0, idx).view(n_members, batch)
            else:  # gather along N of the class-major [K, N] targets: [K, M * B] -> a [M, B, K] view
                tb = t_train.T.index_select(1, idx).view(-1, n_members, batch).permute(1, 2, 0)
            yield xb, tb


def _logit_gradient(groups: LossGroups, targets: torch.Tensor, binary: bool, scale: torch.Tensor, buffers: dict):
    """The models' ``logit_grad`` callback: each member's own per-example logit gradient times its ``scale``
    ([M]; 1 / batch gives the gradient of the batch-mean loss, and SGD folds its learning rate in too), in a
    buffer of ``buffers`` reused from step to step (the model consumes it before the next step)."""

    def logit_grad(logits: torch.Tensor) -> torch.Tensor:
        z = logits.squeeze(-1) if binary else logits
        key = (tuple(z.shape), z.stride())
        out = buffers.get(key)
        if out is None:
            out = buffers[key] = torch.empty_like(z)  # the logits' layout (class-major for the built-in models)
        g = groups.scaled_gradient(z, targets, scale, out)
        return g.unsqueeze(-1) if binary else g

    return logit_grad


def _time_steps(model, data, members, resolved, binary, config: TrainConfig, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` training steps of ``model`` after ``warmup`` untimed ones (the plan's probe)."""
    groups = LossGroups(resolved, binary, torch.device(config.device))
    lrs = torch.tensor([m.lr for m in members], dtype=config.torch_dtype, device=torch.device(config.device))
    optimizer = PopulationOptimizer(config, model.params, lrs)
    probe_config = replace(
        config, epochs=max(1, math.ceil((warmup + steps) * config.batch_size / data.x_train.shape[0]))
    )
    started = None
    gradient_buffers: dict = {}
    for done, (xb, tb) in enumerate(_batches(data, members, binary, probe_config)):
        if done == warmup:
            started = time.perf_counter()
        if done == warmup + steps:
            break
        with step_precision(config.precision, torch.device(config.device)):
            logit_grad = _logit_gradient(groups, tb, binary, optimizer.gradient_scale, gradient_buffers)
            _, grads = model.forward_backward(xb, logit_grad)
        optimizer.step(model.params, grads)
    return time.perf_counter() - started
