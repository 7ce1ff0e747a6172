"""The analysis' verdicts, Argo Rollouts' semantics: failure_limit and inconclusive_limit per metric, no data
is inconclusive (or failed with on_no_data: fail) and never a crash, query errors end the analysis only after
ERROR_LIMIT in a row. The source here is a script of values: these tests are about the decisions; the
queries themselves run against a real Prometheus in test_local_loop.py."""

from __future__ import annotations

import dataclasses
import math

import pytest
from planhelpers import example_plan

from mlc.plan import analysis as A
from mlc.rollout.analysis import ERROR_LIMIT, Analysis, SourceError, number
from mlc.rollout.sources import histogram_quantile


class Script:
    """Values per (metric name, version), one per round; an Exception instance is raised instead."""

    where = "script"

    def __init__(self, values: dict[tuple[str, str], list]) -> None:
        self.values = values
        self.round = -1

    def tick(self) -> None:
        self.round += 1

    def value(self, metric: A.AnalysisMetric, version: str) -> tuple[str, float | None, str]:
        seq = self.values[(metric.name, version)]
        v = seq[min(self.round, len(seq) - 1)]
        if isinstance(v, Exception):
            raise v
        return f"{metric.name}@{version}", v, "" if v is not None else "no series"


def rollout(**kw):  # type: ignore[no-untyped-def]
    r = example_plan("churn", "prod").rollout
    assert r is not None
    return dataclasses.replace(r, **{"failure_limit": 0, "inconclusive_limit": 0, **kw})


def run(r, values: dict) -> tuple:  # type: ignore[no-untyped-def]
    slept: list[float] = []
    res = Analysis(r, Script(values), "m", "ns", canary="2", stable="1", sleep=slept.append).run()
    return res, slept


ERR = (A.builtin(A.ERROR_RATIO, max=0.01),)


def test_a_good_canary_passes_after_count_measurements() -> None:
    r = rollout(metrics=ERR, count=3, failure_limit=0, interval_seconds=60.0)
    res, slept = run(r, {("error_ratio", "2"): [0.0, 0.005, 0.01]})
    assert res.verdict == "successful"
    assert [m.verdict for m in res.measurements] == ["successful"] * 3
    assert slept == [60.0] * 3  # each measurement after a full interval of traffic


def test_failure_limit_counts_failed_measurements_and_stops_at_the_first_too_many() -> None:
    r = rollout(metrics=ERR, count=10, failure_limit=1)
    res, slept = run(r, {("error_ratio", "2"): [0.5, 0.0, 0.5, 0.0]})
    assert res.verdict == "failed"
    assert len(res.measurements) == 3 and len(slept) == 3  # failure_limit + 1 failures, then stop
    assert "failed 2 of 3 measurements (failure_limit 1)" in res.reason


def test_no_data_is_inconclusive_not_a_crash_and_on_no_data_fail_fails() -> None:
    r = rollout(metrics=ERR, count=5, inconclusive_limit=1)
    res, _ = run(r, {("error_ratio", "2"): [None]})
    assert res.verdict == "inconclusive" and len(res.measurements) == 2
    assert res.measurements[0].note == "no series" and res.measurements[0].value is None
    res, _ = run(dataclasses.replace(r, on_no_data="fail"), {("error_ratio", "2"): [None]})
    assert res.verdict == "failed" and len(res.measurements) == 1


def test_relative_to_stable_and_score_shift_compare_the_two_versions() -> None:
    rel = A.builtin(A.RELATIVE, of=A.LATENCY_P95, margin=0.01)
    shift = A.builtin(A.SCORE_SHIFT, max=0.1)
    r = rollout(metrics=(rel, shift), count=2)
    res, _ = run(r, {("relative_to_stable", "2"): [0.05, 0.05], ("relative_to_stable", "1"): [0.045, 0.045],
                     ("score_shift", "2"): [0.30, 0.30], ("score_shift", "1"): [0.25, 0.25]})
    assert res.verdict == "successful"
    m = res.measurements[0]
    assert (m.value, m.stable_value) == (0.05, 0.045) and m.stable_query == "relative_to_stable@1"
    res, _ = run(r, {("relative_to_stable", "2"): [0.08], ("relative_to_stable", "1"): [0.045],
                     ("score_shift", "2"): [0.5], ("score_shift", "1"): [0.25]})
    assert res.verdict == "failed"
    assert {m.metric: m.verdict for m in res.measurements} == {"relative_to_stable": "failed",
                                                                "score_shift": "failed"}
    res, _ = run(r, {("relative_to_stable", "2"): [0.05], ("relative_to_stable", "1"): [None],
                     ("score_shift", "2"): [0.3], ("score_shift", "1"): [0.3]})
    assert res.verdict == "inconclusive"  # stable without data: nothing to compare with
    res, _ = run(dataclasses.replace(r, inconclusive_limit=5), {
        ("relative_to_stable", "2"): [0.05], ("relative_to_stable", "1"): [None],
        ("score_shift", "2"): [0.3], ("score_shift", "1"): [0.3]})
    assert res.verdict == "inconclusive"  # within the limit, but never once measured: no evidence, no promotion
    assert "never measured" in res.reason


def test_query_errors_end_the_analysis_only_after_the_error_limit() -> None:
    r = rollout(metrics=ERR, count=ERROR_LIMIT + 3)
    down = SourceError("Prometheus at http://x is unreachable")
    res, _ = run(r, {("error_ratio", "2"): [down, down, 0.0]})
    assert res.verdict == "successful"  # two errors in a row, then it answered
    res, _ = run(r, {("error_ratio", "2"): [down]})
    assert res.verdict == "error" and "unreachable" in res.reason


def test_custom_bounds_and_interruption() -> None:
    both = A.custom("conv", 'sum(x{version="$version"})', min=0.2, max=0.9)
    r = rollout(metrics=(both,), count=3)
    res, _ = run(r, {("conv", "2"): [0.5, 0.1]})
    assert res.verdict == "failed" and res.measurements[-1].threshold == "conv >= 0.2 and <= 0.9"
    calls = iter([None, "promoted by `mlc rollout`"])
    res = Analysis(r, Script({("conv", "2"): [0.5]}), "m", "ns", "2", "1", sleep=lambda s: None,
                   interrupted=lambda: next(calls)).run()
    assert res.verdict == "interrupted" and len(res.measurements) == 1


def test_render_fills_every_placeholder() -> None:
    q = A.render(A.QUERIES[A.ERROR_RATIO], model="churn-classifier", version="7", namespace="ns", interval="30s")
    assert "$" not in q
    assert 'version="7"' in q and "[30s]" in q and 'code=~"5.."' in q and "or vector(0)" in q


def test_number_and_histogram_quantile() -> None:
    assert number("0.25") == 0.25 and number("NaN") is None and number("+Inf") is None and number(None) is None
    # 100 observations: 50 under 0.1 s, 40 more under 0.2 s, 10 more under 0.4 s
    b = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, b) == pytest.approx(0.1)
    assert histogram_quantile(0.95, b) == pytest.approx(0.2 + 0.2 * 0.5)
    assert histogram_quantile(0.99, {0.1: 10.0, math.inf: 20.0}) == 0.1  # in +Inf: the largest finite bound
    assert histogram_quantile(0.95, {0.1: 0.0, math.inf: 0.0}) is None


def test_the_prometheus_of_each_environment() -> None:
    """The analysis' address is the cluster's: a cluster environment uses its own, then the analysis', then
    prometheus-operator's Service; `local` uses only its own (none: `mlc serve`'s /metrics directly)."""
    from mlc.plan.lowering import DEFAULT_PROMETHEUS

    assert example_plan("churn", "local").rollout.prometheus is None
    assert example_plan("churn", "staging").rollout.prometheus == "http://prometheus.monitoring-staging.svc:9090"
    assert example_plan("churn", "prod").rollout.prometheus == "http://prometheus-operated.monitoring.svc:9090"
    assert DEFAULT_PROMETHEUS == "http://prometheus-operated.monitoring.svc:9090"
