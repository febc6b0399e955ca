"""Run a spec: expand it into cells, train each cell as one population, store the results.

The results folder is written only through ``losslab.experiments.store`` (see there for its layout):
``manifest.json`` lists every cell with its fingerprint and, once finished, its row count and the
SHA-256 of ``cells/<cell>.parquet``. ``run_spec`` checks everything it can before it creates
anything (the spec, every cell's data files, dataset, members and model, and that the folder holds
no other spec or size), so a failed start leaves nothing on disk; then it locks the folder, trains
the cells not yet done (a cell whose file is damaged counts as not done, and the run says so) and
lists each in the manifest as soon as its file is safely written. An interrupted run (Ctrl-C, kill)
therefore loses at most the cell in progress, and a rerun trains exactly the cells still missing.

Before anything is created the run's training time is estimated from the spec (``estimate``: members x steps
of every cell to train, at the cost of a step on a fast machine, so the estimate is a lower bound), and a run
beyond ``max_days`` (default 30) stops there, saying the estimate and how to run it anyway. As the run goes,
a cell still training says so every few minutes, and a finished cell whose members diverged (their logits no
longer finite: the trainer's ``diverged`` column) says how many and which, in one line per cell.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch

from losslab.data import DATASETS, check_available, load_dataset
from losslab.errors import INPUT_ERRORS, BadInputType
from losslab.experiments import store
from losslab.experiments.cluster import RayCluster
from losslab.experiments.progress import (
    MAX_DAYS,
    check_length,
    describe_diverged,
    diverged_members,
    estimate,
    format_duration,
    heartbeat,
)
from losslab.experiments.spec import Cell, Spec, SpecError
from losslab.experiments.spec_plugins import REGISTRIES, plugin_of, registered_by
from losslab.experiments.store import environment
from losslab.models import build_model
from losslab.train import Member, TrainConfig, check_population, train_population
from losslab.train.config import describe_device, resolve_device
from losslab.train.plan import ARITHMETIC_FIELDS
from losslab.train.population import matmul_choices, plan_population


@dataclass
class RunSummary:
    out: Path
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    diverged: dict[str, int] = field(default_factory=dict)  # cell id -> members that diverged

    def describe(self) -> str:
        parts = [f"{len(self.trained)} cell(s) trained", f"{len(self.skipped)} already done"]
        line = f"{', '.join(parts)} in {self.seconds:.1f} s; results in {self.out}"
        if self.diverged:
            line += (
                f"; {sum(self.diverged.values())} member(s) diverged in {len(self.diverged)} cell(s) "
                f"({', '.join(self.diverged)}): see the warnings above"
            )
        return line


def _load_cell_dataset(cell: Cell, data_dir, device: str, cache: dict):
    key = (cell.dataset, json.dumps(cell.dataset_options, sort_keys=True), tuple(cell.classes or ()))
    if key not in cache:
        cache[key] = load_dataset(cell.dataset, classes=cell.classes, data_dir=data_dir, **cell.dataset_options)
    return cache[key]


def _label_rows(frame: pd.DataFrame, cell: Cell, dataset, phase: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.insert(0, "cell", cell.id)
    frame.insert(1, "grid", cell.grid)
    frame.insert(2, "dataset", dataset.name)
    frame.insert(3, "num_classes", dataset.num_classes)
    frame.insert(4, "model", cell.train.model)
    frame.insert(5, "phase", phase)
    frame["dataset_options"] = json.dumps(cell.dataset_options, sort_keys=True)
    return frame


def _warmstart_population(cell: Cell) -> tuple[list[tuple[int, float]], list[Member], object]:
    """The warm-start population of a cell: one member per (seed, initial scale), and its config."""
    ws = cell.warmstart
    starts = sorted({(m.seed, m.init_scale) for m in cell.members})
    first = [Member(ws["loss"], seed=s, lr=ws["lr"], init_scale=c) for s, c in starts]
    config = type(cell.train)(**{**asdict(cell.train), "epochs": ws["epochs"]})
    return starts, first, config


def _execution(result) -> dict:
    """How a population ran (recorded with its cell): device, precision, and the plan with its measurements."""
    return {
        "device": str(result.config.device),
        "precision": result.config.precision,
        "plan": result.plan.describe() if result.plan else None,
        "plan_measurements": result.plan_timings or [],
        "seconds": round(result.seconds, 3),
    }


def _populations(cell: Cell) -> dict[str, tuple[list[Member], TrainConfig]]:
    """Each population a cell trains, by phase: "main", and first "warmstart" if it has one."""
    populations = {}
    if cell.warmstart is not None:
        _, first, ws_config = _warmstart_population(cell)
        populations["warmstart"] = (first, ws_config)
    populations["main"] = (cell.members, cell.train)
    return populations


def _planned(config: TrainConfig, cell: Cell, phase: str) -> TrainConfig:
    """``config`` with the plan the driver fixed for this phase of the cell (unchanged where none was)."""
    fixed = (cell.plans or {}).get(phase)
    return replace(config, **{k: fixed[k] for k in ARITHMETIC_FIELDS}) if fixed else config


def plan_cell(
    cell: Cell, dataset, recorded: dict | None = None, log=lambda _line: None, max_threads: int | None = None
) -> Cell:
    """The cell with the execution plan of each of its populations fixed (``Cell.plans``), chosen here, once:
    what the spec's ``train.plan`` gives, a plan ``recorded`` for this cell by an earlier run of the same
    results folder, else measured on this machine (or taken from its plan cache). Every machine that trains
    the cell then uses these blocks, threads per block and matmul library, so a cell gives the same bits
    locally and on Ray; only the number of worker threads adapts to the machine. GPU cells are not planned
    here: their blocks depend on the free memory of the GPU that trains them. ``max_threads``: the CPUs a Ray task
    of the cell gets (``--cpus-per-cell``), which a measured plan's threads per block may not exceed."""
    if not cell.train.on_cpu:
        return cell
    plans = {}
    for phase, (members, config) in _populations(cell).items():
        old = (recorded or {}).get(phase) or {}
        fits = max_threads is None or config.threads_per_block is not None
        given = {k: v for k in ARITHMETIC_FIELDS if (v := getattr(config, k)) not in (None, "auto")}
        if len(given) < len(ARITHMETIC_FIELDS) and all(old.get(k) is not None for k in ARITHMETIC_FIELDS):
            if fits or old["threads_per_block"] <= max_threads:
                # What the spec fixes wins; the rest as the earlier run of this folder fixed it.
                plans[phase] = {**{k: old[k] for k in ARITHMETIC_FIELDS}, **given, "source": "recorded"}
                continue
        plan, timings = plan_population(dataset, members, config)
        if not fits and plan.threads_per_block > max_threads:  # a plan the task that runs it could not hold
            plan, timings = plan_population(dataset, members, replace(config, threads_per_block=max_threads))
        plans[phase] = {**plan.fixed_fields(), "source": plan.source}
        if timings:
            log(f"{cell.id}: plan measured ({phase}): {plan.block_size} members per block, {plan.matmul} products")
    return replace(cell, plans=plans)


def _recorded_plans(out: Path, cells: list[Cell]) -> dict[str, dict]:
    """The plans an earlier run of this results folder fixed for cells it has not finished (same fingerprint)."""
    if not (out / store.MANIFEST).is_file():
        return {}
    fingerprints = {c.id: c.fingerprint() for c in cells}
    entries = store.read_manifest(out)["cells"]
    return {
        e["id"]: e["plan"]
        for e in entries
        if isinstance(e.get("plan"), dict) and fingerprints.get(e["id"]) == e.get("fingerprint")
    }


def run_cell(cell: Cell, dataset, progress: bool | None = None) -> pd.DataFrame:
    """Train one cell (with its warm start, if any) and return its labelled rows; ``frame.attrs["execution"]``
    says how each population ran. The plans in ``cell.plans`` (see ``plan_cell``) are used as they are."""
    if cell.warmstart is None:
        config = _planned(cell.train, cell, "main")
        result = train_population(dataset, cell.members, config, progress=progress, description=cell.id)
        frame = _label_rows(result.frame, cell, dataset, "main")
        frame.attrs["execution"] = {"main": _execution(result)}
        return frame
    # Golik et al. (2013): first train with the warm-start loss, then continue each member from the
    # warm-start solution of its own seed and initial scale.
    starts, first, ws_config = _warmstart_population(cell)
    ws_config = _planned(ws_config, cell, "warmstart")
    warm = train_population(dataset, first, ws_config, progress=progress, description=f"{cell.id} (warm start)")
    index = torch.tensor([starts.index((m.seed, m.init_scale)) for m in cell.members])
    initial = [p.index_select(0, index.to(p.device)) for p in warm.model.params]
    config = _planned(cell.train, cell, "main")
    result = train_population(
        dataset, cell.members, config, progress=progress, description=cell.id, initial_params=initial
    )
    main = result.frame.copy()
    offset = int(warm.frame.step.max())
    main["step"] += offset
    main["epoch"] += cell.warmstart["epochs"]
    frame = pd.concat(
        [_label_rows(warm.frame, cell, dataset, "warmstart"), _label_rows(main, cell, dataset, "main")],
        ignore_index=True,
    )
    frame.attrs["execution"] = {"warmstart": _execution(warm), "main": _execution(result)}
    return frame


def _probe_losses(resolved: list[tuple], binary: bool, num_classes: int, dtype: torch.dtype) -> None:
    """Call each loss of a population once on a few ordinary logits [members, batch, K], as training will:
    a loss (a plugin's, typically) that returns the wrong shape or dtype, or NaN, fails now, before anything
    is written, instead of in the middle of a run. Errors name the plugin that defines the loss."""
    gen = torch.Generator().manual_seed(0)
    shape = (2, 3) if binary else (2, 3, num_classes)
    z = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(0, 2 if binary else num_classes, shape[:2], generator=gen)
    y = labels.to(dtype) if binary else torch.nn.functional.one_hot(labels, num_classes).to(dtype)
    seen = set()
    for loss, params in resolved:
        key = (loss.name, json.dumps(params, sort_keys=True, default=str))
        if key in seen:
            continue
        seen.add(key)
        try:  # the checked accessors: the first call of each validates its output
            loss.values_fn(binary)(z, y, **params)
            loss.logit_gradient_fn(binary)(z, y, **params)
        except ValueError as exc:
            origin = plugin_of(loss.module) or registered_by("loss", loss.name)
            raise ValueError(f"plugin {origin!r}: {exc}" if origin else str(exc)) from None


def check_cell(cell: Cell, dataset) -> int:
    """Every check training would make, without training: members, losses against the dataset's
    classes (each called once on ordinary logits), batch size, and that the model can be built for
    the data. Raises ValueError, or BadInputType (a TypeError) for input of the wrong type. Returns the
    number of parameters of one member (for the estimate of the run's length)."""
    parameters = 0
    populations = [(cell.members, cell.train)]
    if cell.warmstart is not None:
        _, first, ws_config = _warmstart_population(cell)
        populations.append((first, ws_config))
    for members, config in populations:
        binary, resolved = check_population(dataset, members, config, device_checks=False)
        _probe_losses(resolved, binary, dataset.num_classes, getattr(torch, config.dtype))
        try:  # one member on the CPU: a model that does not fit the data (cnn on vectors) fails now
            model = build_model(
                config.model,
                dataset.input_shape,
                1 if binary else dataset.num_classes,
                [0],
                [1.0],
                hidden=config.hidden,
                dtype=getattr(torch, config.dtype),
                device="cpu",
            )
        except RuntimeError as exc:  # e.g. out of memory for absurd layer widths
            raise ValueError(f"cannot build model {config.model!r}: {str(exc).splitlines()[0]}") from None
        except INPUT_ERRORS as exc:  # e.g. a plugin's module that vmap cannot train
            origin = registered_by("model", config.model)
            if origin is None:
                raise
            raise (BadInputType if isinstance(exc, BadInputType) else ValueError)(f"plugin {origin!r}: {exc}") from None
        matmul_choices(model, config)  # a plan's matmul the model cannot use (numpy for an nn.Module model)
        parameters = max(parameters, sum(int(p[0].numel()) for p in model.params))
    return parameters


def _prepare(spec: Spec, cell: Cell, data_dir, device: str, cache: dict):
    """Load and check one cell's dataset and members; errors name the spec file, the cell and the plugin."""
    try:
        try:
            dataset = _load_cell_dataset(cell, data_dir, device, cache)
        except INPUT_ERRORS as exc:  # a plugin's loader or data: say which plugin
            loader_module = DATASETS[cell.dataset].module if cell.dataset in DATASETS else None
            origin = plugin_of(loader_module) or registered_by("dataset", cell.dataset)
            if origin is None:
                raise
            raise (BadInputType if isinstance(exc, BadInputType) else ValueError)(f"plugin {origin!r}: {exc}") from None
        parameters = check_cell(replace(cell, train=replace(cell.train, device="cpu")), dataset)  # no GPU needed
    except INPUT_ERRORS as exc:
        raise SpecError(f"{spec.source}: cell {cell.id!r}: {exc}") from None
    return dataset, parameters


def _cell_config(cell: Cell) -> dict:
    return {
        "dataset": cell.dataset,
        "dataset_options": cell.dataset_options,
        "classes": cell.classes,
        "train": asdict(cell.train),
        "members": [asdict(m) for m in cell.members],
        "warmstart": cell.warmstart,
    }


def replacements() -> list[dict]:
    """Every registry entry that replaced another (a plugin's ``replace=True``), as the manifest records it:
    ``{"registry": "loss", "name": "cross_entropy", "by": "my_losses.py", "was": "built-in"}``."""
    return [
        {"registry": kind, "name": r.name, "by": r.by, "was": r.of}
        for kind, registry in REGISTRIES.items()
        for r in registry.replacements()
    ]


def replaced_in(cell: Cell, replaced: list[dict]) -> list[dict]:
    """The replacements that change what ``cell`` trains: its losses, its dataset, its model."""
    used = {
        "loss": {m.loss for m in cell.members} | ({cell.warmstart["loss"]} if cell.warmstart else set()),
        "dataset": {cell.dataset},
        "model": {cell.train.model},
    }
    return [r for r in replaced if r["name"] in used.get(r["registry"], ())]


def run_spec(
    spec: Spec,
    out: Path,
    size: str | None = None,
    device: str = "auto",
    data_dir=None,
    progress: bool | None = None,
    log=print,
    cluster: RayCluster | None = None,
    wait: bool = False,
    command: str = "",
    max_days: float = MAX_DAYS,
) -> RunSummary:
    """Run every cell of ``spec`` at ``size`` into ``out``, skipping cells already finished there.

    Everything is checked before ``out`` is created or changed. ``out`` must be new, empty, or hold
    this spec at this size; another run writing into it makes this one fail at once (a
    ``LockedError``), or with ``wait=True`` wait for it. Cells train one after another in this
    process, or as tasks on Ray when ``cluster`` is given; either way this process writes the
    results, so resume and atomic writes work the same. ``command`` is the command line that runs this
    spec at this size (``losslab.commands.run_command``), recorded in the manifest for the messages and the
    report that tell how to finish or reproduce the run; "" records none (a run from Python). A run whose
    estimated training time (``estimate``, a lower bound) exceeds ``max_days`` is refused before anything is
    written (``math.inf``: no limit).
    """
    started = time.perf_counter()
    out = Path(out)
    size_name = size or "full"
    device = resolve_device(device)  # "auto": the GPU when there is one
    if cluster is not None and device.startswith("cuda"):
        # The cells train on the cluster's GPUs, which this machine may not have: check them as CPU cells.
        cells = [replace(c, train=replace(c.train, device=device)) for c in spec.cells(size, "cpu")]
    else:
        cells = [replace(c, train=replace(c.train, device=device)) for c in spec.cells(size, "cpu")]
        for cell in cells:  # what depends on this machine: CUDA present, TF32 only on CUDA
            try:
                cell.train.check_device()
            except ValueError as exc:
                raise SpecError(f"{spec.source}: cell {cell.id!r}: {exc}") from None
    for dataset in sorted({c.dataset for c in cells}):
        check_available(dataset, data_dir)  # missing MNIST files fail now, not after hours of other cells
    store.check_target(out, spec.name, size_name, wait=wait)
    planned = [{"id": c.id, "fingerprint": c.fingerprint(), "members": len(c.members)} for c in cells]
    cache: dict = {}
    prepared: dict[str, object] = {}

    def dataset_for(cell: Cell):
        if cell.id not in prepared:
            prepared[cell.id] = _prepare(spec, cell, data_dir, device, cache)
        return prepared[cell.id][0]

    todo = set(store.cells_to_train(out, planned))
    for cell in cells:
        if cell.id in todo:
            dataset_for(cell)  # every cell that will train is checked before the folder is touched
    # A run far beyond reason stops here, before any plan is measured (a plan's probe trains a few steps).
    length = estimate([(c, *prepared[c.id]) for c in cells if c.id in todo], device)
    check_length(spec, length, max_days)
    with ExitStack() as stack:
        connection = None
        if cluster is not None and todo:
            # Connected before the plans are measured: a cell that no node of the cluster can hold fails now.
            connection = stack.enter_context(cluster.connect(log=log))
            cluster.check_cells([c for c in cells if c.id in todo])
        # Each cell's plan is fixed here, once, before any cell trains: the same for a local run and on Ray.
        recorded = _recorded_plans(out, cells)
        threads = None if cluster is None else cluster.task_threads
        cells = [plan_cell(c, dataset_for(c), recorded.get(c.id), log, threads) if c.id in todo else c for c in cells]
        planned = [{**p, "plan": c.plans} if c.plans else p for p, c in zip(planned, cells)]
        replaced = replacements()
        header = {
            "spec": spec.name,
            "size": size_name,
            "description": spec.description,
            "source": spec.source,
            "command": command,
            "overrides": list(spec.overrides),  # KEY=VALUE from the command line, already applied to spec_data
            "spec_data": spec.data,
            "plugins": [p.record() for p in spec.plugins],  # source, kind, module, path, SHA-256 of the file
            # Entries a plugin (or other code) replaced, here and in each cell they change:
            # {"registry": "loss", "name": "cross_entropy", "by": "my_losses.py", "was": "built-in"}
            "replaced": replaced,
            "environment": environment(device),
            "execution": {"executor": "local"},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        summary = RunSummary(out)
        numbers = {cell.id: number for number, cell in enumerate(cells, 1)}
        log(f"device: {describe_device(device)}")
        if length.seconds > 600:
            log(f"estimated: {length.describe()}")
        results = stack.enter_context(store.open_run(out, header, planned, wait=wait, log=log))
        jobs = []
        for cell in cells:
            if results.is_done(cell.id):
                summary.skipped.append(cell.id)
                log(f"[{numbers[cell.id]}/{len(cells)}] {cell.id}: already done, skipped")
            else:
                jobs.append((cell, dataset_for(cell)))
        if cluster is not None and jobs:  # with nothing left to train there is no need to reach a cluster
            if connection is None:
                connection = stack.enter_context(cluster.connect(log=log))
            results.set(execution=connection)
            finished = cluster.run(jobs, run_cell, log=log)
        else:
            finished = _run_locally(jobs, progress, log, lambda c: f"[{numbers[c.id]}/{len(cells)}] {c.id}")
        for cell, frame, seconds in finished:
            execution = frame.attrs.pop("execution", None)  # kept in the manifest, not in the Parquet file
            diverged = diverged_members(frame)
            fields = {"diverged": len(diverged)}
            if replaced_in(cell, replaced):
                fields["replaced"] = replaced_in(cell, replaced)
            results.record(
                cell.id, frame, seconds=seconds, config={**_cell_config(cell), "execution": execution}, **fields
            )
            summary.trained.append(cell.id)
            where = f"[{numbers[cell.id]}/{len(cells)}] {cell.id}"
            log(f"{where}: {len(cell.members)} members in {seconds:.1f} s")
            if len(diverged):
                summary.diverged[cell.id] = len(diverged)
                log(f"warning: {where}: {describe_diverged(frame, diverged)}")
    summary.seconds = time.perf_counter() - started
    return summary


def _run_locally(jobs, progress, log=print, name=lambda cell: cell.id):
    """Train the cells one after another in this process; yield (cell, rows, seconds) for each. A cell that
    trains for long says so every ``HEARTBEAT_SECONDS`` (the progress bar shows only on a terminal)."""
    for cell, dataset in jobs:
        cell_started = time.perf_counter()

        def line(seconds: float, cell=cell) -> str:
            return f"{name(cell)}: still training, {format_duration(seconds)} so far"

        with heartbeat(log, line):
            frame = run_cell(cell, dataset, progress)
        yield cell, frame, time.perf_counter() - cell_started
