"""The rollout on one machine: `mlc rollout start PATH --env local` against `mlc serve PATH --canary`.

The weight lives in ``.mlc/rollout/state.json``, which `mlc serve --canary` follows; every other field of the
file is the rollout's record (versions, phase, the current step's measurements, each step's outcome) that
`mlc rollout status` prints. The analysis and its verdicts are the very code the cluster's analyze step runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from mlc.errors import RunError
from mlc.plan import Plan
from mlc.rollout import registry
from mlc.rollout.analysis import INTERRUPTED, SUCCESSFUL, Analysis, Result, settle
from mlc.runtime.steps import pid_alive
from mlc.serve import canary as serve_canary
from mlc.serve.canary import state_path

RUNNING, PAUSED, PROMOTED, ROLLED_BACK, ABORTED = "running", "paused", "promoted", "rolled-back", "aborted"
DONE = (PROMOTED, ROLLED_BACK, ABORTED)
DEFAULT_METRICS_URL = "http://127.0.0.1:8080/metrics"


def read_state(path: Path) -> dict[str, Any] | None:
    """The whole record (serve reads only its weight, mlc.serve.canary.read_weight)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: unreadable rollout state ({e}); remove it to start afresh") from None
    return doc if isinstance(doc, dict) else None


def write_state(path: Path, state: dict[str, Any]) -> None:
    serve_canary.write_state(path, {**state, "updated": time.time()})


def make_source(plan: Plan, prometheus: str | None, metrics_url: str | None) -> Any:
    from mlc.rollout.sources import PrometheusSource, ScrapeSource

    r = plan.rollout
    assert r is not None
    url = prometheus or r.prometheus
    if url:
        src: Any = PrometheusSource(url, model=plan.model_name, namespace=plan.namespace, interval=r.interval)
    else:
        src = ScrapeSource(metrics_url or DEFAULT_METRICS_URL, model=plan.model_name, interval=r.interval)
    src.check()  # unreachable: a clear error before the weight or an alias moves
    return src


def start(ctx: Any, *, prometheus: str | None, metrics_url: str | None, echo: Callable[[str], None],
          sleep: Callable[[float], None] = time.sleep) -> str:
    """Run the whole rollout; return how it ended (promoted), or raise RunError (rolled back, paused)."""
    from mlc.rollout.analysis import SourceError

    plan: Plan = ctx.plan
    r = plan.rollout
    if r is None:
        raise RunError(f"{plan.project} has no rollout: give deployment.online.canary or rollout.steps")
    path = state_path(ctx.project_dir)
    old = read_state(path)
    pid = old.get("pid") if old is not None else None
    if old is not None and old.get("phase") in (RUNNING, PAUSED) and isinstance(pid, int) and pid_alive(pid):
        raise RunError(f"a rollout of v{old.get('canary')} is {old['phase']} at {old.get('weight')}% (pid "
                       f"{old.get('pid')}); finish it with `mlc rollout promote|abort`")
    stable, canary = registry.to_roll_out(ctx)
    try:
        source = make_source(plan, prometheus, metrics_url)
    except SourceError as e:
        raise RunError(f"{e}; nothing was changed: the weight and the aliases are as they were") from None
    state: dict[str, Any] = {"model": plan.model_name, "stable": stable, "canary": canary, "weight": 0,
                             "phase": RUNNING, "pid": os.getpid(), "source": source.where, "steps": [],
                             "started": time.time()}
    echo(f"rollout of {plan.model_name} v{canary} (stable v{stable}); measurements from {source.where}")

    def interrupted() -> str | None:
        now = read_state(path) or {}
        return f"{now['phase']} by `mlc rollout`" if now.get("phase") in DONE else None

    for s in r.steps:
        if s.weight == 100:
            break
        state.update(weight=s.weight, step=s.weight, measurements=[])
        write_state(path, state)
        echo(f"step {s.weight}%: {r.count} measurement(s), one every {r.interval}")

        def report(m: Any) -> None:
            state["measurements"].append(m.__dict__)
            write_state(path, state)
            echo(f"  {m.line()}")

        result = Analysis(r, source, plan.model_name, plan.namespace, canary, stable, sleep=sleep, report=report,
                          interrupted=interrupted).run()
        state["steps"].append({"weight": s.weight, "verdict": result.verdict, "reason": result.reason})
        if result.verdict == INTERRUPTED:
            echo(f"stopped: {result.reason}")
            return (read_state(path) or {}).get("phase", ABORTED)
        if result.verdict != SUCCESSFUL:
            return _fail(ctx, path, state, s.weight, result)
        write_state(path, state)
        if s.pause_seconds:
            echo(f"  passed: {result.reason}; holding {s.weight}% for {s.pause}")
            sleep(s.pause_seconds)
            if (why := interrupted()) is not None:
                echo(f"stopped: {why}")
                return (read_state(path) or {}).get("phase", ABORTED)
    warning = promote(ctx, path, state, f"every step passed ({', '.join(str(x.weight) + '%' for x in r.steps)})")
    echo(f"promoted: {plan.spec.registry.production_alias} -> v{canary}")
    if warning:
        echo(f"warning: {warning}")
    return PROMOTED


def _fail(ctx: Any, path: Path, state: dict[str, Any], weight: int, result: Result) -> NoReturn:
    def pause(why: str) -> None:
        state.update(phase=PAUSED, reason=why)
        write_state(path, state)

    plan: Plan = ctx.plan
    assert plan.rollout is not None
    settle(result, plan.rollout, weight, canary=state["canary"], stable=state["stable"],
           alias=plan.spec.registry.production_alias, rollback=lambda why: rollback(ctx, path, state, why),
           pause=pause)


def promote(ctx: Any, path: Path, state: dict[str, Any], why: str) -> str | None:
    warning = registry.promote(ctx, state["canary"], why)
    state.update(weight=100, phase=PROMOTED, reason=why)
    write_state(path, state)
    return warning


def rollback(ctx: Any, path: Path, state: dict[str, Any], why: str, phase: str = ROLLED_BACK) -> None:
    state.update(weight=0, phase=phase, reason=why)
    write_state(path, state)  # traffic first: the canary stops serving before the registry is touched
    registry.rollback(ctx, state["stable"], state["canary"], why)


def source_where(plan: Plan, prometheus: str | None, metrics_url: str | None) -> str:
    r = plan.rollout
    return prometheus or (r.prometheus if r else None) or metrics_url or DEFAULT_METRICS_URL
