"""`mlc rollout start|status|promote|abort PATH --env E`: drive the rollout of the newest registered version.

``--env local`` drives `mlc serve --canary` through ``.mlc/rollout/state.json`` and runs the analysis here;
any other environment drives the live InferenceService and the ``<project>-rollout`` Workflow through the
cluster client, with the state read from the InferenceService's ``mlc.dev/rollout`` annotation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlc.errors import RunError

LOCAL = "local"


def _context(path: str, env: str) -> Any:
    from mlc.plan import lower
    from mlc.runtime.context import make_context
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    plan = lower(sf.spec, sf.text, env)
    if plan.rollout is None:
        raise RunError(f"{plan.project} has no rollout in {env}: give deployment.online.canary (e.g. [10, 50, 100]) "
                       "or deployment.online.rollout.steps")
    return make_context(sf, plan, "rollout", local=env == LOCAL or plan.tracking_uri is None)


def start(path: str, env: str, *, prometheus: str | None, metrics_url: str | None, kubeconfig: str | None,
          context: str | None, echo: Callable[[str], None] = click.echo) -> int:
    ctx = _context(path, env)
    if env == LOCAL:
        from mlc.rollout import local

        local.start(ctx, prometheus=prometheus, metrics_url=metrics_url, echo=echo)
        return 0
    from mlc.cluster.kube import Kube
    from mlc.rollout import cluster, registry

    stable, canary = registry.to_roll_out(ctx)
    k = Kube(kubeconfig, context)
    try:
        wf = cluster.begin(k, ctx.plan, canary, stable)
    finally:
        k.close()
    echo(f"{wf}: rolling out v{canary} beside v{stable} ({', '.join(f'{s.weight}%' for s in ctx.plan.rollout.steps)})"
         f"; follow it with `mlc rollout status {path} --env {env}`")
    return 0


def status(path: str, env: str, *, kubeconfig: str | None, context: str | None,
           echo: Callable[[str], None] = click.echo) -> int:
    ctx = _context(path, env)
    plan = ctx.plan
    if env == LOCAL:
        from mlc.rollout import local

        state = local.read_state(local.state_path(ctx.project_dir))
        if state is None:
            echo(f"no rollout has run in {ctx.project_dir} (start one with `mlc rollout start {path}`)")
            return 0
        live = f"weight {state.get('weight')}%"
    else:
        from mlc.cluster.kube import Kube
        from mlc.rollout import cluster

        k = Kube(kubeconfig, context)
        try:
            obj = cluster.get(k, plan)
            workflows = [w["metadata"]["name"] for w in cluster.running(k, plan)]
        finally:
            k.close()
        state = cluster.read_state(obj)
        pred = (obj.get("spec") or {}).get("predictor") or {}
        comp = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        weight = pred.get("canaryTrafficPercent")
        live = (f"canaryTrafficPercent {weight if weight is not None else 'unset (latest revision: 100%)'}; "
                f"latest ready revision {comp.get('latestReadyRevision') or '?'}; "
                f"running workflow(s): {', '.join(workflows) or 'none'}")
        if not state:
            echo(f"{plan.namespace}/{plan.endpoint.name if plan.endpoint else '?'}: no rollout recorded; {live}")
            return 0
    echo(f"{plan.model_name}: v{state.get('canary')} (canary) vs v{state.get('stable')} (stable): "
         f"{state.get('phase')}; {live}")
    for s in state.get("steps") or []:
        echo(f"  step {s.get('weight')}%: {s.get('verdict')}: {s.get('reason')}")
    ms = state.get("measurements") or []
    if ms:
        echo(f"  measurements at {state.get('weight')}%:")
        for m in ms:
            v = "no data" if m.get("value") is None else f"{m['value']:.6g}"
            echo(f"    #{m.get('n')} {m.get('metric')}: {v} vs {m.get('threshold')} -> {m.get('verdict')}")
    if state.get("reason") and state.get("phase") != "running":
        echo(f"  {state.get('phase')}: {state['reason']}")
    return 0


def decide(path: str, env: str, action: str, *, kubeconfig: str | None, context: str | None,
           echo: Callable[[str], None] = click.echo) -> int:
    """promote: skip the remaining analysis and promote now; abort: roll back as a failed analysis would."""
    ctx = _context(path, env)
    plan = ctx.plan
    alias = plan.spec.registry.production_alias
    why = f"{action}d by hand (`mlc rollout {action}`)"
    if env == LOCAL:
        from mlc.rollout import local

        p = local.state_path(ctx.project_dir)
        state = local.read_state(p)
        if state is None or state.get("phase") in (local.PROMOTED, local.ROLLED_BACK, local.ABORTED):
            raise RunError(f"no rollout to {action} in {ctx.project_dir}"
                           + (f" (the last one was {state.get('phase')})" if state else ""))
        warning = None
        if action == "promote":
            warning = local.promote(ctx, p, state, why)
        else:
            local.rollback(ctx, p, state, why, phase=local.ABORTED)
    else:
        from mlc.cluster.kube import Kube
        from mlc.rollout import cluster, local
        from mlc.runtime.rollout_steps import promote_live, rollback

        k = Kube(kubeconfig, context)
        try:
            state = cluster.read_state(cluster.get(k, plan))
            if not state.get("canary") or state.get("phase") in local.DONE:
                raise RunError(f"no rollout to {action} on {plan.namespace}"
                               + (f" (the last one was {state.get('phase')})" if state.get("phase") else ""))
            stopped = cluster.stop(k, plan, "Terminate" if action == "promote" else "Stop")
            warning = None
            if action == "promote":
                warning = promote_live(ctx, k, plan, state, why)
            else:
                rollback(ctx, k, plan, state, why, phase=local.ABORTED)
        finally:
            k.close()
        if stopped:
            echo(f"stopped workflow(s): {', '.join(stopped)}")
    if action == "promote":
        echo(f"v{state['canary']} promoted: 100% of traffic, {alias} -> v{state['canary']}")
        if warning:
            echo(f"warning: {warning}")
    else:
        echo(f"v{state['canary']} aborted: 0% of traffic, {alias} stays v{state['stable']}")
    return 0
