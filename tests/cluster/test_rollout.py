"""The rollout on a real kube-apiserver, with the generated Role's ServiceAccount token for the steps:

`mlc rollout start --env <cluster env>` pins the challenger's revision at the first weight and creates the
``<project>-rollout`` Workflow; each `mlc step analyze-<w>` (run here as its pod would, as the ServiceAccount)
waits for the revision, queries a real Prometheus scraping a real `mlc serve --canary`, and either passes
(then `mlc step promote`) or rolls back (weight 0, production alias on stable); `mlc rollout status|abort`
read and drive the live object.

No KServe controller runs here (no kubelet): the test writes the InferenceService's status the way KServe's
controller does when a revision is ready, through the status subresource.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))
import serve_support as S
from test_local_loop import NAME, Prometheus, Traffic

from mlc.backends import kserve
from mlc.cli import main

pytestmark = pytest.mark.slow

ROLLOUT = {
    "steps": [{"weight": 30, "pause": "1s"}, {"weight": 100}],
    "analysis": {"interval": "2s", "count": 2, "failure_limit": 0,
                 "metrics": [{"name": "error_ratio", "max": 0.05}, {"name": "latency_p95", "max": 0.5}]},
}
ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/churn"


@pytest.fixture
def rollout_env(staging, tmp_path: Path, capfd):  # type: ignore[no-untyped-def]
    """The staging environment with its storage on a local path, tracking in the project's sqlite store, and a
    real Prometheus scraping a real `mlc serve --canary` of v1 (champion) and v2 (challenger), split 70/30 as
    KServe would split the two revisions at the first step."""
    p = staging
    spec = yaml.safe_load((p.dir / "mlproject.yaml").read_text())
    env = spec["environments"][p.env]
    env["storage"] = {"root": str(tmp_path / "artifacts")}
    env["tracking_uri"] = f"sqlite:///{p.dir / '.mlc' / 'mlflow.db'}"
    env.pop("secrets", None)
    spec["deployment"]["online"]["rollout"] = ROLLOUT
    S.register(p.dir, S.train_pipeline(seed=7), alias="champion")
    S.register(p.dir, S.train_pipeline(n=600, seed=8), alias="challenger")
    (p.dir / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    code, out, err = p.mlc(capfd, "apply", "--yes")
    assert code == 0, out + err
    yield p, spec


def _serve(p, spec, tmp_path: Path, fault: str | None):  # type: ignore[no-untyped-def]
    srv = S.Server(p.dir, "--canary", "--canary-weight", "30", env={"MLC_SERVE_FAULT": fault} if fault else None).wait_ready()
    prom = Prometheus(f"127.0.0.1:{srv.port}", tmp_path)
    spec["environments"][p.env]["prometheus"] = prom.url
    (p.dir / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    t = Traffic(srv.url)
    t.start()
    return srv, prom, t


def _as_kserve_ready(p, revision: str) -> None:  # type: ignore[no-untyped-def]
    """What KServe's controller writes once a revision is ready."""
    path = ISVC.format(ns=p.ns)
    obj = p.k.request("GET", path).json()
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True",
                                     "lastTransitionTime": "2026-12-03T00:00:00Z"}],
                     "components": {"predictor": {"latestReadyRevision": revision,
                                                  "latestCreatedRevision": revision}}}
    r = p.k.request("PUT", f"{path}/status", obj)
    assert r.status_code == 200, r.text[:300]


def _sa_kubeconfig(p, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    r = p.k.request("POST", f"/api/v1/namespaces/{p.ns}/serviceaccounts/churn-pipeline/token",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"expirationSeconds": 3600}})
    assert r.status_code == 201, r.text[:300]
    kc = yaml.safe_load(Path(p.kc).read_text())
    kc["users"] = [{"name": kc["users"][0]["name"], "user": {"token": r.json()["status"]["token"]}}]
    f = tmp_path / "sa-kubeconfig"
    f.write_text(yaml.safe_dump(kc))
    return str(f)


def _step(p, name: str, wf: str, monkeypatch, sa: str, capfd) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """`mlc step <name>` as the rollout Workflow's pod runs it, with the ServiceAccount's credentials."""
    from mlc.cluster.kube import Kube

    monkeypatch.setenv("MLC_ROLLOUT_VERSION", "2")
    monkeypatch.setenv("MLC_ROLLOUT_STABLE", "1")
    monkeypatch.setenv("MLC_OUTPUTS_DIR", str(Path(sa).parent / "outputs"))
    monkeypatch.setattr("mlc.runtime.rollout_steps.kube", lambda: Kube(sa))
    capfd.readouterr()
    code = main(["step", name, "--spec", str(p.dir / "mlproject.yaml"), "--run-id", wf, "--env", p.env])
    out = capfd.readouterr()
    return code, out.out + out.err


def _rollout(p, capfd, verb: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    capfd.readouterr()
    code = main(["rollout", verb, str(p.dir), "--env", p.env, "--kubeconfig", p.kc])
    out, err = capfd.readouterr()
    return code, out, err


def _aliases(p) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    uri = f"sqlite:///{p.dir / '.mlc' / 'mlflow.db'}"
    return {k: str(v) for k, v in MlflowClient(uri, uri).get_registered_model(NAME).aliases.items()}


def _start(p, capfd) -> str:  # type: ignore[no-untyped-def]
    code, out, err = _rollout(p, capfd, "start")
    assert code == 0, out + err
    wf = out.split(":", 1)[0]
    assert wf.startswith("churn-rollout-") and "rolling out v2 beside v1" in out
    isvc = p.k.request("GET", ISVC.format(ns=p.ns)).json()
    pred = isvc["spec"]["predictor"]
    env = {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}
    assert pred["canaryTrafficPercent"] == 30
    assert (env[kserve.MODEL_VERSION_ENV], env[kserve.ROLE_ENV]) == ("2", "canary")
    w = p.get("workflows", wf, "argoproj.io/v1alpha1")
    assert w is not None and w["spec"]["workflowTemplateRef"] == {"name": "churn-rollout"}
    assert {x["name"]: x["value"] for x in w["spec"]["arguments"]["parameters"]} == {"version": "2", "stable": "1"}
    return wf


def test_a_good_canary_is_analysed_and_promoted_on_the_cluster(rollout_env, tmp_path, monkeypatch, capfd):
    p, spec = rollout_env
    srv, prom, t = _serve(p, spec, tmp_path, fault=None)
    try:
        wf = _start(p, capfd)
        _as_kserve_ready(p, "churn-predictor-00002")
        sa = _sa_kubeconfig(p, tmp_path)
        code, out = _step(p, "analyze-30", wf, monkeypatch, sa, capfd)
        assert code == 0, out
        assert "canary v2 on revision churn-predictor-00002" in out and "-> successful" in out
        assert "Traceback" not in out
        code, out, err = _rollout(p, capfd, "status")
        assert code == 0 and "v2 (canary) vs v1 (stable): running" in out and "step 30%: successful" in out
        code, out = _step(p, "promote", wf, monkeypatch, sa, capfd)
        assert code == 0, out
    finally:
        t.stop(), prom.stop(), srv.stop()
    pred = p.k.request("GET", ISVC.format(ns=p.ns)).json()["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred
    env = {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}
    assert (env[kserve.MODEL_VERSION_ENV], env[kserve.ROLE_ENV]) == ("2", "stable")
    assert _aliases(p)["champion"] == "2"
    report = json.loads(next((tmp_path / "artifacts" / "runs").glob(f"{wf}/analyze-30/analysis.json")).read_text())
    assert report["verdict"] == "successful" and len(report["measurements"]) == 4
    assert all(m["query"].startswith(("(sum(rate(", "histogram_quantile(")) for m in report["measurements"])


def test_a_bad_canary_is_rolled_back_on_the_cluster_and_abort_stops_the_workflow(rollout_env, tmp_path,
                                                                                 monkeypatch, capfd):
    p, spec = rollout_env
    srv, prom, t = _serve(p, spec, tmp_path, fault="role=canary,error=1.0")
    try:
        wf = _start(p, capfd)
        _as_kserve_ready(p, "churn-predictor-00002")
        sa = _sa_kubeconfig(p, tmp_path)
        code, out = _step(p, "analyze-30", wf, monkeypatch, sa, capfd)
    finally:
        t.stop(), prom.stop(), srv.stop()
    assert code == 1 and "rolled back: failed at 30%" in out and "champion stays v1" in out, out
    assert "Traceback" not in out
    isvc = p.k.request("GET", ISVC.format(ns=p.ns)).json()
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    state = json.loads(isvc["metadata"]["annotations"][kserve.ROLLOUT_ANNOTATION])
    assert state["phase"] == "rolled-back" and state["measurements"][0]["verdict"] == "failed"
    # failure_limit 0: the first failed measurement ends it, the second of `count: 2` is never taken
    assert len([m for m in state["measurements"] if m["metric"] == "error_ratio"]) == 1, state["measurements"]
    assert _aliases(p) == {"champion": "1", "challenger": "2"}
    code, out, err = _rollout(p, capfd, "abort")
    assert code == 1 and "no rollout to abort" in err and "rolled-back" in err  # nothing left to abort

    # a second rollout, aborted by hand while its Workflow runs: the Workflow is stopped, traffic back to 0
    code, out, err = _rollout(p, capfd, "start")  # the first Workflow has not ended yet: refused
    assert code == 1 and f"rollout {wf} is still running" in err, out + err
    w = p.get("workflows", wf, "argoproj.io/v1alpha1")
    assert w is not None
    patch = p.k.request("PATCH", f"/apis/argoproj.io/v1alpha1/namespaces/{p.ns}/workflows/{wf}",
                        {"status": {"phase": "Failed"}}, "application/merge-patch+json")
    assert patch.status_code == 200  # what the controller records once analyze-30 failed
    wf2 = _start(p, capfd)
    code, out, err = _rollout(p, capfd, "abort")
    assert code == 0, out + err
    assert f"stopped workflow(s): {wf2}" in out and "aborted: 0% of traffic, champion stays v1" in out
    assert p.get("workflows", wf2, "argoproj.io/v1alpha1")["spec"]["shutdown"] == "Stop"
    assert p.k.request("GET", ISVC.format(ns=p.ns)).json()["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_the_pipeline_role_allows_the_rollout_and_nothing_more(rollout_env, tmp_path):
    p, _ = rollout_env
    sa = yaml.safe_load(Path(_sa_kubeconfig(p, tmp_path)).read_text())
    token = sa["users"][0]["user"]["token"]
    import ssl

    c = httpx.Client(base_url=p.k.url, verify=ssl.create_default_context(cafile=str(p.k.dir / "ca.crt")),
                     trust_env=False, timeout=30, headers={"Authorization": f"Bearer {token}"})
    isvc = ISVC.format(ns=p.ns)
    merge = {"headers": {"Content-Type": "application/merge-patch+json"}}
    with c:
        assert c.get(isvc).status_code == 200
        assert c.patch(isvc, content=b'{"spec":{"predictor":{"canaryTrafficPercent":5}}}', **merge).status_code == 200
        assert c.get(f"/apis/argoproj.io/v1alpha1/namespaces/{p.ns}/workflows").status_code == 200
        for method, path in [("DELETE", isvc), ("GET", isvc.rsplit("/", 1)[0]),  # no delete, no list
                             ("POST", isvc.rsplit("/", 1)[0]),
                             ("DELETE", f"/apis/argoproj.io/v1alpha1/namespaces/{p.ns}/workflows/x"),
                             ("GET", f"/api/v1/namespaces/{p.ns}/secrets")]:
            r = c.request(method, path, content=b"{}" if method == "POST" else None,
                          headers={"Content-Type": "application/json"})
            assert r.status_code == 403, (method, path, r.status_code)


def test_the_compiled_rollout_workflow_runs_to_promotion(rollout_env, tmp_path, capfd):
    """The compiled `<project>-rollout` WorkflowTemplate itself, run from its YAML by the e2e replay harness:
    set-weight (a resource patch as the ServiceAccount), analyze (a pod running `mlc step analyze-30`), pause,
    promote; tracking on a real `mlflow server`."""
    from e2e.argo import ArgoRunner
    from e2e.pods import Cluster
    from e2e.servers import mlflow_server

    p, spec = rollout_env
    with mlflow_server(p.dir / ".mlc") as tracking:  # the store the two versions were registered in
        spec["environments"][p.env]["tracking_uri"] = tracking.url
        srv, prom, t = _serve(p, spec, tmp_path, fault=None)
        try:
            wf = _start(p, capfd)
            _as_kserve_ready(p, "churn-predictor-00002")
            out = tmp_path / "generated"
            assert main(["compile", str(p.dir), "-o", str(out), "--env", p.env]) == 0
            env_dir = out / "churn" / p.env
            kc = Path(_sa_kubeconfig(p, tmp_path)).read_text()
            cluster = Cluster.from_compiled(env_dir, tmp_path / "cluster",
                                            kubeconfigs={f"{p.ns}/churn-pipeline": kc})
            run = ArgoRunner.load(cluster, env_dir / "argo" / "workflowtemplate-churn-rollout.yaml") \
                .submit(wf, {"version": "2", "stable": "1"})
        finally:
            t.stop(), prom.stop(), srv.stop()
    assert run.phase == "Succeeded", run.failed()
    assert {n: x.phase for n, x in run.nodes.items()} == dict.fromkeys(
        ["set-weight-30", "analyze-30", "pause-30", "promote"], "Succeeded")
    assert "-> successful" in run.nodes["analyze-30"].log
    assert run.exit_nodes["report-failure"].phase == "Skipped"
    pred = p.k.request("GET", ISVC.format(ns=p.ns)).json()["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred
    assert {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}[kserve.ROLE_ENV] == "stable"
    assert _aliases(p)["champion"] == "2"


def test_apply_during_a_rollout_keeps_its_weight_and_pin(rollout_env, capfd):
    """`mlc apply` of the compiled InferenceService (no weight, no pin) mid-rollout: the rollout's fields keep
    their live values, with no field-manager conflict; the plan afterwards shows no change."""
    p, _ = rollout_env
    _start(p, capfd)
    code, out, err = p.mlc(capfd, "apply", "--yes")
    assert code == 0, out + err
    pred = p.k.request("GET", ISVC.format(ns=p.ns)).json()["spec"]["predictor"]
    env = {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}
    assert pred["canaryTrafficPercent"] == 30
    assert (env[kserve.MODEL_VERSION_ENV], env[kserve.ROLE_ENV]) == ("2", "canary")
    code, out, err = p.mlc(capfd, "plan")
    assert code == 0 and "~ update" not in out, out + err
    assert out.strip().endswith("Plan: 0 to add, 0 to change, 0 to delete.")
