"""The compiled staging pipelines of specs/churn, executed from the YAML `mlc compile` wrote, as a cluster would run
them: storage on moto's S3 server filled by `mlc push`, tracking on a real `mlflow server`, the spec ConfigMap at
its mountPath, the minio-credentials Secret resolved into each container's env.

The deploy step talks to the Kubernetes API from inside a pod (in-cluster config: the mounted ServiceAccount token
at its fixed path). No pod runs in a cluster here and the harness does not fake one, so deploy fails, exactly as
it would in a pod without a reachable API server: with the one-line Kubernetes API error, after its retry. The
test asserts that, the failed Workflow phase, and that the exit handler reported the failure.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.argo import ArgoRunner
from e2e.kfp import KfpRunner
from e2e.pods import Cluster
from e2e.servers import CREDENTIALS, MlflowServer, S3Server, mlflow_server, moto_server

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "specs" / "churn"
BUCKET, PREFIX = "ml-staging", "churn"
TRAIN_STEPS = ["ingest", "validate-data", "features", "train-logreg", "train-forest", "train-boosting",
               "train-tabular-mlp", "evaluate", "gate", "register"]
KUBE_ERROR = "error: Kubernetes API at in-cluster config: not configured (Service host/port is not set.)"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-pipelines")]  # one stack, one worker


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

    mv = MlflowClient(stack.mlflow.url).get_model_version_by_alias("churn-classifier", "champion")
    return str(mv.version), dict(mv.tags)


def test_argo_train_batch_monitor(stack: Stack) -> None:
    wf = ArgoRunner.load(stack.cluster, stack.env_dir / "argo/workflowtemplate-churn-train.yaml") \
        .submit("churn-train-e2e")
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
    # deploy: in-cluster config without a pod, retried once (retryStrategy.limit 1), one clear line each time
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
    assert run.tasks["register"].outputs["version"] == version
    # a model identical to one already registered (the Argo run's, same data and seeds) is not registered twice
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
