"""Core objects: what every pod stands on. Checked field by field against the kubernetes client's models
(no unknown or misspelt fields) and against what the other backends reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from planhelpers import EXAMPLE_ENVS, example_plan

from mlc.backends import core, kserve
from mlc.plan import SPEC_FILE

REPO = Path(__file__).resolve().parents[2]
CASES = EXAMPLE_ENVS
plan = example_plan


def objects(p) -> dict[str, dict]:
    return {o.obj["kind"]: o.obj for o in core.build(p)}


def _roundtrip(obj: dict) -> dict:
    """Through the kubernetes client's typed model and back: a field the model does not know disappears,
    a wrong type raises or changes shape."""
    from kubernetes.client import ApiClient

    api = ApiClient()

    class Resp:
        data = __import__("json").dumps(obj)

    model = api.deserialize(Resp(), "V1" + obj["kind"])
    return api.sanitize_for_serialization(model)


@pytest.mark.parametrize("name,env", CASES)
def test_objects_match_the_kubernetes_models_and_carry_the_plan_labels(name: str, env: str) -> None:
    p = plan(name, env)
    outs = core.build(p)
    assert len({o.path for o in outs}) == len(outs)
    for o in outs:
        assert o.resource and o.path.startswith("core/") and o.path.endswith(".yaml")
        assert _roundtrip(o.obj) == o.obj, o.path
        meta = o.obj["metadata"]
        assert meta["labels"] == p.labels
        if o.obj["kind"] != "Namespace":
            assert meta["namespace"] == p.namespace
    assert objects(p)["Namespace"]["metadata"]["name"] == p.namespace


def test_roundtrip_catches_a_misspelt_field() -> None:
    sa = core.service_account(plan("churn", "staging"))
    sa["secret"] = sa.pop("secrets")
    assert _roundtrip(sa) != sa


def test_the_configmap_carries_the_spec_text_verbatim() -> None:
    p = plan("churn", "prod")
    cm = objects(p)["ConfigMap"]
    assert cm["metadata"]["name"] == p.spec_configmap
    assert cm["data"] == {SPEC_FILE: (REPO / "specs" / "churn" / "mlproject.yaml").read_text()}
    assert cm["metadata"]["annotations"]["mlc.dev/spec-sha256"] == p.spec_hash
    # survives the trip through YAML byte for byte (comments and all)
    from mlc.emit import dump_yaml

    assert yaml.safe_load(dump_yaml(cm))["data"][SPEC_FILE] == p.spec_text


def test_rbac_gives_the_service_account_what_the_pipeline_needs_and_no_more() -> None:
    p = plan("churn", "prod")
    objs = objects(p)
    role, binding = objs["Role"], objs["RoleBinding"]
    grants = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
              for v in rule["verbs"]}
    assert ("serving.kserve.io", "inferenceservices", "patch") in grants
    assert ("serving.kserve.io", "inferenceservices", "get") in grants
    assert ("argoproj.io", "workflowtaskresults", "create") in grants
    assert ("argoproj.io", "workflowtaskresults", "patch") in grants
    assert not any(v in ("delete", "deletecollection", "*") for _, _, v in grants)
    assert not any(r in ("secrets", "*") for _, r, _ in grants)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "churn-pipeline", "namespace": "churn"}]
    # the account bound is the one the predictor runs as
    assert kserve.build(p)[0].obj["spec"]["predictor"]["serviceAccountName"] == "churn-pipeline"


def test_service_account_references_storage_credentials_the_kserve_way() -> None:
    staging = objects(plan("churn", "staging"))["ServiceAccount"]
    assert staging["secrets"] == [{"name": "minio-credentials"}]
    assert staging["metadata"]["annotations"] == {"serving.kserve.io/s3-endpoint": "minio.minio.svc:9000",
                                                  "serving.kserve.io/s3-usehttps": "0"}
    prod = objects(plan("churn", "prod"))["ServiceAccount"]
    assert prod["secrets"] == [{"name": "s3-credentials"}]
    assert "annotations" not in prod["metadata"]  # AWS S3: KServe's defaults
    local = objects(plan("churn", "local"))["ServiceAccount"]
    assert "secrets" not in local
    assert core.s3_annotations("https://s3.eu-west-1.amazonaws.com") == {
        "serving.kserve.io/s3-endpoint": "s3.eu-west-1.amazonaws.com", "serving.kserve.io/s3-usehttps": "1"}


def test_a_path_storage_root_gets_a_shared_claim_and_s3_does_not() -> None:
    p = plan("churn", "local")
    pvc = objects(p)["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == p.storage.volume_claim
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # train steps run in parallel on different nodes
    assert pvc["spec"]["resources"]["requests"]["storage"] == core.ARTIFACTS_SIZE
    assert "PersistentVolumeClaim" not in objects(plan("churn", "prod"))
    assert "PersistentVolumeClaim" not in objects(plan("delivery-eta", "prod"))


def test_no_object_holds_a_literal_credential() -> None:
    for name, env in CASES:
        text = yaml.safe_dump([o.obj for o in core.build(plan(name, env)) if o.obj["kind"] != "ConfigMap"])
        assert "AWS_SECRET_ACCESS_KEY" not in text and "stringData" not in text and "kind: Secret" not in text
