"""The results store: the one module that writes, reads, verifies and lists results folders.

A results folder::

    manifest.json          the single source of truth: the spec and size it holds, and every cell of
                           that spec with its fingerprint; a finished cell also has its row count and
                           the size and SHA-256 of its file
    cells/<cell>.parquet   the cell's tidy rows: one per member and evaluation
    .lock                  only while a run writes into the folder: who holds it (pid, host, start time)

What makes a folder trustworthy:

* Readers load only the cells the manifest lists as done, and check each file's size and SHA-256
  before parsing it. A missing, unlisted or damaged file is a ``StoreError`` (a ``ValueError``)
  whose one-line message names the file and the fix; a run retrains a damaged cell and says so.
* Every file is written to a temporary name, flushed to disk and renamed into place, and the
  manifest is rewritten the same way after each finished cell: whatever kills a run (Ctrl-C,
  SIGKILL, a power cut) leaves the last consistent state, and a rerun resumes from it.
* A folder holds one spec at one size; writing another spec or size into it is refused.
* One writer at a time: ``open_run`` holds an exclusive lock (``flock``) on ``.lock`` for the
  whole run. The kernel drops the lock when its holder dies, so a lock left by a killed run is
  taken over (and the run says so); a live holder makes a second run fail at once, or wait.
* Nothing is written outside the folder: cell ids are checked names, and ``cells`` must be a real
  folder, not a link.

    >>> from losslab.experiments.store import load_results, list_cells
    >>> manifest, rows = load_results("losslab-results/comparison")   # verified, complete
    >>> [c.state for c in list_cells("losslab-results/comparison")]     # "done", "pending", "damaged", ...
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import io
import json
import os
import platform
import re
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file's pid check alone guards the folder
    fcntl = None

FORMAT = "losslab-results"
VERSION = 2
MANIFEST = "manifest.json"
CELLS = "cells"
LOCK = ".lock"
SUFFIX = ".parquet"
MAX_SEED = 2**63 - 1

NAME_RULE = "letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# A cell id is its grid's label plus "-<option><value>" for each swept dataset option, so values such
# as 0.5 or 1e+20 bring '.' and '+'; never '/', never a leading '.', and short enough for any filesystem.
CELL_ID_RULE = "letters, digits, '-', '_', '.' and '+', starting with a letter or digit, at most 200 characters"
_CELL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STATES = ("done", "pending")


class StoreError(ValueError):
    """A results folder that cannot be used as asked; the one-line message names the file and the fix."""


class LockedError(StoreError):
    """Another run is writing into the results folder."""


# ---------------------------------------------------------------------------------------------
# names and paths


def is_name(value) -> bool:
    """Whether ``value`` is a safe name for a spec, a grid label or a size."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_cell_id(value) -> bool:
    return isinstance(value, str) and _CELL_ID.fullmatch(value) is not None


def cell_path(folder, cell_id: str) -> Path:
    """``folder/cells/<cell_id>.parquet``; refuses any id that could name a file elsewhere."""
    if not is_cell_id(cell_id):
        raise StoreError(f"cell id {cell_id!r} is not a safe file name ({CELL_ID_RULE})")
    return Path(folder) / CELLS / f"{cell_id}{SUFFIX}"


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    """Parse a cell file; list columns come back as lists of floats (None stays None), as they went in."""
    frame = pd.read_parquet(io.BytesIO(data))
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object and any(isinstance(v, np.ndarray) for v in values):
            frame[column] = pd.Series(
                [v.tolist() if isinstance(v, np.ndarray) else v for v in values], index=frame.index, dtype=object
            )
    return frame


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# the manifest


def _damaged_manifest(path: Path, problem: str):
    raise StoreError(
        f"{path}: {problem}; the manifest is damaged or not losslab's, so no result in {path.parent} can be "
        f"trusted: rerun the spec with a new --out, or delete {path.parent} and rerun"
    )


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise StoreError(f"results folder {folder} does not exist; write one with 'losslab run SPEC --out {folder}'")
    if not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a results folder; give the folder that 'losslab run' wrote")


def read_manifest(folder) -> dict:
    """Read and check ``folder/manifest.json``; any problem is a StoreError naming the file."""
    folder = Path(folder)
    _check_folder(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise StoreError(
            f"{folder} is not a results folder (no {MANIFEST}); write one with 'losslab run SPEC --out {folder}'"
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        _damaged_manifest(path, f"not UTF-8 text (byte {exc.start})")
    except json.JSONDecodeError as exc:
        _damaged_manifest(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
    check_manifest(data, path)
    return data


def check_manifest(data, path: Path) -> None:
    """Check a parsed manifest's structure; raises StoreError naming ``path`` and the bad key."""
    if not isinstance(data, dict):
        _damaged_manifest(path, f"holds a {type(data).__name__}, not a JSON object")
    if data.get("format") != FORMAT:
        if data.get("version") == 1 and "format" not in data:
            raise StoreError(
                f"{path}: results format 1 (an older losslab, without checksums) cannot be verified; "
                f"rerun the spec with a new --out, or delete {path.parent} and rerun"
            )
        _damaged_manifest(path, f"'format' is {data.get('format')!r}, not {FORMAT!r}")
    if data.get("version") != VERSION:
        if isinstance(data.get("version"), int) and data["version"] > VERSION:
            raise StoreError(
                f"{path}: results format {data['version']} is newer than this losslab reads ({VERSION}); "
                "upgrade losslab"
            )
        _damaged_manifest(path, f"'version' is {data.get('version')!r}, not {VERSION}")
    for key, kind in (("spec", str), ("size", str), ("spec_data", dict), ("cells", list)):
        if key not in data:
            _damaged_manifest(path, f"no {key!r} key")
        if not isinstance(data[key], kind):
            _damaged_manifest(path, f"{key!r} is {data[key]!r}, not a {kind.__name__}")
    if not is_name(data["spec"]):
        _damaged_manifest(path, f"'spec' is {data['spec']!r}, not a spec name ({NAME_RULE})")
    if not data["size"]:
        _damaged_manifest(path, "'size' is empty")
    if not data["cells"]:
        _damaged_manifest(path, "'cells' lists no cell")
    seen = set()
    for i, entry in enumerate(data["cells"]):
        where = f"cells[{i}]"
        if not isinstance(entry, dict):
            _damaged_manifest(path, f"{where} is not an object")
        if not is_cell_id(entry.get("id")):
            _damaged_manifest(path, f"{where}.id is {entry.get('id')!r}, not a cell id ({CELL_ID_RULE})")
        if entry["id"].lower() in seen:
            _damaged_manifest(path, f"cell {entry['id']!r} is listed twice")
        seen.add(entry["id"].lower())
        if not isinstance(entry.get("fingerprint"), str) or not entry["fingerprint"]:
            _damaged_manifest(path, f"{where}.fingerprint is {entry.get('fingerprint')!r}, not a string")
        if entry.get("status") not in _STATES:
            _damaged_manifest(path, f"{where}.status is {entry.get('status')!r}, not one of {list(_STATES)}")
        if entry["status"] != "done":
            continue
        if entry.get("file") != f"{CELLS}/{entry['id']}{SUFFIX}":
            _damaged_manifest(path, f"{where}.file is {entry.get('file')!r}, not '{CELLS}/{entry['id']}{SUFFIX}'")
        for key in ("rows", "bytes"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                _damaged_manifest(path, f"{where}.{key} is {value!r}, not a count")
        if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
            _damaged_manifest(path, f"{where}.sha256 is {entry.get('sha256')!r}, not a SHA-256 in hex")


def run_command(spec: str, size: str | None) -> str:
    """The command that runs ``spec`` (a name or a path) at ``size`` (None or "full": the full size)."""
    flag = "" if size in (None, "full") else (" --smoke" if size == "smoke" else f" --size {size}")
    return f"losslab run {shlex.quote(str(spec))}{flag}"


def resume_command(manifest: dict, folder) -> str:
    """The command that finishes (or repairs) ``folder``: the run's command as recorded, into ``folder``."""
    command = manifest.get("command")
    if not isinstance(command, str) or not command.startswith("losslab run "):
        command = run_command(manifest.get("spec"), manifest.get("size", "full"))
    return f"{command} --out {shlex.quote(str(folder))}"


# ---------------------------------------------------------------------------------------------
# verifying and reading


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


def _file_problem(path: Path, entry: dict, data: bytes | None) -> str | None:
    """Why the bytes read from ``path`` are not the file the manifest recorded, or None if they are."""
    if data is None:
        return "missing"
    if len(data) != entry["bytes"]:
        return f"damaged ({len(data)} bytes where the manifest records {entry['bytes']})"
    if sha256_hex(data) != entry["sha256"]:
        return "damaged (its SHA-256 differs from the one the manifest records)"
    return None


def _read_bytes(path: Path) -> bytes | None:
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
        problem = _file_problem(path, entry, _read_bytes(path))
        state = "done" if problem is None else problem.split(" ")[0]
        statuses.append(CellStatus(entry["id"], state, path, entry["fingerprint"], entry["rows"], problem or ""))
    for path in _unlisted(folder, manifest, allow_pending=True):
        statuses.append(CellStatus(path.stem, "unlisted", path, detail=f"not listed in {folder / MANIFEST}"))
    return statuses


def _lock_note(folder: Path) -> str:
    holder = lock_holder(folder)
    return f" (a run is writing into it: {_describe_holder(holder)})" if holder is not None else ""


def _read_cell(folder: Path, manifest: dict, entry: dict) -> pd.DataFrame:
    path = cell_path(folder, entry["id"])
    data = _read_bytes(path)
    problem = _file_problem(path, entry, data)
    fix = f"rerun '{resume_command(manifest, folder)}' to retrain it"
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
        raise StoreError(
            f"{folder}: {len(pending)} of {len(manifest['cells'])} cells are not finished ({shown}){_lock_note(folder)}; "
            f"finish them with '{resume_command(manifest, folder)}'"
        )
    extra = _unlisted(folder, manifest, allow_pending=not complete)
    if extra:
        raise StoreError(
            f"{extra[0]}: not listed in {folder / MANIFEST}, so it cannot be trusted; move it out of {folder / CELLS}"
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


# ---------------------------------------------------------------------------------------------
# the lock


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a live holder from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists and belongs to someone else
        return True
    return True


def _holder_info() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "boot_id": _boot_id(),
        "process_start": _process_start(os.getpid()),
    }


def _describe_holder(info: dict | None) -> str:
    if not info:
        return "another losslab run, starting up"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"


def _holder_state(info: dict) -> str:
    """'gone' if the process that wrote ``info`` no longer runs on this host; 'alive' if it does;
    'unknown' if it ran on another host."""
    if info.get("host") != socket.gethostname():
        return "unknown"
    boot = _boot_id()
    if boot is not None and info.get("boot_id") not in (None, boot):
        return "gone"  # the machine has restarted since
    pid = info.get("pid")
    if pid == os.getpid() or not _pid_alive(pid):
        return "gone"
    recorded, current = info.get("process_start"), _process_start(pid)
    if recorded is not None and current is not None and recorded != current:
        return "gone"  # the pid now belongs to another process
    return "alive"


def _read_info(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 1 << 16)
    try:
        info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"unreadable": True}
    return info if isinstance(info, dict) else {"unreadable": True}


def _flock(fd: int, shared: bool = False) -> bool | None:
    """Try to lock ``fd`` without waiting: True if locked, False if another holds it, None if this
    filesystem has no locks (then the pid in the lock file is all that guards the folder)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def lock_holder(folder) -> dict | None:
    """Who is writing into ``folder`` now (the lock file's record), or None if nobody is. Creates nothing."""
    path = Path(folder) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = _read_info(fd)
        locked = _flock(fd, shared=True)
        if locked is False:
            return info
        if locked is None and info and not info.get("unreadable") and _holder_state(info) != "gone":
            return info
        return None
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a results folder, held from ``acquire_lock`` until ``release``."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path):
                os.unlink(self.path)  # while still locked: a waiter on this file sees it vanish and retries
        except OSError:
            pass
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def acquire_lock(folder, *, wait: bool = False, log: Callable[[str], None] = print, poll: float = 0.2) -> RunLock:
    """Lock ``folder`` (which must exist) for one run.

    Held by a live run: raise LockedError naming it (pid, host, start time), or with ``wait`` poll
    until it is free. Left by a run that died (the kernel dropped its flock, and its pid no longer
    runs on this host): take it over, saying so through ``log``.
    """
    folder = Path(folder)
    path = folder / LOCK
    announced = False
    brief_retries = 20
    while True:
        try:
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644
            )
        except OSError as exc:
            raise StoreError(
                f"cannot write into results folder {folder} ({exc.strerror}); choose a writable --out"
            ) from None
        busy = None
        try:
            locked = _flock(fd)
            if locked is False:
                busy = _read_info(fd)
            elif not _same_file(fd, path):
                pass  # its holder finished and removed it between our open and our lock: try again
            else:
                previous = _read_info(fd)
                state = _holder_state(previous) if previous and not previous.get("unreadable") else "gone"
                if not previous or state == "gone":
                    if previous:
                        log(
                            f"taking over the stale lock {path} of {_describe_holder(previous)}, which is no longer running"
                        )
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, json.dumps(_holder_info()).encode())
                    os.fsync(fd)
                    lock, fd = RunLock(path, fd), -1
                    return lock
                busy = previous  # a live pid (a filesystem without locks), or a holder on another host
        finally:
            if fd >= 0:
                os.close(fd)
        if busy is None:
            continue
        elsewhere = bool(busy) and busy.get("host") != socket.gethostname()
        hint = f"; if that run is no longer running, delete {path}" if elsewhere else ""
        stale = not busy or busy.get("unreadable") or _holder_state(busy) == "gone"
        if not wait and stale and brief_retries > 0:
            # Held, but not by a live run: a reader (lock_holder) checking a stale lock takes a shared lock
            # for an instant. Try again for up to a second before calling the folder busy.
            brief_retries -= 1
            time.sleep(0.05)
            continue
        if not wait:
            raise LockedError(
                f"{folder} is in use by another losslab run ({_describe_holder(busy)}); "
                f"wait for it with --wait, or use another --out{hint}"
            )
        if not announced:
            log(f"waiting for the run writing into {folder} ({_describe_holder(busy)}) to finish{hint}")
            announced = True
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------
# writing


def _refuse_other(folder: Path, manifest: dict, spec: str, size: str) -> None:
    if (manifest["spec"], manifest["size"]) != (spec, size):
        raise StoreError(
            f"{folder} holds spec {manifest['spec']!r} at size {manifest['size']!r}, and this run is spec "
            f"{spec!r} at size {size!r}; a results folder holds one spec at one size: use another --out, "
            f"or delete {folder} to start over"
        )


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _refuse_inside_cells(folder: Path, what: str) -> None:
    """A folder inside a results folder's ``cells/`` would be an unlisted entry there, spoiling it."""
    for path in [folder, *Path(os.path.abspath(folder)).parents]:
        if path.name == CELLS and (path.parent / MANIFEST).is_file():
            raise StoreError(
                f"{what} (--out) {folder} is inside {path}, the cells folder of a results folder; give another folder"
            )


def check_target(folder, spec: str, size: str, *, wait: bool = False) -> dict | None:
    """Whether a run of ``spec`` at ``size`` may write into ``folder``, checked without creating
    anything: returns the folder's manifest (None for a new or empty folder) or raises StoreError."""
    folder = Path(folder)
    _refuse_inside_cells(folder, "results folder")
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
        if not os.access(folder, os.W_OK):
            raise StoreError(f"cannot write into results folder {folder} (not writable); choose a writable --out")
        if not wait:
            holder = lock_holder(folder)
            if holder is not None:
                raise LockedError(
                    f"{folder} is in use by another losslab run ({_describe_holder(holder)}); "
                    "wait for it with --wait, or use another --out"
                )
        return manifest
    parent = _nearest_existing(folder)
    if not parent.is_dir():
        raise StoreError(f"results folder (--out) {folder}: {parent} is a file, not a folder; choose another --out")
    if not os.access(parent, os.W_OK):
        raise StoreError(f"cannot create results folder {folder} ({parent} is not writable); choose a writable --out")
    return None


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
        if _file_problem(path, entry, _read_bytes(path)) is not None:
            todo.append(p["id"])
    return todo


def make_folders(folder, what: str = "results folder") -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first, so that
    ``remove_folders`` can take them back. ``what`` names the folder in errors (e.g. "report folder")."""
    folder = Path(folder)
    missing = []
    path = Path(os.path.abspath(folder))
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if path.is_dir():
                continue  # made by a concurrent run a moment ago
            remove_folders(created)
            raise StoreError(f"{what} (--out) {folder}: {path} is a file; choose another --out") from None
        except OSError as exc:
            remove_folders(created)
            raise StoreError(f"cannot create {what} {folder} ({exc.strerror}); choose a writable --out") from None
        created.append(path)
    return created


def remove_folders(created: list[Path]) -> None:
    """Remove the (empty) folders ``make_folders`` created, innermost first."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def check_writable(folder, what: str = "folder") -> None:
    """Raise StoreError now if files cannot be written into ``folder``; creates nothing that stays.

    A real write, not ``os.access``: as root only trying tells a read-only place from a writable one.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise StoreError(f"{what} (--out) {folder} is a file; give a folder")
    _refuse_inside_cells(folder, what)
    created = make_folders(folder, what)
    try:
        probe = folder / f".losslab-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"cannot write into {what} {folder} ({exc.strerror}); choose a writable --out") from None
    finally:
        remove_folders(created)


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

    def record(self, cell_id: str, frame: pd.DataFrame, *, seconds: float, config: dict | None = None) -> dict:
        """Write a finished cell's rows, then list it (with its row count and SHA-256) in the manifest."""
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
        if old is not None and old["status"] == "done":
            path = cell_path(folder, plan["id"])
            if old["fingerprint"] != plan["fingerprint"]:
                log(f"{plan['id']}: its settings or data changed since it was trained; retraining it")
            else:
                problem = _file_problem(path, old, _read_bytes(path))
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
    for path in sorted(cells_dir.iterdir()):
        if path.name not in listed and not path.name.startswith("."):
            log(
                f"warning: {path} is not a cell of this run; 'losslab report' will refuse the folder until it is moved out"
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


# ---------------------------------------------------------------------------------------------
# provenance, and saving one population from the Python API


def environment(device: str = "cpu") -> dict:
    """Versions, machine and git commit, so results say what produced them."""
    import subprocess

    import scipy
    import torch

    import losslab

    info = {
        "losslab": losslab.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": device,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
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


def fingerprint(payload) -> str:
    """A short hash of everything that determines a cell's results."""
    return sha256_hex(json.dumps(payload, sort_keys=True, default=str).encode())[:16]


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
