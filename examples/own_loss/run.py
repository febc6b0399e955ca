"""Put a loss of your own through losslab: check it, draw it, train it against cross-entropy and MSE, report.

What it shows: the loss in ``poly_loss.py`` (Poly-1 cross-entropy, registered as ``poly1``) goes through
the four commands a researcher uses, exactly as typed in a shell (each is printed before it runs):

    losslab check-loss poly_loss.py:poly1 --grad poly_loss.py:poly1_grad    the battery: a table, exit 0/1
    losslab plot --loss poly_loss.py:poly1 --out OUT/figures                 beside the built-in losses
    losslab run compare.toml --out OUT/results                               digits: seeds x learning rates
    losslab report OUT/results --out OUT/report                              OUT/report/index.html

``compare.toml`` names the loss's file in ``plugins``, so the same spec runs on a Ray cluster
(``losslab run compare.toml --ray``): each worker gets the file's text with its cells. The script ends
with a short table read from the results: each loss at the learning rate the validation split picks,
and the accuracy reached from a normal and from a confidently wrong start.

Run:  python examples/own_loss/run.py [--out DIR]     (about a minute on 2 CPU cores; DIR: ./own-loss-output)
      python examples/own_loss/run.py --smoke         (seconds; LOSSLAB_SMOKE=1 does the same)
Everything is written under DIR, nothing beside these files.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from losslab.cli import main as losslab
from losslab.experiments.store import load_results

HERE = Path(__file__).resolve().parent


def here(name: str) -> str:
    """A file of this folder as the shell would name it from the current folder."""
    return os.path.relpath(HERE / name)


def step(argv: list[str]) -> None:
    print(f"\n$ losslab {shlex.join(argv)}", flush=True)
    code = losslab(argv)
    sys.stdout.flush()
    if code != 0:
        sys.exit(f"'losslab {shlex.join(argv)}' exited with {code}")


def label(row) -> str:
    params = json.loads(row["loss_params"]) if row["loss_params"] else {}
    return row["loss"] + "".join(f" ({k}={v:g})" for k, v in sorted(params.items()))


def summary(results: Path) -> None:
    _, rows = load_results(results)
    rows = rows[rows["phase"] == "main"].copy()
    rows["label"] = rows.apply(label, axis=1)
    final = rows[rows["step"] == rows.groupby("cell")["step"].transform("max")]
    digits = final[final["grid"] == "digits"]
    by_rate = digits.groupby(["label", "lr"])[["val_accuracy", "test_accuracy", "test_nll", "test_ece"]].mean()
    best = by_rate.loc[by_rate.groupby(level="label")["val_accuracy"].idxmax()]
    print("\ndigits, each loss at the learning rate with the best mean validation accuracy (mean over seeds):")
    print(best.round(3).to_string())
    start = final[final["grid"] == "wrong-start"].groupby(["label", "init_scale"])["test_accuracy"].mean()
    print("\nfinal test accuracy from a normal start (1) and a confidently wrong one (30):")
    print(start.unstack("init_scale").round(3).to_string())


def run(out: Path, smoke: bool) -> None:
    grad = [here("poly_loss.py:poly1_grad")]
    step(["check-loss", here("poly_loss.py:poly1"), "--grad", *grad, "--param", "epsilon=1"])
    step(["plot", "--loss", here("poly_loss.py:poly1"), "--out", str(out / "figures")])
    step(["run", here("compare.toml"), "--out", str(out / "results"), *(["--smoke"] if smoke else [])])
    step(["report", str(out / "results"), "--out", str(out / "report")])
    summary(out / "results")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("own-loss-output"), help="folder for everything written")
    parser.add_argument("--smoke", action="store_true", help="seconds instead of a minute (or LOSSLAB_SMOKE=1)")
    args = parser.parse_args()
    run(args.out, args.smoke or os.environ.get("LOSSLAB_SMOKE") == "1")
