"""The results store: the one package that writes, reads, verifies and lists results folders.

A results folder::

    manifest.json          the single source of truth: the spec and size it holds, the command that ran it,
                           and every cell of that spec with its fingerprint (and the execution plan the run
                           fixed for it, ``plan``); a finished cell also has its row count and the size and
                           SHA-256 of its file
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

Modules, one job each: ``layout`` (file names, name rules, ``StoreError``), ``files`` (atomic writes and
``check_writable``, the one writability check of every writer), ``lock``, ``manifest`` (its schema and
checks), ``read`` (reading, verifying, combining folders), ``write`` (checking a target, ``open_run``,
``save_result``) and ``provenance`` (versions, machine, git commit).

    >>> from losslab.experiments.store import load_results, list_cells
    >>> manifest, rows = load_results("losslab-results/comparison")   # verified, complete
    >>> [c.state for c in list_cells("losslab-results/comparison")]     # "done", "pending", "damaged", ...
"""

from losslab.experiments.store.files import (
    atomic_write,
    check_writable,
    frame_from_bytes,
    frame_to_bytes,
    make_folders,
    remove_folders,
    sha256_hex,
)
from losslab.experiments.store.layout import (
    CELL_ID_RULE,
    CELLS,
    FORMAT,
    LOCK,
    MANIFEST,
    NAME_PATTERN,
    NAME_RULE,
    SUFFIX,
    VERSION,
    StoreError,
    cell_path,
    is_cell_id,
    is_name,
)
from losslab.experiments.store.lock import LockedError, RunLock, acquire_lock, lock_holder
from losslab.experiments.store.manifest import check_manifest, read_manifest, recorded_command, resume_command
from losslab.experiments.store.provenance import environment, git_commit
from losslab.experiments.store.read import (
    CellStatus,
    Combined,
    cells_to_train,
    list_cells,
    load_results,
    read_results,
    verify,
)
from losslab.experiments.store.write import RunStore, check_target, open_run, save_result

__all__ = [
    "CELLS",
    "CELL_ID_RULE",
    "FORMAT",
    "LOCK",
    "MANIFEST",
    "NAME_PATTERN",
    "NAME_RULE",
    "SUFFIX",
    "VERSION",
    "CellStatus",
    "Combined",
    "LockedError",
    "RunLock",
    "RunStore",
    "StoreError",
    "acquire_lock",
    "atomic_write",
    "cell_path",
    "cells_to_train",
    "check_manifest",
    "check_target",
    "check_writable",
    "environment",
    "frame_from_bytes",
    "frame_to_bytes",
    "git_commit",
    "is_cell_id",
    "is_name",
    "list_cells",
    "load_results",
    "lock_holder",
    "make_folders",
    "open_run",
    "read_manifest",
    "read_results",
    "recorded_command",
    "remove_folders",
    "resume_command",
    "save_result",
    "sha256_hex",
    "verify",
]
