"""The report's languages: complete catalogues, Chinese figures without missing glyphs, a Chinese report with
no English left in its translated parts, the English report unchanged, and --lang's errors pinned."""

import html as html_module
import io
import logging
import re
import string
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
import synthetic_results as R

import losslab.i18n as I
from losslab.cli import main
from losslab.report import claims as C
from losslab.report import fonts
from losslab.report import result_figures as RF
from losslab.report import verdicts as V
from losslab.report.figures import FIGURES
from losslab.report.html import render_report
from losslab.theory.ledger import verify_all

SRC = Path(__file__).resolve().parents[1] / "src" / "losslab"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
needs_cjk_font = pytest.mark.skipif(
    fonts.find_cjk_font("zh") is None, reason="no CJK font installed (apt-get install fonts-noto-cjk)"
)


# --- (a) the catalogues ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", I.LANGUAGES)
def test_every_message_has_every_language_with_the_same_placeholders(lang):
    source, target = I.messages("en"), I.messages(lang)
    assert sorted(set(source) - set(target)) == [], f"{lang}.toml lacks these ids"
    assert sorted(set(target) - set(source)) == [], f"{lang}.toml has ids that en.toml does not"
    for key, text in target.items():
        assert isinstance(text, str) and text.strip(), key
        fields = list(string.Formatter().parse(text))
        # Numbers are formatted in code: placeholders are bare names, the same in every language.
        assert all(spec == "" and conversion is None for _, name, spec, conversion in fields if name), key
        assert I.placeholders(text) == I.placeholders(source[key]), key
        text.format(**{name: "x" for name in I.placeholders(text)})  # braces balanced
    for field in ("name", "html_lang", "needs_cjk_font"):
        assert I.meta(lang, field) is not None


def test_chinese_uses_full_width_punctuation_and_the_article_terms():
    zh = I.messages("zh")
    # (Bracketed notation such as "均值 [下限, 上限]" shows how numbers are printed and keeps ASCII.)
    ascii_after_hanzi = {
        k: t for k, t in zh.items() if re.search(r"[\u4e00-\u9fff][,;:()]", re.sub(r"\[[^\]]*\]", "", t))
    }
    assert ascii_after_hanzi == {}, "use ，；：（） after Chinese characters"
    text = "".join(zh.values())
    for term in (
        "交叉熵",
        "均方误差",
        "极大似然",
        "多项式分布",
        "伯努利分布",
        "二项分布",
        "高斯分布",
        "sigmoid",
        "softmax",
    ):
        assert term in text, term


def _explorer_ids() -> tuple[set[str], set[str]]:
    """The message ids the explorer uses: t("id") / tParts("id") in explorer.js, {{ t('id') }} in explorer.html."""
    pattern = r"""\bt(?:Parts)?\(\s*["']([A-Za-z0-9_.]+)["']"""
    script = set(re.findall(pattern, (SRC / "explore" / "explorer.js").read_text(encoding="utf-8")))
    template = set(re.findall(pattern, (SRC / "explore" / "explorer.html").read_text(encoding="utf-8")))
    return script, template


def test_every_message_id_written_in_the_code_exists():
    ids = set()
    for path in SRC.rglob("*.py"):
        ids |= set(re.findall(r'Message\(\s*"([A-Za-z0-9_.]+)"\s*[,)]', path.read_text(encoding="utf-8")))
        ids |= set(re.findall(r'\bt\(\s*"([A-Za-z0-9_.]+)"\s*[,)]', path.read_text(encoding="utf-8")))
    template = (SRC / "report" / "templates" / "report.html").read_text(encoding="utf-8")
    ids |= set(re.findall(r"\bt\('([A-Za-z0-9_.]+)'", template))
    script, explorer = _explorer_ids()
    assert len(script) > 40 and len(explorer) > 60
    ids |= script | explorer
    assert len(ids) > 300
    for lang in I.LANGUAGES:  # (the test above checks that every language has every English id)
        assert sorted(ids - set(I.messages(lang))) == [], lang


def test_the_explorer_messages_are_all_used_and_its_script_gets_what_it_reads():
    from losslab.explore.page import script_messages

    script, template = _explorer_ids()
    unused = {k for k in I.messages("en") if k.startswith("explore.")} - script - template
    assert sorted(unused) == [], "explore.* messages that neither explorer.js nor explorer.html uses"
    assert all(k.startswith("explore.") for k in template)
    for lang in I.LANGUAGES:
        assert sorted(script - set(script_messages(lang))) == [], (
            f"explorer.js reads ids page.py does not embed ({lang})"
        )
        for key, text in I.messages(lang).items():
            if not key.startswith("explore."):
                continue
            tags = sorted(re.findall(r"</?[a-z]+", text))
            if key.endswith("_html"):  # markup is the translator's to move, not to change
                assert tags == sorted(re.findall(r"</?[a-z]+", I.messages("en")[key])), (lang, key)
            else:  # plain text: the script writes it with textContent, page.py escapes it
                assert tags == [], (lang, key)


@pytest.mark.parametrize("lang", [lang for lang in I.LANGUAGES if lang != "en"])
def test_every_rule_has_a_translation_of_its_current_docstring(lang):
    """A rule's English text is its docstring; each catalogue records the fingerprint of the docstring it translates."""
    entries = I.catalogue(lang)
    rules = {name: doc for entry in V.DECLARED.values() for name, doc in entry.decide.rule_text.parts}
    for name, doc in rules.items():
        assert f"rule.{name}.text" in entries, f"{lang}.toml: no [rule.{name}] translating {name}'s docstring"
        assert entries[f"rule.{name}.source"] == I.fingerprint(doc), (
            f"the docstring of {name} changed since it was translated: update [rule.{name}] in {lang}.toml and set "
            f"source = {I.fingerprint(doc)!r}"
        )
    stale = {k.split(".")[1] for k in entries if k.startswith("rule.")} - set(rules)
    assert stale == set(), f"{lang}.toml translates rules that no longer exist"


def test_rules_read_as_prose_in_every_language():
    """A rule is shown to readers: no reStructuredText markup or parameter names leak from a docstring."""
    for entry in V.DECLARED.values():
        for lang in I.LANGUAGES:
            text = entry.decide.rule_text.render(lang)
            assert "``" not in text and "NaN" not in text and "{" not in text, (entry.id, lang)


def test_the_chinese_rules_are_chinese():
    for entry in V.DECLARED.values():
        assert CJK.search(entry.decide.rule_text.render("zh")), entry.id
    rule = C.claim_c5.rule_text
    assert "stall rule" in rule and "停滞规则" in rule.render("zh") and rule.render("en") == rule
    assert "default 1.25" in " ".join(rule.split()) and "1.25" in rule.render("zh")  # constants in both languages


def test_messages_keep_english_for_code_and_render_in_any_language():
    m = I.Message("ledger.summary", holds="28", errata="3", transcriptions="3", fails="0")
    assert m == "28 hold, 3 errata, 3 transcriptions, 0 fail" and isinstance(m, str)
    assert m.render("zh") == "28 条成立，3 条勘误，3 条排印错误，0 条不成立"
    nested = I.Message("claim.C5.blobs", k="3", chosen_on=V.chosen_word("validation"), acc_ce="1", acc_mse="2")
    assert "chosen on validation" in nested and "学习率选取依据：验证集" in nested.render("zh")
    assert I.render([I.Message("word.yes"), I.Message("word.no")], "zh") == "是、否"
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(nested)).render("zh") == nested.render("zh")
    assert copy.deepcopy(nested).render("zh") == nested.render("zh")
    with pytest.raises(KeyError, match="message 'nope' is not in the English catalogue"):
        I.Message("nope")
    with pytest.raises(TypeError, match=r"message 'ledger.summary' takes the arguments \['errata', 'fails'"):
        I.Message("ledger.summary", holds="1")


# --- (d) choosing the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.UTF-8"}, "zh"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL overrides LANG
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_SG"}, "zh"),  # empty variables do not count
    ],
)
def test_the_default_language_comes_from_the_locale(environ, expected):
    assert I.default_language(environ) == expected


@pytest.mark.parametrize("command", ["report", "demo", "plot", "explore"])
def test_a_bad_lang_is_one_line_naming_the_flag_and_the_languages(command, tmp_path, capsys):
    args = {"report": ["report", str(tmp_path)], "demo": ["demo"], "plot": ["plot"], "explore": ["explore"]}[command]
    assert main([*args, "--out", str(tmp_path / "out"), "--lang", "fr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --lang: invalid choice: 'fr' (choose from en, zh)" in err or (
        "argument --lang: invalid choice: 'fr' (choose from 'en', 'zh')" in err
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"lang must be one of en, zh, got 'fr'"):
        render_report({}, [], lang="fr")


@pytest.mark.parametrize("command", ["report", "demo", "plot"])
def test_without_a_cjk_font_zh_fails_first_saying_how_to_install_one(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fonts, "find_cjk_font", lambda lang="zh": None)
    args = {"report": ["report", str(tmp_path)], "demo": ["demo", "--size", "smoke"], "plot": ["plot"]}[command]
    assert main([*args, "--out", str(tmp_path / "out"), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--lang zh: the 简体中文 figures need a CJK font and none is installed; install one (" in err
    assert "apt-get install fonts-noto-cjk" in err and "set LOSSLAB_CJK_FONT to a font file" in err
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")  # the locale's default is checked the same way, and says so
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "need a CJK font" in err and "(the language came from LC_ALL=zh_CN.UTF-8; or pass --lang en)" in err


def test_the_font_file_named_in_the_environment_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(fonts.ENVIRONMENT_VARIABLE, str(tmp_path / "missing.otf"))
    with pytest.raises(fonts.FontError, match=r"LOSSLAB_CJK_FONT=.*missing\.otf: no such font file; install one"):
        fonts.require("zh")
    latin = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    monkeypatch.setenv(fonts.ENVIRONMENT_VARIABLE, str(latin))
    with pytest.raises(fonts.FontError, match=r"DejaVuSans\.ttf: the font has no glyph for .* and \d+ more characters"):
        fonts.require("zh")
    fonts.require("en")  # English needs nothing


# --- results for the figures and the report ---------------------------------------------------------------


def _results(smoke: bool = False) -> dict:
    """Synthetic results with every role the report reads: comparison, saturation, many classes, warm start,
    MNIST-1D reference (built as the trainer writes them; nothing is trained)."""
    comparison = R.comparison(
        {
            cell: {
                "cross_entropy": {0.03: 0.92, 0.1: 0.95, 0.3: 0.93},
                "mse": {0.1: 0.90, 0.3: 0.94, 1.0: 0.93},
                "square_logits": {0.1: 0.95},
            }
            for cell in ("digits", "mnist1d")
        },
        seeds=2 if smoke else 6,
        size="smoke" if smoke else "full",
    )
    rows = []
    for loss, top in (("mse", 0.4), ("cross_entropy", 0.95)):
        for scale, acc in ((1.0, 0.95), (100.0, top)):
            rows += R.grid_rows(
                "sat-cell",
                {loss: {0.1: acc}},
                start=len(rows),
                init_scale=scale,
                dead_fraction=0.5 if (loss == "mse" and scale == 100.0) else 0.0,
            )
    saturation = R.results(
        "saturation", rows, [{"label": "sat-cell", "role": "saturation-softmax", "target_accuracy": 0.9}]
    )
    rows = []
    for k in (2, 10):
        rows += R.grid_rows(
            f"blobs-{k}", {"cross_entropy": {0.1: 0.9}, "mse": {0.1: 0.85}}, start=len(rows), num_classes=k
        )
    classes = R.results("classes", rows, [{"label": f"blobs-{k}", "role": "many-classes"} for k in (2, 10)])
    rows = R.grid_rows("continue", {"cross_entropy": {0.03: 0.75}, "mse": {0.1: 0.77}})
    rows += R.grid_rows("scratch", {"cross_entropy": {0.1: 0.74}, "mse": {0.3: 0.64}}, start=500)
    warm = pd.DataFrame(rows[:4]).assign(phase="warmstart", step=-1)
    warmstart = R.results(
        "warmstart",
        rows,
        [{"label": "continue", "role": "warm-start"}, {"label": "scratch", "role": "from-scratch"}],
    )
    warmstart = (warmstart[0], pd.concat([warmstart[1], warm.assign(experiment="warmstart")], ignore_index=True))
    rows, grids = [], []
    for role, acc in {"reference-linear": 0.32, "reference-mlp": 0.68, "reference-cnn": 0.94}.items():
        rows += R.grid_rows(role, {"cross_entropy": {0.01: acc}, "mse": {0.01: acc - 0.05}}, start=len(rows))
        grids.append({"label": role, "role": role})
    reference = R.results("mnist1d-reference", rows, grids)
    return {
        "comparison": comparison,
        "saturation": saturation,
        "classes": classes,
        "warmstart": warmstart,
        "mnist1d-reference": reference,
    }


@pytest.fixture(scope="module")
def ledger():
    return verify_all(seed=0, trials=10)


@pytest.fixture(scope="module")
def results():
    return _results()


# --- (b) Chinese figures: every glyph drawn ---------------------------------------------------------------


@needs_cjk_font
def test_every_figure_in_chinese_draws_every_glyph(results, caplog):
    """matplotlib's missing-glyph warning (boxes instead of characters) and its font-fallback message are errors."""
    evidence = V.Evidence([], results)
    figures = {name: (lambda spec=spec: spec.make(lang="zh")) for name, spec in FIGURES.items()}
    sat = evidence.role_rows("saturation-softmax")
    digits = next(g for g in evidence.grids if g.label == "digits")
    figures.update(
        {
            "saturation-curves": lambda: RF.saturation_curves(sat, lang="zh"),
            "comparison": lambda: RF.baseline_differences(evidence.role_grids("loss-comparison"), lang="zh"),
            "classes": lambda: RF.classes_curve(evidence.role_grids("many-classes"), lang="zh"),
            "warmstart": lambda: RF.warmstart_curves(evidence.role_rows("warm-start", "from-scratch"), lang="zh"),
            "rates": lambda: RF.rate_sensitivity(digits, lang="zh"),
            "curves": lambda: RF.training_curves(digits, lang="zh"),
            "reliability": lambda: RF.reliability_diagrams(digits, lang="zh"),
        }
    )
    caplog.set_level(logging.INFO, logger="matplotlib.font_manager")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"(?s).*[Gg]lyph .* missing from")
        warnings.filterwarnings("error", message=r"(?s).*findfont")
        for name, make in figures.items():
            fig = make()
            with fonts.figure_fonts("zh"):
                fig.savefig(io.BytesIO(), format="png", dpi=30)  # drawing is where missing glyphs show
            texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
            assert any(CJK.search(t) for t in texts), f"{name}: no Chinese label"
            if getattr(fig.canvas, "manager", None) is not None:
                plt.close(fig)
    assert not [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()]


def test_english_figures_keep_matplotlibs_fonts():
    before = dict(matplotlib.rcParams)
    with fonts.figure_fonts("en"):
        assert dict(matplotlib.rcParams) == before
    fig = FIGURES["sigmoid"].make()
    assert fig.axes[0].get_title() == "Sigmoid and its derivative (eq. 1-4)"
    plt.close(fig)


# --- (c) the Chinese report, (e) the English one ---------------------------------------------------------


def _static_segments(template: str) -> list[str]:
    """The literal pieces of a catalogue template between its placeholders."""
    return [literal for literal, *_ in string.Formatter().parse(template)]


@pytest.fixture(scope="module")
def chinese(results, ledger):
    smoke = _results(smoke=True)
    report = render_report({**results, "comparison": smoke["comparison"]}, ledger, lang="zh")
    return report.html, report.claims


@needs_cjk_font
def test_the_chinese_report_is_chinese_throughout(chinese):
    html, claims = chinese
    assert '<html lang="zh-CN">' in html
    headings = re.findall(r"<h2 id=\"[a-z0-9]+\">(.*?)</h2>", html)
    expected = ["claims", "experiments", "equations", "saturation", "questions", "later", "methods", "reproduce"]
    shown = [
        I.Message(f"report.section.{k}", command="losslab verify").render("zh")
        if k == "equations"
        else I.Message(f"report.section.{k}").render("zh")
        for k in expected
    ]
    assert [re.sub(r"<.*?>", "", h) for h in headings] == shown and all(CJK.search(h) for h in shown)
    for claim in [c for c in claims if c.verdict != "not tested"]:  # Chinese word, English CSS class
        row = re.search(rf'<tr id="claim-{claim.id}">(.*?)</tr>', html, re.S).group(1)
        word = V.verdict_word(claim.verdict).render("zh")
        assert f'<span class="verdict v-{claim.verdict.replace(" ", "-")}">{word}</span>' in row
        assert CJK.search(re.sub(r"<.*?>", "", row.split("<details")[0]))
    for phrase in ("冒烟测试运行", "判定规则", "停滞规则", "勘误", "排印错误", "可靠性图", "自助法", "温度缩放"):
        assert phrase in html, phrase
    assert html.count("data:image/png;base64,") >= 20  # analysis figures, every grid's, the role views
    # No English sentence is left: no literal piece (8+ letters of words) of any English message whose Chinese
    # differs appears in the page, nor any English rule text.
    page = html_module.unescape(re.sub(r"<style>.*?</style>|base64,[^\"]+", "", html, flags=re.S))
    zh_text = "".join(I.messages("zh").values())
    leftovers = set()
    for key, english in I.messages("en").items():
        if I.messages("zh")[key] == english:
            continue  # formulas and names read the same in both languages
        for piece in _static_segments(english):
            words = re.findall(r"[A-Za-z]{2,}", piece)
            if len(words) >= 2 and len(piece.strip()) >= 12 and piece.strip() not in zh_text:
                if piece.strip() in page:
                    leftovers.add((key, piece.strip()))
    assert leftovers == set()
    for english in ("Claims ledger", "not enough evidence", "supported with caveat", "The stall rule", "Caveat:"):
        assert english not in page, english


def test_the_english_report_keeps_its_words(results, ledger, monkeypatch):
    import losslab.report.html as H

    monkeypatch.setattr(H, "_grid_figures", lambda grid, lang: [])  # the words are the point here: no drawing
    monkeypatch.setattr(H, "_role_figures", lambda evidence, lang: {})
    report = render_report(results, ledger)
    html, claims = report.html, report.claims
    assert '<html lang="en">' in html
    for phrase in (
        "Why classification uses cross-entropy instead of MSE — measured",
        "The article&#39;s claims",
        "The article&#39;s equations (<code>losslab verify</code>)",
        "Your experiments: every grid",
        "How often each rule is wrong",
        "comparison/digits: each loss at its chosen learning rate",
        "29 hold, 3 errata, 3 transcriptions, 0 fail",
        "every margin below -9.26 has gradient &lt; 0.001",
        "The stall rule (claims C4 and C5)",
        "Seeds a verdict needs per compared group (each loss at each setting): 5.",
    ):
        assert phrase in html, phrase
    assert not CJK.search(re.sub(r"<style>.*?</style>", "", html, flags=re.S))
    for claim in [c for c in claims if c.verdict != "not tested"]:
        assert f'<span class="verdict v-{claim.verdict.replace(" ", "-")}">{claim.verdict}</span>' in html
