"""execute's publishing contract: a step is complete only when it finished; a failed step publishes its reports
without _SUCCESS; a killed step leaves nothing a later run could mistake for complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.context import StepResult
from mlc.runtime.steps import STEPS, execute, is_complete, load_result


@pytest.fixture()
def ctx(tmp_path: Path):
    root = S.write_spec(tmp_path / "p")
    return S.context(root, "r1")


def _writer(text: str, fail: BaseException | None = None):
    def run(ctx, step: Step) -> StepResult:
        A.write_text(f"{ctx.out_dir(step.name)}/out.txt", text)
        if fail is not None:
            raise fail
        return StepResult(outputs={"answer": text}, message=f"wrote {text}")
    return run


def test_success_publishes_result_success_and_outputs(ctx, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(STEPS, "demo", _writer("42"))
    ctx.outputs_dir = tmp_path / "outputs"
    res = execute(ctx, Step("demo", "demo"))
    d = Path(ctx.step_dir("demo"))
    assert res.outputs == {"answer": "42"} and is_complete(ctx, "demo")
    assert (d / "out.txt").read_text() == "42"
    assert json.loads((d / "result.json").read_text())["outputs"] == {"answer": "42"}
    assert load_result(ctx, "demo").message == "wrote 42"
    assert (tmp_path / "outputs" / "answer").read_text() == "42"  # output parameter for Argo/KFP
    # A rerun replaces the old artifacts as a whole.
    monkeypatch.setitem(STEPS, "demo", _writer("43"))
    execute(ctx, Step("demo", "demo"))
    assert (d / "out.txt").read_text() == "43"
    assert sorted(p.name for p in d.parent.iterdir()) == ["demo"]


def test_run_error_publishes_reports_without_success(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STEPS, "demo", _writer("partial", RunError("check failed\n  - x: observed 1")))
    with pytest.raises(RunError):
        execute(ctx, Step("demo", "demo"))
    d = Path(ctx.step_dir("demo"))
    assert not is_complete(ctx, "demo") and (d / "out.txt").read_text() == "partial"
    assert "x: observed 1" in json.loads((d / "result.json").read_text())["error"]


def test_paths_a_step_reports_name_the_published_directory(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    def reporting(ctx, step: Step) -> StepResult:
        out = ctx.out_dir(step.name)
        assert ".demo.tmp-" in out  # it writes into the temporary directory ...
        A.write_text(f"{out}/report.md", "# ok\n")
        return StepResult(outputs={"report": f"{out}/report.md"}, metrics={"files": [f"{out}/report.md"]},
                          message=f"see {out}/report.md")

    monkeypatch.setitem(STEPS, "demo", reporting)
    res = execute(ctx, Step("demo", "demo"))
    final = f"{ctx.step_dir('demo')}/report.md"  # ... but what it reports names where it is published
    assert res.outputs == {"report": final} and res.metrics == {"files": [final]} and res.message == f"see {final}"
    assert Path(final).is_file()
    assert load_result(ctx, "demo").message == f"see {final}"

    def failing(ctx, step: Step) -> StepResult:
        A.write_text(f"{ctx.out_dir(step.name)}/out.txt", "why")
        raise RunError(f"failed\nreport: {ctx.out_dir(step.name)}/out.txt")

    monkeypatch.setitem(STEPS, "demo", failing)
    with pytest.raises(RunError) as e:
        execute(ctx, Step("demo", "demo"))
    assert str(e.value).endswith(f"report: {ctx.step_dir('demo')}/out.txt")
    assert ".tmp-" not in json.loads((Path(ctx.step_dir("demo")) / "result.json").read_text())["error"]


def test_crash_leaves_nothing(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STEPS, "demo", _writer("42"))
    execute(ctx, Step("demo", "demo"))
    monkeypatch.setitem(STEPS, "demo", _writer("half", ValueError("bug")))
    with pytest.raises(ValueError):
        execute(ctx, Step("demo", "demo"))
    d = Path(ctx.step_dir("demo"))
    assert (d / "out.txt").read_text() == "42"  # the last complete result is untouched
    assert sorted(p.name for p in d.parent.iterdir()) == ["demo"]


def test_unknown_kind_is_a_run_error(ctx) -> None:
    with pytest.raises(RunError, match="unknown kind 'nope'"):
        execute(ctx, Step("x", "nope"))


KILLED = """
import sys, time
sys.path.insert(0, {here!r})
import runtime_support as S
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.steps import STEPS, execute

def slow(ctx, step):
    A.write_text(f"{{ctx.out_dir(step.name)}}/out.txt", "half")
    sys.__stdout__.write("written\\n")  # sys.stdout is the library-output capture while a step runs
    sys.__stdout__.flush()
    time.sleep(60)

STEPS["demo"] = slow
execute(S.context(__import__("pathlib").Path({root!r}), "r1"), Step("demo", "demo"))
"""


def test_sigkill_mid_step_is_never_complete_and_the_rerun_cleans_up(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    code = KILLED.format(here=str(Path(__file__).parent), root=str(ctx.project_dir))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run_dir = Path(ctx.run_dir())
    assert not is_complete(ctx, "demo") and not (run_dir / "demo").exists()
    stale = [p.name for p in run_dir.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".demo.tmp-")
    monkeypatch.setitem(STEPS, "demo", _writer("done"))
    time.sleep(0.05)
    execute(ctx, Step("demo", "demo"))
    assert is_complete(ctx, "demo") and [p.name for p in run_dir.iterdir()] == ["demo"]


def _chatty(ctx, step: Step) -> StepResult:
    """What libraries do during a real step: MLflow prints and logs, sklearn warns, Lightning logs."""
    import logging
    import warnings

    class ConvergenceWarning(UserWarning):
        pass

    ConvergenceWarning.__module__ = "sklearn.exceptions"
    print("Successfully registered model 'tiny-model'.", file=sys.stderr)
    print("Created version '1' of model 'tiny-model'.")
    logging.getLogger("mlflow.store.db.utils").warning("Creating initial tables")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    for _ in range(3):
        warnings.warn("lbfgs failed to converge", ConvergenceWarning, stacklevel=1)
    logging.getLogger("mlflow.tracking").error("could not log the model card")
    return StepResult(message="done")


CHATTER = ["Successfully registered model", "Created version '1'", "Creating initial tables", "GPU available",
           "lbfgs failed to converge"]


@pytest.mark.parametrize("verbosity", [0, 1])
def test_library_output_is_hidden_by_default_kept_in_library_log_and_shown_with_v(
        ctx, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, verbosity: int) -> None:
    import logging

    monkeypatch.setitem(STEPS, "demo", _chatty)
    ctx.verbosity = verbosity
    root_handlers = list(logging.getLogger().handlers)
    execute(ctx, Step("demo", "demo"))
    out, err = capfd.readouterr()
    kept = (Path(ctx.step_dir("demo")) / "library.log").read_text()
    for line in CHATTER:
        assert line in kept
        assert (line in err) == bool(verbosity), (line, err)
        assert line not in out  # never on stdout, where the step table goes
    assert "warning sklearn.ConvergenceWarning: lbfgs failed to converge" in kept
    # Python shows a warning once per place (its default filter); what is shown is shown once per step
    assert kept.count("lbfgs failed to converge") == 1 and err.count("lbfgs failed to converge") == verbosity
    assert "error mlflow.tracking: could not log the model card" in err  # errors are shown at any verbosity
    assert "info test_steps: Successfully registered model 'tiny-model'." in kept  # a print, named by its writer
    assert logging.getLogger().handlers == root_handlers  # everything is given back
    print("after the step")
    assert capfd.readouterr().out == "after the step\n"


def test_mlflows_own_handler_is_taken_over_and_given_back(ctx, monkeypatch: pytest.MonkeyPatch,
                                                          capfd: pytest.CaptureFixture) -> None:
    import logging

    lib = logging.getLogger("mlflow")
    own = logging.StreamHandler(sys.stderr)
    monkeypatch.setattr(lib, "handlers", [own])
    monkeypatch.setattr(lib, "propagate", False)
    monkeypatch.setattr(lib, "level", logging.INFO)

    def step(ctx, step: Step) -> StepResult:
        logging.getLogger("mlflow.models").info("Registered model already exists")
        return StepResult()

    monkeypatch.setitem(STEPS, "demo", step)
    execute(ctx, Step("demo", "demo"))
    assert "already exists" not in capfd.readouterr().err
    assert "info mlflow.models: Registered model already exists" in (Path(ctx.step_dir("demo")) / "library.log").read_text()
    assert lib.handlers == [own] and lib.propagate is False
