"""Checks of monitoring and schedules: the quality floor has a bound, crons and Prometheus durations parse.

E210 quality floor without min/min_ratio   E212 cron expression   E217 Prometheus duration
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.spec import cron
from mlc.spec.checks.common import diag
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec


def quality_bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    q = spec.monitoring.quality
    if q is not None and q.min is None and q.min_ratio is None:
        yield diag(
            loaded,
            "E210",
            ("monitoring", "quality"),
            "a quality floor needs `min` or `min_ratio`",
            "min is absolute; min_ratio is a share of the training baseline, e.g. 0.95",
        )


def _crons(spec: Spec) -> Iterator[tuple[tuple, str]]:
    if spec.deployment.batch:
        yield ("deployment", "batch", "schedule"), spec.deployment.batch.schedule
    if spec.monitoring.drift:
        yield ("monitoring", "drift", "schedule"), spec.monitoring.drift.schedule
    if spec.monitoring.retraining and spec.monitoring.retraining.schedule is not None:
        yield ("monitoring", "retraining", "schedule"), spec.monitoring.retraining.schedule


def crons(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for path, expr in _crons(spec):
        why = cron.problem(expr)
        if why:
            yield diag(
                loaded,
                "E212",
                path,
                f"invalid cron expression {expr!r}: {why}",
                '5 fields in UTC, e.g. "0 4 1 * *" (04:00 on the 1st of each month) or @daily',
            )


_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def durations(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    slo = spec.monitoring.slo
    if slo is None:
        return
    for key in ("window", "latency_window"):
        v = getattr(slo, key)
        if not _DURATION.match(v):
            yield diag(
                loaded,
                "E217",
                ("monitoring", "slo", key),
                f"invalid Prometheus duration {v!r}",
                "a number and a unit (ms, s, m, h, d, w, y), e.g. 5m, 1h or 30d",
            )
