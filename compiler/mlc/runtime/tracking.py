"""MLflow: one parent run per pipeline run, one nested run per candidate, and the registry.

Steps run in separate processes (one pod per step on a cluster), so nothing is kept in memory between them:
the parent run is found again by its tag ``mlc.run_id`` and the candidate runs by ``mlc.candidate``.
MLflow is imported inside each function, never at module import.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.runtime.context import StepContext

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

RUN_TAG = "mlc.run_id"
ROLE_TAG = "mlc.role"
CANDIDATE_TAG = "mlc.candidate"
POSITIVE_TAG = "mlc.positive_class"
NEGATIVE_TAG = "mlc.negative_class"
LINEAGE_TAGS = ("mlc.data_fingerprint", "mlc.spec_hash", "mlc.git_commit", "mlc.run_id", "mlc.candidate")


def use_store(uri: str) -> None:
    """Point MLflow's fluent API (log_model, load_model, the registry) at ``uri``.

    ``mlflow.set_tracking_uri`` / ``set_registry_uri`` also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into
    os.environ, where make_context (and every child process) would later read them as the user's override, so
    another project in the same process would share this store. The variables are put back as they were.
    """
    import logging
    import os

    import mlflow

    from mlc.runtime import chatter

    chatter.adopt()  # MLflow installed its own stderr handlers on import: route them through the step's capture
    for noisy in ("mlflow.store.db.utils", "alembic.runtime.migration"):  # "Creating initial tables..." on stderr
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from mlc.runtime import sqlite_store

    for store in {uri, registry_uri(uri)}:
        sqlite_store.seed(store)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry_uri(uri))
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def registry_uri(tracking_uri: str) -> str:
    """The model registry: the tracking store itself, unless the user set MLFLOW_REGISTRY_URI."""
    import os

    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri


def client(ctx: StepContext) -> MlflowClient:
    """A client for the context's store; MLflow's fluent API points there too (see use_store)."""
    from mlflow import MlflowClient

    use_store(ctx.tracking_uri)
    return MlflowClient(ctx.tracking_uri, registry_uri(ctx.tracking_uri))


def artifact_location(ctx: StepContext) -> str | None:
    """A sqlite store keeps its artifacts beside the database, never under the current directory."""
    uri = ctx.tracking_uri
    from mlc.runtime.sqlite_store import sqlite_path

    if (db := sqlite_path(uri)) is not None:
        return (db.parent / "mlruns").resolve().as_uri()
    return None


def experiment_id(ctx: StepContext) -> str:
    from mlflow.exceptions import MlflowException

    c = client(ctx)
    name = ctx.plan.spec.training.experiment
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=artifact_location(ctx))
    except MlflowException:  # another step process created it a moment ago
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _find(ctx: StepContext, exp: str, filters: dict[str, str]) -> str | None:
    c = client(ctx)
    flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in filters.items())
    runs = c.search_runs([exp], filter_string=flt, order_by=["attributes.start_time ASC"], max_results=1)
    return runs[0].info.run_id if runs else None


def parent_run(ctx: StepContext) -> str:
    """The MLflow run of this pipeline run, created by the first step that needs it."""
    exp = experiment_id(ctx)
    found = _find(ctx, exp, {RUN_TAG: ctx.run_id, ROLE_TAG: "pipeline"})
    if found:
        return found
    tags = {RUN_TAG: ctx.run_id, ROLE_TAG: "pipeline", "mlc.project": ctx.plan.project, "mlc.env": ctx.plan.env,
            "mlc.spec_hash": ctx.plan.spec_hash}
    return client(ctx).create_run(exp, run_name=ctx.run_id, tags=tags).info.run_id


def candidate_run(ctx: StepContext, candidate: str) -> str:
    """A fresh nested run for one training attempt (a retried step gets a new run; the old one stays FAILED)."""
    exp = experiment_id(ctx)
    parent = parent_run(ctx)
    tags = {RUN_TAG: ctx.run_id, ROLE_TAG: "candidate", CANDIDATE_TAG: candidate, "mlflow.parentRunId": parent}
    return client(ctx).create_run(exp, run_name=candidate, tags=tags).info.run_id


def end_run(ctx: StepContext, run_id: str, status: str = "FINISHED") -> None:
    client(ctx).set_terminated(run_id, status)


def champion(ctx: StepContext) -> ModelVersion | None:
    """The version holding the production alias, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    reg = ctx.plan.spec.registry
    try:
        return client(ctx).get_model_version_by_alias(reg.model, reg.production_alias)
    except MlflowException as e:
        from mlc.services import classify

        if classify(e) is not None:
            raise  # the tracking server is unreachable or refused us: that is not "no champion yet"
        return None


def load_model(ctx: StepContext, uri: str) -> Any:
    import mlflow.sklearn

    client(ctx)
    return mlflow.sklearn.load_model(uri)


def git_commit(project_dir: Path) -> str | None:
    import os

    if os.environ.get("MLC_GIT_COMMIT"):
        return os.environ["MLC_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
