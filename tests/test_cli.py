import subprocess
import sys

import pytest

from losslab.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "losslab.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_subcommands():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("verify", "plot", "run", "report", "demo"):
        assert name in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        (["verify", "--trials", "many"], "argument --trials: invalid int value: 'many'"),
        (["verify", "--bogus"], "unrecognized arguments: --bogus"),
        (["verify", "--trials", "0"], "--trials must be in [1, 100000], got 0"),
    ],
)
def test_bad_usage_prints_one_line_and_exits_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("losslab: error:")


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: losslab" in capsys.readouterr().out


def test_import_losslab_stays_free_of_torch_and_exports_the_plugin_api_lazily():
    code = (
        "import sys, losslab; assert 'torch' not in sys.modules; "
        "f = losslab.register_loss; assert 'torch' in sys.modules; "
        "print(sorted(n for n in ('register_loss', 'register_dataset', 'register_model', 'check_loss') if hasattr(losslab, n)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['check_loss', 'register_dataset', 'register_loss', 'register_model']"
    help_text = run_cli("--help").stdout
    assert "check-loss" in help_text and "list" in help_text
