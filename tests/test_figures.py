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
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["plot", "sigmoid", "--format", "jpg"]) == 2
    assert "invalid choice: 'jpg'" in capsys.readouterr().err
