import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from losslab.cli import main
from losslab.report import figures


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_every_figure_renders_with_labelled_axes(name):
    fig = figures.FIGURES[name].make()
    for ax in [a for a in fig.axes if a.get_label() != "<colorbar>"]:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    plt.close(fig)


def test_figures_draw_the_expected_lines():
    fig = figures.multiclass_gradient_norm()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:5] == [
        figures.LOSS_LABELS[n] for n in figures.MULTICLASS_LOSSES
    ]
    assert len(fig.axes[0].get_lines()) == 6  # five losses + the 1e-3 reference
    plt.close(fig)
    fig = figures.binary_gradient_curves()
    assert len(fig.axes) == 2 and all(len(ax.get_lines()) == 3 for ax in fig.axes)
    plt.close(fig)
    fig = figures.logit_plane_heatmap()
    assert len(fig.axes[0].get_images()) == 1 and len(fig.axes[1].get_images()) == 1
    plt.close(fig)


def test_plot_cli_writes_lists_and_rejects(tmp_path, capsys):
    assert main(["plot", "sigmoid", "curvature", "--out", str(tmp_path), "--format", "svg"]) == 0
    assert (tmp_path / "sigmoid.svg").read_text().startswith("<?xml")
    assert (tmp_path / "curvature.svg").exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["plot", "--list"]) == 0
    assert "logit-plane" in capsys.readouterr().out
    assert main(["plot", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown figure 'nope'; valid figures: sigmoid" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["plot", "sigmoid", "--out", str(blocker)]) == 2
    assert f"figures folder (--out) {blocker} is a file; give a folder" in capsys.readouterr().err
    assert main(["plot", "sigmoid", "--format", "jpg"]) == 2
    assert "invalid choice: 'jpg'" in capsys.readouterr().err


def test_plot_draws_a_user_loss_beside_the_built_ins(tmp_path, capsys):
    plugin = tmp_path / "my_losses.py"
    plugin.write_text(
        "import torch\n\n\ndef tempered_ce(z, y, t=2.0):\n"
        "    return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)\n\n\n"
        "def scalar(z, y):\n    return (z - y).square().mean()\n",
        encoding="utf-8",
    )
    fig = figures.multiclass_gradient_norm(losses=["squentropy", figures.prepare_losses([f"{plugin}:tempered_ce"])[0]])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[5:7] == ["squentropy", "tempered_ce (yours)"] and len(fig.axes[0].get_lines()) == 8
    plt.close(fig)
    fig = figures.logit_plane_heatmap(losses=["squentropy"])
    assert [ax.get_title() for ax in fig.axes[:3]] == [figures.LOSS_LABELS["mse"], "cross-entropy", "squentropy"]
    plt.close(fig)
    out = tmp_path / "figs"
    assert main(["plot", "--loss", f"{plugin}:tempered_ce", "--loss", "squentropy", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gradient-norm.png", "logit-plane.png", "loss-margin.png"]
    capsys.readouterr()
    # Bad input: one line, exit 2, nothing written.
    for args, message in [
        (["--loss", f"{plugin}:scalar"], "loss 'scalar': values(z, y) returned shape [] for logits of shape [2, 3]"),
        (["--loss", f"{plugin}:missing"], "has no 'missing'; it defines: scalar, tempered_ce"),
        (["--loss", "binary_cross_entropy"], "loss 'binary_cross_entropy' has only a one-logit (sigmoid) form"),
        (
            ["sigmoid", "--loss", "squentropy"],
            "--loss is drawn only in the figures gradient-norm, logit-plane, loss-margin",
        ),
    ]:
        assert main(["plot", *args, "--out", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "none").exists()


BACKEND_PROBE = """
import importlib, pkgutil, sys
import matplotlib
matplotlib.use("svg")  # a notebook user's choice, standing in for inline or a GUI backend
import losslab.report
modules = [m.name for m in pkgutil.walk_packages(losslab.report.__path__, "losslab.report.")]
for name in [*modules, "losslab.explore", "losslab.demo", "losslab.cli"]:
    importlib.import_module(name)
from losslab.report.figures import FIGURES, write_figures
FIGURES["sigmoid"].make()
write_figures(["sigmoid"], sys.argv[1])
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules, len(modules))
"""


def test_importing_and_drawing_leave_the_users_matplotlib_backend_alone(tmp_path):
    """Figures are drawn with matplotlib's object-oriented API: no module selects a backend or needs pyplot."""
    done = subprocess.run(
        [sys.executable, "-c", BACKEND_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    backend, pyplot, count = done.stdout.split()
    assert backend == "svg" and pyplot == "False" and int(count) >= 6
    assert (tmp_path / "sigmoid.png").is_file()
