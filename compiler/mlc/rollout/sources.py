"""Where the analysis reads its numbers: a Prometheus HTTP API (the cluster, or a local Prometheus scraping
`mlc serve`), or `mlc serve`'s own /metrics read directly when no Prometheus is given (local only).

The direct reader computes what the built-in queries compute, from the difference of two scrapes one interval
apart: the same counters, the same histogram interpolation as PromQL's ``histogram_quantile``.
"""

from __future__ import annotations

import math
from typing import Any

from mlc.plan import analysis as A
from mlc.plan import metrics as M
from mlc.rollout.analysis import SourceError, number

TIMEOUT = 10.0


def _reason(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class PrometheusSource:
    def __init__(self, base: str, *, model: str, namespace: str, interval: str) -> None:
        import httpx

        self.where = base.rstrip("/")
        self.model, self.namespace, self.interval = model, namespace, interval
        self.http = httpx.Client(base_url=self.where, timeout=TIMEOUT)

    def check(self) -> None:
        """Fail before anything changes when Prometheus cannot answer a query at all."""
        self.query("vector(1)")

    def tick(self) -> None:
        pass

    def query(self, q: str) -> list[dict[str, Any]]:
        import httpx

        try:
            r = self.http.get("/api/v1/query", params={"query": q})
        except httpx.HTTPError as e:
            raise SourceError(f"Prometheus at {self.where} is unreachable ({_reason(e)})") from None
        try:
            body = r.json()
        except ValueError:
            raise SourceError(f"Prometheus at {self.where} answered HTTP {r.status_code} with a body that is not "
                              f"JSON: {r.text[:120]!r}; is this the Prometheus base URL?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else None
            raise SourceError(f"Prometheus at {self.where} rejected the query {q!r}: "
                              f"{err or f'HTTP {r.status_code}'}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise SourceError(f"Prometheus at {self.where} answered without data for {q!r}")
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data.get("result")}]
        result = data.get("result")
        if not isinstance(result, list):
            raise SourceError(f"Prometheus at {self.where} answered {data.get('resultType')!r} for {q!r}")
        return result

    def value(self, metric: A.AnalysisMetric, version: str) -> tuple[str, float | None, str]:
        q = A.render(metric.query, model=self.model, version=version, namespace=self.namespace,
                     interval=self.interval)
        series = self.query(q)
        if not series:
            return q, None, f"the query returned no series (no traffic to version {version}?)"
        if len(series) > 1:
            return q, None, f"the query returned {len(series)} series, not one; aggregate it (sum, max)"
        sample = series[0].get("value")
        v = number(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
        return q, v, "" if v is not None else f"the value is {sample[1] if isinstance(sample, list) else sample}"


class ScrapeSource:
    """The built-ins from two scrapes of `mlc serve`'s /metrics, one interval apart."""

    def __init__(self, url: str, *, model: str, interval: str) -> None:
        import httpx

        self.where = url
        self.model, self.interval = model, interval
        self.http = httpx.Client(timeout=TIMEOUT)
        self.prev: dict[tuple, float] | None = None
        self.cur: dict[tuple, float] | None = None

    def check(self) -> None:
        self.cur = self.scrape()

    def scrape(self) -> dict[tuple, float]:
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        try:
            r = self.http.get(self.where)
            r.raise_for_status()
            text = r.text
        except httpx.HTTPError as e:
            raise SourceError(f"`mlc serve` metrics at {self.where} are unreachable ({_reason(e)}); is "
                              "`mlc serve --canary` running?") from None
        out: dict[tuple, float] = {}
        try:
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.labels.get(M.MODEL_LABEL) == self.model:
                        out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        except ValueError as e:
            raise SourceError(f"{self.where} is not a Prometheus exposition ({_reason(e)})") from None
        return out

    def tick(self) -> None:
        self.prev, self.cur = self.cur, self.scrape()

    def _delta(self, name: str, version: str, **match: str) -> dict[tuple, float]:
        """Increase of each series of ``name`` for ``version`` since the previous scrape (a reset restarts)."""
        assert self.cur is not None
        prev = self.prev or {}
        out: dict[tuple, float] = {}
        for key, v in self.cur.items():
            n, labels = key
            d = dict(labels)
            if n != name or d.get(M.VERSION_LABEL) != version or any(
                    not _matches(d.get(k, ""), want) for k, want in match.items()):
                continue
            before = prev.get(key, 0.0)
            out[key] = v - before if v >= before else v
        return out

    def value(self, metric: A.AnalysisMetric, version: str) -> tuple[str, float | None, str]:
        what = f"{metric.of or metric.kind} of version {version} from {self.where}"
        if self.prev is None:
            return what, None, "no earlier scrape to compare with"
        kind = metric.of or metric.kind
        if kind == A.ERROR_RATIO:
            total = sum(self._delta(M.REQUESTS_TOTAL, version).values())
            bad = sum(self._delta(M.REQUESTS_TOTAL, version, code="5..").values())
            return what, (bad / total if total else None), "" if total else f"no requests to version {version}"
        if kind in (A.LATENCY_P95, A.LATENCY_P99):
            buckets: dict[float, float] = {}
            for (_, labels), d in self._delta(f"{M.REQUEST_DURATION}_bucket", version).items():
                le = float(dict(labels)["le"])
                buckets[le] = buckets.get(le, 0.0) + d
            q = 0.95 if kind == A.LATENCY_P95 else 0.99
            v = histogram_quantile(q, buckets)
            return what, v, "" if v is not None else f"no requests to version {version}"
        if metric.kind == A.SCORE_SHIFT:
            s = sum(self._delta(f"{M.PREDICTION_SCORE}_sum", version).values())
            c = sum(self._delta(f"{M.PREDICTION_SCORE}_count", version).values())
            return what, (s / c if c else None), "" if c else f"no predictions by version {version}"
        raise SourceError(f"metric '{metric.name}' is raw PromQL, which needs a Prometheus: pass --prometheus URL "
                          "or set rollout.analysis.prometheus")


def _matches(value: str, pattern: str) -> bool:
    import re

    return re.fullmatch(pattern, value) is not None


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket counts {le: count}: linear interpolation inside the
    bucket the rank falls in; the +Inf bucket answers the largest finite bound."""
    if not buckets or math.inf not in buckets:
        return None
    les = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le in les:
        count = buckets[le]
        if count >= rank:
            if le == math.inf:
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return les[-2] if len(les) > 1 else None
