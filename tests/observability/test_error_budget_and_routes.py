"""The Sloth-style error-budget recording rules (proven by the generated promtool tests, and those tests shown
to fail when a rule is wrong) and the Alertmanager routing snippet (checked by the real amtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from planhelpers import EXAMPLE_ENVS, example_plan

from mlc.backends import alertmanager
from mlc.emit import render
from mlc.plan import metrics as M
from mlc.plan.rules import objectives

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is absent (apt-get install prometheus)")
needs_amtool = pytest.mark.skipif(AMTOOL is None,
                                  reason="amtool is absent (apt-get install prometheus-alertmanager)")
TEST_FILES = ("rules.test.yaml", "rules.heartbeat.test.yaml")


def slo_rules(p) -> list:
    return [r for g in p.rules for r in g.rules if r.kind.startswith("slo-")]


def test_one_objective_budget_and_remaining_per_slo_and_a_burn_rate_per_alert_window() -> None:
    p = example_plan("churn", "prod")
    # churn: error_rate 0.01, availability 0.999, latency p95 50 ms and p99 200 ms
    assert [(o.slo, o.objective, o.budget, o.le) for o in objectives(p)] == [
        ("error-rate", 0.99, 0.01, None), ("availability", 0.999, 0.001, None),
        ("latency-p95", 0.95, 0.05, 0.05), ("latency-p99", 0.99, 0.01, 0.2)]
    rules = slo_rules(p)
    for o in objectives(p):
        mine = [r for r in rules if dict(r.labels)[M.SLO_LABEL] == o.slo]
        assert [r.name for r in mine if r.name != M.SLO_BURN_RATE] == [M.SLO_OBJECTIVE, M.SLO_ERROR_BUDGET,
                                                                       M.SLO_BUDGET_REMAINING]
        windows = [dict(r.labels)[M.WINDOW_LABEL] for r in mine if r.name == M.SLO_BURN_RATE]
        assert windows == ["5m", "30m", "1h", "6h", "30d"]
        remaining = next(r for r in mine if r.name == M.SLO_BUDGET_REMAINING)
        ratio = ("mlc:inference_error_ratio:rate30d{model=\"%s\"}" % p.model_name if o.le is None else
                 "mlc:inference_slow_ratio:rate30d{model=\"%s\",slo=\"%s\"}" % (p.model_name, o.slo))
        assert remaining.expr == f"1 - {ratio} / {o.budget}"
    # a latency SLO's bad requests are those above its bound, a bucket `mlc serve` exports for this plan
    slow = {dict(r.labels)[M.SLO_LABEL]: r.expr for g in p.rules for r in g.rules
            if r.name == "mlc:inference_slow_ratio:rate1h"}
    assert set(slow) == {"latency-p95", "latency-p99"}
    assert 'le="0.05"' in slow["latency-p95"] and 'le="0.2"' in slow["latency-p99"]
    assert all('le="+Inf"' in e for e in slow.values())
    assert 0.2 in p.latency_buckets and 0.2 not in M.LATENCY_BUCKETS  # added for p99_ms: 200
    # the SLO rules follow the error ratios they read, in the same group (evaluated in order)
    group = next(g for g in p.rules if g.name.endswith("serving.recording"))
    names = [r.name for r in group.rules]
    assert max(i for i, n in enumerate(names) if n.startswith(M.ERROR_RATIO)) < names.index(M.SLO_OBJECTIVE)


def test_no_slo_no_budget_rules() -> None:
    p = example_plan("churn", "prod")
    import dataclasses

    spec = p.spec.model_copy(update={"monitoring": p.spec.monitoring.model_copy(update={"slo": None})})
    q = dataclasses.replace(p, spec=spec)
    assert slo_rules(q) == [] and objectives(q) == ()


def _write(p, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in render(p, "test").items():
        if rel.startswith("prometheus/"):
            (dest / Path(rel).name).write_bytes(data)
    return dest


def _promtool_test(d: Path) -> subprocess.CompletedProcess:
    files = [f for f in TEST_FILES if (d / f).exists()]
    return subprocess.run([PROMTOOL, "test", "rules", *files], cwd=d, check=False, capture_output=True, text=True, timeout=120)


@needs_promtool
@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "prod")])
def test_the_generated_promtool_tests_prove_every_slo_rule(name: str, env: str, tmp_path: Path) -> None:
    p = example_plan(name, env)
    d = _write(p, tmp_path)
    tests = yaml.safe_load((d / "rules.test.yaml").read_text())
    exprs = "\n".join(t["expr"] for g in tests["tests"] for t in g.get("promql_expr_test", []))
    for r in slo_rules(p):  # each one checked in the healthy and in the failing scenario
        labels = ",".join(f'{k}="{v}"' for k, v in sorted({M.MODEL_LABEL: p.model_name, **dict(r.labels)}.items()))
        assert exprs.count(f"{r.name}{{{labels}}}") == 2, (r.name, labels)
    r = _promtool_test(d)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
@pytest.mark.parametrize("name,labels,old,new", [
    (M.SLO_OBJECTIVE, {"slo": "error-rate"}, "vector(0.99)", "vector(0.9)"),
    (M.SLO_ERROR_BUDGET, {"slo": "availability"}, "vector(0.001)", "vector(0.01)"),
    (M.SLO_BURN_RATE, {"slo": "error-rate", "window": "1h"}, "/ 0.01", "/ 0.02"),
    (M.SLO_BURN_RATE, {"slo": "availability", "window": "6h"}, "/ 0.001", "* 0.001"),
    (M.SLO_BUDGET_REMAINING, {"slo": "error-rate"}, "1 - ", "0.9 - "),
    (M.SLO_BURN_RATE, {"slo": "latency-p95", "window": "30m"}, "/ 0.05", "/ 0.5"),
    (M.SLO_BUDGET_REMAINING, {"slo": "latency-p99"}, "/ 0.01", "/ 0.1"),
    ("mlc:inference_slow_ratio:rate6h", {"slo": "latency-p95"}, 'le="0.05"', 'le="0.5"'),
])
def test_a_wrong_slo_rule_fails_the_promtool_tests(name: str, labels: dict, old: str, new: str,
                                                   tmp_path: Path) -> None:
    p = example_plan("churn", "prod")
    d = _write(p, tmp_path)
    rules = yaml.safe_load((d / "rules.yaml").read_text())
    hits = [r for g in rules["groups"] for r in g["rules"]
            if r.get("record") == name and all(r.get("labels", {}).get(k) == v for k, v in labels.items())]
    assert len(hits) == 1 and old in hits[0]["expr"]
    hits[0]["expr"] = hits[0]["expr"].replace(old, new)
    (d / "rules.yaml").write_text(yaml.safe_dump(rules))
    r = _promtool_test(d)
    assert r.returncode != 0 and "FAILED" in r.stdout + r.stderr, r.stdout


# ----------------------------------------------------------------------------- Alertmanager
def _config(snippet: dict) -> dict:
    """The snippet installed as docs/observability.md says: its route under the root route, its receivers
    defined (by name only here; a real config adds their integrations)."""
    return {"route": {"receiver": "default", "group_by": ["alertname"], "routes": [snippet["route"]]},
            "receivers": [{"name": "default"}, *snippet["receivers"]]}


def test_routes_reference_receivers_by_name_only() -> None:
    for name, env in EXAMPLE_ENVS:
        p = example_plan(name, env)
        snippet = alertmanager.routes(p)
        assert snippet is not None
        for rcv in snippet["receivers"]:
            assert list(rcv) == ["name"]  # no integration, URL or secret
        text = render(p, "x")[alertmanager.ROUTES_FILE].decode()
        assert "http" not in text and "secret" not in text.lower()
        assert alertmanager.ROUTES_FILE not in yaml.safe_load(render(p, "x")["kustomization.yaml"])["resources"]


@needs_amtool
@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "prod")])
def test_amtool_checks_the_config_and_routes_each_alert_to_its_team_and_severity(name: str, env: str,
                                                                                 tmp_path: Path) -> None:
    p = example_plan(name, env)
    snippet = yaml.safe_load(render(p, "x")[alertmanager.ROUTES_FILE])  # the bytes compile writes
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(_config(snippet)))
    r = subprocess.run([AMTOOL, "check-config", str(cfg)], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    for g in p.rules:
        for rule in g.rules:
            if not rule.alert:
                continue
            labels = {"alertname": rule.name, M.MODEL_LABEL: p.model_name, **dict(rule.labels)}
            t = subprocess.run([AMTOOL, "config", "routes", "test", "--config.file", str(cfg),
                                *(f"{k}={v}" for k, v in labels.items())], check=False, capture_output=True, text=True,
                               timeout=60)
            want = alertmanager.receiver(p, labels["severity"])
            assert t.stdout.strip() == want, (rule.name, t.stdout, t.stderr)
    # another model's alerts do not reach this project's receivers
    t = subprocess.run([AMTOOL, "config", "routes", "test", "--config.file", str(cfg), "model=other",
                        "severity=page"], check=False, capture_output=True, text=True, timeout=60)
    assert t.stdout.strip() == "default"


@needs_amtool
def test_amtool_rejects_a_broken_snippet(tmp_path: Path) -> None:
    """amtool is a real check: a route to a receiver nobody defined fails it."""
    snippet = alertmanager.routes(example_plan("churn", "prod"))
    assert snippet is not None
    snippet["receivers"] = snippet["receivers"][1:]
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(_config(snippet)))
    r = subprocess.run([AMTOOL, "check-config", str(cfg)], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "undefined receiver" in r.stdout + r.stderr
