"""``losslab run SPEC KEY=VALUE ...``: a spec's settings changed on the command line, as Hydra users expect.

    train.epochs=3                  a [train] key, for every grid (a grid's own train table and a size's too)
    seeds=2                         a grid key, for every grid (and every size that sets it)
    dataset_options.seed=1          a key of a grid's table (train, dataset_options, warmstart, lrs), every grid
    grid.digits.lrs=[0.1,0.3]       one grid, by its label; grid.digits.train.epochs=3 likewise
    name=quick                      a top-level key (name, description, plugins)

VALUE is a TOML value (``3``, ``0.1``, ``[0.1, 0.3]``, ``"text"``, ``{ k = 2.0 }``); a bare word that is not one
is a string (``dataset=mnist1d``, ``role=loss-comparison``). Overrides are applied to the spec's data before it
is checked, where a size would set the same key too, so an override wins at every size; the spec is then checked
as a whole, and an error about a value an override set names the override
(``spec.toml: override train.epochs=0: must be a positive integer, got 0``). The manifest records them, and the
command that reruns the spec repeats them (``losslab.commands.run_command``).
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass

from losslab.experiments.spec_keys import GRID_PARAMS, SPEC_TRAIN_PARAMS, WARMSTART_PARAMS, SpecError

_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
#: Top-level keys an override may set; the grids' keys are set per grid.
TOP_KEYS = ("name", "description", "plugins")
#: Grid keys holding a table whose keys an override may set one by one.
TABLE_KEYS = ("train", "dataset_options", "warmstart", "lrs")
#: Grid keys a size may set too (``[sizes.NAME]``): an override sets them there as well.
SIZE_KEYS = ("seeds", "init_scales", "lrs")
FORMS = "name, description, plugins, train.<key>, <grid key>, <grid key>.<key>, grid.<label>.<key>"


@dataclass(frozen=True)
class Override:
    """One ``KEY=VALUE``: as given, the dotted key, and the value (TOML, or a bare string)."""

    text: str
    key: tuple[str, ...]
    value: object


def parse_override(text: str, source: str = "losslab run") -> Override:
    """``'train.epochs=3'`` -> Override; a malformed one is a SpecError naming it."""
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise SpecError(f"{source}: override {text!r}: must be KEY=VALUE with a dotted KEY, e.g. train.epochs=3")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: dataset=mnist1d
    return Override(f"{key}={raw.strip()}", tuple(key.split(".")), value)


def _fail(source: str, override: Override, message: str):
    raise SpecError(f"{source}: override {override.text}: {message}")


def _unknown(source, override, key: str, valid, where: str = "") -> None:
    _fail(source, override, f"unknown key(s) [{key!r}]{where}; valid keys: {', '.join(sorted(valid))}")


def _set(table, key: str, value, sites: dict, where: str, text: str) -> None:
    if isinstance(table, dict):
        table[key] = copy.deepcopy(value)
        sites[f"{where}.{key}" if where else key] = text


def _sub_key(source, override: Override, table_key: str, sub: str) -> None:
    """A key inside a grid's table must be one the table takes (the datasets' options and lrs' losses are
    checked with the grid)."""
    valid = {"train": SPEC_TRAIN_PARAMS, "warmstart": WARMSTART_PARAMS}.get(table_key)
    if valid is not None and sub not in valid:
        _unknown(source, override, sub, valid, f" in {table_key}")


def _on_grid(source, data: dict, i: int, path: tuple, override: Override, sites: dict, every: bool = False) -> bool:
    """Set ``path`` (a grid key, or a grid table's key) on grid ``i``, and on the sizes that set it for the grid.

    ``every``: the override names no grid, and a table's key is set only in the grids that have that table
    (``warmstart.epochs=3`` adds no warm start to a grid without one; a missing ``dataset_options`` is empty).
    Returns whether it set anything."""
    grid, label, text = data["grid"][i], data["grid"][i].get("label"), override.text
    key = path[0]
    if key not in GRID_PARAMS or key == "label":
        _unknown(source, override, key, set(GRID_PARAMS) - {"label"})
    if len(path) > 2 or (len(path) == 2 and key not in TABLE_KEYS):
        _fail(source, override, f"{key!r} holds no table of keys; write {key}=VALUE")
    sizes = [(name, s) for name, s in data.get("sizes", {}).items() if isinstance(s, dict)]
    if len(path) == 1:
        _set(grid, key, override.value, sites, f"grid[{i}]", text)
        for name, size in sizes:
            if key in SIZE_KEYS and key in size:
                _set(size, key, override.value, sites, f"sizes.{name}", text)
        return True
    _sub_key(source, override, key, path[1])
    if key != "dataset_options" and every and not isinstance(grid.get(key), dict):
        return False
    if not isinstance(grid.get(key), dict):
        grid[key] = {}
    _set(grid[key], path[1], override.value, sites, f"grid[{i}].{key}", text)
    sites.setdefault(f"=grid[{i}].{key}", text)  # a message about the table itself (an unknown key in it) names it too
    for name, size in sizes:
        if key == "dataset_options" and path[1] in size.get(key, {}).get(label, {}):
            _set(size[key][label], path[1], override.value, sites, f"sizes.{name}.{key}.{label}", text)
    return True


def apply_overrides(data: dict, overrides, source: str) -> dict[str, str]:
    """Apply ``overrides`` to a spec's parsed TOML ``data`` in place (grids labelled already); return the sites
    they set, each where-path (``grid[0].train.epochs``) -> the override's text, for messages."""
    sites: dict[str, str] = {}
    grids = data["grid"]
    labels = [g.get("label") for g in grids]
    for override in overrides:
        path, text = override.key, override.text
        if path[0] in TOP_KEYS and len(path) == 1:
            _set(data, path[0], override.value, sites, "", text)
        elif path[0] == "train" and len(path) == 2:
            key = path[1]
            if key not in SPEC_TRAIN_PARAMS:
                _unknown(source, override, key, SPEC_TRAIN_PARAMS, " in train")
            # Wherever [train] may be written, so that the override wins in every grid and at every size.
            _set(data.setdefault("train", {}), key, override.value, sites, "train", text)
            for i, grid in enumerate(grids):
                if key in grid.get("train", {}):
                    _set(grid["train"], key, override.value, sites, f"grid[{i}].train", text)
                sites[f"grid[{i}].train.{key}"] = text  # the merged setting every grid trains with
            for name, size in data.get("sizes", {}).items():
                if isinstance(size, dict) and key in size.get("train", {}):
                    _set(size["train"], key, override.value, sites, f"sizes.{name}.train", text)
        elif path[0] == "grid" and len(path) >= 3:
            if path[1] not in labels:
                _fail(source, override, f"no grid labelled {path[1]!r}; grid labels: {', '.join(map(str, labels))}")
            _on_grid(source, data, labels.index(path[1]), path[2:], override, sites)
        elif path[0] in GRID_PARAMS and path[0] != "label":
            done = [_on_grid(source, data, i, path, override, sites, every=True) for i in range(len(grids))]
            if not any(done):
                _fail(source, override, f"no grid has a {path[0]} table; name one: grid.<label>.{'.'.join(path)}")
        else:
            _fail(source, override, f"unknown key {'.'.join(path)!r}; valid keys: {FORMS}")
    return sites


def where_of(where: str, sites: dict[str, str]) -> str:
    """``where`` (``grid[0].train.epochs``) as a message says it: the override that set it, if one did."""
    for site, text in sites.items():
        if where == site or "=" + where == site:  # "=<where>": that place itself only, not inside it
            return f"override {text}"
        if where.startswith((site + ".", site + "[")):
            return f"override {text} ({where})"
    return where
