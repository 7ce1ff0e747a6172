"""Checks of progressive delivery (deployment.online.rollout): steps, durations, analysis metrics, the mode.

    E207 rollout steps (range, order, end at 100)   E208 canary needs Knative (Serverless) mode
    E217 duration (pause, interval)                 E216 not a URL (prometheus)
    E227 unknown or misused analysis metric         E228 threshold missing, of the wrong sign or out of range
    E229 both `canary` and `rollout.steps`          E230 a cluster environment's targets leave out argo
"""

from __future__ import annotations

from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.plan import analysis as A
from mlc.spec.checks.common import closest, diag
from mlc.spec.checks.deployment import _is_url
from mlc.spec.checks.monitoring import _DURATION
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec

ROLLOUT = ("deployment", "online", "rollout")
DURATION_HINT = "a number and a unit (ms, s, m, h, d), e.g. 30s, 10m or 1h"


def rollout(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    online = spec.deployment.online
    if online is None:
        return
    r = online.rollout
    if r is not None and r.steps is not None and online.canary:
        yield diag(loaded, "E229", ROLLOUT + ("steps",), "both `canary` and `rollout.steps` are given",
                   "keep one: `canary: [10, 50, 100]` is short for rollout steps held 5m each")
    weights = [s.weight for s in r.steps] if r is not None and r.steps is not None else list(online.canary)
    if r is not None and r.steps is not None:
        yield from _steps(loaded, [s.weight for s in r.steps])
        for i, s in enumerate(r.steps):
            if s.pause is not None and not _DURATION.match(s.pause):
                yield diag(loaded, "E217", ROLLOUT + ("steps", i, "pause"), f"invalid duration {s.pause!r}",
                           DURATION_HINT)
    elif online.canary and online.canary[-1] != 100 and online.canary == sorted(online.canary):
        yield diag(loaded, "E207", ("deployment", "online", "canary", len(online.canary) - 1),
                   f"the last canary step is {online.canary[-1]}, not 100",
                   f"end the list with 100, which promotes the new version, e.g. {[*online.canary, 100]}")
    if (weights or r is not None) and online.mode != "Knative":
        where = ROLLOUT if r is not None else ("deployment", "online", "canary")
        yield diag(loaded, "E208", where,
                   f"a canary rollout needs `mode: Knative` (KServe's Serverless mode), not {online.mode} "
                   "(RawDeployment), where KServe ignores canaryTrafficPercent without a word (kserve#5335)",
                   "set `mode: Knative`, or remove the canary to deploy each version at once")
    if weights or r is not None:
        yield from _argo_targets(spec, loaded)
    if r is None:
        return
    a = r.analysis
    if not _DURATION.match(a.interval):
        yield diag(loaded, "E217", ROLLOUT + ("analysis", "interval"), f"invalid duration {a.interval!r}",
                   DURATION_HINT)
    if a.prometheus is not None and not _is_url(a.prometheus):
        yield diag(loaded, "E216", ROLLOUT + ("analysis", "prometheus"),
                   f"prometheus {a.prometheus!r} is not an http(s) URL",
                   "e.g. http://prometheus-operated.monitoring.svc:9090")
    if a.metrics == []:
        yield diag(loaded, "E227", ROLLOUT + ("analysis", "metrics"), "no analysis metrics: nothing would judge "
                   "the canary, and every step would pass", "list at least one, e.g. [{name: error_ratio, max: 0.01}],"
                   " or remove `metrics` for the defaults (error_ratio and latency_p95 from the SLO)")
    seen: dict[str, int] = {}
    for i, metric in enumerate(a.metrics or []):
        path = ROLLOUT + ("analysis", "metrics", i)
        if metric.name in seen:
            yield diag(loaded, "E227", path + ("name",), f"analysis metric '{metric.name}' is listed twice",
                       f"analysis.metrics[{seen[metric.name]}] already measures it; give a custom one its own name")
        seen.setdefault(metric.name, i)
        yield from _metric(loaded, path, metric)


def _argo_targets(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    """On a cluster the loop runs as the ``<project>-rollout`` Argo Workflow, which the deploy step starts;
    an environment that compiles no Argo would deploy the canary and leave it at its first weight. (Local
    environments, without a tracking_uri, run the loop with `mlc rollout start`.)"""
    for name, env in spec.environments.items():
        if name == "local" or env.tracking_uri is None or "argo" in env.targets:
            continue
        yield diag(loaded, "E230", ("environments", name, "targets"),
                   f"environment {name} has a canary rollout, but its targets ({', '.join(env.targets)}) leave out "
                   "argo: the rollout runs as an Argo Workflow, so the canary would never move past its first step",
                   f"add argo to the targets, e.g. targets: [{', '.join([*env.targets, 'argo'])}]; or remove the "
                   "canary to deploy each version at once")


def _steps(loaded: Loaded, weights: list[int]) -> Iterator[Diagnostic]:
    path = ROLLOUT + ("steps",)
    if not weights:
        yield diag(loaded, "E207", path, "rollout.steps is empty",
                   "list the weights, e.g. [{weight: 10, pause: 10m}, {weight: 50, pause: 30m}, {weight: 100}]")
        return
    for i, w in enumerate(weights):
        if not 1 <= w <= 100:
            yield diag(loaded, "E207", path + (i, "weight"), f"rollout weight {w} is outside 1..100",
                       "weights are traffic percentages")
        elif i and w <= weights[i - 1]:
            yield diag(loaded, "E207", path + (i, "weight"), f"rollout weight {w} does not increase on "
                       f"{weights[i - 1]}", "list the weights in ascending order, ending at 100")
    if weights[-1] != 100 and all(1 <= w <= 100 for w in weights) and weights == sorted(set(weights)):
        yield diag(loaded, "E207", path + (len(weights) - 1, "weight"),
                   f"the last rollout step has weight {weights[-1]}, not 100",
                   "end with `{weight: 100}`: that step promotes the new version")


def _metric(loaded: Loaded, path: tuple, metric) -> Iterator[Diagnostic]:
    name, q = metric.name, metric.query
    builtin = name in A.BUILTINS
    if not builtin and q is None:
        near = closest(name, A.BUILTINS)
        yield diag(loaded, "E227", path + ("name",), f"unknown analysis metric '{name}'",
                   (f"did you mean '{near}'? " if near else "")
                   + f"built-ins: {', '.join(A.BUILTINS)}; or give `query:` with PromQL of your own")
        return
    if builtin and q is not None:
        yield diag(loaded, "E227", path + ("query",), f"'{name}' is a built-in metric and has its own query",
                   "remove `query`, or give your PromQL metric another name")
        return
    if metric.of is not None and name != A.RELATIVE:
        yield diag(loaded, "E227", path + ("of",), f"`of` belongs to relative_to_stable, not to '{name}'",
                   "remove it")
    if metric.margin is not None and name != A.RELATIVE:
        yield diag(loaded, "E227", path + ("margin",), f"`margin` belongs to relative_to_stable, not '{name}'",
                   "use `max` (or `min`) for a bound")
    if name == A.RELATIVE:
        if metric.of is None:
            yield diag(loaded, "E228", path, "relative_to_stable needs `of`: the metric to compare",
                       f"one of {', '.join(A.RELATIVE_OF)}, e.g. `of: latency_p95, margin: 0.01`")
        if metric.min is not None or metric.max is not None:
            yield diag(loaded, "E228", path + ("max" if metric.max is not None else "min",),
                       "relative_to_stable compares with stable; it takes `margin`, not min/max",
                       "e.g. `margin: 0.01` lets the canary be 0.01 worse than stable")
        if metric.margin is not None and metric.margin < 0:
            yield diag(loaded, "E228", path + ("margin",), f"margin {metric.margin:g} is negative",
                       "0 means: no worse than stable; a margin allows that much worse")
        return
    if builtin:
        if metric.min is not None:
            yield diag(loaded, "E228", path + ("min",), f"'{name}' takes a ceiling (`max`), not `min`",
                       "lower is better for it")
        if metric.max is None:
            yield diag(loaded, "E228", path, f"'{name}' needs `max`: the largest value that passes",
                       f"in {A.UNITS[name]}" + (", e.g. 0.01" if name == A.ERROR_RATIO else ""))
        elif name == A.ERROR_RATIO and not 0 <= metric.max <= 1:
            yield diag(loaded, "E228", path + ("max",), f"error_ratio max {metric.max:g} is outside 0..1",
                       f"it is a share of requests: {metric.max / 100:g} for {metric.max:g}%"
                       if 1 < metric.max <= 100 else "it is a share of requests, e.g. 0.01 for 1%")
        elif name in (A.LATENCY_P95, A.LATENCY_P99) and metric.max <= 0:
            yield diag(loaded, "E228", path + ("max",), f"{name} max {metric.max:g} is not positive",
                       "seconds, e.g. 0.25")
        elif name in (A.LATENCY_P95, A.LATENCY_P99) and metric.max > 60:
            yield diag(loaded, "E228", path + ("max",), f"{name} max {metric.max:g} is in seconds: over a minute",
                       f"did you mean {metric.max / 1000:g} ({metric.max:g} ms)?")
        elif name == A.SCORE_SHIFT and metric.max < 0:
            yield diag(loaded, "E228", path + ("max",), f"score_shift max {metric.max:g} is negative",
                       "the absolute difference of the mean scores, e.g. 0.05")
        return
    if metric.min is None and metric.max is None:
        yield diag(loaded, "E228", path, f"metric '{name}' has no threshold", "give `min`, `max` or both")
    elif metric.min is not None and metric.max is not None and metric.min > metric.max:
        yield diag(loaded, "E228", path + ("min",), f"min {metric.min:g} is above max {metric.max:g}",
                   "no measurement could pass")
    if q is not None and "$version" not in q:
        yield diag(loaded, "E227", path + ("query",), "the query does not select a version ($version)",
                   'the canary and stable are told apart by version, e.g. '
                   '`sum(rate(my_total{version="$version"}[$interval]))`')


def prometheus_urls(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for env, e in spec.environments.items():
        if e.prometheus is not None and not _is_url(e.prometheus):
            yield diag(loaded, "E216", ("environments", env, "prometheus"),
                       f"prometheus {e.prometheus!r} is not an http(s) URL", "e.g. http://prometheus:9090")
