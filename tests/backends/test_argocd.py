"""The Argo CD Application: valid against Argo CD's own CRD (strict), opt-in per environment, pointing at the
environment's generated directory, ignoring exactly the live fields the deploy step and the rollout patch, and
never inside the kustomization it syncs."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml
from crdschema import crd_validator, errors
from planhelpers import example_plan

from mlc import emit
from mlc.backends import argocd, kserve
from mlc.plan import lower
from mlc.spec.validate import load_spec

REPO = Path(__file__).resolve().parents[2]
CRD = "argo-cd-applications.crd.json"


def app(p) -> dict:
    (out,) = argocd.build(p)
    assert not out.resource, "the Application must not be listed in the kustomization it points at"
    assert out.path == f"argocd/application-{p.argocd.name}.yaml"
    return out.obj


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_validates_against_the_application_crd_strictly(env: str) -> None:
    assert errors(crd_validator(CRD), app(example_plan("churn", env))) == []


def test_the_validator_is_strict() -> None:
    obj = app(example_plan("churn", "prod"))
    obj["spec"]["syncPolicy"]["automated"]["selfheal"] = True  # misspelt: selfHeal
    obj["spec"]["syncPolicy"]["retry"]["limit"] = "five"
    assert errors(crd_validator(CRD), obj) == [
        "spec.syncPolicy.automated: Additional properties are not allowed ('selfheal' was unexpected)",
        "spec.syncPolicy.retry.limit: 'five' is not of type 'integer'",
    ]


def test_opt_in_per_environment() -> None:
    assert example_plan("churn", "local").argocd is None
    assert argocd.build(example_plan("delivery-eta", "prod")) == []
    assert example_plan("churn", "staging").argocd is not None


def test_points_at_the_environments_generated_directory_with_the_sync_options() -> None:
    p = example_plan("churn", "prod")
    obj = app(p)
    assert obj["metadata"] == {"name": "churn-prod", "namespace": "argocd", "labels": p.labels, "annotations": {
        "notifications.argoproj.io/subscribe.on-sync-failed.slack": "growth-ml-alerts"}}
    assert obj["spec"]["source"] == {"repoURL": "https://github.com/acme/ml-platform.git",
                                     "targetRevision": "release", "path": "generated/churn/prod"}
    assert obj["spec"]["project"] == "ml-prod"
    assert obj["spec"]["destination"] == {"namespace": "churn", "server": "https://kubernetes.default.svc"}
    sync = obj["spec"]["syncPolicy"]
    assert "ServerSideApply=true" in sync["syncOptions"] and "RespectIgnoreDifferences=true" in sync["syncOptions"]
    assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert "finalizers" not in obj["metadata"]  # deleting the Application does not take the endpoint down


def test_ignore_differences_are_exactly_the_live_fields_of_the_inference_service() -> None:
    p = example_plan("churn", "prod")
    (ignored,) = app(p)["spec"]["ignoreDifferences"]
    assert ignored == {"group": "serving.kserve.io", "kind": "InferenceService", "name": p.endpoint.name,
                       "namespace": p.namespace, "jsonPointers": list(kserve.LIVE_JSON_POINTERS),
                       "jqPathExpressions": list(kserve.LIVE_JQ_PATHS)}
    isvc = kserve.build(p)[0].obj
    assert isvc["apiVersion"].split("/")[0] == ignored["group"] and isvc["kind"] == ignored["kind"]
    assert isvc["metadata"]["name"] == ignored["name"] and isvc["metadata"]["namespace"] == ignored["namespace"]


def test_jq_paths_select_the_live_env_vars_with_real_jq() -> None:
    """Argo CD evaluates jqPathExpressions with gojq; jq is the same language for these paths."""
    import shutil

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (apt-get install jq)")
    isvc = kserve.build(example_plan("churn", "prod"))[0].obj
    container = isvc["spec"]["predictor"]["containers"][0]
    container.setdefault("env", []).extend([{"name": kserve.MODEL_VERSION_ENV, "value": "7"},
                                            {"name": kserve.ROLE_ENV, "value": "stable"}])
    import json

    for expr in kserve.LIVE_JQ_PATHS:
        got = subprocess.run([jq, "-c", expr], input=json.dumps(isvc), capture_output=True, text=True, check=True)
        names = sorted(json.loads(line)["name"] for line in got.stdout.splitlines())
        assert names == sorted([kserve.MODEL_VERSION_ENV, kserve.ROLE_ENV])


def test_options_reach_the_application(tmp_path: Path) -> None:
    sf = load_spec(REPO / "specs" / "churn")
    text = sf.text.replace("      target_revision: main\n", "      target_revision: main\n"
                           "      destination: in-cluster-east\n      automated: false\n      cascade_delete: true\n"
                           "      path: deploy/generated/churn/staging\n      name: churn-stg\n      retry_limit: 2\n")
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "mlproject.yaml").write_text(text)
    sf2 = load_spec(tmp_path / "churn")
    obj = app(lower(sf2.spec, sf2.text, "staging", image="ghcr.io/acme/mlc-runtime:0.1.0"))
    assert errors(crd_validator(CRD), obj) == []
    assert obj["metadata"]["name"] == "churn-stg"
    assert obj["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert obj["spec"]["destination"] == {"namespace": "churn-staging", "name": "in-cluster-east"}
    assert "automated" not in obj["spec"]["syncPolicy"] and obj["spec"]["syncPolicy"]["retry"]["limit"] == 2
    assert obj["spec"]["source"]["path"] == "deploy/generated/churn/staging"


def test_no_endpoint_no_ignore_differences() -> None:
    p = example_plan("churn", "staging")
    obj = app(dataclasses.replace(p, argocd=dataclasses.replace(p.argocd, ignore=())))
    assert "ignoreDifferences" not in obj["spec"]


def test_emitted_beside_the_kustomization_not_in_it_and_covered_by_check() -> None:
    d = REPO / "generated" / "churn" / "prod"
    kust = yaml.safe_load((d / "kustomization.yaml").read_text())
    assert not any(r.startswith("argocd/") for r in kust["resources"])
    on_disk = (d / "argocd" / "application-churn-prod.yaml").read_bytes()
    files = emit.render(example_plan("churn", "prod"), "churn/mlproject.yaml")
    assert files["argocd/application-churn-prod.yaml"] == on_disk  # byte-stable, what --check compares


def test_kustomize_builds_without_the_application() -> None:
    import shutil

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(REPO / "generated" / "churn" / "prod")], capture_output=True,
                         text=True, check=True).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert "InferenceService" in kinds and "Application" not in kinds
