"""What a spec may hold, written out from the declarations the validator uses: the reference, the schema, a starter.

- ``reference_markdown()``: ``docs/spec.md``, every top-level, ``[train]``, ``[[grid]]`` and ``[sizes.NAME]`` key
  with its type, default, meaning and example; the roles and what the report does with each; the built-in losses' parameters and datasets' options; overrides.
  ``losslab schema --markdown --out docs/spec.md`` regenerates it, and a test fails if it drifts.
- ``json_schema()``: a JSON Schema (draft 2020-12) of spec files, for editors (taplo / Even Better TOML's
  ``#:schema`` directive) and scripts (``losslab schema``).
- ``starter_spec()``: ``losslab init``'s commented spec, every key with its default and meaning, which runs as
  written.

Only built-in entries are described (a plugin's losses and datasets are the plugin's to document). Nothing here
reads the report's claims, so declaring a claim touches no generated file.
"""

from __future__ import annotations

import json
from pathlib import Path

from losslab.core import LOSSES
from losslab.data import DATASETS, dataset_params
from losslab.data import files as dataset_files
from losslab.data.dataset import COMMON_PARAMS
from losslab.experiments.spec_keys import (
    GRID_PARAMS,
    ROLES,
    SIZE_PARAMS,
    SPEC_TRAIN_PARAMS,
    TOP_PARAMS,
    WARMSTART_PARAMS,
)
from losslab.experiments.store import check_writable, is_name
from losslab.params import REQUIRED, Param, toml_value

SCHEMA_ID = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "losslab schema --markdown --out docs/spec.md"


def _builtin(registry) -> list[str]:
    return [name for name in registry if registry.origin(name) == "built-in"]


# --- the JSON Schema ------------------------------------------------------------------------------------


def _properties(params: dict[str, Param], **replaced) -> dict:
    return {name: replaced.get(name, p.schema()) for name, p in params.items()}


def _table(params: dict[str, Param], required=(), **replaced) -> dict:
    out = {"type": "object", "properties": _properties(params, **replaced), "additionalProperties": False}
    return {**out, "required": list(required)} if required else out


def _sweepable(param: Param) -> dict:
    one = param.schema()
    return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}], "description": one.get("description", "")}


def _options_schema(params: dict[str, Param]) -> dict:
    return {
        "type": "object",
        "properties": {n: _sweepable(p) for n, p in params.items()},
        "additionalProperties": False,
    }


def _dataset_cases() -> list[dict]:
    """Each built-in dataset's options (a swept option is a list), and a file dataset's by its suffix."""
    cases = [
        {
            "if": {"properties": {"dataset": {"const": name}}, "required": ["dataset"]},
            "then": {"properties": {"dataset_options": _options_schema(dataset_params(name))}},
        }
        for name in _builtin(DATASETS)
    ]
    tables = {**COMMON_PARAMS, **{p.name: p for p in dataset_files.TABLE_PARAMS}}
    for pattern, params in ((r"^file:.*\.npz$", COMMON_PARAMS), (r"^file:.*\.(csv|parquet)$", tables)):
        cases.append(
            {
                "if": {"properties": {"dataset": {"pattern": pattern}}, "required": ["dataset"]},
                "then": {"properties": {"dataset_options": _options_schema(params)}},
            }
        )
    return cases


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a spec file, from the declarations ``load_spec`` checks against."""
    ref = {"train": {"$ref": "#/$defs/train"}}
    grid = _table(GRID_PARAMS, ["dataset", "losses"], warmstart={"$ref": "#/$defs/warmstart"}, **ref)
    grid["allOf"] = _dataset_cases()
    names = TOP_PARAMS["name"].constraint.schema()
    return {
        "$schema": SCHEMA_ID,
        "title": "losslab experiment spec",
        "description": "A losslab spec (losslab run SPEC): grids of losses, learning rates, initial scales and seeds "
        "on a dataset and model. Reference: docs/spec.md.",
        **_table(
            TOP_PARAMS,
            ["grid"],
            grid={"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/grid"}},
            sizes={"type": "object", "propertyNames": names, "additionalProperties": {"$ref": "#/$defs/size"}},
            **ref,
        ),
        "$defs": {
            "train": _table(SPEC_TRAIN_PARAMS),
            "grid": grid,
            "warmstart": _table(WARMSTART_PARAMS),
            "size": _table(SIZE_PARAMS, **ref),
        },
    }


# --- the reference --------------------------------------------------------------------------------------


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(p: Param) -> str:
    if p.default_text is not None:
        return p.default_text
    if p.default is REQUIRED:
        return "required"
    return "none" if p.default is None else f"`{toml_value(p.default)}`"


def _example(p: Param) -> str:
    example = p.show_example()
    return "" if example is REQUIRED or example is None else f"`{toml_value(example)}`"


def _rows(params: dict[str, Param], prefix: str = "") -> list[str]:
    lines = ["| key | type | default | meaning | example |", "|---|---|---|---|---|"]
    for name, p in params.items():
        what = p.what()
        lines.append(
            f"| `{prefix}{name}` | {_cell(what)} | {_cell(_default(p))} | {_cell(p.meaning)} | {_cell(_example(p))} |"
        )
    return lines


INTRO = """# Spec reference

A spec is a TOML file that `losslab run SPEC` trains: grids of losses x learning rates x initial logit scales x
seeds, each grid on one dataset and model, every grid's members trained together as one population. This page
lists every key the validator accepts, with its type, default, meaning and an example; it is generated from the
same declarations the validator checks (`losslab.experiments.spec_keys`, `losslab.train.config`), so it cannot
drift: regenerate it with `{regenerate}` (a test compares). `losslab init` writes a starter
spec with every key, and `losslab schema` the JSON Schema of spec files.

A bad value is refused before anything is written, in one line naming the file, the place and the fix, e.g.
`spec.toml: grid[0].train.epochs: must be a positive integer, got 0`.
"""

OVERRIDES = """## Overrides: `losslab run SPEC KEY=VALUE ...`

Settings can be changed on the command line, as with Hydra, without editing the file:

| override | what it sets |
|---|---|
| `train.epochs=3` | a `[train]` key, in every grid (a grid's own `train` table and a size's `train` too, so it wins everywhere) |
| `seeds=2` | a `[[grid]]` key, in every grid (and in every size that sets it) |
| `dataset_options.seed=1` | a key inside a grid's table (`train`, `dataset_options`, `warmstart`, `lrs`), in every grid that has that table |
| `grid.LABEL.lrs=[0.1,0.3]` | a key of one grid, by its label; `grid.LABEL.train.epochs=3` likewise |
| `name=quick` | a top-level key (`name`, `description`, `plugins`) |

VALUE is a TOML value (`3`, `0.1`, `[0.1, 0.3]`, `"text"`, `{{ k = 2.0 }}`); a bare word that is not one is a
string (`dataset=mnist1d`). Quote an override that holds spaces or brackets for the shell
(`'grid.digits.lrs=[0.1, 0.3]'`). Overrides are checked like the spec, and an error names the override:
`spec.toml: override train.epochs=0: must be a positive integer, got 0`. They may stand anywhere after the spec,
options in between (`losslab run spec.toml --smoke train.epochs=3`); later ones win. The manifest records them
(`overrides`, and the spec's data with them applied) and the command that reruns the spec repeats them.
"""

EDITOR = """## Editor support

`losslab schema --out spec.schema.json` writes the JSON Schema (draft 2020-12) of spec files. Editors that
validate TOML with JSON Schema (taplo, and VS Code's Even Better TOML, which uses it) read a first line

```toml
#:schema ./spec.schema.json
```

and then complete keys, show each key's meaning and default, and underline a misspelt key or a bad value as you
type. Plugin losses and datasets are accepted by name; their parameters are checked when the spec is run.
"""


def reference_markdown() -> str:
    """``docs/spec.md``: the spec reference, generated from the declarations."""
    out = [INTRO.format(regenerate=REGENERATE), "## Top level", "", *_rows(TOP_PARAMS), ""]
    out += [
        "## `[train]`",
        "",
        "Training settings shared by every grid; a grid's own `train` table (and a size's) overrides them. "
        "Where and how a population runs (device, worker threads, blocks, the matmul library, memory) is chosen "
        "at run time and is not a spec key.",
        "",
        *_rows(SPEC_TRAIN_PARAMS),
        "",
        "## `[[grid]]`",
        "",
        "Each grid is one dataset and model and the members trained together: losses x learning rates x initial "
        "scales x seeds. A list in `dataset_options` sweeps that option: one cell (one population, one results "
        "file) per combination. `dataset` and `losses` must be given.",
        "",
        *_rows(GRID_PARAMS),
        "",
        "### `warmstart`",
        "",
        *_rows(WARMSTART_PARAMS, "warmstart."),
        "",
        "## `[sizes.NAME]`",
        "",
        "A named size shrinks the spec: `losslab run SPEC --size NAME` (`--smoke` is `--size smoke`). Its keys "
        "replace or merge into the grids' values; sizes are named like specs.",
        "",
        *_rows(SIZE_PARAMS),
        "",
        "## Roles",
        "",
        "A grid's `role` says which of the article's questions it answers. The report shows every grid the same "
        "way whatever its role (each loss at its rate chosen on validation, paired differences from the baseline, "
        "rate sensitivity, curves and calibration); a role adds the claims and findings below, which read grids "
        "by role, never by label.",
        "",
        "| role | what the grid holds, and the claims and findings the report reads it for |",
        "|---|---|",
    ]
    out += [f"| `{role}` | {_cell(text)} |" for role, text in ROLES.items()]
    out += ["", "## Loss parameters", "", "A loss with parameters is written as a table in `losses`, e.g. "]
    out[-1] += '`{ name = "focal", gamma = 1.0 }`; unknown parameters are refused.'
    out += ["", "| loss | parameter | type | default | meaning |", "|---|---|---|---|---|"]
    for name in _builtin(LOSSES):
        for p in LOSSES[name].params:
            out.append(f"| `{name}` | `{p.name}` | {_cell(p.what())} | {_default(p)} | {_cell(p.meaning)} |")
    out += ["", "## Dataset options", "", "Every dataset takes `validation` and `standardise`; the rest are its own."]
    out += ["", "| dataset | option | type | default | meaning |", "|---|---|---|---|---|"]
    for name, params in [
        ("every dataset", COMMON_PARAMS),
        *((n, {p.name: p for p in DATASETS[n].params}) for n in _builtin(DATASETS)),
        ("`file:` .csv / .parquet", {p.name: p for p in dataset_files.TABLE_PARAMS}),
    ]:
        for p in params.values():
            label = name if name.startswith(("every", "`")) else f"`{name}`"
            out.append(f"| {label} | `{p.name}` | {_cell(p.what())} | {_default(p)} | {_cell(p.meaning)} |")
    out += ["", OVERRIDES.format(), EDITOR]
    return "\n".join(out).rstrip() + "\n"


# --- the starter spec -----------------------------------------------------------------------------------

STARTER_GRID = {
    "label": "digits",
    "dataset": "digits",
    "losses": ["cross_entropy", "mse"],
    "lrs": {"cross_entropy": [0.03, 0.1, 0.3], "mse": [0.1, 0.3, 1.0]},
}


def _key_lines(params: dict[str, Param], given: dict, skip=()) -> list[str]:
    """Each key: its meaning as a comment, then ``key = value`` (the given value, else the default), commented
    out with its example where it has no default a spec can write."""
    lines = []
    for name, p in params.items():
        if name in skip:
            continue
        default = "" if p.default_text is None else f" (default: {p.default_text})"
        lines.append(f"# {p.meaning}{default}")
        if name in given:
            lines.append(f"{name} = {toml_value(given[name])}")
        elif p.default is not REQUIRED and p.default is not None and p.default_text is None:
            lines.append(f"{name} = {toml_value(p.default)}")
        else:
            lines.append(f"# {name} = {toml_value(p.show_example())}")
    return lines


def starter_spec(name: str = "my-study") -> str:
    """``losslab init``'s spec: every key with its default and meaning; it runs as written (``--smoke``: seconds)."""
    head = [
        "# A losslab experiment spec, written by `losslab init`: every key, with its default and what it means.",
        "# Run it:   losslab run THIS_FILE --smoke     (seconds)",
        "#           losslab run THIS_FILE             (the full size; results in losslab-results/<name>)",
        "#           losslab report losslab-results/<name>",
        "# Reference: docs/spec.md. Editor completion and checking: losslab schema --out spec.schema.json, then make",
        "# '#:schema ./spec.schema.json' the first line of this file (taplo, VS Code's Even Better TOML).",
        "# A line starting with '# key =' is a key left at its default; remove the '#' to set it.",
        "",
    ]
    top = _key_lines(
        TOP_PARAMS, {"name": name, "description": "cross-entropy against MSE on digits"}, ("train", "grid", "sizes")
    )
    train = _key_lines(SPEC_TRAIN_PARAMS, {})
    grid = _key_lines(GRID_PARAMS, STARTER_GRID, ("warmstart",))
    warm = [f"#   {k} = {toml_value(p.default)}    {p.meaning}" for k, p in WARMSTART_PARAMS.items()]
    grid += [
        "# " + GRID_PARAMS["warmstart"].meaning + "; as a table: warmstart = { loss = ..., epochs = ..., lr = ... }"
    ]
    grid += ["# warmstart = " + toml_value(GRID_PARAMS["warmstart"].show_example()), *warm]
    smoke = ["[sizes.smoke]", "# " + SIZE_PARAMS["seeds"].meaning, "seeds = 1"]
    smoke += ["# " + SIZE_PARAMS["train"].meaning, "train = { epochs = 1 }"]
    sections = [head, top, ["", "[train]"], train, ["", "[[grid]]"], grid, [""], smoke]
    return "\n".join(line for section in sections for line in section) + "\n"


def write_starter(path: Path) -> Path:
    """Write ``starter_spec`` (named after the file where its name is a spec name) to a new ``.toml`` file."""
    if path.exists() or path.is_symlink():
        raise ValueError(f"{path} already exists; give another FILE, or delete it to start over")
    if path.suffix != ".toml":
        raise ValueError(f"{path}: a spec file ends in .toml; give FILE.toml")
    check_writable(path, "FILE", file=True)
    text = starter_spec(path.stem if is_name(path.stem) else "my-study")
    try:
        with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite a file that appeared meanwhile
            handle.write(text)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write ({exc.strerror}); give a writable path") from None
    return path


def schema_text(markdown: bool = False) -> str:
    """``losslab schema``'s output: the JSON Schema, or with ``markdown`` the reference (``docs/spec.md``)."""
    return reference_markdown() if markdown else json.dumps(json_schema(), indent=2) + "\n"


def write_generated(path: Path, text: str) -> Path:
    """Write a generated file (``--out``), replacing an older one."""
    check_writable(path, "--out", file=True)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--out {path}: cannot write ({exc.strerror}); give a writable path") from None
    return path
