"""The routes of `mlc serve`: the Open Inference Protocol v2 (as KServe and MLServer speak it) and /predict.

Handlers take the raw Request and answer with prebuilt Responses: the body is parsed once with orjson and
checked against the spec's schema (serve/schema.py), instead of going through a pydantic model per request.
Errors use the V2 shape ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from mlc import __version__
from mlc.plan import metrics as M
from mlc.serve.canary import ROLE_HEADER, ROUTE_HEADER, VERSION_HEADER, Weight
from mlc.serve.fault import Fault
from mlc.serve.metrics import Metrics, Series, instrument
from mlc.serve.model import Batcher, ModelFailed, ServedModel
from mlc.serve.schema import InputError

log = logging.getLogger("mlc.serve")

DEFAULT_MAX_BODY = 8 * 1024 * 1024


INFER = "/v2/models/{name}/infer"
VERSION_INFER = "/v2/models/{name}/versions/{version}/infer"
PREDICT = "/predict"


@dataclass
class Target:
    """One served version: its model, batcher and series, the headers its inference answers carry, and the test
    fault that applies to it (serve/fault.py)."""

    model: ServedModel
    batcher: Batcher
    series: Series
    headers: list[tuple[bytes, bytes]]
    fault: Fault | None = None
    error: str | None = None  # why loading failed


def build_app(model: ServedModel, *, max_body: int = DEFAULT_MAX_BODY, canary: ServedModel | None = None,
              weight: Weight | None = None, fault: Fault | None = None,
              latency_buckets: tuple[float, ...] = M.LATENCY_BUCKETS) -> Any:
    """The ASGI app serving ``model``; loads the pipeline at startup if ``model.load`` is set.

    With ``canary``, both versions are served side by side: each inference request goes to the canary with
    probability ``weight.current()``/100 (or where the ``x-mlc-route`` header or an explicit version says), and
    readiness is true only once both are loaded.
    """
    import asyncio

    metrics = Metrics([model] if canary is None else [model, canary], latency_buckets)
    targets = [Target(mdl, Batcher(mdl, observe=series.score.observe_many), series,
                      [(VERSION_HEADER.encode(), mdl.version.encode()), (ROLE_HEADER.encode(), mdl.role.encode())],
                      fault if fault is not None and fault.applies(mdl.role) else None)
               for mdl, series in zip([model] if canary is None else [model, canary], metrics.series, strict=True)]
    stable = targets[0]
    can = targets[1] if canary is not None else None
    by_version = {t.model.version: t for t in targets}
    if can is not None and weight is None:
        weight = Weight(fixed=0)
    route_header = ROUTE_HEADER.encode()

    def json(body: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loaders = []
        for t in targets:
            t.batcher.start()
            if t.model.pipeline is None and t.model.load is not None:
                loaders.append(asyncio.create_task(_load(t)))
            else:
                t.model.ready = t.model.pipeline is not None
        yield
        for task in loaders:
            task.cancel()
        for t in targets:
            await t.batcher.stop()

    app = FastAPI(title="mlc serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> Response:
        r = json(exc.body(), exc.status)
        if exc.status == 413:  # the rest of the body is never read: drop the connection
            r.headers["connection"] = "close"
        return r

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        msg = exc.detail if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
        return json({"error": msg}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return json({"error": str(exc)}, 422)

    def served_versions() -> str:
        if can is None:
            return f"version {stable.model.version}"
        return f"versions {stable.model.version} (stable) and {can.model.version} (canary)"

    def target_of(request: Request, name: str, version: str | None) -> Target:
        """The version the router picked (serve/metrics.instrument), after checking the name and version."""
        t: Target = request.scope.get("mlc.target") or (by_version.get(version, stable) if version else stable)
        if name != t.model.name:
            raise InputError(404, f"model '{name}' is not served here; this server serves '{t.model.name}'")
        if version is not None and version != t.model.version:
            raise InputError(404, f"model '{name}' version '{version}' is not served here; this server serves "
                                  f"{served_versions()}")
        return t

    def not_ready(t: Target) -> Response | None:
        if t.model.ready:
            return None
        msg = f"model failed to load: {t.error}" if t.error else "the model is still loading"
        return json({"error": msg}, 503)

    def all_ready() -> bool:
        return all(t.model.ready for t in targets)

    async def parse(request: Request) -> Any:
        body = await read_body(request, max_body)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise InputError(400, f"malformed JSON: {e}") from None

    async def predict_cols(t: Target, cols: dict, n: int) -> dict[str, list[Any]]:
        try:
            return await t.batcher.submit(cols, n)
        except ModelFailed as e:
            raise InputError(500, str(e)) from None

    # ------------------------------------------------------------------ routing (called by the ASGI wrapper)
    def route(scope: dict[str, Any]) -> tuple[Target, str | None, str | None]:
        path: str = scope["path"]
        template = None
        parts = path.split("/")
        if path == PREDICT:
            template = PREDICT
        elif len(parts) == 5 and parts[4] == "infer" and parts[1] == "v2" and parts[2] == "models":
            template = INFER
        elif len(parts) == 7 and parts[6] == "infer" and parts[4] == "versions" and parts[1] == "v2" \
                and parts[2] == "models":
            template = VERSION_INFER
        if can is None:
            return stable, template, None
        if len(parts) >= 6 and parts[4] == "versions" and parts[1] == "v2" and parts[2] == "models":
            return by_version.get(parts[5], stable), template, None  # an explicit version is never split
        if template is None:
            return stable, None, None
        forced = next((v for k, v in scope["headers"] if k == route_header), None)
        if forced is None:
            assert weight is not None
            return (can if random.random() * 100 < weight.current() else stable), template, None
        if forced == b"canary":
            return can, template, None
        if forced == b"stable":
            return stable, template, None
        return stable, template, (f"header {ROUTE_HEADER} must be stable or canary, got "
                                  f"{forced.decode(errors='replace')!r}")

    # ------------------------------------------------------------------ health and metadata
    @app.get("/v2/health/live")
    async def live() -> Response:
        return json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = all_ready()
        return json({"ready": ok}, 200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> Response:
        return json({"name": "mlc", "version": __version__, "extensions": []})

    def metadata(t: Target, *, both: bool) -> dict[str, Any]:
        mdl = t.model
        if mdl.task == "classification":
            outputs = [{"name": "score", "datatype": "FP64", "shape": [-1],
                        "parameters": {"positive_class": str(mdl.positive_class)}},
                       {"name": "label", "datatype": "BYTES", "shape": [-1]}]
        else:
            outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        params: dict[str, Any] = {"task": mdl.task, "alias": mdl.alias, "run_id": mdl.run_id,
                                  "version": mdl.version, "role": mdl.role}
        versions = [mdl.version]
        if both and can is not None and weight is not None:
            versions.append(can.model.version)
            params["canary"] = {"version": can.model.version, "alias": can.model.alias,
                                "run_id": can.model.run_id, "weight": weight.current()}
        return {"name": mdl.name, "versions": versions, "platform": "mlc-sklearn",
                "inputs": mdl.schema.v2_metadata_inputs(), "outputs": outputs, "parameters": params}

    @app.get("/v2/models/{name}")
    async def model_metadata(request: Request, name: str) -> Response:
        return json(metadata(target_of(request, name, None), both=True))

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(request: Request, name: str, version: str) -> Response:
        return json(metadata(target_of(request, name, version), both=False))

    def model_ready_body(name: str, ok: bool) -> Response:
        return json({"name": name, "ready": ok}, 200 if ok else 503)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(request: Request, name: str) -> Response:
        target_of(request, name, None)
        return model_ready_body(name, all_ready())

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(request: Request, name: str, version: str) -> Response:
        return model_ready_body(name, target_of(request, name, version).model.ready)

    # ------------------------------------------------------------------ inference
    async def infer(request: Request, name: str, version: str | None) -> Response:
        t = target_of(request, name, version)
        req = await parse(request)
        mdl = t.model
        cols, n = mdl.schema.v2(req)
        if (r := not_ready(t)) is not None:
            return r
        out = await predict_cols(t, cols, n)
        wanted = _requested_outputs(req, out)
        rid = req.get("id") if isinstance(req.get("id"), str) else new_id()
        return json({"model_name": mdl.name, "model_version": mdl.version, "id": rid,
                     "parameters": {"content_type": "pd"},
                     "outputs": [{"name": k, "datatype": "FP64" if k != "label" else "BYTES", "shape": [n],
                                  "data": out[k]} for k in wanted]})

    @app.post(INFER)
    async def model_infer(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post(VERSION_INFER)
    async def version_infer(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    @app.post(PREDICT)
    async def predict(request: Request) -> Response:
        t: Target = request.scope.get("mlc.target") or stable
        cols = t.model.schema.row(await parse(request))
        if (r := not_ready(t)) is not None:
            return r
        out = await predict_cols(t, cols, 1)
        body = {k: v[0] for k, v in out.items()}
        body["model_version"] = t.model.version
        return json(body)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    wrapped = instrument(app, metrics, max_body, route)
    wrapped.fastapi = app  # type: ignore[attr-defined]
    wrapped.batcher = stable.batcher  # type: ignore[attr-defined]
    wrapped.targets = targets  # type: ignore[attr-defined]
    return wrapped


def _requested_outputs(req: dict, out: dict[str, list[Any]]) -> list[str]:
    asked = req.get("outputs")
    if not isinstance(asked, list) or not asked:
        return list(out)
    names = [o.get("name") for o in asked if isinstance(o, dict)]
    unknown = [n for n in names if n not in out]
    if unknown:
        raise InputError(400, f"unknown output {unknown[0]!r}; this model has {', '.join(out)}")
    return names


def _warm_up(model: ServedModel) -> None:
    """Predict a single row and a full batch once before reporting ready: the first calls of a fitted pipeline
    (and of torch) at a new batch size are many times slower, and they would land on the first users."""
    for n in (1, 64):
        try:
            model.predict(model.schema.varied_columns(n))
        except Exception:  # a model that fails on the example still serves real rows
            log.warning("warm-up prediction on %d example row(s) failed", n, exc_info=True)
            return


async def _load(target: Target) -> None:
    """Load, check the fast path, warm up, freeze: readiness turns true only after all of it."""
    import asyncio
    import time

    model = target.model
    clock = time.monotonic
    try:
        assert model.load is not None
        t0 = clock()
        pipeline = await asyncio.to_thread(model.load)
        model_s = clock() - t0
        t = clock()
        fast = await asyncio.to_thread(lambda: (model.set_pipeline(pipeline), model.accelerate())[1])
        fast_s = clock() - t
        log.info("feature transform: %s", "numpy fast path (verified against sklearn)" if fast else "sklearn")
        t = clock()
        await asyncio.to_thread(_warm_up, model)
        warm_s = clock() - t
        # Everything loaded so far (sklearn, torch, the model) lives as long as the server: move it out of the
        # collector's reach, so full collections stop pausing every in-flight request. No gc.collect() first:
        # it found ~100 unreachable objects among ~300k and cost 0.2-0.6 s of the time to ready.
        t = clock()
        gc.freeze()
        gc_s = clock() - t
        model.ready = True
        since = f"{clock() - model.started:.2f} s after start" if model.started is not None else "now"
        log.info("model %s version %s (%s) ready in %s (model load %.2f s, fast-path check %.2f s, warm-up "
                 "%.2f s, gc.freeze %.2f s); model from %s", model.name, model.version, model.role, since, model_s,
                 fast_s, warm_s, gc_s, model.source or "the given loader")
    except Exception as e:
        target.error = f"{type(e).__name__}: {e}"
        log.exception("loading model %s version %s failed", model.name, model.version)


async def read_body(request: Any, limit: int) -> bytes:
    """Read a request body, giving up as soon as it passes ``limit`` (chunked bodies have no length)."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise InputError(413, f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def new_id() -> str:
    return uuid.uuid4().hex
