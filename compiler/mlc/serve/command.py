"""`mlc serve`: the registered model behind the Open Inference Protocol v2, /predict and /metrics.

The version to serve is resolved in the registry before the server starts, so a project without a registered
model fails at once with a message (exit 1). The model itself loads in the background after the server is up:
liveness answers at once, readiness turns true only once the pipeline is loaded, checked against its fast path
and warmed up, as KServe expects. Nothing on the way to the open socket imports mlflow, sklearn or torch when
the store is the local one (serve/registry.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mlc.errors import MlcError

POSITIVE_CLASS_KEY = "mlc.positive_class"
MAX_BODY_ENV = "MLC_SERVE_MAX_BODY_BYTES"


class ServeError(MlcError):
    """The model to serve cannot be found or resolved."""


def serve_command(path: str, env: str, *, model_version: int | None, alias: str | None, host: str,
                  port: int, role: str | None = None, canary: bool = False,
                  canary_weight: int | None = None) -> None:
    import time

    started = time.monotonic()
    from mlc.plan import lower
    from mlc.runtime.context import make_context
    from mlc.serve.fault import FAULT_ENV, parse_fault
    from mlc.spec.validate import load_spec

    fault = parse_fault(os.environ.get(FAULT_ENV))  # before anything slow: a typo in a test hook fails at once
    pinned = pinned_version(model_version)
    if canary:
        _check_canary_options(pinned, alias, role)
    else:
        role = serve_role(role)
    sf = load_spec(path)
    plan = lower(sf.spec, sf.text, env)
    ctx = make_context(sf, plan, "serve", local=env == "local" or plan.tracking_uri is None)
    if canary:
        from mlc.serve.canary import Weight, state_path

        stable, challenger = resolve_pair(plan, ctx.tracking_uri, project=str(sf.root))
        stable.started = challenger.started = started
        weight = Weight(fixed=canary_weight) if canary_weight is not None else Weight(state_path(sf.root))
        run_server(stable, host, port, canary=challenger, weight=weight, fault=fault,
                   latency_buckets=plan.latency_buckets)
        return
    model = resolve_model(plan, ctx.tracking_uri, model_version=pinned, alias=alias, project=str(sf.root))
    model.role = role
    model.started = started
    run_server(model, host, port, fault=fault, latency_buckets=plan.latency_buckets)


def pinned_version(model_version: int | None) -> int | None:
    """``--model-version``, else ``MLC_MODEL_VERSION`` when set and non-empty (what the rollout writes into a
    revision's spec, so that a restarted pod serves the version it was created for, not whatever the alias names by
    then), else None (resolve the alias)."""
    from mlc.backends.kserve import MODEL_VERSION_ENV

    if model_version is not None:
        return model_version
    raw = os.environ.get(MODEL_VERSION_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ServeError(f"{MODEL_VERSION_ENV}={raw!r}: expected a registered version number (1, 2, ...), or "
                         f"unset it to serve the alias")
    return int(raw)


def serve_role(role: str | None) -> str:
    """``--role``, else ``MLC_SERVE_ROLE``, else stable: the ``role`` label of every series of this process."""
    from mlc.backends.kserve import ROLE_ENV
    from mlc.plan import metrics as m

    if role is not None:
        return role
    raw = os.environ.get(ROLE_ENV, "").strip()
    if not raw:
        return m.ROLE_STABLE
    if raw not in (m.ROLE_STABLE, m.ROLE_CANARY):
        raise ServeError(f"{ROLE_ENV}={raw!r}: expected {m.ROLE_STABLE} or {m.ROLE_CANARY}")
    return raw


def _check_canary_options(pinned: int | None, alias: str | None, role: str | None) -> None:
    from mlc.backends.kserve import MODEL_VERSION_ENV

    if pinned is not None or alias is not None or role is not None:
        what = "--alias" if alias is not None else "--role" if role is not None else \
            f"--model-version or {MODEL_VERSION_ENV}"
        raise ServeError(f"--canary serves the production alias (role stable) and the candidate alias (role "
                         f"canary) together; it takes no {what}")


def resolve_pair(plan: Any, tracking_uri: str, *, project: str = ".") -> tuple[Any, Any]:
    """The champion (production alias, role stable) and the challenger (candidate alias, role canary)."""
    from mlc.plan import metrics as m

    reg = plan.spec.registry
    stable = resolve_model(plan, tracking_uri, alias=reg.production_alias, project=project)
    try:
        challenger = resolve_model(plan, tracking_uri, alias=reg.candidate_alias, project=project)
    except ServeError:
        raise ServeError(f"--canary: no challenger to compare with the champion (v{stable.version}): no version "
                         f"of '{plan.model_name}' holds the candidate alias '{reg.candidate_alias}'; train and "
                         f"register one with: mlc run {project}") from None
    if challenger.version == stable.version:
        raise ServeError(f"--canary: nothing to compare: the challenger (alias '{reg.candidate_alias}') is "
                         f"version {stable.version}, the champion (alias '{reg.production_alias}') itself; train "
                         f"a new challenger with: mlc run {project}")
    stable.role, challenger.role = m.ROLE_STABLE, m.ROLE_CANARY
    return stable, challenger


def resolve_model(plan: Any, tracking_uri: str, *, model_version: int | None = None, alias: str | None = None,
                  project: str = ".") -> Any:
    """Find the registered version to serve and return a ServedModel whose pipeline loads later.

    The local store that `mlc run` writes is read directly (serve/registry.py), without importing mlflow; any
    other store, or anything the direct read does not recognise, goes through the MLflow client.
    """
    from mlc.serve import registry
    from mlc.serve.model import ServedModel
    from mlc.serve.schema import Schema

    name = plan.model_name
    hint = f"train and register one first: mlc run {project}"
    _check_store_exists(tracking_uri, name, hint)
    alias = None if model_version is not None else (alias or plan.spec.registry.production_alias)
    found = registry.find_version(tracking_uri, name, version=model_version, alias=alias)
    load = registry.sklearn_loader(found.artifacts) if found is not None else None
    if found is not None and load is not None:
        version, run_id = found.version, found.run_id
        positive = found.tags.get(POSITIVE_CLASS_KEY)
        if positive is None and run_id:
            positive = registry.run_value(tracking_uri, run_id, POSITIVE_CLASS_KEY)
        source = f"{found.artifacts} (read directly from the local registry)"
    else:
        version, run_id, positive = _mlflow_lookup(tracking_uri, name, model_version, alias, hint)
        load = _mlflow_loader(tracking_uri, f"models:/{name}/{version}")
        source = f"models:/{name}/{version} (through the MLflow client)"
    if positive is None and plan.task == "classification":
        positive = plan.spec.data.label.positive
    negative = None
    if plan.task == "classification" and positive is not None:
        allowed = plan.spec.data.schema_[plan.label].allowed or []
        others = [str(v) for v in allowed if str(v) != str(positive)]
        negative = others[0] if len(others) == 1 else None
    return ServedModel(name=name, version=version, task=plan.task, schema=Schema(plan.inputs),
                       alias=alias, run_id=run_id, positive_class=None if positive is None else str(positive),
                       negative_class=negative, load=load, source=source)


def _mlflow_lookup(tracking_uri: str, name: str, model_version: int | None, alias: str | None,
                   hint: str) -> tuple[str, str | None, Any]:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from mlc.runtime.tracking import registry_uri

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri(tracking_uri))
    try:
        if model_version is not None:
            mv = client.get_model_version(name, str(model_version))
        else:
            mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        what = f"version {model_version}" if model_version is not None else f"alias '{alias}'"
        raise ServeError(f"no registered model '{name}' with {what} in {tracking_uri} "
                         f"({_first_line(e)}); {hint}") from None
    positive = (mv.tags or {}).get(POSITIVE_CLASS_KEY)
    if positive is None and mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            positive = run.data.tags.get(POSITIVE_CLASS_KEY) or run.data.params.get(POSITIVE_CLASS_KEY)
        except MlflowException:
            positive = None
    return str(mv.version), mv.run_id, positive


def _mlflow_loader(tracking_uri: str, uri: str) -> Any:
    def load() -> Any:
        import mlflow.sklearn

        from mlc.runtime.tracking import use_store

        use_store(tracking_uri)  # the same store training registered into, without leaking it into os.environ
        return mlflow.sklearn.load_model(uri)

    return load


def run_server(model: Any, host: str, port: int, *, canary: Any = None, weight: Any = None,
               fault: Any = None, latency_buckets: tuple[float, ...]) -> None:
    import importlib.util

    import uvicorn

    from mlc.serve.app import build_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    max_body = int(os.environ.get(MAX_BODY_ENV, "0") or 0) or None
    kw: dict[str, Any] = {"max_body": max_body} if max_body else {}
    app = build_app(model, canary=canary, weight=weight, fault=fault, latency_buckets=latency_buckets, **kw)
    has = importlib.util.find_spec
    config = uvicorn.Config(
        app, host=host, port=port, workers=1, access_log=False, log_level="info",
        loop="uvloop" if has("uvloop") else "asyncio", http="httptools" if has("httptools") else "h11",
        timeout_graceful_shutdown=30, timeout_keep_alive=30, lifespan="on",
    )
    log = logging.getLogger("mlc.serve")
    if canary is None:
        log.info("serving %s version %s (role %s) on http://%s:%d (model loading)", model.name, model.version,
                 model.role, host, port)
    else:
        log.info("serving %s version %s (stable) and version %s (canary) on http://%s:%d, canary weight %s "
                 "(models loading)", model.name, model.version, canary.version, host, port, weight.describe())
    if fault is not None:
        log.warning("test fault hook on: %s", fault)
    uvicorn.Server(config).run()


def _check_store_exists(tracking_uri: str, name: str, hint: str) -> None:
    """A sqlite store that does not exist would be created empty by MLflow; say what is missing instead."""
    from mlc.runtime.sqlite_store import sqlite_path

    if (db := sqlite_path(tracking_uri)) is not None and not db.exists():
        raise ServeError(f"no registered model '{name}': the tracking store {db} does not exist; {hint}")


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
