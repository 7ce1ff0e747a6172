"""The local executor's scheduling and step cache, against fake steps (fast; no training).

The fake runtime honours the same contract as mlc.runtime.steps.execute: it publishes
<step_dir>/result.json and _SUCCESS, and reads its upstream steps through ctx.step_dir.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from mlc.errors import RunError, UsageError
from mlc.local import StepCache, downstream, run_command, step_command, topo_order, upstream
from mlc.plan import Step, lower
from mlc.runtime.context import SUCCESS, StepResult, make_context
from mlc.spec.validate import load_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dst = tmp_path / "churn"
    shutil.copytree(REPO / "specs" / "churn", dst, ignore=shutil.ignore_patterns(".mlc"))
    return dst


class FakeSteps:
    """Records which steps ran; ``fail`` names a step that raises RunError."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.fail: str | None = None
        self.long_note = ""

    def execute(self, ctx, step: Step) -> StepResult:
        for d in step.depends:  # upstream artifacts must be reachable under this run
            assert (Path(ctx.step_dir(d)) / SUCCESS).exists(), f"{step.name}: {d} missing"
        self.ran.append(step.name)
        if step.name == self.fail:
            raise RunError(f"{step.name} failed on purpose")
        out = Path(ctx.step_dir(step.name))
        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True)
        result = StepResult(outputs={"x": step.name}, metrics={"score": 0.5} if step.kind == "train" else {},
                            message=f"{step.name} done" + (self.long_note if step.kind == "register" else ""))
        if step.kind == "evaluate":
            result.metrics = {"candidates": {"logreg": {"roc_auc": 0.9}, "forest": {"roc_auc": 0.8}}}
            result.outputs = {"winner": "logreg"}
        (tmp / "result.json").write_text(json.dumps(result.__dict__))
        (tmp / SUCCESS).write_text("")
        tmp.rename(out)
        for name, value in result.outputs.items():
            ctx.write_output(name, value)
        return result


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSteps:
    f = FakeSteps()
    monkeypatch.setitem(sys.modules, "mlc.runtime.steps", types.SimpleNamespace(execute=f.execute))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f


def _manifest(project: Path) -> dict:
    latest = (project / ".mlc" / "cache" / "latest-train").read_text().strip()
    return json.loads((project / ".mlc" / "artifacts" / "runs" / latest / "run.json").read_text())


def _statuses(project: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in _manifest(project)["steps"]}


TRAIN = ["ingest", "validate-data", "features", "train-logreg", "train-forest", "train-boosting",
         "train-tabular-mlp", "evaluate", "gate", "register", "deploy"]


# ----------------------------------------------------------------------------- graph
def test_topo_order_respects_depends_and_is_stable() -> None:
    steps = [Step("c", "x", ("a", "b")), Step("b", "x", ("a",)), Step("a", "x"), Step("d", "x"), Step("e", "x", ("c",))]
    assert [s.name for s in topo_order(steps)] == ["a", "b", "c", "d", "e"]
    assert upstream(steps, "e") == {"a", "b", "c"}
    assert downstream(steps, "b") == {"c", "e"}


def test_topo_order_rejects_a_cycle() -> None:
    with pytest.raises(RunError, match="cycle"):
        topo_order([Step("a", "x", ("b",)), Step("b", "x", ("a",))])


# ----------------------------------------------------------------------------- cache keys
def _keys(project: Path) -> dict[str, str]:
    sf = load_spec(project)
    plan = lower(sf.spec, sf.text, "local")
    ctx = make_context(sf, plan, "r", local=True)
    cache = StepCache(ctx)
    keys: dict[str, str] = {}
    for s in topo_order(plan.pipeline("train").steps):
        keys[s.name] = cache.key(s, {d: keys[d] for d in s.depends})
    return keys


def _edit(project: Path, old: str, new: str) -> None:
    spec = project / "mlproject.yaml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))


def _changed(a: dict[str, str], b: dict[str, str]) -> set[str]:
    return {k for k in a if a[k] != b[k]}


def test_candidate_params_invalidate_only_that_train_step_and_downstream(project: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = _keys(project)
    assert _keys(project) == before  # deterministic
    _edit(project, "n_estimators: 200", "n_estimators: 150")
    assert _changed(before, _keys(project)) == {"train-forest", "evaluate", "gate", "register", "deploy"}


def test_keys_follow_what_each_step_reads(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    k0 = _keys(project)
    _edit(project, "{check: row_count, min: 1000}", "{check: row_count, min: 900}")
    k1 = _keys(project)
    assert _changed(k0, k1) == set(TRAIN) - {"ingest"}
    _edit(project, "threshold: 0.2", "threshold: 0.3")  # monitoring: the train pipeline does not read it
    k2 = _keys(project)
    assert k2 == k1
    _edit(project, "max_relative_drop: 0.01", "max_relative_drop: 0.02")
    assert _changed(k2, _keys(project)) == {"gate", "register", "deploy"}


def test_source_file_content_changes_the_ingest_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    k0 = _keys(project)
    data = project / "data" / "customers.csv"
    data.write_text(data.read_text() + "\n")
    assert _changed(k0, _keys(project)) == set(TRAIN)


def test_tracking_uri_is_part_of_every_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    k0 = _keys(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert _changed(k0, _keys(project)) == set(TRAIN)


# ----------------------------------------------------------------------------- runs with fake steps
def test_first_run_runs_everything_and_a_rerun_is_all_hits(project: Path, fake: FakeSteps, capsys) -> None:
    assert run_command(str(project), "local") == 0
    assert fake.ran == TRAIN
    first = _manifest(project)["run_id"]
    fake.ran.clear()
    assert run_command(str(project), "local") == 0
    assert fake.ran == []
    m = _manifest(project)
    assert m["run_id"] != first
    assert {s["status"] for s in m["steps"]} == {"cached"}
    assert {s["source_run"] for s in m["steps"]} == {first}
    run_dir = project / ".mlc" / "artifacts" / "runs" / m["run_id"]
    assert all((run_dir / s / SUCCESS).exists() for s in TRAIN)  # linked into the new run
    out = capsys.readouterr().out
    assert "logreg" in out and "0.9000" in out  # the candidates table from evaluate's result
    assert "0 ran, 11 cached" in out


def test_a_spec_edit_reruns_only_what_it_touches(project: Path, fake: FakeSteps) -> None:
    assert run_command(str(project), "local") == 0
    fake.ran.clear()
    _edit(project, "n_estimators: 200", "n_estimators: 150")
    assert run_command(str(project), "local") == 0
    assert fake.ran == ["train-forest", "evaluate", "gate", "register", "deploy"]


def test_from_reruns_the_step_and_downstream(project: Path, fake: FakeSteps) -> None:
    assert run_command(str(project), "local") == 0
    fake.ran.clear()
    assert run_command(str(project), "local", from_="gate") == 0
    assert fake.ran == ["gate", "register", "deploy"]


def test_no_cache_runs_everything(project: Path, fake: FakeSteps) -> None:
    assert run_command(str(project), "local") == 0
    fake.ran.clear()
    assert run_command(str(project), "local", no_cache=True) == 0
    assert fake.ran == TRAIN


def test_only_needs_an_earlier_run_then_runs_one_step(project: Path, fake: FakeSteps) -> None:
    with pytest.raises(RunError, match="--only evaluate needs the outputs of"):
        run_command(str(project), "local", only="evaluate")
    assert fake.ran == []
    assert run_command(str(project), "local") == 0
    fake.ran.clear()
    assert run_command(str(project), "local", only="evaluate") == 0
    assert fake.ran == ["evaluate"]
    st = _statuses(project)
    assert st["evaluate"] == "ok" and st["train-logreg"] == "cached" and st["gate"] == "skipped"


def test_unknown_step_names_are_usage_errors_with_a_suggestion(project: Path, fake: FakeSteps) -> None:
    with pytest.raises(UsageError, match="did you mean 'evaluate'"):
        run_command(str(project), "local", from_="evaluat")
    with pytest.raises(UsageError, match="defines no nope pipeline"):
        run_command(str(project), "local", pipeline="nope")


def test_a_failure_skips_downstream_and_the_rerun_resumes(project: Path, fake: FakeSteps, capsys) -> None:
    fake.fail = "train-boosting"
    assert run_command(str(project), "local") == 1
    st = _statuses(project)
    assert st["train-boosting"] == "failed"
    assert st["train-tabular-mlp"] == "ok"  # an independent branch still runs
    assert {st[s] for s in ("evaluate", "gate", "register", "deploy")} == {"skipped"}
    assert "train-boosting failed on purpose" in capsys.readouterr().err
    fake.fail, fake.ran = None, []
    assert run_command(str(project), "local") == 0
    assert fake.ran == ["train-boosting", "evaluate", "gate", "register", "deploy"]


def test_a_step_without_success_marker_is_never_a_hit(project: Path, fake: FakeSteps) -> None:
    assert run_command(str(project), "local") == 0
    first = _manifest(project)["run_id"]
    (project / ".mlc" / "artifacts" / "runs" / first / "train-logreg" / SUCCESS).unlink()  # as if killed
    fake.ran.clear()
    assert run_command(str(project), "local") == 0
    # keys depend on inputs, not outputs: downstream steps of the same inputs stay hits
    assert fake.ran == ["train-logreg"]


def test_missing_lightning_fails_before_anything_runs(project: Path, fake: FakeSteps,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    with pytest.raises(RunError, match=r"pip install 'mlc\[lightning\]'"):
        run_command(str(project), "local")
    assert fake.ran == []


def test_step_command_writes_output_parameters(project: Path, fake: FakeSteps, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("MLC_OUTPUTS_DIR", str(outputs))
    assert step_command("ingest", str(project / "mlproject.yaml"), "run-1", "local") == 0
    assert (outputs / "x").read_text() == "ingest"
    assert (project / ".mlc" / "artifacts" / "runs" / "run-1" / "ingest" / SUCCESS).exists()
    with pytest.raises(UsageError, match="did you mean 'evaluate'"):
        step_command("evaluat", str(project / "mlproject.yaml"), "run-1", "local")


def test_code_version_covers_the_runtime_but_not_the_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlc
    from mlc.local import code_version

    pkg = tmp_path / "compiler" / "mlc"
    for rel in ("__init__.py", "runtime/train.py", "backends/argo.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("x = 1\n")
    monkeypatch.setattr(mlc, "__file__", str(pkg / "__init__.py"))
    memo = tmp_path / "memo"
    v0 = code_version(memo)
    assert (memo / "code-version.json").exists() and code_version(memo) == v0
    (pkg / "backends" / "argo.py").write_text("x = 2\n")
    assert code_version(memo) == v0
    (pkg / "runtime" / "train.py").write_text("x = 2\n")
    assert code_version(memo) != v0


LONG = " - " + " ".join(f"detail-{i:02d}" for i in range(40)) + " END"


def _note_cells(out: str, step: str) -> str:
    """The note column of ``step``'s row in the summary table, its wrapped lines joined."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("│ " + step + " "))
    cells = []
    for line in lines[start:]:
        parts = line.split("│")
        if len(parts) < 6 or (cells and parts[1].strip()):  # the table ended, or the next step's row
            break
        cells.append(parts[5].strip())
    return " ".join(cells)


def test_notes_are_cut_by_default_and_whole_with_verbose(project: Path, fake: FakeSteps, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    fake.long_note = LONG
    assert run_command(str(project), "local") == 0
    out = capsys.readouterr().out
    note = _note_cells(out, "register")
    assert note.endswith("…") and "END" not in note
    run_dir = project / ".mlc" / "artifacts" / "runs" / _manifest(project)["run_id"]
    assert f"mlc run -v` shows them in full, and each step's full record is {run_dir}/<step>/result.json" in \
        " ".join(out.split())
    assert run_command(str(project), "local", no_cache=True, verbosity=1) == 0
    out = capsys.readouterr().out
    assert _note_cells(out, "register").split() == ("register done" + LONG).split()
    run_dir = project / ".mlc" / "artifacts" / "runs" / _manifest(project)["run_id"]
    assert f"each step's full record: {run_dir}/<step>/result.json" in out


# ----------------------------------------------------------------------------- a copied project
def test_keys_do_not_depend_on_where_the_project_is(project: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    here = _keys(project)
    moved = tmp_path / "elsewhere" / "deeper" / "churn-copy"
    shutil.copytree(project, moved)
    assert _keys(moved) == here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'shared.db'}")  # outside both projects
    assert _keys(moved) == _keys(project) != here


def test_a_copied_project_with_its_state_is_all_hits(project: Path, fake: FakeSteps, tmp_path: Path) -> None:
    assert run_command(str(project), "local") == 0
    first = _manifest(project)["run_id"]
    copy = tmp_path / "copy" / "churn"
    shutil.copytree(project, copy)
    shutil.rmtree(project)  # nothing of the original is needed
    fake.ran.clear()
    assert run_command(str(copy), "local") == 0
    assert fake.ran == []
    m = _manifest(copy)
    assert {s["status"] for s in m["steps"]} == {"cached"} and {s["source_run"] for s in m["steps"]} == {first}
    assert all((copy / ".mlc" / "artifacts" / "runs" / m["run_id"] / s / SUCCESS).exists() for s in TRAIN)


def test_the_local_store_follows_a_moved_project(tmp_path: Path) -> None:
    """MLflow's absolute artifact locations are rewritten to the new place (a synthetic store with MLflow's
    columns; the e2e test does it with a real one)."""
    import sqlite3

    from mlc.runtime.localstore import follow_project

    old = tmp_path / "old" / ".mlc"
    old.mkdir(parents=True)
    with sqlite3.connect(old / "mlflow.db") as con:
        con.execute("CREATE TABLE experiments (experiment_id INTEGER, artifact_location VARCHAR(256))")
        con.execute("CREATE TABLE model_versions (version INTEGER, storage_location VARCHAR(500), source TEXT)")
        con.execute("INSERT INTO experiments VALUES (0, 'file:///somewhere/else/mlruns'), (1, ?)",
                    (f"{old.as_uri()}/mlruns",))
        con.execute("INSERT INTO model_versions VALUES (1, ?, 'models:/m-1')", (f"{old.as_uri()}/mlruns/1/x",))
    assert follow_project(old) is None  # first use: stamped, nothing to rewrite
    assert json.loads((old / "store.json").read_text()) == {"state_dir": str(old.resolve())}
    new = tmp_path / "new place" / ".mlc"
    shutil.copytree(old, new)
    assert follow_project(new) == str(old.resolve())
    with sqlite3.connect(new / "mlflow.db") as con:
        assert [r[0] for r in con.execute("SELECT artifact_location FROM experiments ORDER BY 1")] == \
            ["file:///somewhere/else/mlruns", f"{new.resolve().as_uri()}/mlruns"]
        assert con.execute("SELECT storage_location, source FROM model_versions").fetchone() == \
            (f"{new.resolve().as_uri()}/mlruns/1/x", "models:/m-1")
    assert follow_project(new) is None  # stamped: nothing more to do
    with sqlite3.connect(old / "mlflow.db") as con:  # the original is untouched
        assert con.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 1").fetchone() == \
            (f"{old.as_uri()}/mlruns",)
