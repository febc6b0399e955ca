"""``losslab demo``: the whole argument, measured, in about 30 seconds on 2 CPU cores.

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


def run_demo(
    out: Path, size: str = "small", console: Console | None = None, device: str = "auto", lang: str = "en"
) -> int:
    """Run the demo into ``out``; ``lang`` ('en' or 'zh') is the language of the report, the figures, the
    explorer page and the demo's own lines (the training progress lines, from the experiments layer, stay English)."""
    from rich.cells import cell_len

    from losslab.commands import run_command
    from losslab.experiments import store
    from losslab.experiments.runner import run_spec
    from losslab.experiments.spec import load_spec
    from losslab.explore import write_explorer
    from losslab.i18n import check_language, render, translator
    from losslab.report.figures import FIGURES, write_figures
    from losslab.report.fonts import require
    from losslab.report.html import write_report
    from losslab.report.verdicts import verdict_word
    from losslab.theory.ledger import ledger_exit_code, ledger_summary, verify_all
    from losslab.train.config import resolve_device

    t = translator(check_language(lang))
    require(lang)  # a missing CJK font fails here, before anything is written
    console = console or Console(soft_wrap=True)  # long verdict lines stay whole in logs
    started = time.perf_counter()
    out = Path(out)
    # Everything that can refuse the run is checked before the first file is written: the folder,
    # and that each results folder in it is new or holds the same spec at the same size.
    store.check_writable(out, "demo folder")
    specs = {name: load_spec(name) for name in DEMO_SPECS}
    device = resolve_device(device)
    for name, spec in specs.items():
        for cell in spec.cells(size, device):
            cell.train.check_device()  # e.g. --device cuda where there is no GPU: refused before any file
        store.check_target(out / "results" / name, spec.name, size)
    console.print(f"[bold]losslab demo[/] {t('demo.size', size=size)} -> {out}/")

    console.print(f"[bold]1/4[/] {t('demo.step_verify')}")
    ledger = verify_all(seed=0, trials=100)
    console.print(f"    {t('demo.rows', rows=str(len(ledger)), summary=ledger_summary(ledger))}")

    console.print(f"[bold]2/4[/] {t('demo.step_figures')}")
    written = write_figures(list(FIGURES), out / "figures", lang=lang)
    console.print(f"    {t('demo.figures', count=str(len(written)), folder=str(out / 'figures'))}")

    console.print(f"[bold]3/4[/] {t('demo.step_training')}")
    folders = []
    for name, spec in specs.items():
        folder = out / "results" / name
        summary = run_spec(
            spec,
            folder,
            size=size,
            device=device,
            log=lambda line: console.print(f"    {line}"),
            command=run_command(spec.path or spec.name, size),
        )
        console.print(f"    {name}: {summary.describe()}")
        folders.append(folder)

    console.print(f"[bold]4/4[/] {t('demo.step_report')}")
    explorer = write_explorer(out, results=out / "results" / "saturation", lang=lang)
    path, claims = write_report(folders, out, ledger=ledger, lang=lang)
    console.print()
    colours = {
        "supported": "green",
        "supported with caveat": "yellow",
        "not supported": "red",
        "not enough evidence": "blue",
        "not tested": "dim",
    }
    for claim in claims:
        word = verdict_word(claim.verdict).render(lang)
        padding = " " * max(0, 22 - cell_len(word))  # a Chinese character takes two cells
        console.print(f"  {claim.id:4s} [{colours[claim.verdict]}]{word}{padding}[/] {render(claim.title, lang)}")
    console.print()
    console.print(t("demo.report", path=str(path.resolve())))
    console.print(t("demo.explorer", path=str(explorer.resolve())))
    console.print(t("demo.elapsed", seconds=f"{time.perf_counter() - started:.0f}"))
    return ledger_exit_code(ledger)
