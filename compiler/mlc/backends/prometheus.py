"""Stage 3 backend: Plan.rules -> a PrometheusRule, the same groups as a plain rule file, and promtool tests.

promtool cannot read a PrometheusRule, so ``prometheus/rules.yaml`` holds the identical ``groups:`` and
``prometheus/rules.test.yaml`` tests them. The tests are generated from the rules' thresholds: for every alert
one scenario where it must fire, with its exact labels and annotations, and healthy series on which it must
stay quiet. Synthetic counters grow by multiples of 60 per minute so that rates are exact and error ratios are
powers of two: promtool compares samples exactly.

The drift-check heartbeat alerts wait for days (two schedule periods), and promtool evaluates every rule at
one evaluation_interval per test file, so their tests live in ``rules.heartbeat.test.yaml`` with a coarser
interval (1/48 of the limit) instead of costing thousands of one-minute steps. Run both:

    promtool test rules prometheus/rules.test.yaml prometheus/rules.heartbeat.test.yaml
"""

from __future__ import annotations

from typing import Any

from mlc.backends import Output
from mlc.plan import Plan
from mlc.plan import metrics as M
from mlc.plan.names import dns_label
from mlc.plan.rules import Rule, duration, error_budget, error_ratio_name, num, objectives, selector

API_VERSION = "monitoring.coreos.com/v1"
RULES_FILE = "rules.yaml"
VERSION = "1"  # the model version label on synthetic series; no rule depends on it
OTHER_MODEL = "some-other-model"  # series that the model filter must ignore
ROUTE = "/v2/models/{name}/infer"  # mlc serve labels requests with the route template, not the raw path


def build(plan: Plan) -> list[Output]:
    if not plan.rules:
        return []
    groups = [g.to_prometheus() for g in plan.rules]
    name = dns_label(plan.project)
    obj = {"apiVersion": API_VERSION, "kind": "PrometheusRule",
           "metadata": {"name": name, "namespace": plan.namespace, "labels": dict(plan.labels)},
           "spec": {"groups": groups}}
    return [Output(f"prometheus/prometheusrule-{name}.yaml", obj),
            Output(f"prometheus/{RULES_FILE}", {"groups": groups}, resource=False),
            Output("prometheus/rules.test.yaml", promtool_tests(plan), resource=False),
            *([Output("prometheus/rules.heartbeat.test.yaml", hb, resource=False)]
              if (hb := heartbeat_tests(plan)) else [])]


def promtool_tests(plan: Plan) -> dict[str, Any]:
    alerts = {r.name: r for g in plan.rules for r in g.rules if r.alert}
    tests: list[dict[str, Any]] = []
    if plan.endpoint is not None:
        tests += _serving(plan, alerts)
    tests += _drift(plan, alerts) + _quality(plan, alerts)
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


def heartbeat_tests(plan: Plan) -> dict[str, Any] | None:
    alerts = {r.name: r for g in plan.rules for r in g.rules if r.alert}
    stale, missing = alerts.get("MlcDriftCheckStale"), alerts.get("MlcDriftCheckMissing")
    if stale is None or missing is None:
        return None
    model = plan.model_name
    limit = stale.param("limit_s")
    step = max(60, limit // 48 // 60 * 60)
    n = limit // step + 3
    at, every = duration((n - 1) * step), duration(step)
    tests = [
        _group(f"the drift check last ran {at} ago", [_series(M.DRIFT_LAST_RUN, f"0x{n}", model=model)],
               [_fires(stale, at, model=model), _quiet(missing, at)], every),
        _group("the drift check never ran", [_series(M.DRIFT_LAST_RUN, f"0+{step}x{n}", model=OTHER_MODEL)],
               [_fires(missing, at, model=model), _quiet(stale, at)], every),
        _group("the drift check runs on schedule", [_series(M.DRIFT_LAST_RUN, f"0+{step}x{n}", model=model)],
               [_quiet(stale, at), _quiet(missing, at)], every)]
    return {"rule_files": [RULES_FILE], "evaluation_interval": every, "tests": tests}


# ----------------------------------------------------------------------------- series and expectations
def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    return {"series": selector(name, **dict(sorted(labels.items()))), "values": values}


def _requests(model: str, ok: int, err: int, minutes: int,
              err_until: int | None = None) -> list[dict[str, str]]:
    """Request counters growing by ``ok`` 200s and ``err`` 500s per minute; 500s stop after ``err_until``."""
    route = ROUTE
    out = []
    if ok:
        out.append(_series(M.REQUESTS_TOTAL, f"0+{ok}x{minutes}", model=model, version=VERSION, route=route,
                           code="200"))
    if err:
        vals = f"0+{err}x{minutes}" if err_until is None else \
            f"0+{err}x{err_until} {err * err_until}+0x{minutes - err_until - 1}"
        out.append(_series(M.REQUESTS_TOTAL, vals, model=model, version=VERSION, route=route, code="500"))
    return out


def _latency(plan: Plan, bucket: int, per_min: int, minutes: int) -> list[dict[str, str]]:
    """Every request observed in bucket index ``bucket`` of the histogram `mlc serve` exports for this plan
    (cumulative: that one and above)."""
    les = [M.le_text(b) for b in plan.latency_buckets] + ["+Inf"]
    return [_series(f"{M.REQUEST_DURATION}_bucket", f"0+{per_min if i >= bucket else 0}x{minutes}",
                    model=plan.model_name, version=VERSION, route=ROUTE, le=le) for i, le in enumerate(les)]


def _fires(rule: Rule, at: str, value: float | None = None, **labels: str) -> dict[str, Any]:
    """An alert_rule_test expecting exactly one alert, with the rule's routing labels and its annotations
    rendered as Prometheus would (``$labels`` and the ``printf "%.3f"`` of ``$value``)."""
    ann = {}
    for k, v in rule.annotations:
        for lk, lv in labels.items():
            v = v.replace(f"{{{{ $labels.{lk} }}}}", lv)
        if value is not None:
            v = v.replace('{{ $value | printf "%.3f" }}', f"{value:.3f}")
        ann[k] = v
    exp = {"exp_labels": {**labels, **dict(rule.labels)}, "exp_annotations": ann}
    return {"eval_time": at, "alertname": rule.name, "exp_alerts": [exp]}


def _quantiles(plan: Plan, bucket: int, at: str) -> list[dict[str, Any]]:
    """Exact p95/p99 when every observation fell into one finite bucket: histogram_quantile interpolates
    linearly inside it, ``lo + (hi - lo) * (rank / count)`` with rank = q * count, the same float operations
    Prometheus performs (per-bucket rates are exactly 1/s here)."""
    model, bounds = plan.model_name, plan.latency_buckets
    lo = bounds[bucket - 1] if bucket else 0.0
    hi = bounds[bucket]
    return [{"expr": selector(name, model=model), "eval_time": at,
             "exp_samples": [{"labels": selector(name, model=model),
                              "value": lo + (hi - lo) * (q * 1.0 / 1.0)}]}
            for name, q in ((M.LATENCY_P95, 0.95), (M.LATENCY_P99, 0.99))]


def _quiet(rule: Rule, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": rule.name, "exp_alerts": []}


def _group(name: str, series: list[dict[str, str]], alerts: list[dict[str, Any]], interval: str = "1m",
           exprs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    g: dict[str, Any] = {"name": name, "interval": interval, "input_series": series}
    if exprs:
        g["promql_expr_test"] = exprs
    g["alert_rule_test"] = alerts
    return g


def _pow2_below(limit: float) -> int:
    """Smallest k with 2**-k <= limit / 2, so that an error ratio of 2**-k is well inside the budget."""
    k = 1
    while 2.0 ** -k > limit / 2:
        k += 1
    return k


# ----------------------------------------------------------------------------- scenarios
def _serving(plan: Plan, alerts: dict[str, Rule]) -> list[dict[str, Any]]:
    model = plan.model_name
    lat = [alerts[n] for n in ("MlcLatencyP95High", "MlcLatencyP99High") if n in alerts]
    burn = {r.param("long"): r for r in alerts.values() if r.kind == "burn"}  # "1h": fast, "6h": slow
    avail = alerts.get("MlcAvailabilityBelowObjective")
    absent = alerts.get("MlcInferenceMetricsAbsent")
    budget = error_budget(plan)
    # error-ratio thresholds of the error alerts, by alert name
    limits = {r.name: r.param("factor") * r.param("budget") for r in burn.values()}
    if avail:
        limits[avail.name] = 1 - avail.param("objective")
    out = [_healthy(plan, lat, [*burn.values(), *(r for r in (avail, absent) if r)], limits)]
    if limits:
        out.append(_half_fail(plan, [r for r in (*burn.values(), avail) if r], limits))
    if "1h" in burn and 45 / 105 > limits[burn["1h"].name]:
        out.append(_errors_stopped(model, burn["1h"], limits[burn["1h"].name]))
    if "1h" in burn and "6h" in burn and budget is not None:
        lo, hi = limits[burn["6h"].name], limits[burn["1h"].name]
        k = next((k for k in range(30) if lo < 2.0 ** -k <= hi), None)
        if k is not None:
            out.append(_group(f"1/{2 ** k} of the requests fail: slow burn only",
                              _requests(model, 60 * (2 ** k - 1), 60, 80),
                              [_fires(burn["6h"], "70m", model=model), _quiet(burn["1h"], "70m")]))
    if lat:
        bounds = plan.latency_buckets
        top = max(r.param("objective_s") for r in lat)
        b = next((i for i in range(1, len(bounds)) if bounds[i - 1] >= top), None)
        if b is not None:  # every request lands in the first bucket above every objective
            out.append(_group("slow responses: latency alerts fire, the latency budgets are spent",
                              _requests(model, 60, 0, 40) + _latency(plan, b, 60, 40),
                              [_fires(r, "30m", model=model) for r in lat],
                              exprs=_quantiles(plan, b, "30m") + _error_budget(plan, "30m", slow=1.0)))
    if absent is not None:
        out.append(_group("no series for this model: the absent alert fires",
                          _requests(OTHER_MODEL, 60, 0, 30), [_fires(absent, "20m", model=model)]))
    return out


def _healthy(plan: Plan, lat: list[Rule], others: list[Rule], limits: dict[str, float]) -> dict[str, Any]:
    """Error ratio 2**-k, inside every budget; every request answered within the first bucket (1 ms)."""
    model = plan.model_name
    k = _pow2_below(min(limits.values())) if limits else 4
    recorded = {r.name for g in plan.rules for r in g.rules if not r.alert}
    exact = [{"expr": selector(name, model=model), "eval_time": "70m",
              "exp_samples": [{"labels": selector(name, model=model), "value": 2.0 ** -k}]}
             for name in (error_ratio_name(w) for w in ("5m", "30m", "1h")) if name in recorded]
    quiet = [_quiet(r, "70m") for r in lat if r.param("objective_s") > plan.latency_buckets[0]]
    quiet += [_quiet(r, "70m") for r in others]
    return _group("healthy traffic: exact error ratios, no serving alert",
                  _requests(model, 60 * (2 ** k - 1), 60, 80) + _latency(plan, 0, 60, 80), quiet,
                  exprs=exact + _quantiles(plan, 0, "70m") + _error_budget(plan, "70m", errors=2.0 ** -k, slow=0.0))


def _error_budget(plan: Plan, at: str, errors: float | None = None, slow: float | None = None) -> list[dict[str, Any]]:
    """The SLO metadata worked out for a constant ratio of bad requests (``errors`` for the error SLOs,
    ``slow`` for the latency ones; None: not checked in this scenario): the objective and budget exactly; each
    burn rate ``ratio / budget`` and the budget remaining ``1 - ratio / budget`` to within 1e-9 (rate() over a
    window longer than the series extrapolates, so the 30d ratio is only nearly ``ratio``)."""
    model = plan.model_name
    latency = {o.slo for o in objectives(plan) if o.le is not None}
    out: list[dict[str, Any]] = []
    for g in plan.rules:
        for r in g.rules:
            if not r.kind.startswith("slo-"):
                continue
            labels = {M.MODEL_LABEL: model, **dict(r.labels)}
            ratio = slow if labels[M.SLO_LABEL] in latency else errors
            if ratio is None:
                continue
            if r.kind in ("slo-objective", "slo-budget"):
                out.append({"expr": selector(r.name, **labels), "eval_time": at,
                            "exp_samples": [{"labels": selector(r.name, **labels), "value": r.param("value")}]})
                continue
            burn = ratio / r.param("budget")
            want = burn if r.kind == "slo-burn" else 1 - burn
            out.append({"expr": f"abs({selector(r.name, **labels)} - {want!r}) < bool 1e-9", "eval_time": at,
                        "exp_samples": [{"labels": selector("", **labels), "value": 1}]})
    return out


def _half_fail(plan: Plan, rules: list[Rule], limits: dict[str, float]) -> dict[str, Any]:
    """Half of the requests fail (all of them when a threshold is 1/2 or more): every error alert fires,
    and the error budget is spent (the remaining share is negative)."""
    model = plan.model_name
    ratio = 0.5 if max(limits.values()) < 0.5 else 1.0
    firing = [r for r in rules if limits[r.name] < ratio]
    return _group(f"{num(ratio * 100)}% of the requests fail: the error-budget and availability alerts fire",
                  _requests(model, 60 if ratio < 1 else 0, 60, 130), [_fires(r, "125m", model=model)
                                                                       for r in firing],
                  exprs=_error_budget(plan, "125m", errors=ratio))


def _errors_stopped(model: str, fast: Rule, limit: float) -> dict[str, Any]:
    """Half the requests failed for an hour and stopped 15 minutes ago: the 1h ratio (45 of 105 requests) is
    still over the page threshold, but the 5m window resolves the alert."""
    still = {"expr": f"{selector(error_ratio_name('1h'), model=model)} > bool {num(limit)}",
             "eval_time": "75m", "exp_samples": [{"labels": selector("", model=model), "value": 1}]}
    return _group("errors stopped: the short window resolves the fast burn",
                  _requests(model, 60, 60, 81, err_until=60), [_quiet(fast, "75m")], exprs=[still])


def _drift(plan: Plan, alerts: dict[str, Rule]) -> list[dict[str, Any]]:
    drift, stale, missing = (alerts.get(n) for n in ("MlcFeatureDrift", "MlcDriftCheckStale",
                                                       "MlcDriftCheckMissing"))
    if drift is None or stale is None or missing is None:
        return []
    model = plan.model_name
    method, thr = drift.param("method"), drift.param("threshold")
    features = drift.param("features")
    other = "ks" if method == "psi" else "psi"
    high, low = num(thr * 2), num(thr / 2)
    series = [_series(M.DRIFT_SCORE, f"{high}x30", model=model, feature=features[0], method=method),
              _series(M.DRIFT_SCORE, f"{num(thr * 4)}x30", model=model, feature=features[0], method=other),
              _series(M.DRIFT_SCORE, f"{high}x30", model=OTHER_MODEL, feature=features[0], method=method),
              _series(M.DRIFT_LAST_RUN, "0+60x30", model=model)]
    series += [_series(M.DRIFT_SCORE, f"{low}x30", model=model, feature=f, method=method)
               for f in features[1:]]
    return [_group(f"{features[0]} drifted, the rest did not; the check ran a minute ago", series,
                   [_fires(drift, "10m", float(high), model=model, feature=features[0], method=method),
                    _quiet(stale, "10m"), _quiet(missing, "10m")])]


def _quality(plan: Plan, alerts: dict[str, Rule]) -> list[dict[str, Any]]:
    rule = alerts.get("MlcModelQualityBelowFloor")
    if rule is None:
        return []
    model, metric = plan.model_name, rule.param("metric")
    lower_better, lo, ratio = rule.param("lower_is_better"), rule.param("min"), rule.param("min_ratio")
    base = 1.0
    relative = (base / ratio if lower_better else base * ratio) if ratio else None
    bounds = [b for b in (lo, relative) if b is not None]
    bad = max(bounds) + 0.25 if lower_better else min(bounds) - 0.25
    good = min(bounds) - 0.25 if lower_better else max(bounds) + 0.25

    def series(q: float) -> list[dict[str, str]]:
        return [_series(M.QUALITY, f"{num(q)}x10", model=model, metric=metric),
                _series(M.QUALITY_BASELINE, f"{num(base)}x10", model=model, metric=metric)]

    return [_group(f"live {metric} {num(bad)} is past the floor", series(bad),
                   [_fires(rule, "5m", float(num(bad)), model=model, metric=metric)]),
            _group(f"live {metric} {num(good)} is healthy", series(good), [_quiet(rule, "5m")])]
