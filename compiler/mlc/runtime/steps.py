"""The registry of step kinds and ``execute``, which runs one step with atomic publishing.

A step writes into a temporary sibling of its step directory (``ctx.out_dir(name)``); only when it returns is
``result.json`` and then ``_SUCCESS`` written and the directory renamed into place. On s3, where a rename is a
copy, the step writes in place and ``_SUCCESS`` is written last. Either way a step killed half-way leaves no
``_SUCCESS``, so ``is_complete`` never mistakes it for done. A step that fails with a RunError still publishes
its reports (without ``_SUCCESS``) so the user can read why.

A step names its files by ``ctx.out_dir``, which is the temporary directory while it runs; every path it
reports (the StepResult written to result.json and printed, a RunError's message) is rewritten here to the
published path, so that nothing printed or stored names a directory that is gone after the swap.

While a step runs, what libraries log, warn and print goes through ``chatter.capture``: shown by verbosity,
and published with the step as ``library.log``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.context import SUCCESS, StepContext, StepResult

RESULT = "result.json"


def _lazy(module: str, name: str) -> Callable[[StepContext, Step], StepResult]:
    """Import a step's module only when that step runs (sklearn, mlflow, torch are heavy)."""

    def run(ctx: StepContext, step: Step) -> StepResult:
        import importlib

        return getattr(importlib.import_module(f"mlc.runtime.{module}"), name)(ctx, step)

    run.__name__ = name
    run.__qualname__ = f"{module}.{name}"
    return run


STEPS: dict[str, Callable[[StepContext, Step], StepResult]] = {
    "ingest": _lazy("data", "ingest"),
    "validate-data": _lazy("data", "validate_data"),
    "features": _lazy("features", "features"),
    "train": _lazy("train", "train"),
    "evaluate": _lazy("evaluate", "evaluate"),
    "gate": _lazy("gates", "gate"),
    "register": _lazy("register", "register"),
    "deploy": _lazy("register", "deploy"),
    "drift": _lazy("monitor", "drift"),
    "quality": _lazy("monitor", "quality"),
    "batch-score": _lazy("monitor", "batch_score"),
    "analyze": _lazy("rollout_steps", "analyze"),
    "promote": _lazy("rollout_steps", "promote"),
}


def is_complete(ctx: StepContext, step_name: str, run_id: str | None = None) -> bool:
    return A.exists(f"{ctx.step_dir(step_name, run_id)}/{SUCCESS}", ctx.storage_options)


def load_result(ctx: StepContext, step_name: str, run_id: str | None = None) -> StepResult:
    """The StepResult a completed step recorded (the executor restores cached steps' outputs from it)."""
    d = A.read_json(f"{ctx.step_dir(step_name, run_id)}/{RESULT}", ctx.storage_options)
    return StepResult(outputs=d.get("outputs", {}), metrics=d.get("metrics", {}), message=d.get("message", ""))


def _result_doc(result: StepResult, step: Step, error: str | None = None) -> dict:
    d = {"step": step.name, "kind": step.kind, "outputs": result.outputs, "metrics": result.metrics,
         "message": result.message}
    if error is not None:
        d["error"] = error
    return d


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: Path, step: str) -> None:
    """Remove temporary dirs left by killed attempts of this step (their writer process is gone)."""
    for p in parent.glob(f".{step}.tmp-*"):
        try:
            pid = int(p.name.split(".tmp-", 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _swap_in(work: str, final: str) -> None:
    """Replace ``final`` by ``work`` with renames only (each atomic on one filesystem)."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-{os.getpid()}-", dir=os.path.dirname(final))
        os.replace(final, os.path.join(old, "d"))
    os.replace(work, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def published(value: Any, work: str, final: str) -> Any:
    """``value`` with every path into the temporary directory ``work`` replaced by the published ``final``."""
    if work == final:
        return value
    if isinstance(value, str):
        return value.replace(work, final)
    if isinstance(value, dict):
        return {k: published(v, work, final) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(published(v, work, final) for v in value)
    return value


def _published_result(result: StepResult, work: str, final: str) -> StepResult:
    return StepResult(outputs=published(result.outputs, work, final), metrics=published(result.metrics, work, final),
                      message=published(result.message, work, final))


def _write_library_log(work: str, lines: list[str], opts: dict[str, Any]) -> None:
    from mlc.runtime.chatter import LOG

    if lines:
        A.write_text(f"{work}/{LOG}", "\n".join(lines) + "\n", opts)


def execute(ctx: StepContext, step: Step) -> StepResult:
    """Run one step and publish its artifacts atomically; writes result.json and the output parameters.
    A fault of S3, MLflow, the Kubernetes API or Prometheus becomes a one-line ServiceError (mlc.services)."""
    from mlc.services import Where, guard

    with guard(Where(ctx.storage_root, ctx.plan.storage.endpoint, ctx.tracking_uri)):
        return _execute(ctx, step)


def _execute(ctx: StepContext, step: Step) -> StepResult:
    fn = STEPS.get(step.kind)
    if fn is None:
        raise RunError(f"step '{step.name}' has unknown kind '{step.kind}'; known: {', '.join(sorted(STEPS))}")
    final = ctx.step_dir(step.name)
    opts = ctx.storage_options
    local = A.is_local(final)
    if local:
        final = final.removeprefix("file://")
        parent = Path(final).parent
        parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(parent, step.name)
        work = tempfile.mkdtemp(prefix=f".{step.name}.tmp-{os.getpid()}-", dir=parent)
        os.chmod(work, 0o755)  # mkdtemp's 0700 would hide artifacts from other users of a shared volume
    else:
        A.remove(final, opts)  # drops an old _SUCCESS first, so a half-rewritten dir never looks complete
        work = final
    ctx.work_dirs[step.name] = work
    from mlc.runtime import chatter

    library: list[str] = []  # what libraries logged, warned and printed meanwhile (chatter.py)
    try:
        with chatter.capture(ctx.verbosity) as library:
            result = fn(ctx, step)
    except RunError as e:
        if e.args and isinstance(e.args[0], str):
            e.args = (published(e.args[0], work, final), *e.args[1:])  # the report it names is published below
        A.write_json(f"{work}/{RESULT}", _result_doc(StepResult(message=str(e).splitlines()[0]), step, str(e)), opts)
        _write_library_log(work, library, opts)
        if local:
            _swap_in(work, final)  # the reports explain the failure; no _SUCCESS, so it reruns
        raise
    except BaseException:
        if local:
            shutil.rmtree(work, ignore_errors=True)
        if library and ctx.verbosity == 0:  # a crash: what was hidden may explain it
            tail = library[-20:]
            print(f"{step.name}: the last {len(tail)} lines libraries logged before it failed:\n"
                  + "\n".join(f"  {line}" for line in tail), file=sys.stderr)
        raise
    finally:
        ctx.work_dirs.pop(step.name, None)
    result = _published_result(result, work, final)
    _write_library_log(work, library, opts)
    A.write_json(f"{work}/{RESULT}", _result_doc(result, step), opts)
    A.write_text(f"{work}/{SUCCESS}", "", opts)
    if local:
        _swap_in(work, final)
    for name, value in result.outputs.items():
        ctx.write_output(name, value)
    ctx.write_outputs_json({k: result.outputs[k] for k in step.outputs if k in result.outputs})  # as Argo collects
    return result
