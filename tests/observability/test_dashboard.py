"""The generated Grafana dashboard: built by grafana-foundation-sdk, byte-stable, every query valid PromQL
(promtool) and naming only series mlc exports or records, thresholds taken from the plan, and the ConfigMap that
carries it in the kustomization."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from planhelpers import EXAMPLE_ENVS, example_plan

from mlc.backends import grafana
from mlc.emit import render
from mlc.plan import metrics as M
from mlc.plan.rules import BURN_RATES, objectives

REPO = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is absent (apt-get install prometheus)")
GRAFANA_MACROS = {"$__rate_interval": "5m", "$namespace": ".*", "$version": ".*"}


def exported() -> set[str]:
    """What mlc serve, the pipeline and monitoring steps export: the raw metric names of plan/metrics.py."""
    return {v for k, v in vars(M).items() if k.isupper() and isinstance(v, str) and v.startswith("mlc_")}


def recorded(p) -> set[str]:
    return {r.name for g in p.rules for r in g.rules if not r.alert}


def series_names(expr: str) -> set[str]:
    """Every metric name in a PromQL expression: names followed by ``{``, and bare ``mlc`` names."""
    names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
    names |= set(re.findall(r"\bmlc[_:][a-zA-Z0-9_:]*", expr))
    return names


def concrete(expr: str, model: str) -> str:
    """A panel query with Grafana's variables and macros replaced, as Grafana sends it to Prometheus."""
    for k, v in GRAFANA_MACROS.items():
        expr = expr.replace(k, v)
    return expr.replace("$model", model)


@pytest.mark.parametrize("name,env", EXAMPLE_ENVS)
def test_every_series_a_panel_names_is_exported_or_recorded(name: str, env: str) -> None:
    p = example_plan(name, env)
    known = exported() | recorded(p)
    seen = set()
    for panel in grafana.panels(p):
        for q in panel.queries:
            for s in series_names(q.expr):
                base = re.sub(r"_(bucket|count|sum)$", "", s)
                assert s in known or base in exported(), (panel.title, s)
                seen.add(base if base in exported() else s)
    # the rows the issue asks for read these
    assert {M.REQUESTS_TOTAL, M.REQUEST_DURATION, M.IN_FLIGHT, M.PREDICTION_SCORE, M.DRIFT_SCORE, M.SLO_OBJECTIVE,
            M.SLO_BUDGET_REMAINING, M.SLO_BURN_RATE, M.TRAIN_LAST_SUCCESS, M.GATE_PASSED,
            M.MODEL_ALIAS_VERSION} <= seen


def test_the_series_names_a_panel_uses_are_found_even_when_misspelt() -> None:
    """The check above is not vacuous: a misspelt name in a query is caught."""
    names = series_names('sum(rate(mlc_inference_request_total{model="$model"}[5m])) / mlc:slo_burn_rate:ratio')
    assert names == {"mlc_inference_request_total", "mlc:slo_burn_rate:ratio"}
    assert "mlc_inference_request_total" not in exported()


@needs_promtool
@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "prod")])
def test_every_panel_query_passes_promtool(name: str, env: str, tmp_path: Path) -> None:
    p = example_plan(name, env)
    rules = [{"record": f"mlc_panel:query{i}", "expr": concrete(q.expr, p.model_name)}
             for i, q in enumerate(q for panel in grafana.panels(p) for q in panel.queries)]
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    r = subprocess.run([PROMTOOL, "check", "rules", "panels.yaml"], cwd=tmp_path, check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout
    # and promtool is a real check: a broken query fails it
    rules[0]["expr"] += " by"
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    bad = subprocess.run([PROMTOOL, "check", "rules", "panels.yaml"], cwd=tmp_path, check=False, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0


@needs_promtool
def test_panel_queries_compute_what_their_titles_say(tmp_path: Path) -> None:
    """Two panels evaluated by promtool on series shaped like mlc serve's: the requests/s split by version and
    role, and the 5xx ratio per version."""
    p = example_plan("churn", "prod")
    by_title = {panel.title: panel for panel in grafana.panels(p)}
    reqs = concrete(by_title["Requests/s by version and role"].queries[0].expr, p.model_name)
    ratio = concrete(by_title["Error ratio (5xx) by version"].queries[0].expr, p.model_name)
    base = f'{M.REQUESTS_TOTAL}{{namespace="ns",model="{p.model_name}",route="/v2/models/m/infer"'
    series = [  # per minute: v1 stable 180 ok + 60 errors, v2 canary 60 ok
        {"series": base + ',version="1",role="stable",code="200"}', "values": "0+180x30"},
        {"series": base + ',version="1",role="stable",code="500"}', "values": "0+60x30"},
        {"series": base + ',version="2",role="canary",code="200"}', "values": "0+60x30"},
    ]
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    test = {"rule_files": ["empty.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": reqs, "eval_time": "20m", "exp_samples": [
                {"labels": '{version="1",role="stable"}', "value": 4},
                {"labels": '{version="2",role="canary"}', "value": 1}]},
            {"expr": ratio, "eval_time": "20m", "exp_samples": [
                {"labels": '{version="1"}', "value": 0.25}, {"labels": '{version="2"}', "value": 0}]}]}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(test))
    r = subprocess.run([PROMTOOL, "test", "rules", "t.yaml"], cwd=tmp_path, check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_thresholds_come_from_the_plan() -> None:
    p = example_plan("churn", "prod")
    by_title = {panel.title: panel for panel in grafana.panels(p)}
    assert {v for v, _ in by_title["Latency p50 / p95 / p99 by version"].thresholds} == {0.05, 0.2}  # p95, p99 ms
    # the 5xx budgets (error-rate 1%, availability 0.1%), not the latency SLOs' budgets of slow requests
    assert {v for v, _ in by_title["Error ratio (5xx) by version"].thresholds} == {0.01, 0.001}
    assert {o.budget for o in objectives(p) if o.le is None} == {0.01, 0.001}
    burn = by_title["error-rate: burn rate per alert window"]
    assert {v for v, _ in burn.thresholds} == {f for _, f, *_ in BURN_RATES}
    slow = by_title["latency-p95: burn rate per alert window"]  # no burn alert reads it, so no line
    assert slow.thresholds == () and "slower than 50 ms" in slow.description
    assert [v for v, _ in by_title["Drift per feature (psi)"].thresholds] == [0.2]
    assert "* 0.95" in by_title["Live roc_auc against its floor"].queries[1].expr  # min_ratio of the baseline


def test_rows_template_variables_and_uid() -> None:
    p = example_plan("churn", "prod")
    d = json.loads(grafana.dashboard_json(p))
    rows = [x["title"] for x in d["panels"] if x["type"] == "row"]
    assert rows == ["Traffic", "Latency", "SLOs", "Model", "Pipeline"]
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource", "namespace", "model", "version"]
    assert d["uid"] == "mlc-churn-prod" and len(d["uid"]) <= 40
    kinds = {x["title"]: x["type"] for x in d["panels"]}
    assert kinds["Prediction score distribution"] == "heatmap"
    assert kinds["error-rate: error budget remaining (30d)"] == "stat"
    ids = [x["id"] for x in d["panels"]]
    assert len(ids) == len(set(ids))
    for x in d["panels"]:  # panels lie on the 24-column grid without overlapping
        assert x["gridPos"]["x"] + x["gridPos"]["w"] <= 24
    cells = [(x["gridPos"]["x"] + i, x["gridPos"]["y"] + j) for x in d["panels"]
             for i in range(x["gridPos"]["w"]) for j in range(x["gridPos"]["h"])]
    assert len(cells) == len(set(cells))
    dashed = [x for x in d["panels"] if x.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
              .get("thresholdsStyle", {}).get("mode") == "dashed"]
    assert {x["title"] for x in dashed} >= {"Latency p50 / p95 / p99 by version", "Drift per feature (psi)"}


def test_a_project_without_an_endpoint_has_model_and_pipeline_rows_only() -> None:
    import dataclasses

    p = dataclasses.replace(example_plan("churn", "prod"), endpoint=None)
    rows = {panel.row for panel in grafana.panels(p)}
    assert rows == {"Model", "Pipeline"}


def test_long_names_get_a_stable_hashed_uid() -> None:
    import dataclasses

    p = dataclasses.replace(example_plan("churn", "prod"), project="a-very-long-project-name-for-the-grafana-uid")
    u = grafana.uid(p)
    assert len(u) == 40 and u == grafana.uid(p) and u.startswith("mlc-a-very-long")


@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "local")])
def test_configmap_and_json_are_byte_stable_and_in_the_kustomization(name: str, env: str) -> None:
    p = example_plan(name, env)
    a, b = render(p, "x"), render(example_plan(name, env), "x")
    path = f"grafana/dashboard-{name}.json"
    assert a[path] == b[path]
    text = a[path].decode()
    assert json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n" == text  # sorted keys, no header
    cm_path = f"grafana/configmap-{name}-dashboard.yaml"
    cm = yaml.safe_load(a[cm_path])
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"][f"{name}.json"] == text
    kust = yaml.safe_load(a["kustomization.yaml"])
    assert cm_path in kust["resources"] and path not in kust["resources"]


def test_the_committed_dashboards_are_current() -> None:
    """generated/ holds them (mlc compile --check covers them too); this names the file when one is stale."""
    for name, env in EXAMPLE_ENVS:
        committed = REPO / "generated" / name / env / "grafana" / f"dashboard-{name}.json"
        assert committed.read_text() == grafana.dashboard_json(example_plan(name, env)), committed


def test_validate_does_not_import_the_grafana_sdk() -> None:
    import sys

    code = "import sys, mlc.cli, mlc.emit, mlc.backends.grafana; print('grafana_foundation_sdk' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_the_readme_lists_the_panels_of_the_committed_churn_dashboard() -> None:
    readme = (REPO / "README.md").read_text()
    d = json.loads((REPO / "generated" / "churn" / "prod" / "grafana" / "dashboard-churn.json").read_text())
    listed, row = [], ""
    for x in d["panels"]:
        if x["type"] == "row":
            row = x["title"]
        else:
            listed.append((row, x["title"], x["type"]))
    table = [tuple(c.strip() for c in line.strip("|").split("|")[:3]) for line in readme.splitlines()
             if re.match(r"\| (Traffic|Latency|SLOs|Model|Pipeline) \|", line)]
    assert table == listed


def _without_empty_custom(x):
    if isinstance(x, dict):
        return {k: _without_empty_custom(v) for k, v in x.items() if not (k == "custom" and v == {})}
    if isinstance(x, list):
        return [_without_empty_custom(v) for v in x]
    return x


@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "prod")])
def test_the_json_round_trips_through_the_sdk_dashboard_model(name: str, env: str) -> None:
    """Decoded by the SDK's typed model (which drops keys it does not know) and encoded again, the JSON comes
    back the same, up to the empty ``custom`` objects decoding adds: every key is one Grafana's schema has."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    text = (REPO / "generated" / name / env / "grafana" / f"dashboard-{name}.json").read_text()
    again = json.loads(json.dumps(Dashboard.from_json(json.loads(text)), cls=JSONEncoder))
    assert _without_empty_custom(again) == json.loads(text)
    broken = json.loads(text)
    broken["panels"][1]["fieldConfig"]["defaults"]["unitt"] = "s"  # a misspelt key is dropped, so it shows
    assert _without_empty_custom(json.loads(json.dumps(Dashboard.from_json(broken), cls=JSONEncoder))) != broken
