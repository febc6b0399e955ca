"""The report: every grid of a researcher's own spec shown first, report.json with the same numbers, the
HTML self-contained and rendering in Chromium, in English and Chinese."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import losslab.i18n as I
from losslab.cli import main
from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.report import claims as C
from losslab.report import fonts, report_json
from losslab.report.html import write_report
from losslab.report.verdicts import DECLARED, VERDICTS, Evidence
from losslab.theory.ledger import verify_all

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with the dev extra (nbformat)")


@pytest.fixture(scope="module")
def ledger():
    return verify_all(seed=0, trials=20)


def test_ledger_claims_fail_when_the_ledger_fails(ledger):
    broken = [r if r.equation != "25" else type(r)(**{**r.__dict__, "status": "FAILS"}) for r in ledger]
    assert C.claim_c10(Evidence(broken, {})).verdict == "not supported"
    assert C.claim_c10(Evidence(ledger, {})).verdict == "supported"
    assert C.claim_c12(Evidence(ledger, {})).verdict == "not tested"


# --- a researcher's own spec, as docs/plugins.md writes one ---------------------------------------------------

OWN_LOSS = '''
import torch
import losslab


def tempered_ce(z, y, t=2.0):
    """Cross-entropy of softmax(z / t): a deliberately under-confident loss."""
    return -(y * torch.log_softmax(z / t, dim=-1)).sum(-1)


losslab.register_loss("tempered_ce", values=tempered_ce)
'''

OWN_SPEC = """
name = "mine"
plugins = ["my_losses.py"]

[train]
model = "mlp"
hidden = [16]
epochs = 3
batch_size = 20

[[grid]]
label = "blobs-csv"
dataset = "file:blobs.csv"
losses = ["cross_entropy", "mse", "tempered_ce"]
lrs = [0.1, 0.3]
init_scales = [1, 30]
seeds = 2
"""


def write_csv(path, rng):
    """Three well-separated Gaussian blobs in 4 dimensions, with a label column."""
    centres = rng.normal(0, 3, (3, 4))
    lines = ["a,b,c,d,label"]
    for k in range(3):
        for x in centres[k] + rng.normal(0, 1, (120, 4)):
            lines.append(",".join(f"{v:.4f}" for v in x) + f",class{k}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def own(tmp_path_factory, ledger):
    folder = tmp_path_factory.mktemp("own")
    (folder / "my_losses.py").write_text(OWN_LOSS)
    (folder / "spec.toml").write_text(OWN_SPEC)
    write_csv(folder / "blobs.csv", np.random.default_rng(0))
    run_spec(load_spec(folder / "spec.toml"), folder / "results", log=lambda *_: None)
    path, claims = write_report([folder / "results"], folder / "report", ledger=ledger)
    return path, json.loads((folder / "report" / "report.json").read_text(encoding="utf-8"))


def test_a_spec_without_roles_is_reported_first_with_every_grid_and_nothing_pooled(own):
    path, record = own
    html = path.read_text(encoding="utf-8")
    # The user's experiments lead; the article's claims follow, the untested ones folded into one line.
    assert html.index('id="experiments"') < html.index('id="claims"') < html.index('id="claims-untested"')
    assert 'id="grid-mine-blobs-csv-results"' in html and 'id="grid-mine-blobs-csv-baseline"' in html
    assert 'id="fig-grid-mine-blobs-csv-rates"' in html and 'id="fig-grid-mine-blobs-csv-curves"' in html
    (grid,) = record["grids"]
    assert grid["role"] is None and grid["baseline"] == "cross_entropy" and grid["varying"] == ["init_scale"]
    # Two initial scales: a condition each, every row saying how many members it averages (2 seeds, one rate).
    assert [c["init_scale"] for c in grid["conditions"]] == [1.0, 30.0]
    for condition in grid["conditions"]:
        assert [row["loss"] for row in condition["losses"]] == ["cross_entropy", "mse", "tempered_ce"]
        assert all(row["members"] == 2 and row["lrs_tried"] == [0.1, 0.3] for row in condition["losses"])
        assert condition["test_examples"] > 0 and condition["losses"][0]["test_accuracy"]["test_sampling"] is True
        assert {c["loss"] for c in condition["comparisons"]} == {"mse", "tempered_ce"}


def test_report_json_has_the_page_s_numbers_and_follows_its_schema(own):
    path, record = own
    jsonschema.validate(record, report_json.SCHEMA)
    html = path.read_text(encoding="utf-8")
    table = next(t for t in record["tables"] if t["id"] == "grid-mine-blobs-csv-results")
    assert len(table["rows"]) == 6  # 2 scales x 3 losses
    for row in table["rows"]:
        for cell in row:
            assert cell.replace("&", "&amp;") in html  # every cell of the JSON table is on the page
    # The structured record and the table agree: the tempered loss at scale 30, test accuracy as a percent.
    tempered = record["grids"][0]["conditions"][1]["losses"][2]
    shown = next(r for r in table["rows"] if r[0] == "30" and r[1].startswith("tempered_ce"))
    assert shown[7].startswith(f"{100 * tempered['test_accuracy']['mean']:.1f}%")
    assert tempered["origin"].startswith("from ") and "(from " in shown[1]  # a plugin's loss says whose it is
    declared = {e.id for e in DECLARED.values() if e.kind == "claim"}  # a claim added is a claim reported
    assert (
        {c["id"] for c in record["claims"]}
        == declared
        >= {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C10", "C11", "C12"}
    )
    assert all(c["verdict"] in VERDICTS for c in record["claims"])


@pytest.fixture(scope="module")
def report(tmp_path_factory, ledger):
    folder = tmp_path_factory.mktemp("report")
    run_spec(load_spec("saturation"), folder / "sat", size="smoke", log=lambda *_: None)
    run_spec(load_spec("warmstart"), folder / "ws", size="smoke", log=lambda *_: None)
    path, claims = write_report([folder / "sat", folder / "ws"], folder / "out", ledger=ledger)
    return path, claims


def test_report_is_self_contained_and_complete(report):
    path, claims = report
    html = path.read_text()
    # Every grid has an article role here: the claims ledger leads.
    assert html.index('id="claims-ledger"') < html.index('id="experiments"') < html.index('id="equation-ledger"')
    for claim in claims:
        assert f'id="claim-{claim.id}"' in html and claim.verdict in VERDICTS
    assert html.count("data:image/png;base64,") >= 12  # analysis figures, every grid's, the role views
    external = re.findall(r'(?:src|href)="(?!data:|#)([^"]+)"', html)
    assert external == ["report.json"], f"the report must load nothing from outside: {external}"
    assert "Golik, Doetsch &amp; Ney" in html and "Hui &amp; Belkin" in html and 'id="table-audit"' in html
    assert "losslab run saturation --smoke" in html
    assert html.index('id="smoke-banner"') < html.index('id="claims-ledger"')
    assert {c.id: c.verdict for c in claims}["C5"] in ("not enough evidence", "not tested")
    record = json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(record, report_json.SCHEMA)
    assert {g["grid"] for g in record["grids"]} == {"binary-digits", "mlp-digits", "from-ce", "from-scratch"}


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _ = report
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [find_chromium(), *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="claims-ledger"' in dom.stdout and "supported" in dom.stdout
    assert dom.stdout.count("<img") >= 12
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [find_chromium(), *flags, "--window-size=1200,1600", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.stat().st_size > 20_000  # a real page, not a blank one


def test_demo_smoke_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "smoke"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "demo" / "index.html").is_file() and (tmp_path / "demo" / "report.json").is_file()
    assert '"spec":"saturation"' in (tmp_path / "demo" / "explorer.html").read_text()  # with the demo's measurements
    assert 'href="explorer.html"' in (tmp_path / "demo" / "index.html").read_text()  # the report links it
    assert "report:" in out and "elapsed:" in out and "C4" in out
    assert json.loads((tmp_path / "demo" / "results" / "saturation" / "manifest.json").read_text())["size"] == "smoke"


@pytest.mark.skipif(fonts.find_cjk_font("zh") is None, reason="no CJK font installed (apt-get install fonts-noto-cjk)")
def test_report_cli_writes_the_smoke_results_in_chinese(report, tmp_path, capsys):
    path, claims = report
    folder = path.parent.parent
    assert main(["report", str(folder / "sat"), str(folder / "ws"), "--out", str(tmp_path), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert I.Message("claim.C5.title").render("zh") in out
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    for id in ("report.section.claims", "report.section.experiments", "report.methods.audit_heading"):
        assert I.Message(id).render("zh") in html
    assert "Smoke run" not in html and "Your experiments" not in html
    assert html.count("data:image/png;base64,") >= 12
    record = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert record["claims"][0]["title"].startswith("Classifiers")  # report.json stays English


def test_a_folder_saved_with_save_result_is_refused_in_one_line(tmp_path, capsys):
    """save_result keeps one population without the grids of a spec: the report says so, and writes nothing."""
    from losslab.cli import main
    from losslab.data import load_dataset
    from losslab.experiments.store import save_result
    from losslab.train import Member, TrainConfig, train_population

    members = [Member(loss, seed=0, lr=0.1) for loss in ("cross_entropy", "mse")]
    result = train_population(load_dataset("digits"), members, TrainConfig(epochs=1), progress=False)
    save_result(result, tmp_path / "saved", "ce-vs-mse")
    assert main(["report", str(tmp_path / "saved"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "saved with save_result" in err and "losslab init" in err
    assert not (tmp_path / "rep").exists()
