"""The closed loop on one machine, for real: `mlc serve --canary` processes (uvicorn), a real `prometheus`
(Debian's package) on loopback scraping them every 0.5 s, real traffic, and `mlc rollout start --env local`
stepping the weight, analysing and moving the registry alias. The analysis interval is scaled down to seconds.

- a good challenger is promoted (through Prometheus, and straight from /metrics without one);
- a challenger made bad with the test-only MLC_SERVE_FAULT hook is rolled back within failure_limit + 1
  intervals, and the champion stays;
- no traffic gives empty query results: inconclusive, the rollout pauses, nothing crashes; abort rolls back;
- Prometheus unreachable: a clear error, exit 1, the alias and the weight untouched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
import serve_support as S

from mlc.cli import main
from mlc.serve.canary import state_path

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rollout-local")]

NAME = "churn-classifier"
ROW = {"tenure_months": 3, "monthly_usage_hours": 10.5, "last_contact_days": None, "plan": "basic",
       "plan_price": 9.99, "support_tickets": 2, "region": "north", "age_group": "25-34"}
FAILURE_LIMIT = 1
ROLLOUT = {
    "steps": [{"weight": 30, "pause": "1s"}, {"weight": 60}, {"weight": 100}],
    "analysis": {"interval": "2s", "count": 3, "failure_limit": FAILURE_LIMIT, "inconclusive_limit": 1,
                 "metrics": [{"name": "error_ratio", "max": 0.05}, {"name": "latency_p95", "max": 0.5},
                             {"name": "score_shift", "max": 0.5},
                             {"name": "relative_to_stable", "of": "latency_p99", "margin": 0.5}]},
}


def _prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.skip("no `prometheus` binary (Debian package prometheus): .ci/run installs it")
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    p = S.copy_project(tmp_path_factory.mktemp("rollout") / "churn")
    spec = yaml.safe_load((p / "mlproject.yaml").read_text())
    spec["deployment"]["online"]["rollout"] = ROLLOUT
    (p / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert S.register(p, S.train_pipeline(seed=7), alias="champion") == "1"
    assert S.register(p, S.train_pipeline(n=600, seed=8), alias="challenger") == "2"
    return p


def _aliases(p: Path) -> dict[str, str]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{p / '.mlc' / 'mlflow.db'}"
    rm = MlflowClient(uri, uri).get_registered_model(NAME)
    return {k: str(v) for k, v in rm.aliases.items()}


def _tag(p: Path, version: str) -> str | None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{p / '.mlc' / 'mlflow.db'}"
    return MlflowClient(uri, uri).get_model_version(NAME, version).tags.get("mlc.rollout")


@pytest.fixture()
def fresh(project: Path, tmp_path: Path) -> Path:
    """The module's project with champion=v1, challenger=v2 and no rollout state."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.mlc' / 'mlflow.db'}"
    c = MlflowClient(uri, uri)
    c.set_registered_model_alias(NAME, "champion", "1")
    c.set_registered_model_alias(NAME, "challenger", "2")
    c.set_model_version_tag(NAME, "2", "mlc.run_id", "run-of-v2")  # register's lineage tag
    c.delete_model_version_tag(NAME, "2", "mlc.rollout") if _tag(project, "2") else None
    state_path(project).unlink(missing_ok=True)
    return project


class Prometheus:
    def __init__(self, target: str, root: Path) -> None:
        self.port = S.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = root / f"prometheus-{self.port}.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "500ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "mlc-serve", "static_configs": [{"targets": [target]}]}]}))
        self.log = (root / f"prometheus-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([_prometheus_bin(), f"--config.file={cfg}",
                                      f"--storage.tsdb.path={root / f'tsdb-{self.port}'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("prometheus did not become ready")
        # as in a running cluster, the target has a few scrapes behind it before the rollout starts
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.url}/api/v1/query", params={"query": "count_over_time(up[5s])"}).json()
            if r["data"]["result"] and float(r["data"]["result"][0]["value"][1]) >= 4:
                return
            time.sleep(0.25)
        raise AssertionError("prometheus did not scrape mlc serve")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


class Traffic(threading.Thread):
    """Requests at a steady pace; remembers when the first 5xx came back."""

    def __init__(self, url: str, rps: float = 40) -> None:
        super().__init__(daemon=True)
        self.url, self.pause = url, 1 / rps
        self.stopped = threading.Event()
        self.first_error: float | None = None
        self.codes: dict[int, int] = {}

    def run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self.stopped.is_set():
                try:
                    r = c.post(f"{self.url}/predict", json=ROW)
                    self.codes[r.status_code] = self.codes.get(r.status_code, 0) + 1
                    if r.status_code >= 500 and self.first_error is None:
                        self.first_error = time.monotonic()
                except httpx.HTTPError:
                    pass
                time.sleep(self.pause)

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


def _loop(p: Path, tmp_path: Path, *, fault: str | None, prometheus: bool = True, traffic: bool = True,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Traffic | None, float]:
    env = {"MLC_SERVE_FAULT": fault} if fault else None
    srv = S.Server(p, "--canary", env=env).wait_ready()
    prom = Prometheus(f"127.0.0.1:{srv.port}", tmp_path) if prometheus else None
    t = Traffic(srv.url) if traffic else None
    try:
        if t:
            t.start()
        args = ["rollout", "start", str(p), "--env", "local"]
        args += ["--prometheus", prom.url] if prom else ["--metrics-url", f"{srv.url}/metrics"]
        capsys.readouterr()
        started = time.monotonic()
        code = main(args)
        took = time.monotonic() - started
        out = capsys.readouterr()
        return code, out.out + out.err, t, took
    finally:
        if t:
            t.stop()
        if prom:
            prom.stop()
        srv.stop()


def test_a_good_challenger_is_promoted(fresh: Path, tmp_path: Path, capsys) -> None:
    code, out, t, _ = _loop(fresh, tmp_path, fault=None, capsys=capsys)
    assert code == 0, out
    assert "promoted: champion -> v2" in out and "Traceback" not in out
    assert _aliases(fresh)["champion"] == "2"
    assert (_tag(fresh, "2") or "").startswith("promoted")
    (ref,) = (fresh / ".mlc").rglob("reference/latest.json")  # drift now compares with v2's training data
    assert yaml.safe_load(ref.read_text())["version"] == "2" and "runs/run-of-v2/" in ref.read_text()
    ref.unlink()
    state = yaml.safe_load(state_path(fresh).read_text())
    assert state["phase"] == "promoted" and state["weight"] == 100
    assert [s["verdict"] for s in state["steps"]] == ["successful", "successful"]
    # both versions took traffic: the split really happened, and the analysis saw numbers, not "no data"
    assert all(m["value"] is not None for m in state["measurements"])
    assert t is not None and t.codes.get(200, 0) > 50 and not any(c >= 500 for c in t.codes)


def test_a_bad_challenger_is_rolled_back_within_failure_limit_plus_one_intervals(fresh: Path, tmp_path: Path,
                                                                                 capsys) -> None:
    code, out, _, _ = _loop(fresh, tmp_path, fault="role=canary,error=1.0", capsys=capsys)
    assert code == 1, out
    assert "rolled back: failed at 30%" in out and "champion stays v1" in out and "Traceback" not in out
    assert _aliases(fresh) == {"champion": "1", "challenger": "2"}
    assert (_tag(fresh, "2") or "").startswith("rolled back")
    state = yaml.safe_load(state_path(fresh).read_text())
    assert state["phase"] == "rolled-back" and state["weight"] == 0
    errors = [m for m in state["measurements"] if m["metric"] == "error_ratio"]
    # it stops at the failure limit: of `count: 3` measurements, only failure_limit + 1 are taken
    assert len(errors) == FAILURE_LIMIT + 1 and all(m["verdict"] == "failed" for m in errors), errors
    assert errors[-1]["value"] > 0.05


def test_no_traffic_is_inconclusive_and_pauses_then_abort_rolls_back(fresh: Path, tmp_path: Path,
                                                                     capsys) -> None:
    code, out, _, _ = _loop(fresh, tmp_path, fault=None, traffic=False, capsys=capsys)
    assert code == 1, out
    assert "paused at 30%" in out and "inconclusive" in out and "Traceback" not in out
    assert "no series" in out or "no traffic" in out
    state = yaml.safe_load(state_path(fresh).read_text())
    assert state["phase"] == "paused" and state["weight"] == 30
    assert _aliases(fresh)["champion"] == "1"
    assert main(["rollout", "status", str(fresh)]) == 0
    status = capsys.readouterr().out
    assert "v2 (canary) vs v1 (stable): paused; weight 30%" in status and "inconclusive" in status
    assert main(["rollout", "abort", str(fresh)]) == 0
    assert "aborted: 0% of traffic, champion stays v1" in capsys.readouterr().out
    state = yaml.safe_load(state_path(fresh).read_text())
    assert state["phase"] == "aborted" and state["weight"] == 0
    assert (_tag(fresh, "2") or "").startswith("rolled back")


def test_prometheus_unreachable_is_a_clear_error_and_changes_nothing(fresh: Path, capsys) -> None:
    port = S.free_port()
    code = main(["rollout", "start", str(fresh), "--env", "local", "--prometheus", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"Prometheus at http://127.0.0.1:{port} is unreachable" in err and "nothing was changed" in err
    assert "Traceback" not in err
    assert _aliases(fresh) == {"champion": "1", "challenger": "2"}
    assert not state_path(fresh).exists()


def test_without_prometheus_the_loop_reads_serve_metrics_directly(fresh: Path, tmp_path: Path, capsys) -> None:
    code, out, _, _ = _loop(fresh, tmp_path, fault=None, prometheus=False, capsys=capsys)
    assert code == 0, out
    assert "/metrics" in out and "promoted: champion -> v2" in out
    assert _aliases(fresh)["champion"] == "2"
