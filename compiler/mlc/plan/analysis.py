"""The rollout's analysis metrics: the built-ins over the series `mlc serve` exports, and raw PromQL.

Defined once, here: the spec checks read the names and bounds, lowering turns each spec metric into an
``AnalysisMetric`` of the Plan, and the analysis (mlc.rollout.analysis) renders the queries for one version.
Every built-in is a query per version, so the canary's and the stable revision's series are compared by
their ``version`` label, never by pod or revision name.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlc.plan import metrics as m

ERROR_RATIO = "error_ratio"
LATENCY_P95 = "latency_p95"
LATENCY_P99 = "latency_p99"
SCORE_SHIFT = "score_shift"
RELATIVE = "relative_to_stable"
BUILTINS = (ERROR_RATIO, LATENCY_P95, LATENCY_P99, SCORE_SHIFT, RELATIVE)
# What relative_to_stable may compare: a metric where lower is better.
RELATIVE_OF = (ERROR_RATIO, LATENCY_P95, LATENCY_P99)
UNITS = {ERROR_RATIO: "share of requests (0..1)", LATENCY_P95: "seconds", LATENCY_P99: "seconds",
         SCORE_SHIFT: "absolute difference of mean scores"}

_SEL = '{model="$model",version="$version"}'
_SEL_5XX = '{model="$model",version="$version",code=~"5.."}'
QUERIES = {
    # `or vector(0)`: no 5xx series at all means no errors, not no data (argo-rollouts#1466)
    ERROR_RATIO: (f"(sum(rate({m.REQUESTS_TOTAL}{_SEL_5XX}[$interval])) or vector(0)) / "
                  f"sum(rate({m.REQUESTS_TOTAL}{_SEL}[$interval]))"),
    LATENCY_P95: f"histogram_quantile(0.95, sum by (le) (rate({m.REQUEST_DURATION}_bucket{_SEL}[$interval])))",
    LATENCY_P99: f"histogram_quantile(0.99, sum by (le) (rate({m.REQUEST_DURATION}_bucket{_SEL}[$interval])))",
    # the mean score of one version; score_shift compares the canary's with stable's
    "score_mean": (f"sum(rate({m.PREDICTION_SCORE}_sum{_SEL}[$interval])) / "
                   f"sum(rate({m.PREDICTION_SCORE}_count{_SEL}[$interval]))"),
}


@dataclass(frozen=True)
class AnalysisMetric:
    """One metric of the Plan's analysis, with its query template and pass condition."""

    name: str  # a built-in or the user's own name
    kind: str  # error_ratio | latency_p95 | latency_p99 | score_shift | relative_to_stable | query
    query: str  # PromQL with $model, $version, $namespace, $interval (for score_shift: the mean score)
    min: float | None = None
    max: float | None = None  # for relative_to_stable: the margin above stable's value
    of: str | None = None  # relative_to_stable: the compared built-in

    @property
    def needs_stable(self) -> bool:
        return self.kind in (SCORE_SHIFT, RELATIVE)

    def describe(self) -> str:
        if self.kind == RELATIVE:
            return f"{self.of} of the canary <= stable's + {self.max:g}"
        if self.kind == SCORE_SHIFT:
            return f"|mean score canary - stable| <= {self.max:g}"
        bounds = [f">= {self.min:g}" if self.min is not None else "", f"<= {self.max:g}" if self.max is not None
                  else ""]
        return f"{self.name} {' and '.join(b for b in bounds if b)}"


def builtin(name: str, *, min: float | None = None, max: float | None = None, of: str | None = None,
            margin: float | None = None) -> AnalysisMetric:
    if name == RELATIVE:
        assert of is not None
        return AnalysisMetric(name, RELATIVE, QUERIES[of], max=margin or 0.0, of=of)
    if name == SCORE_SHIFT:
        return AnalysisMetric(name, SCORE_SHIFT, QUERIES["score_mean"], max=max)
    return AnalysisMetric(name, name, QUERIES[name], min=min, max=max)


def custom(name: str, query: str, *, min: float | None, max: float | None) -> AnalysisMetric:
    return AnalysisMetric(name, "query", query, min=min, max=max)


def render(template: str, *, model: str, version: str, namespace: str, interval: str) -> str:
    """Fill a query template. Plain replacement, longest name first, so $version never eats a $versions."""
    out = template
    for k, v in sorted({"model": model, "version": version, "namespace": namespace,
                        "interval": interval}.items(), key=lambda kv: -len(kv[0])):
        out = out.replace(f"${k}", v)
    return out
