"""``losslab compare``: a comparison of losses in one command, on a CSV with a loss of one's own."""

import json

import numpy as np
import pytest

from losslab.cli import main

OWN_LOSS = '''
import torch


def tempered(z, y, t=2.0):
    """Cross-entropy of softmax(z / t)."""
    return -(y * torch.log_softmax(z / t, dim=-1)).sum(-1)
'''


@pytest.fixture
def workspace(tmp_path, monkeypatch, clean_registries):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 2.5, (3, 4))
    lines = ["a,b,c,d,label"]
    for k in range(3):
        for x in centres[k] + rng.normal(0, 1.5, (150, 4)):
            lines.append(",".join(f"{v:.4f}" for v in x) + f",kind{k}")
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "my_losses.py").write_text(OWN_LOSS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if "__pycache__" not in p.parts)


def test_compare_a_loss_of_ones_own_on_a_csv_writes_the_spec_results_and_report(workspace, capsys):
    argv = ["compare", "mse", "my_losses.py:tempered", "--data", "file:data.csv", "--seeds", "2", "--epochs", "2"]
    assert main([*argv, "--out", "cmp", "--lrs", "0.1", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "against cross_entropy" not in out and "against mse" in out and "report:" in out
    spec = (workspace / "cmp" / "spec.toml").read_text()
    assert 'plugins = ["../my_losses.py:tempered"]' in spec and 'dataset = "file:../data.csv"' in spec
    assert "# Written by: losslab compare mse my_losses.py:tempered --data file:data.csv" in spec
    record = json.loads((workspace / "cmp" / "report.json").read_text())
    (grid,) = record["grids"]
    assert grid["spec"] == "compare" and grid["baseline"] == "mse" and grid["role"] is None
    losses = grid["conditions"][0]["losses"]
    assert [row["loss"] for row in losses] == ["mse", "tempered"]
    assert all(row["lrs_tried"] == [0.1, 0.3] and row["members"] == 2 for row in losses)
    assert (workspace / "cmp" / "index.html").is_file()
    # The spec it wrote reruns as written: every cell is already done.
    assert main(["run", "cmp/spec.toml", "--out", "cmp/results"]) == 0
    assert "1 already done" in capsys.readouterr().out


def test_one_loss_is_compared_with_cross_entropy(workspace, capsys):
    assert main(["compare", "my_losses.py:tempered", "--data", "file:data.csv", "--seeds", "2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "one loss given: compared with cross_entropy" in out and "against cross_entropy" in out
    spec = (workspace / "losslab-compare" / "spec.toml").read_text()
    assert 'losses = ["cross_entropy", "tempered"]' in spec and 'baseline = "cross_entropy"' in spec


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "hinge", "--data", "digits"], r"unknown loss 'hinge'; valid losses: .*--plugin FILE\.py"),
        (["compare", "mse", "--data", "file:nope.csv"], r"nope\.csv"),
        (["compare", "my_losses.py:nothing", "--data", "digits"], r"has no function 'nothing'; it defines: tempered"),
        (["compare", "mse", "mse", "--data", "digits"], r"each loss once"),
        (["compare", "mse", "--data", "digits", "--seeds", "0"], r"--seeds must be a positive integer, got 0"),
        (["compare", "mse", "--data", "digits", "--lrs", "-1"], r"--lrs must be positive numbers"),
        (["compare", "mse", "--data", "cifar"], r"unknown dataset 'cifar'"),
    ],
)
def test_bad_compare_input_is_one_line_and_writes_nothing(workspace, capsys, argv, message):
    before = files(workspace)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and __import__("re").search(message, err), err
    assert files(workspace) == before


def test_the_readme_s_three_commands_run_as_written(tmp_path, monkeypatch, clean_registries, capsys):
    """README "Compare your own loss in three commands": its my_loss.py, check-loss and compare lines, verbatim
    (compare made small with --seeds and --epochs, which the README's line leaves at their defaults)."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Compare your own loss in three commands", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(# my_loss.py\n.*?)```", section, re.DOTALL)
    check, compare = (
        shlex.split(line.split("#")[0]) for line in re.findall(r"```bash\n(.*?)\n```", section, re.DOTALL)
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_loss.py").write_text(code)
    assert check[0] == "losslab" and main(check[1:]) == 0
    assert compare[:2] == ["losslab", "compare"]
    assert main([*compare[1:], "--seeds", "2", "--epochs", "1"]) == 0
    assert "against cross_entropy" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "index.html").is_file() and (tmp_path / "cmp" / "report.json").is_file()
