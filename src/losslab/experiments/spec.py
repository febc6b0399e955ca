"""Experiment specs: plain TOML data, validated completely before any training starts.

A spec names its grids; each grid is one dataset (with options), one model and training settings,
and the members to train together: losses x learning rates x initial logit scales x seeds. A grid
whose ``dataset_options`` hold lists expands into one cell per combination (e.g. blobs with K = 2,
10, 100); each cell is trained as one population. Named sizes (``[sizes.smoke]``, ``[sizes.small]``)
override fields so the same spec runs in seconds or at full size.

Top-level keys: name, description, plugins, train, grid (array of tables), sizes. ``plugins`` lists
module names or ``.py`` files (relative to the spec's folder) imported before anything else of the spec is
read, so its grids may name the losses, datasets and models they register (see ``spec_plugins``).
Grid keys: label, dataset, dataset_options, classes, model, losses, lrs, init_scales, seeds, train,
warmstart, target_accuracy (read by the report: steps until a member first reaches it), role (which of the
article's questions the grid answers: one of ``ROLES``; the report's claims read grids by role, never by label,
and shows every grid, role or not), baseline (the loss every other loss of the grid is compared with in the
report; default cross-entropy where the grid trains it, else its first loss), margin (the odds ratio of being
right below which a difference between two losses does not matter; default 1.25; 1: any difference). Size
keys: train, seeds, init_scales, lrs, grids (labels to keep), dataset_options.

Names become file names, so the spec's ``name``, grid labels and size names are checked identifiers
(letters, digits, '-' and '_', starting with a letter or digit), and so is every cell id. A seed is an
integer in [0, 2**63 - 1]; seeds, learning rates, initial scales and losses may not repeat within a grid
(a repeated one would train, and count, the same run twice).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from losslab.core import get_loss
from losslab.data import dataset_option_names, resolve_dataset_name
from losslab.data import files as dataset_files
from losslab.errors import INPUT_ERRORS
from losslab.experiments.spec_plugins import SpecPlugin, import_spec_plugins
from losslab.experiments.store import CELL_ID_RULE, MAX_SEED, NAME_RULE, is_cell_id, is_name
from losslab.models import MODELS
from losslab.plugins import file_sha256, fingerprint
from losslab.train.config import EXECUTION_FIELDS, Member, TrainConfig

TOP_KEYS = {"name", "description", "plugins", "train", "grid", "sizes"}
GRID_KEYS = {
    "label",
    "dataset",
    "dataset_options",
    "classes",
    "model",
    "losses",
    "lrs",
    "init_scales",
    "seeds",
    "train",
    "warmstart",
    "target_accuracy",
    "role",
    "baseline",
    "margin",
}
#: The roles a grid can play in the report (``losslab.report.claims`` reads grids by these names).
ROLES = {
    "saturation-binary": "one sigmoid logit, normal and confidently wrong starts, MSE vs binary CE (claim C4)",
    "saturation-softmax": "softmax outputs, normal and confidently wrong starts, MSE vs CE (claim C5)",
    "loss-comparison": "each loss over its own learning-rate grid on one dataset (C11, Hui & Belkin, Nielsen, calibration)",
    "many-classes": "the same losses as the number of classes grows (C5, Hui & Belkin)",
    "warm-start": "continue a cross-entropy solution with each loss (Golik et al. 2013)",
    "from-scratch": "the warm-start losses trained from a random start for the same total epochs (Golik et al. 2013)",
    "reference-linear": "MNIST-1D logistic regression as published by Greydanus (32%)",
    "reference-mlp": "MNIST-1D MLP as published by Greydanus (68%)",
    "reference-cnn": "MNIST-1D CNN as published by Greydanus (94%)",
}
SIZE_KEYS = {"train", "seeds", "init_scales", "lrs", "grids", "dataset_options"}
WARMSTART_KEYS = {"loss", "epochs", "lr"}
# Where and how a population runs is chosen at run time; it does not change the results.
EXECUTION_KEYS = set(EXECUTION_FIELDS)
TRAIN_KEYS = {f.name for f in fields(TrainConfig)} - EXECUTION_KEYS
BUILTIN_DIR = "specs"
# A count of seeds expands to range(count): bounded, so that a typo like 10**20 is an error, not a hang.
MAX_SEED_COUNT = 100_000


class SpecError(ValueError):
    """A spec that cannot run; the message names the file, the key and the valid values."""


def builtin_specs() -> dict[str, Path]:
    folder = resources.files("losslab.experiments") / BUILTIN_DIR
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".toml")}


@dataclass(frozen=True)
class LossEntry:
    name: str
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


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
    data: dict  # the parsed TOML, kept to expand sizes
    folder: str | None = None  # the spec file's folder: relative file: datasets are found from here
    path: str | None = None  # what 'losslab run' takes to run it again: a built-in name or the file's path
    plugins: tuple[SpecPlugin, ...] = ()  # imported when the spec was loaded, in the order given

    def cells(self, size: str | None = None, device: str = "cpu") -> list[Cell]:
        return expand(self, size, device)

    @property
    def sizes(self) -> list[str]:
        return sorted(self.data.get("sizes", {}))


def _fail(source: str, where: str, message: str):
    raise SpecError(f"{source}: {where}: {message}")


def _check_keys(source: str, where: str, table: dict, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        _fail(source, where, f"must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        _fail(source, where, f"unknown key(s) {unknown}; valid keys: {', '.join(sorted(allowed))}")


def _check_type(source, where, value, types, description):
    if isinstance(value, bool) or not isinstance(value, types):
        _fail(source, where, f"must be {description}, got {value!r} ({type(value).__name__})")
    return value


def _check_name(source, where, value, what="a name"):
    if not is_name(value):
        _fail(source, where, f"must be {what} of {NAME_RULE}, got {value!r}")
    return value


def _no_repeats(source, where, values, show=repr) -> None:
    seen = set()
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value
        if key in seen:
            _fail(source, where, f"{show(value)} is listed twice; each would train (and count) the same run twice")
        seen.add(key)


def _seeds(source, where, value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SEED_COUNT:
            _fail(
                source,
                where,
                f"a count of seeds must be in [1, {MAX_SEED_COUNT}], got {value}; give a list for particular seeds",
            )
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        for v in value:
            if not 0 <= v <= MAX_SEED:
                _fail(source, where, f"seeds must be integers in [0, {MAX_SEED}], got {v}")
        _no_repeats(source, where, value, show=lambda v: f"seed {v}")
        return list(value)
    _fail(source, where, f"must be a count (int) or a non-empty list of integer seeds, got {value!r}")


def _numbers(source, where, value) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value
        )
    ):
        _fail(source, where, f"must be a positive finite number or a non-empty list of them, got {value!r}")
    values = [float(v) for v in value]
    _no_repeats(source, where, values, show=lambda v: f"{v:g}")
    return values


def _losses(source, where, value) -> list[LossEntry]:
    if not isinstance(value, list) or not value:
        _fail(source, where, f"must be a non-empty list of loss names or tables, got {value!r}")
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
            **{
                k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for k, v in get_loss(e.name).resolve_params(e.params).items()
            },
        }
        for e in entries
    ]
    _no_repeats(source, where, resolved, show=lambda v: f"loss {v}")
    return entries


def _train_config(source, where, overrides: dict, device: str) -> TrainConfig:
    _check_keys(source, where, overrides, TRAIN_KEYS)
    values = dict(overrides)
    for key, value in values.items():  # TOML's true/false would pass as the integers 1/0
        if isinstance(value, bool) or (isinstance(value, list) and any(isinstance(v, bool) for v in value)):
            _fail(source, f"{where}.{key}", f"must be a number or a name, not true/false, got {value!r}")
    for key in ("adam_eps", "dead_epsilon"):
        value = values.get(key, 1.0)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            _fail(source, f"{where}.{key}", f"must be a positive finite number, got {value!r}")
    if "betas" in values:
        betas = values["betas"]
        if (
            not isinstance(betas, list)
            or len(betas) != 2
            or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
        ):
            _fail(source, f"{where}.betas", f"must be two numbers in [0, 1), got {betas!r}")
        values["betas"] = tuple(betas)
    try:
        config = TrainConfig(**values, device=device)
        config.validate(device_checks=False)  # the device is chosen when the spec runs
    except INPUT_ERRORS as exc:
        _fail(source, where, str(exc))
    if config.model not in MODELS:
        _fail(source, f"{where}.model", MODELS.unknown(config.model))
    return config


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
    override = sizes[size]
    data = copy.deepcopy(data)
    labels = [g.get("label", f"grid{i}") for i, g in enumerate(data["grid"])]
    if "train" in override:
        if not isinstance(override["train"], dict):
            _fail(source, f"sizes.{size}.train", f"must be a table, got {override['train']!r}")
        data["train"] = _merge(data.get("train", {}), override["train"])
        _train_config(source, f"sizes.{size}.train", data["train"], "cpu")  # errors name the size, not a grid
    # The size's own values are checked where they are written, so an error names sizes.<size>.<key>.
    if "seeds" in override:
        _seeds(source, f"sizes.{size}.seeds", override["seeds"])
    if "init_scales" in override:
        _numbers(source, f"sizes.{size}.init_scales", override["init_scales"])
    if "lrs" in override:
        lrs = override["lrs"]
        for key, value in lrs.items() if isinstance(lrs, dict) else [(None, lrs)]:
            _numbers(source, f"sizes.{size}.lrs" + (f".{key}" if key else ""), value)
    keep = override.get("grids")
    if keep is not None:
        if not isinstance(keep, list) or not keep or not all(isinstance(k, str) for k in keep):
            _fail(source, f"sizes.{size}.grids", f"must be a non-empty list of grid labels, got {keep!r}")
        unknown = [k for k in keep if k not in labels]
        if unknown:
            _fail(source, f"sizes.{size}.grids", f"no grid labelled {unknown[0]!r}; grid labels: {', '.join(labels)}")
    per_grid_options = override.get("dataset_options", {})
    if not isinstance(per_grid_options, dict):
        _fail(source, f"sizes.{size}.dataset_options", f"must be a table of grid labels, got {per_grid_options!r}")
    for label, options in per_grid_options.items():
        if label not in labels:
            _fail(
                source, f"sizes.{size}.dataset_options", f"no grid labelled {label!r}; grid labels: {', '.join(labels)}"
            )
        if not isinstance(options, dict):
            _fail(source, f"sizes.{size}.dataset_options.{label}", f"must be a table, got {options!r}")
    grids = [g for g, label in zip(data["grid"], labels) if keep is None or label in keep]
    for grid, label in zip(grids, [label for label in labels if keep is None or label in keep]):
        for key in ("seeds", "init_scales", "lrs"):
            if key in override:
                grid[key] = copy.deepcopy(override[key])
        if label in per_grid_options and isinstance(grid.get("dataset_options", {}), dict):
            grid["dataset_options"] = _merge(grid.get("dataset_options", {}), per_grid_options[label])
    data["grid"] = grids
    return data


def load_spec(path_or_name: str | Path) -> Spec:
    """Read a spec from a TOML file, or a built-in one by name; validate its structure and expand every size."""
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
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    if "claims" in data:  # the report decides which claims a grid answers from the grid's role
        _fail(
            source,
            "claims",
            "this key was removed: the report reads each grid's 'role' to know which of the article's claims it "
            "answers (and shows every grid, role or not); delete the line",
        )
    _check_keys(source, "top level", data, TOP_KEYS)
    folder = os.path.abspath(path.parent)
    try:  # first: the grids may name what the plugins register
        plugins = import_spec_plugins(data.get("plugins", []), folder, f"{source}: plugins")
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    if "name" in data:
        name = _check_name(source, "name", data["name"], "a spec name")
    else:
        name = path.stem
        if not is_name(name):
            _fail(source, "name", f'the file name {name!r} is not a spec name ({NAME_RULE}); add name = "..."')
    description = _check_type(source, "description", data.get("description", ""), str, "a string")
    if not isinstance(data.get("train", {}), dict):
        _fail(source, "train", f"must be a table, got {data['train']!r}")
    if "grid" not in data or not isinstance(data["grid"], list) or not data["grid"]:
        _fail(source, "grid", "a spec needs at least one [[grid]] table")
    for i, grid in enumerate(data["grid"]):
        _check_keys(source, f"grid[{i}]", grid, GRID_KEYS)
        if not isinstance(grid.get("train", {}), dict):
            _fail(source, f"grid[{i}].train", f"must be a table, got {grid['train']!r}")
        # An unlabelled grid is named by its place in the file, once, here: a size that keeps some grids
        # does not renumber it, and the manifest's spec_data carries the name the report reads.
        grid.setdefault("label", f"grid{i}")
    sizes = data.get("sizes", {})
    if not isinstance(sizes, dict):
        _fail(source, "sizes", f"must be a table of named sizes, got {sizes!r}")
    for size_name, size in sizes.items():
        _check_name(source, f"sizes.{size_name}", size_name, "a size name")
        _check_keys(source, f"sizes.{size_name}", size, SIZE_KEYS)
    # The folder is absolute, fixed before any plugin ran: a plugin's os.chdir cannot move the spec's files.
    spec = Spec(name, description, source, data, folder=folder, path=given, plugins=plugins)
    for size in [None, *spec.sizes]:  # every size must expand: bad names fail here, before any training
        expand(spec, size)
    return spec


def expand(spec: Spec, size: str | None = None, device: str = "cpu") -> list[Cell]:
    """Expand a spec (at a size) into cells, validating every name and value on the way."""
    source = spec.source
    data = _apply_size(source, spec.data, size)
    base_train = data.get("train", {})
    cells: list[Cell] = []
    for i, grid in enumerate(data["grid"]):
        where = f"grid[{i}]"
        label = _check_name(source, f"{where}.label", grid.get("label", f"grid{i}"), "a grid label")
        try:  # a registered name, or file:PATH relative to the spec's folder (made absolute here)
            dataset = resolve_dataset_name(grid.get("dataset"), spec.folder)
        except ValueError as exc:
            _fail(source, f"{where}.dataset", str(exc))
        classes = grid.get("classes")
        if classes is not None and (
            not isinstance(classes, list)
            or len(classes) < 2
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes)
            or len(set(classes)) != len(classes)
        ):
            _fail(source, f"{where}.classes", f"must list at least 2 distinct class indices (>= 0), got {classes!r}")
        train_overrides = {**base_train, **grid.get("train", {})}
        if "model" in grid:
            train_overrides["model"] = grid["model"]
        train = _train_config(source, f"{where}.train", train_overrides, device)
        losses = _losses(source, f"{where}.losses", grid.get("losses"))
        seeds = _seeds(source, f"{where}.seeds", grid.get("seeds", 3))
        scales = _numbers(source, f"{where}.init_scales", grid.get("init_scales", [1.0]))
        lrs_value = grid.get("lrs", [0.1])
        if isinstance(lrs_value, dict):
            missing = [e.name for e in losses if e.name not in lrs_value and e.label not in lrs_value]
            if missing:
                _fail(source, f"{where}.lrs", f"no learning rates for {missing}; give one list per loss name")
            known = {e.name for e in losses} | {e.label for e in losses}
            unused = sorted(k for k in lrs_value if k not in known)
            if unused:
                _fail(
                    source,
                    f"{where}.lrs",
                    f"learning rates for {unused}, which is not a loss of this grid; its losses: "
                    f"{', '.join(e.label for e in losses)}",
                )
            lrs = {
                e.label: _numbers(source, f"{where}.lrs.{e.name}", lrs_value.get(e.label, lrs_value.get(e.name)))
                for e in losses
            }
        else:
            shared = _numbers(source, f"{where}.lrs", lrs_value)
            lrs = {e.label: shared for e in losses}
        role = grid.get("role")
        if role is not None and role not in ROLES:
            _fail(source, f"{where}.role", f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        baseline = grid.get("baseline")
        if baseline is not None and baseline not in {e.name for e in losses} | {e.label for e in losses}:
            _fail(
                source,
                f"{where}.baseline",
                f"{baseline!r} is not a loss of this grid; its losses: {', '.join(e.label for e in losses)}",
            )
        margin = grid.get("margin")
        if margin is not None and (
            isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 1 <= margin < math.inf
        ):
            _fail(
                source,
                f"{where}.margin",
                f"must be an odds ratio >= 1 (1.25: a difference below 25% in the odds of being right does not "
                f"matter; 1: any difference does), got {margin!r}",
            )
        target = grid.get("target_accuracy")
        if target is not None and (
            isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1
        ):
            _fail(source, f"{where}.target_accuracy", f"must be a number in (0, 1], got {target!r}")
        warmstart = grid.get("warmstart")
        if warmstart is not None:
            _check_keys(source, f"{where}.warmstart", warmstart, WARMSTART_KEYS)
            _losses(source, f"{where}.warmstart.loss", [warmstart.get("loss", "cross_entropy")])
            epochs = warmstart.get("epochs", 10)
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                _fail(source, f"{where}.warmstart.epochs", f"must be a positive integer, got {epochs!r}")
            warmstart = {
                "loss": warmstart.get("loss", "cross_entropy"),
                "epochs": epochs,
                "lr": _numbers(source, f"{where}.warmstart.lr", warmstart.get("lr", 0.1))[0],
            }
        options = grid.get("dataset_options", {})
        if not isinstance(options, dict):
            _fail(source, f"{where}.dataset_options", f"must be a table, got {options!r}")
        allowed = dataset_option_names(dataset)  # None: a user loader taking **kwargs accepts any
        _check_keys(source, f"{where}.dataset_options", options, allowed if allowed is not None else set(options))
        for key, value in options.items():
            if isinstance(value, list) and not value:
                _fail(source, f"{where}.dataset_options.{key}", "an empty list selects no value; give at least one")
            if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
                _fail(source, f"{where}.dataset_options.{key}", f"must be a value or a list of values, got {value!r}")
        keys = sorted(options)
        combos = itertools.product(*[options[k] if isinstance(options[k], list) else [options[k]] for k in keys])
        for combo in combos:
            chosen = dict(zip(keys, combo))
            suffix = "".join(f"-{k}{v}" for k, v in chosen.items() if isinstance(options[k], list))
            members = [
                Member(e.name, seed=s, lr=lr, init_scale=c, loss_params=dict(e.params))
                for e in losses
                for lr in lrs[e.label]
                for c in scales
                for s in seeds
            ]
            cell_id = f"{label}{suffix}"
            if not is_cell_id(cell_id):
                _fail(
                    source,
                    f"{where}.dataset_options",
                    f"the values {chosen} make the cell id {cell_id!r}, which is not a safe file name ({CELL_ID_RULE}); "
                    "sweep only values of letters, digits, '.', '+' and '-'",
                )
            cells.append(Cell(cell_id, label, dataset, chosen, classes, train, members, warmstart, spec.plugins))
    if not cells:
        _fail(source, "grid", f"size {size or 'full'!r} selects no cell to run; check its 'grids' list")
    ids = [
        c.id.lower() for c in cells
    ]  # case-insensitive: a macOS or Windows disk holds A.parquet and a.parquet as one file
    if len(set(ids)) != len(ids):
        _fail(
            source,
            "grid",
            f"cell ids must be unique (ignoring case), got {[c.id for c in cells]}; give each grid its own label",
        )
    return cells
