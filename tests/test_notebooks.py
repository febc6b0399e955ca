"""The example notebooks run top to bottom at smoke size, so they never rot; English and Chinese stay in step."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

from losslab.report import fonts

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra (pip install -e '.[dev]')")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: What each notebook must show when run: at least this many figures, and these phrases in its printed output.
EXPECTED = {
    "article-walkthrough": (4, ["no wrongly classified margin", "every margin below"]),
    "compare-your-own-loss": (4, ["generalized_ce: every margin below", "cross_entropy: no wrongly classified margin"]),
}


def test_every_notebook_is_listed_with_what_it_must_show():
    assert {p.name.rsplit(".", 2)[0] for p in NOTEBOOKS} == set(EXPECTED)


def test_every_notebook_has_english_and_chinese():
    names = {p.name for p in NOTEBOOKS}
    assert names, f"no notebooks in {EXAMPLES}"
    for name in names:
        stem, language, _ = name.rsplit(".", 2)
        assert language in ("en", "zh") and {f"{stem}.en.ipynb", f"{stem}.zh.ipynb"} <= names, name


def _code_tokens(source: str) -> list[str]:
    """The cell's code without comments and string contents (which are in the notebook's language)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith("%")]  # magics do not tokenize
    skip = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
    return [t.string for t in tokens if t.type not in skip]


@pytest.mark.parametrize("english", [p for p in NOTEBOOKS if p.name.endswith(".en.ipynb")], ids=lambda p: p.name)
def test_translations_run_the_same_code(english):
    chinese = english.with_name(english.name.replace(".en.", ".zh."))
    en, zh = nbformat.read(english, as_version=4), nbformat.read(chinese, as_version=4)
    assert [c.cell_type for c in en.cells] == [c.cell_type for c in zh.cells]
    for a, b in zip(en.cells, zh.cells):
        if a.cell_type == "code":
            assert _code_tokens(a.source) == _code_tokens(b.source), a.source
    zh_text = "\n".join(c.source for c in zh.cells if c.cell_type == "markdown")
    for term in ("交叉熵", "均方误差", "极大似然", "多项式分布", "伯努利分布", "梯度消失", "饱和"):
        assert term in zh_text, f"the Chinese notebook should use the article's term {term}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra (pip install -e '.[dev]')")
    if ".zh." in path.name and fonts.find_cjk_font("zh") is None:  # its figures are drawn with Chinese labels
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    monkeypatch.setenv("LOSSLAB_SMOKE", "1")  # seconds, not a minute
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback, on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures, phrases = EXPECTED[path.name.rsplit(".", 2)[0]]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= figures  # the figures were drawn
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    for phrase in phrases:
        assert phrase in text
