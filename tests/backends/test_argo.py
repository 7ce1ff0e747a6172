"""Argo backend: every object validates against the upstream schema of the chosen Argo version, and hera's
own models re-read it without losing fields; the DAG, contract and version switch are what the plan says."""

from __future__ import annotations

import copy
import json
from functools import lru_cache

import jsonschema
import pytest
from crdschema import argo_schema
from planhelpers import example_plan, with_secrets

from mlc.backends import argo, argo_rollout
from mlc.plan import OUTPUTS_DIR, SPEC_MOUNT_DIR

CASES = [(spec, env, v) for spec, envs in (("churn", ("local", "staging", "prod")), ("delivery-eta", ("local", "prod")))
         for env in envs for v in ("3.7", "4")]


plan = example_plan


@lru_cache
def validator(version: str, kind: str) -> jsonschema.Draft202012Validator:
    defs = json.loads(argo_schema(version).read_text())["definitions"]
    return jsonschema.Draft202012Validator({"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
                                            "definitions": defs})


@pytest.mark.parametrize(("spec", "env", "version"), CASES)
def test_objects_validate_against_upstream_schema_and_hera_models(spec: str, env: str, version: str) -> None:
    from hera.workflows import models

    p = plan(spec, env, version)
    outs = argo.build(p) + argo_rollout.build(p)
    assert outs
    assert (p.rollout is not None) == any(o.path.endswith("-rollout.yaml") for o in outs)
    for o in outs:
        kind = o.obj["kind"]
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(version, kind).iter_errors(o.obj)]
        assert errors == [], f"{o.path} against Argo {version}"
        doc = copy.deepcopy(o.obj)
        if "schedule" in doc["spec"]:  # hera models Argo 4, which has only the list form
            doc["spec"]["schedules"] = [doc["spec"].pop("schedule")]
        again = getattr(models, kind).model_validate(doc).model_dump(by_alias=True, exclude_none=True, mode="json")
        assert again == doc, f"{o.path}: a field hera's models do not know"


def test_schedule_form_follows_the_argo_version() -> None:
    v3 = {o.path: o.obj for o in argo.build(plan("churn", "prod", "3.7"))}
    v4 = {o.path: o.obj for o in argo.build(plan("churn", "prod", "4"))}
    cron = "argo/cronworkflow-churn-batch.yaml"
    assert v3[cron]["spec"]["schedule"] == "0 2 * * *" and "schedules" not in v3[cron]["spec"]
    assert v4[cron]["spec"]["schedules"] == ["0 2 * * *"] and "schedule" not in v4[cron]["spec"]
    # Argo 4 removed `schedule`: the 4.1 schema requires `schedules`, so the 3.7 form must fail there.
    assert list(validator("4", "CronWorkflow").iter_errors(v3[cron]))


def test_train_dag_runs_candidates_in_parallel_and_steps_follow_the_contract() -> None:
    p = plan("churn", "staging")
    wt = {o.path: o.obj for o in argo.build(p)}["argo/workflowtemplate-churn-train.yaml"]
    spec = wt["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    trains = [n for n in tasks if n.startswith("train-")]
    assert len(trains) == 4 and all(tasks[n]["dependencies"] == ["features"] for n in trains)
    assert sorted(tasks["evaluate"]["dependencies"]) == sorted(trains)
    assert spec["serviceAccountName"] == "churn-pipeline" and spec["onExit"] == "exit-handler"
    assert spec["podGC"]["strategy"] == "OnPodSuccess" and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    c = templates["train-logreg"]["container"]
    assert c["command"] == ["mlc", "step", "train-logreg", "--spec", "/etc/mlc/mlproject.yaml",
                            "--run-id", "{{workflow.name}}", "--env", "staging"]
    env = {e["name"]: e for e in c["env"]}
    assert env["MLC_OUTPUTS_DIR"]["value"] == OUTPUTS_DIR
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.minio.svc:9000"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # a reference, never a value
        assert env[key] == {"name": key, "valueFrom": {"secretKeyRef": {"name": "minio-credentials", "key": key}}}
    assert {"name": "spec", "mountPath": SPEC_MOUNT_DIR, "readOnly": True} in c["volumeMounts"]
    assert templates["train-logreg"]["outputs"]["parameters"] == [
        {"name": "run_id", "valueFrom": {"path": f"{OUTPUTS_DIR}/run_id"}}]
    assert templates["train-logreg"]["retryStrategy"]["limit"] == "2"
    assert "retryStrategy" not in templates["validate-data"]  # retries=0 in the plan: a failed check is final
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert c["resources"]["limits"] == {"memory": "2Gi"}
    assert wt["metadata"]["labels"]["mlc.dev/project"] == "churn"
    assert spec["podMetadata"]["labels"] == wt["metadata"]["labels"]
    exit_task = templates["exit-handler"]["dag"]["tasks"][0]
    assert exit_task["when"] == "{{workflow.status}} != Succeeded"


def test_local_env_mounts_the_artifact_claim_at_the_storage_root() -> None:
    p = plan("churn", "local")
    wt = argo.build(p)[0].obj
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": p.storage.volume_claim}} in wt["spec"]["volumes"]
    mounts = wt["spec"]["templates"][1]["container"]["volumeMounts"]
    assert {"name": "artifacts", "mountPath": p.storage.root} in mounts
    env = {e["name"] for e in wt["spec"]["templates"][1]["container"]["env"]}
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "MLFLOW_TRACKING_URI"}


def test_manual_approval_suspends_before_register_and_gpu_is_requested_and_limited() -> None:
    import dataclasses

    from mlc.plan import StepResources

    p = plan("churn", "prod")
    train = p.pipelines[0]
    steps = tuple(dataclasses.replace(s, resources=StepResources("2", "4Gi", 1)) if s.name == "train-tabular-mlp"
                  else s for s in train.steps)
    p = dataclasses.replace(p, manual_approval=True,
                            pipelines=(dataclasses.replace(train, steps=steps), *p.pipelines[1:]))
    wt = argo.build(p)[0].obj
    templates = {t["name"]: t for t in wt["spec"]["templates"]}
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    assert templates["approve"] == {"name": "approve", "suspend": {}}
    assert tasks["approve"]["dependencies"] == ["gate"] and tasks["register"]["dependencies"] == ["approve"]
    res = templates["train-tabular-mlp"]["container"]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == "1" and res["limits"]["nvidia.com/gpu"] == "1"
    assert not list(validator("4", "WorkflowTemplate").iter_errors(wt))


def test_keyed_and_whole_secrets_are_references() -> None:

    p = with_secrets(plan("delivery-eta", "prod"), (("api", "token-v2"), ("db", None)))
    c = argo.build(p)[0].obj["spec"]["templates"][1]["container"]
    env = {e["name"]: e for e in c["env"]}
    assert env["TOKEN_V2"]["valueFrom"]["secretKeyRef"] == {"name": "api", "key": "token-v2"}
    assert c["envFrom"] == [{"secretRef": {"name": "db"}}]


def test_the_rollout_template_steps_weights_analyses_pauses_then_promotes() -> None:
    p = plan("churn", "prod", "4")
    (out,) = argo_rollout.build(p)
    wt = out.obj
    assert out.path == "argo/workflowtemplate-churn-rollout.yaml" and wt["metadata"]["name"] == "churn-rollout"
    spec = wt["spec"]
    assert [x["name"] for x in spec["arguments"]["parameters"]] == ["version", "stable"]
    tasks = {t["name"]: t.get("dependencies", []) for t in spec["templates"][0]["dag"]["tasks"]}
    assert tasks == {"set-weight-10": [], "analyze-10": ["set-weight-10"], "pause-10": ["analyze-10"],
                     "set-weight-50": ["pause-10"], "analyze-50": ["set-weight-50"], "pause-50": ["analyze-50"],
                     "promote": ["pause-50"]}
    t = {x["name"]: x for x in spec["templates"]}
    res = t["set-weight-50"]["resource"]
    assert (res["action"], res["mergeStrategy"]) == ("patch", "merge")
    import yaml

    assert yaml.safe_load(res["manifest"])["spec"] == {"predictor": {"canaryTrafficPercent": 50}}
    assert t["pause-10"]["suspend"] == {"duration": "10m"} and t["pause-50"]["suspend"] == {"duration": "30m"}
    c = t["analyze-10"]["container"]
    assert c["command"][:3] == ["mlc", "step", "analyze-10"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MLC_ROLLOUT_VERSION"] == "{{workflow.parameters.version}}"
    assert env["MLC_ROLLOUT_STABLE"] == "{{workflow.parameters.stable}}"
    assert spec["onExit"] == "exit-handler" and spec["serviceAccountName"] == p.service_account
    assert wt["spec"]["workflowMetadata"]["labels"][argo_rollout.ROLLOUT_LABEL] == "churn"
    assert argo_rollout.build(plan("delivery-eta", "prod", "4")) == []  # no canary: no rollout
