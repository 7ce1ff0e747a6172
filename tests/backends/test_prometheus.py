"""The monitoring rules: valid PrometheusRule (strict CRD schema), promtool-clean, tested by the generated
promtool tests, and those tests shown to be meaningful by mutating the rules they test."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crdschema import crd_validator, errors  # noqa: E402

from mlc.backends import prometheus  # noqa: E402
from mlc.emit import render  # noqa: E402
from mlc.plan import lower  # noqa: E402
from mlc.plan import metrics as M  # noqa: E402
from mlc.plan.rules import duration, num  # noqa: E402
from mlc.spec.cron import max_gap_seconds as cron_max_gap  # noqa: E402
from mlc.spec.validate import load_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CRD = "prometheus-operator-prometheusrules.crd.json"
CASES = [("churn", "prod"), ("churn", "staging"), ("delivery-eta", "prod"), ("delivery-eta", "local")]
PROMTOOL = shutil.which("promtool")
# promtool is a required test tool (make test installs it): a missing one fails these tests, it never skips them.
needs_promtool = pytest.mark.usefixtures("promtool_installed")


@pytest.fixture
def promtool_installed() -> None:
    assert PROMTOOL is not None, "promtool is required: run `make test`, or apt-get install prometheus"
DURATION = re.compile(  # the PrometheusRule CRD's pattern for `for`
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")


@cache
def spec_file(name: str):
    return load_spec(REPO / "specs" / name)


def plan(name: str, env: str, **monitoring):
    sf = spec_file(name)
    spec = sf.spec
    if monitoring:
        spec = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update=monitoring)})
    return lower(spec, sf.text, env)


def outputs(p) -> dict[str, object]:
    return {o.path: o for o in prometheus.build(p)}


def write_prometheus_files(p, dest: Path) -> Path:
    """The files exactly as `mlc compile` writes them (header, canonical YAML), into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    files = render(p, "test")
    for rel, data in files.items():
        if rel.startswith("prometheus/"):
            (dest / Path(rel).name).write_bytes(data)
    return dest


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


TEST_FILES = ("rules.test.yaml", "rules.heartbeat.test.yaml")


# ----------------------------------------------------------------------------- schema and structure
@pytest.mark.parametrize("name,env", CASES)
def test_prometheusrule_validates_strictly_and_matches_the_plain_rule_file(name: str, env: str) -> None:
    p = plan(name, env)
    outs = outputs(p)
    rule = outs["prometheus/prometheusrule-" + p.project + ".yaml"]
    assert rule.resource
    assert errors(crd_validator(CRD), rule.obj) == []
    assert rule.obj["metadata"] == {"name": p.project, "namespace": p.namespace, "labels": p.labels}
    plain = outs["prometheus/rules.yaml"]
    assert not plain.resource and plain.obj == {"groups": rule.obj["spec"]["groups"]}
    assert not outs["prometheus/rules.test.yaml"].resource
    for g in plain.obj["groups"]:
        for r in g["rules"]:
            assert ("record" in r) != ("alert" in r)
            if "for" in r:
                assert DURATION.match(r["for"]), r["for"]


def test_the_crd_validator_rejects_bad_rules() -> None:
    obj = outputs(plan("churn", "prod"))["prometheus/prometheusrule-churn.yaml"].obj
    obj["spec"]["groups"][1]["rules"][0]["for"] = "10 minutes"
    obj["spec"]["groups"][1]["rules"][0]["severity"] = "page"
    found = errors(crd_validator(CRD), obj)
    assert len(found) == 2 and any("10 minutes" in e for e in found) and any("severity" in e for e in found)


def test_every_metric_in_the_rules_is_one_mlc_exports() -> None:
    exported = {v for k, v in vars(M).items() if k.isupper() and isinstance(v, str) and v.startswith("mlc")}
    recorded = {r.name for name, env in CASES for g in plan(name, env).rules for r in g.rules if not r.alert}
    seen = set()
    for name, env in CASES:
        for g in plan(name, env).rules:
            for r in g.rules:
                # every vector selector: a metric name directly followed by {matchers}
                for metric in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", r.expr):
                    base = re.sub(r"_(bucket|count|sum)$", "", metric)
                    assert base in exported or metric in recorded, (r.name, metric)
                    seen.add(base if base in exported else metric)
                for token in re.findall(r"\bmlc[_:][a-zA-Z0-9_:]*", r.expr):  # bare names too
                    assert re.sub(r"_(bucket|count|sum)$", "", token) in exported or token in recorded, token
    assert {M.REQUESTS_TOTAL, M.REQUEST_DURATION, M.DRIFT_SCORE, M.DRIFT_LAST_RUN, M.QUALITY,
            M.QUALITY_BASELINE, M.LATENCY_P95, M.LATENCY_P99} <= seen
    slo = (M.SLO_OBJECTIVE, M.SLO_ERROR_BUDGET, M.SLO_BURN_RATE, M.SLO_BUDGET_REMAINING)
    assert all(n.startswith((M.ERROR_RATIO + ":rate", M.SLOW_RATIO + ":rate")) or n in (M.LATENCY_P95, M.LATENCY_P99, *slo)
               for n in recorded)


def test_selectors_filter_on_the_registered_model() -> None:
    for name, env in CASES:
        p = plan(name, env)
        for g in p.rules:
            for r in g.rules:
                for matchers in re.findall(r"\{([^}]*)\}", r.expr):
                    assert f'model="{p.model_name}"' in matchers, (r.name, r.expr)


def test_alerts_and_routing_labels_follow_the_spec() -> None:
    churn = {r.name: r for g in plan("churn", "prod").rules for r in g.rules if r.alert}
    assert set(churn) == {"MlcLatencyP95High", "MlcLatencyP99High", "MlcErrorBudgetBurnFast",
                          "MlcErrorBudgetBurnSlow", "MlcAvailabilityBelowObjective",
                          "MlcInferenceMetricsAbsent", "MlcFeatureDrift", "MlcDriftCheckStale",
                          "MlcDriftCheckMissing", "MlcModelQualityBelowFloor"}
    assert dict(churn["MlcErrorBudgetBurnFast"].labels) == {"severity": "page", "team": "growth-ml"}
    assert dict(churn["MlcErrorBudgetBurnSlow"].labels) == {"severity": "ticket", "team": "growth-ml"}
    assert churn["MlcLatencyP95High"].expr.endswith("> 0.05")
    assert churn["MlcLatencyP99High"].expr.endswith("> 0.2")
    fast, slow = churn["MlcErrorBudgetBurnFast"].expr, churn["MlcErrorBudgetBurnSlow"].expr
    assert "(14.4 * 0.01)" in fast and "rate1h" in fast and "rate5m" in fast
    assert "(6 * 0.01)" in slow and "rate6h" in slow and "rate30m" in slow
    assert churn["MlcAvailabilityBelowObjective"].expr.endswith("< 0.999")
    assert 'method="psi"} > 0.2' in churn["MlcFeatureDrift"].expr
    assert churn["MlcDriftCheckStale"].expr.endswith("> 172800")  # daily check: two periods
    assert churn["MlcDriftCheckMissing"].for_ == "2d"
    assert "* 0.95" in churn["MlcModelQualityBelowFloor"].expr

    eta = {r.name: r for g in plan("delivery-eta", "prod").rules for r in g.rules if r.alert}
    assert "MlcLatencyP95High" not in eta and "MlcAvailabilityBelowObjective" not in eta
    assert "MlcModelQualityBelowFloor" not in eta
    # no alerts.team: the team comes from metadata.team
    assert dict(eta["MlcFeatureDrift"].labels) == {"severity": "ticket", "team": "logistics"}
    assert "(14.4 * 0.005)" in eta["MlcErrorBudgetBurnFast"].expr
    assert eta["MlcDriftCheckStale"].expr.endswith("> 7200")  # hourly check by default

    p = plan("churn", "prod", alerts=spec_file("churn").spec.monitoring.alerts.model_copy(
        update={"team": None, "labels": {"channel": "#ml-alerts", "severity": "info"}}))
    labels = dict(next(r for g in p.rules for r in g.rules if r.alert).labels)
    assert labels == {"severity": "page", "team": "growth-ml", "channel": "#ml-alerts"}


def test_budget_from_availability_and_scale_to_zero() -> None:
    slo = spec_file("churn").spec.monitoring.slo.model_copy(update={"error_rate": None})
    p = plan("churn", "prod", slo=slo)
    fast = next(r for g in p.rules for r in g.rules if r.name == "MlcErrorBudgetBurnFast")
    assert "(14.4 * 0.001)" in fast.expr  # 1 - 0.999 without float noise
    p0 = dataclasses.replace(p, endpoint=dataclasses.replace(p.endpoint, min_replicas=0))
    assert "MlcInferenceMetricsAbsent" not in {r.name for g in p0.rules for r in g.rules}
    none = dataclasses.replace(p, endpoint=None)
    assert all("serving" not in g.name for g in none.rules)


def test_helpers() -> None:
    assert [duration(s) for s in (0, 59, 60, 7200, 172800, 90061)] == \
        ["0", "59s", "1m", "2h", "2d", "1d1h1m1s"]
    assert all(DURATION.match(duration(s)) for s in (1, 61, 3601, 86401, 10**7))
    assert [num(x) for x in (1 - 0.999, 0.05, 14.4, 6.0, 200 / 1000)] == ["0.001", "0.05", "14.4", "6", "0.2"]
    assert cron_max_gap("0 * * * *") == 3600 and cron_max_gap("0 6 * * *") == 86400
    assert cron_max_gap("0 9 * * 1-5") == 3 * 86400  # Friday to Monday
    assert cron_max_gap("0 4 1 * *") == 31 * 86400


# ----------------------------------------------------------------------------- promtool
@needs_promtool
@pytest.mark.parametrize("name,env", [("churn", "prod"), ("delivery-eta", "prod")])
def test_promtool_checks_and_tests_the_generated_rules(name: str, env: str, tmp_path: Path) -> None:
    d = write_prometheus_files(plan(name, env), tmp_path)
    check = promtool("check", "rules", "rules.yaml", cwd=d)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", *TEST_FILES, cwd=d)
    assert test.returncode == 0, test.stdout + test.stderr
    assert test.stdout.count("SUCCESS") == 2


@needs_promtool
def test_promtool_tests_pass_for_a_lower_is_better_quality_metric_with_both_floors(tmp_path: Path) -> None:
    from mlc.spec.models import Quality

    p = plan("delivery-eta", "prod", quality=Quality(metric="rmse", min=5.0, min_ratio=0.8))
    rule = next(r for g in p.rules for r in g.rules if r.name == "MlcModelQualityBelowFloor")
    assert "> 5" in rule.expr and "/ 0.8" in rule.expr  # an error metric's floor is a ceiling
    d = write_prometheus_files(p, tmp_path)
    test = promtool("test", "rules", *TEST_FILES, cwd=d)
    assert test.returncode == 0, test.stdout + test.stderr


def _mutated(src: Path, dest: Path, alert: str, expr: str) -> Path:
    """A copy of the rule files with one rule's expr replaced, and only the test groups that mention it."""
    dest.mkdir()
    rules = yaml.safe_load((src / "rules.yaml").read_text())
    hits = [r for g in rules["groups"] for r in g["rules"] if r.get("alert", r.get("record")) == alert]
    assert len(hits) == 1
    hits[0]["expr"] = expr
    (dest / "rules.yaml").write_text(yaml.safe_dump(rules))
    files = []
    for f in TEST_FILES:
        t = yaml.safe_load((src / f).read_text())
        t["tests"] = [g for g in t["tests"] if alert in yaml.safe_dump(g)]
        if t["tests"]:
            (dest / f).write_text(yaml.safe_dump(t))
            files.append(f)
    assert files, f"no promtool test mentions {alert}"
    return dest


@needs_promtool
def test_each_alert_has_a_test_that_fails_when_it_never_fires_or_always_fires(tmp_path: Path) -> None:
    p = plan("churn", "prod")
    src = write_prometheus_files(p, tmp_path / "src")
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(a, label, _mutated(src, tmp_path / f"{a}-{label}", a, expr))
            for a in (r.name for g in p.rules for r in g.rules if r.alert)
            for label, expr in (("never", "vector(0) > 1"), ("always", "vector(1)"))]
    assert len(jobs) == 20

    def passes(d: Path) -> bool:
        tests = sorted(f.name for f in d.glob("*.test.yaml"))
        return promtool("test", "rules", *tests, cwd=d).returncode == 0

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(passes, (d for *_, d in jobs)))
    survivors = [(a, label) for (a, label, _), ok in zip(jobs, results, strict=True) if ok]
    assert survivors == [], f"promtool tests still pass with these rules broken: {survivors}"


@needs_promtool
@pytest.mark.parametrize("alert,old,new", [
    ("MlcLatencyP95High", "> 0.05", "> 0.5"),  # objective raised above the slow scenario
    ("MlcFeatureDrift", "> 0.2", "> 0.5"),  # threshold raised above the drifted score
    ("MlcErrorBudgetBurnFast", "and mlc:inference_error_ratio:rate5m", "or mlc:inference_error_ratio:rate5m"),
    ("mlc:inference_error_ratio:rate5m", 'code=~"5.."', 'code=~"4.."'),
    ("mlc:inference_latency_seconds:p95", "histogram_quantile(0.95", "histogram_quantile(0.9"),
    ("MlcDriftCheckStale", "> 172800", "> 1728000"),
])
def test_a_changed_threshold_or_expression_fails_the_promtool_tests(alert: str, old: str, new: str,
                                                                      tmp_path: Path) -> None:
    p = plan("churn", "prod")
    src = write_prometheus_files(p, tmp_path / "src")
    rule = next(r for g in p.rules for r in g.rules if r.name == alert)
    assert old in rule.expr
    d = _mutated(src, tmp_path / "mutant", alert, rule.expr.replace(old, new))
    res = promtool("test", "rules", *sorted(f.name for f in d.glob("*.test.yaml")), cwd=d)
    assert res.returncode != 0, res.stdout
    assert "FAILED" in res.stdout + res.stderr
