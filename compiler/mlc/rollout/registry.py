"""The rollout's side of the MLflow registry: which versions take part, and moving the production alias.

The stable version is the one holding the production alias; the canary is the one holding the candidate
alias, which register sets on every new version. With a rollout, register moves the production alias only for
a project's first version (nothing to compare it with); after that the rollout moves it, on promotion. Each
outcome is tagged on the canary version (``mlc.rollout``), so the registry says why a version never served.
"""

from __future__ import annotations

import time

from mlc.errors import RunError
from mlc.runtime import tracking
from mlc.runtime.context import StepContext

OUTCOME_TAG = "mlc.rollout"


def alias_version(ctx: StepContext, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    from mlc.services import classify

    try:
        return str(tracking.client(ctx).get_model_version_by_alias(ctx.plan.model_name, alias).version)
    except MlflowException as e:
        if classify(e) is not None:
            raise
        return None


def versions(ctx: StepContext) -> tuple[str | None, str | None]:
    """(stable, canary): the production alias's version and the candidate alias's."""
    reg = ctx.plan.spec.registry
    return alias_version(ctx, reg.production_alias), alias_version(ctx, reg.candidate_alias)


def to_roll_out(ctx: StepContext) -> tuple[str, str]:
    """(stable, canary) of a rollout that can start, or a RunError saying why none can."""
    reg = ctx.plan.spec.registry
    stable, canary = versions(ctx)
    model = ctx.plan.model_name
    if canary is None:
        raise RunError(f"no version of {model} holds the alias '{reg.candidate_alias}': train and register one "
                       "first (mlc run)")
    if stable is None:
        raise RunError(f"no version of {model} holds the alias '{reg.production_alias}' yet: the first version is "
                       "promoted by register, without a rollout")
    if stable == canary:
        raise RunError(f"nothing to roll out: v{canary} holds both '{reg.candidate_alias}' and "
                       f"'{reg.production_alias}'; register a new version first (mlc run)")
    return stable, canary


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def promote(ctx: StepContext, canary: str, why: str) -> str | None:
    """Production to ``canary``, then drift's reference to its training data; returns a warning when only the
    latter failed (the promotion stands)."""
    from mlc.runtime.register import point_drift_at

    reg = ctx.plan.spec.registry
    c = tracking.client(ctx)
    c.set_registered_model_alias(reg.model, reg.production_alias, canary)
    c.set_model_version_tag(reg.model, canary, OUTCOME_TAG, f"promoted {_stamp()}: {why}"[:5000])
    run = (c.get_model_version(reg.model, canary).tags or {}).get("mlc.run_id")
    if not run:
        return f"v{canary} has no mlc.run_id tag: drift keeps comparing with the previous reference"
    try:
        point_drift_at(ctx, run, canary)
    except Exception as e:  # noqa: BLE001 - storage is a separate service; the promotion already happened
        return f"drift reference not moved to v{canary}'s training data ({type(e).__name__}: {e})"
    return None


def rollback(ctx: StepContext, stable: str, canary: str, why: str) -> None:
    """Production back on ``stable`` (it stays there unless something moved it), the canary tagged with why."""
    reg = ctx.plan.spec.registry
    c = tracking.client(ctx)
    if alias_version(ctx, reg.production_alias) != stable:
        c.set_registered_model_alias(reg.model, reg.production_alias, stable)
    c.set_model_version_tag(reg.model, canary, OUTCOME_TAG, f"rolled back {_stamp()}: {why}"[:5000])
