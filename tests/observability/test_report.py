"""`mlc report` on a fresh `mlc run`: real training, a real drift check, the page rendered by real headless
Chromium (console errors, sections, a PNG), the figures in the real MLflow store.

One shared run (a tmp copy of specs/churn with two candidates, then the monitor pipeline) serves every test.
``MLC_REPORT_PNG=docs/img/report.png`` makes the Chromium test keep its screenshot there (the README's picture).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cdp
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = ("    - name: logreg\n      estimator: logistic_regression\n      params: {max_iter: 1000}\n"
              "    - name: forest\n      estimator: random_forest\n"
              "      params: {n_estimators: 100, min_samples_leaf: 5}\n")
SECTIONS = ["summary", "dag", "candidates", "curves", "gates", "slices", "drift"]
PROBE = """({
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  svgs: Object.fromEntries(Array.from(document.querySelectorAll('section[id]'))
          .map(s => [s.id, s.querySelectorAll('svg').length])),
  candidates: Array.from(document.querySelectorAll('#candidates tbody tr td:first-child')).map(td => td.textContent),
  gates: document.querySelectorAll('#gates tbody tr').length,
  drift: Array.from(document.querySelectorAll('#drift tbody tr td:first-child')).map(td => td.textContent),
  width: document.documentElement.scrollWidth
})"""

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlc-report")]


def mlc(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "mlc", *args], cwd=cwd, check=False, capture_output=True, text=True, env=env,
                       timeout=900)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    dst = root / "churn"
    shutil.copytree(REPO / "specs" / "churn", dst, ignore=shutil.ignore_patterns(".mlc"))
    spec = dst / "mlproject.yaml"
    text = spec.read_text()
    start, end = text.index("  candidates:\n"), text.index("\ngates:")
    spec.write_text(text[:start] + "  candidates:\n" + CANDIDATES + text[end:])
    mlc("run", "churn", cwd=root)
    mlc("run", "churn", "--pipeline", "monitor", cwd=root, check=None)  # drift may fail the run; it still ran
    return dst


@pytest.fixture(scope="module")
def report(project: Path) -> Path:
    p = mlc("report", "churn", cwd=project.parent)
    path = project.parent / p.stdout.strip()
    assert path.is_file() and path.parent == project / ".mlc" / "reports"
    return path


def _train_run(project: Path) -> str:
    return (project / ".mlc" / "cache" / "latest-train").read_text().strip()


def _run_dir(project: Path, run_id: str) -> Path:
    return project / ".mlc" / "artifacts" / "runs" / run_id


def test_report_is_named_after_the_latest_train_run(project: Path, report: Path) -> None:
    assert report.name == f"{_train_run(project)}.html"


@pytest.mark.skipif(cdp.CHROMIUM is None, reason="Chromium is absent (apt-get install chromium); .ci/run installs it")
def test_chromium_renders_every_section_without_a_console_error(project: Path, report: Path, tmp_path: Path) -> None:
    seen = cdp.load(cdp.file_url(report), PROBE)
    assert seen.errors == [], seen.errors
    v = seen.value
    assert v["sections"] == SECTIONS
    assert v["svgs"]["dag"] == 1 and v["svgs"]["curves"] == 3 and v["svgs"]["drift"] == 1  # roc, pr, calibration
    assert v["candidates"] == ["logreg", "forest"] or sorted(c.rstrip(" ★") for c in v["candidates"]) == [
        "forest", "logreg"]
    gate = json.loads((_run_dir(project, _train_run(project)) / "gate" / "report.json").read_text())
    assert v["gates"] == len(gate["gates"])
    assert v["drift"] == ["tenure_months", "monthly_usage_hours", "last_contact_days", "support_tickets",
                          "plan_price"]
    assert v["width"] <= 1280  # nothing overflows the page sideways
    assert seen.png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(seen.png[16:20], "big"), int.from_bytes(seen.png[20:24], "big")
    assert width == 1280 and height > 1500
    keep = os.environ.get("MLC_REPORT_PNG")
    (Path(keep) if keep else tmp_path / "report.png").write_bytes(seen.png)


@pytest.mark.skipif(cdp.CHROMIUM is None, reason="Chromium is absent (apt-get install chromium); .ci/run installs it")
def test_the_console_check_catches_errors_and_failed_loads(tmp_path: Path) -> None:
    """The check above is not vacuous: a console.error, an exception and a missing image are all reported."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><section id="x"></section><img src="missing.png">'
                    '<script>console.error("boom"); console.log("fine"); null.f()</script></body></html>')
    seen = cdp.load(cdp.file_url(page), "Array.from(document.querySelectorAll('section')).map(s => s.id)")
    assert seen.value == ["x"]
    text = "\n".join(seen.errors)
    assert "console.error: boom" in text and "fine" not in text
    assert "TypeError" in text and "missing.png" in text


def test_the_page_is_self_contained(report: Path) -> None:
    html = report.read_text()
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and not re.search(r"url\((?!#)", html)  # only in-page references (SVG clips)
    assert html.count("<svg") == 5  # dag, roc, pr, calibration, drift


def test_the_page_shows_what_the_run_recorded(project: Path, report: Path) -> None:
    html = report.read_text()
    run = _run_dir(project, _train_run(project))
    ev = json.loads((run / "evaluate" / "metrics.json").read_text())
    for cand in ev["candidates"].values():
        for value in cand["metrics"].values():
            assert f"{value:.4f}" in html
    win = ev["candidates"][ev["winner"]]
    for slices in win["slices"].values():
        for name, m in slices.items():
            assert f"<td>{name}</td>" in html and f"{m['roc_auc']:.4f}" in html
    for step in json.loads((run / "run.json").read_text())["steps"]:
        assert f"<td>{step['name']}</td>" in html
    assert "churn-classifier v1" in html


def test_a_second_report_of_the_same_run_is_byte_identical(project: Path, report: Path) -> None:
    before = report.read_bytes()
    mlc("report", "churn", "--run-id", _train_run(project), "--no-mlflow", cwd=project.parent)
    assert report.read_bytes() == before


def test_the_figures_are_logged_to_mlflow(project: Path, report: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.mlc' / 'mlflow.db'}"
    c = MlflowClient(uri)
    run_id = _train_run(project)
    exp = c.get_experiment_by_name("churn")
    assert exp is not None
    parent = c.search_runs([exp.experiment_id], f"tags.`mlc.run_id` = '{run_id}' and tags.`mlc.role` = 'pipeline'")
    assert len(parent) == 1
    names = {Path(a.path).name for a in c.list_artifacts(parent[0].info.run_id, "report")}
    assert names >= {"dag.svg", "roc.svg", "pr.svg", "calibration.svg", "drift.svg", "report.html"}
    gate = json.loads((_run_dir(project, run_id) / "gate" / "report.json").read_text())
    winner = {Path(a.path).name for a in c.list_artifacts(gate["winner_run_id"], "report")}
    assert winner == {"roc.svg", "pr.svg", "calibration.svg"}


def test_a_monitor_run_reports_its_own_drift_check(project: Path) -> None:
    mon = (project / ".mlc" / "cache" / "latest-monitor").read_text().strip()
    p = mlc("report", "churn", "--run-id", mon, "--no-mlflow", cwd=project.parent)
    html = (project.parent / p.stdout.strip()).read_text()
    assert f"run {mon}" in html and "no evaluation in this run" in html and 'id="drift"' in html


def test_bad_run_ids_and_projects_without_runs_are_plain_errors(project: Path, tmp_path: Path) -> None:
    p = mlc("report", "churn", "--run-id", "churn-nope", cwd=project.parent, check=1)
    assert "no run.json" in p.stderr and "Traceback" not in p.stderr
    fresh = tmp_path / "churn"
    shutil.copytree(REPO / "specs" / "churn", fresh, ignore=shutil.ignore_patterns(".mlc"))
    p = mlc("report", "churn", cwd=tmp_path, check=1)
    assert "no recorded run" in p.stderr and "Traceback" not in p.stderr


def test_a_regression_run_gets_predicted_vs_actual_and_residuals() -> None:
    """Without training: a recorded regression run, as read_run would return it."""
    from mlc.report import RunRecord, figures_of, page, plots

    rng = np.random.default_rng(0)
    y = rng.normal(30, 5, 200)
    steps = [{"name": "features", "status": "ok", "seconds": 1.0}, {"name": "train-a", "status": "cached",
                                                                     "seconds": 0.0, "source_run": "r0"},
             {"name": "evaluate", "status": "failed", "seconds": 0.1, "error": "boom"}]
    ev = {"winner": "a", "select_by": "rmse", "score": 1.0, "test_rows": 200, "higher_is_better": False,
          "candidates": {"a": {"step": "train-a", "metrics": {"rmse": 1.0, "r2": 0.9}, "slices": {}}}}
    rec = RunRecord("eta", "eta-model", "r1", "eta-train", "local", "regression", steps,
                    {"train-a": ["features"], "evaluate": ["train-a"]}, evaluation=ev,
                    curves={"a": (y, y + rng.normal(0, 1, 200))})
    figs = figures_of(rec, plots)
    assert set(figs) == {"dag", "predicted_vs_actual", "residuals"}
    html = page.render(rec, figs)
    assert all(f'id="{s}"' in html for s in SECTIONS)
    assert "no slice gates" in html and "no gate step" in html and "from run r0" in html and "boom" in html


def test_the_dashboard_reads_what_a_live_mlc_serve_exports(project: Path) -> None:
    """A real `mlc serve` of the model the run registered, scraped after two requests: every serving series a
    panel names is in the scrape with the labels the panel groups by. The ``role`` label and the prediction
    score histogram are declared in plan/metrics.py and come with the progressive rollout (issue 13); until
    `mlc serve` exports them they may be absent here, nothing else may."""
    sys.path.insert(0, str(REPO / "tests" / "serve"))
    from prometheus_client.parser import text_string_to_metric_families
    from serve_support import Server, churn_rows, serving_row

    from mlc.backends import grafana
    from mlc.plan import lower
    from mlc.plan import metrics as M
    from mlc.spec.validate import load_spec

    sf = load_spec(project)
    p = lower(sf.spec, sf.text, "local")
    serve_names = {M.REQUESTS_TOTAL, M.REQUEST_DURATION, M.IN_FLIGHT, M.MODEL_INFO, M.PREDICTION_SCORE}
    named = {re.sub(r"_(bucket|count|sum)$", "", s) for panel in grafana.panels(p) for q in panel.queries
             for s in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", q.expr)} & serve_names
    named.add(M.MODEL_INFO)  # the template variables' label_values() read it
    server = Server(project).wait_ready()
    try:
        import httpx

        for _ in range(2):
            r = httpx.post(f"{server.url}/predict", json=serving_row(churn_rows(1, 3)[0]), timeout=30)
            assert r.status_code == 200, r.text
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    pending = {M.PREDICTION_SCORE}  # issue 13
    for name in named:
        fam = families.get(name) or families.get(name.removesuffix("_total"))
        if fam is None:
            assert name in pending, f"{name}: a panel reads it, mlc serve does not export it"
            continue
        labels = set().union(*(s.labels for s in fam.samples))
        assert {M.MODEL_LABEL, M.VERSION_LABEL} <= labels, (name, labels)
    reqs = families.get(M.REQUESTS_TOTAL.removesuffix("_total"))
    assert reqs is not None and sum(s.value for s in reqs.samples if s.name == M.REQUESTS_TOTAL) >= 2


def test_gate_and_register_steps_export_what_the_pipeline_row_reads(project: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from mlc.plan import metrics as M

    run = _run_dir(project, _train_run(project))
    gate = json.loads((run / "gate" / "report.json").read_text())
    samples = {s.name: s for f in text_string_to_metric_families((run / "gate" / "gates.prom").read_text())
               for s in f.samples}
    gates = [s for f in text_string_to_metric_families((run / "gate" / "gates.prom").read_text())
             for s in f.samples if s.name == M.GATE_PASSED]
    assert len(gates) == len([g for g in gate["gates"] if not g.get("skipped")]) and samples
    assert all(s.value == 1.0 and s.labels[M.MODEL_LABEL] == "churn-classifier" for s in gates)
    reg = [s for f in text_string_to_metric_families((run / "register" / "register.prom").read_text())
           for s in f.samples]
    alias = {s.labels["alias"]: s.value for s in reg if s.name == M.MODEL_ALIAS_VERSION}
    assert alias == {"challenger": 1.0, "champion": 1.0}
    last = [s.value for s in reg if s.name == M.TRAIN_LAST_SUCCESS]
    assert len(last) == 1 and last[0] > 1.7e9


@pytest.mark.skipif(cdp.CHROMIUM is None, reason="Chromium is absent (apt-get install chromium); .ci/run installs it")
def test_a_fresh_regression_run_reports_predicted_vs_actual_and_residuals(tmp_path: Path) -> None:
    """The delivery-eta example end to end: trained for real, reported, rendered by Chromium."""
    shutil.copytree(REPO / "specs" / "delivery-eta", tmp_path / "delivery-eta", ignore=shutil.ignore_patterns(".mlc"))
    mlc("run", "delivery-eta", cwd=tmp_path)
    page = tmp_path / mlc("report", "delivery-eta", "--no-mlflow", cwd=tmp_path).stdout.strip()
    seen = cdp.load(cdp.file_url(page), PROBE)
    assert seen.errors == [], seen.errors
    assert seen.value["sections"] == SECTIONS
    assert seen.value["svgs"]["curves"] == 2 and seen.value["svgs"]["drift"] == 0
    html = page.read_text()
    assert "predicted vs actual" in html and "residuals" in html and "no slice gates in the spec" in html
