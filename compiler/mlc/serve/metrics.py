"""Prometheus series of `mlc serve` under the names the Plan defines (and the generated rules query), and the
ASGI wrapper that counts, times and bounds every request.

Why a pure ASGI wrapper for metrics and the body limit: it costs a few microseconds per request, while
Starlette's BaseHTTPMiddleware adds a task and a stream per request. The route label is the route template
(``/v2/models/{name}/infer``), never the raw path, so a client cannot blow up the series count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mlc.plan import metrics as m
from mlc.serve.model import ServedModel

log = logging.getLogger("mlc.serve")

UNMATCHED = "unmatched"
# Scrapes and kubelet probes are not traffic: counting them would dilute the latency and error-ratio SLOs
# that the generated rules compute over every series of the model.
NOT_TRAFFIC = frozenset({"/metrics", "/v2/health/live", "/v2/health/ready"})


class Metrics:
    """Prometheus series under the names the plan defines (and the generated rules query)."""

    def __init__(self, model: ServedModel) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
        from prometheus_client.process_collector import ProcessCollector

        disable_created_metrics()  # the *_created series only double what the rules need to read

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        labels = (m.MODEL_LABEL, m.VERSION_LABEL)
        self.requests = Counter(m.REQUESTS_TOTAL.removesuffix("_total"), "Inference server requests.",
                                (*labels, m.ROUTE_LABEL, m.CODE_LABEL), registry=self.registry)
        self.duration = Histogram(m.REQUEST_DURATION, "Request latency (seconds).", (*labels, m.ROUTE_LABEL),
                                  buckets=m.LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge(m.IN_FLIGHT, "Requests being served.", labels, registry=self.registry)
        info = Gauge(m.MODEL_INFO, "The served model (always 1).", labels, registry=self.registry)
        self.key = (model.name, model.version)
        info.labels(*self.key).set(1)
        self.in_flight_child = self.in_flight.labels(*self.key)
        self._counters: dict[tuple[str, int], Any] = {}
        self._hists: dict[str, Any] = {}

    def observe(self, route: str, code: int, seconds: float) -> None:
        c = self._counters.get((route, code))
        if c is None:
            c = self._counters[(route, code)] = self.requests.labels(*self.key, route, str(code))
        h = self._hists.get(route)
        if h is None:
            h = self._hists[route] = self.duration.labels(*self.key, route)
        c.inc()
        h.observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def instrument(app: ASGIApp, metrics: Metrics, max_body: int) -> ASGIApp:
    """Count, time and bound every HTTP request; reject a too-large declared body before reading it."""
    async def wrapped(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in NOT_TRAFFIC:
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(msg: dict) -> None:
            nonlocal status, started
            if msg["type"] == "http.response.start":
                status = msg["status"]
                started = True
            await send(msg)

        metrics.in_flight_child.inc()
        try:
            length = _content_length(scope)
            if length is not None and length > max_body:
                await _send_json(send_wrapper, 413, {"error": f"request body of {length} bytes is larger than "
                                                              f"the limit of {max_body} bytes"})
            else:
                await app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error")
            if not started:
                await _send_json(send_wrapper, 500, {"error": "internal server error"})
            status = 500
        finally:
            metrics.in_flight_child.dec()
            route = scope.get("route")
            metrics.observe(getattr(route, "path", None) or UNMATCHED, status, time.perf_counter() - start)

    return wrapped


def _content_length(scope: Scope) -> int | None:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


async def _send_json(send: Callable, status: int, body: dict) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})

