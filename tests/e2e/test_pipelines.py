"""The compiled staging pipelines of specs/churn, executed from the YAML `mlc compile` wrote, as a cluster would run
them: storage on moto's S3 server filled by `mlc push`, tracking on a real `mlflow server`, the spec ConfigMap at
its mountPath, the minio-credentials Secret resolved into each container's env.

The deploy step needs the Kubernetes API. The first runs give the pods none (no service account credentials, no
kubeconfig): deploy fails after its retry with the one-line Kubernetes API error, the Workflow ends Failed and
the exit handler reports it. Then, on the real kube-apiserver of tests/kubeenv, the compiled Namespace,
ServiceAccount, Role, RoleBinding and InferenceService are applied, a token is requested for the generated
ServiceAccount (the TokenRequest API, what a pod's projected token is), and the failed Argo Workflow is retried
(`argo retry`) with that token in the deploy pod's kubeconfig: deploy patches the InferenceService within the
generated Role, and the same token is refused what the Role does not grant.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubeenv import KubeEnv

from e2e.argo import ArgoRunner, Workflow
from e2e.kfp import KfpRunner
from e2e.pods import Cluster, load_yaml_docs
from e2e.servers import CREDENTIALS, MlflowServer, S3Server, mlflow_server, moto_server

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "specs" / "churn"
BUCKET, PREFIX = "ml-staging", "churn"
TRAIN_STEPS = ["ingest", "validate-data", "features", "train-logreg", "train-forest", "train-boosting",
               "train-tabular-mlp", "evaluate", "gate", "register"]
KUBE_ERROR = ("error: no Kubernetes credentials: no kubeconfig at ~/.kube/config, and not in a pod "
              "(KUBERNETES_SERVICE_HOST is not set)")
NAMESPACE, SERVICE_ACCOUNT, ENDPOINT = "churn-staging", "churn-pipeline", "churn"

# one stack on one worker, and the worker of the session's kube-apiserver (tests/cluster's group): one server per
# run, shared with the cluster tests (`--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kube")]


@dataclass
class Stack:
    s3: S3Server
    mlflow: MlflowServer
    env_dir: Path  # generated/churn/staging, compiled for this test
    cluster: Cluster

    def keys(self, prefix: str) -> list[str]:
        c = self.s3.client()
        pages = c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{prefix}")
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read()


def mlc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "mlc", *args], capture_output=True, text=True, timeout=600,
                       env={**os.environ, **(env or {})}, check=False)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # not pytest's tmp_path: a concurrent pytest run prunes old base temps, and these runs take minutes
    base = Path(tempfile.mkdtemp(prefix="mlc-e2e-"))
    with moto_server(base) as s3, mlflow_server(base / "mlflow") as tracking:
        s3.client().create_bucket(Bucket=BUCKET)
        out = base / "generated"
        mlc("compile", str(CHURN), "-o", str(out), "--env", "staging")
        push = mlc("push", str(CHURN), "--env", "staging", env=s3.env())
        assert "to upload" in push.stdout
        cluster = Cluster.from_compiled(
            out / "churn" / "staging", base / "cluster",
            secrets={"minio-credentials": {k: CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}},
            services={"http://minio.minio.svc:9000": s3.url, "http://mlflow.mlflow.svc:5000": tracking.url})
        yield Stack(s3, tracking, out / "churn" / "staging", cluster)
    if os.environ.get("MLC_E2E_KEEP"):
        print(f"e2e: pods and logs kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)


def champion(stack: Stack) -> tuple[str, dict[str, str]]:
    from mlflow import MlflowClient

    mv = MlflowClient(stack.mlflow.url, stack.mlflow.url).get_model_version_by_alias("churn-classifier", "champion")
    return str(mv.version), dict(mv.tags)


@pytest.fixture(scope="module")
def argo_train(stack: Stack) -> Workflow:
    """The Argo train pipeline, run once: the pods have no Kubernetes API, so it ends with deploy Failed."""
    return ArgoRunner.load(stack.cluster, stack.env_dir / "argo/workflowtemplate-churn-train.yaml") \
        .submit("churn-train-e2e")


def test_argo_train_batch_monitor(stack: Stack, argo_train: Workflow) -> None:
    wf = argo_train
    phases = {n: node.phase for n, node in wf.nodes.items()}
    assert phases == {**dict.fromkeys(TRAIN_STEPS, "Succeeded"), "deploy": "Failed"}, wf.failed()
    # the model is registered in the real tracking server and holds the production alias
    version, tags = champion(stack)
    assert wf.nodes["register"].outputs["version"] == version
    assert tags["mlc.run_id"] == "churn-train-e2e"
    assert wf.nodes["evaluate"].outputs["winner"] in {"logreg", "forest", "boosting", "tabular-mlp"}
    assert wf.nodes["gate"].outputs["passed"] == "true"
    assert all(wf.nodes[f"train-{c}"].outputs["run_id"] for c in ("logreg", "forest", "boosting", "tabular-mlp"))
    # every finished step published its artifacts under runs/<run-id>/<step>/ in the bucket
    keys = stack.keys("runs/churn-train-e2e/")
    for s in TRAIN_STEPS:
        assert f"{PREFIX}/runs/churn-train-e2e/{s}/_SUCCESS" in keys, s
    assert f"{PREFIX}/runs/churn-train-e2e/ingest/data.parquet" in keys
    # deploy: no ServiceAccount credentials and no kubeconfig, retried once (retryStrategy.limit 1), one line each
    deploy = wf.nodes["deploy"]
    assert deploy.attempts == 2
    for a in deploy.pod.attempts:
        assert a.exit_code == 1 and a.log.strip().splitlines()[-1].startswith(KUBE_ERROR), a.log[-3000:]
    assert wf.phase == "Failed"
    report = wf.exit_nodes["report-failure"]
    assert report.phase == "Succeeded"
    assert "workflow churn-train-e2e of churn/staging finished Failed" in report.log
    assert '"displayName": "deploy"' in report.log

    batch = ArgoRunner.load(stack.cluster, stack.env_dir / "argo/workflowtemplate-churn-batch.yaml") \
        .submit("churn-batch-e2e")
    assert batch.phase == "Succeeded", batch.failed()
    assert batch.exit_nodes["report-failure"].phase == "Skipped"  # when: status != Succeeded
    import pandas as pd

    scores = pd.read_csv(io.BytesIO(stack.read("project/predictions/churn_scores.csv")))
    rows = len(pd.read_csv(CHURN / "data/to_score.csv"))
    assert len(scores) == rows and "customer_id" in scores.columns

    monitor = ArgoRunner.load(stack.cluster, stack.env_dir / "argo/workflowtemplate-churn-monitor.yaml") \
        .submit("churn-monitor-e2e")
    assert monitor.phase == "Succeeded", monitor.failed()
    assert monitor.nodes["drift"].outputs["drifted"] in ("true", "false")
    keys = stack.keys("runs/churn-monitor-e2e/drift/")
    for f in ("report.json", "report.html", "_SUCCESS"):
        assert f"{PREFIX}/runs/churn-monitor-e2e/drift/{f}" in keys


def test_kfp_train_batch_monitor(stack: Stack) -> None:
    run = KfpRunner.load(stack.cluster, stack.env_dir / "kfp/pipeline-churn-train.yaml").submit("churn-train-kfp")
    phases = {n: t.phase for n, t in run.tasks.items()}
    assert phases == {**dict.fromkeys(TRAIN_STEPS, "SUCCEEDED"), "deploy": "FAILED"}, run.failed()
    version, tags = champion(stack)
    registered = run.tasks["register"].outputs["version"]
    # a model identical to one already registered (the Argo run's, same data and seeds) is not registered twice;
    # a different one is a challenger that waits for its rollout (churn has one): the champion stays
    if registered != version:
        from mlflow import MlflowClient

        c = MlflowClient(stack.mlflow.url, stack.mlflow.url)
        assert str(c.get_model_version_by_alias("churn-classifier", "challenger").version) == registered
        assert int(registered) > int(version)
    assert tags["mlc.run_id"] in (run.job_uuid, "churn-train-e2e")
    keys = stack.keys(f"runs/{run.job_uuid}/")
    for s in TRAIN_STEPS:
        assert f"{PREFIX}/runs/{run.job_uuid}/{s}/_SUCCESS" in keys, s
    deploy = run.tasks["deploy"]
    assert len(deploy.pod.attempts) == 2
    assert deploy.pod.attempts[-1].log.strip().splitlines()[-1].startswith(KUBE_ERROR), deploy.pod.attempts[-1].log

    batch = KfpRunner.load(stack.cluster, stack.env_dir / "kfp/pipeline-churn-batch.yaml").submit("churn-batch-kfp")
    assert batch.state == "SUCCEEDED", batch.failed()
    monitor = KfpRunner.load(stack.cluster, stack.env_dir / "kfp/pipeline-churn-monitor.yaml") \
        .submit("churn-monitor-kfp")
    assert monitor.state == "SUCCEEDED", monitor.failed()
    assert monitor.tasks["drift"].outputs["drifted"] in ("true", "false")
    assert f"{PREFIX}/runs/{monitor.job_uuid}/drift/report.json" in stack.keys(f"runs/{monitor.job_uuid}/")


PLURALS = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Role": "roles",
           "RoleBinding": "rolebindings", "InferenceService": "inferenceservices"}


def object_path(doc: dict) -> str:
    api = doc["apiVersion"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    ns = doc["metadata"].get("namespace")
    return f"{base}{f'/namespaces/{ns}' if ns else ''}/{PLURALS[doc['kind']]}/{doc['metadata']['name']}"


def service_account_kubeconfig(k: KubeEnv, token: str) -> str:
    import yaml

    ca = base64.b64encode((k.dir / "ca.crt").read_bytes()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "pod",
        "clusters": [{"name": "cluster", "cluster": {"server": k.url, "certificate-authority-data": ca}}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "cluster", "user": SERVICE_ACCOUNT,
                                                 "namespace": NAMESPACE}}]})


def test_argo_deploy_with_the_generated_service_account(stack: Stack, argo_train: Workflow,
                                                        kube_server: KubeEnv) -> None:
    """`argo retry` of the train Workflow whose deploy had no Kubernetes API, now with the generated
    ServiceAccount's token on a real kube-apiserver: deploy patches the InferenceService, within the Role."""
    import httpx

    from mlc.backends.kserve import MODEL_VERSION_ENV, ROLE_ENV, VERSION_ANNOTATION

    k = kube_server
    docs = [d for f in ("namespace", "serviceaccount-churn-pipeline", "role-churn-pipeline",
                        "rolebinding-churn-pipeline") for d in load_yaml_docs(stack.env_dir / "core" / f"{f}.yaml")]
    docs += load_yaml_docs(stack.env_dir / "kserve" / "inferenceservice-churn.yaml")
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "Role", "RoleBinding", "InferenceService"]
    for d in docs:  # as the admin, as `mlc apply` would (server-side apply)
        r = k.request("PATCH", object_path(d), d, "application/apply-patch+yaml", fieldManager="mlc-e2e",
                      force="true")
        assert r.status_code in (200, 201), (d["kind"], r.status_code, r.text[:500])
    isvc = object_path(docs[-1])
    before = k.request("GET", isvc).json()
    assert VERSION_ANNOTATION not in (before["metadata"].get("annotations") or {})
    r = k.request("POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
                  {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 3600}})
    assert r.status_code == 201, r.text[:500]
    token = r.json()["status"]["token"]

    cluster = dataclasses.replace(stack.cluster,
                                  kubeconfigs={f"{NAMESPACE}/{SERVICE_ACCOUNT}": service_account_kubeconfig(k, token)})
    wf = ArgoRunner.load(cluster, stack.env_dir / "argo/workflowtemplate-churn-train.yaml").retry(argo_train)
    assert wf.phase == "Succeeded", wf.failed()
    assert {n: node.phase for n, node in wf.nodes.items()} == dict.fromkeys([*TRAIN_STEPS, "deploy"], "Succeeded")
    assert all(wf.nodes[s] is argo_train.nodes[s] for s in TRAIN_STEPS)  # retried: only deploy ran again
    deploy = wf.nodes["deploy"]
    assert deploy.attempts == 1, deploy.log[-3000:]
    version, _ = champion(stack)
    # the first version: promoted by register, pinned by deploy (no rollout: nothing to compare it with)
    assert f"InferenceService {NAMESPACE}/{ENDPOINT} serves v{version}" in deploy.log, deploy.log[-3000:]
    assert wf.exit_nodes["report-failure"].phase == "Skipped"
    # the server holds the change: the production version on the object, pinned in the predictor's container
    after = k.request("GET", isvc).json()
    assert after["metadata"]["annotations"][VERSION_ANNOTATION] == version
    (container,) = after["spec"]["predictor"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env[MODEL_VERSION_ENV], env[ROLE_ENV]) == (version, "stable")
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]
    assert after["metadata"]["generation"] > before["metadata"]["generation"]

    # least privilege: the same token may read the InferenceService, but not delete it, nor read Secrets, nor
    # touch anything outside its namespace
    as_sa = httpx.Client(base_url=k.url, verify=ssl.create_default_context(cafile=str(k.dir / "ca.crt")),
                         trust_env=False, timeout=30, headers={"Authorization": f"Bearer {token}"})
    with as_sa:
        assert as_sa.get(isvc).status_code == 200
        assert as_sa.get("/api/v1/namespaces/kube-system").status_code == 403  # proves the token is not admin
        for method, path in [("DELETE", isvc), ("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets"),
                             ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods"),
                             ("GET", "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"),
                             ("PATCH", object_path(docs[2]))]:
            body = {"content": "{}", "headers": {"Content-Type": "application/merge-patch+json"}} \
                if method == "PATCH" else {}
            r = as_sa.request(method, path, **body)
            assert r.status_code == 403, (method, path, r.status_code, r.text[:300])
            assert f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}" in r.json()["message"]
    assert k.request("GET", isvc).status_code == 200  # still there
