"""The scripts in examples/ run at smoke size from a temporary folder, say what they promise, and write
nothing into the repository. examples/own_loss/run.py runs in tests/test_cluster.py, where it is also the
issue's end-to-end test (check-loss, plot, run here and on Ray, report)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) by content hash: a byte written anywhere changes it."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def run_example(script: Path, cwd: Path, *args: str) -> str:
    before = tree(EXAMPLES)
    env = {**os.environ, "LOSSLAB_SMOKE": "1", "MPLBACKEND": "Agg", "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert tree(EXAMPLES) == before, "the example wrote into the repository"
    return done.stdout


def test_every_example_says_what_it_shows_and_how_to_run_it():
    scripts = sorted(EXAMPLES.rglob("*.py"))
    assert {p.relative_to(EXAMPLES).as_posix() for p in scripts} >= {
        "own_data.py",
        "own_model.py",
        "own_loss/run.py",
        "own_loss/poly_loss.py",
    }
    for path in scripts:
        doc = path.read_text().split('"""')[1]
        assert "Run:" in doc or "Try it:" in doc, f"{path.name}: say how to run it"
        assert "--smoke" in doc or path.name == "poly_loss.py", f"{path.name}: say how to run it in seconds"


@pytest.mark.slow
def test_own_data_writes_npz_and_csv_shows_the_checks_and_trains(tmp_path):
    out = run_example(EXAMPLES / "own_data.py", tmp_path)
    written = tmp_path / "own-data-output"
    assert (written / "my_data.npz").is_file() and (written / "my_data.csv").is_file()
    assert "bad_labels.npz: /" in out and "has label 5 at example 3, outside [0, 2]" in out
    assert "column 'width_mm' has 1 empty, NaN or infinite value(s) (first on line 8)" in out
    assert "class 3 ('unknown') has 1 training example(s)" in out
    assert "population of 4 trained from Python" in out and "spec 'my-data' on file:my_data.csv" in out
    assert (written / "results" / "manifest.json").is_file()


@pytest.mark.slow
def test_own_model_matches_the_plain_loop_in_float64(tmp_path):
    out = run_example(EXAMPLES / "own_model.py", tmp_path)
    assert list(tmp_path.iterdir()) == []  # it writes nothing
    largest = float(out.split("largest difference over the members compared: ")[1].split()[0])
    assert largest < 1e-9
    assert "layer 'bn' (BatchNorm1d)" in out and "GroupNorm or torch.nn.LayerNorm" in out
