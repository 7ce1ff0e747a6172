"""mlc plan / apply / delete / submit against a real kube-apiserver (tests/kubeenv) with the upstream CRDs of
Argo Workflows (3.7 and 4.x, one at a time), KServe and prometheus-operator, on the real compiled churn spec.

Tests that take the ``project`` fixture run once per Argo version, with the churn environment that targets it.
Without binaries (KUBEBUILDER_ASSETS, see docs/cluster.md) these tests skip and say why.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import Project, make_project
from kubeenv import CRDS, KubeEnv

from mlc.cluster.objects import HASH_ANNOTATION, content_hash

ARGO = "argoproj.io/v1alpha1"
OWNED_LABELS = ("app.kubernetes.io/managed-by", "mlc.dev/project", "mlc.dev/env")


def applied(capsys, p: Project) -> str:
    code, out, err = p.mlc(capsys, "apply", "--yes")
    assert code == 0, out + err
    return out


def owned(p: Project) -> dict[tuple[str, str], dict]:
    """Everything in the project's namespace (and the Namespace) that carries its ownership labels."""
    sel = f"app.kubernetes.io/managed-by=mlc,mlc.dev/env={p.env},mlc.dev/project=churn"
    out = {}
    for base, plural in [("/api/v1", "configmaps"), ("/api/v1", "serviceaccounts"), ("/api/v1", "secrets"),
                         ("/api/v1", "persistentvolumeclaims"), ("/apis/rbac.authorization.k8s.io/v1", "roles"),
                         ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"), (f"/apis/{ARGO}", "workflowtemplates"),
                         (f"/apis/{ARGO}", "cronworkflows"), ("/apis/serving.kserve.io/v1beta1", "inferenceservices"),
                         ("/apis/monitoring.coreos.com/v1", "prometheusrules")]:
        r = p.k.request("GET", f"{base}/namespaces/{p.ns}/{plural}", labelSelector=sel)
        if r.status_code == 404:  # a kind the server does not serve (a test removed its CRD)
            continue
        for i in r.json()["items"]:
            out[(plural, i["metadata"]["name"])] = i
    ns = p.k.request("GET", f"/api/v1/namespaces/{p.ns}")
    if ns.status_code == 200 and ns.json()["metadata"]["labels"].get("mlc.dev/env") == p.env:
        out[("namespaces", p.ns)] = ns.json()
    return out


def versions(p: Project) -> dict:
    return {k: v["metadata"]["resourceVersion"] for k, v in owned(p).items()}


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


# -- the main flow, for each Argo version -------------------------------------------------------------------
def test_plan_apply_reapply_plan_shows_no_changes(capsys, project):
    p = project
    code, out, err = p.mlc(capsys, "plan")
    assert code == 2, err
    assert f"+ create Namespace {p.ns}" in out
    assert f"+ create WorkflowTemplate {p.ns}/churn-train" in out
    assert f"+ create CronWorkflow {p.ns}/churn-batch" in out
    creates = out.count("+ create ")
    assert creates >= 10
    assert f"Plan: {creates} to add, 0 to change, 0 to delete." in out
    assert "note: namespace" in out  # the server cannot validate inside a namespace that does not exist
    assert owned(p) == {}  # a plan writes nothing: not even the Namespace

    out = applied(capsys, p)  # creates the missing namespace first, then validates, then writes the rest
    assert f"Apply complete: {creates} added, 0 changed, 0 deleted." in out
    lines = [line for line in out.splitlines() if line.startswith("applied ")]
    assert lines[0] == f"applied Namespace {p.ns}"
    cron = min(i for i, line in enumerate(lines) if "CronWorkflow" in line)
    assert max(i for i, line in enumerate(lines) if "WorkflowTemplate" in line) < cron
    stored = owned(p)
    assert len(stored) == creates
    for obj in stored.values():
        md = obj["metadata"]
        assert md["labels"]["mlc.dev/env"] == p.env and md["labels"]["app.kubernetes.io/managed-by"] == "mlc"
        assert [m["manager"] for m in md["managedFields"] if m["operation"] == "Apply"] == ["mlc"]
        assert len(md["annotations"][HASH_ANNOTATION]) == 64

    before = versions(p)
    out = applied(capsys, p)
    assert "No changes." in out
    assert versions(p) == before  # the real server kept every resourceVersion: nothing was rewritten

    code, out, _ = p.mlc(capsys, "plan")
    assert code == 0, out
    assert out.strip().endswith("Plan: 0 to add, 0 to change, 0 to delete.")
    assert "~ update" not in out and "+ create" not in out
    # the OpenAPI documents the preflight read are kept by their content hash, for the next command
    assert list((p.k.dir / "cache" / "mlc" / "openapi").glob("*.json"))


def test_the_content_hash_is_that_of_what_mlc_sent(capsys, project):
    """The annotation is computed before the server adds defaults: it matches the compiled object."""
    from mlc.emit import build
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    applied(capsys, project)
    sf = load_spec(project.dir)
    objs = {(o.obj["kind"], o.obj["metadata"]["name"]): o.obj for o in build(lower(sf.spec, sf.text, project.env))
            if o.resource and o.obj and o.obj["kind"] == "ConfigMap"}
    live = project.get("configmaps", "churn-spec")
    want = json.loads(json.dumps(objs[("ConfigMap", "churn-spec")]))
    want["metadata"]["namespace"] = project.ns
    want["metadata"]["annotations"] = {**want["metadata"].get("annotations", {}),
                                       HASH_ANNOTATION: live["metadata"]["annotations"][HASH_ANNOTATION]}
    assert live["metadata"]["annotations"][HASH_ANNOTATION] == content_hash(want)


def test_a_spec_change_is_exactly_one_update_with_its_field_diff(capsys, project):
    p = project
    applied(capsys, p)
    p.edit("- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    code, out, err = p.mlc(capsys, "plan")
    assert code == 2, err
    assert out.count("~ update ") == 1, out
    assert f"~ update ConfigMap {p.ns}/churn-spec" in out
    assert "-    - {metric: roc_auc, min: 0.80}" in out and "+    - {metric: roc_auc, min: 0.85}" in out
    assert f"~ metadata.annotations.{HASH_ANNOTATION}:" in out
    assert "Plan: 0 to add, 1 to change, 0 to delete." in out
    assert "resourceVersion" not in out and "managedFields" not in out

    before = versions(p)
    applied(capsys, p)
    after = versions(p)
    assert [k for k in after if after[k] != before[k]] == [("configmaps", "churn-spec")]
    assert "min: 0.85" in p.get("configmaps", "churn-spec")["data"]["mlproject.yaml"]
    assert p.mlc(capsys, "plan")[0] == 0


def test_prune_deletes_only_the_dropped_owned_object(capsys, project, gc):
    p = project
    applied(capsys, p)
    cw = p.get("cronworkflows", "churn-retrain", ARGO)
    assert cw is not None
    spec = {k: v for k, v in cw["spec"].items()}
    for name, labels in [("churn-retrain-manual", {}),  # no labels: somebody else's
                         ("churn-retrain-other", {"app.kubernetes.io/managed-by": "mlc", "mlc.dev/project": "churn",
                                                  "mlc.dev/env": "other"})]:  # mlc's, another environment
        r = p.k.request("POST", f"/apis/{ARGO}/namespaces/{p.ns}/cronworkflows",
                        {"apiVersion": ARGO, "kind": "CronWorkflow", "metadata": {"name": name, "labels": labels},
                         "spec": spec}, fieldManager="kubectl-create")
        assert r.status_code == 201, r.text

    p.edit('    schedule: "0 4 1 * *"\n', "")  # no scheduled retraining any more: churn-retrain goes
    code, out, err = p.mlc(capsys, "plan")
    assert code == 2, err
    assert out.count("- delete ") == 1
    assert f"- delete CronWorkflow {p.ns}/churn-retrain" in out
    assert "churn-retrain-manual" not in out and "churn-retrain-other" not in out

    applied(capsys, p)  # without --prune nothing is deleted
    assert "churn-retrain" in p.names("cronworkflows", ARGO)

    code, out, err = p.mlc(capsys, "apply", "--prune", "--yes")
    assert code == 0, err
    assert f"deleted CronWorkflow {p.ns}/churn-retrain" in out
    left = p.names("cronworkflows", ARGO)
    assert "churn-retrain" not in left
    assert {"churn-retrain-manual", "churn-retrain-other", "churn-batch", "churn-monitor"} <= left
    assert p.mlc(capsys, "plan")[0] == 0


def test_deleting_an_endpoint_needs_the_flag(capsys, project, gc):
    p = project
    applied(capsys, p)
    text = (p.dir / "mlproject.yaml").read_text()
    start = text.index("  online:\n")
    end = text.index("  batch:\n", start)
    (p.dir / "mlproject.yaml").write_text(text[:start] + text[end:])  # no online serving any more

    code, out, _ = p.mlc(capsys, "plan")
    assert code == 2
    assert f"- delete InferenceService {p.ns}/churn (protected: needs --allow-delete-endpoints)" in out

    before = versions(p)
    code, out, err = p.mlc(capsys, "apply", "--prune", "--yes")
    assert code == 1
    assert f"refusing to delete protected objects (InferenceService {p.ns}/churn)" in one_line(err)
    assert versions(p) == before

    code, out, err = p.mlc(capsys, "apply", "--prune", "--yes", "--allow-delete-endpoints")
    assert code == 0, err
    assert "churn" not in p.names("inferenceservices", "serving.kserve.io/v1beta1")


def test_a_field_manager_conflict_is_reported_and_forced_only_on_request(capsys, project):
    p = project
    applied(capsys, p)
    path = f"/apis/{ARGO}/namespaces/{p.ns}/cronworkflows/churn-batch"
    suspended = p.get("cronworkflows", "churn-batch", ARGO)["spec"].get("suspend", False)
    r = p.k.request("PATCH", path, {"spec": {"suspend": not suspended}}, "application/merge-patch+json",
                    fieldManager="kubectl-edit")  # what `kubectl edit` does
    assert r.status_code == 200, r.text

    code, out, _ = p.mlc(capsys, "plan")
    assert code == 2
    assert f"~ update CronWorkflow {p.ns}/churn-batch" in out
    assert f"~ spec.suspend: {json.dumps(not suspended)} -> {json.dumps(suspended)}" in out
    assert '! conflict .spec.suspend: conflict with "kubectl-edit"' in out

    before = versions(p)
    code, out, err = p.mlc(capsys, "apply", "--yes")
    assert code == 1
    assert "owned by another field manager" in err
    assert f'CronWorkflow {p.ns}/churn-batch: .spec.suspend (conflict with "kubectl-edit"' in err
    assert "--force-conflicts" in err and "Traceback" not in err
    assert versions(p) == before

    code, out, err = p.mlc(capsys, "apply", "--yes", "--force-conflicts")
    assert code == 0, err
    cw = p.get("cronworkflows", "churn-batch", ARGO)
    assert cw["spec"].get("suspend", False) is suspended
    edit = [m for m in cw["metadata"]["managedFields"] if m["manager"] == "kubectl-edit"]
    assert not edit or "f:suspend" not in json.dumps(edit)  # the field moved to mlc
    assert p.mlc(capsys, "plan")[0] == 0


def test_delete_waits_until_everything_is_gone(capsys, project, gc):
    p = project
    applied(capsys, p)
    stranger = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn-spec-backup"}, "data": {"a": "b"}}
    assert p.k.request("POST", f"/api/v1/namespaces/{p.ns}/configmaps", stranger).status_code == 201
    mine = set(owned(p))

    code, out, err = p.mlc(capsys, "delete")
    assert code == 1 and "pass --yes" in err
    assert set(owned(p)) == mine

    code, out, err = p.mlc(capsys, "delete", "--yes")
    assert code == 0, out + err
    assert set(owned(p)) == {("namespaces", p.ns), ("inferenceservices", "churn")}  # protected: kept
    assert f"keep InferenceService {p.ns}/churn (protected" in out and f"keep Namespace {p.ns} (protected" in out
    assert "waiting up to 2m0s for" in out
    assert out.count("deleted ") == len(mine) - 2
    assert "Deleted" in out.splitlines()[-1]
    assert p.get("configmaps", "churn-spec-backup") is not None  # not ours: never touched

    code, out, err = p.mlc(capsys, "delete", "--yes", "--allow-delete-endpoints")
    assert code == 0, out + err
    assert f"deleted Namespace {p.ns}" in out
    assert p.k.request("GET", f"/api/v1/namespaces/{p.ns}").status_code == 404  # gone, not terminating


def test_submit_creates_a_workflow_that_references_the_template(capsys, project):
    p = project
    code, out, err = p.mlc(capsys, "submit")
    assert code == 1 and f"WorkflowTemplate {p.ns}/churn-train is not on the cluster" in one_line(err)
    applied(capsys, p)

    code, out, err = p.mlc(capsys, "submit")
    assert code == 0, err
    name = out.strip()
    assert name.startswith("churn-train-") and len(name) == len("churn-train-") + 5  # the server's generateName
    wf = p.get("workflows", name, ARGO)
    assert wf is not None and wf["metadata"]["uid"]
    assert wf["spec"]["workflowTemplateRef"] == {"name": "churn-train"}
    assert wf["metadata"]["labels"] == {"mlc.dev/project": "churn", "mlc.dev/env": p.env}
    assert p.get("workflowtemplates", "churn-train", ARGO) is not None

    code, out, err = p.mlc(capsys, "submit", "--pipeline", "monitor")
    assert code == 0, err
    assert p.get("workflows", out.strip(), ARGO)["spec"]["workflowTemplateRef"] == {"name": "churn-monitor"}


# -- finding 1: the cluster's CRDs are for another Argo major version -----------------------------------------
def test_another_argo_major_version_is_named_before_anything_is_sent(capsys, kube_server, argo, tmp_path):
    other_env = {"4": "staging", "3.7": "prod"}[argo]  # the environment that targets the other version
    p = make_project(kube_server, tmp_path, other_env)
    code, out, err = p.mlc(capsys, "apply", "--yes")
    if argo == "4":  # 3.7-style CronWorkflows (spec.schedule) do not fit the 4.x CRDs
        assert code == 1
        assert one_line(err) == ("error: cluster has Argo Workflows 4.x CRDs; environment staging targets 3.7: "
                                 "set `argo_version: 4` (or install the 3.7 CRDs)")
        assert owned(p) == {}  # nothing was sent: not even the Namespace
        code, _, err = p.mlc(capsys, "plan")
        assert code == 1 and "cluster has Argo Workflows 4.x CRDs" in err
    else:  # objects compiled for 4 fit the 3.7 CRDs (3.6+ reads spec.schedules): say so, do not block
        assert code == 0, err
        assert ("note: cluster has Argo Workflows 3.x CRDs; environment prod targets 4: every object fits these "
                "CRDs") in out
        assert p.get("cronworkflows", "churn-batch", ARGO)["spec"]["schedules"]


def test_a_kserve_field_the_crd_lacks_is_named_before_anything_is_sent(capsys, staging, monkeypatch):
    from mlc import emit

    real = emit.build

    def build(plan):
        outs = real(plan)
        for o in outs:
            if o.obj and o.obj.get("kind") == "InferenceService":
                o.obj["spec"]["predictor"]["minReplicaz"] = 1  # what an older KServe CRD would lack
        return outs

    monkeypatch.setattr(emit, "build", build)
    code, _, err = staging.mlc(capsys, "apply", "--yes")
    assert code == 1
    line = one_line(err)
    assert f"InferenceService {staging.ns}/churn: the InferenceService CRD on this cluster does not declare " \
           ".spec.predictor.minReplicaz" in line
    assert "KServe" in line and "kserve-crd" in line
    assert owned(staging) == {}


def test_strict_field_validation_names_the_object_and_the_field(capsys, staging, monkeypatch):
    """Built-in kinds are not checked in preflight: the real server's strict validation answers, before any
    write of the objects inside the namespace."""
    from mlc import emit

    real = emit.build

    def build(plan):
        outs = real(plan)
        for o in outs:
            if o.obj and o.obj.get("kind") == "ConfigMap" and o.obj["metadata"]["name"] == "churn-spec":
                o.obj["datax"] = {"a": "b"}
        return outs

    monkeypatch.setattr(emit, "build", build)
    assert staging.k.request("POST", "/api/v1/namespaces", {"metadata": {"name": staging.ns}}).status_code == 201
    code, _, err = staging.mlc(capsys, "apply", "--yes")
    assert code == 1
    line = one_line(err)
    assert f"ConfigMap {staging.ns}/churn-spec" in line and ".datax: field not declared in schema" in line
    assert "strict field validation" in line
    assert owned(staging) == {}


def test_a_missing_crd_is_found_by_discovery_before_any_write(capsys, staging):
    k: KubeEnv = staging.k
    k.uninstall(["prometheusrules.monitoring.coreos.com"])
    try:
        code, _, err = staging.mlc(capsys, "apply", "--yes")
        assert code == 1
        assert "the cluster lacks resources this project needs; nothing was changed" in err
        assert "prometheus-operator (monitoring.coreos.com/v1) is not installed" in err
        assert "prometheus-operator/releases/download/v0.93.0/bundle.yaml" in err and "Traceback" not in err
        assert owned(staging) == {}
    finally:
        k.install([CRDS / "prometheus-operator"])


def test_install_hints_name_each_group():
    from mlc.cluster.objects import install_hint

    assert "argo-workflows/releases/download/v3.7.18/install.yaml" in install_hint(ARGO, "3.7")
    assert "argo-workflows/releases/download/v4.1.2/install.yaml" in install_hint(ARGO, "4")
    assert "kserve-crd" in install_hint("serving.kserve.io/v1beta1", "3.7")


# -- RBAC, credentials, namespaces ----------------------------------------------------------------------------
def test_a_role_lacking_a_verb_is_forbidden_naming_verb_and_resource(capsys, staging, tmp_path):
    p = staging
    applied(capsys, p)
    kinds = ["configmaps", "serviceaccounts", "secrets", "persistentvolumeclaims", "roles", "rolebindings",
             "workflowtemplates", "cronworkflows", "inferenceservices", "prometheusrules"]
    groups = ["", "rbac.authorization.k8s.io", "argoproj.io", "serving.kserve.io", "monitoring.coreos.com"]

    def role(verbs_for_configmaps: list[str]) -> dict:
        return {"metadata": {"name": "deployer"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs_for_configmaps},
            {"apiGroups": groups, "resources": kinds[1:], "verbs": ["get", "list", "patch"]}]}

    base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{p.ns}"
    assert p.k.request("POST", f"{base}/roles", role(["get", "list"])).status_code == 201  # no patch
    binding = {"metadata": {"name": "deployer"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
               "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}
    assert p.k.request("POST", f"{base}/rolebindings", binding).status_code == 201
    alice = str(p.k.kubeconfig(tmp_path / "alice", "alice"))
    # the first ConfigMap in apply order (name order): the dashboard's, before the spec's
    want = (f'forbidden (403): configmaps "churn-dashboard" is forbidden: User "alice" cannot patch resource '
            f'"configmaps" in API group "" in the namespace "{p.ns}"')
    code, out, err = p.mlc(capsys, "plan", kubeconfig=alice)  # a plan is a dry-run apply: it needs patch too
    assert code == 1
    assert want in one_line(err)

    p.edit("- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    before = versions(p)
    code, _, err = p.mlc(capsys, "apply", "--yes", kubeconfig=alice)
    assert code == 1
    assert want in one_line(err)
    assert versions(p) == before

    # with patch granted the same credentials work; the Namespace (cluster-scoped) they may not read is left alone
    r = p.k.request("PUT", f"{base}/roles/deployer", {**role(["get", "list", "patch"]), "apiVersion":
                                                     "rbac.authorization.k8s.io/v1", "kind": "Role"})
    assert r.status_code == 200, r.text
    code, out, err = p.mlc(capsys, "apply", "--yes", kubeconfig=alice)
    assert code == 0, out + err
    assert f"= keep Namespace {p.ns}: these credentials may not read it" in out
    assert f"applied ConfigMap {p.ns}/churn-spec" in out


def test_expired_credentials_are_one_line(capsys, staging):
    code, _, err = staging.mlc(capsys, "plan", "--context", "expired")
    assert code == 1
    assert "rejected the credentials (401 Unauthorized)" in one_line(err)


def test_a_namespace_made_by_somebody_else_is_never_adopted_or_deleted(capsys, staging, gc):
    p = staging
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": p.ns, "labels": {"team": "growth"}}}
    assert p.k.request("POST", "/api/v1/namespaces", ns).status_code == 201
    out = applied(capsys, p)
    assert f"= keep Namespace {p.ns}: exists and is not managed by this project" in out
    live = p.k.request("GET", f"/api/v1/namespaces/{p.ns}").json()
    assert live["metadata"]["labels"] == {"team": "growth", "kubernetes.io/metadata.name": p.ns}
    assert [m["manager"] for m in live["metadata"]["managedFields"]] != ["mlc"]
    assert p.mlc(capsys, "plan")[0] == 0

    code, out, err = p.mlc(capsys, "delete", "--yes", "--allow-delete-endpoints")
    assert code == 0, err
    assert set(owned(p)) == set()
    assert p.k.request("GET", f"/api/v1/namespaces/{p.ns}").status_code == 200


def test_dry_run_writes_nothing_even_for_a_new_namespace(capsys, staging):
    p = staging
    code, out, err = p.mlc(capsys, "apply", "--dry-run")
    assert code == 0, err
    creates = out.count("+ create ")
    assert f"note: namespace {p.ns} does not exist yet, so the server cannot validate the {creates - 1} objects" in out
    assert "Dry run: nothing was changed." in out
    assert p.k.request("GET", f"/api/v1/namespaces/{p.ns}").status_code == 404

    applied(capsys, p)
    p.edit("- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    before = versions(p)
    code, out, err = p.mlc(capsys, "apply", "--dry-run")
    assert code == 0, err
    assert "~ update ConfigMap" in out and "Dry run: nothing was changed." in out
    assert versions(p) == before


def test_no_terminal_and_no_yes_refuses(capsys, staging):
    code, _, err = staging.mlc(capsys, "apply")
    assert code == 1
    assert "stdin is not a terminal; pass --yes" in one_line(err)
    assert owned(staging) == {}


def test_a_terminal_prompt_that_is_declined_changes_nothing(capsys, staging, monkeypatch):
    import sys

    import click

    asked = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(click, "confirm", lambda q, default=False: asked.append(q) or False)
    code, _, err = staging.mlc(capsys, "apply")
    assert code == 1
    assert asked == [f"Apply these changes to {staging.k.url}?"]
    assert "cancelled; nothing was changed" in err
    assert owned(staging) == {}


# -- finding 2: delete reports what is still terminating -----------------------------------------------------
def test_delete_names_what_is_still_terminating_and_why(capsys, staging, gc):
    p = staging
    applied(capsys, p)
    r = p.k.request("PATCH", f"/api/v1/namespaces/{p.ns}/configmaps/churn-spec",
                    {"metadata": {"finalizers": ["example.com/hold"]}}, "application/merge-patch+json")
    assert r.status_code == 200, r.text  # somebody's controller holds it
    try:
        # the timeout leaves the garbage collector time for the objects nobody holds, even on a loaded CI
        # machine (3 s was too short there once: a second object was still waiting for its foreground pass)
        t0 = time.monotonic()
        code, out, err = p.mlc(capsys, "delete", "--yes", "--timeout", "20s")
        assert code == 1, out + err
        assert time.monotonic() - t0 < 60
        lines = err.strip().splitlines()
        assert lines[0] == ("error: timed out after 20s waiting for 1 object(s) to be deleted; they are still "
                            "terminating:")
        assert lines[1].startswith(f"  ConfigMap {p.ns}/churn-spec: deletionTimestamp 20")
        assert "finalizers example.com/hold" in lines[1] and "foregroundDeletion" not in lines[1]
        assert "Traceback" not in err
        assert f"deleted WorkflowTemplate {p.ns}/churn-train" in out  # the rest did go

        # again: not deleted a second time, but waited for, as kubectl does
        code, out, err = p.mlc(capsys, "delete", "--yes", "--timeout", "1s")
        assert code == 1
        assert f"already terminating ConfigMap {p.ns}/churn-spec" in out and "- delete ConfigMap" not in out
        assert f"ConfigMap {p.ns}/churn-spec: deletionTimestamp" in err
        code, out, err = p.mlc(capsys, "delete", "--yes", "--wait=false")
        assert code == 0, err
    finally:
        p.k.request("PATCH", f"/api/v1/namespaces/{p.ns}/configmaps/churn-spec",
                    {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    code, out, err = p.mlc(capsys, "delete", "--yes")  # the finalizer gone, the wait ends
    assert code == 0, out + err
    assert p.get("configmaps", "churn-spec") is None


def test_delete_without_waiting_returns_once_the_deletions_are_accepted(capsys, staging):
    p = staging
    applied(capsys, p)
    code, out, err = p.mlc(capsys, "delete", "--yes", "--wait=false", "--allow-delete-endpoints")
    assert code == 0, err
    assert "not waiting (--wait=false)" in out
    assert "waiting up to" not in out
    assert f"deleting Namespace {p.ns}" in out


def test_a_bad_timeout_is_a_usage_error(capsys, staging):
    code, _, err = staging.mlc(capsys, "delete", "--yes", "--timeout", "soon")
    assert code == 2
    assert "invalid duration 'soon'" in err


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("15", 15)])
def test_durations_read_like_kubectl(text, seconds):
    from mlc.cluster.commands import parse_duration

    assert parse_duration(text) == seconds
