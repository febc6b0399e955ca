"""Experiment specs: plain TOML data, validated completely before any training starts.

A spec names its grids; each grid is one dataset (with options), one model and training settings,
and the members to train together: losses x learning rates x initial logit scales x seeds. A grid
whose ``dataset_options`` hold lists expands into one cell per combination (e.g. blobs with K = 2,
10, 100); each cell is trained as one population. Named sizes (``[sizes.smoke]``, ``[sizes.small]``)
override fields so the same spec runs in seconds or at full size; ``KEY=VALUE`` overrides
(``losslab.experiments.overrides``) change settings from the command line.

Every key is declared once in ``losslab.experiments.spec_keys`` (top level, ``[[grid]]``, ``warmstart``,
``[sizes.NAME]``; ``[train]`` is ``TrainConfig``'s declared fields): its type, constraint, default and
meaning. The spec is read into those typed dataclasses (``Spec.grids(size)`` gives the ``GridSpec`` of each
grid), and the same declarations give ``docs/spec.md``, the JSON Schema and ``losslab init``'s starter spec.
``plugins`` lists module names or ``.py`` files (relative to the spec's folder) imported before anything else of
the spec is read, so its grids may name the losses, datasets and models they register (see ``spec_plugins``).

Names become file names, so the spec's ``name``, grid labels and size names are checked identifiers
(letters, digits, '-' and '_', starting with a letter or digit), and so is every cell id. A seed is an
integer in [0, 2**63 - 1]; seeds, learning rates, initial scales and losses may not repeat within a grid
(a repeated one would train, and count, the same run twice). Every message has the form
``<file>: <where>: <problem>; <fix>``.
"""

from __future__ import annotations

import copy
import itertools
import os
import tomllib
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from losslab.core import get_loss
from losslab.data import dataset_option_names, dataset_params, resolve_dataset_name
from losslab.data import files as dataset_files
from losslab.errors import INPUT_ERRORS
from losslab.experiments.overrides import apply_overrides, parse_override, where_of
from losslab.experiments.spec_keys import (
    GRID_PARAMS,
    PLAN_PARAMS,
    ROLES,
    SIZE_NAME,
    SIZE_PARAMS,
    SPEC_TRAIN_PARAMS,
    TOP_PARAMS,
    WARMSTART_PARAMS,
    GridSpec,
    LossEntry,
    Numbers,
    Seeds,
    SpecError,
    WarmStart,
    default_baseline,
    repeated,
)
from losslab.experiments.spec_plugins import SpecPlugin, import_spec_plugins
from losslab.experiments.store import CELL_ID_RULE, NAME_RULE, is_cell_id, is_name
from losslab.models import MODELS
from losslab.params import Param, is_number, unknown_keys
from losslab.plugins import file_sha256, fingerprint
from losslab.train.config import EXECUTION_FIELDS, Member, TrainConfig

__all__ = ["ROLES", "Cell", "GridSpec", "LossEntry", "Spec", "SpecError", "builtin_specs", "expand", "load_spec"]

TOP_KEYS, GRID_KEYS, SIZE_KEYS = set(TOP_PARAMS), set(GRID_PARAMS), set(SIZE_PARAMS)
WARMSTART_KEYS = set(WARMSTART_PARAMS)
# Where and how a population runs is chosen at run time; it does not change the results.
EXECUTION_KEYS = set(EXECUTION_FIELDS)
TRAIN_KEYS = set(SPEC_TRAIN_PARAMS)
BUILTIN_DIR = "specs"
#: The sites the spec's overrides set (where-path -> override text), while a spec is read or expanded.
_SITES: ContextVar[dict[str, str] | None] = ContextVar("override_sites", default=None)


def builtin_specs() -> dict[str, Path]:
    folder = resources.files("losslab.experiments") / BUILTIN_DIR
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".toml")}


@dataclass(frozen=True)
class Cell:
    """One population: a dataset (with options), shared training settings and its members."""

    id: str
    grid: str
    dataset: str
    dataset_options: dict
    classes: list[int] | None
    train: TrainConfig
    members: list[Member]
    warmstart: dict | None = None
    plugins: tuple[SpecPlugin, ...] = ()  # the spec's plugins, which a Ray worker imports before training
    # The execution plan of each population ("main", and "warmstart" if any), fixed by the driver before the
    # cell runs anywhere (``runner.plan_cell``), so every machine computes the same bits. Not part of the
    # fingerprint: another plan changes float32 results only by rounding.
    plans: dict | None = None

    def fingerprint(self) -> str:
        """Changes whenever anything that determines the results changes; used to resume safely.

        For a ``file:`` dataset that includes the file's contents (its SHA-256), and so do the spec's
        plugins: a data or plugin file edited in place makes the cells train again instead of being
        skipped as done."""
        data_file = {}
        if dataset_files.is_file_name(self.dataset):
            data_file = {"data_sha256": file_sha256(dataset_files.file_path(self.dataset))}
        plugins = {"plugins_sha256": [p.digest for p in self.plugins]} if self.plugins else {}
        return fingerprint(
            {
                **data_file,
                **plugins,
                "dataset": self.dataset,
                "options": self.dataset_options,
                "classes": self.classes,
                "train": {k: v for k, v in asdict(self.train).items() if k not in EXECUTION_KEYS},
                "members": [asdict(m) for m in self.members],
                "warmstart": self.warmstart,
            }
        )


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    source: str
    data: dict  # the parsed TOML with the overrides applied, kept to expand sizes (and recorded in the manifest)
    folder: str | None = None  # the spec file's folder: relative file: datasets are found from here
    path: str | None = None  # what 'losslab run' takes to run it again: a built-in name or the file's path
    plugins: tuple[SpecPlugin, ...] = ()  # imported when the spec was loaded, in the order given
    overrides: tuple[str, ...] = ()  # the KEY=VALUE overrides applied, as given
    override_sites: dict = field(default_factory=dict, compare=False, repr=False)  # where-path -> override

    def cells(self, size: str | None = None, device: str = "cpu") -> list[Cell]:
        return expand(self, size, device)

    def grids(self, size: str | None = None, device: str = "cpu") -> list[GridSpec]:
        """The grids at ``size``, read into ``GridSpec``s (every key checked, defaults filled in)."""
        token = _SITES.set(self.override_sites)
        try:
            data = _apply_size(self.source, self.data, size)
            base_train = data.get("train", {})
            if isinstance(base_train, dict):  # the spec's own [train], named as such in messages (not grid[0])
                _check_train_keys(self.source, "train", base_train)
            return [_grid(self, i, g, base_train, device) for i, g in enumerate(data["grid"])]
        finally:
            _SITES.reset(token)

    @property
    def sizes(self) -> list[str]:
        return sorted(self.data.get("sizes", {}))


def _fail(source: str, where: str, message: str):
    raise SpecError(f"{source}: {where_of(where, _SITES.get() or {})}: {message}")


def _check_keys(source: str, where: str, table, params) -> None:
    if not isinstance(table, dict):
        _fail(source, where, f"must be a table, got {type(table).__name__}")
    unknown = unknown_keys(table, params)
    if unknown:
        _fail(source, where, unknown)


def _check(source: str, where: str, param: Param, value):
    """``value`` if its declaration accepts it, else the one-line error at ``where``."""
    problem = param.problem(value)
    if problem is not None:
        _fail(source, where, problem)
    return value


def _get(source: str, where: str, table: dict, param: Param):
    """The key ``param`` of ``table`` checked (at ``where.<key>``), or its declared default when absent."""
    if param.name not in table:
        return param.default_value()
    return _check(source, f"{where}.{param.name}" if where else param.name, param, table[param.name])


def _losses(source, where, value) -> list[LossEntry]:
    _check(source, where, GRID_PARAMS["losses"], value)
    entries = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            _fail(source, f"{where}[{i}]", f"must be a loss name or a table with 'name', got {item!r}")
        try:
            get_loss(name).resolve_params(params)
        except (TypeError, ValueError) as exc:  # any TypeError too: a plugin's check_params is the user's code
            _fail(source, f"{where}[{i}]", str(exc))
        entries.append(LossEntry(name, params))
    # Compared with their parameters resolved ("focal", gamma = 2 and gamma = 2.0 are one loss, trained thrice).
    resolved = [
        {
            "name": e.name,
            **{k: float(v) if is_number(v) else v for k, v in get_loss(e.name).resolve_params(e.params).items()},
        }
        for e in entries
    ]
    twice = repeated(resolved, lambda v: f"loss {v}")
    if twice:
        _fail(source, where, twice)
    return entries


def _lrs(source, where, value, losses: list[LossEntry]) -> dict[str, list[float]]:
    """Each loss's learning rates (by its label), from one list for all or a table of lists by loss."""
    _check(source, f"{where}.lrs", GRID_PARAMS["lrs"], value)
    if not isinstance(value, dict):
        shared = Numbers.expand(value)
        return {e.label: shared for e in losses}
    missing = [e.name for e in losses if e.name not in value and e.label not in value]
    if missing:
        _fail(source, f"{where}.lrs", f"no learning rates for {missing}; give one list per loss name")
    unused = sorted(k for k in value if k not in {e.name for e in losses} | {e.label for e in losses})
    if unused:
        _fail(
            source,
            f"{where}.lrs",
            f"learning rates for {unused}, which is not a loss of this grid; its losses: "
            f"{', '.join(e.label for e in losses)}",
        )
    rates = Param("lrs", Numbers())
    return {
        e.label: Numbers.expand(_check(source, f"{where}.lrs.{e.name}", rates, value.get(e.label, value.get(e.name))))
        for e in losses
    }


def _check_train_keys(source, where, values: dict) -> None:
    """Every key of a [train] table (and of its plan table) checked against its declaration, at ``where.<key>``."""
    _check_keys(source, where, values, SPEC_TRAIN_PARAMS)
    for key, value in values.items():
        _check(source, f"{where}.{key}", SPEC_TRAIN_PARAMS[key], value)
    plan = values.get("plan", {})
    _check_keys(source, f"{where}.plan", plan, PLAN_PARAMS)
    for key, value in plan.items():
        _check(source, f"{where}.plan.{key}", PLAN_PARAMS[key], value)


def _train_config(source, where, values: dict, device: str) -> TrainConfig:
    """The grid's ``TrainConfig``: every key checked against its declaration (at ``where.<key>``), then the rules
    that tie keys together (at ``where``)."""
    _check_train_keys(source, where, values)
    plan = values.get("plan", {})  # [train.plan]: the execution plan's arithmetic (losslab.train.plan)
    values = {**{k: v for k, v in values.items() if k != "plan"}, **plan}
    values = {**values, **({"betas": tuple(values["betas"])} if "betas" in values else {})}
    try:
        config = TrainConfig(**values, device=device)
        config.validate(device_checks=False)  # the device is chosen when the spec runs
    except INPUT_ERRORS as exc:
        _fail(source, where, str(exc))
    if config.model not in MODELS:
        _fail(source, f"{where}.model", MODELS.unknown(config.model))
    return config


def _warmstart(source, where, value) -> WarmStart | None:
    if value is None:
        return None
    _check_keys(source, where, value, WARMSTART_PARAMS)
    _losses(source, f"{where}.loss", [value.get("loss", WARMSTART_PARAMS["loss"].default)])
    checked = {key: _get(source, where, value, p) for key, p in WARMSTART_PARAMS.items()}
    return WarmStart(**{**checked, "lr": float(checked["lr"])})


def _dataset_options(source, where, value, dataset: str) -> dict:
    options = _check(source, where, GRID_PARAMS["dataset_options"], value)
    allowed = dataset_option_names(dataset)  # None: a user loader taking **kwargs accepts any
    _check_keys(source, where, options, allowed if allowed is not None else set(options))
    declared = dataset_params(dataset)
    for key, value in options.items():
        if isinstance(value, list) and not value:
            _fail(source, f"{where}.{key}", "an empty list selects no value; give at least one")
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
            _fail(source, f"{where}.{key}", f"must be a value or a list of values, got {value!r}")
        for one in value if isinstance(value, list) else [value]:  # each swept value is checked
            if key in declared:
                _check(source, f"{where}.{key}", declared[key], one)
    return options


def _grid(spec: Spec, i: int, grid: dict, base_train: dict, device: str) -> GridSpec:
    """Grid ``i`` of the (size-applied) data, every key checked, read into a ``GridSpec``."""
    source, where = spec.source, f"grid[{i}]"
    P = GRID_PARAMS
    label = _check(source, f"{where}.label", P["label"], grid.get("label", f"grid{i}"))
    try:  # a registered name, or file:PATH relative to the spec's folder (made absolute here)
        dataset = resolve_dataset_name(grid.get("dataset"), spec.folder)
    except ValueError as exc:
        _fail(source, f"{where}.dataset", str(exc))
    classes = _get(source, where, grid, P["classes"])
    grid_train = _get(source, where, grid, P["train"])
    train_values = {**base_train, **grid_train}
    if isinstance(base_train.get("plan"), dict) and isinstance(grid_train.get("plan"), dict):
        train_values["plan"] = {**base_train["plan"], **grid_train["plan"]}  # a grid's plan keys win
    if "model" in grid:
        train_values["model"] = grid["model"]
    train = _train_config(source, f"{where}.train", train_values, device)
    losses = _losses(source, f"{where}.losses", grid.get("losses"))
    names = {e.name for e in losses} | {e.label for e in losses}
    baseline = _get(source, where, grid, P["baseline"])
    if baseline is not None and baseline not in names:
        _fail(
            source,
            f"{where}.baseline",
            f"{baseline!r} is not a loss of this grid; its losses: {', '.join(e.label for e in losses)}",
        )
    return GridSpec(
        label=label,
        dataset=dataset,
        dataset_options=_dataset_options(source, f"{where}.dataset_options", grid.get("dataset_options", {}), dataset),
        classes=classes,
        model=train.model,
        losses=losses,
        lrs=_lrs(source, where, grid.get("lrs", P["lrs"].default_value()), losses),
        init_scales=Numbers.expand(_get(source, where, grid, P["init_scales"])),
        seeds=Seeds.expand(_get(source, where, grid, P["seeds"])),
        train=train,
        warmstart=_warmstart(source, f"{where}.warmstart", grid.get("warmstart")),
        target_accuracy=_get(source, where, grid, P["target_accuracy"]),
        role=_get(source, where, grid, P["role"]),
        baseline=baseline or default_baseline([e.name for e in losses]),
        margin=_get(source, where, grid, P["margin"]),
    )


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else copy.deepcopy(value)
        )
    return merged


def _apply_size(source: str, data: dict, size: str | None) -> dict:
    if size is None:
        return data
    sizes = data.get("sizes", {})
    if size not in sizes:
        _fail(source, "sizes", f"no size {size!r}; this spec defines: {', '.join(sorted(sizes)) or 'none'}")
    override, where = sizes[size], f"sizes.{size}"
    data = copy.deepcopy(data)
    labels = [g["label"] for g in data["grid"]]
    # The size's own values are checked where they are written, so an error names sizes.<size>.<key>.
    if "train" in override:
        data["train"] = _merge(data.get("train", {}), _get(source, where, override, SIZE_PARAMS["train"]))
        _train_config(source, f"{where}.train", data["train"], "cpu")  # errors name the size, not a grid
    for key in ("seeds", "init_scales"):
        _get(source, where, override, SIZE_PARAMS[key])
    lrs = override.get("lrs")
    if isinstance(lrs, dict):
        for key, value in lrs.items():
            _check(source, f"{where}.lrs.{key}", Param("lrs", Numbers()), value)
    elif lrs is not None:
        _check(source, f"{where}.lrs", Param("lrs", Numbers()), lrs)
    keep = _get(source, where, override, SIZE_PARAMS["grids"])
    for label in keep or []:
        if label not in labels:
            _fail(source, f"{where}.grids", f"no grid labelled {label!r}; grid labels: {', '.join(labels)}")
    per_grid_options = _get(source, where, override, SIZE_PARAMS["dataset_options"])
    for label, options in per_grid_options.items():
        if label not in labels:
            _fail(source, f"{where}.dataset_options", f"no grid labelled {label!r}; grid labels: {', '.join(labels)}")
        if not isinstance(options, dict):
            _fail(source, f"{where}.dataset_options.{label}", f"must be a table, got {options!r}")
    grids = [g for g in data["grid"] if keep is None or g["label"] in keep]
    for grid in grids:
        for key in ("seeds", "init_scales", "lrs"):
            if key in override:
                grid[key] = copy.deepcopy(override[key])
        if grid["label"] in per_grid_options and isinstance(grid.get("dataset_options", {}), dict):
            grid["dataset_options"] = _merge(grid.get("dataset_options", {}), per_grid_options[grid["label"]])
    data["grid"] = grids
    return data


def _read(path_or_name) -> tuple[Path, str, str, dict]:
    """The spec's file, its name in messages, what reruns it, and its parsed TOML."""
    builtins = builtin_specs()
    path = Path(path_or_name)
    if path.is_file():
        source, given = str(path_or_name), str(path_or_name)
    elif str(path_or_name) in builtins:
        path = builtins[str(path_or_name)]
        source, given = path.name, str(path_or_name)
    elif path.is_dir():
        raise SpecError(f"spec {str(path_or_name)!r} is a folder; give a spec TOML file or a built-in name")
    elif os.path.exists(path):  # a device, a pipe (reading it would never end), or a link to one
        raise SpecError(
            f"spec {str(path_or_name)!r} is not a regular file ({os.path.realpath(path)}); give a spec TOML file"
        )
    else:
        raise SpecError(
            f"no spec file {str(path_or_name)!r} and no built-in spec of that name; "
            f"built-in specs: {', '.join(sorted(builtins))}"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start}); save the spec as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read the spec ({exc.strerror})") from None
    if text.startswith(
        "\ufeff"
    ):  # Windows editors write one; TOML forbids it, and tomllib calls it "Invalid statement"
        raise SpecError(
            f"{source}: starts with a UTF-8 byte-order mark (BOM), which TOML does not allow; save the spec as UTF-8 "
            "without BOM"
        )
    try:
        return path, source, given, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None


def load_spec(path_or_name: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read a spec from a TOML file, or a built-in one by name; apply ``KEY=VALUE`` ``overrides``; validate its
    structure and expand every size."""
    path, source, given, data = _read(path_or_name)
    if "claims" in data:  # the report decides which claims a grid answers from the grid's role
        _fail(
            source,
            "claims",
            "this key was removed: the report reads each grid's 'role' to know which of the article's claims it "
            "answers (and shows every grid, role or not); delete the line",
        )
    _check_keys(source, "top level", data, TOP_PARAMS)
    _get(source, "", data, TOP_PARAMS["train"])
    grids = data.get("grid")
    if not isinstance(grids, list) or not grids:
        _fail(source, "grid", "a spec needs at least one [[grid]] table")
    for i, grid in enumerate(grids):
        _check_keys(source, f"grid[{i}]", grid, GRID_PARAMS)
        _get(source, f"grid[{i}]", grid, GRID_PARAMS["train"])
        # An unlabelled grid is named by its place in the file, once, here: a size that keeps some grids
        # does not renumber it, and the manifest's spec_data carries the name the report reads.
        grid.setdefault("label", f"grid{i}")
    sizes = _get(source, "", data, TOP_PARAMS["sizes"])
    for size_name, size in sizes.items():
        _check(source, f"sizes.{size_name}", SIZE_NAME, size_name)
        _check_keys(source, f"sizes.{size_name}", size, SIZE_PARAMS)
    parsed = [parse_override(o, source) for o in overrides]
    sites = apply_overrides(data, parsed, source)
    token = _SITES.set(sites)
    # The folder is absolute, fixed before any plugin runs: a plugin's os.chdir cannot move the spec's files.
    folder = os.path.abspath(path.parent)
    try:
        try:  # before the grids are read: they may name what the plugins register
            plugins = import_spec_plugins(data.get("plugins", []), folder, f"{source}: {where_of('plugins', sites)}")
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        if "name" in data:
            name = _check(source, "name", TOP_PARAMS["name"], data["name"])
        else:
            name = path.stem
            if not is_name(name):
                _fail(source, "name", f'the file name {name!r} is not a spec name ({NAME_RULE}); add name = "..."')
        description = _get(source, "", data, TOP_PARAMS["description"])
        spec = Spec(name, description, source, data, folder, given, plugins, tuple(o.text for o in parsed), sites)
        for size in [None, *spec.sizes]:  # every size must expand: bad names fail here, before any training
            expand(spec, size)
    finally:
        _SITES.reset(token)
    return spec


def expand(spec: Spec, size: str | None = None, device: str = "cpu") -> list[Cell]:
    """Expand a spec (at a size) into cells, validating every name and value on the way."""
    token = _SITES.set(spec.override_sites)
    try:
        cells = [cell for i, grid in enumerate(spec.grids(size, device)) for cell in _cells(spec, i, grid)]
        if not cells:
            _fail(spec.source, "grid", f"size {size or 'full'!r} selects no cell to run; check its 'grids' list")
        ids = [c.id.lower() for c in cells]  # a macOS or Windows disk holds A.parquet and a.parquet as one file
        if len(set(ids)) != len(ids):
            _fail(
                spec.source,
                "grid",
                f"cell ids must be unique (ignoring case), got {[c.id for c in cells]}; give each grid its own label",
            )
        return cells
    finally:
        _SITES.reset(token)


def _cells(spec: Spec, i: int, grid: GridSpec) -> list[Cell]:
    """One cell per combination of the grid's swept dataset options, each with every member of the grid."""
    options = grid.dataset_options
    keys = sorted(options)
    members = [
        Member(e.name, seed=s, lr=lr, init_scale=c, loss_params=dict(e.params))
        for e in grid.losses
        for lr in grid.lrs[e.label]
        for c in grid.init_scales
        for s in grid.seeds
    ]
    cells = []
    for combo in itertools.product(*[options[k] if isinstance(options[k], list) else [options[k]] for k in keys]):
        chosen = dict(zip(keys, combo))
        cell_id = grid.label + "".join(f"-{k}{v}" for k, v in chosen.items() if isinstance(options[k], list))
        if not is_cell_id(cell_id):
            _fail(
                spec.source,
                f"grid[{i}].dataset_options",
                f"the values {chosen} make the cell id {cell_id!r}, which is not a safe file name ({CELL_ID_RULE}); "
                "sweep only values of letters, digits, '.', '+' and '-'",
            )
        cells.append(
            Cell(
                cell_id,
                grid.label,
                grid.dataset,
                chosen,
                grid.classes,
                grid.train,
                list(members),
                None if grid.warmstart is None else asdict(grid.warmstart),  # a plain dict in the fingerprint
                spec.plugins,
            )
        )
    return cells
