"""``losslab demo``: the whole argument, measured, in about two minutes on 2 CPU cores.

1. checks every numbered equation of the article (the equation ledger),
2. writes the saturation figures,
3. runs the saturation and comparison experiments at their ``small`` size on built-in data
   (scikit-learn digits and MNIST-1D: nothing to download),
4. writes the self-contained report to ``<out>/index.html`` and prints the claims' verdicts, and the
   interactive explorer with the saturation measurements to ``<out>/explorer.html``.

Results go to ``<out>/results/<spec>``; a rerun reuses finished cells (delete the folder to start over).
Part of the CLI layer: it calls the experiments (which train) and the report (which only reads).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

DEMO_SPECS = ("saturation", "comparison")


def run_demo(out: Path, size: str = "small", console: Console | None = None, device: str = "auto") -> int:
    from losslab.experiments import store
    from losslab.experiments.runner import run_spec
    from losslab.experiments.spec import load_spec
    from losslab.explore import write_explorer
    from losslab.report.figures import FIGURES, write_figures
    from losslab.report.html import write_report
    from losslab.theory.ledger import ledger_exit_code, ledger_summary, verify_all

    console = console or Console(soft_wrap=True)  # long verdict lines stay whole in logs
    started = time.perf_counter()
    out = Path(out)
    # Everything that can refuse the run is checked before the first file is written: the folder,
    # and that each results folder in it is new or holds the same spec at the same size.
    store.check_writable(out, "demo folder")
    specs = {name: load_spec(name) for name in DEMO_SPECS}
    for name, spec in specs.items():
        spec.cells(size)
        store.check_target(out / "results" / name, spec.name, size)
    console.print(f"[bold]losslab demo[/] ({size} size) -> {out}/")

    console.print("[bold]1/4[/] checking the article's equations ...")
    ledger = verify_all(seed=0, trials=100)
    console.print(f"    {len(ledger)} rows: {ledger_summary(ledger)}")

    console.print("[bold]2/4[/] drawing the saturation figures ...")
    written = write_figures(list(FIGURES), out / "figures")
    console.print(f"    {len(written)} figures in {out / 'figures'}")

    console.print("[bold]3/4[/] training (populations of models at once) ...")
    folders = []
    for name, spec in specs.items():
        folder = out / "results" / name
        summary = run_spec(spec, folder, size=size, device=device, log=lambda line: console.print(f"    {line}"))
        console.print(f"    {name}: {summary.describe()}")
        folders.append(folder)

    console.print("[bold]4/4[/] writing the report ...")
    explorer = write_explorer(out, results=out / "results" / "saturation")
    path, claims = write_report(folders, out, ledger=ledger)
    console.print()
    colours = {
        "supported": "green",
        "supported with caveat": "yellow",
        "not supported": "red",
        "not enough evidence": "blue",
        "not tested": "dim",
    }
    for claim in claims:
        console.print(f"  {claim.id:4s} [{colours[claim.verdict]}]{claim.verdict:22s}[/] {claim.title}")
    console.print()
    console.print(f"report: {path.resolve()}")
    console.print(f"explorer: {explorer.resolve()}")
    console.print(f"elapsed: {time.perf_counter() - started:.0f} s")
    return ledger_exit_code(ledger)
