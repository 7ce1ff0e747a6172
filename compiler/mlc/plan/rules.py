"""The monitoring rules of a Plan, as data: recording rules, SLO alerts, drift and quality alerts.

Derived once here so that the PrometheusRule, the plain rule file for promtool, the generated promtool tests
and the end-to-end test of `mlc serve` all read the same rules. Only the metric names in ``mlc.plan.metrics``
appear in expressions: they are what `mlc serve` and the drift/quality steps export.

Selectors filter on ``model="<registered model>"``, the one label every exported series carries, and
aggregate ``by (model)``. Nothing depends on labels a scrape adds (namespace, pod, job), whose names vary
between scrape setups. Keeping two environments apart in one Prometheus is the job of prometheus-operator's
``enforcedNamespaceLabel``, which adds ``namespace="<rule namespace>"`` to every selector and rule.

Error budget: ``slo.error_rate`` (share of 5xx), else ``1 - slo.availability``. The burn-rate alerts follow
the Google SRE workbook (ch. 5, "Alerting on SLOs"): 14.4x the budget over 1h *and* 5m (2% of a 30-day budget
in an hour) with the spec's severity, and 6x over 6h *and* 30m (5% in six hours) one severity lower. The
short window makes an alert resolve within minutes of the errors stopping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlc.plan import metrics as M
from mlc.spec import cron
from mlc.spec.models import LOWER_IS_BETTER

if TYPE_CHECKING:
    from mlc.plan import Plan

# (burn factor, long window, short window, for, severity shift); SRE workbook table 5-8, first two rows.
BURN_RATES = (("fast", 14.4, "1h", "5m", "2m", 0), ("slow", 6.0, "6h", "30m", "15m", 1))
LATENCY_FOR = "10m"
AVAILABILITY_FOR = "1h"
ABSENT_FOR = "10m"
QUANTILES = ((M.LATENCY_P95, 0.95, "p95_ms"), (M.LATENCY_P99, 0.99, "p99_ms"))
_DEMOTE = {"page": "ticket", "ticket": "ticket", "info": "info"}  # slower alerts never page
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class Rule:
    """One recording rule (``alert`` False) or alerting rule. ``kind`` and ``params`` say what the rule
    checks, so that the promtool test generator can build series for it without parsing PromQL."""

    name: str  # the recorded metric, or the alert name
    expr: str
    alert: bool = False
    for_: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    kind: str = ""  # recording, latency, burn, availability, absent-requests, drift, drift-*, quality
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str) -> Any:
        return dict(self.params)[key]

    def to_prometheus(self) -> dict[str, Any]:
        d: dict[str, Any] = {"alert" if self.alert else "record": self.name, "expr": self.expr}
        if self.for_:
            d["for"] = self.for_
        if self.labels:
            d["labels"] = dict(self.labels)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[Rule, ...]

    def to_prometheus(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.to_prometheus() for r in self.rules]}


def num(x: float) -> str:
    """A threshold as PromQL/YAML text: shortest round-trip form, no float noise (1 - 0.999 -> 0.001)."""
    return f"{x:.12g}"


def duration(seconds: int) -> str:
    """Seconds as a Prometheus duration (``2d``, ``1h30m``); matches the PrometheusRule CRD's pattern."""
    if seconds <= 0:
        return "0"
    out = ""
    for unit, size in _UNITS:
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(name: str, **matchers: str) -> str:
    """``name{k="v",...}``; a value starting with ``~`` is a regex matcher."""
    parts = [f"{k}=~{quote(v[1:])}" if v.startswith("~") else f"{k}={quote(v)}" for k, v in matchers.items()]
    return f"{name}{{{','.join(parts)}}}"


def error_ratio_name(window: str) -> str:
    return f"{M.ERROR_RATIO}:rate{window}"


def error_budget(plan: Plan) -> float | None:
    slo = plan.spec.monitoring.slo
    if slo is None:
        return None
    if slo.error_rate is not None:
        return slo.error_rate
    return float(num(1 - slo.availability)) if slo.availability is not None else None


def build_rules(plan: Plan) -> tuple[RuleGroup, ...]:
    routing = _routing(plan)
    groups: list[RuleGroup] = []
    if plan.endpoint is not None:
        groups.append(RuleGroup(f"mlc.{plan.project}.serving.recording", _recording(plan)))
        alerts = _serving_alerts(plan, routing)
        if alerts:
            groups.append(RuleGroup(f"mlc.{plan.project}.serving.alerts", alerts))
    model_alerts = _drift_alerts(plan, routing) + _quality_alerts(plan, routing)
    if model_alerts:
        groups.append(RuleGroup(f"mlc.{plan.project}.model.alerts", model_alerts))
    return tuple(groups)


def _alert(name: str, expr: str, for_: str | None, labels: tuple[tuple[str, str], ...], summary: str,
           description: str, kind: str, **params: Any) -> Rule:
    return Rule(name, expr, True, for_, labels, (("summary", summary), ("description", description)), kind,
                tuple(params.items()))


def _recording(plan: Plan) -> tuple[Rule, ...]:
    slo = plan.spec.monitoring.slo
    model = plan.model_name
    windows = {"5m"}
    if error_budget(plan) is not None:
        windows |= {w for _, _, long, short, _, _ in BURN_RATES for w in (long, short)}
    if slo and (slo.availability is not None or error_budget(plan) is not None):
        windows.add(slo.window)  # the availability alert and the error budget remaining read it
    lat_window = slo.latency_window if slo else "5m"
    rec = [Rule(name, _quantile(q, model, lat_window), kind="recording") for name, q, _ in QUANTILES]
    rec += [Rule(error_ratio_name(w), _error_ratio(model, w), kind="recording")
            for w in sorted(windows, key=_seconds)]
    return tuple(rec) + _slo_recording(plan, windows)


@dataclass(frozen=True)
class Objective:
    """One ratio SLO: ``slo`` names it in the ``slo`` label; ``budget`` is the share of requests allowed to
    be bad over ``window``: a 5xx for the error SLOs, slower than ``le`` seconds for the latency ones."""

    slo: str
    objective: float
    budget: float
    window: str
    le: float | None = None  # a latency SLO: the objective's bound, a bucket of Plan.latency_buckets

    def ratio(self, model: str, window: str) -> str:
        """The recorded bad-request ratio this SLO reads over ``window``."""
        if self.le is None:
            return selector(error_ratio_name(window), model=model)
        return selector(slow_ratio_name(window), model=model, slo=self.slo)


def objectives(plan: Plan) -> tuple[Objective, ...]:
    """The ratio SLOs of the spec: ``error_rate`` and ``availability`` (both read the 5xx ratio), and each
    latency objective read as one: ``p95_ms: 50`` is "95% of the requests within 50 ms", a 5% budget of slow
    requests over the SLO window."""
    slo = plan.spec.monitoring.slo
    if slo is None or plan.endpoint is None:
        return ()
    out = []
    if slo.error_rate is not None:
        out.append(Objective("error-rate", float(num(1 - slo.error_rate)), slo.error_rate, slo.window))
    if slo.availability is not None:
        out.append(Objective("availability", slo.availability, float(num(1 - slo.availability)), slo.window))
    for _, q, field in QUANTILES:
        ms = getattr(slo.latency, field) if slo.latency else None
        if ms is not None:
            out.append(Objective(f"latency-{field[:3]}", q, float(num(1 - q)), slo.window, ms / 1000))
    return tuple(out)


def slow_ratio_name(window: str) -> str:
    return f"{M.SLOW_RATIO}:rate{window}"


def burn_windows(plan: Plan) -> tuple[str, ...]:
    """The windows of the burn-rate alerts (short and long), shortest first: the burn rates recorded per SLO."""
    if not objectives(plan):
        return ()
    return tuple(sorted({w for _, _, long, short, _, _ in BURN_RATES for w in (long, short)}, key=_seconds))


def _slo_windows(plan: Plan, o: Objective) -> tuple[str, ...]:
    """Where a burn rate is recorded for ``o``: each alert window, then the SLO window."""
    ws = burn_windows(plan)
    return (*ws, *([o.window] if o.window not in ws else []))


def _slow_ratio(model: str, le: float, window: str) -> str:
    """Requests slower than ``le`` / all requests, from the duration histogram's buckets (the +Inf bucket
    counts them all). No request in the window: NaN (0/0), or no sample without any series, as for the error
    ratio."""
    bucket = f"{M.REQUEST_DURATION}_bucket"
    within = f"sum by (model) (rate({selector(bucket, model=model, le=M.le_text(le))}[{window}]))"
    total = f"sum by (model) (rate({selector(bucket, model=model, le='+Inf')}[{window}]))"
    return f"1 - {within} / {total}"


def _slo_recording(plan: Plan, windows: set[str]) -> tuple[Rule, ...]:
    """Sloth-style metadata per SLO, so that dashboards and people read the budget without re-deriving it:
    the objective, the budget, the burn rate over each alert window and the budget left over the SLO window
    (negative once it is spent). A latency SLO records its slow-request ratios first. They follow the error
    ratios in the same group, so they read this evaluation's ratios."""
    model = plan.model_name
    out: list[Rule] = []
    for o in objectives(plan):
        meta = ((M.MODEL_LABEL, model), (M.SLO_LABEL, o.slo))
        if o.le is not None:
            out += [Rule(slow_ratio_name(w), _slow_ratio(model, o.le, w), labels=((M.SLO_LABEL, o.slo),),
                         kind="recording") for w in _slo_windows(plan, o)]
        out.append(Rule(M.SLO_OBJECTIVE, f"vector({num(o.objective)})", labels=meta, kind="slo-objective",
                        params=(("value", o.objective),)))
        out.append(Rule(M.SLO_ERROR_BUDGET, f"vector({num(o.budget)})", labels=meta, kind="slo-budget",
                        params=(("value", o.budget),)))
        for w in _slo_windows(plan, o):
            if o.le is None and w not in windows:
                continue
            out.append(Rule(M.SLO_BURN_RATE, f"{o.ratio(model, w)} / {num(o.budget)}",
                            labels=((M.SLO_LABEL, o.slo), (M.WINDOW_LABEL, w)), kind="slo-burn",
                            params=(("budget", o.budget), ("window", w))))
        out.append(Rule(M.SLO_BUDGET_REMAINING, f"1 - {o.ratio(model, o.window)} / {num(o.budget)}",
                        labels=((M.SLO_LABEL, o.slo),), kind="slo-remaining",
                        params=(("budget", o.budget), ("window", o.window))))
    return tuple(out)


def _serving_alerts(plan: Plan, routing: tuple[tuple[str, str], ...]) -> tuple[Rule, ...]:
    ep = plan.endpoint
    assert ep is not None
    slo = plan.spec.monitoring.slo
    model = plan.model_name
    demoted = tuple((k, _DEMOTE[v]) if k == "severity" else (k, v) for k, v in routing)
    out: list[Rule] = []
    for name, q, field in QUANTILES:
        ms = getattr(slo.latency, field) if slo and slo.latency else None
        if ms is not None:
            pct = field[:3]
            window = slo.latency_window if slo else "5m"
            out.append(_alert(
                f"MlcLatency{pct.upper()}High", f"{selector(name, model=model)} > {num(ms / 1000)}",
                LATENCY_FOR, routing, f"{model}: {pct} latency above {num(ms)} ms",
                f"The {pct} inference latency of {model} over {window} has been above the {num(ms)} ms "
                f"objective for {LATENCY_FOR}.", "latency", quantile=q, objective_s=ms / 1000))
    budget = error_budget(plan)
    if budget is not None:
        slo_window = slo.window if slo else "30d"
        for speed, factor, long, short, for_, shift in BURN_RATES:
            limit = f"({num(factor)} * {num(budget)})"
            days = num(round(_seconds(slo_window) / factor / 86400, 2))
            out.append(_alert(
                f"MlcErrorBudgetBurn{speed.capitalize()}",
                f"{selector(error_ratio_name(long), model=model)} > {limit} "
                f"and {selector(error_ratio_name(short), model=model)} > {limit}",
                for_, demoted if shift else routing, f"{model}: error budget burning {num(factor)}x too fast",
                f"More than {num(factor)} x {num(budget * 100)}% of the requests to {model} failed (5xx) "
                f"over both the last {long} and the last {short}; at this rate the {slo_window} error budget "
                f"lasts {days} days.", "burn", factor=factor, budget=budget, long=long, short=short))
    if slo and slo.availability is not None:
        pct = num(slo.availability * 100)
        out.append(_alert(
            "MlcAvailabilityBelowObjective",
            f"(1 - {selector(error_ratio_name(slo.window), model=model)}) < {num(slo.availability)}",
            AVAILABILITY_FOR, demoted, f"{model}: availability below {pct}%",
            f"The share of non-5xx responses of {model} over the last {slo.window} is below the {pct}% "
            "objective (measured over what Prometheus retains of that window).", "availability",
            objective=slo.availability, window=slo.window))
    if ep.min_replicas > 0:  # with scale-to-zero, no series is the normal idle state
        out.append(_alert(
            "MlcInferenceMetricsAbsent", f"absent({selector(M.REQUESTS_TOTAL, model=model)})", ABSENT_FOR,
            routing, f"{model}: no inference metrics",
            f"Prometheus has no {M.REQUESTS_TOTAL} series for {model} for {ABSENT_FOR}: the predictor "
            f"{ep.name} is down or is not scraped.", "absent-requests"))
    return tuple(out)


def _drift_alerts(plan: Plan, routing: tuple[tuple[str, str], ...]) -> tuple[Rule, ...]:
    mon = plan.spec.monitoring
    d = mon.drift
    if d is None:
        return ()
    model = plan.model_name
    feature, value = "{{ $labels.feature }}", '{{ $value | printf "%.3f" }}'
    retrain = " A retraining run starts automatically." if mon.retraining and mon.retraining.on_drift else ""
    limit = 2 * cron.max_gap_seconds(d.schedule)  # one missed run is tolerated
    heartbeat = selector(M.DRIFT_LAST_RUN, model=model)
    return (
        _alert("MlcFeatureDrift",
               f"{selector(M.DRIFT_SCORE, model=model, method=d.method)} > {num(d.threshold)}", None,
               routing, f"{model}: feature {feature} drifted",
               f"The {d.method} drift score of feature {feature} is {value}, above the threshold "
               f"{num(d.threshold)}, between the training data and the current window.{retrain}", "drift",
               method=d.method, threshold=d.threshold, features=tuple(d.features)),
        _alert("MlcDriftCheckStale", f"time() - {heartbeat} > {limit}", None, routing,
               f"{model}: drift check has not run for {duration(limit)}",
               f"The last drift check of {model} finished more than {duration(limit)} ago (schedule "
               f"{d.schedule!r}); drift alerts are blind until it runs again.", "drift-stale", limit_s=limit),
        _alert("MlcDriftCheckMissing", f"absent({heartbeat})", duration(limit), routing,
               f"{model}: no drift check heartbeat",
               f"{M.DRIFT_LAST_RUN} for {model} has been absent for {duration(limit)}: the drift check never "
               "ran, or its metrics are not pushed to Prometheus.", "drift-missing", limit_s=limit),
    )


def _quality_alerts(plan: Plan, routing: tuple[tuple[str, str], ...]) -> tuple[Rule, ...]:
    """For error metrics (rmse, log_loss, ...) lower is better, so the floor is a ceiling."""
    q = plan.spec.monitoring.quality
    if q is None:
        return ()
    model = plan.model_name
    value = '{{ $value | printf "%.3f" }}'
    lower_better = q.metric in LOWER_IS_BETTER
    op, word = (">", "above its ceiling") if lower_better else ("<", "below its floor")
    cur = selector(M.QUALITY, model=model, metric=q.metric)
    base = selector(M.QUALITY_BASELINE, model=model, metric=q.metric)
    terms, floors = [], []
    if q.min is not None:
        terms.append(f"{cur} {op} {num(q.min)}")
        floors.append(num(q.min))
    if q.min_ratio is not None:
        scaled = f"{base} / {num(q.min_ratio)}" if lower_better else f"{base} * {num(q.min_ratio)}"
        terms.append(f"{cur} {op} on (model, metric) ({scaled})")
        floors.append(f"{num(q.min_ratio * 100)}% of the training baseline")
    return (_alert("MlcModelQualityBelowFloor", " or ".join(terms), None, routing,
                   f"{model}: live {q.metric} {word}",
                   f"The live {q.metric} of {model} on labelled feedback is {value}, {word} "
                   f"({' and '.join(floors)}).", "quality",
                   metric=q.metric, min=q.min, min_ratio=q.min_ratio, lower_is_better=lower_better),)


def _routing(plan: Plan) -> tuple[tuple[str, str], ...]:
    a = plan.spec.monitoring.alerts
    team = a.team or plan.spec.metadata.team
    fixed = {"severity": a.severity, **({"team": team} if team else {})}
    extra = {k: v for k, v in sorted(a.labels.items()) if k not in fixed}
    return tuple({**fixed, **extra}.items())


def _quantile(q: float, model: str, window: str) -> str:
    bucket = selector(f"{M.REQUEST_DURATION}_bucket", model=model)
    return f"histogram_quantile({num(q)}, sum by (le, model) (rate({bucket}[{window}])))"


def _error_ratio(model: str, window: str) -> str:
    """5xx / all requests. ``or 0 * all`` makes the ratio 0, not missing, while no request has failed yet."""
    errors = f"sum by (model) (rate({selector(M.REQUESTS_TOTAL, model=model, code='~5..')}[{window}]))"
    total = f"sum by (model) (rate({selector(M.REQUESTS_TOTAL, model=model)}[{window}]))"
    return f"({errors} or 0 * {total}) / {total}"


def _seconds(d: str) -> int:
    import re

    size = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return int(sum(int(n) * size[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d)))
