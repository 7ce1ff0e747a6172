"""The routes of `mlc serve`: the Open Inference Protocol v2 (as KServe and MLServer speak it) and /predict.

Handlers take the raw Request and answer with prebuilt Responses: the body is parsed once with orjson and
checked against the spec's schema (serve/schema.py), instead of going through a pydantic model per request.
Errors use the V2 shape ``{"error": "..."}``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from mlc import __version__
from mlc.serve.metrics import Metrics, instrument
from mlc.serve.model import Batcher, ModelFailed, ServedModel
from mlc.serve.schema import InputError

log = logging.getLogger("mlc.serve")

DEFAULT_MAX_BODY = 8 * 1024 * 1024


def build_app(model: ServedModel, *, max_body: int = DEFAULT_MAX_BODY) -> Any:
    """The ASGI app serving ``model``; loads the pipeline at startup if ``model.load`` is set."""
    import asyncio

    metrics = Metrics(model)
    batcher = Batcher(model)
    state: dict[str, Any] = {"error": None}

    def json(body: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.start()
        loader = None
        if model.pipeline is None and model.load is not None:
            loader = asyncio.create_task(_load(model, state))
        else:
            model.ready = model.pipeline is not None
        yield
        if loader is not None:
            loader.cancel()
        await batcher.stop()

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

    def check_model(name: str, version: str | None) -> None:
        if name != model.name:
            raise InputError(404, f"model '{name}' is not served here; this server serves '{model.name}'")
        if version is not None and version != model.version:
            raise InputError(404, f"model '{name}' version '{version}' is not served here; this server serves "
                                  f"version {model.version}")

    def not_ready() -> Response | None:
        if model.ready:
            return None
        msg = f"model failed to load: {state['error']}" if state["error"] else "the model is still loading"
        return json({"error": msg}, 503)

    async def parse(request: Request) -> Any:
        body = await read_body(request, max_body)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise InputError(400, f"malformed JSON: {e}") from None

    async def predict_cols(cols: dict, n: int) -> dict[str, list[Any]]:
        try:
            return await batcher.submit(cols, n)
        except ModelFailed as e:
            raise InputError(500, str(e)) from None

    # ------------------------------------------------------------------ health and metadata
    @app.get("/v2/health/live")
    async def live() -> Response:
        return json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = model.ready
        return json({"ready": ok}, 200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> Response:
        return json({"name": "mlc", "version": __version__, "extensions": []})

    def metadata() -> dict[str, Any]:
        if model.task == "classification":
            outputs = [{"name": "score", "datatype": "FP64", "shape": [-1],
                        "parameters": {"positive_class": str(model.positive_class)}},
                       {"name": "label", "datatype": "BYTES", "shape": [-1]}]
        else:
            outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        return {"name": model.name, "versions": [model.version], "platform": "mlc-sklearn",
                "inputs": model.schema.v2_metadata_inputs(), "outputs": outputs,
                "parameters": {"task": model.task, "alias": model.alias, "run_id": model.run_id}}

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        check_model(name, None)
        return json(metadata())

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: str) -> Response:
        check_model(name, version)
        return json(metadata())

    def model_ready_body(name: str) -> Response:
        ok = model.ready
        return json({"name": name, "ready": ok}, 200 if ok else 503)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        check_model(name, None)
        return model_ready_body(name)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> Response:
        check_model(name, version)
        return model_ready_body(name)

    # ------------------------------------------------------------------ inference
    async def infer(request: Request, name: str, version: str | None) -> Response:
        check_model(name, version)
        req = await parse(request)
        cols, n = model.schema.v2(req)
        if (r := not_ready()) is not None:
            return r
        out = await predict_cols(cols, n)
        wanted = _requested_outputs(req, out)
        rid = req.get("id") if isinstance(req.get("id"), str) else new_id()
        return json({"model_name": model.name, "model_version": model.version, "id": rid,
                     "parameters": {"content_type": "pd"},
                     "outputs": [{"name": k, "datatype": "FP64" if k != "label" else "BYTES", "shape": [n],
                                  "data": out[k]} for k in wanted]})

    @app.post("/v2/models/{name}/infer")
    async def model_infer(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def version_infer(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        cols = model.schema.row(await parse(request))
        if (r := not_ready()) is not None:
            return r
        out = await predict_cols(cols, 1)
        body = {k: v[0] for k, v in out.items()}
        body["model_version"] = model.version
        return json(body)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    wrapped = instrument(app, metrics, max_body)
    wrapped.fastapi = app  # type: ignore[attr-defined]
    wrapped.batcher = batcher  # type: ignore[attr-defined]
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


async def _load(model: ServedModel, state: dict[str, Any]) -> None:
    """Load, check the fast path, warm up, freeze: readiness turns true only after all of it."""
    import asyncio
    import time

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
        log.info("model %s version %s ready in %s (model load %.2f s, fast-path check %.2f s, warm-up %.2f s, "
                 "gc.freeze %.2f s); model from %s", model.name, model.version, since, model_s, fast_s, warm_s,
                 gc_s, model.source or "the given loader")
    except Exception as e:
        state["error"] = f"{type(e).__name__}: {e}"
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
