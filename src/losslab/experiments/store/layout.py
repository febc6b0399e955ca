"""What a results folder holds and how its files are named; the store's error type.

    manifest.json          the single source of truth (``losslab.experiments.store.manifest``)
    cells/<cell>.parquet   one file per finished cell
    .lock                  only while a run writes into the folder (``losslab.experiments.store.lock``)

Names become file names, so spec names, grid labels, sizes and cell ids are checked here, and a cell id
can never name a file outside ``cells/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

FORMAT = "losslab-results"
VERSION = 2
MANIFEST = "manifest.json"
CELLS = "cells"
LOCK = ".lock"
SUFFIX = ".parquet"

NAME_RULE = "letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}"
_NAME = re.compile(NAME_PATTERN)
# A cell id is its grid's label plus "-<option><value>" for each swept dataset option, so values such
# as 0.5 or 1e+20 bring '.' and '+'; never '/', never a leading '.', and short enough for any filesystem.
CELL_ID_RULE = "letters, digits, '-', '_', '.' and '+', starting with a letter or digit, at most 200 characters"
_CELL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}")


class StoreError(ValueError):
    """A results folder that cannot be used as asked; the one-line message names the file and the fix."""


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


def refuse_inside_cells(folder: Path, what: str) -> None:
    """A folder inside a results folder's ``cells/`` would be an unlisted entry there, spoiling it."""
    for path in [folder, *Path(os.path.abspath(folder)).parents]:
        if path.name == CELLS and (path.parent / MANIFEST).is_file():
            raise StoreError(
                f"{what} (--out) {folder} is inside {path}, the cells folder of a results folder; give another folder"
            )
