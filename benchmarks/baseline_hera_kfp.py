"""The script a user would otherwise write by hand: the churn training pipeline as an Argo WorkflowTemplate
(hera) and as a Kubeflow pipeline (kfp), for one environment, printed as YAML.

It is the baseline of benchmarks/compile.py: `mlc compile specs/churn` should cost about the same, because
the floor of both is importing hera and kfp.
"""

import os
import sys
import tempfile

from hera.workflows import DAG, Container, Env, Parameter, RetryStrategy, SecretEnv, Task, WorkflowTemplate
from hera.workflows import models as m
from kfp import compiler, dsl, kubernetes

IMAGE = "ghcr.io/acme/mlc-runtime:0.1.0"
CANDIDATES = ["logreg", "forest", "boosting", "tabular-mlp"]
STEPS = (
    [("ingest", []), ("validate-data", ["ingest"]), ("features", ["validate-data"])]
    + [(f"train-{c}", ["features"]) for c in CANDIDATES]
    + [("evaluate", [f"train-{c}" for c in CANDIDATES]), ("gate", ["evaluate"]), ("register", ["gate"]),
       ("deploy", ["register"])]
)


def cmd(step: str, run_id: str) -> list[str]:
    return ["mlc", "step", step, "--spec", "/etc/mlc/mlproject.yaml", "--run-id", run_id, "--env", "prod"]


def argo() -> str:
    env = [Env(name="MLFLOW_TRACKING_URI", value="http://mlflow.mlflow.svc:5000"),
           SecretEnv(name="AWS_ACCESS_KEY_ID", secret_name="s3-credentials", secret_key="AWS_ACCESS_KEY_ID"),
           SecretEnv(name="AWS_SECRET_ACCESS_KEY", secret_name="s3-credentials", secret_key="AWS_SECRET_ACCESS_KEY")]
    with WorkflowTemplate(name="churn-train", namespace="churn", entrypoint="main",
                          service_account_name="churn-pipeline", pod_gc=m.PodGC(strategy="OnPodSuccess"),
                          ttl_strategy=m.TTLStrategy(seconds_after_success=259200),
                          volumes=[m.Volume(name="spec", config_map=m.ConfigMapVolumeSource(name="churn-spec"))]
                          ) as wt:
        containers = {
            name: Container(name=name, image=IMAGE, command=cmd(name, "{{workflow.name}}"), env=env,
                            resources=m.ResourceRequirements(requests={"cpu": "4" if "train" in name else "500m"}),
                            volume_mounts=[m.VolumeMount(name="spec", mount_path="/etc/mlc")],
                            retry_strategy=RetryStrategy(limit="2"),
                            outputs=[Parameter(name="run_id", value_from=m.ValueFrom(path="/tmp/mlc-outputs/run_id"))]
                            if "train" in name else None)
            for name, _ in STEPS
        }
        with DAG(name="main"):
            tasks = {}
            for name, deps in STEPS:
                tasks[name] = Task(name=name, template=containers[name])
                for d in deps:
                    tasks[d] >> tasks[name]
    return wt.to_yaml()


def kfp_pipeline() -> str:
    def make(name: str):  # kfp reads the signature, so no `from __future__ import annotations` in this file
        def fn(run: str):
            return dsl.ContainerSpec(image=IMAGE, command=cmd(name, run))
        fn.__name__ = name.replace("-", "_")
        return dsl.container_component(fn)

    comps = {name: make(name) for name, _ in STEPS}

    @dsl.pipeline(name="churn-train")
    def pipeline():  # type: ignore[no-untyped-def]
        tasks = {}
        for name, deps in STEPS:
            t = comps[name](run=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            t.set_cpu_request("4" if "train" in name else "500m").set_memory_request("1Gi")
            t.set_retry(num_retries=2).set_caching_options("register" not in name and "deploy" not in name)
            t.set_env_variable("MLFLOW_TRACKING_URI", "http://mlflow.mlflow.svc:5000")
            kubernetes.use_secret_as_env(t, "s3-credentials", {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
                                                               "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"})
            kubernetes.use_config_map_as_volume(t, "churn-spec", "/etc/mlc")
            for d in deps:
                t.after(tasks[d])
            tasks[name] = t

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pipeline.yaml")
        compiler.Compiler().compile(pipeline, path)
        with open(path, encoding="utf-8") as f:
            return f.read()


if __name__ == "__main__":
    out = argo() + "---\n" + kfp_pipeline()
    sys.stdout.write(f"{len(out.splitlines())} lines\n")
