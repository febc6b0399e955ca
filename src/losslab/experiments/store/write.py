"""Writing a run into a results folder: checked before anything is created, locked, one cell at a time.

Every file is written to a temporary name, flushed to disk and renamed into place, and the manifest is
rewritten the same way after each finished cell: whatever kills a run (Ctrl-C, SIGKILL, a power cut)
leaves the last consistent state, and a rerun resumes from it. A folder holds one spec at one size; writing
another spec or size into it is refused. Nothing is written outside the folder: cell ids are checked names,
and ``cells`` must be a real folder, not a link.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from losslab.experiments.store.files import (
    atomic_write,
    check_writable,
    frame_to_bytes,
    make_folders,
    nearest_existing,
    remove_folders,
    sha256_hex,
)
from losslab.experiments.store.layout import (
    CELLS,
    FORMAT,
    LOCK,
    MANIFEST,
    NAME_RULE,
    SUFFIX,
    VERSION,
    StoreError,
    cell_path,
    is_name,
    refuse_inside_cells,
)
from losslab.experiments.store.lock import LockedError, acquire_lock, describe_holder, lock_holder
from losslab.experiments.store.manifest import read_manifest
from losslab.experiments.store.provenance import environment
from losslab.experiments.store.read import file_problem, read_bytes
from losslab.plugins import fingerprint


def _refuse_other(folder: Path, manifest: dict, spec: str, size: str) -> None:
    if (manifest["spec"], manifest["size"]) != (spec, size):
        raise StoreError(
            f"{folder} holds spec {manifest['spec']!r} at size {manifest['size']!r}, and this run is spec "
            f"{spec!r} at size {size!r}; a results folder holds one spec at one size: use another --out, "
            f"or delete {folder} to start over"
        )


def check_target(folder, spec: str, size: str, *, wait: bool = False) -> dict | None:
    """Whether a run of ``spec`` at ``size`` may write into ``folder``, checked leaving nothing behind:
    returns the folder's manifest (None for a new or empty folder) or raises StoreError."""
    folder = Path(folder)
    refuse_inside_cells(folder, "results folder")
    if os.path.lexists(folder):
        if not folder.is_dir():
            raise StoreError(f"results folder (--out) {folder} is a file; give a new folder or one this spec wrote")
        if os.path.lexists(folder / MANIFEST):
            manifest = read_manifest(folder)
            _refuse_other(folder, manifest, spec, size)
        else:
            manifest = None
            others = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK, CELLS))
            cells = folder / CELLS
            if not others and cells.is_dir() and not cells.is_symlink():
                others = sorted(p.name for p in cells.iterdir() if not p.name.startswith("."))
                others = [f"{CELLS}/{n}" for n in others]
            elif not others and os.path.lexists(cells):
                others = [CELLS]
            if others:
                raise StoreError(
                    f"results folder (--out) {folder} is not empty and is not a results folder (no {MANIFEST}; "
                    f"it holds {others[0]!r}); give a new or empty folder"
                )
        check_writable(folder, "results folder")
        if not wait:
            holder = lock_holder(folder)
            if holder is not None:
                raise LockedError(
                    f"{folder} is in use by another losslab run ({describe_holder(holder)}); "
                    "wait for it with --wait, or use another --out"
                )
        return manifest
    parent = nearest_existing(folder)
    if not parent.is_dir():
        raise StoreError(f"results folder (--out) {folder}: {parent} is a file, not a folder; choose another --out")
    check_writable(folder, "results folder")
    return None


class RunStore:
    """A results folder opened (and locked) for one run: which cells are done, and recording new ones."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder = folder
        self.manifest = manifest
        self.recorded = 0
        self._entries = {e["id"]: e for e in manifest["cells"]}

    def is_done(self, cell_id: str) -> bool:
        return self._entries[cell_id]["status"] == "done"

    def set(self, **fields) -> None:
        """Update top-level manifest fields (e.g. ``execution``) and rewrite it."""
        self.manifest.update(fields)
        self._write_manifest()

    def record(
        self, cell_id: str, frame: pd.DataFrame, *, seconds: float, config: dict | None = None, **fields
    ) -> dict:
        """Write a finished cell's rows, then list it (with its row count and SHA-256) in the manifest; ``fields``
        are recorded in its entry too (e.g. ``diverged``, ``replaced``)."""
        entry = self._entries[cell_id]
        data = frame_to_bytes(frame)
        atomic_write(cell_path(self.folder, cell_id), data)
        entry.update(
            status="done",
            file=f"{CELLS}/{cell_id}{SUFFIX}",
            rows=len(frame),
            bytes=len(data),
            sha256=sha256_hex(data),
            seconds=round(float(seconds), 3),
            finished=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        )
        if config is not None:
            entry["config"] = config
        entry.update(fields)
        self._write_manifest()  # only now does the cell count as done
        self.recorded += 1
        return entry

    def _write_manifest(self) -> None:
        self.manifest["updated"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        atomic_write(self.folder / MANIFEST, json.dumps(self.manifest, indent=2, default=str).encode("utf-8"))


def _open_store(folder: Path, header: dict, planned: list[dict], log) -> RunStore:
    cells_dir = folder / CELLS
    if cells_dir.is_symlink() or (os.path.lexists(cells_dir) and not cells_dir.is_dir()):
        raise StoreError(
            f"{cells_dir} is a link or a file, and results are written only inside {folder}; "
            "delete it or use another --out"
        )
    old_cells: dict[str, dict] = {}
    if os.path.lexists(folder / MANIFEST):
        existing = read_manifest(folder)  # again: another run may have written it while we waited
        _refuse_other(folder, existing, header["spec"], header["size"])
        old_cells = {e["id"]: e for e in existing["cells"]}
        header = {**header, "created": existing.get("created", header.get("created"))}
    cells_dir.mkdir(exist_ok=True)
    for stale in [*cells_dir.glob(".*.tmp-*"), *folder.glob(f".{MANIFEST}.tmp-*")]:
        stale.unlink(missing_ok=True)  # half-written files of a killed run; we hold the lock
    entries = []
    for plan in planned:
        old = old_cells.get(plan["id"])
        entry = {
            "id": plan["id"],
            "fingerprint": plan["fingerprint"],
            "members": plan.get("members"),
            "status": "pending",
        }
        if plan.get("plan"):  # each population's execution plan, fixed by the driver before training
            entry["plan"] = plan["plan"]
        if old is not None and old["status"] == "done":
            path = cell_path(folder, plan["id"])
            if old["fingerprint"] != plan["fingerprint"]:
                log(f"{plan['id']}: its settings or data changed since it was trained; retraining it")
            else:
                problem = file_problem(path, old, read_bytes(path))
                if problem is None:
                    entry = old
                else:
                    log(f"{plan['id']}: {path} is {problem}; retraining it")
        entries.append(entry)
    planned_ids = {p["id"] for p in planned}
    for old_id in sorted(set(old_cells) - planned_ids):
        cell_path(folder, old_id).unlink(missing_ok=True)  # before the manifest stops listing it
        log(f"{old_id}: no longer a cell of this spec; removed its results")
    store = RunStore(folder, {**header, "cells": entries})
    store._write_manifest()
    listed = {f"{e['id']}{SUFFIX}" for e in entries}
    strays = sorted(p for p in cells_dir.iterdir() if p.name not in listed and not p.name.startswith("."))
    if strays:  # one line, however many: a folder of 10,000 strays must not print 10,000 warnings
        what = f"{strays[0]} is" if len(strays) == 1 else f"{len(strays)} files in {cells_dir} are"
        first = "" if len(strays) == 1 else f" (the first: {strays[0].name})"
        log(
            f"warning: {what} not a cell of this run{first}; 'losslab report' will refuse the folder until "
            f"{'it is' if len(strays) == 1 else 'they are'} moved out"
        )
    return store


@contextlib.contextmanager
def open_run(
    folder, header: dict, planned: list[dict], *, wait: bool = False, log: Callable[[str], None] = print
) -> Iterator[RunStore]:
    """Create (if needed) and lock ``folder`` for a run of ``header['spec']`` at ``header['size']``,
    write the manifest of the ``planned`` cells (dicts with id, fingerprint, members), keeping each
    finished cell whose file still verifies, and yield the RunStore that records new cells.

    Leaves the folder unlocked on exit. If the folder was created here and the run records no cell
    (it failed or was interrupted before the first finished), it is removed again.
    """
    folder = Path(folder)
    for plan in planned:
        cell_path(folder, plan["id"])  # every id a safe file name before anything is created
    created = make_folders(folder)
    try:
        lock = acquire_lock(folder, wait=wait, log=log)
    except BaseException:
        remove_folders(created)
        raise
    store = None
    try:
        try:
            store = _open_store(folder, {"format": FORMAT, "version": VERSION, **header}, planned, log)
        except OSError as exc:
            raise StoreError(
                f"cannot write into results folder {folder} ({exc.strerror}); choose a writable --out"
            ) from None
        yield store
    except BaseException:
        if created and (store is None or store.recorded == 0):
            _discard(folder)
            lock.release()
            remove_folders(created)
        raise
    finally:
        lock.release()


def _discard(folder: Path) -> None:
    """Remove what a run that recorded nothing wrote into a folder it created."""
    cells_dir = folder / CELLS
    if cells_dir.is_dir() and not cells_dir.is_symlink():
        for path in cells_dir.glob(".*.tmp-*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            cells_dir.rmdir()
    for path in [folder / MANIFEST, *folder.glob(f".{MANIFEST}.tmp-*")]:
        path.unlink(missing_ok=True)


def save_result(result, folder, name: str = "results", *, wait: bool = False) -> Path:
    """Save one trained population (a ``PopulationResult``) as a results folder holding one cell.

    ``folder/cells/<name>.parquet`` gets the tidy rows and ``folder/manifest.json`` lists it with the
    resolved configuration; read it back with ``load_results(folder)``. Saving again under the same
    ``name`` replaces it; a folder holding another name (or a spec's run) is refused.

        >>> result = train_population(load_dataset("digits"), [Member("mse")], TrainConfig(epochs=1))
        >>> save_result(result, "saved", "mse-digits")
        >>> manifest, rows = load_results("saved")
    """
    if not is_name(name):
        raise ValueError(f"name must be {NAME_RULE}, got {name!r}")
    config = {
        "train": asdict(result.config),
        "members": [asdict(m) for m in result.members],
    }
    folder = Path(folder)
    check_target(folder, name, "api", wait=wait)
    header = {
        "spec": name,
        "size": "api",
        "description": "one population saved with losslab.experiments.store.save_result",
        "source": "",
        "command": "",  # not made by 'losslab run': nothing to resume
        "spec_data": {"grid": []},
        "environment": environment(str(result.config.device)),
        "execution": {"executor": "local"},
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    planned = [{"id": name, "fingerprint": fingerprint(config), "members": len(result.members)}]
    with open_run(folder, header, planned, wait=wait, log=lambda _line: None) as run:
        run.record(name, result.frame, seconds=result.seconds, config=config)
    return cell_path(folder, name)
