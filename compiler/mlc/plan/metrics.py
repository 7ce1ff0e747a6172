"""Names of the Prometheus metrics mlc exports. Defined once: `mlc serve`, the drift/quality steps and the
generated PrometheusRule all import them from here."""

from __future__ import annotations

# mlc serve
REQUESTS_TOTAL = "mlc_inference_requests_total"  # counter {model, version, role, route, code}
REQUEST_DURATION = "mlc_inference_request_duration_seconds"  # histogram {model, version, role, route}
IN_FLIGHT = "mlc_inference_requests_in_flight"  # gauge {model, version, role}
MODEL_INFO = "mlc_model_info"  # gauge = 1 {model, version, role}
PREDICTION_SCORE = "mlc_prediction_score"  # histogram {model, version, role}: the score of each predicted row
# Latency buckets suited to millisecond SLOs (seconds); a served plan adds its latency objectives
# (Plan.latency_buckets).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


def le_text(bound: float) -> str:
    """A bucket bound as the ``le`` label `mlc serve` exports it: prometheus_client writes Python's repr of the
    float (0.05, 1.0) for every bound below 1e6 s; the serve tests compare the two."""
    return repr(float(bound))


ROUTE_LABEL = "route"
CODE_LABEL = "code"
MODEL_LABEL = "model"
VERSION_LABEL = "version"
# The serving role of a process during a progressive rollout: the version taking a share of traffic is the
# canary, the one it is compared with is stable. The analysis compares series by version; role is for people.
ROLE_LABEL = "role"
ROLE_STABLE = "stable"
ROLE_CANARY = "canary"
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))  # probability/score histogram, 0.05 wide

# batch monitoring steps (exported via textfile / Pushgateway)
DRIFT_SCORE = "mlc_feature_drift_score"  # gauge {model, feature, method}
DRIFT_LAST_RUN = "mlc_drift_check_last_run_timestamp_seconds"  # gauge {model}
QUALITY = "mlc_model_quality"  # gauge {model, metric}
QUALITY_BASELINE = "mlc_model_quality_baseline"  # gauge {model, metric}

# training pipeline steps (exported via textfile / Pushgateway, like the monitoring steps)
GATE_PASSED = "mlc_gate_passed"  # gauge 1 passed / 0 failed {model, gate, metric}; skipped gates absent
TRAIN_LAST_SUCCESS = "mlc_train_last_success_timestamp_seconds"  # gauge {model}: register finished
MODEL_ALIAS_VERSION = "mlc_model_alias_version"  # gauge = registered version number {model, alias}

# recording rules
LATENCY_P95 = "mlc:inference_latency_seconds:p95"
LATENCY_P99 = "mlc:inference_latency_seconds:p99"
ERROR_RATIO = "mlc:inference_error_ratio"  # suffixed with :rate<window>

# error-budget metadata, Sloth-style: one series per SLO {model, slo}; burn rates also carry {window}
SLO_OBJECTIVE = "mlc:slo_objective:ratio"  # the objective (share of good requests), e.g. 0.99
SLO_ERROR_BUDGET = "mlc:slo_error_budget:ratio"  # 1 - objective
SLO_BURN_RATE = "mlc:slo_burn_rate:ratio"  # error ratio over {window} / error budget (1 = on budget)
SLO_BUDGET_REMAINING = "mlc:slo_error_budget_remaining:ratio"  # 1 - burn rate over the SLO window
SLO_LABEL = "slo"
SLOW_RATIO = "mlc:inference_slow_ratio"  # {model, slo}: share of requests over a latency objective; :rate<window>
WINDOW_LABEL = "window"
