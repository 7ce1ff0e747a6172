"""The canary analysis: ``count`` measurements every ``interval`` of each metric, judged as Argo Rollouts does.

Each measurement of a metric is successful, failed or inconclusive:
- a value inside the metric's bounds is successful, outside them failed;
- no value (an empty result, NaN: no traffic yet, or labels that match nothing) is what ``on_no_data`` says,
  inconclusive by default, never a crash (argo-rollouts#1466, #2101);
- a query that cannot be answered (Prometheus down, a bad query) is an error; more than ERROR_LIMIT in a row
  end the analysis as an error, which the rollout treats as a failure.

A metric fails the step once it has more than ``failure_limit`` failed measurements, and makes it
inconclusive once it has more than ``inconclusive_limit`` inconclusive ones; the analysis stops there. After
``count`` measurements without either, the step is successful, provided every metric was measured at least
once: a canary that got no traffic has proven nothing. The canary and stable are told apart only by
their ``version`` label, so a restarted or rescheduled pod changes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn, Protocol

from mlc.errors import MlcError, RunError
from mlc.plan import Rollout
from mlc.plan import analysis as A

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "successful", "failed", "inconclusive", "error"
INTERRUPTED = "interrupted"  # `mlc rollout promote|abort` decided while the analysis ran
ERROR_LIMIT = 4  # consecutive query errors tolerated (Argo Rollouts' consecutiveErrorLimit default)


class SourceError(MlcError):
    """A query could not be answered: the metrics source is unreachable or said something unexpected."""


class Source(Protocol):
    """Where measurements come from: a Prometheus HTTP API, or `mlc serve`'s /metrics read directly."""

    where: str

    def tick(self) -> None:
        """Called once before each round of measurements."""

    def value(self, metric: A.AnalysisMetric, version: str) -> tuple[str, float | None, str]:
        """(the query as run, its value or None for no data, a note on why there is no value)."""


@dataclass
class Measurement:
    metric: str
    n: int  # 1..count within the step
    at: float  # unix time
    query: str
    value: float | None
    threshold: str
    verdict: str
    stable_query: str | None = None
    stable_value: float | None = None
    note: str = ""

    def line(self) -> str:
        v = "no data" if self.value is None else f"{self.value:.6g}"
        s = ""
        if self.stable_query is not None:
            s = f" (stable {'no data' if self.stable_value is None else f'{self.stable_value:.6g}'})"
        note = f"; {self.note}" if self.note else ""
        return f"#{self.n} {self.metric}: {v}{s} vs {self.threshold} -> {self.verdict}{note}"


@dataclass
class Result:
    verdict: str  # successful | failed | inconclusive | error
    reason: str
    measurements: list[Measurement] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason,
                "measurements": [asdict(m) for m in self.measurements]}


@dataclass
class Analysis:
    rollout: Rollout
    source: Source
    model: str
    namespace: str
    canary: str  # the registry version taking the canary's share
    stable: str
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    report: Callable[[Measurement], None] = lambda m: None  # each measurement as it is taken (the step log)
    interrupted: Callable[[], str | None] = lambda: None  # a reason to stop now (someone promoted or aborted)

    def run(self) -> Result:
        r = self.rollout
        failed = dict.fromkeys((x.name for x in r.metrics), 0)
        inconclusive = dict(failed)
        out: list[Measurement] = []
        errors = 0
        for n in range(1, r.count + 1):
            self.sleep(r.interval_seconds)  # every rate window covers the traffic of one whole interval
            if (why := self.interrupted()) is not None:
                return Result(INTERRUPTED, why, out)
            try:
                self.source.tick()
                round_ = [self.measure(x, n) for x in r.metrics]
            except SourceError as e:
                errors += 1
                if errors > ERROR_LIMIT:
                    return Result(ERROR, f"{errors} measurements in a row could not be taken: {e}", out)
                continue
            errors = 0
            for m in round_:
                out.append(m)
                self.report(m)
                failed[m.metric] += m.verdict == FAILED
                inconclusive[m.metric] += m.verdict == INCONCLUSIVE
            for x in r.metrics:
                if failed[x.name] > r.failure_limit:
                    return Result(FAILED, f"{x.name} failed {failed[x.name]} of {n} measurements (failure_limit "
                                          f"{r.failure_limit}): {_last(out, x.name).line()}", out)
            for x in r.metrics:
                if inconclusive[x.name] > r.inconclusive_limit:
                    return Result(INCONCLUSIVE, f"{x.name} was inconclusive {inconclusive[x.name]} of {n} times "
                                                f"(inconclusive_limit {r.inconclusive_limit}): "
                                                f"{_last(out, x.name).line()}", out)
        for x in r.metrics:  # inconclusive within the limit is tolerated, never measured at all is not
            if not any(m.metric == x.name and m.verdict == SUCCESSFUL for m in out):
                return Result(INCONCLUSIVE, f"{x.name} was never measured in {r.count} attempt(s): "
                                            f"{_last(out, x.name).line() if out else 'no measurement taken'}", out)
        return Result(SUCCESSFUL, f"{len(r.metrics)} metric(s) passed {r.count} measurement(s)", out)

    def measure(self, x: A.AnalysisMetric, n: int) -> Measurement:
        r = self.rollout
        q, value, note = self.source.value(x, self.canary)
        m = Measurement(x.name, n, self.clock(), q, value, x.describe(), SUCCESSFUL, note=note)
        if x.needs_stable:
            m.stable_query, m.stable_value, snote = self.source.value(x, self.stable)
            note = note or (f"stable: {snote}" if snote else "")
        values = [value] + ([m.stable_value] if x.needs_stable else [])
        if any(v is None for v in values):
            m.verdict = FAILED if r.on_no_data == "fail" else INCONCLUSIVE
            m.note = note or "no data"
            return m
        assert value is not None
        if x.kind == A.RELATIVE:
            ok = value <= (m.stable_value or 0.0) + (x.max or 0.0)
        elif x.kind == A.SCORE_SHIFT:
            ok = abs(value - (m.stable_value or 0.0)) <= (x.max or 0.0)
        else:
            ok = (x.min is None or value >= x.min) and (x.max is None or value <= x.max)
        m.verdict = SUCCESSFUL if ok else FAILED
        return m


def settle(result: Result, rollout: Rollout, weight: int, *, canary: str, stable: str, alias: str,
           rollback: Callable[[str], None], pause: Callable[[str], None]) -> NoReturn:
    """Where a step that did not pass leads, the same on one machine and on a cluster: a failure (or an
    analysis error) with ``on_failure: rollback`` rolls back; anything else (inconclusive, or ``on_failure:
    pause``) holds the weight for a person. Either way the caller exits 1."""
    why = f"{result.verdict} at {weight}%: {result.reason}"
    if result.verdict in (FAILED, ERROR) and rollout.on_failure == "rollback":
        rollback(why)
        raise RunError(f"rollout of v{canary} rolled back: {why}; {alias} stays v{stable}")
    pause(why)
    raise RunError(f"rollout of v{canary} paused at {weight}%: {why}; decide with `mlc rollout promote` or "
                   "`mlc rollout abort`")


def _last(ms: list[Measurement], name: str) -> Measurement:
    return next(m for m in reversed(ms) if m.metric == name)


def number(text: Any) -> float | None:
    """A sample value as Prometheus writes it ("0.1", "NaN", "+Inf"); NaN and infinities are no data."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
