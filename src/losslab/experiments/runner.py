"""Run a spec: expand it into cells, train each cell as one population, store the results.

Layout of a results folder::

    manifest.json            spec, size, resolved cells, environment (versions, device, git commit)
    cells/<cell>.parquet     tidy rows: one per member and evaluation
    cells/<cell>.json        the cell's resolved configuration and fingerprint (written last: "done")

Every file is written to a temporary name and renamed, so an interrupted run (Ctrl-C, kill) leaves
only whole files behind. A rerun skips each cell whose ``.json`` fingerprint matches the spec and
trains the rest, so no finished cell is lost and none is trained twice.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from losslab.experiments.cluster import RayCluster
from losslab.experiments.spec import Cell, Spec
from losslab.train import Member, load_dataset, train_population
from losslab.train.datasets import check_available

RESULTS_VERSION = 1


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half


def _atomic_write_frame(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def environment(device: str) -> dict:
    """Versions, machine and git commit, so results say what produced them."""
    import numpy
    import scipy

    import losslab

    info = {
        "losslab": losslab.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    try:
        source = Path(losslab.__file__).resolve().parent
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


@dataclass
class RunSummary:
    out: Path
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        parts = [f"{len(self.trained)} cell(s) trained", f"{len(self.skipped)} already done"]
        return f"{', '.join(parts)} in {self.seconds:.1f} s; results in {self.out}"


def _cell_done(folder: Path, cell: Cell) -> bool:
    meta = folder / f"{cell.id}.json"
    if not meta.is_file() or not (folder / f"{cell.id}.parquet").is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == cell.fingerprint()
    except (OSError, json.JSONDecodeError):
        return False


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


def run_cell(cell: Cell, dataset, progress: bool | None = None) -> pd.DataFrame:
    """Train one cell (with its warm start, if any) and return its labelled rows."""
    if cell.warmstart is None:
        result = train_population(dataset, cell.members, cell.train, progress=progress, description=cell.id)
        return _label_rows(result.frame, cell, dataset, "main")
    # Golik et al. (2013): first train with the warm-start loss, then continue each member from the
    # warm-start solution of its own seed and initial scale.
    ws = cell.warmstart
    starts = sorted({(m.seed, m.init_scale) for m in cell.members})
    first = [Member(ws["loss"], seed=s, lr=ws["lr"], init_scale=c) for s, c in starts]
    ws_config = type(cell.train)(**{**asdict(cell.train), "epochs": ws["epochs"]})
    warm = train_population(dataset, first, ws_config, progress=progress, description=f"{cell.id} (warm start)")
    index = torch.tensor([starts.index((m.seed, m.init_scale)) for m in cell.members])
    initial = [p.index_select(0, index.to(p.device)) for p in warm.model.params]
    result = train_population(
        dataset, cell.members, cell.train, progress=progress, description=cell.id, initial_params=initial
    )
    main = result.frame.copy()
    offset = int(warm.frame.step.max())
    main["step"] += offset
    main["epoch"] += ws["epochs"]
    return pd.concat(
        [_label_rows(warm.frame, cell, dataset, "warmstart"), _label_rows(main, cell, dataset, "main")],
        ignore_index=True,
    )


def run_spec(
    spec: Spec,
    out: Path,
    size: str | None = None,
    device: str = "cpu",
    data_dir=None,
    progress: bool | None = None,
    log=print,
    cluster: RayCluster | None = None,
) -> RunSummary:
    """Run every cell of ``spec`` at ``size`` into ``out``, skipping cells already finished there.

    Cells train one after another in this process, or as tasks on Ray when ``cluster`` is given;
    either way this process writes the results, so resume and atomic writes work the same.
    """
    started = time.perf_counter()
    cells = spec.cells(size, device)  # validates everything before any training
    for dataset in sorted({c.dataset for c in cells}):
        check_available(dataset, data_dir)  # missing MNIST files fail now, not after hours of other cells
    out = Path(out)
    folder = out / "cells"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "version": RESULTS_VERSION,
        "spec": spec.name,
        "description": spec.description,
        "claims": spec.claims,
        "size": size or "full",
        "source": spec.source,
        "spec_data": spec.data,
        "cells": [{"id": c.id, "fingerprint": c.fingerprint(), "members": len(c.members)} for c in cells],
        "environment": environment(device),
        "execution": {"executor": "local"},
    }

    def write_manifest(execution: dict | None = None) -> None:
        if execution is not None:
            manifest["execution"] = execution
        _atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=2, default=str).encode())

    summary = RunSummary(out)
    numbers = {cell.id: number for number, cell in enumerate(cells, 1)}
    jobs = []
    cache: dict = {}
    for cell in cells:
        if _cell_done(folder, cell):
            summary.skipped.append(cell.id)
            log(f"[{numbers[cell.id]}/{len(cells)}] {cell.id}: already done, skipped")
        else:
            jobs.append((cell, _load_cell_dataset(cell, data_dir, device, cache)))
    if cluster is None or not jobs:  # with nothing left to train there is no need to reach a cluster
        write_manifest()
        finished = _run_locally(jobs, progress)
    else:
        finished = cluster.run(jobs, run_cell, on_connect=write_manifest)
    for cell, frame, seconds in finished:
        _atomic_write_frame(folder / f"{cell.id}.parquet", frame)
        meta = {
            "cell": cell.id,
            "fingerprint": cell.fingerprint(),
            "dataset": cell.dataset,
            "dataset_options": cell.dataset_options,
            "classes": cell.classes,
            "train": asdict(cell.train),
            "members": [asdict(m) for m in cell.members],
            "warmstart": cell.warmstart,
            "seconds": seconds,
        }
        _atomic_write_bytes(folder / f"{cell.id}.json", json.dumps(meta, indent=2, default=str).encode())
        summary.trained.append(cell.id)
        log(f"[{numbers[cell.id]}/{len(cells)}] {cell.id}: {len(cell.members)} members in {seconds:.1f} s")
    summary.seconds = time.perf_counter() - started
    return summary


def _run_locally(jobs, progress):
    """Train the cells one after another in this process; yield (cell, rows, seconds) for each."""
    for cell, dataset in jobs:
        cell_started = time.perf_counter()
        frame = run_cell(cell, dataset, progress)
        yield cell, frame, time.perf_counter() - cell_started


def load_results(folder: Path) -> tuple[dict, pd.DataFrame]:
    """Read a results folder: its manifest and all finished cells' rows, concatenated."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} is not a results folder (no manifest.json); run 'losslab run' first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    frames = [pd.read_parquet(p) for p in sorted((folder / "cells").glob("*.parquet"))]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not rows.empty:
        rows.insert(0, "experiment", manifest["spec"])
    return manifest, rows
