"""Progressive delivery in `mlc serve`, with real uvicorn processes and a real HTTP client:

- a process pinned to a version (MLC_MODEL_VERSION, as the rollout writes it into a revision) keeps serving it
  across a restart after the production alias moved, which is the correctness bug of issue 13;
- `mlc serve --canary`: champion and challenger in one process, split by the local rollout state file, both in
  one /metrics exposition, the x-mlc-* headers, the x-mlc-route override;
- the MLC_SERVE_FAULT test hook.

The project has v1 (champion) and v2 (challenger), registered the way `mlc run` registers them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_support as S

from mlc.plan import metrics as M
from mlc.serve.canary import state_path, write_state

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve-canary")]

NAME = "churn-classifier"
ROW = {"tenure_months": 3, "monthly_usage_hours": 10.5, "last_contact_days": None, "plan": "basic",
       "plan_price": 9.99, "support_tickets": 2, "region": "north", "age_group": "25-34"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    p = S.copy_project(tmp_path_factory.mktemp("canary") / "churn")
    assert S.register(p, S.train_pipeline(seed=7), alias="champion") == "1"
    assert S.register(p, S.train_pipeline(n=600, seed=8), alias="challenger") == "2"
    return p


def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    fams = list(text_string_to_metric_families(text))
    names = [f.name for f in fams]
    assert len(names) == len(set(names)), f"a metric family appears twice: {names}"
    return {f.name: f for f in fams}


def _set_alias(project: Path, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.mlc' / 'mlflow.db'}"
    MlflowClient(uri, uri).set_registered_model_alias(NAME, alias, version)


def _served(url: str) -> tuple[dict, str, set[tuple[str, str]]]:
    """(metadata, the version an inference answered with, the (version, role) label sets of the metrics)."""
    meta = httpx.get(f"{url}/v2/models/{NAME}").json()
    r = httpx.post(f"{url}/predict", json=ROW)
    assert r.status_code == 200, r.text
    assert r.headers["x-mlc-version"] == r.json()["model_version"]
    fams = _families(httpx.get(f"{url}/metrics").text)
    labels = {(s.labels["version"], s.labels["role"]) for f in (M.REQUESTS_TOTAL.removesuffix("_total"),
                                                                 M.MODEL_INFO, M.PREDICTION_SCORE)
              for s in fams[f].samples}
    return meta, r.json()["model_version"], labels


def test_a_pinned_stable_process_keeps_its_version_across_a_restart(project, tmp_path) -> None:
    """The cluster's command line (`--alias champion`) plus the revision's MLC_MODEL_VERSION=1: restarted after
    the production alias moved to v2 mid-canary, it still serves v1; without the pin it would serve v2."""
    p = S.copy_project(tmp_path / "churn")
    shutil.copytree(project / ".mlc", p / ".mlc")
    # the copied store's versions point at the module project's artefacts, which stay where they are
    env = {"MLC_MODEL_VERSION": "1", "MLC_SERVE_ROLE": "stable"}
    srv = S.Server(p, "--alias", "champion", env=env).wait_ready()
    try:
        meta, answered, labels = _served(srv.url)
        assert meta["versions"] == ["1"] and answered == "1" and labels == {("1", "stable")}
    finally:
        srv.stop()
    _set_alias(p, "champion", "2")  # the rollout moved the production alias
    srv = S.Server(p, "--alias", "champion", env=env).wait_ready()  # the stable pod restarts
    try:
        meta, answered, labels = _served(srv.url)
        assert meta["versions"] == ["1"] and answered == "1"
        assert meta["parameters"]["version"] == "1" and meta["parameters"]["role"] == "stable"
        assert labels == {("1", "stable")}
    finally:
        srv.stop()
    unpinned = S.Server(p, "--alias", "champion", "--role", "canary").wait_ready()  # the bug this prevents
    try:
        meta, answered, labels = _served(unpinned.url)
        assert meta["versions"] == ["2"] and answered == "2" and labels == {("2", "canary")}
        assert meta["parameters"]["role"] == "canary"
    finally:
        unpinned.stop()


def test_an_explicit_model_version_beats_the_env(project) -> None:
    srv = S.Server(project, "--model-version", "2", env={"MLC_MODEL_VERSION": "1"}).wait_ready()
    try:
        meta, answered, labels = _served(srv.url)
        assert meta["versions"] == ["2"] and answered == "2" and labels == {("2", "stable")}
    finally:
        srv.stop()


@pytest.mark.parametrize(("args", "env", "needle"), [
    ((), {"MLC_MODEL_VERSION": "two"}, "MLC_MODEL_VERSION='two': expected a registered version number"),
    ((), {"MLC_SERVE_ROLE": "blue"}, "MLC_SERVE_ROLE='blue': expected stable or canary"),
    ((), {"MLC_SERVE_FAULT": "error=lots"}, "MLC_SERVE_FAULT='error=lots': error must be a number"),
    (("--canary", "--alias", "champion"), {}, "--canary serves the production alias"),
    (("--canary",), {"MLC_MODEL_VERSION": "1"}, "it takes no --model-version or MLC_MODEL_VERSION"),
])
def test_bad_settings_exit_1_without_a_traceback(project, args, env, needle) -> None:
    r = subprocess.run([*S.MLC, "serve", str(project), "--port", str(S.free_port()), *args], check=False,
                       capture_output=True, text=True, timeout=120, env=S.clean_env(**env))
    assert r.returncode == 1, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_canary_without_a_challenger_says_what_to_run(project, tmp_path) -> None:
    p = S.copy_project(tmp_path / "churn")
    shutil.copytree(project / ".mlc", p / ".mlc")
    _set_alias(p, "challenger", "1")  # what `mlc run` leaves when the new version was promoted at once
    r = subprocess.run([*S.MLC, "serve", str(p), "--canary"], check=False, capture_output=True, text=True,
                       timeout=120, env=S.clean_env())
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "nothing to compare: the challenger (alias 'challenger') is version 1, the champion" in r.stderr
    assert f"mlc run {p}" in r.stderr

    from mlflow import MlflowClient

    uri = f"sqlite:///{p / '.mlc' / 'mlflow.db'}"
    MlflowClient(uri, uri).delete_registered_model_alias(NAME, "challenger")
    r = subprocess.run([*S.MLC, "serve", str(p), "--canary"], check=False, capture_output=True, text=True,
                       timeout=120, env=S.clean_env())
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "no challenger to compare with the champion (v1)" in r.stderr
    assert "holds the candidate alias 'challenger'" in r.stderr and f"mlc run {p}" in r.stderr


# ------------------------------------------------------------------------------------------ --canary
@pytest.fixture(scope="module")
def canary(project):
    state = state_path(project)
    write_state(state, {"weight": 0})
    srv = S.Server(project, "--canary").wait_ready()
    yield srv, state
    srv.stop()


def _routes(url: str, n: int, **kw) -> Counter:
    with httpx.Client(base_url=url, timeout=30) as c:
        got: Counter = Counter()
        for _ in range(n):
            r = c.post("/predict", json=ROW, **kw)
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == r.headers["x-mlc-version"]
            got[(r.headers["x-mlc-version"], r.headers["x-mlc-role"])] += 1
        return got


def _wait_weight(url: str, weight: int) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/v2/models/{NAME}").json()["parameters"]["canary"]["weight"] != weight:
        assert time.monotonic() < deadline, f"the server did not pick up weight {weight}"
        time.sleep(0.05)


def test_canary_metadata_names_both_versions(canary) -> None:
    srv, _ = canary
    assert httpx.get(f"{srv.url}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{srv.url}/v2/models/{NAME}").json()
    assert meta["versions"] == ["1", "2"]
    p = meta["parameters"]
    assert (p["version"], p["role"], p["alias"]) == ("1", "stable", "champion")
    assert (p["canary"]["version"], p["canary"]["alias"]) == ("2", "challenger")
    v2meta = httpx.get(f"{srv.url}/v2/models/{NAME}/versions/2").json()
    assert v2meta["versions"] == ["2"] and v2meta["parameters"]["role"] == "canary"
    assert httpx.get(f"{srv.url}/v2/models/{NAME}/versions/2/ready").json() == {"name": NAME, "ready": True}
    r = httpx.get(f"{srv.url}/v2/models/{NAME}/versions/7")
    assert r.status_code == 404
    assert r.json()["error"].endswith("this server serves versions 1 (stable) and 2 (canary)")
    assert "canary weight from" in srv.output() and "version 2 (canary) ready in" in srv.output()


def test_the_split_follows_the_state_file(canary) -> None:
    srv, state = canary
    write_state(state, {"weight": 0})
    _wait_weight(srv.url, 0)
    assert _routes(srv.url, 100) == {("1", "stable"): 100}
    write_state(state, {"weight": 100})
    _wait_weight(srv.url, 100)
    assert _routes(srv.url, 100) == {("2", "canary"): 100}
    write_state(state, {"weight": 30})
    _wait_weight(srv.url, 30)
    got = _routes(srv.url, 600)
    assert set(got) == {("1", "stable"), ("2", "canary")}
    # binomial(600, 0.3): mean 180, sd 11.2; +-5 sd fails once in millions of runs
    assert 124 <= got[("2", "canary")] <= 236, got
    state.write_text('{"weight": 10')  # a torn or hand-edited file: keep the last good weight
    time.sleep(0.6)
    assert httpx.get(f"{srv.url}/v2/models/{NAME}").json()["parameters"]["canary"]["weight"] == 30
    assert srv.output().count("keeping the canary weight at 30") == 1
    state.unlink()  # no rollout: everything to stable
    _wait_weight(srv.url, 0)
    assert _routes(srv.url, 50) == {("1", "stable"): 50}


def test_the_route_header_and_explicit_versions(canary) -> None:
    srv, state = canary
    write_state(state, {"weight": 0})
    _wait_weight(srv.url, 0)
    assert _routes(srv.url, 20, headers={"x-mlc-route": "canary"}) == {("2", "canary"): 20}
    write_state(state, {"weight": 100})
    _wait_weight(srv.url, 100)
    assert _routes(srv.url, 20, headers={"x-mlc-route": "stable"}) == {("1", "stable"): 20}
    r = httpx.post(f"{srv.url}/predict", json=ROW, headers={"x-mlc-route": "blue"})
    assert r.status_code == 400 and r.json() == {"error": "header x-mlc-route must be stable or canary, got 'blue'"}
    body = {"inputs": [{"name": "rows", "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "json"},
                        "data": [ROW]}]}
    for v, role in (("1", "stable"), ("2", "canary")):  # an explicit version is never split or overridden
        r = httpx.post(f"{srv.url}/v2/models/{NAME}/versions/{v}/infer", json=body,
                       headers={"x-mlc-route": "canary" if v == "1" else "stable"})
        assert r.status_code == 200, r.text
        assert (r.json()["model_version"], r.headers["x-mlc-version"], r.headers["x-mlc-role"]) == (v, v, role)
    r = httpx.post(f"{srv.url}/v2/models/{NAME}/infer", json=body)
    assert r.status_code == 200 and r.headers["x-mlc-role"] == "canary" and r.json()["model_version"] == "2"
    # the two versions really are two models
    s1 = httpx.post(f"{srv.url}/predict", json=ROW, headers={"x-mlc-route": "stable"}).json()["score"]
    s2 = httpx.post(f"{srv.url}/predict", json=ROW, headers={"x-mlc-route": "canary"}).json()["score"]
    assert s1 != s2
    r = httpx.get(f"{srv.url}/v2/models/{NAME}")
    assert "x-mlc-role" not in r.headers  # metadata is not inference


def test_both_versions_in_one_exposition(canary, tmp_path) -> None:
    srv, state = canary
    write_state(state, {"weight": 50})
    _wait_weight(srv.url, 50)
    before = _families(httpx.get(f"{srv.url}/metrics").text)

    def count(fams: dict, version: str) -> float:
        return sum(s.value for s in fams[M.REQUESTS_TOTAL.removesuffix("_total")].samples
                   if s.name == M.REQUESTS_TOTAL and s.labels["version"] == version
                   and s.labels["route"] == "/predict" and s.labels["code"] == "200")

    def rows(fams: dict, version: str) -> float:
        return next(s.value for s in fams[M.PREDICTION_SCORE].samples
                    if s.name == M.PREDICTION_SCORE + "_count" and s.labels["version"] == version)

    got = _routes(srv.url, 200)
    text = httpx.get(f"{srv.url}/metrics").text
    after = _families(text)
    for v, role in (("1", "stable"), ("2", "canary")):
        assert count(after, v) - count(before, v) == got[(v, role)]
        assert rows(after, v) - rows(before, v) == got[(v, role)]
    for fam in (M.REQUESTS_TOTAL.removesuffix("_total"), M.REQUEST_DURATION, M.IN_FLIGHT, M.MODEL_INFO,
                M.PREDICTION_SCORE):
        assert {(s.labels["version"], s.labels["role"]) for s in after[fam].samples} == \
            {("1", "stable"), ("2", "canary")}, fam
        assert all(s.labels["model"] == NAME for s in after[fam].samples)
    promtool = shutil.which("promtool")
    if promtool:  # Prometheus's own parser and linter: a metric family twice is "second TYPE line", exit 1
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                           check=False)
        assert r.returncode == 0 and "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_canary_readiness_waits_for_both_versions() -> None:
    """In this process (so the test decides when the challenger finishes loading): ready only once both are."""
    import threading

    import uvicorn

    from mlc.serve.app import build_app
    from mlc.serve.canary import Weight
    from mlc.serve.model import ServedModel
    from mlc.serve.schema import Schema

    pipe = S.train_pipeline(n=300)
    gate = threading.Event()

    def slow() -> object:
        assert gate.wait(60)
        return pipe

    schema = Schema(S.churn_plan().inputs)
    stable = ServedModel(NAME, "1", "classification", schema, positive_class="yes", negative_class="no",
                         load=lambda: pipe)
    challenger = ServedModel(NAME, "2", "classification", schema, role="canary", positive_class="yes",
                             negative_class="no", load=slow)
    port = S.free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(stable, canary=challenger, weight=Weight(fixed=100)),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not stable.ready:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"{url}/v2/health/ready").status_code == 503
        assert httpx.get(f"{url}/v2/models/{NAME}/ready").json() == {"name": NAME, "ready": False}
        assert httpx.get(f"{url}/v2/models/{NAME}/versions/1/ready").status_code == 200
        r = httpx.post(f"{url}/predict", json=ROW)  # weight 100: the challenger, still loading
        assert r.status_code == 503 and r.headers["x-mlc-role"] == "canary"
        assert httpx.post(f"{url}/predict", json=ROW, headers={"x-mlc-route": "stable"}).status_code == 200
        gate.set()
        while not challenger.ready:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        assert httpx.post(f"{url}/predict", json=ROW).headers["x-mlc-version"] == "2"
    finally:
        gate.set()
        server.should_exit = True
        th.join(30)


def test_the_fault_hook_hits_the_named_role_only(project) -> None:
    srv = S.Server(project, "--canary", "--canary-weight", "50",
                   env={"MLC_SERVE_FAULT": "role=canary,error=1.0,delay=0.2"}).wait_ready()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for _ in range(3):
                t = time.perf_counter()
                r = c.post("/predict", json=ROW, headers={"x-mlc-route": "canary"})
                took = time.perf_counter() - t
                assert r.status_code == 500 and took >= 0.2
                assert r.json() == {"error": "fault injected by MLC_SERVE_FAULT (a test hook)"}
                assert (r.headers["x-mlc-version"], r.headers["x-mlc-role"]) == ("2", "canary")
                r = c.post("/predict", json=ROW, headers={"x-mlc-route": "stable"})
                assert r.status_code == 200 and r.headers["x-mlc-role"] == "stable"
            codes = Counter(c.post("/predict", json=ROW).status_code for _ in range(40))
            assert set(codes) == {200, 500}  # weight 50: both, the canary's all failed
            assert c.get(f"/v2/models/{NAME}").status_code == 200  # metadata is not inference
            fams = _families(c.get("/metrics").text)
        samples = [s for s in fams[M.REQUESTS_TOTAL.removesuffix("_total")].samples if s.name == M.REQUESTS_TOTAL]
        by = {(s.labels["role"], s.labels["route"], s.labels["code"]): s.value for s in samples}
        assert by[("canary", "/predict", "500")] == 3 + codes[500]  # under the route template, like real errors
        assert by[("stable", "/predict", "200")] == 3 + codes[200]
        assert ("canary", "/predict", "200") not in by and ("stable", "/predict", "500") not in by
        assert "test fault hook on" in srv.output()
    finally:
        srv.stop()


def test_a_real_prometheus_scrapes_both_versions(canary, tmp_path) -> None:
    """Prometheus itself scrapes the --canary exposition (it refuses a scrape with a metric family twice) and
    can tell the two versions apart by their labels."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus binary (Debian's prometheus package; .ci/run installs it)")
    srv, state = canary
    write_state(state, {"weight": 50})
    _wait_weight(srv.url, 50)
    got = _routes(srv.url, 100)
    port = S.free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: mlc\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{srv.port}']\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(q: str) -> list[dict]:
        r = httpx.get(f"{api}/query", params={"query": q}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["data"]["result"]

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:  # until it is ready it answers 503 with a text body
                ready = httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code == 200
                targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"] if ready else []
                if targets and targets[0]["health"] != "unknown" and query("mlc_model_info"):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.25)
        assert targets[0]["health"] == "up" and targets[0]["lastError"] == "", targets[0]
        info = {(r["metric"]["version"], r["metric"]["role"]) for r in query("mlc_model_info")}
        assert info == {("1", "stable"), ("2", "canary")}
        by = {(r["metric"]["version"], r["metric"]["role"]): float(r["value"][1]) for r in query(
            f'sum by (version, role) ({M.REQUESTS_TOTAL}{{route="/predict",code="200"}})')}
        assert set(by) == {("1", "stable"), ("2", "canary")}
        assert all(by[k] >= n for k, n in got.items())  # at least this test's requests, per version
        rows = {r["metric"]["version"] for r in query(f"{M.PREDICTION_SCORE}_count > 0")}
        assert rows == {"1", "2"}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
