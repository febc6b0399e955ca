"""check_loss and `losslab check-loss`: the battery on every built-in loss, a broken loss, bad input."""

import json
import textwrap

import pytest

from losslab import check_loss
from losslab.analysis.check import LossCheck
from losslab.cli import main
from losslab.core import LOSSES

# Computed, not guessed: (strictly proper through softmax/sigmoid, has a dead zone, convex in the logits).
EXPECTED = {
    "cross_entropy": (True, False, True),
    "binary_cross_entropy": (True, False, True),
    "mse": (True, True, False),
    "square_logits": (False, False, True),
    "focal": (False, False, False),
    "label_smoothing_cross_entropy": (False, False, True),
    "squentropy": (False, False, True),
}

BROKEN = """
import torch


def broken(z, y):
    # log(softmax(z)) is log(0) = -inf once a logit is far behind; 0 * -inf = NaN at +-1e4
    return -(y * torch.log(torch.softmax(z, dim=-1))).sum(dim=-1)


def broken_grad(z, y):
    return torch.softmax(z, dim=-1) - 2 * y  # wrong: the gradient is p - y


def tempered_ce(z, y, t=2.0):
    return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)


def batch_mean_centred(z, y):
    z = z - z.mean(dim=-2, keepdim=True)  # normalises over the batch: not one loss per example
    return -(y * torch.log_softmax(z, dim=-1)).sum(dim=-1)


def scalar(z, y):
    return -(y * torch.log_softmax(z, dim=-1)).sum()


def nan_everywhere(z, y):
    return torch.sqrt(-1 - z.square()).sum(dim=-1)
"""


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    return path


def test_every_built_in_loss_is_pinned():
    assert set(EXPECTED) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_built_in_losses_pass_every_check_with_their_computed_findings(name):
    result = check_loss(name)
    assert result.exit_code == 0 and all(r.status == "PASS" for r in result.rows if r.decides_exit)
    proper, dead, convex = EXPECTED[name]
    assert (result.row("proper").holds, result.row("dead-zone").holds, result.row("convex").holds) == (
        proper,
        dead,
        convex,
    )
    assert {r.status for r in result.rows if not r.decides_exit} == {"INFO"}
    gradients = [r for r in result.rows if r.check.startswith("gradient")]
    assert gradients and all(r.value < 1e-10 for r in gradients)  # closed forms agree with autograd
    if proper:
        assert result.row("proper").value < 1e-6
    else:
        assert result.row("proper").value > 0.05


def test_reference_numbers_of_the_findings():
    mse = check_loss("mse")
    assert "every margin below -9.26 is dead" in mse.row("dead-zone").detail  # the landscape's K = 10 value
    assert mse.row("convex").value < -0.17  # at least the margin path's -0.171
    assert check_loss("square_logits").row("convex").value == pytest.approx(2 / 3)  # (2/K) I for K = 3
    assert check_loss("cross_entropy").row("convex").value == pytest.approx(0, abs=1e-12)  # PSD, singular along 1
    smoothed = check_loss("label_smoothing_cross_entropy", params={"epsilon": 0.0})
    assert smoothed.row("proper").holds and smoothed.params == {"epsilon": 0.0}  # epsilon = 0 is cross-entropy


def test_a_broken_loss_fails_with_the_right_rows(plugin):
    result = check_loss(f"{plugin}:broken", grad=f"{plugin}:broken_grad")
    assert isinstance(result, LossCheck) and result.loss == "broken" and result.source == str(plugin)
    failed = {r.check for r in result.rows if r.status == "FAIL"}
    assert failed == {"finite-float32", "finite-float64", "gradient"}
    assert result.exit_code == 1
    assert result.row("finite-float64").value == 4  # NaN values at 4 of the 6 extreme rows
    assert "the closed form is wrong" in result.row("gradient").detail
    assert result.row("gradient").value == pytest.approx(1.0)  # |(p - 2y) - (p - y)| = y
    assert result.row("per-example").status == "PASS"
    # Without the wrong gradient only the log(0) remains, and autograd gives the gradient.
    alone = check_loss(f"{plugin}:broken")
    assert {r.check for r in alone.rows if r.status == "FAIL"} == {"finite-float32", "finite-float64"}
    assert alone.row("gradient").status == "INFO" and "autograd" in alone.row("gradient").detail


def test_a_batch_dependent_loss_fails_the_per_example_check(plugin):
    result = check_loss(f"{plugin}:batch_mean_centred")
    assert result.row("per-example").status == "FAIL" and result.exit_code == 1
    assert "depends on the other examples" in result.row("per-example").detail


def test_a_plugin_loss_with_parameters(plugin):
    result = check_loss(f"{plugin}:tempered_ce", params={"t": 0.5})
    assert result.params == {"t": 0.5} and result.exit_code == 0
    assert not result.row("proper").holds  # softmax(z / t) = q means softmax(z) != q
    with pytest.raises(ValueError, match=r"loss 'tempered_ce' got unknown parameter\(s\) \['gamma'\]"):
        check_loss(f"{plugin}:tempered_ce", params={"gamma": 1})


def test_check_loss_cli_table_json_and_exit_codes(plugin, capsys):
    assert main(["check-loss", "squentropy"]) == 0
    out = capsys.readouterr().out
    assert "check-loss squentropy" in out and "INFO (no)" in out and "exit code 0: all checks pass" in out
    assert main(["check-loss", f"{plugin}:broken", "--grad", f"{plugin}:broken_grad"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "exit code 1: failed: finite at logits +-1e4, float32" in out
    assert main(["check-loss", f"{plugin}:tempered_ce", "--param", "t=3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == {"t": 3} and data["exit_code"] == 0 and data["rows"][0]["check"] == "per-example"


@pytest.mark.parametrize(
    "args, message",
    [
        (["check-loss", "no_such_mod_q:f"], r"plugin module 'no_such_mod_q' not found"),
        (["check-loss", "{p}:nope"], r"plugin '.*my_losses.py' has no 'nope'; it defines: .*broken"),
        (
            ["check-loss", "{p}:scalar"],
            r"loss 'scalar': values\(z, y\) returned shape \[\] for logits of shape \[6, 4\]",
        ),
        (
            ["check-loss", "{p}:nan_everywhere"],
            r"loss 'nan_everywhere': values\(z, y\) returned 6 non-finite value\(s\) \(nan\)",
        ),
        (["check-loss", "hinge"], r"unknown loss 'hinge'; valid losses: binary_cross_entropy"),
        (["check-loss", "focal", "--param", "gamma"], r"--param must be NAME=VALUE, got 'gamma'"),
        (["check-loss", "focal", "--param", "gamma=-1"], r"gamma must be a finite number >= 0"),
    ],
)
def test_check_loss_bad_input_is_one_line_and_exit_2(plugin, capsys, args, message):
    args = [a.replace("{p}", str(plugin)) for a in args]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert __import__("re").search(message, captured.err), captured.err


def test_check_loss_table_uses_the_terminal_width(capsys, monkeypatch):
    # Piped (no terminal): wide enough that no row's text breaks; $COLUMNS (what a terminal sets) is obeyed.
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["check-loss", "mse"]) == 0
    out = capsys.readouterr().out
    assert any("no wrongly classified margin" in line or "every margin below" in line for line in out.splitlines())
    assert any(len(line) > 120 for line in out.splitlines())
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["check-loss", "mse"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 100
