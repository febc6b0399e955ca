"""The report: verdicts follow the measurements; the HTML is self-contained and renders in Chromium."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from losslab.experiments.runner import run_spec
from losslab.experiments.spec import load_spec
from losslab.report import claims as C
from losslab.report import fonts
from losslab.report.html import write_report
from losslab.theory.ledger import verify_all


@pytest.fixture(scope="module")
def ledger():
    return verify_all(seed=0, trials=20)


def synthetic_saturation(mse_top: float, ce_top: float, dead: float, base_gap: float = 0.0, seeds: int = 6):
    """Rows shaped like a saturation run: 2 losses x 2 scales x seeds, start and end evaluations."""
    rng = np.random.default_rng(0)
    rows, member = [], 0
    for loss, top_acc in (("mse", mse_top), ("cross_entropy", ce_top)):
        for scale, acc in ((1.0, 0.95 - (base_gap if loss == "mse" else 0)), (100.0, top_acc)):
            for seed in range(seeds):
                member += 1
                for step, value in ((0, 0.1), (100, acc + rng.normal(0, 0.005))):
                    rows.append(
                        {
                            "cell": "mlp-digits",
                            "grid": "mlp-digits",
                            "dataset": "digits",
                            "num_classes": 10,
                            "phase": "main",
                            "member": member,
                            "loss": loss,
                            "loss_params": "{}",
                            "seed": seed,
                            "lr": 0.1,
                            "init_scale": scale,
                            "step": step,
                            "epoch": step / 10,
                            "train_accuracy": value,
                            "test_accuracy": value,
                            "grad_norm": 1.0,
                            "dead_fraction": dead if (loss == "mse" and scale == 100.0) else 0.0,
                            "test_nll": 1.0,
                            "test_brier": 0.5,
                            "test_ece": 0.1,
                            "train_loss": 1.0,
                        }
                    )
    manifest = {"spec": "saturation", "spec_data": {"grid": [{"label": "mlp-digits", "target_accuracy": 0.9}]}}
    return manifest, pd.DataFrame(rows)


def test_c5_verdict_follows_the_measurements(ledger):
    stalled = C.Evidence(ledger, {"saturation": synthetic_saturation(0.40, 0.95, dead=0.5)})
    claim = C.claim_c5(stalled)
    assert claim.verdict == "supported with caveat"  # stalls only from the confidently wrong start
    text = " ".join(claim.evidence)
    assert re.search(r"CE - MSE = 5[45]\.\d pt \[5\d\.\d, 5\d\.\d\] \(n = 6\)", text), text
    assert "Reached 90.0% test accuracy: MSE 0/6 members, CE 6/6" in text
    always_worse = C.Evidence(ledger, {"saturation": synthetic_saturation(0.40, 0.95, dead=0.5, base_gap=0.2)})
    assert C.claim_c5(always_worse).verdict == "supported"
    no_effect = C.Evidence(ledger, {"saturation": synthetic_saturation(0.95, 0.95, dead=0.5)})
    assert C.claim_c5(no_effect).verdict == "not supported"
    not_dead = C.Evidence(ledger, {"saturation": synthetic_saturation(0.40, 0.95, dead=0.0)})
    assert C.claim_c5(not_dead).verdict == "not tested"  # no saturated start: the premise is absent
    assert C.claim_c5(C.Evidence(ledger, {})).verdict == "not tested"
    assert C.claim_c4(stalled).verdict == "not tested"  # no binary cells in these rows


def test_ledger_claims_fail_when_the_ledger_fails(ledger):
    broken = [r if r.equation != "25" else type(r)(**{**r.__dict__, "status": "FAILS"}) for r in ledger]
    assert C.claim_c10(C.Evidence(broken, {})).verdict == "not supported"
    assert C.claim_c10(C.Evidence(ledger, {})).verdict == "supported"
    assert C.claim_c12(C.Evidence(ledger, {})).verdict == "not tested"


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
    assert html.index('id="claims-ledger"') < html.index('id="equation-ledger"')  # the claims ledger comes first
    for claim in claims:
        assert f'id="claim-{claim.id}"' in html and claim.verdict in C.VERDICTS
    assert {c.id for c in claims} == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C10", "C11", "C12"}
    assert html.count("data:image/png;base64,") >= 8  # analysis figures + saturation + warm start curves
    external = re.findall(r'(?:src|href)="(?!data:|#)([^"]+)"', html)
    assert external == [], f"the report must not load anything from outside: {external}"
    assert "Golik, Doetsch &amp; Ney" in html and "Hui &amp; Belkin" in html
    assert "losslab run saturation --smoke" in html
    # Smoke results: said at the top, and the experiment verdicts cannot be decided from 2 seeds.
    assert html.index('id="smoke-banner"') < html.index('id="claims-ledger"')
    assert {c.id: c.verdict for c in claims}["C5"] == "not enough evidence"


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
    assert dom.stdout.count("<img") >= 8
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [find_chromium(), *flags, "--window-size=1200,1600", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.stat().st_size > 20_000  # a real page, not a blank one


def test_demo_smoke_runs_end_to_end(tmp_path, capsys):
    from losslab.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "smoke"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "demo" / "index.html").is_file()
    assert '"spec":"saturation"' in (tmp_path / "demo" / "explorer.html").read_text()  # with the demo's measurements
    assert 'href="explorer.html"' in (tmp_path / "demo" / "index.html").read_text()  # the report links it
    assert "report:" in out and "elapsed:" in out and "C4" in out and "not enough evidence" in out
    assert json.loads((tmp_path / "demo" / "results" / "saturation" / "manifest.json").read_text())["size"] == "smoke"


@pytest.mark.skipif(fonts.find_cjk_font("zh") is None, reason="no CJK font installed (apt-get install fonts-noto-cjk)")
def test_report_cli_writes_the_smoke_results_in_chinese(report, tmp_path, capsys):
    from losslab.cli import main

    path, claims = report
    folder = path.parent.parent
    assert main(["report", str(folder / "sat"), str(folder / "ws"), "--out", str(tmp_path), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "C5   证据不足" in out and "softmax 是 sigmoid 的推广，也有同样的问题" in out
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "冒烟测试运行" in html and "1. 论断核对表" in html
    assert "Smoke run" not in html and "Claims ledger" not in html
    assert html.count("data:image/png;base64,") >= 8
