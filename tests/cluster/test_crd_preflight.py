"""The CRD-schema preflight on schemas a test server does not have installed: Argo's default "minimal" CRDs,
which preserve unknown fields, and a cluster whose OpenAPI the credentials may not read. (The full upstream
CRDs are checked against a real server in test_cluster.py.)"""

from __future__ import annotations

from pathlib import Path

from mlc.cluster import crds

SPEC = Path(__file__).resolve().parents[2] / "specs" / "churn"


def compiled(env: str):
    from mlc.emit import build
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(SPEC)
    plan = lower(sf.spec, sf.text, env)
    return plan, [o.obj for o in build(plan) if o.resource and o.obj is not None
                  and not o.obj["apiVersion"].startswith("kustomize.config.k8s.io")]


class Schemas:
    """Answers ``openapi_schemas`` like Kube does, from a dict per group version."""

    def __init__(self, by_gv: dict[str, dict | None]) -> None:
        self.by_gv = by_gv

    def openapi_schemas(self, gv: str):
        return self.by_gv.get(gv, {})


def minimal(kind: str) -> dict:
    """What Argo's install.yaml ships: the spec is not described at all."""
    return {"type": "object", "x-kubernetes-group-version-kind": [
        {"group": "argoproj.io", "version": "v1alpha1", "kind": kind}],
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}


def test_minimal_argo_crds_cannot_tell_the_version_and_do_not_block():
    plan, objs = compiled("staging")
    argo = {f"io.argoproj.v1alpha1.{k}": minimal(k) for k in ("CronWorkflow", "WorkflowTemplate", "Workflow")}
    found = crds.check(Schemas({"argoproj.io/v1alpha1": argo}), plan, objs)
    assert found.errors == []
    assert found.notes == [("the Argo Workflows CRDs on this cluster do not declare their fields "
                            "(x-kubernetes-preserve-unknown-fields), so mlc cannot tell which Argo version they "
                            "are for; environment staging targets 3.7")]


def test_unreadable_openapi_is_a_note_not_a_block():
    plan, objs = compiled("prod")
    found = crds.check(Schemas({"argoproj.io/v1alpha1": None, "serving.kserve.io/v1beta1": None,
                                "monitoring.coreos.com/v1": None}), plan, objs)
    assert found.errors == []
    assert len(found.notes) == 3 and all("cannot read the cluster's OpenAPI schema of" in n for n in found.notes)


def test_a_preserved_subtree_is_not_reported_but_a_declared_one_is():
    plan, objs = compiled("staging")
    rule = {"type": "object", "x-kubernetes-group-version-kind": [
        {"group": "monitoring.coreos.com", "version": "v1", "kind": "PrometheusRule"}],
        "properties": {"spec": {"type": "object", "properties": {"groups": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}}}}}}}}
    found = crds.check(Schemas({"monitoring.coreos.com/v1": {"r": rule}}), plan, objs)
    assert len(found.errors) == 1
    assert "PrometheusRule" in found.errors[0] and ".spec.groups[0].rules" in found.errors[0]
    rule["properties"]["spec"]["properties"]["groups"]["items"]["x-kubernetes-preserve-unknown-fields"] = True
    assert crds.check(Schemas({"monitoring.coreos.com/v1": {"r": rule}}), plan, objs).errors == []
