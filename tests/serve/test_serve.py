"""`mlc serve` as a user meets it: a real uvicorn process on a free port, a real HTTP client.

The model is registered the way `mlc run` registers it (serve_support.register), into a tmp copy of
specs/churn; one server is shared by the module, so the tests read its state, never mutate it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_support as S

from mlc.plan import metrics as M

NAME = "churn-classifier"
ROW = {"tenure_months": 3, "monthly_usage_hours": 10.5, "last_contact_days": None, "plan": "basic",
       "plan_price": 9.99, "support_tickets": 2, "region": "north", "age_group": "25-34"}
DT = {"tenure_months": "INT64", "monthly_usage_hours": "FP64", "last_contact_days": "INT64", "plan": "BYTES",
      "plan_price": "FP64", "support_tickets": "INT64", "region": "BYTES", "age_group": "BYTES"}


def v2(rows: list[dict], **extra) -> dict:
    return {"inputs": [{"name": k, "datatype": dt, "shape": [len(rows)], "data": [r[k] for r in rows]}
                       for k, dt in DT.items()], **extra}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, object]:
    p = S.copy_project(tmp_path_factory.mktemp("serve") / "churn")
    model = S.train_pipeline()
    S.register(p, model)
    return p, model


@pytest.fixture(scope="module")
def server(project):
    srv = S.Server(project[0]).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_health_and_server_metadata(client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "mlc" and "version" in meta


def test_model_metadata_from_the_spec_schema(client) -> None:
    meta = client.get(f"/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == list(DT.items())
    assert meta["inputs"][3]["parameters"]["allowed"] == ["basic", "standard", "premium"]
    assert [o["name"] for o in meta["outputs"]] == ["score", "label"]
    assert meta["parameters"]["alias"] == "champion"
    assert client.get(f"/v2/models/{NAME}/versions/1").json() == meta
    assert client.get(f"/v2/models/{NAME}/ready").json() == {"name": NAME, "ready": True}
    assert client.get(f"/v2/models/{NAME}/versions/1/ready").status_code == 200


def test_wrong_version_and_model_are_404(client) -> None:
    r = client.post(f"/v2/models/{NAME}/versions/7/infer", json=v2([ROW]))
    assert r.status_code == 404
    assert r.json() == {"error": f"model '{NAME}' version '7' is not served here; this server serves version 1"}
    assert client.get(f"/v2/models/{NAME}/versions/7").status_code == 404
    r = client.get("/v2/models/other/ready")
    assert r.status_code == 404 and "serves 'churn-classifier'" in r.json()["error"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "no route GET /nowhere"}


def test_infer_matches_the_pipeline(client, project) -> None:
    import pandas as pd

    rows = [S.serving_row(r) for r in S.churn_rows(20, seed=3)]
    r = client.post(f"/v2/models/{NAME}/infer", json=v2(rows, id="req-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (NAME, "1", "req-1")
    out = {o["name"]: o for o in body["outputs"]}
    assert out["score"]["datatype"] == "FP64" and out["score"]["shape"] == [20]
    # the same rows through the same pipeline in this process
    from mlc.serve.model import ServedModel
    from mlc.serve.schema import Schema

    sm = ServedModel(NAME, "1", "classification", Schema(_plan().inputs), positive_class="yes",
                     negative_class="no")
    sm.set_pipeline(project[1])
    expected = project[1].predict_proba(sm.frame(sm.schema.rows(rows)))[:, 1]
    assert out["score"]["data"] == pytest.approx(list(expected), abs=1e-12)
    assert out["label"]["data"] == ["yes" if p >= 0.5 else "no" for p in expected]
    assert isinstance(pd.Series(out["score"]["data"]).sum(), float)


def test_infer_nested_shape_rows_form_and_output_selection(client) -> None:
    req = {"inputs": [{"name": k, "datatype": dt, "shape": [1, 1], "data": [[ROW[k]]]} for k, dt in DT.items()],
           "outputs": [{"name": "score"}], "parameters": {"content_type": "pd"}}
    r = client.post(f"/v2/models/{NAME}/versions/1/infer", json=req)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["score"]
    score = r.json()["outputs"][0]["data"][0]
    rows = {"inputs": [{"name": "rows", "datatype": "BYTES", "shape": [2], "parameters": {"content_type": "json"},
                        "data": [json.dumps(ROW), ROW]}]}
    r = client.post(f"/v2/models/{NAME}/infer", json=rows)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [score, score]


def test_predict_simple_shape(client) -> None:
    r = client.post("/predict", json=ROW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"score", "label", "model_version"} and body["model_version"] == "1"
    assert 0 <= body["score"] <= 1 and body["label"] in ("yes", "no")
    v = client.post(f"/v2/models/{NAME}/infer", json=v2([ROW])).json()["outputs"][0]["data"][0]
    assert body["score"] == v


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/predict", {**ROW, "plan": "gold"}, 422, "column 'plan': 'gold' is not an allowed value"),
    ("/predict", {**ROW, "tenure_months": "3"}, 422, "column 'tenure_months': expected an integer"),
    ("/predict", {**ROW, "region": None}, 422, "column 'region': null is not allowed"),
    ("/predict", {**ROW, "extra": 1}, 422, "column 'extra': not an input of the model"),
    ("/predict", {k: v for k, v in ROW.items() if k != "plan"}, 422, "column 'plan': missing"),
    ("/predict", [ROW], 400, "expected a JSON object of named features"),
    (f"/v2/models/{NAME}/infer", {"inputs": "x"}, 400, "'inputs' must be a non-empty list"),
])
def test_bad_input_is_a_precise_4xx(client, path: str, body: object, status: int, needle: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_mismatched_tensor_lengths(client) -> None:
    req = v2([ROW, ROW])
    req["inputs"][0] = {"name": "tenure_months", "datatype": "INT64", "shape": [1], "data": [3]}
    r = client.post(f"/v2/models/{NAME}/infer", json=req)
    assert r.status_code == 400 and "'tenure_months' has 1" in r.json()["error"]


def test_malformed_json_is_400(client) -> None:
    r = client.post("/predict", content=b'{"tenure_months": 3,', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON")


def _raw(server, data: bytes, timeout: float = 10) -> tuple[bytes, float]:
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        resp = b""
        while True:  # the server closes the connection after a 413
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            resp += chunk
    return resp, time.perf_counter() - t


def test_huge_body_is_413_without_reading_it(server, client) -> None:
    head = (f"POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    resp, took = _raw(server, head + b'{"inputs": [')  # the other 50 MB never come: the server must not wait
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert b"larger than the limit" in resp
    assert took < 5
    assert client.get("/v2/health/ready").status_code == 200


def test_huge_chunked_body_is_413_after_the_limit(server, client) -> None:
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * (1024 * 1024)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(9))  # 9 MiB > 8 MiB limit
    resp, took = _raw(server, head + body)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert took < 10
    assert client.get("/v2/health/ready").status_code == 200


def test_50mb_body_from_a_real_client(server, client) -> None:
    """httpx sends the whole body; the server answers 413 (or closes early) quickly and stays up."""
    t = time.perf_counter()
    try:
        r = httpx.post(f"{server.url}/predict", content=b"[" + b"1," * (25 * 1024 * 1024) + b"1]",
                       headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 413
    except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError):
        pass  # the server answered 413 and closed while the client was still writing
    assert time.perf_counter() - t < 20
    assert client.post("/predict", json=ROW).status_code == 200


def test_concurrent_bad_input_never_5xx(server) -> None:
    import asyncio

    async def go() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            bodies = [{**ROW, "plan": "gold"}, {**ROW, "tenure_months": None}, ROW] * 40
            rs = await asyncio.gather(*(c.post("/predict", json=b) for b in bodies))
            return [r.status_code for r in rs]

    codes = asyncio.run(go())
    assert sorted(set(codes)) == [200, 422]
    assert codes.count(200) == 40


def test_metrics_exported_under_the_plan_names(client, project) -> None:
    client.post("/predict", json=ROW)
    client.post("/predict", json={**ROW, "plan": "gold"})
    assert client.post(f"/v2/models/{NAME}/infer", json=v2([ROW])).status_code == 200
    client.get("/v2/health/ready")
    text = client.get("/metrics").text
    from prometheus_client.parser import text_string_to_metric_families

    fams = {f.name: f for f in text_string_to_metric_families(text)}
    req = fams[M.REQUESTS_TOTAL.removesuffix("_total")]
    samples = {(s.labels["route"], s.labels["code"]): s.value for s in req.samples if s.name == M.REQUESTS_TOTAL}
    assert samples[("/predict", "200")] >= 1 and samples[("/predict", "422")] >= 1
    assert ("/v2/models/{name}/infer", "200") in samples  # the route template, not the raw path
    assert all(s.labels["model"] == NAME and s.labels["version"] == "1" and s.labels["role"] == "stable"
               for s in req.samples)
    assert not any(route.startswith("/v2/health") for route, _ in samples)  # probes are not traffic
    hist = fams[M.REQUEST_DURATION]
    les = {s.labels["le"] for s in hist.samples if s.name.endswith("_bucket")}
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(project[0])
    bounds = lower(sf.spec, sf.text, "local").latency_buckets
    assert 0.05 in bounds and 0.2 in bounds  # churn's p95_ms and p99_ms, the latency SLOs' buckets
    # the label text each bound is exported with is the one the latency SLOs' rules select
    assert les == {M.le_text(b) for b in bounds} | {"+Inf"}
    assert fams[M.IN_FLIGHT].samples[0].value == 0
    assert fams[M.MODEL_INFO].samples[0].labels == {"model": NAME, "version": "1", "role": "stable"}


def test_prediction_score_histogram_counts_every_predicted_row(client) -> None:
    """One observation per row (a 20-row request adds 20), the positive-class score, in SCORE_BUCKETS."""
    from prometheus_client.parser import text_string_to_metric_families

    def hist() -> dict[str, float]:
        fam = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}[M.PREDICTION_SCORE]
        assert {s.labels["role"] for s in fam.samples} == {"stable"}
        return {s.name.removeprefix(M.PREDICTION_SCORE) + s.labels.get("le", ""): s.value for s in fam.samples}

    before = hist()
    rows = [S.serving_row(r) for r in S.churn_rows(20, seed=4)]
    scores = client.post(f"/v2/models/{NAME}/infer", json=v2(rows)).json()["outputs"][0]["data"]
    assert client.post("/predict", json={**ROW, "plan": "gold"}).status_code == 422  # no prediction, no row
    one = client.post("/predict", json=ROW).json()["score"]
    after = hist()
    assert after["_count"] - before["_count"] == 21
    assert after["_sum"] - before["_sum"] == pytest.approx(sum(scores) + one)
    les = sorted(float(k.removeprefix("_bucket")) for k in after if k.startswith("_bucket"))
    assert les == [*M.SCORE_BUCKETS, float("inf")]
    for b in M.SCORE_BUCKETS:
        key = f"_bucket{b}"
        assert after[key] - before[key] == sum(1 for x in [*scores, one] if x <= b), b


def test_graceful_shutdown_finishes_in_flight_requests(project) -> None:
    srv = S.Server(project[0]).wait_ready()
    rows = [S.serving_row(r) for r in S.churn_rows(20000, seed=5)]
    result: dict = {}

    def slow() -> None:
        result["r"] = httpx.post(f"{srv.url}/v2/models/{NAME}/infer", json=v2(rows), timeout=60)

    th = threading.Thread(target=slow)
    th.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and f'{M.IN_FLIGHT}{{model="{NAME}",role="stable",version="1"}} 1.0' not in \
            httpx.get(f"{srv.url}/metrics").text:
        time.sleep(0.01)  # wait until the big request is in the server
    srv.proc.send_signal(signal.SIGTERM)
    th.join(60)
    code = srv.stop()
    assert result["r"].status_code == 200
    assert result["r"].json()["outputs"][0]["shape"] == [20000]
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is the signal's
    assert code in (0, -signal.SIGTERM), srv.output()
    assert "Finished server process" in srv.output()


def test_no_registered_model_exits_1_with_a_hint(tmp_path) -> None:
    p = S.copy_project(tmp_path / "churn")
    r = subprocess.run([*S.MLC, "serve", str(p), "--port", str(S.free_port())], check=False, capture_output=True, text=True,
                       timeout=120, env=S.clean_env())
    assert r.returncode == 1
    assert "no registered model 'churn-classifier'" in r.stderr and f"mlc run {p}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (p / ".mlc" / "mlflow.db").exists()  # nothing created on the way


def test_unknown_version_or_alias_exits_1(project) -> None:
    for args, what in ((["--model-version", "9"], "version 9"), (["--alias", "nope"], "alias 'nope'")):
        r = subprocess.run([*S.MLC, "serve", str(project[0]), "--port", str(S.free_port()), *args],
                           check=False, capture_output=True, text=True, timeout=120, env=S.clean_env())
        assert r.returncode == 1, r.stderr
        assert f"no registered model 'churn-classifier' with {what}" in r.stderr
        assert "mlc run" in r.stderr and "Traceback" not in r.stderr


def _plan():
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(S.CHURN)
    return lower(sf.spec, sf.text, "local")


def test_a_bad_body_gets_every_problem_in_one_422(client) -> None:
    """Missing, wrong type, null, not allowed, out of range and unknown, all in one answer with a stable shape."""
    body = {**{k: v for k, v in ROW.items() if k != "support_tickets"}, "tenure_months": "3", "region": None,
            "plan": "gold", "plan_price": -1.0, "tenure": 3}
    r = client.post("/predict", json=body)
    assert r.status_code == 422, r.text
    got = r.json()
    assert list(got) == ["error", "problems", "problems_omitted"] and got["problems_omitted"] == 0
    assert [(p["column"], p["row"], p["check"]) for p in got["problems"]] == [
        ("tenure_months", None, "type"), ("plan", None, "allowed"), ("plan_price", None, "range"),
        ("support_tickets", None, "missing"), ("region", None, "nullable"), ("tenure", None, "unknown")]
    assert got["problems"][5]["message"] == "column 'tenure': not an input of the model (did you mean 'tenure_months'?)"
    assert got["error"].startswith("6 problems: column 'tenure_months': expected an integer, got a string \"3\"; ")

    rows = [ROW, {**ROW, "plan": "gold"}, {**ROW, "tenure_months": 500, "region": "mars"}]
    req = v2(rows)
    req["inputs"][1]["datatype"] = "BYTES"  # monthly_usage_hours is a float column
    r = client.post(f"/v2/models/{NAME}/infer", json=req)
    assert r.status_code == 422, r.text
    assert [(p["column"], p["row"], p["check"]) for p in r.json()["problems"]] == [
        ("monthly_usage_hours", None, "datatype"), ("plan", 1, "allowed"), ("tenure_months", 2, "range"),
        ("region", 2, "allowed")]


def test_started_from_the_local_registry_without_mlflow_or_torch(server) -> None:
    """The local store is read directly (serve/registry.py); a logistic regression never maps libtorch."""
    out = server.output()
    assert "read directly from the local registry" in out, out
    assert "ready in " in out and "after start (model load " in out
    maps = Path(f"/proc/{server.proc.pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc on this platform")
    assert "libtorch" not in maps.read_text()
