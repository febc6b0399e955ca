"""The manifest, ``manifest.json``: the single source of truth of a results folder, its schema and its checks.

It records the spec and size the folder holds, the command that ran it (as the caller gave it: the store
never builds one), and every cell of that spec with its fingerprint; a finished cell also has its row count
and the size and SHA-256 of its file. A run also records its environment, its plugins and the built-in
entries they replaced (``replaced``), which the checks here do not require. ``read_manifest`` refuses a
manifest without what is required as a one-line ``StoreError`` naming the file and the fix.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from losslab.experiments.store.layout import (
    CELL_ID_RULE,
    CELLS,
    FORMAT,
    MANIFEST,
    NAME_RULE,
    SUFFIX,
    VERSION,
    StoreError,
    is_cell_id,
    is_name,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_STATES = ("done", "pending")


def _damaged_manifest(path: Path, problem: str):
    raise StoreError(
        f"{path}: {problem}; the manifest is damaged or not losslab's, so no result in {path.parent} can be "
        f"trusted: rerun the spec with a new --out, or delete {path.parent} and rerun"
    )


def check_folder(folder: Path) -> None:
    if not folder.exists():
        raise StoreError(f"results folder {folder} does not exist; write one with 'losslab run SPEC --out {folder}'")
    if not folder.is_dir():
        raise StoreError(f"{folder} is a file, not a results folder; give the folder that 'losslab run' wrote")


def read_manifest(folder) -> dict:
    """Read and check ``folder/manifest.json``; any problem is a StoreError naming the file."""
    folder = Path(folder)
    check_folder(folder)
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


def recorded_command(manifest: dict) -> str | None:
    """The command that ran the folder's spec, as the run recorded it (``losslab run ...``), or None.

    The store never builds a command: the command line builds it, and the runner records what it is given."""
    command = manifest.get("command")
    return command if isinstance(command, str) and command.startswith("losslab run ") else None


def resume_command(manifest: dict, folder) -> str | None:
    """The recorded command with ``--out folder``: what finishes (or repairs) ``folder``; None if none was recorded."""
    command = recorded_command(manifest)
    return None if command is None else f"{command} --out {shlex.quote(str(folder))}"


def run_again(manifest: dict, folder) -> str:
    """For messages without a recorded command: which run to repeat, in words."""
    return f"running spec {manifest.get('spec')!r} at size {manifest.get('size')!r} into {folder} again"
