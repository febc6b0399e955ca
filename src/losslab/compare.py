"""``losslab compare``: a comparison of losses in one command, written as a spec you can rerun and edit.

    losslab compare cross_entropy mse my_losses.py:tempered_ce --data file:data.csv --out cmp

writes ``cmp/spec.toml`` (the spec it runs: every loss over its own small learning-rate grid, 5 seeds, the
dataset's validation split to choose each loss's rate, an MLP), trains it into ``cmp/results``, and writes the
report, ``cmp/index.html`` and ``cmp/report.json``. A loss is a built-in name, a name a ``--plugin`` registers,
or ``FILE.py:FUNCTION`` (a plain function of logits and targets: the spec's ``plugins`` list names it so, and
it is registered as the loss FUNCTION). A dataset is a built-in name or ``file:PATH``. Paths in the spec are
relative to its folder. Given a single loss, cross-entropy is added as the baseline it is compared with.

Everything is checked before anything is written: the spec is validated from a draft with absolute paths
(the same cells, the same fingerprints) and only then written with relative ones. Rerunning the same command
reuses the finished cells; ``losslab run cmp/spec.toml --out cmp/results`` then ``losslab report cmp/results
--out cmp`` does the same by hand. Part of the command-line layer, like the demo.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Learning rates per built-in loss (SGD with momentum 0.9): grids a factor of about 3 apart that hold the best
#: rate of each loss on the built-in datasets inside them (the comparison spec's full runs).
DEFAULT_LRS = {
    "cross_entropy": [0.01, 0.03, 0.1, 0.3],
    "binary_cross_entropy": [0.01, 0.03, 0.1, 0.3],
    "mse": [0.03, 0.1, 0.3, 1.0],
    "square_logits": [0.01, 0.03, 0.1, 0.3, 1.0],
    "focal": [0.01, 0.03, 0.1, 0.3],
    "label_smoothing_cross_entropy": [0.01, 0.03, 0.1, 0.3],
    "squentropy": [0.01, 0.03, 0.1, 0.3],
}
#: A loss losslab does not know: five rates a factor of about 3 apart, wide enough to find its scale.
OTHER_LRS = [0.01, 0.03, 0.1, 0.3, 1.0]
DEFAULT_SEEDS = 5  # the fewest seeds a verdict of the report accepts
DEFAULT_EPOCHS = 20
DEFAULT_HIDDEN = [100]
LARGEST_BATCH = 64


@dataclass
class Plan:
    """What ``compare`` will run: the spec's text (relative paths) and a draft of it (absolute paths)."""

    text: str
    draft: str
    losses: list[str]
    added_baseline: bool


def _toml(value) -> str:
    """A TOML literal for the few value types a spec here holds."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def plan(
    losses: list[str],
    data: str,
    out: Path,
    model: str = "mlp",
    seeds: int = DEFAULT_SEEDS,
    epochs: int = DEFAULT_EPOCHS,
    lrs: list[float] | None = None,
    plugins: list[str] = (),
    command: str = "",
) -> Plan:
    """The spec of a comparison (see the module docstring); ``plugins`` are already imported."""
    from losslab.core import LOSSES
    from losslab.data import load_dataset
    from losslab.data.files import PREFIX, file_path
    from losslab.experiments.spec_plugins import function_entry
    from losslab.plugins import PLUGINS, is_file_source

    if not losses:
        raise ValueError("compare needs at least one loss; e.g. losslab compare cross_entropy mse --data digits")
    out = Path(out)
    entries: dict[str, tuple[str, str]] = {}  # plugin entry -> (as the spec writes it, as the draft writes it)

    def add_plugin(source: str, function: str | None = None) -> None:
        relative, absolute = source, source
        if is_file_source(source):
            path = Path(source).expanduser()
            relative, absolute = _relative(path, out), str(path.resolve())
        if function:
            relative, absolute = f"{relative}:{function}", f"{absolute}:{function}"
        entries.setdefault(f"{absolute}", (relative, absolute))

    for source in plugins:
        add_plugin(source)
    names = []
    for loss in losses:
        source, function = function_entry(loss)
        if function is not None:
            add_plugin(source, function)
            names.append(function)
            continue
        LOSSES.get(loss)  # an unknown name fails here, naming the valid ones and the --plugin route
        module = LOSSES.record(loss).module
        if module in PLUGINS and PLUGINS[module].path:  # registered by a plugin: the spec must import it too
            add_plugin(PLUGINS[module].path if PLUGINS[module].kind == "file" else PLUGINS[module].source)
        names.append(loss)
    if len(set(names)) != len(names):
        raise ValueError(f"each loss once, please: got {', '.join(losses)}")
    added = len(names) == 1 and names[0] != "cross_entropy"
    if added:
        names = ["cross_entropy", *names]
    dataset, draft_dataset = data, data
    if data.startswith(PREFIX):
        path = file_path(data)
        dataset, draft_dataset = PREFIX + _relative(path, out), PREFIX + str(path.resolve())
    n_train = load_dataset(draft_dataset).x_train.shape[0]
    batch = LARGEST_BATCH if n_train >= 4 * LARGEST_BATCH else max(1, n_train // 4)

    def text(plugin_list: list[str], dataset_name: str) -> str:
        grids = "\n".join(f"{_toml(name)} = {_toml(lrs or DEFAULT_LRS.get(name, OTHER_LRS))}" for name in names)
        lines = [
            f"# Written by: {command}" if command else "# Written by losslab compare",
            "# Rerun (from this folder): losslab run spec.toml --out results && losslab report results --out .",
            'name = "compare"',
            f"description = {_toml('Losses compared by losslab compare: ' + ', '.join(names))}",
        ]
        if plugin_list:
            lines.append(f"plugins = {_toml(plugin_list)}")
        lines += [
            "",
            "[train]",
            f"model = {_toml(model)}",
            f"hidden = {_toml(DEFAULT_HIDDEN)}",
            'optimizer = "sgd"',
            "momentum = 0.9",
            f"epochs = {epochs}",
            f"batch_size = {batch}",
            "",
            "[[grid]]",
            'label = "compare"',
            f"dataset = {_toml(dataset_name)}",
            f"losses = {_toml(names)}",
            f"seeds = {seeds}",
            f"baseline = {_toml(names[0])}",
            "[grid.lrs]  # each loss over its own rates; the report chooses each loss's rate on validation",
            grids,
            "",
        ]
        return "\n".join(lines)

    spec_text = text([r for r, _ in entries.values()], dataset)
    draft_text = text([a for _, a in entries.values()], draft_dataset)
    return Plan(spec_text, draft_text, names, added)


def add_arguments(p) -> None:
    """The arguments of ``losslab compare`` (the CLI adds the shared --plugin and --lang)."""
    p.add_argument(
        "losses",
        nargs="+",
        metavar="LOSS",
        help="a built-in loss, a name a --plugin registers, or FILE.py:FUNCTION (a plain function of logits and "
        "targets); one loss alone is compared with cross_entropy",
    )
    p.add_argument(
        "--data", required=True, metavar="DATASET", help="a built-in dataset or file:PATH (.csv, .npz, .parquet)"
    )
    p.add_argument("--model", default="mlp", help="the model (default mlp, one hidden layer of 100)")
    p.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help="seeds per loss and rate (default 5, the fewest a verdict takes)",
    )
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs (default 20)")
    p.add_argument(
        "--lrs",
        type=float,
        nargs="+",
        default=None,
        metavar="R",
        help="the same learning rates for every loss (default: a grid per loss)",
    )
    p.add_argument(
        "--out", default="losslab-compare", help="folder for the spec, results and report (default ./losslab-compare)"
    )
    p.add_argument(
        "--device", default="auto", help="auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N"
    )


def run_compare(args, console=None) -> int:
    """The ``losslab compare`` command: plan, check, write the spec, train, report, and print the comparison."""
    import json

    from rich.console import Console

    from losslab.commands import run_command
    from losslab.experiments import store
    from losslab.experiments.runner import run_spec
    from losslab.experiments.spec import load_spec
    from losslab.plugins import import_plugins
    from losslab.report.html import write_report

    # The terminal's width (or $COLUMNS); piped, wide enough that no row of the table breaks.
    console = console or Console(soft_wrap=True, width=shutil.get_terminal_size((200, 24)).columns)
    out = Path(args.out)
    import_plugins(args.plugin)
    command = "losslab " + " ".join(shlex.quote(a) for a in args.argv)
    planned = plan(
        args.losses, args.data, out, args.model, args.seeds, args.epochs, args.lrs, args.plugin, command=command
    )
    with tempfile.TemporaryDirectory() as scratch:  # validate the draft: nothing is written before it passes
        draft_path = Path(scratch) / "spec.toml"
        draft_path.write_text(planned.draft, encoding="utf-8")
        load_spec(draft_path)
    store.check_writable(out, "compare folder")
    results = out / "results"
    store.check_target(results, "compare", "full")
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.toml"
    store.atomic_write(spec_path, planned.text.encode("utf-8"))
    spec = load_spec(spec_path)
    if planned.added_baseline:
        console.print(f"one loss given: compared with cross_entropy, the baseline (spec: {spec_path})")
    cells = spec.cells()
    members = sum(len(c.members) for c in cells)
    console.print(f"[bold]losslab compare[/] {', '.join(planned.losses)} on {args.data}: {members} members -> {out}/")
    summary = run_spec(
        spec,
        results,
        device=args.device,
        log=lambda line: console.print(f"    {line}"),
        command=run_command(spec_path, None),
    )
    console.print(f"    {summary.describe()}")
    path, _ = write_report([results], out, lang=args.lang)
    record = json.loads((out / "report.json").read_text(encoding="utf-8"))
    _print_comparison(console, record)
    console.print(f"report: {path.resolve()} (every number also in {(out / 'report.json').resolve()})")
    console.print(f"spec: {spec_path.resolve()} (edit it and rerun: losslab run {spec_path} --out {results})")
    return 0


def _print_comparison(console, record: dict) -> None:
    """Each loss at its chosen rate against the baseline, as the report's first tables give them."""
    from rich.table import Table

    for grid in record["grids"]:
        for condition in grid["conditions"]:
            table = Table(title=f"{grid['grid']}: each loss at its rate chosen on validation")
            for column in ("loss", "chosen lr", "test accuracy [95%]", f"against {grid['baseline']}"):
                table.add_column(column)
            outcomes = {c["loss"]: c for c in condition["comparisons"]}
            for row in condition["losses"]:
                acc = row["test_accuracy"]
                shown = (
                    f"{100 * acc['mean']:.1f}% [{100 * acc['low']:.1f}, {100 * acc['high']:.1f}]"
                    if acc["low"] is not None
                    else f"{100 * acc['mean']:.1f}%"
                    if acc["mean"] is not None
                    else "n/a"
                )
                vs = outcomes.get(row["loss"])
                against = "baseline" if row["loss"] == grid["baseline"] else "n/a"
                if vs is not None:
                    ratio = vs["effect"]["odds_ratio"]
                    against = f"{vs['outcome']} (odds ratio {ratio:.3g}, margin {grid['margin']['odds_ratio']:g})"
                lr = "every rate diverged" if row["chosen_lr"] is None else f"{row['chosen_lr']:g}"
                edge = {"low": " (lowest tried)", "high": " (highest tried)"}.get(row["edge"], "")
                table.add_row(row["loss"], lr + edge, shown, against)
            console.print(table)
