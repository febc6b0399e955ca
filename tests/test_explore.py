"""The explorer page: self-contained, its numbers equal losslab's, its whole state in the URL.

The browser tests open the page from file:// in headless Chromium (selenium with Debian's chromium and
chromedriver) and skip cleanly where either is missing. They move the page's own controls (setting a
value and dispatching the input event a user's drag sends, and once with the keyboard), read the
numbers the page displays (each number's element carries its exact double in ``data-value``; its text
is that double rounded to 4 digits) and compare them with losslab's float64 Python.

Tolerance of the gradient explorer: |page - python| <= 1e-9 |python| + 4 K eps (eps = 2.2e-16). The
page evaluates the same formulas in the same order as losses.py, but torch adds the K exponentials of a
softmax in a different order (vectorised) and its exp may differ from the browser's by an ulp, so a
softmax probability or log-probability near 1 carries an absolute rounding error of a few K ulp of 1,
in Python as in the page. Where the exact value is tiny (log p_true = -1.7e-8 at m = 20, K = 10; or
squared error's rival-class gradient p_1 (p_1 - p.(p - y)), which cancels to rounding noise of ~1e-16
beyond m = -30) that absolute error exceeds 1e-9 relative: both sides are then equally (in)accurate,
and the absolute term, at most 9e-15 for K = 10, allows exactly that much. Everything else agrees to
1e-9 relative.
"""

from __future__ import annotations

import html as html_module
import json
import math
import re
import shutil
import time
from pathlib import Path

import jinja2
import numpy as np
import pytest
import torch

import losslab.i18n as I
from losslab.analysis import landscape
from losslab.cli import main
from losslab.core import LOSSES
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.experiments.store import load_results
from losslab.explore import build_explorer, measured_data, write_explorer
from losslab.report.html import _template_functions

EXPLORE_DIR = Path(__file__).resolve().parents[1] / "src" / "losslab" / "explore"
EPS = float(np.finfo(np.float64).eps)
SIGMOID_ROWS = {"binary_cross_entropy": "binary_cross_entropy", "sigmoid_mse": "mse"}
# The page's rows (key, loss, model) as written in explorer.js.
PAGE_ROWS = re.findall(
    r'\{ key: "(\w+)", loss: "(\w+)", model: "(\w+)"', (EXPLORE_DIR / "explorer.js").read_text(encoding="utf-8")
)


def comparable_rows(K: int) -> set[str]:
    """The page's rows shown at K that have a Python reference: losslab's loss, or squentropy's definition."""
    return {
        key
        for key, loss, model in PAGE_ROWS
        if (loss in LOSSES or loss == "squentropy") and (model == "softmax" or K == 2)
    }


def squentropy_reference(z: torch.Tensor, K: int):
    """Hui, Belkin & Wright (2023) with the true class 0: cross-entropy + (1/(K-1)) sum_{i != 0} z_i^2.

    Used until losslab's own squentropy (helper C's branch) is merged; then LOSSES["squentropy"] is used.
    """
    y = torch.zeros(1, dtype=torch.long)
    incorrect = torch.ones(K, dtype=torch.float64)
    incorrect[0] = 0.0
    value = LOSSES["cross_entropy"](z, y, reduction="none")[0] + (incorrect * z[0].square()).sum() / (K - 1)
    grad = LOSSES["cross_entropy"].gradient(z, y, reduction="none")[0] + 2.0 * incorrect * z[0] / (K - 1)
    return value.item(), grad.norm().item(), grad.numpy()


@pytest.fixture(scope="module")
def saturation(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("explore") / "saturation"
    run_spec(load_spec("saturation"), folder, size="smoke", log=lambda *_: None)
    return folder


# ---------------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------------


def test_page_is_self_contained_and_inlines_its_sources():
    html = build_explorer()
    assert re.findall(r'(?:src|href)="(?!#)([^"]*)"', html) == []  # nothing loaded from anywhere
    assert "default-src 'none'" in html  # and the browser is told to refuse any load
    for name in ("explorer.js", "explorer.css"):
        source = (EXPLORE_DIR / name).read_text(encoding="utf-8")
        assert source.strip() in html, f"{name} is not inlined verbatim"
    assert "@DATA@" not in html and "/*@JS@*/" not in html
    data = json.loads(re.search(r'<script type="application/json" id="losslab-data">(.*?)</script>', html).group(1))
    assert data["measured"] is None
    assert "losslab run saturation --smoke --out losslab-results/saturation" in html
    assert len(html) < 120_000  # small: the page is our own code, no library


def test_measured_data_is_the_rows_mean_min_and_max_over_seeds(saturation):
    data = measured_data(saturation)
    _, rows = load_results(saturation)
    assert data["spec"] == "saturation" and data["size"] == "smoke"
    assert data["command"] == "losslab run saturation --smoke"
    assert [c["cell"] for c in data["cells"]] == list(dict.fromkeys(rows["cell"]))
    checked = 0
    for cell in data["cells"]:
        cell_rows = rows[rows["cell"] == cell["cell"]]
        assert cell["steps"] == sorted(cell_rows["step"].unique().tolist())
        assert {(s["loss"], s["init_scale"]) for s in cell["series"]} == set(
            zip(cell_rows["loss"], cell_rows["init_scale"].astype(float))
        )
        for s in cell["series"]:
            group = cell_rows[(cell_rows["loss"] == s["loss"]) & (cell_rows["init_scale"] == s["init_scale"])]
            assert s["seeds"] == group["seed"].nunique() == 2
            for i, step in enumerate(cell["steps"]):
                at = group[group["step"] == step]
                for key, column, stat in (
                    ("acc", "test_accuracy", "mean"),
                    ("acc_lo", "test_accuracy", "min"),
                    ("acc_hi", "test_accuracy", "max"),
                    ("grad", "grad_norm", "mean"),
                    ("grad_hi", "grad_norm", "max"),
                    ("dead", "dead_fraction", "mean"),
                ):
                    # Six significant digits: the embedded data is rounded to keep the page small.
                    assert s[key][i] == pytest.approx(getattr(at[column], stat)(), rel=1e-5, abs=1e-12)
                    checked += 1
    assert checked > 100


def test_cli_writes_the_page_and_explains_a_missing_results_folder(tmp_path, capsys, saturation):
    assert main(["explore", "--out", str(tmp_path / "plain")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "plain" / "explorer.html").is_file() and "no measurements embedded" in out
    assert main(["explore", "--out", str(tmp_path / "page"), "--results", str(saturation)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["explore", "--out", str(tmp_path / "x"), "--results", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(r"results folder .*missing does not exist; create it with 'losslab run saturation --smoke", err)
    (tmp_path / "empty").mkdir()
    assert main(["explore", "--out", str(tmp_path / "x"), "--results", str(tmp_path / "empty")]) == 2
    assert "is not a results folder (no manifest.json)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # nothing written when the input is bad


def test_the_page_is_not_built_where_it_cannot_be_written(tmp_path, capsys):
    """The explorer checks its folder like every writer (the results store's check_writable), before any work."""
    (tmp_path / "file.txt").write_text("x")
    assert main(["explore", "--out", str(tmp_path / "file.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"explorer folder (--out) {tmp_path / 'file.txt'} is a file; give a folder" in err
    assert main(["explore", "--out", str(tmp_path / "file.txt" / "page")]) == 2
    assert "cannot create explorer folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
ENGLISH_TABS = ["1. Gradient explorer", "2. Nielsen's neuron", "3. Measured training"]
CHINESE_TABS = ["1. 梯度探索", "2. Nielsen 的神经元", "3. 实测训练"]


def translated_english() -> set[str]:
    """English pieces of the explorer's messages that the Chinese catalogue translates: the text between tags and
    placeholders, two or more words and 12 or more characters, found in no Chinese message (so names such as
    'Neural Networks and Deep Learning', kept in Chinese, do not count)."""
    zh = I.messages("zh")
    zh_text = html_module.unescape("".join(zh.values()))
    pieces = set()
    for key, english in I.messages("en").items():
        if not key.startswith(("explore.", "figure.loss.")) or zh[key] == english:
            continue
        for piece in re.split(r"<[^>]+>|\{\w+\}", english):
            piece = html_module.unescape(piece).strip(" .,:;")
            if len(re.findall(r"[A-Za-z]{2,}", piece)) >= 2 and len(piece) >= 12 and piece not in zh_text:
                pieces.add(piece)
    return pieces


def page_text(html: str) -> str:
    """The words of a page as written (before any script runs): no code, no tags, entities decoded."""
    html = re.sub(r"<script\b.*?</script>|<style>.*?</style>", " ", html, flags=re.S)
    attributes = " ".join(re.findall(r'aria-label="([^"]*)"', html))
    return html_module.unescape(re.sub(r"<[^>]+>", " ", html) + " " + attributes)


def test_the_page_is_written_in_the_language_asked_for(tmp_path, saturation):
    english, chinese = build_explorer(saturation), build_explorer(saturation, lang="zh")
    assert english.startswith('<!DOCTYPE html>\n<html lang="en">') and '<html lang="zh-CN">' in chinese
    assert "{{" not in page_text(english) + page_text(chinese)  # every message of the template filled in
    for tab in ENGLISH_TABS:  # (the script's comments are English, and the same in both pages)
        assert tab in page_text(english) and tab not in page_text(chinese)
    assert all(tab in page_text(chinese) for tab in CHINESE_TABS)
    # The same code and the same data in both: only the words differ.
    for name in ("explorer.js", "explorer.css"):
        source = (EXPLORE_DIR / name).read_text(encoding="utf-8").strip()
        assert source in english and source in chinese
    data = [json.loads(re.search(r'id="losslab-data">(.*?)</script>', page).group(1)) for page in (english, chinese)]
    assert data[0]["measured"] == data[1]["measured"] and (data[0]["lang"], data[1]["lang"]) == ("en", "zh")
    assert data[1]["messages"]["explore.tab.gradient"] == "1. 梯度探索"
    assert data[1]["messages"]["figure.loss.cross_entropy"] == I.messages("zh")["figure.loss.cross_entropy"]
    assert not any(key.endswith("_html") for key in data[1]["messages"])  # HTML stays in the template
    text = page_text(chinese)
    leftovers = sorted(piece for piece in translated_english() if piece in text)
    assert len(translated_english()) > 60 and leftovers == []
    english_text = page_text(english)
    assert "Squared error on a sigmoid or softmax output keeps the link function's derivative" in english_text
    assert "dead zone (gradient < 10 −3 , m < 0)" in " ".join(english_text.split())
    # Without measurements, the Chinese page says how to get them, with the commands as they are typed.
    empty = page_text(build_explorer(lang="zh"))
    assert "本页没有嵌入实测数据" in empty and "losslab explore --results losslab-results/saturation" in empty
    with pytest.raises(ValueError, match="lang must be one of en, zh, got 'fr'"):
        build_explorer(lang="fr")


def test_cli_explore_follows_lang_and_the_locale(tmp_path, capsys, monkeypatch):
    from losslab.report import fonts

    monkeypatch.setattr(fonts, "find_cjk_font", lambda lang="zh": None)  # the browser draws the text: no font needed
    for variable in I.LOCALE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert main(["explore", "--out", str(tmp_path / "zh"), "--lang", "zh"]) == 0
    chinese = (tmp_path / "zh" / "explorer.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in chinese and "<title>losslab 探索页面：为什么分类用交叉熵训练</title>" in chinese
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["explore", "--out", str(tmp_path / "locale")]) == 0
    assert (tmp_path / "locale" / "explorer.html").read_text(encoding="utf-8").count("1. 梯度探索") == 1
    assert main(["explore", "--out", str(tmp_path / "en"), "--lang", "en"]) == 0
    assert '<html lang="en">' in (tmp_path / "en" / "explorer.html").read_text(encoding="utf-8")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert main(["explore", "--out", str(tmp_path / "c")]) == 0
    assert "1. Gradient explorer" in (tmp_path / "c" / "explorer.html").read_text(encoding="utf-8")
    capsys.readouterr()


def test_page_data_cannot_close_its_script_element(tmp_path, saturation):
    target = tmp_path / "odd</script><b>name"
    shutil.copytree(saturation, target)
    html = build_explorer(target)
    assert html.count("</script>") == 2  # the data element's and the code's, nothing from the folder name
    assert "odd\\u003c/script>\\u003cb>name" in html


def test_report_template_links_the_explorer_only_when_told():
    template = Path(__file__).resolve().parents[1] / "src" / "losslab" / "report" / "templates" / "report.html"
    lines = [line for line in template.read_text(encoding="utf-8").splitlines() if "explorer_href" in line]
    assert len(lines) == 1
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(_template_functions("en"))  # t(), link(): how the template writes its catalogue messages
    line = env.from_string(lines[0])
    assert 'href="explorer.html"' in line.render(explorer_href="explorer.html")
    assert "href" not in line.render()


def _builtin_losses() -> set[str]:
    return {
        name
        for name, loss in LOSSES.items()
        if getattr(loss.values or loss.binary_values, "__module__", "") == "losslab.core.losses"
    }


def test_page_covers_every_builtin_loss():
    softmax = {loss for _, loss, model in PAGE_ROWS if model == "softmax"}
    sigmoid = {loss for _, loss, model in PAGE_ROWS if model == "sigmoid"}
    builtin = _builtin_losses()
    assert {"cross_entropy", "mse", "binary_cross_entropy"} <= builtin
    missing = sorted({n for n in builtin if LOSSES[n].accepts_multiclass} - softmax)
    missing += sorted(
        {f"{n} (one logit)" for n in builtin if LOSSES[n].accepts_binary} - {f"{n} (one logit)" for n in sigmoid}
    )
    assert not missing, f"port these built-in losses to src/losslab/explore/explorer.js: {missing}"


# ---------------------------------------------------------------------------------------------
# In headless Chromium
# ---------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _chromium(), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: selenium then never runs Selenium Manager (which would go online).
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory, saturation) -> str:
    return write_explorer(tmp_path_factory.mktemp("page"), results=saturation).as_uri()


@pytest.fixture(scope="module")
def page_zh(tmp_path_factory, saturation) -> str:
    return write_explorer(tmp_path_factory.mktemp("page-zh"), results=saturation, lang="zh").as_uri()


def open_page(browser, url: str) -> None:
    browser.get("about:blank")  # a real load even where only the fragment differs from the last URL
    browser.get(url)
    deadline = time.monotonic() + 20
    while browser.execute_script("return document.body && document.body.dataset.ready") != "true":
        assert time.monotonic() < deadline, "the page did not finish loading"
        time.sleep(0.05)


def set_input(browser, element_id: str, value) -> None:
    """Set a control as a user's drag or typing does: change its value, then fire the input event."""
    browser.execute_script(
        "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('input', {bubbles: true}));",
        element_id,
        str(value),
    )


def current_hash(browser) -> str:
    """The URL fragment once the page has written its latest state (it rate-limits URL updates)."""
    return browser.execute_script("window.losslabFlushHash(); return location.hash")


def console_problems(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


READ_GRADIENT_TABLE = """
return [...document.querySelectorAll('#gradient-table tbody tr')].filter(tr => !tr.hidden).map(tr => ({
  row: tr.dataset.row, model: tr.querySelector('.model').textContent,
  value: tr.querySelector('.value').dataset.value, valueText: tr.querySelector('.value').textContent,
  norm: tr.querySelector('.norm').dataset.value, normText: tr.querySelector('.norm').textContent,
  grad: tr.querySelector('.grad').dataset.value, threshold: tr.querySelector('.dead').dataset.threshold,
  deadText: tr.querySelector('.dead').textContent}));
"""


def shown_number(text: str) -> float:
    """The page's rounded text ('−6.501×10⁻⁵') as a float."""
    supers = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
    text = text.replace("−", "-")
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        return float(mantissa) * 10.0 ** int(exponent.translate(supers))
    return float(text)


def python_row(row: str, m: float, K: int, params: dict):
    """losslab's float64 value, gradient norm and gradient vector for one row of the page's table."""
    if row in SIGMOID_ROWS:
        name = SIGMOID_ROWS[row]
        grad = landscape.binary_gradient(name, [m], 1)
        return landscape.binary_loss(name, [m], 1)[0], abs(grad[0]), grad
    z = landscape.margin_logits([m], K)
    if row not in LOSSES:
        return squentropy_reference(z, K)
    p = {k: v for k, v in params.items() if k in LOSSES[row].defaults}
    grad = LOSSES[row].gradient(z, torch.zeros(1, dtype=torch.long), reduction="none", **p)[0].numpy()
    value = landscape.loss_vs_margin(row, [m], K, **p)[0]
    return value, landscape.gradient_norm_vs_margin(row, [m], K, **p)[0], grad


def assert_close(page_value: float, python_value: float, K: int, what: str) -> None:
    tolerance = 1e-9 * abs(python_value) + 4 * K * EPS
    assert abs(page_value - python_value) <= tolerance, f"{what}: page {page_value!r}, python {python_value!r}"


PARAMS = [
    {"gamma": 2.0, "epsilon": 0.1, "k": 1.0, "M": 1.0},
    {"gamma": 0.0, "epsilon": 0.0, "k": 15.0, "M": 30.0},
    {"gamma": 0.5, "epsilon": 0.6, "k": 2.5, "M": 4.0},
    {"gamma": 5.0, "epsilon": 0.95, "k": 0.5, "M": 0.5},
]
MARGINS = [-50.0, -37.3, -20.05, -8.2, -3.0, -0.4, 0.0, 0.05, 1.0, 2.7, 9.9, 23.4, 50.0]


def test_gradient_explorer_matches_losslab(browser, page):
    open_page(browser, page + "#tab=gradient")
    compared = 0
    for K in (2, 3, 10):
        for params in PARAMS:
            set_input(browser, "K-num", K)
            for key, value in params.items():
                set_input(browser, f"{key}-num", repr(value))
            for m in MARGINS:
                set_input(browser, "margin-num", repr(m))
                table = browser.execute_script(READ_GRADIENT_TABLE)
                assert {r["row"] for r in table} >= comparable_rows(K)
                table = [r for r in table if r["row"] in comparable_rows(K)]
                for r in table:
                    value, norm, grad = python_row(r["row"], m, K, params)
                    what = f"{r['row']} at m={m}, K={K}, {params}"
                    assert_close(float(r["value"]), value, K, f"value of {what}")
                    assert_close(float(r["norm"]), norm, K, f"gradient norm of {what}")
                    page_grad = json.loads(r["grad"])
                    assert len(page_grad) == len(grad)
                    for i, (a, b) in enumerate(zip(page_grad, grad)):
                        assert_close(a, float(b), K, f"dL/dz_{i} of {what}")
                    # What a student reads is that number rounded to 4 digits.
                    assert shown_number(r["valueText"]) == pytest.approx(float(r["value"]), rel=6e-4)
                    assert shown_number(r["normText"]) == pytest.approx(float(r["norm"]), rel=6e-4)
                    compared += 1
    rows_per_state = sum(len(comparable_rows(K)) for K in (2, 3, 10))
    assert rows_per_state >= 17 and compared == rows_per_state * len(PARAMS) * len(MARGINS)
    assert console_problems(browser) == []


def test_keyboard_moves_the_margin_slider(browser, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, page + "#tab=gradient&margin=-3&K=3")
    browser.find_element(By.ID, "margin-range").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "margin-num").get_attribute("value") == "-2.8"
    assert "margin=-2.8&" in current_hash(browser)
    mse = next(r for r in browser.execute_script(READ_GRADIENT_TABLE) if r["row"] == "mse")
    assert_close(float(mse["norm"]), python_row("mse", -2.8, 3, PARAMS[0])[1], 3, "mse after two key presses")


def test_dead_zones_match_landscape(browser, page):
    for K in (2, 3, 10):
        open_page(browser, page + f"#tab=gradient&K={K}&focus=mse&view=50")
        table = {r["row"]: r for r in browser.execute_script(READ_GRADIENT_TABLE) if r["row"] in comparable_rows(K)}
        for row, r in table.items():
            name = SIGMOID_ROWS.get(row, row)
            if name not in LOSSES:
                assert r["threshold"] == "", row  # squentropy's gradient grows with |z|: no dead zone
                continue
            zone = landscape.dead_zone(
                name,
                num_classes=None if row in SIGMOID_ROWS else K,
                **{k: v for k, v in PARAMS[0].items() if k in LOSSES[name].defaults},
            )
            if zone.threshold is None:
                assert r["threshold"] == "" and r["deadText"] == "none in [−50, 0)", row
            else:
                assert float(r["threshold"]) == pytest.approx(zone.threshold, abs=1e-9), (row, K)
        assert table["mse"]["threshold"] != ""  # squared error on probabilities has a dead zone at every K
        bands = browser.execute_script(
            "return [...document.querySelectorAll('#chart-grad rect.dead-band')]"
            ".map(r => [Number(r.dataset.from), Number(r.dataset.to)])"
        )
        assert bands == [[-50.0, float(table["mse"]["threshold"])]]
    assert console_problems(browser) == []


FRAGMENT = (
    "tab=neuron&margin=-7.5&K=10&gamma=0.5&epsilon=0.2&k=2&M=3&focus=focal"
    "&hide=square_logits,label_smoothing_cross_entropy&view=50&vscale=lin&w=0.6&b=-1.25&eta=0.3"
    "&epochs=400&epoch=120&cell=mlp-digits&step=30&hidescales=100&bands=0"
)


def test_url_fragment_round_trips(browser, page):
    from selenium.webdriver.common.by import By

    def value(element_id):
        return browser.find_element(By.ID, element_id).get_attribute("value")

    open_page(browser, page + "#" + FRAGMENT)
    assert current_hash(browser) == "#" + FRAGMENT  # read, and written back unchanged
    assert browser.find_element(By.ID, "panel-neuron").is_displayed()
    assert not browser.find_element(By.ID, "panel-gradient").is_displayed()
    assert [value(i) for i in ("w-num", "b-num", "eta-num", "epochs-num", "epoch-num")] == [
        "0.6",
        "-1.25",
        "0.3",
        "400",
        "120",
    ]

    browser.find_element(By.ID, "tab-gradient").click()
    assert [value(i) for i in ("margin-num", "K-num", "gamma-num", "epsilon-num", "k-num", "M-num")] == [
        "-7.5",
        "10",
        "0.5",
        "0.2",
        "2",
        "3",
    ]
    assert value("focus") == "focal" and value("view") == "50" and value("vscale") == "lin"
    drawn = browser.execute_script("return [...document.querySelectorAll('#chart-grad path')].map(p => p.dataset.key)")
    assert set(drawn) == comparable_rows(10) - {"square_logits", "label_smoothing_cross_entropy"}
    assert current_hash(browser) == "#" + FRAGMENT.replace("tab=neuron", "tab=gradient")

    browser.find_element(By.ID, "tab-measured").click()
    assert browser.find_element(By.ID, "step-out").get_attribute("data-value") == "30"
    assert value("cell") == "mlp-digits"
    scales = browser.execute_script(
        "return [...document.querySelectorAll('#measured-table tbody tr')].map(r => r.dataset.scale)"
    )
    assert scales and set(scales) == {"1"}  # scale 100 hidden by the link
    assert browser.execute_script("return document.querySelectorAll('#chart-acc polygon').length") == 0  # no bands
    browser.find_element(By.ID, "bands").click()
    assert browser.execute_script("return document.querySelectorAll('#chart-acc polygon').length") == 2
    assert "&bands=1" in current_hash(browser)

    set_input(browser, "step-range", 0)
    assert "&step=0&" in current_hash(browser)

    # Pasting another link into the same tab: the page follows the fragment (hashchange).
    browser.execute_script("location.hash = '#margin=2&K=4'")
    time.sleep(0.2)
    assert value("margin-num") == "2" and value("K-num") == "4" and value("gamma-num") == "2"
    assert browser.find_element(By.ID, "panel-gradient").is_displayed()

    # A bad link: limits and defaults are used, and the page says what it ignored.
    open_page(browser, page + "#K=1000&margin=abc&bogus=1&hide=mse,nonsense")
    notice = browser.find_element(By.ID, "notice")
    assert notice.is_displayed()
    for part in ("K=1000", "margin=abc", "bogus", "hide=mse,nonsense"):
        assert part in notice.text
    assert value("K-num") == "100" and value("margin-num") == "-4"
    assert console_problems(browser) == []


def nielsen(w: float, b: float, eta: float, epochs: int, loss: str) -> list[tuple[float, float, float, float]]:
    """Nielsen's single neuron in plain float64 Python: x = 1, y = 0; (w, b, a, cost) before each step."""
    x, y = 1.0, 0.0

    def sigmoid(v):
        return 1.0 / (1.0 + math.exp(-v))

    def log_sigmoid(v):
        return min(v, 0.0) - math.log1p(math.exp(-abs(v)))

    history = []
    for _ in range(epochs + 1):
        z = w * x + b
        a = sigmoid(z)
        if loss == "mse":
            cost, delta = (a - y) * (a - y) / 2, (a - y) * (sigmoid(z) * sigmoid(-z))
        else:
            cost, delta = -(y * log_sigmoid(z) + (1 - y) * log_sigmoid(-z)), a - y
        history.append((w, b, a, cost))
        w, b = w - eta * delta * x, b - eta * delta
    return history


READ_NEURON = """
return Object.fromEntries([...document.querySelectorAll('#neuron-table tbody tr')].map(tr => [tr.dataset.run,
  {epoch: Number(tr.querySelector('.epoch').dataset.value), w: Number(tr.querySelector('.w').dataset.value),
   b: Number(tr.querySelector('.b').dataset.value), a: Number(tr.querySelector('.a').dataset.value),
   cost: Number(tr.querySelector('.cost').dataset.value), half: tr.querySelector('.half').textContent}]));
"""


@pytest.mark.parametrize("w, b, eta, epochs", [(0.6, 0.6, 0.15, 300), (2.0, 2.0, 0.15, 300), (-1.3, 3.1, 0.7, 500)])
def test_neuron_trains_like_python(browser, page, w, b, eta, epochs):
    open_page(browser, page + f"#tab=neuron&w={w}&b={b}&eta={eta}&epochs={epochs}&epoch={epochs}")
    runs = {"mse": nielsen(w, b, eta, epochs, "mse"), "ce": nielsen(w, b, eta, epochs, "ce")}
    for epoch in (epochs, 0, 1, 37, 150):
        set_input(browser, "epoch-num", epoch)
        shown = browser.execute_script(READ_NEURON)
        for run, history in runs.items():
            assert shown[run]["epoch"] == epoch
            for i, field in enumerate(("w", "b", "a", "cost")):
                assert shown[run][field] == pytest.approx(history[epoch][i], rel=1e-12, abs=1e-15), (run, field, epoch)
    firsts = {run: next((t for t, h in enumerate(history) if h[2] < 0.5), None) for run, history in runs.items()}
    for run, first in firsts.items():
        assert shown[run]["half"] == (str(first) if first is not None else f"not within {epochs}")
    if (w, b) == (2.0, 2.0):  # Nielsen's slow start: the quadratic cost needs >10x the epochs
        assert firsts["mse"] > 10 * firsts["ce"]
    assert console_problems(browser) == []


def test_neuron_presets_and_play(browser, page):
    from selenium.webdriver.common.by import By

    open_page(browser, page + "#tab=neuron&w=-3&b=1&eta=1&epochs=50&epoch=10")
    browser.find_element(By.CSS_SELECTOR, "button.preset[data-w='0.6']").click()
    assert "w=0.6&b=0.6&eta=0.15&epochs=300&epoch=300" in current_hash(browser)
    set_input(browser, "epochs-num", 60)
    browser.find_element(By.ID, "play").click()
    time.sleep(0.5)
    assert 0 <= browser.execute_script(READ_NEURON)["ce"]["epoch"] < 60  # it replays from the start ...
    deadline = time.monotonic() + 15
    while browser.execute_script(READ_NEURON)["ce"]["epoch"] != 60:  # ... to the last epoch
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert browser.execute_script(READ_NEURON)["ce"]["cost"] == pytest.approx(nielsen(0.6, 0.6, 0.15, 60, "ce")[60][3])


READ_MEASURED = """
return {step: Number(document.getElementById('step-out').dataset.value),
  rows: [...document.querySelectorAll('#measured-table tbody tr')].map(tr => ({
    loss: tr.dataset.loss, scale: Number(tr.dataset.scale), acc: Number(tr.querySelector('.acc').dataset.value),
    grad: Number(tr.querySelector('.grad').dataset.value), dead: Number(tr.querySelector('.dead').dataset.value)}))};
"""


def test_scrubber_shows_the_measured_rows(browser, page, saturation):
    _, rows = load_results(saturation)
    for cell in ("binary-digits", "mlp-digits"):
        open_page(browser, page + f"#tab=measured&cell={cell}")
        cell_rows = rows[rows["cell"] == cell]
        steps = sorted(cell_rows["step"].unique())
        assert browser.execute_script(READ_MEASURED)["step"] == steps[-1]  # opens at the last evaluation
        for index in (0, 1, len(steps) - 1):
            set_input(browser, "step-range", index)
            shown = browser.execute_script(READ_MEASURED)
            assert shown["step"] == steps[index]
            assert len(shown["rows"]) == 4  # 2 losses x 2 initial scales
            for r in shown["rows"]:
                at = cell_rows[
                    (cell_rows["loss"] == r["loss"])
                    & (cell_rows["init_scale"] == r["scale"])
                    & (cell_rows["step"] == steps[index])
                ]
                assert r["acc"] == pytest.approx(at["test_accuracy"].mean(), rel=1e-5)
                assert r["grad"] == pytest.approx(at["grad_norm"].mean(), rel=1e-5)
                assert r["dead"] == pytest.approx(at["dead_fraction"].mean(), rel=1e-5, abs=1e-12)
    assert console_problems(browser) == []


RATES_SPEC = """
name = "rates"
[train]
epochs = 2
[[grid]]
label = "digits"
dataset = "digits"
model = "linear"
losses = ["cross_entropy", "mse"]
lrs = [0.03, 0.1, 0.3]
seeds = 2
target_accuracy = 0.9
"""

READ_STYLES = """
const chart = document.getElementById('chart-acc');
const clip = chart.querySelector('clipPath rect');
const right = Number(clip.getAttribute('x')) + Number(clip.getAttribute('width'));
return {
  lines: [...chart.querySelectorAll('path')].map(p =>
    [p.getAttribute('stroke'), p.getAttribute('stroke-width'), p.getAttribute('stroke-dasharray')].join('|')),
  labels: [...chart.querySelectorAll('text.band-label')].map(t => Number(t.getAttribute('x')) - right),
  legend: [...document.querySelectorAll('#measured-legend label')].map(l => l.textContent),
};
"""


def test_each_measured_rate_has_its_own_style_and_labels_stay_off_the_curves(browser, tmp_path):
    (tmp_path / "rates.toml").write_text(RATES_SPEC)
    run_spec(load_spec(tmp_path / "rates.toml"), tmp_path / "results", log=lambda *_: None)
    url = write_explorer(tmp_path / "page", results=tmp_path / "results").as_uri()
    open_page(browser, url + "#tab=measured&cell=digits")
    shown = browser.execute_script(READ_STYLES)
    assert len(shown["lines"]) == 6 and len(set(shown["lines"])) == 6  # 2 losses x 3 rates, each its own style
    assert len(set(shown["legend"])) == 6
    assert shown["labels"] and all(offset > 0 for offset in shown["labels"])  # the target's label: right of the plot
    assert console_problems(browser) == []


def test_no_network_requests_and_no_console_errors(browser, page):
    browser.get_log("performance")  # drop what earlier tests logged
    for tab in ("gradient", "neuron", "measured"):
        open_page(browser, page + f"#tab={tab}&K=10")
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    assert requested and all(url.startswith("file://") or url == "about:blank" for url in requested), requested
    assert console_problems(browser) == []


def test_page_without_results_says_how_to_get_them(browser, tmp_path):
    from selenium.webdriver.common.by import By

    url = write_explorer(tmp_path, results=None).as_uri()
    open_page(browser, url + "#tab=measured&cell=mlp-digits")
    empty = browser.find_element(By.ID, "measured-empty")
    assert empty.is_displayed() and not browser.find_element(By.ID, "measured-body").is_displayed()
    assert "losslab explore --results losslab-results/saturation" in empty.text
    assert console_problems(browser) == []


def test_each_section_draws_something(browser, page, tmp_path):
    """Screenshots of the three sections (kept under the test's tmp_path) are real pages, not blank ones."""
    for tab, chart in (("gradient", "chart-grad"), ("neuron", "chart-output"), ("measured", "chart-acc")):
        open_page(browser, page + f"#tab={tab}&cell=mlp-digits")
        lengths = browser.execute_script(
            f"return [...document.querySelectorAll('#{chart} path')].map(p => p.getAttribute('d').length)"
        )
        assert len(lengths) >= 2 and min(lengths) > 20
        shot = tmp_path / f"{tab}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 40_000
    assert console_problems(browser) == []


# Every word the page shows once its script has run: text (SVG labels and select options included), aria-labels,
# tooltips and the title.
READ_WORDS = """
const copy = document.documentElement.cloneNode(true);
copy.querySelectorAll('script, style').forEach(n => n.remove());
const attributes = [...document.querySelectorAll('[aria-label], [title]')]
  .map(e => (e.getAttribute('aria-label') || '') + ' ' + (e.getAttribute('title') || ''));
return copy.textContent + ' ' + attributes.join(' ');
"""

READ_HEADINGS = """
return {lang: document.documentElement.lang, title: document.title, h1: document.querySelector('h1').textContent,
  tabs: [...document.querySelectorAll('.tabs button')].map(b => b.textContent),
  headers: [...document.querySelectorAll('table.values th')].map(th => th.textContent),
  charts: [...document.querySelectorAll('svg .chart-title, svg .axis-label')].map(t => t.textContent).filter(Boolean),
  point: document.getElementById('gradient-point').textContent};
"""


def test_chinese_page_shows_chinese_and_the_same_numbers(browser, page, page_zh):
    fragment = "#tab=gradient&margin=-7.5&K=3&gamma=0.5&epsilon=0.2"
    shown = {}
    for lang, url in (("en", page), ("zh", page_zh)):
        open_page(browser, url + fragment)
        shown[lang] = {
            "headings": browser.execute_script(READ_HEADINGS),
            "gradient": browser.execute_script(READ_GRADIENT_TABLE),
            "hash": current_hash(browser),
        }
        open_page(browser, url + "#tab=neuron&w=2&b=2&eta=0.15&epochs=300&epoch=120")
        shown[lang]["neuron"] = browser.execute_script(READ_NEURON)
        open_page(browser, url + "#tab=measured&cell=mlp-digits&step=10")
        shown[lang]["measured"] = browser.execute_script(READ_MEASURED)
        assert console_problems(browser) == []
    zh, en = shown["zh"]["headings"], shown["en"]["headings"]
    assert zh["lang"] == "zh-CN" and en["lang"] == "en"
    assert zh["tabs"] == CHINESE_TABS and en["tabs"] == ENGLISH_TABS
    assert zh["h1"] == "为什么分类用交叉熵训练 —— 动手试试" and CJK.search(zh["title"])
    assert zh["headers"][:2] == ["损失", "模型"] and en["headers"][:2] == ["loss", "model"]
    assert "沿间隔路径的损失，K = 3" in zh["charts"] and "logit 梯度范数，K = 3" in zh["charts"]
    assert zh["point"].startswith("在 m = −7.5、K = 3 处：") and "预测错误：类别 1 领先 7.5" in zh["point"]
    # Computed values are the language's business in no way: every number, shown and exact, is identical.
    numbers = ("row", "value", "valueText", "norm", "normText", "grad", "threshold")
    assert [{k: r[k] for k in numbers} for r in shown["zh"]["gradient"]] == [
        {k: r[k] for k in numbers} for r in shown["en"]["gradient"]
    ]
    assert len(shown["zh"]["gradient"]) == len(comparable_rows(3))
    assert [r["model"] for r in shown["zh"]["gradient"]][0] == "softmax，K = 3"
    assert shown["zh"]["hash"] == shown["en"]["hash"]  # the state in the URL is the same link in both
    for run in ("mse", "ce"):
        assert {k: v for k, v in shown["zh"]["neuron"][run].items() if k != "half"} == {
            k: v for k, v in shown["en"]["neuron"][run].items() if k != "half"
        }
    assert shown["zh"]["measured"] == shown["en"]["measured"] and shown["zh"]["measured"]["rows"]


def test_chinese_page_shows_no_english_it_translates(browser, page_zh, tmp_path):
    """Each view in the states that write the most words (a dead margin at K = 2, a neuron that never gets below
    0.5, the scrubber, a bad link's notice, the page without measurements) leaves no translated English."""
    pieces = translated_english()
    views = [
        page_zh + "#tab=gradient&margin=-30&K=2&focus=sigmoid_mse",
        page_zh + "#tab=gradient&margin=3&K=10&vscale=lin",
        page_zh + "#tab=neuron&w=2&b=2&epochs=5&epoch=5",
        page_zh + "#tab=measured&cell=binary-digits",
        page_zh + "#tab=measured&cell=nonsense&K=1000",
        write_explorer(tmp_path, results=None, lang="zh").as_uri() + "#tab=measured",
    ]
    for url in views:
        open_page(browser, url)
        words = browser.execute_script(READ_WORDS)
        assert CJK.search(words)
        assert sorted(piece for piece in pieces if piece in words) == [], url
        for english in (*ENGLISH_TABS, "dead at this margin", "not within", "Ignored in the link", "initial logit"):
            assert english not in words, (url, english)
    open_page(browser, views[2])
    assert [r["half"] for r in browser.execute_script(READ_NEURON).values()] == ["5 个 epoch 内没有"] * 2
    open_page(browser, views[0])
    assert "当前间隔处于死区" in browser.execute_script(READ_WORDS)
    open_page(browser, views[4])
    assert browser.find_element("id", "notice").text.startswith("链接中被忽略的部分")
    assert console_problems(browser) == []
