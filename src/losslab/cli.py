"""The ``losslab`` command: parse arguments, call one library function, print, set the exit code.

Exit codes: 0 success, 1 a check failed (``verify``, ``check-loss``, the ledger inside ``demo``), 2 bad usage or bad input (one line on stderr
naming the argument or file, the bad value and the fix: a ``ValueError`` or ``losslab.errors.BadInputType``; also a full disk,
and a plugin's ``sys.exit``), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM, as ``timeout`` and schedulers send it: handled
as Ctrl-C, so a run releases its lock and leaves its manifest consistent). Any other exception is a bug: it propagates with its
traceback (exit code 1).
Heavy imports (torch, matplotlib) happen inside the subcommands so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import time
from pathlib import Path

from losslab.errors import INPUT_ERRORS
from losslab.exits import (
    describe_os_error,
    interrupted,
    max_days_allowed,
    one_line,
    sigterm_as_interrupt,
    was_terminated,
)


class UsageError(Exception):
    """Bad arguments detected after parsing; reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, instead of argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_lang_option(p, what: str, figures: bool = True) -> None:
    from losslab.i18n import LANGUAGES, LOCALE_VARIABLES

    p.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=None,
        help=f"language of {what}: {', '.join(LANGUAGES)} (default: from the locale, {' / '.join(LOCALE_VARIABLES)} "
        "starting with zh gives zh, else en)"
        + ("; zh needs a CJK font (apt-get install fonts-noto-cjk)" if figures else ""),
    )


def _language(args) -> str:
    """The --lang given, else the locale's; a language whose figures need a font this machine lacks fails now."""
    from losslab.i18n import default_language
    from losslab.report.fonts import require

    lang = args.lang or default_language()
    try:
        require(lang)
    except ValueError as exc:
        if args.lang:
            raise
        # Nobody asked for this language: the locale chose it. Say so, and offer the simplest way out.
        from losslab.i18n import locale_variable

        raise UsageError(f"{exc} (the language came from {locale_variable()}; or pass --lang en)") from None
    return lang


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="check every numbered equation of the article (the equation ledger)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random numeric checks (default 0)")
    p.add_argument("--trials", type=int, default=200, help="random trials per numeric check (default 200)")
    p.add_argument("--json", metavar="FILE", help="also write the ledger as JSON to FILE ('-' for stdout)")
    p.set_defaults(func=_cmd_verify)


MAX_TRIALS = 100_000  # the numeric checks hold arrays of trials x classes: more would exhaust memory


def _check_output_file(path: Path, flag: str) -> None:
    """Fail now, before the work, if ``path`` cannot be written (a folder, a missing or read-only parent)."""
    from losslab.experiments.store import StoreError, check_writable

    try:
        check_writable(path, flag, file=True)
    except StoreError as exc:
        raise UsageError(str(exc)) from None  # a bad option, reported like the other options' errors


def _cmd_verify(args) -> int:
    if args.trials < 1 or args.trials > MAX_TRIALS:
        raise UsageError(f"--trials must be in [1, {MAX_TRIALS}], got {args.trials}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.json not in (None, "-"):
        _check_output_file(Path(args.json), "--json")
    from losslab.theory.ledger import ledger_exit_code, ledger_to_json, print_ledger, verify_all

    started = time.perf_counter()
    rows = verify_all(seed=args.seed, trials=args.trials)
    if args.json == "-":
        print(ledger_to_json(rows))
    else:
        print_ledger(rows)
        if args.json:
            try:
                Path(args.json).write_text(ledger_to_json(rows) + "\n", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--json {args.json}: cannot write ({exc.strerror}); give a writable path") from None
            print(f"wrote {args.json}")
        print(f"checked {len(rows)} rows in {time.perf_counter() - started:.1f} s")
    return ledger_exit_code(rows)


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="write the saturation and gradient figures")
    p.add_argument("names", nargs="*", metavar="NAME", help="figures to write (default: all; see --list)")
    p.add_argument("--out", default="losslab-figures", help="folder to write into (default ./losslab-figures)")
    p.add_argument("--format", choices=["png", "svg"], default="png", help="image format (default png)")
    p.add_argument("--list", action="store_true", help="list the figure names and exit")
    p.add_argument(
        "--loss",
        action="append",
        default=[],
        metavar="LOSS",
        help="also draw this loss (MODULE:FUNCTION, file.py:FUNCTION or a registered name) in the figures "
        "that compare losses; repeatable (default figures then: those)",
    )
    _add_plugin_option(p)
    _add_lang_option(p, "the labels")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args) -> int:
    from losslab.i18n import default_language, render
    from losslab.report.figures import FIGURES, write_figures

    if args.list:
        lang = args.lang or default_language()
        for name, fig in FIGURES.items():
            print(f"{name:24s} {render(fig.description, lang)}")
        return 0
    lang = _language(args)
    out = _absolute(args.out)  # before any plugin runs: its os.chdir must not move --out
    _import_plugins(args)
    names = args.names or [n for n, f in FIGURES.items() if f.takes_losses or not args.loss]
    for path in write_figures(names, out, fmt=args.format, losses=args.loss, lang=lang):
        print(f"wrote {path}")
    return 0


def _add_plugin_option(p) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="import a plugin first (a module name or a .py file that registers losses or datasets); repeatable",
    )


def _import_plugins(args) -> None:
    from losslab.plugins import import_plugins

    import_plugins(args.plugin)


def _absolute(path: str) -> Path:
    """``path`` made absolute against the current folder now, before any plugin could change that folder."""
    return Path(os.path.abspath(path))


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--param must be NAME=VALUE, got {text!r}")
    raw = raw.strip()
    for kind in (int, float):
        try:
            return key.strip(), kind(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return key.strip(), raw.lower() == "true"
    return key.strip(), raw


def _add_check_loss(sub) -> None:
    p = sub.add_parser(
        "check-loss",
        help="run the built-in losses' battery on a loss: finiteness, gradient, propriety, dead zone, convexity",
        description="Exit code: 0 all checks pass, 1 a check fails (per-example values, finiteness at +-1e4, "
        "closed-form gradient vs autograd), 2 bad input. Propriety, dead zone and convexity are findings "
        "(INFO): they never change the exit code.",
    )
    p.add_argument("loss", metavar="LOSS", help="MODULE:FUNCTION, path/to/file.py:FUNCTION, or a registered loss name")
    p.add_argument("--grad", metavar="GRAD", help="its closed-form logit gradient, MODULE:FUNCTION or file.py:FUNCTION")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a loss parameter; repeatable")
    p.add_argument("--binary", action="store_true", help="the function takes one logit per example (z, y: [batch])")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    _add_plugin_option(p)
    p.set_defaults(func=_cmd_check_loss)


def _cmd_check_loss(args) -> int:
    params = dict(_parse_param(t) for t in args.param)
    from losslab.plugins import stdout_to_stderr

    # With --json, stdout carries the JSON alone: whatever the plugin or the loss prints goes to stderr.
    with stdout_to_stderr() if args.json else contextlib.nullcontext():
        _import_plugins(args)
        from losslab.analysis.check import check_loss, print_loss_check

        result = check_loss(args.loss, grad=args.grad, params=params, binary=args.binary)
    if args.json:
        print(result.to_json())
    else:
        print_loss_check(result)
    return result.exit_code


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list the losses, datasets or models: built-ins and plugins")
    p.add_argument("kind", choices=["losses", "datasets", "models"], help="what to list")
    _add_plugin_option(p)
    p.set_defaults(func=_cmd_list)


def _cmd_list(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    _import_plugins(args)

    def origin(registry, name: str) -> str:  # who registered it, and whose entry it replaced
        record = registry.record(name)
        return record.origin + (f" (replaces {record.replaced.origin})" if record.replaced is not None else "")

    table = Table(title=f"losslab {args.kind}")
    for column in ("name", "summary", "from"):
        table.add_column(column)
    if args.kind == "losses":
        from losslab.core import LOSSES

        for name, loss in LOSSES.items():
            forms = [f for f, ok in (("K classes", loss.accepts_multiclass), ("one logit", loss.accepts_binary)) if ok]
            params = ", ".join(f"{k}={v}" for k, v in loss.defaults.items())
            summary = loss.summary + f" [{'; '.join(forms)}" + (f"; {params}" if params else "") + "]"
            table.add_row(name, escape(summary), escape(origin(LOSSES, name)))
    elif args.kind == "datasets":
        from losslab.data import DATASETS

        for name, entry in DATASETS.items():
            table.add_row(name, escape(entry.summary), escape(origin(DATASETS, name)))
        table.add_row("file:PATH", "a .npz, .csv or .parquet file (docs/plugins.md, under Data)", "built-in")
    else:
        from losslab.models import MODELS

        for name, entry in MODELS.items():
            table.add_row(name, escape(entry.summary), escape(origin(MODELS, name)))
    Console(width=shutil.get_terminal_size((200, 24)).columns).print(table)  # the terminal's width, else wide
    return 0


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run an experiment spec (a TOML file or a built-in name)")
    p.add_argument("spec", help="path to a spec TOML file, or a built-in name: saturation, comparison, ...")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="change a setting of the spec, checked like the spec: train.epochs=3 (every grid), seeds=2 (a grid key, "
        "every grid), grid.LABEL.lrs=[0.1,0.3] (one grid); VALUE is TOML or a bare word (docs/spec.md)",
    )
    p.add_argument("--smoke", action="store_true", help="run the spec's seconds-long smoke size (= --size smoke)")
    p.add_argument("--size", default=None, help="a named size of the spec (e.g. small); default: full")
    p.add_argument(
        "--out",
        default=None,
        help="results folder (default ./losslab-results/<spec name>, <spec name>-<size> for a size)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (the GPU when PyTorch sees one, else the CPU), cpu, cuda or cuda:N"
    )
    p.add_argument("--data-dir", default=None, help="folder with MNIST/Fashion-MNIST IDX files (or $LOSSLAB_DATA)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="train the cells as Ray tasks: no ADDRESS = $RAY_ADDRESS or a new local instance; "
        "'auto' = this machine's cluster; or ray://host:port (needs pip install 'losslab[ray]')",
    )
    p.add_argument(
        "--cpus-per-cell", type=float, default=1.0, help="with --ray: CPUs (and threads) per cell (default 1)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another run is writing into the results folder, wait for it instead of failing",
    )
    p.add_argument(
        "--max-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="refuse a run whose estimated training time (a lower bound: members x steps x a fast step's cost) "
        "exceeds DAYS (default 30, or $LOSSLAB_MAX_DAYS; 'inf' lifts the limit)",
    )
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from losslab.commands import run_command
    from losslab.experiments.runner import run_spec
    from losslab.experiments.spec import load_spec

    if args.smoke and args.size not in (None, "smoke"):
        raise UsageError(f"--smoke and --size {args.size} contradict each other; give one")
    size = "smoke" if args.smoke else args.size
    _check_device(args.device)
    if not (math.isfinite(args.cpus_per_cell) and args.cpus_per_cell > 0):
        raise UsageError(f"--cpus-per-cell must be a positive number, got {args.cpus_per_cell}")
    cluster = None
    if args.ray is not None:
        from losslab.experiments.cluster import RayCluster

        cluster = RayCluster(address=args.ray or None, cpus_per_cell=args.cpus_per_cell)
    elif args.cpus_per_cell != 1.0:
        raise UsageError("--cpus-per-cell applies to Ray runs only; add --ray")
    if args.out == "":
        raise UsageError("--out is empty; give a folder for the results")
    max_days = max_days_allowed(args.max_days)
    # Every path is made absolute before the spec's plugins run: a plugin's os.chdir cannot move them.
    here = _absolute(".")
    data_dir = None if args.data_dir is None else _absolute(args.data_dir)
    spec = load_spec(args.spec, args.overrides)
    # Each size its own default folder: a smoke run first, then the full run, as 'losslab init' suggests.
    default = spec.name if size in (None, "full") else f"{spec.name}-{size}"
    out = _absolute(args.out) if args.out else here / "losslab-results" / default
    summary = run_spec(
        spec,
        out,
        size=size,
        device=args.device,
        data_dir=data_dir,
        cluster=cluster,
        wait=args.wait,
        command=run_command(spec.path or spec.name, size, spec.overrides),
        max_days=max_days,
    )
    print(summary.describe())
    return 0


def _add_init(sub) -> None:
    p = sub.add_parser("init", help="write a commented starter spec: every key with its default and meaning")
    p.add_argument(
        "file",
        nargs="?",
        default="experiment.toml",
        metavar="FILE",
        help="where (default ./experiment.toml; - prints it)",
    )
    p.set_defaults(func=_cmd_init)


def _cmd_init(args) -> int:
    from losslab.experiments.spec_docs import starter_spec, write_starter

    if args.file == "-":
        print(starter_spec(), end="")
    else:
        print(
            f"wrote {write_starter(Path(args.file))}; run it: losslab run {args.file} --smoke (seconds), then in full"
        )
    return 0


def _add_schema(sub) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of spec files (for editors: #:schema), or with --markdown the spec reference",
    )
    p.add_argument("--markdown", action="store_true", help="the spec reference (docs/spec.md) instead of the schema")
    p.add_argument("--out", metavar="FILE", help="write it to FILE instead of printing it")
    p.set_defaults(func=_cmd_schema)


def _cmd_schema(args) -> int:
    from losslab.experiments.spec_docs import schema_text, write_generated

    text = schema_text(markdown=args.markdown)
    if args.out is None:
        print(text, end="")
    else:
        print(f"wrote {write_generated(Path(args.out), text)}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write the self-contained HTML report from result folders")
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="folders written by 'losslab run'")
    p.add_argument("--out", default="losslab-report", help="folder for index.html (default ./losslab-report)")
    _add_lang_option(p, "the report")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    if args.out == "":
        raise UsageError("--out is empty; give a folder for index.html")
    lang = _language(args)
    from losslab.i18n import render
    from losslab.report.html import write_report
    from losslab.report.verdicts import verdict_word

    path, verdicts = write_report([Path(r) for r in args.results], Path(args.out), lang=lang)
    print(f"wrote {path}")
    for claim in verdicts:
        print(f"  {claim.id:4s} {_pad(verdict_word(claim.verdict).render(lang), 26)} {render(claim.title, lang)}")
    return 0


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a Chinese character takes two)."""
    from rich.cells import cell_len

    return text + " " * max(0, width - cell_len(text))


def _add_explore(sub) -> None:
    p = sub.add_parser(
        "explore",
        help="write the interactive explorer page (gradients, Nielsen's neuron, measured training) in --lang",
    )
    p.add_argument("--out", default="losslab-explorer", help="folder for explorer.html (default ./losslab-explorer)")
    p.add_argument(
        "--results",
        default=None,
        metavar="SATURATION_RESULTS_DIR",
        help="a folder written by 'losslab run saturation' whose measurements the page embeds (default: none)",
    )
    # The browser draws the page's text with its own fonts: no CJK font is needed here.
    _add_lang_option(p, "the page's text (the numbers and formulas are the same in every language)", figures=False)
    p.set_defaults(func=_cmd_explore)


def _cmd_explore(args) -> int:
    from losslab.explore import write_explorer
    from losslab.i18n import default_language

    lang = args.lang or default_language()
    path = write_explorer(Path(args.out), results=None if args.results is None else Path(args.results), lang=lang)
    print(f"wrote {path}")
    if args.results is None:
        print("no measurements embedded; add --results DIR (from 'losslab run saturation --smoke --out DIR')")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="verify, plot, run small experiments and write ./losslab-demo/index.html")
    p.add_argument("--out", default="losslab-demo", help="demo folder (default ./losslab-demo)")
    p.add_argument("--size", choices=["smoke", "small"], default="small", help="experiment size (default small)")
    p.add_argument(
        "--device", default="auto", help="auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N"
    )
    _add_lang_option(p, "the report, the figures, the explorer page and this command's own lines")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from losslab.demo import run_demo

    _check_device(args.device)
    lang = _language(args)
    return run_demo(Path(args.out), size=args.size, device=args.device, lang=lang)


def _add_compare(sub) -> None:
    from losslab.compare import add_arguments

    p = sub.add_parser(
        "compare",
        help="compare losses in one command: writes the spec it runs, trains it, writes the report",
        description="Each loss over its own small learning-rate grid, 5 seeds, the rate chosen on validation; "
        "writes OUT/spec.toml (rerun and edit it), OUT/results, OUT/index.html and OUT/report.json.",
    )
    add_arguments(p)
    _add_plugin_option(p)
    _add_lang_option(p, "the report")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args) -> int:
    from losslab.compare import run_compare

    _check_device(args.device)
    for name, value, lowest in (("--seeds", args.seeds, 1), ("--epochs", args.epochs, 1)):
        if value < lowest:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    if args.lrs is not None and not all(math.isfinite(r) and r > 0 for r in args.lrs):
        raise UsageError(f"--lrs must be positive numbers, got {args.lrs}")
    if args.out == "":
        raise UsageError("--out is empty; give a folder for the comparison")
    args.lang = _language(args)
    return run_compare(args)


def build_parser() -> argparse.ArgumentParser:
    from losslab import __version__

    parser = _Parser(
        prog="losslab",
        description="Why classification uses cross-entropy instead of MSE, measured.",
    )
    parser.add_argument("--version", action="version", version=f"losslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (
        _add_verify,
        _add_plot,
        _add_check_loss,
        _add_list,
        _add_init,
        _add_run,
        _add_compare,
        _add_schema,
        _add_report,
        _add_explore,
        _add_demo,
    ):
        add(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``run``'s KEY=VALUE overrides may stand anywhere after the spec, between options too."""
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "run" and not any(e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = None
    prefix = "losslab"
    with sigterm_as_interrupt():
        try:
            parser = build_parser()  # inside: Ctrl-C while the command starts up is one line too
            args = _parse(parser, argv)
            args.argv = list(sys.argv[1:] if argv is None else argv)  # what was typed, for the commands that record it
            if args.command is None:
                parser.print_help()
                return 2
            prefix = f"losslab {args.command}"
            try:
                return args.func(args)
            except SystemExit as exc:  # code of a plugin (a loss, a loader) called sys.exit while we ran it
                from losslab.plugins import where_it_failed

                kept = "; finished cells are saved" if args.command in ("run", "demo") else ""
                raise ValueError(
                    f"sys.exit({exc.code!r}) was called by {where_it_failed(exc, None)} while losslab {args.command} "
                    f"ran{kept}; a plugin's functions must return or raise, never exit"
                ) from None
        except UsageError as exc:
            print(f"losslab: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except INPUT_ERRORS as exc:
            # Library input errors carry a message that names the argument or file, the value and the fix. A plain
            # TypeError is a bug, not bad input: it propagates with its traceback (exit code 1).
            print(f"{prefix}: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader of our output went away (| head): nothing left to say
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush from failing again
            return 2
        except OSError as exc:
            print(f"{prefix}: error: {one_line(describe_os_error(exc, args))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            print(f"{prefix}: {one_line(interrupted(getattr(args, 'command', None), exc))}", file=sys.stderr)
            return 143 if was_terminated(exc) else 130


if __name__ == "__main__":
    sys.exit(main())
