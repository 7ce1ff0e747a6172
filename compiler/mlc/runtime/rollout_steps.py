"""The steps of the ``<project>-rollout`` workflow: analyze-<weight> and promote (see mlc.backends.argo_rollout).

analyze-<weight> waits for the canary's revision, runs the analysis (mlc.rollout.analysis) against the
environment's Prometheus, writes every measurement to ``analysis.json`` and the step log, and decides: pass
(the workflow goes on), fail (``on_failure: rollback``: weight 0 and the production alias back on stable, then
exit 1 so the exit handler reports it) or pause (inconclusive, or ``on_failure: pause``: the weight stays, exit
1, and a person decides with `mlc rollout promote|abort`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mlc.errors import RunError
from mlc.plan import Plan, Step
from mlc.rollout.local import PROMOTED, ROLLED_BACK
from mlc.runtime import artifacts as A
from mlc.runtime.context import StepContext, StepResult

READY_TIMEOUT = 600.0


def versions() -> tuple[str, str]:
    from mlc.backends.argo_rollout import STABLE_ENV, VERSION_ENV

    canary, stable = os.environ.get(VERSION_ENV, ""), os.environ.get(STABLE_ENV, "")
    if not canary.isdigit() or not stable.isdigit():
        raise RunError(f"{VERSION_ENV}={canary!r} and {STABLE_ENV}={stable!r} must be registry version numbers: "
                       "start the rollout with `mlc rollout start` or the deploy step")
    return canary, stable


def say(line: str) -> None:
    """A line of the step log: the container's stderr itself, around the capture of library output (chatter)."""
    out = sys.__stderr__ or sys.stderr
    out.write(line + "\n")
    out.flush()


def kube() -> Any:
    from mlc.cluster.kube import Kube

    return Kube()


def analyze(ctx: StepContext, step: Step) -> StepResult:
    from mlc.rollout import cluster
    from mlc.rollout.analysis import INTERRUPTED, SUCCESSFUL, Analysis, SourceError, settle
    from mlc.rollout.local import DONE, PAUSED, RUNNING
    from mlc.rollout.sources import PrometheusSource

    plan = ctx.plan
    r = plan.rollout
    s = r.step_for(step.name) if r else None
    if r is None or s is None:
        raise RunError(f"{step.name} is not a step of {plan.project}'s rollout")
    canary, stable = versions()
    k = kube()
    revision = cluster.wait_ready(k, plan, READY_TIMEOUT)
    obj = cluster.get(k, plan)
    state = {**cluster.read_state(obj), "canary": canary, "stable": stable, "weight": s.weight,
             "phase": RUNNING, "revision": revision, "measurements": [], "workflow": ctx.run_id}
    cluster.write_state(k, plan, state)
    say(f"step {s.weight}%: canary v{canary} on revision {revision}, stable v{stable}; {r.count} measurement(s) "
        f"every {r.interval} from {r.prometheus}")
    if r.prometheus is None:
        raise RunError(f"environment {plan.env} has no Prometheus for the analysis: set environments.{plan.env}."
                       "prometheus")
    source = PrometheusSource(r.prometheus, model=plan.model_name, namespace=plan.namespace,
                              interval=r.interval)
    try:
        source.check()
    except SourceError as e:
        raise RunError(f"{e}; the weight stays at {s.weight}% and the aliases are unchanged") from None

    def report(m: Any) -> None:
        say(f"  {m.line()}  [{m.query}]")
        state["measurements"].append({"metric": m.metric, "n": m.n, "value": m.value, "verdict": m.verdict,
                                      "stable_value": m.stable_value, "threshold": m.threshold})

    def interrupted() -> str | None:
        now = cluster.read_state(cluster.get(k, plan))
        return f"{now['phase']} by `mlc rollout`" if now.get("phase") in DONE else None

    result = Analysis(r, source, plan.model_name, plan.namespace, canary, stable, report=report,
                      interrupted=interrupted).run()
    out = ctx.out_dir(step.name)
    A.write_json(f"{out}/analysis.json", {"step": s.weight, "canary": canary, "stable": stable,
                                           "revision": revision, **result.to_json()}, ctx.storage_options)
    state.setdefault("steps", []).append({"weight": s.weight, "verdict": result.verdict, "reason": result.reason})
    if result.verdict == SUCCESSFUL:
        cluster.write_state(k, plan, state)
        ctx.write_output("verdict", result.verdict)
        return StepResult(outputs={"verdict": result.verdict}, message=f"{s.weight}%: {result.reason}")
    if result.verdict == INTERRUPTED:
        raise RunError(f"stopped at {s.weight}%: {result.reason}")

    def pause(why: str) -> None:
        state.update(phase=PAUSED, reason=why)
        cluster.write_state(k, plan, state)

    settle(result, r, s.weight, canary=canary, stable=stable, alias=plan.spec.registry.production_alias,
           rollback=lambda why: rollback(ctx, k, plan, state, why), pause=pause)


def rollback(ctx: StepContext, k: Any, plan: Plan, state: dict[str, Any], why: str,
             phase: str = ROLLED_BACK) -> None:
    """Traffic first (the canary stops serving), then the registry."""
    from mlc.rollout import cluster, registry

    state.update(weight=0, phase=phase, reason=why)
    cluster.write_state(k, plan, state, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    registry.rollback(ctx, state["stable"], state["canary"], why)


def promote_live(ctx: StepContext, k: Any, plan: Plan, state: dict[str, Any], why: str) -> str | None:
    """All traffic to the canary's version, its revision relabelled stable, then the production alias."""
    from mlc.backends import kserve
    from mlc.plan import metrics as M
    from mlc.rollout import cluster, registry

    state.update(weight=100, phase=PROMOTED, reason=why)
    cluster.write_state(k, plan, state, kserve.pinned_predictor(plan, state["canary"], M.ROLE_STABLE, None))
    return registry.promote(ctx, state["canary"], why)


def promote(ctx: StepContext, step: Step) -> StepResult:
    from mlc.rollout import cluster

    plan = ctx.plan
    canary, stable = versions()
    k = kube()
    state = {**cluster.read_state(cluster.get(k, plan)), "canary": canary, "stable": stable}
    weights = ", ".join(f"{s.weight}%" for s in plan.rollout.steps) if plan.rollout else ""
    warning = promote_live(ctx, k, plan, state, f"every step passed ({weights})")
    alias = plan.spec.registry.production_alias
    return StepResult(message=f"v{canary} promoted: 100% of traffic, {alias} -> v{canary}"
                      + (f"; warning: {warning}" if warning else ""))
