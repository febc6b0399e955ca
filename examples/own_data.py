"""Train on data of your own: a .npz file and a CSV file, through the Python API and through a spec.

What it shows:
1. writing a dataset losslab reads with no code: ``my_data.npz`` (x_train, y_train, x_test, y_test,
   class_names) and ``my_data.csv`` (one row per example, numeric feature columns, a text label column);
2. the checks every dataset passes (``losslab.check_dataset``), on three broken copies: a label out of
   range, an empty cell in the CSV, a class with a single example; each is one line naming the file, the
   column or split, and the fix;
3. a population (cross-entropy and MSE, several seeds) trained on the .npz file from Python;
4. the same on the CSV file from a spec (``dataset = "file:my_data.csv"``, relative to the spec), run and
   read back through the results store.

The data: three kinds of (made-up) seeds measured four ways, two kinds overlapping.

Run:  python examples/own_data.py [--out DIR]     (about 10 seconds; DIR: ./own-data-output)
      python examples/own_data.py --smoke         (a few seconds; LOSSLAB_SMOKE=1 does the same)
Everything is written under DIR.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

import losslab
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.experiments.store import load_results
from losslab.train import Member, TrainConfig, train_population

KINDS = ["kama", "rosa", "canadian"]
FEATURES = ["length_mm", "width_mm", "groove_mm", "mass_mg"]


def measurements(n_per_kind: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features [n, 4] and integer labels [n]: one Gaussian cloud per kind, kama and canadian overlapping."""
    rng = np.random.default_rng(seed)
    centres = np.array([[5.5, 3.2, 5.1, 31.0], [6.2, 3.7, 6.0, 42.0], [5.3, 3.0, 5.0, 27.0]])
    spread = np.array([0.25, 0.15, 0.25, 3.0])
    y = np.repeat(np.arange(len(KINDS)), n_per_kind)
    x = centres[y] + rng.normal(size=(len(y), len(FEATURES))) * spread
    order = rng.permutation(len(y))
    return x[order], y[order]


def write_files(out: Path) -> tuple[Path, Path]:
    x, y = measurements(120)
    n_test = len(y) // 4
    npz = out / "my_data.npz"
    np.savez(
        npz, x_train=x[n_test:], y_train=y[n_test:], x_test=x[:n_test], y_test=y[:n_test], class_names=np.array(KINDS)
    )
    csv = out / "my_data.csv"
    table = pd.DataFrame(x.round(3), columns=FEATURES)
    table["species"] = [KINDS[i] for i in y]  # text labels: classes in sorted order, names kept
    table.to_csv(csv, index=False)
    print(f"wrote {npz} ({len(y) - n_test} training and {n_test} test examples) and {csv} ({len(table)} rows)")
    return npz, csv


def show_checks(out: Path, csv: Path) -> None:
    """Three broken copies; each load fails with one line naming the file, the place and the fix."""
    x, y = measurements(20, seed=1)
    y_bad = y.copy()
    y_bad[3] = 5  # only three classes are named
    bad_npz = out / "bad_labels.npz"
    np.savez(bad_npz, x_train=x, y_train=y_bad, x_test=x, y_test=y, class_names=np.array(KINDS))
    table = pd.read_csv(csv)
    table.loc[6, "width_mm"] = np.nan  # an empty cell
    table.to_csv(out / "bad_empty_cell.csv", index=False)
    lonely = pd.read_csv(csv)
    lonely = pd.concat([lonely, lonely.iloc[:1].assign(species="unknown")])  # a fourth kind, seen once
    lonely.to_csv(out / "bad_lonely_class.csv", index=False)
    print("\nthe dataset checks, on three broken copies:")
    for name, options in (
        ("bad_labels.npz", {}),
        ("bad_empty_cell.csv", {"label": "species"}),
        ("bad_lonely_class.csv", {"label": "species"}),
    ):
        try:
            losslab.load_dataset(f"file:{out / name}", **options)
        except ValueError as exc:
            print(f"  {name}: {exc}")
        else:
            raise AssertionError(f"{name} should have failed its checks")
    # The same checks run on arrays in memory, before a loader returns them.
    try:
        losslab.check_dataset({"x_train": x, "y_train": y_bad, "x_test": x, "y_test": y, "class_names": KINDS})
    except ValueError as exc:
        print(f"  check_dataset(arrays): {exc}")


def train_from_python(npz: Path, smoke: bool) -> None:
    data = losslab.load_dataset(f"file:{npz}")  # checked, a validation split carved, standardised
    print(
        f"\nloaded {data.name}: classes {data.class_names}, {len(data.y_train)} train / {len(data.y_val)} validation"
        f" / {len(data.y_test)} test examples of {data.num_features} features"
    )
    seeds = range(2 if smoke else 5)
    members = [Member(loss, seed=s, lr=lr) for loss, lr in (("cross_entropy", 0.1), ("mse", 0.3)) for s in seeds]
    config = TrainConfig(model="mlp", hidden=[32], batch_size=30, epochs=3 if smoke else 30)
    rows = train_population(data, members, config, progress=False).frame
    final = rows[rows["step"] == rows["step"].max()]
    print(f"population of {len(members)} trained from Python; final test accuracy, mean over seeds:")
    print(final.groupby("loss")[["test_accuracy", "test_nll", "test_ece"]].mean().round(3).to_string())


def train_from_spec(out: Path, smoke: bool) -> None:
    spec_path = out / "my_data.toml"
    spec_path.write_text(
        textwrap.dedent(
            f"""
            name = "my-data"
            [train]
            model = "mlp"
            hidden = [32]
            batch_size = 30
            epochs = {3 if smoke else 30}
            [[grid]]
            label = "seeds"
            dataset = "file:my_data.csv"  # relative to this spec's folder
            dataset_options = {{ label = "species", test_fraction = 0.25 }}
            losses = ["cross_entropy", "mse", "squentropy"]
            lrs = {{ cross_entropy = [0.1], mse = [0.3], squentropy = [0.1] }}
            seeds = {2 if smoke else 5}
            """
        )
    )
    summary = run_spec(load_spec(spec_path), out / "results", log=lambda line: print(f"  {line}"))
    manifest, rows = load_results(summary.out)
    final = rows[rows["step"] == rows["step"].max()]
    print(f"spec {manifest['spec']!r} on {final['dataset'].iloc[0]}: final test accuracy, mean over seeds:")
    print(final.groupby("loss")["test_accuracy"].mean().round(3).to_string())
    print(f"(rerun it: losslab run {spec_path} --out {out / 'results'}; a rerun skips the finished cell)")


def main(out: Path, smoke: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    npz, csv = write_files(out)
    show_checks(out, csv)
    train_from_python(npz, smoke)
    print("\nthe CSV file from a spec:")
    train_from_spec(out, smoke)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("own-data-output"), help="folder for everything written")
    parser.add_argument("--smoke", action="store_true", help="a few seconds (or LOSSLAB_SMOKE=1)")
    args = parser.parse_args()
    main(args.out, args.smoke or os.environ.get("LOSSLAB_SMOKE") == "1")
