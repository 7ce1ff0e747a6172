"""Monitoring that is proven, not assumed: the generated rules evaluated by promtool on the series that a real
`mlc serve` exported for real traffic, and on the gauges the real drift step exported.

1. `mlc run` trains and registers the churn model (tmp copy of specs/churn).
2. A second version wraps the champion in serve_support.FailOn, which raises on ``support_tickets == 13``: a
   real model failure on the server, hence real 5xx (the rules' error ratio counts 5xx only).
3. `mlc serve` gets a healthy phase of traffic (fast one-row requests, slow large-batch requests, 4xx bad
   input), then a failing phase (the same plus requests that hit the failure); /metrics is scraped before,
   between and after.
4. Each phase's scraped increments become one minute of promtool input series (repeated to fill the rule
   windows), evaluated with the rule groups that `mlc compile` writes (mlc.plan.rules.build_rules).
5. The recorded error ratio must equal what the client saw (5xx / all requests), the recorded p95/p99 what
   histogram_quantile gives on the scraped buckets, and the fast-burn alert must fire only in the failing phase.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "serve"))
import serve_support as S

from mlc.plan import lower
from mlc.plan import metrics as M
from mlc.plan.rules import build_rules, error_ratio_name, objectives, slow_ratio_name
from mlc.runtime.tracking import use_store
from mlc.spec.validate import load_spec

pytestmark = pytest.mark.slow  # trains with `mlc run`
NAME = "churn-classifier"
SENTINEL = 13  # support_tickets value on which the faulty version raises
HEALTHY_MIN, FAILING_MIN = 60, 70  # minutes each phase's traffic is repeated in the promtool series


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    project = S.copy_project(tmp_path_factory.mktemp("mon") / "churn")
    r = subprocess.run([*S.MLC, "run", str(project)], check=False, capture_output=True, text=True, timeout=900,
                       cwd=project, env=S.clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return project


def plan_of(project: Path):
    sf = load_spec(project)
    return lower(sf.spec, sf.text, "local")


def promtool(tmp: Path, plan, tests: list[dict], series: list[dict], interval: str = "1m") -> None:
    groups = {"groups": [g.to_prometheus() for g in build_rules(plan)]}
    (tmp / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    doc = {"rule_files": ["rules.yaml"], "evaluation_interval": interval,
           "tests": [{"interval": interval, "input_series": series, **t} for t in tests]}
    (tmp / "test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    r = subprocess.run(["promtool", "test", "rules", str(tmp / "test.yaml")], check=False, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"promtool:\n{r.stdout}\n{r.stderr}\n--- test.yaml\n{(tmp / 'test.yaml').read_text()}"


def num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def labels_text(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


# ----------------------------------------------------------------------------------------------- serving
def scrape(url: str) -> dict[str, float]:
    """Counter and bucket samples of the served model, keyed by their series text."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for s in fam.samples:
            if s.name in (M.REQUESTS_TOTAL, f"{M.REQUEST_DURATION}_bucket"):
                out[labels_text(s.name, s.labels)] = s.value
    return out


async def traffic(url: str, failing: bool) -> list[int]:
    """One phase: fast good requests, slow large batches, bad input (4xx) and, when failing, model failures."""
    good = [S.serving_row(r) for r in S.churn_rows(40, seed=21)]
    good = [r for r in good if r["support_tickets"] != SENTINEL][:30]
    big = [r for r in (S.serving_row(x) for x in S.churn_rows(3000, seed=22)) if r["support_tickets"] != SENTINEL]
    cols = {"inputs": [{"name": k, "shape": [len(big)], "data": [r[k] for r in big]} for k in big[0]]}
    jobs: list[tuple[str, str, object]] = [("POST", "/predict", r) for r in good]
    jobs += [("POST", f"/v2/models/{NAME}/infer", cols)] * 3
    jobs += [("POST", "/predict", {**good[0], "plan": "gold"}), ("POST", "/predict", {**good[1], "region": None}),
             ("POST", f"/v2/models/{NAME}/infer", {"inputs": "x"}),
             ("POST", f"/v2/models/{NAME}/versions/99/infer", cols), ("GET", f"/v2/models/{NAME}", None)]
    if failing:
        jobs += [("POST", "/predict", {**r, "support_tickets": SENTINEL}) for r in good[:12]]
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        async def one(method: str, path: str, body: object) -> int:
            async with sem:
                r = await c.request(method, path, json=body)
                return r.status_code

        return await asyncio.gather(*(one(*j) for j in jobs))


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile on (upper bound, cumulative count) pairs, sorted, ending at +Inf."""
    total = buckets[-1][1]
    rank = q * total
    b = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    start, count = 0.0, buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (buckets[b][0] - start) * (rank / count)


def phase_quantile(q: float, delta: dict[str, float]) -> float:
    les: dict[float, float] = {}
    for key, v in delta.items():
        if key.startswith(f"{M.REQUEST_DURATION}_bucket"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            les[float(le)] = les.get(float(le), 0.0) + v
    return bucket_quantile(q, sorted(les.items()))


def close_to(expr: str, value: float, at: str, slo: str | None = None) -> dict:
    """A promql_expr_test that the recorded value is within 1e-9 of ``value`` (promtool compares exactly)."""
    labels = f'{{model="{NAME}"}}' if slo is None else f'{{model="{NAME}",slo="{slo}"}}'
    return {"expr": f"abs({expr} - {value!r}) < bool 1e-9", "eval_time": at,
            "exp_samples": [{"labels": labels, "value": 1}]}


def phase_slow_ratio(bound: float, delta: dict[str, float]) -> float:
    """The share of a phase's requests slower than ``bound`` seconds, from the scraped bucket increments."""
    def within(le: str) -> float:
        return sum(v for k, v in delta.items() if k.startswith(f"{M.REQUEST_DURATION}_bucket") and f'le="{le}"' in k)

    assert within("+Inf") > 0 and any(f'le="{M.le_text(bound)}"' in k for k in delta), bound  # a real bucket
    return 1 - within(M.le_text(bound)) / within("+Inf")


def test_rules_match_the_metrics_real_traffic_produced(trained: Path, tmp_path: Path) -> None:
    import mlflow.sklearn

    plan = plan_of(trained)
    uri = f"sqlite:///{trained / '.mlc' / 'mlflow.db'}"
    use_store(uri)  # tracking and registry both: another test in this worker may have set a registry URI
    champion = mlflow.sklearn.load_model(f"models:/{NAME}@champion")
    version = S.register(trained, S.FailOn(champion, "support_tickets", SENTINEL), alias="faulty")
    srv = S.Server(trained, "--alias", "faulty").wait_ready()
    try:
        s0 = scrape(srv.url)
        codes_a = asyncio.run(traffic(srv.url, failing=False))
        s1 = scrape(srv.url)
        codes_b = asyncio.run(traffic(srv.url, failing=True))
        s2 = scrape(srv.url)
    finally:
        srv.stop()

    # What the client saw: the faulty version fails exactly the sentinel requests, nothing else is a 5xx.
    ca, cb = Counter(codes_a), Counter(codes_b)
    assert ca[200] == 34 and ca[422] == 2 and ca[400] == 1 and ca[404] == 1 and not any(c >= 500 for c in ca)
    assert cb[500] == 12 and cb[200] == 34
    keys = sorted(set(s0) | set(s1) | set(s2))
    da = {k: s1.get(k, 0.0) - s0.get(k, 0.0) for k in keys}
    db = {k: s2.get(k, 0.0) - s1.get(k, 0.0) for k in keys}
    # The counters count every request the client sent, under the code it got, labelled with the version.
    for delta, codes in ((da, ca), (db, cb)):
        by_code: Counter = Counter()
        for k, v in delta.items():
            if k.startswith(M.REQUESTS_TOTAL):
                assert f'version="{version}"' in k and f'model="{NAME}"' in k
                by_code[int(k.split('code="', 1)[1][:3])] += v
        assert {c: n for c, n in by_code.items() if n} == dict(codes)

    # promtool series: phase A's increments every minute for HEALTHY_MIN minutes, then phase B's.
    series = []
    for k in keys:
        a0 = s0.get(k, 0.0)
        a_end = a0 + da[k] * HEALTHY_MIN
        series.append({"series": k, "values": f"{num(a0)}+{num(da[k])}x{HEALTHY_MIN} "
                                              f"{num(a_end + db[k])}+{num(db[k])}x{FAILING_MIN - 1}"})
    healthy_at, failing_at = f"{HEALTHY_MIN - 1}m", f"{HEALTHY_MIN + FAILING_MIN - 2}m"
    ratio_b = cb[500] / sum(cb.values())
    tests = []
    for at, delta, ratio in ((healthy_at, da, 0.0), (failing_at, db, ratio_b)):
        tests.append(close_to(f'{error_ratio_name("5m")}{{model="{NAME}"}}', ratio, at))
        tests.append(close_to(f'{error_ratio_name("1h")}{{model="{NAME}"}}', ratio, at))
        tests.append(close_to(f'{M.LATENCY_P95}{{model="{NAME}"}}', phase_quantile(0.95, delta), at))
        tests.append(close_to(f'{M.LATENCY_P99}{{model="{NAME}"}}', phase_quantile(0.99, delta), at))
        for o in objectives(plan):  # the latency SLOs' slow share, read from the buckets `mlc serve` exported
            if o.le is not None:
                tests.append(close_to(f'{slow_ratio_name("5m")}{{model="{NAME}",slo="{o.slo}"}}',
                                      phase_slow_ratio(o.le, delta), at, o.slo))
    # the slow batches are what the tail shows: p99 of the failing phase lies above the fast requests' bucket
    assert phase_quantile(0.99, db) > phase_quantile(0.5, db)

    rules = {r.name: r for g in build_rules(plan) for r in g.rules}
    burn = rules["MlcErrorBudgetBurnFast"]
    assert ratio_b > burn.param("factor") * burn.param("budget")  # the traffic really is over the SLO
    alerts = [{"eval_time": healthy_at, "alertname": burn.name, "exp_alerts": []},
              {"eval_time": failing_at, "alertname": burn.name,
               "exp_alerts": [{"exp_labels": {"model": NAME, **dict(burn.labels)},
                               "exp_annotations": dict(burn.annotations)}]},
              {"eval_time": failing_at, "alertname": "MlcInferenceMetricsAbsent", "exp_alerts": []}]
    promtool(tmp_path, plan, [{"promql_expr_test": tests, "alert_rule_test": alerts}], series)


# ----------------------------------------------------------------------------------------------- drift
def drift_gauges(project: Path, shift: float, seed: int) -> dict[str, float]:
    S_rows = S.churn_rows(1500, seed=seed, shift=shift)
    import csv

    with (project / "data" / "current.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(S_rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(S_rows)
    r = subprocess.run([*S.MLC, "run", str(project), "--pipeline", "monitor"], check=False, capture_output=True, text=True,
                       timeout=600, cwd=project, env=S.clean_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    prom = max((project / ".mlc").rglob("drift/drift.prom"), key=lambda p: p.stat().st_mtime)
    from prometheus_client.parser import text_string_to_metric_families

    return {labels_text(s.name, s.labels): s.value
            for fam in text_string_to_metric_families(prom.read_text()) for s in fam.samples}


@pytest.mark.parametrize(("shift", "seed", "drifts"), [(0.0, 1234, False), (1.5, 1235, True)])
def test_drift_alert_fires_on_a_shifted_window_only(trained: Path, tmp_path: Path, shift: float, seed: int,
                                                    drifts: bool) -> None:
    plan = plan_of(trained)
    rule = next(r for g in build_rules(plan) for r in g.rules if r.name == "MlcFeatureDrift")
    gauges = drift_gauges(trained, shift, seed)
    scores = {k.split('feature="', 1)[1].split('"', 1)[0]: v for k, v in gauges.items()
              if k.startswith(M.DRIFT_SCORE)}
    assert sorted(scores) == sorted(plan.spec.monitoring.drift.features)  # the names the rules select
    assert all(k.count(f'model="{NAME}"') == 1 for k in gauges)
    drifted = {f: v for f, v in scores.items() if v > rule.param("threshold")}
    assert bool(drifted) is drifts, scores
    series = [{"series": k, "values": f"{v!r}+0x30"} for k, v in gauges.items()]
    exp = []
    for f, v in sorted(drifted.items()):
        ann = {k: a.replace("{{ $labels.feature }}", f).replace('{{ $value | printf "%.3f" }}', f"{v:.3f}")
               for k, a in rule.annotations}
        exp.append({"exp_labels": {"model": NAME, "feature": f, "method": rule.param("method"), **dict(rule.labels)},
                    "exp_annotations": ann})
    promtool(tmp_path, plan, [{"alert_rule_test": [{"eval_time": "10m", "alertname": rule.name,
                                                     "exp_alerts": exp}]}], series)
    assert math.isfinite(sum(scores.values()))
