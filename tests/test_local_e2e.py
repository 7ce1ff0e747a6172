"""`mlc run` and `mlc step` end to end with the real runtime: real training, a real MLflow store, real gates.

Every test works on a tmp copy of specs/churn. Most use a trimmed candidate list so they stay short; one runs
the whole example with all four candidates. The roc_auc floor is set per test so that the outcome under test
(a pass, or a champion gate failure) does not hinge on the example's own thresholds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOGREG = "    - name: logreg\n      estimator: logistic_regression\n      params: {max_iter: 1000}\n"
FOREST = "    - name: forest\n      estimator: random_forest\n      params: {n_estimators: 300, min_samples_leaf: 5}\n"
DUMMY = ("    - name: dummy\n      estimator: \"sklearn.dummy:DummyClassifier\"\n"
         "      params: {strategy: prior}\n")


def make_project(tmp_path: Path, candidates: str | None = LOGREG, roc_floor: str | None = "0.70",
                 name: str = "churn") -> Path:
    dst = tmp_path / name
    shutil.copytree(REPO / "specs" / "churn", dst, ignore=shutil.ignore_patterns(".mlc"))
    spec = dst / "mlproject.yaml"
    text = spec.read_text()
    if candidates is not None:
        start, end = text.index("  candidates:\n"), text.index("\ngates:")
        text = text[:start] + "  candidates:\n" + candidates + text[end:]
    if roc_floor is not None:  # None: the example's own gates, exactly as the README's quickstart runs them
        text, n = re.subn(r"\{metric: roc_auc, min: [0-9.]+\}", f"{{metric: roc_auc, min: {roc_floor}}}", text)
        assert n == 1
    spec.write_text(text)
    return dst


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    e.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return e


def mlc(*args: str, check: int | None = 0, **extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "mlc", *args], check=False, capture_output=True, text=True,
                          env=env(**extra),
                          timeout=600)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def manifest(project: Path) -> dict:
    latest = (project / ".mlc" / "cache" / "latest-train").read_text().strip()
    return json.loads((project / ".mlc" / "artifacts" / "runs" / latest / "run.json").read_text())


def statuses(project: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in manifest(project)["steps"]}


def run_dir(project: Path) -> Path:
    return project / ".mlc" / "artifacts" / "runs" / manifest(project)["run_id"]


def candidate_metrics(project: Path) -> dict[str, dict]:
    ev = json.loads((run_dir(project) / "evaluate" / "result.json").read_text())
    return {k: {m: v for m, v in row.items() if isinstance(v, float)} for k, row in ev["metrics"]["candidates"].items()}


def registry(tracking_uri: str, model: str = "churn-classifier") -> tuple[int, dict[str, int]]:
    """(number of versions, alias -> version)."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri, tracking_uri)
    versions = c.search_model_versions(f"name='{model}'")
    aliases = {a: int(v) for a, v in c.get_registered_model(model).aliases.items()}
    return len(versions), aliases


def sqlite_uri(project: Path) -> str:
    return f"sqlite:///{project / '.mlc' / 'mlflow.db'}"


# ----------------------------------------------------------------------------- the whole example
@pytest.mark.slow
def test_churn_example_registers_then_a_rerun_is_all_hits_and_imports_nothing_heavy(tmp_path: Path) -> None:
    project = make_project(tmp_path, candidates=None, roc_floor=None)  # the example as shipped, Lightning included
    out = mlc("run", str(project)).stdout
    assert "tabular-mlp" in out and "registered churn-classifier version 1" in out
    assert set(statuses(project).values()) == {"ok"}
    n, aliases = registry(sqlite_uri(project))
    assert n == 1 and aliases == {"challenger": 1, "champion": 1}

    probe = ("import sys; from mlc.cli import main; rc = main(['run', sys.argv[1]]); "
             "heavy = sorted(m for m in ('mlflow', 'sklearn', 'pandas', 'torch') if m in sys.modules); "
             "print('HEAVY', heavy); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", probe, str(project)], check=False, capture_output=True, text=True, env=env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert set(statuses(project).values()) == {"cached"}
    assert registry(sqlite_uri(project)) == (1, {"challenger": 1, "champion": 1})


# ----------------------------------------------------------------------------- the Argo way
@pytest.mark.slow
def test_a_pipeline_run_step_by_step_as_separate_processes(tmp_path: Path) -> None:
    from mlc.local import topo_order
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    project = make_project(tmp_path)
    spec = project / "mlproject.yaml"
    sf = load_spec(spec)
    steps = topo_order(lower(sf.spec, sf.text, "local").pipeline("train").steps)
    outputs: dict[str, dict[str, str]] = {}
    for st in steps:
        od = tmp_path / "outputs" / st.name
        mlc("step", st.name, "--spec", str(spec), "--run-id", "argo-run-1", "--env", "local",
            MLC_OUTPUTS_DIR=str(od))
        outputs[st.name] = {p.name: p.read_text() for p in od.glob("*")} if od.exists() else {}
    assert outputs["train-logreg"]["run_id"]
    assert outputs["evaluate"]["winner"] == "logreg"
    assert outputs["gate"]["passed"] == "true"
    assert outputs["register"]["version"] == "1"
    runs = project / ".mlc" / "artifacts" / "runs" / "argo-run-1"
    assert all((runs / st.name / "_SUCCESS").exists() for st in steps)
    assert registry(sqlite_uri(project)) == (1, {"challenger": 1, "champion": 1})


# ----------------------------------------------------------------------------- kill and resume
@pytest.mark.slow
def test_sigkill_during_training_then_rerun_resumes_with_equal_results(tmp_path: Path) -> None:
    project = make_project(tmp_path, candidates=LOGREG + FOREST)
    proc = subprocess.Popen([sys.executable, "-m", "mlc", "run", str(project)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env())
    runs = project / ".mlc" / "artifacts" / "runs"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(runs.glob("*/.train-forest.tmp-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before train-forest started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = next(runs.iterdir()).name
    assert not (runs / killed / "train-forest" / "_SUCCESS").exists()

    mlc("run", str(project))
    st = statuses(project)
    assert {st[s] for s in ("ingest", "validate-data", "features", "train-logreg")} == {"cached"}
    assert st["train-forest"] == "ok" and st["register"] == "ok"
    assert manifest(project)["steps"][0]["source_run"] == killed
    resumed = candidate_metrics(project)

    fresh = make_project(tmp_path / "fresh", candidates=LOGREG + FOREST)
    mlc("run", str(fresh))
    assert candidate_metrics(fresh) == resumed
    assert set(resumed) == {"logreg", "forest"}


# ----------------------------------------------------------------------------- gates
@pytest.mark.slow
def test_relative_gate_fails_against_a_better_champion_and_passes_otherwise(tmp_path: Path) -> None:
    project = make_project(tmp_path, roc_floor="0.30")
    spec = project / "mlproject.yaml"
    strong = spec.read_text()
    mlc("run", str(project))  # no champion yet: relative gates skipped, production moves to v1
    assert registry(sqlite_uri(project)) == (1, {"challenger": 1, "champion": 1})

    start, end = strong.index("  candidates:\n"), strong.index("\ngates:")
    spec.write_text(strong[:start] + "  candidates:\n" + DUMMY + strong[end:])
    proc = mlc("run", str(project), check=1)
    assert "champion" in proc.stderr and "nothing was registered as production" in proc.stderr
    st = statuses(project)
    assert st["gate"] == "failed" and st["register"] == "skipped"
    report = json.loads((run_dir(project) / "gate" / "report.json").read_text())
    failed = [g for g in report["gates"] if not g["passed"]]
    assert [g["gate"] for g in failed] == ["champion"] and failed[0]["metric"] == "roc_auc"
    assert registry(sqlite_uri(project)) == (1, {"challenger": 1, "champion": 1})  # nothing moved

    spec.write_text(strong.replace("params: {max_iter: 1000}", "params: {max_iter: 1000, C: 0.5}"))
    proc = mlc("run", str(project))  # within 1% of the champion: passes; churn rolls a new version out
    assert registry(sqlite_uri(project)) == (2, {"challenger": 2, "champion": 1})
    out = proc.stdout + proc.stderr
    assert "champion stays v1 until the rollout of v2 promotes it" in out, out[-2000:]


# ----------------------------------------------------------------------------- remote tracking
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_remote_tracking_server_takes_over(tmp_path: Path) -> None:
    import httpx

    port = _free_port()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{server_dir / 'db'}",
         "--artifacts-destination", str(server_dir / "art"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), cwd=server_dir, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, "mlflow server exited"
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "mlflow server did not become healthy"
            time.sleep(0.5)
        project = make_project(tmp_path)
        mlc("run", str(project), MLFLOW_TRACKING_URI=uri)
        assert registry(uri) == (1, {"challenger": 1, "champion": 1})
        assert not (project / ".mlc" / "mlflow.db").exists()  # nothing went to the local store
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- Lightning as an extra
def test_a_lightning_candidate_without_lightning_names_the_extra(tmp_path: Path) -> None:
    project = make_project(tmp_path, candidates=None)
    probe = ("import sys; sys.modules['pytorch_lightning'] = None; from mlc.cli import main; "
             "sys.exit(main(['run', sys.argv[1]]))")
    proc = subprocess.run([sys.executable, "-c", probe, str(project)], check=False, capture_output=True, text=True, env=env(),
                          timeout=120)
    assert proc.returncode == 1
    assert "pip install 'mlc[lightning]'" in proc.stderr
    assert "tabular-mlp" in proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- a copied project
def _db_text(db: Path) -> str:
    import sqlite3

    with sqlite3.connect(db) as con:
        return "\n".join(str(row) for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                         for row in con.execute(f'SELECT * FROM "{t}"'))


@pytest.mark.slow
def test_a_copied_project_is_all_hits_on_its_own_store_and_identical_content_is_not_registered_again(
        tmp_path: Path) -> None:
    import hashlib

    original = make_project(tmp_path)
    mlc("run", str(original))
    assert registry(sqlite_uri(original)) == (1, {"challenger": 1, "champion": 1})
    db_before = hashlib.sha256((original / ".mlc" / "mlflow.db").read_bytes()).hexdigest()

    copy = tmp_path / "somewhere" / "else" / "churn"
    shutil.copytree(original, copy)
    out = mlc("run", str(copy)).stdout
    assert set(statuses(copy).values()) == {"cached"}, out
    assert f"0 ran, {len(statuses(copy))} cached" in out

    proc = mlc("run", str(copy), "--no-cache")  # retrains everything: the same content again
    assert "model unchanged: churn-classifier v1 already holds this content" in " ".join(proc.stdout.split())
    assert "Created version" not in proc.stdout + proc.stderr
    assert registry(sqlite_uri(copy)) == (1, {"challenger": 1, "champion": 1})
    gate = json.loads((run_dir(copy) / "gate" / "report.json").read_text())
    assert gate["champion"]["measured_on"] == "this run's test split"  # v1's files are found in the copy
    assert str(original) not in _db_text(copy / ".mlc" / "mlflow.db")  # the copy's store names only itself
    assert hashlib.sha256((original / ".mlc" / "mlflow.db").read_bytes()).hexdigest() == db_before


# ----------------------------------------------------------------------------- library output
def note_of(out: str, step: str) -> str:
    """The note column of ``step``'s row in the summary table, its wrapped lines joined."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("│ " + step + " "))
    cells: list[str] = []
    for line in lines[start:]:
        parts = line.split("│")
        if len(parts) < 6 or (cells and parts[1].strip()):  # the table ended, or the next step's row
            break
        cells.append(parts[5].strip())
    return " ".join(cells)


CHATTER = ("Successfully registered model", "Created version", "ConvergenceWarning", "alembic", "GPU available")


@pytest.mark.slow
def test_library_output_is_quiet_by_default_and_shown_with_v(tmp_path: Path) -> None:
    project = make_project(tmp_path, candidates=LOGREG.replace("max_iter: 1000", "max_iter: 5"))
    proc = mlc("run", str(project), "-v", COLUMNS="80")
    assert "Successfully registered model 'churn-classifier'." in proc.stderr
    assert "Created version '1' of model 'churn-classifier'." in proc.stderr
    assert "warning sklearn.ConvergenceWarning: lbfgs failed to converge" in proc.stderr
    note = json.loads((run_dir(project) / "register" / "result.json").read_text())["message"]
    assert len(note) > 40 and note_of(proc.stdout, "register").split() == note.split()  # whole, not cut
    assert "each step's full record:" in proc.stdout

    spec = project / "mlproject.yaml"
    spec.write_text(spec.read_text().replace("max_iter: 5", "max_iter: 6"))  # a new model: version 2
    proc = mlc("run", str(project))
    for line in CHATTER:
        assert line not in proc.stdout + proc.stderr, line
    assert "registered churn-classifier version 2" in " ".join(proc.stdout.split())
    kept = (run_dir(project) / "register" / "library.log").read_text()
    assert "info mlflow: Created version '2' of model 'churn-classifier'." in kept
    assert "ConvergenceWarning" in (run_dir(project) / "train-logreg" / "library.log").read_text()
