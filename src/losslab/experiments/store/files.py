"""Files written whole or not at all, and the one check that a place can be written, used by every writer.

``atomic_write`` writes to a temporary name, flushes it to disk and renames it into place, so readers see
the old file or the new one, never a part. ``check_writable`` is how every command that writes (a run, the
report, the figures of ``losslab plot``, the explorer, ``verify --json``, the demo) finds out before any
work that it could not: by a real write, not ``os.access`` (as root only trying tells a read-only place
from a writable one), leaving nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from losslab.experiments.store.layout import StoreError, refuse_inside_cells


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
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.filename is None:  # a full disk or a file-size limit: write() names no file, the message must
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
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


def nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


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


def check_writable(path, what: str = "folder", *, file: bool = False) -> None:
    """Raise StoreError now if ``path`` cannot be written; creates nothing that stays.

    A folder (the default): ``what`` names it in messages ("report folder" -> "report folder (--out) X is a
    file"); missing folders are created for the try and removed again; a folder inside a results folder's
    ``cells/`` is refused. A file (``file=True``): ``what`` is the option that gave it ("--json"); its
    folder must exist, and an existing file is opened for appending (nothing appended), so it is unchanged.
    """
    path = Path(path)
    if file:
        _check_writable_file(path, what)
        return
    if os.path.lexists(path) and not path.is_dir():
        raise StoreError(f"{what} (--out) {path} is a file; give a folder")
    refuse_inside_cells(path, what)
    created = make_folders(path, what)
    try:
        probe = path / f".losslab-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreError(f"cannot write into {what} {path} ({exc.strerror}); choose a writable --out") from None
    finally:
        remove_folders(created)


def _check_writable_file(path: Path, flag: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise StoreError(f"{flag} {path} is a folder; give a file name")
    if not parent.is_dir():
        raise StoreError(f"{flag} {path}: folder {parent} does not exist; create it or give another path")
    try:
        if path.exists():
            open(path, "ab").close()  # appends nothing: the file is unchanged
        else:
            open(path, "xb").close()
            path.unlink()
    except OSError as exc:
        raise StoreError(f"{flag} {path}: cannot write ({exc.strerror}); give a writable path") from None
