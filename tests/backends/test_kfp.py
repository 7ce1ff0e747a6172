"""KFP backend: the IR parses into PipelineSpec (unknown fields rejected), equals what kfp's own Compiler writes,
and carries the plan's DAG, retries, resources, caching and the container contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from planhelpers import example_plan, with_secrets

from mlc.backends import kfp as kfp_backend

REPO = Path(__file__).resolve().parents[2]


plan = example_plan


def documents(text: str) -> list[dict]:
    return list(yaml.safe_load_all(text))


@pytest.mark.parametrize(("spec", "env"), [("churn", "staging"), ("churn", "local"), ("delivery-eta", "prod")])
def test_ir_parses_into_pipeline_spec_and_platform_spec(spec: str, env: str) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    outs = kfp_backend.build(plan(spec, env))
    assert outs and all(not o.resource and o.path.startswith("kfp/pipeline-") for o in outs)
    for o in outs:
        docs = documents(o.text)
        assert len(docs) == 2
        json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())  # raises on unknown fields
        json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())


def test_fast_serialisation_is_byte_identical_to_kfp_compiler() -> None:
    for spec, env in (("churn", "staging"), ("delivery-eta", "local")):
        p = plan(spec, env)
        for pipeline in p.pipelines:
            assert kfp_backend.compile_pipeline(p, pipeline) == kfp_backend.compile_with_kfp(p, pipeline)


def test_dag_retries_resources_caching_and_contract() -> None:
    p = plan("churn", "prod")
    text = kfp_backend.compile_pipeline(p, p.pipelines[0])
    ir, platform = documents(text)
    tasks = ir["root"]["dag"]["tasks"]
    assert sorted(tasks["evaluate"]["dependentTasks"]) == [
        "train-boosting", "train-forest", "train-logreg", "train-tabular-mlp"]
    assert tasks["train-forest"]["dependentTasks"] == ["features"]
    assert tasks["train-forest"]["retryPolicy"]["maxRetryCount"] == 2
    assert "retryPolicy" not in tasks["gate"]
    assert tasks["train-forest"]["cachingOptions"] == {"enableCache": True}
    assert tasks["register"]["cachingOptions"] == {}  # cacheable=False: kfp writes enableCache: false as {}
    run = tasks["ingest"]["inputs"]["parameters"]["run"]["runtimeValue"]["constant"]
    assert run == "{{$.pipeline_job_uuid}}"
    ex = ir["deploymentSpec"]["executors"]
    c = ex["exec-ingest"]["container"]
    assert c["command"][:3] == ["mlc", "step", "ingest"] and c["command"][-2:] == ["--env", "prod"]
    assert c["resources"]["resourceCpuRequest"] == "500m"
    train = ex["exec-train-forest"]["container"]["resources"]
    assert train["resourceCpuRequest"] == "4" and train["resourceMemoryLimit"] == "8Gi"
    ev = ex["exec-evaluate"]["container"]["command"]
    assert ev[:2] == ["sh", "-ec"] and 'cp "$MLC_OUTPUTS_DIR/winner" "$2"' in ev[2]
    assert {e["name"] for e in c["env"]} == {"MLC_OUTPUTS_DIR", "MLFLOW_TRACKING_URI"}
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(k8s) == set(ex)
    for cfg in k8s.values():
        assert cfg["configMapAsVolume"][0]["configMapName"] == "churn-spec"
        assert cfg["secretAsEnv"][0]["secretName"] == "s3-credentials"
        assert cfg["podMetadata"]["labels"]["mlc.dev/env"] == "prod"


def test_gpu_and_keyless_secret() -> None:
    from mlc.plan import StepResources

    p = plan("delivery-eta", "prod")
    train = p.pipelines[0]
    steps = tuple(dataclasses.replace(s, resources=StepResources("1", "2Gi", 2)) if s.kind == "train" else s
                  for s in train.steps)
    p = dataclasses.replace(with_secrets(p, (("db", None),)), pipelines=(dataclasses.replace(train, steps=steps),))
    ir, platform = documents(kfp_backend.compile_pipeline(p, p.pipelines[0]))
    res = ir["deploymentSpec"]["executors"]["exec-train-ridge"]["container"]["resources"]
    assert res["accelerator"]["resourceType"] == "nvidia.com/gpu" and res["accelerator"]["resourceCount"] == "2"
    vol = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-ingest"]["secretAsVolume"]
    assert vol[0]["secretName"] == "db" and vol[0]["mountPath"] == "/var/run/secrets/mlc/db"


def test_kfp_task_check_is_restored_after_compiling() -> None:
    from kfp.dsl import pipeline_task

    before = pipeline_task.PipelineTask.__dict__["_ensure_container_spec_exists"]
    p = plan("delivery-eta", "local")
    kfp_backend.compile_pipeline(p, p.pipelines[0])
    assert pipeline_task.PipelineTask.__dict__["_ensure_container_spec_exists"] is before
