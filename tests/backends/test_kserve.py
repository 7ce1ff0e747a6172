"""The InferenceService: valid against KServe's CRD (strict on unknown fields) and derived from the spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from crdschema import crd_validator, errors
from planhelpers import EXAMPLE_ENVS, example_plan, with_secrets

from mlc.backends import core, kserve
from mlc.plan import SPEC_MOUNT, SPEC_MOUNT_DIR

REPO = Path(__file__).resolve().parents[2]
CRD = "kserve-inferenceservices.crd.json"
CASES = EXAMPLE_ENVS
plan = example_plan


def isvc(p) -> dict:
    (out,) = kserve.build(p)
    assert out.resource and out.path == f"kserve/inferenceservice-{p.endpoint.name}.yaml"
    return out.obj


def with_runtime(p, runtime: str):
    return dataclasses.replace(p, endpoint=dataclasses.replace(p.endpoint, runtime=runtime))


@pytest.mark.parametrize("name,env", CASES)
@pytest.mark.parametrize("runtime", ["mlc", "mlflow", "sklearn"])
def test_validates_against_the_crd_strictly(name: str, env: str, runtime: str) -> None:
    obj = isvc(with_runtime(plan(name, env), runtime))
    assert errors(crd_validator(CRD), obj) == []


def test_the_validator_is_strict_about_unknown_fields_and_types() -> None:
    obj = isvc(plan("churn", "prod"))
    obj["spec"]["predictor"]["canaryTrafficPercentage"] = 10
    container = obj["spec"]["predictor"]["containers"][0]
    container["readinessProbe"]["httpGet"]["port"] = "http"  # int-or-string: fine
    container["ports"][0]["containerPort"] = "8080"
    obj["metadata"]["annotation"] = {}
    found = errors(crd_validator(CRD), obj)
    assert any("canaryTrafficPercentage" in e for e in found), found
    assert any(e.startswith("spec.predictor.containers.0.ports.0.containerPort") for e in found), found
    assert any("annotation" in e and e.startswith("metadata") for e in found), found
    assert not any("httpGet" in e for e in found), found
    assert len(found) == 3


def test_canary_replicas_scaling_and_mode_come_from_the_spec() -> None:
    churn = isvc(plan("churn", "prod"))
    pred = churn["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred  # the rollout sets it at run time; compiled: all traffic to one
    scaling = (pred["minReplicas"], pred["maxReplicas"], pred["scaleMetric"], pred["scaleTarget"])
    assert scaling == (1, 5, "rps", 50)
    assert pred["timeout"] == 10 and pred["serviceAccountName"] == "churn-pipeline"
    assert churn["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"

    eta = isvc(plan("delivery-eta", "prod"))
    pred = eta["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred  # no canary in the spec
    scaling = (pred["minReplicas"], pred["maxReplicas"], pred["scaleMetric"], pred["scaleTarget"])
    assert scaling == (2, 10, "cpu", 70)
    assert pred["timeout"] == 60 and pred["serviceAccountName"] == "eta-pipeline"
    assert eta["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert eta["metadata"]["namespace"] == "logistics-ml"


@pytest.mark.parametrize("runtime", ["mlc", "mlflow"])
def test_the_pinned_predictor_patch_serves_one_version_and_stays_valid(runtime: str) -> None:
    """What the deploy step and the rollout merge-patch onto the live object: applied to the compiled
    InferenceService (a merge patch replaces lists), the result still validates against KServe's CRD."""
    p = with_runtime(plan("churn", "prod"), runtime)
    patch = kserve.pinned_predictor(p, "7", "canary", 10)
    obj = isvc(p)
    merged = _merge_patch(obj, patch)
    assert errors(crd_validator(CRD), merged) == []
    pred = merged["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    assert merged["metadata"]["annotations"][kserve.VERSION_ANNOTATION] == "7"
    if runtime == "mlc":
        (c,) = pred["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env[kserve.MODEL_VERSION_ENV] == "7" and env[kserve.ROLE_ENV] == "canary"
        compiled = obj["spec"]["predictor"]["containers"][0]
        assert {k: v for k, v in c.items() if k != "env"} == {k: v for k, v in compiled.items() if k != "env"}
    else:
        assert pred["model"]["storageUri"] == "s3://ml-prod/churn/models/churn-classifier/v7"
    promoted = _merge_patch(merged, kserve.pinned_predictor(p, "7", "stable", None))
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]  # null removes the field


def _merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_patch(out[k], v)
        else:
            out[k] = v
    return out


def test_the_custom_predictor_runs_mlc_serve_with_the_spec_probes_and_metrics() -> None:
    p = plan("churn", "staging")
    obj = isvc(p)
    pred = obj["spec"]["predictor"]
    (c,) = pred["containers"]
    assert c["name"] == "kserve-container" and c["image"] == "ghcr.io/acme/mlc-runtime:0.1.0"
    assert c["command"][:3] == ["mlc", "serve", SPEC_MOUNT]
    assert c["command"] == p.endpoint.serve_command("staging")
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    size = {"cpu": "500m", "memory": "1Gi"}
    assert c["resources"] == {"requests": size, "limits": size}
    # the spec arrives from the ConfigMap that the core backend generates
    assert {"name": "spec", "mountPath": SPEC_MOUNT_DIR, "readOnly": True} in c["volumeMounts"]
    cm = core.spec_configmap(p)["metadata"]["name"]
    assert {"name": "spec", "configMap": {"name": cm}} in pred["volumes"]
    assert pred["serviceAccountName"] == core.service_account(p)["metadata"]["name"]
    ann = obj["metadata"]["annotations"]
    assert ann["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert ann["prometheus.kserve.io/port"] == "8080" and ann["prometheus.kserve.io/path"] == "/metrics"
    assert obj["metadata"]["labels"] == p.labels


def test_credentials_are_secret_references_only() -> None:
    p = plan("churn", "staging")
    env = {e["name"]: e for e in isvc(p)["spec"]["predictor"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow.svc:5000"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.minio.svc:9000"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "minio-credentials", "key": key}}
    p2 = with_secrets(p, (("api-keys", "weather-token"), ("all-of-it", None)))
    c = isvc(p2)["spec"]["predictor"]["containers"][0]
    ref = {"secretKeyRef": {"name": "api-keys", "key": "weather-token"}}
    assert {"name": "WEATHER_TOKEN", "valueFrom": ref} in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "all-of-it"}}]
    assert errors(crd_validator(CRD), isvc(p2)) == []


def test_the_serve_command_parses_with_the_real_cli() -> None:
    from mlc.cli import cli

    p = plan("churn", "prod")
    args = p.endpoint.serve_command("prod")
    assert args[:2] == ["mlc", "serve"]
    serve = cli.commands["serve"]
    ctx = serve.make_context("serve", list(args[2:]))
    assert ctx.params["port"] == 8080 and ctx.params["alias"] == "champion"
    assert ctx.params["host"] == "0.0.0.0" and ctx.params["env"] == "prod"


def test_a_path_storage_root_mounts_the_artifacts_claim() -> None:
    p = plan("delivery-eta", "local")
    pred = isvc(p)["spec"]["predictor"]
    claim = {"claimName": p.storage.volume_claim}
    assert {"name": "artifacts", "persistentVolumeClaim": claim} in pred["volumes"]
    assert {"name": "artifacts", "mountPath": p.storage.root} in pred["containers"][0]["volumeMounts"]
    s3 = isvc(plan("delivery-eta", "prod"))["spec"]["predictor"]
    assert not any(v["name"] == "artifacts" for v in s3["volumes"])


@pytest.mark.parametrize("runtime", ["mlflow", "sklearn"])
def test_built_in_runtimes_read_the_exported_model(runtime: str) -> None:
    obj = isvc(with_runtime(plan("churn", "prod"), runtime))
    pred = obj["spec"]["predictor"]
    assert "containers" not in pred and "volumes" not in pred
    assert pred["model"] == {
        "modelFormat": {"name": runtime},
        "protocolVersion": "v2",
        "storageUri": "s3://ml-prod/churn/models/churn-classifier/champion",
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    }
    assert "prometheus.kserve.io/port" not in obj["metadata"]["annotations"]  # the runtime's default applies
    local = isvc(with_runtime(plan("churn", "local"), runtime))
    claim = plan("churn", "local").storage.volume_claim
    assert local["spec"]["predictor"]["model"]["storageUri"] == f"pvc://{claim}/models/churn-classifier/champion"


def test_gpu_is_requested_and_limited() -> None:
    p = plan("churn", "prod")
    p = dataclasses.replace(p, endpoint=dataclasses.replace(
        p.endpoint, resources=dataclasses.replace(p.endpoint.resources, gpu=1)))
    res = isvc(p)["spec"]["predictor"]["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"


def test_no_online_deployment_means_no_inference_service() -> None:
    assert kserve.build(dataclasses.replace(plan("churn", "prod"), endpoint=None)) == []
