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


def test_a_plain_type_error_inside_a_command_is_a_bug_with_its_traceback(monkeypatch, capsys):
    """Only ValueError and BadInputType are bad input (one line, exit 2); a TypeError from a bug propagates."""
    from losslab.theory import ledger

    def broken(**_):
        return 1 + "1"  # a bug: TypeError

    monkeypatch.setattr(ledger, "verify_all", broken)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+: 'int' and 'str'"):
        main(["verify", "--trials", "1"])
    assert capsys.readouterr().err == ""


def test_input_of_the_wrong_type_is_bad_input(monkeypatch, capsys):
    from losslab.errors import BadInputType
    from losslab.theory import ledger

    def wrong_type(**_):
        raise BadInputType("counts must be a torch.Tensor, got list; wrap it with torch.as_tensor(counts)")

    monkeypatch.setattr(ledger, "verify_all", wrong_type)
    assert main(["verify", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "losslab verify: error: counts must be a torch.Tensor, got list; wrap it with torch.as_tensor(counts)\n"
    )


def test_a_bug_exits_1_with_a_traceback_from_the_command_line(tmp_path):
    script = tmp_path / "bug.py"
    script.write_text(
        "import sys\nfrom losslab import cli\nfrom losslab.theory import ledger\n"
        "ledger.verify_all = lambda **_: None + 1\nsys.exit(cli.main(['verify', '--trials', '1']))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert (
        done.returncode == 1
        and "Traceback" in done.stderr
        and done.stderr.rstrip().endswith("TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'")
    )


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
