"""Experiment specs: plain TOML data, validated completely before any training starts.

A spec names its grids; each grid is one dataset (with options), one model and training settings,
and the members to train together: losses x learning rates x initial logit scales x seeds. A grid
whose ``dataset_options`` hold lists expands into one cell per combination (e.g. blobs with K = 2,
10, 100); each cell is trained as one population. Named sizes (``[sizes.smoke]``, ``[sizes.small]``)
override fields so the same spec runs in seconds or at full size.

Top-level keys: name, description, claims, train, grid (array of tables), sizes.
Grid keys: label, dataset, dataset_options, classes, model, losses, lrs, init_scales, seeds, train,
warmstart, target_accuracy (read by the report: steps until a member first reaches it), role (which
question of the report the grid answers: one of ``ROLES``; the report's claims read grids by role,
never by label). Size keys: train, seeds, init_scales, lrs, grids (labels to keep), dataset_options.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from losslab.core import get_loss
from losslab.train.config import EXECUTION_FIELDS, Member, TrainConfig
from losslab.train.datasets import dataset_option_names, resolve_dataset_name
from losslab.train.models import MODELS

TOP_KEYS = {"name", "description", "claims", "train", "grid", "sizes"}
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

    def fingerprint(self) -> str:
        """Changes whenever anything that determines the results changes; used to resume safely."""
        payload = json.dumps(
            {
                "dataset": self.dataset,
                "options": self.dataset_options,
                "classes": self.classes,
                "train": {k: v for k, v in asdict(self.train).items() if k not in EXECUTION_KEYS},
                "members": [asdict(m) for m in self.members],
                "warmstart": self.warmstart,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    claims: list[str]
    source: str
    data: dict  # the parsed TOML, kept to expand sizes
    folder: str | None = None  # the spec file's folder: relative file: datasets are found from here

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


def _seeds(source, where, value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            _fail(source, where, f"must be a positive count or a list of seeds, got {value}")
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    _fail(source, where, f"must be a count (int) or a non-empty list of integer seeds, got {value!r}")


def _numbers(source, where, value) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        _fail(source, where, f"must be a positive number or a non-empty list of them, got {value!r}")
    return [float(v) for v in value]


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
        except ValueError as exc:
            _fail(source, f"{where}[{i}]", str(exc))
        entries.append(LossEntry(name, params))
    return entries


def _train_config(source, where, overrides: dict, device: str) -> TrainConfig:
    _check_keys(source, where, overrides, TRAIN_KEYS)
    values = dict(overrides)
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    try:
        config = TrainConfig(**values, device=device)
        config.validate()
    except (TypeError, ValueError) as exc:
        _fail(source, where, str(exc))
    if config.model not in MODELS:
        _fail(source, f"{where}.model", f"unknown model {config.model!r}; valid models: {', '.join(MODELS)}")
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
    if "train" in override:
        data["train"] = _merge(data.get("train", {}), override["train"])
    keep = override.get("grids")
    grids = [g for g in data["grid"] if keep is None or g.get("label") in keep]
    for grid in grids:
        for key in ("seeds", "init_scales", "lrs"):
            if key in override:
                grid[key] = copy.deepcopy(override[key])
        if "dataset_options" in override and grid.get("label") in override["dataset_options"]:
            grid["dataset_options"] = _merge(
                grid.get("dataset_options", {}), override["dataset_options"][grid["label"]]
            )
    data["grid"] = grids
    return data


def load_spec(path_or_name: str | Path) -> Spec:
    """Read a spec from a TOML file, or a built-in one by name; validate its structure (not yet its cells)."""
    builtins = builtin_specs()
    path = Path(path_or_name)
    if not path.is_file():
        if str(path_or_name) in builtins:
            path = builtins[str(path_or_name)]
        else:
            raise SpecError(
                f"no spec file {str(path_or_name)!r} and no built-in spec of that name; "
                f"built-in specs: {', '.join(sorted(builtins))}"
            )
    source = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    _check_keys(source, "top level", data, TOP_KEYS)
    name = _check_type(source, "name", data.get("name", path.stem), str, "a string")
    if "grid" not in data or not isinstance(data["grid"], list) or not data["grid"]:
        _fail(source, "grid", "a spec needs at least one [[grid]] table")
    for i, grid in enumerate(data["grid"]):
        _check_keys(source, f"grid[{i}]", grid, GRID_KEYS)
    for size_name, size in data.get("sizes", {}).items():
        _check_keys(source, f"sizes.{size_name}", size, SIZE_KEYS)
    spec = Spec(name, data.get("description", ""), list(data.get("claims", [])), source, data, str(path.parent))
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
        label = _check_type(source, f"{where}.label", grid.get("label", f"grid{i}"), str, "a string")
        try:  # a registered name, or file:PATH relative to the spec's folder (made absolute here)
            dataset = resolve_dataset_name(grid.get("dataset"), spec.folder)
        except ValueError as exc:
            _fail(source, f"{where}.dataset", str(exc))
        classes = grid.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, int) for c in classes)):
            _fail(source, f"{where}.classes", f"must be a list of class indices, got {classes!r}")
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
        target = grid.get("target_accuracy")
        if target is not None and (
            isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1
        ):
            _fail(source, f"{where}.target_accuracy", f"must be a number in (0, 1], got {target!r}")
        warmstart = grid.get("warmstart")
        if warmstart is not None:
            _check_keys(source, f"{where}.warmstart", warmstart, WARMSTART_KEYS)
            _losses(source, f"{where}.warmstart.loss", [warmstart.get("loss", "cross_entropy")])
            warmstart = {
                "loss": warmstart.get("loss", "cross_entropy"),
                "epochs": int(warmstart.get("epochs", 10)),
                "lr": float(warmstart.get("lr", 0.1)),
            }
        options = grid.get("dataset_options", {})
        if not isinstance(options, dict):
            _fail(source, f"{where}.dataset_options", f"must be a table, got {options!r}")
        allowed = dataset_option_names(dataset)  # None: a user loader taking **kwargs accepts any
        _check_keys(source, f"{where}.dataset_options", options, allowed if allowed is not None else set(options))
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
            cells.append(Cell(f"{label}{suffix}", label, dataset, chosen, classes, train, members, warmstart))
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        _fail(source, "grid", f"cell ids must be unique, got {ids}; give each grid its own label")
    return cells
