"""Reading, verifying and combining results folders: nothing the manifest does not vouch for is ever read.

Readers load only the cells the manifest lists as done, and check each file's size and SHA-256 before
parsing it. A missing, unlisted or damaged file is a ``StoreError`` (a ``ValueError``) whose one-line
message names the file and the fix. ``read_results`` combines several folders for one report, counting a
cell found in two of them once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from losslab.experiments.store.files import frame_from_bytes, sha256_hex
from losslab.experiments.store.layout import CELLS, MANIFEST, SUFFIX, StoreError, cell_path
from losslab.experiments.store.lock import describe_holder, lock_holder
from losslab.experiments.store.manifest import read_manifest, resume_command, run_again


@dataclass(frozen=True)
class CellStatus:
    """One cell of a results folder as found on disk.

    ``state``: "done" (listed as done, file present and its SHA-256 matches), "pending" (listed, not
    finished yet), "missing" (listed as done, no file), "damaged" (listed as done, the file differs
    from what the manifest records) or "unlisted" (a file in ``cells/`` the manifest does not list).
    """

    id: str
    state: str
    path: Path
    fingerprint: str = ""
    rows: int | None = None
    detail: str = ""


def file_problem(path: Path, entry: dict, data: bytes | None) -> str | None:
    """Why the bytes read from ``path`` are not the file the manifest recorded, or None if they are."""
    if data is None:
        return "missing"
    if len(data) != entry["bytes"]:
        return f"damaged ({len(data)} bytes where the manifest records {entry['bytes']})"
    if sha256_hex(data) != entry["sha256"]:
        return "damaged (its SHA-256 differs from the one the manifest records)"
    return None


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return b""


def _unlisted(folder: Path, manifest: dict, allow_pending: bool) -> list[Path]:
    """Files in ``cells/`` that the manifest does not vouch for (our hidden temporaries aside)."""
    directory = folder / CELLS
    if not directory.is_dir():
        return []
    listed = {f"{e['id']}{SUFFIX}" for e in manifest["cells"] if e["status"] == "done"}
    if allow_pending:
        listed |= {f"{e['id']}{SUFFIX}" for e in manifest["cells"]}
    return sorted(p for p in directory.iterdir() if p.name not in listed and not p.name.startswith("."))


def list_cells(folder) -> list[CellStatus]:
    """Every cell of a results folder with its state on disk (verifying each finished cell's SHA-256),
    then every unlisted file in ``cells/``. Raises StoreError only for a bad folder or manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    statuses = []
    for entry in manifest["cells"]:
        path = cell_path(folder, entry["id"])
        if entry["status"] != "done":
            statuses.append(CellStatus(entry["id"], "pending", path, entry["fingerprint"]))
            continue
        problem = file_problem(path, entry, read_bytes(path))
        state = "done" if problem is None else problem.split(" ")[0]
        statuses.append(CellStatus(entry["id"], state, path, entry["fingerprint"], entry["rows"], problem or ""))
    for path in _unlisted(folder, manifest, allow_pending=True):
        statuses.append(CellStatus(path.stem, "unlisted", path, detail=f"not listed in {folder / MANIFEST}"))
    return statuses


def _lock_note(folder: Path) -> str:
    holder = lock_holder(folder)
    return f" (a run is writing into it: {describe_holder(holder)})" if holder is not None else ""


def _read_cell(folder: Path, manifest: dict, entry: dict) -> pd.DataFrame:
    path = cell_path(folder, entry["id"])
    data = read_bytes(path)
    problem = file_problem(path, entry, data)
    command = resume_command(manifest, folder)
    fix = f"rerun '{command}' to retrain it" if command else f"retrain it by {run_again(manifest, folder)}"
    if problem == "missing":
        raise StoreError(f"{path}: missing, though {folder / MANIFEST} lists cell {entry['id']!r} as done; {fix}")
    if problem is not None:
        raise StoreError(f"{path}: {problem}; {fix}")
    try:
        frame = frame_from_bytes(data)
    except Exception as exc:  # the checksum matched a file that is not Parquet: the manifest itself was edited
        raise StoreError(f"{path}: not a readable Parquet file ({type(exc).__name__}); {fix}") from None
    if len(frame) != entry["rows"]:
        raise StoreError(f"{path}: {len(frame)} rows where {folder / MANIFEST} records {entry['rows']}; {fix}")
    if "cell" in frame.columns and set(frame["cell"].unique()) - {entry["id"]}:
        raise StoreError(f"{path}: holds rows of another cell; {fix}")
    return frame


def _load(folder, complete: bool) -> tuple[dict, list[tuple[dict, pd.DataFrame]]]:
    folder = Path(folder)
    manifest = read_manifest(folder)
    pending = [e["id"] for e in manifest["cells"] if e["status"] != "done"]
    if complete and pending:
        shown = ", ".join(pending[:3]) + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")
        command = resume_command(manifest, folder)
        how = f"with '{command}'" if command else f"by {run_again(manifest, folder)}"
        raise StoreError(
            f"{folder}: {len(pending)} of {len(manifest['cells'])} cells are not finished ({shown}){_lock_note(folder)}; "
            f"finish them {how}"
        )
    extra = _unlisted(folder, manifest, allow_pending=not complete)
    if len(extra) == 1:
        raise StoreError(
            f"{extra[0]}: not listed in {folder / MANIFEST}, so it cannot be trusted; move it out of {folder / CELLS}"
        )
    if extra:
        raise StoreError(
            f"{folder / CELLS}: {len(extra)} files are not listed in {folder / MANIFEST} ({extra[0].name}, "
            f"{extra[1].name}{', ...' if len(extra) > 2 else ''}), so they cannot be trusted; move them out of "
            f"{folder / CELLS}"
        )
    cells = [(e, _read_cell(folder, manifest, e)) for e in manifest["cells"] if e["status"] == "done"]
    return manifest, cells


def _rows(manifest: dict, frames: list[pd.DataFrame]) -> pd.DataFrame:
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not rows.empty:
        rows.insert(0, "experiment", manifest["spec"])
    return rows


def load_results(folder, *, complete: bool = True) -> tuple[dict, pd.DataFrame]:
    """Read a results folder: its manifest and the rows of every cell it lists as done, each verified.

    ``complete=True`` (the default, and what the report uses) also refuses a folder whose run has not
    finished every cell. Raises StoreError naming the file for a missing, unlisted or damaged file.
    """
    manifest, cells = _load(folder, complete)
    return manifest, _rows(manifest, [frame for _, frame in cells])


def verify(folder, *, complete: bool = True) -> dict:
    """Check a results folder completely (manifest, every listed file's SHA-256, no unlisted files);
    return its manifest or raise StoreError naming the first problem and its fix."""
    manifest, _ = _load(folder, complete)
    return manifest


@dataclass
class Combined:
    """Results of several folders read for one report: rows per spec, and where they came from."""

    results: dict[str, tuple[dict, pd.DataFrame]]  # spec name -> (its first manifest, rows of all its cells)
    sources: list[tuple[Path, dict, int]]  # (folder, manifest, cells it contributed), in the order given
    duplicates: int = 0  # cells found twice (the same cell in two folders) and counted once


def read_results(folders) -> Combined:
    """Read several results folders for one report: each verified and complete; a cell found in two
    folders (same spec, cell id, fingerprint and SHA-256, e.g. a folder and its copy) is counted once;
    the same cell with other settings or other contents in two folders, or two different specs of one
    name, is a StoreError naming both folders."""
    seen: dict[tuple[str, str], tuple[Path, dict]] = {}
    frames: dict[str, list[pd.DataFrame]] = {}
    first: dict[str, dict] = {}
    combined = Combined({}, [])
    for folder in folders:
        folder = Path(folder)
        manifest, cells = _load(folder, complete=True)
        spec = manifest["spec"]
        if spec in first and first[spec]["spec_data"] != manifest["spec_data"]:
            other = next(f for f, m, _ in combined.sources if m["spec"] == spec)
            raise StoreError(
                f"{other} and {folder} hold two different specs both named {spec!r} (their texts differ); "
                "report them separately, or give one spec another name"
            )
        first.setdefault(spec, manifest)
        contributed = 0
        for entry, frame in cells:
            key = (spec, entry["id"])
            if key in seen:
                other, known = seen[key]
                if known["fingerprint"] == entry["fingerprint"] and known["sha256"] == entry["sha256"]:
                    combined.duplicates += 1  # the very same cell again: counting it twice would double its seeds
                    continue
                what = (
                    "other settings (fingerprints differ)"
                    if known["fingerprint"] != entry["fingerprint"]
                    else "other contents (another run of the same settings)"
                )
                raise StoreError(
                    f"{other} and {folder} both hold cell {entry['id']!r} of spec {spec!r}, with {what}; "
                    "report one of the two folders"
                )
            seen[key] = (folder, entry)
            frames.setdefault(spec, []).append(frame)
            contributed += 1
        combined.sources.append((folder, manifest, contributed))
    combined.results = {spec: (first[spec], _rows(first[spec], frames.get(spec, []))) for spec in first}
    return combined


def cells_to_train(folder, planned: list[dict]) -> list[str]:
    """Read-only: the planned cells (dicts with id and fingerprint) that are not done and verified in ``folder``."""
    folder = Path(folder)
    if not os.path.lexists(folder / MANIFEST):
        return [p["id"] for p in planned]
    manifest = read_manifest(folder)
    done = {e["id"]: e for e in manifest["cells"] if e["status"] == "done"}
    todo = []
    for p in planned:
        entry = done.get(p["id"])
        if entry is None or entry["fingerprint"] != p["fingerprint"]:
            todo.append(p["id"])
            continue
        path = cell_path(folder, p["id"])
        if file_problem(path, entry, read_bytes(path)) is not None:
            todo.append(p["id"])
    return todo
