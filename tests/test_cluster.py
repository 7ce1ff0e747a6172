"""mlc plan / apply / delete / submit against an HTTP-level fake API server, with the real compiled churn spec.

The fake (tests/fakekube) speaks the documented REST protocol; every assertion here is about requests and
stored objects a real kube-apiserver would show the same way.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakekube import TOKEN, FakeKube  # noqa: E402

from mlc.cli import main  # noqa: E402
from mlc.cluster.objects import HASH_ANNOTATION, content_hash  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NS = "churn-staging"
OWNED = {"app.kubernetes.io/managed-by": "mlc", "mlc.dev/project": "churn", "mlc.dev/env": "staging"}


@pytest.fixture
def kube(tmp_path):
    with FakeKube() as k:
        k.kc = str(k.kubeconfig(tmp_path / "kubeconfig"))
        yield k


@pytest.fixture
def spec(tmp_path) -> Path:
    d = tmp_path / "churn"
    d.mkdir()
    shutil.copy(REPO / "specs" / "churn" / "mlproject.yaml", d / "mlproject.yaml")
    return d


def edit(spec: Path, old: str, new: str) -> None:
    f = spec / "mlproject.yaml"
    text = f.read_text()
    assert old in text, old
    f.write_text(text.replace(old, new, 1))


def mlc(capsys, kube: FakeKube, spec: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([args[0], str(spec), "--env", "staging", "--kubeconfig", kube.kc, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def raw(kube: FakeKube, method: str, path: str, body: dict | None = None, ctype: str = "application/json",
        **params: str) -> httpx.Response:
    """A request from somebody else (kubectl, a colleague), straight to the API."""
    return httpx.request(method, kube.url + path, params=params, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": ctype},
        content=json.dumps(body) if body is not None else None)


def versions(kube: FakeKube) -> dict:
    return {k: v["metadata"]["resourceVersion"] for k, v in kube.snapshot().items()}


def applied(capsys, kube, spec) -> None:
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 0, out + err


# ------------------------------------------------------------------------------------------------------------
def test_plan_apply_reapply_plan_shows_no_changes(capsys, kube, spec):
    code, out, err = mlc(capsys, kube, spec, "plan")
    assert code == 2, err
    assert f"+ create Namespace {NS}" in out
    assert f"+ create WorkflowTemplate {NS}/churn-train" in out
    creates = out.count("+ create ")
    assert f"Plan: {creates} to add, 0 to change, 0 to delete." in out
    assert kube.writes == [] or all(w[2].get("dryRun") == ["All"] for w in kube.writes)
    assert kube.snapshot() == {}

    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 0, err
    assert f"Apply complete: {creates} added, 0 changed, 0 deleted." in out
    stored = kube.snapshot()
    assert len(stored) == creates
    for obj in stored.values():  # every object carries the ownership labels and its content hash
        md = obj["metadata"]
        assert OWNED.items() <= md["labels"].items(), md["name"]
        desired = {k: v for k, v in obj.items() if k != "status"}
        desired["metadata"] = {k: v for k, v in md.items()
                               if k in ("name", "namespace", "labels", "annotations")}
        assert md["annotations"][HASH_ANNOTATION] == content_hash(desired)
    # the order that works: the Namespace first, custom resources after what they refer to
    applies = [w[1] for w in kube.writes if w[0] == "PATCH" and "dryRun" not in w[2]]
    assert applies[0] == f"/api/v1/namespaces/{NS}"
    cron = min(i for i, p in enumerate(applies) if "/cronworkflows/" in p)
    assert max(i for i, p in enumerate(applies) if "/workflowtemplates/" in p) < cron
    assert all(w[2]["fieldManager"] == ["mlc"] and w[2]["fieldValidation"] == ["Strict"]
               for w in kube.writes if w[0] == "PATCH")

    before = versions(kube)
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 0, err
    assert "No changes." in out
    assert versions(kube) == before  # nothing was rewritten: the server kept every resourceVersion

    code, out, _ = mlc(capsys, kube, spec, "plan")
    assert code == 0
    assert out.strip().endswith("Plan: 0 to add, 0 to change, 0 to delete.")
    assert "~ update" not in out and "+ create" not in out


def test_spec_change_shows_exactly_one_update_with_its_field_diff(capsys, kube, spec):
    applied(capsys, kube, spec)
    edit(spec, "- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")  # a stricter gate
    code, out, err = mlc(capsys, kube, spec, "plan")
    assert code == 2, err
    assert out.count("~ update ") == 1
    assert f"~ update ConfigMap {NS}/churn-spec" in out
    assert "~ data.mlproject.yaml:" in out
    assert "-    - {metric: roc_auc, min: 0.80}" in out and "+    - {metric: roc_auc, min: 0.85}" in out
    assert f"~ metadata.annotations.{HASH_ANNOTATION}:" in out  # the content hash moves with the content
    assert "Plan: 0 to add, 1 to change, 0 to delete." in out
    assert "resourceVersion" not in out and "managedFields" not in out  # server-populated fields are ignored

    before = versions(kube)
    applied(capsys, kube, spec)
    after = versions(kube)
    assert [k for k in after if after[k] != before[k]] == [("configmaps", NS, "churn-spec")]
    assert "min: 0.85" in kube.objects("configmaps", NS)["churn-spec"]["data"]["mlproject.yaml"]
    assert mlc(capsys, kube, spec, "plan")[0] == 0


def test_prune_deletes_only_the_dropped_owned_object(capsys, kube, spec):
    applied(capsys, kube, spec)
    # look-alikes nobody asked mlc to manage: no labels, and mlc's labels for another environment
    look_alike = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "churn-retrain-manual"},
                  "spec": {"schedule": "0 5 * * *", "workflowSpec": {"workflowTemplateRef": {"name": "churn-train"}}}}
    assert raw(kube, "POST", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/cronworkflows", look_alike,
               fieldManager="kubectl-create").status_code == 201
    other_env = json.loads(json.dumps(look_alike))
    other_env["metadata"] = {"name": "churn-retrain-prod", "labels": {**OWNED, "mlc.dev/env": "prod"}}
    assert raw(kube, "POST", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/cronworkflows", other_env,
               fieldManager="kubectl-create").status_code == 201

    edit(spec, '    schedule: "0 4 1 * *"\n', "")  # no scheduled retraining any more: churn-retrain goes
    code, out, err = mlc(capsys, kube, spec, "plan")
    assert code == 2, err
    assert out.count("- delete ") == 1
    assert f"- delete CronWorkflow {NS}/churn-retrain" in out
    assert "churn-retrain-manual" not in out and "churn-retrain-prod" not in out

    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")  # without --prune nothing is deleted
    assert code == 0, err
    assert "churn-retrain" in kube.objects("cronworkflows", NS)

    code, out, err = mlc(capsys, kube, spec, "apply", "--prune", "--yes")
    assert code == 0, err
    assert f"deleted CronWorkflow {NS}/churn-retrain" in out
    left = kube.objects("cronworkflows", NS)
    assert "churn-retrain" not in left
    assert {"churn-retrain-manual", "churn-retrain-prod", "churn-batch", "churn-monitor"} <= set(left)
    deletes = [w for w in kube.writes if w[0] == "DELETE"]
    assert [w[1] for w in deletes] == [f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/cronworkflows/churn-retrain"]
    assert deletes[0][2]["propagationPolicy"] in (["Foreground"], ["Background"])
    assert mlc(capsys, kube, spec, "plan")[0] == 0


def test_deleting_an_endpoint_needs_the_flag(capsys, kube, spec):
    applied(capsys, kube, spec)
    text = (spec / "mlproject.yaml").read_text()
    start = text.index("  online:\n")
    end = text.index("  batch:\n", start)
    (spec / "mlproject.yaml").write_text(text[:start] + text[end:])  # no online serving any more

    code, out, _ = mlc(capsys, kube, spec, "plan")
    assert code == 2
    assert f"- delete InferenceService {NS}/churn (protected: needs --allow-delete-endpoints)" in out

    n = len(kube.writes)
    before = kube.snapshot()
    code, out, err = mlc(capsys, kube, spec, "apply", "--prune", "--yes")
    assert code == 1
    assert "refusing to delete protected objects (InferenceService churn-staging/churn)" in err
    assert "--allow-delete-endpoints" in err and "Traceback" not in err
    assert kube.snapshot() == before
    assert all(w[2].get("dryRun") == ["All"] for w in kube.writes[n:])

    code, out, err = mlc(capsys, kube, spec, "apply", "--prune", "--yes", "--allow-delete-endpoints")
    assert code == 0, err
    assert "churn" not in kube.objects("inferenceservices", NS)


def test_field_manager_conflict_is_reported_and_forced_only_on_request(capsys, kube, spec):
    applied(capsys, kube, spec)
    # a colleague un-suspends the batch schedule by hand (kubectl edit is an Update by manager kubectl-edit)
    r = raw(kube, "PATCH", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/cronworkflows/churn-batch",
            {"spec": {"suspend": False}}, "application/merge-patch+json", fieldManager="kubectl-edit")
    assert r.status_code == 200, r.text

    code, out, _ = mlc(capsys, kube, spec, "plan")
    assert code == 2
    assert f"~ update CronWorkflow {NS}/churn-batch" in out
    assert "~ spec.suspend: false -> true" in out
    assert '! conflict .spec.suspend: conflict with "kubectl-edit"' in out

    n = len(kube.writes)
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 1
    assert "owned by another field manager" in err
    assert f'CronWorkflow {NS}/churn-batch: .spec.suspend (conflict with "kubectl-edit"' in err
    assert "--force-conflicts" in err and "Traceback" not in err
    assert kube.objects("cronworkflows", NS)["churn-batch"]["spec"]["suspend"] is False
    assert all(w[2].get("dryRun") == ["All"] for w in kube.writes[n:])  # nothing written before the refusal

    code, out, err = mlc(capsys, kube, spec, "apply", "--yes", "--force-conflicts")
    assert code == 0, err
    cw = raw(kube, "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/cronworkflows/churn-batch").json()
    assert cw["spec"]["suspend"] is True
    assert [m["manager"] for m in cw["metadata"]["managedFields"]] == ["mlc"]  # the field moved to mlc
    assert mlc(capsys, kube, spec, "plan")[0] == 0


@pytest.mark.parametrize("group,words", [
    ("monitoring.coreos.com/v1", ["prometheus-operator", "bundle.yaml"]),
    ("argoproj.io/v1alpha1", ["Argo Workflows", "argo-workflows/releases/download/v3.7.18/install.yaml"]),
    ("serving.kserve.io/v1beta1", ["KServe", "kserve-crd"]),
])
def test_missing_crd_is_found_before_any_write(capsys, kube, spec, group, words):
    kube.remove_group(group)
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 1
    assert "nothing was changed" in err and group in err
    assert all(w in err for w in words)
    assert "Traceback" not in err
    assert kube.writes == []
    assert kube.snapshot() == {}


def test_dry_run_writes_nothing_even_for_a_new_namespace(capsys, kube, spec):
    code, out, err = mlc(capsys, kube, spec, "apply", "--dry-run")
    assert code == 0, err
    assert f"+ create Namespace {NS}" in out
    assert f"+ create WorkflowTemplate {NS}/churn-train" in out
    creates = out.count("+ create ")
    assert f"note: namespace {NS} does not exist yet, so the server cannot validate the {creates - 1} objects" in out
    assert "Dry run: nothing was changed." in out
    assert kube.snapshot() == {}
    assert kube.writes and all(w[2].get("dryRun") == ["All"] for w in kube.writes)
    # only cluster-scoped objects were sent: a real server fails namespaced dry-runs in a missing namespace
    assert [w[1] for w in kube.writes] == [f"/api/v1/namespaces/{NS}"]

    applied(capsys, kube, spec)
    edit(spec, "- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    before, n = kube.snapshot(), len(kube.writes)
    code, out, err = mlc(capsys, kube, spec, "apply", "--dry-run")
    assert code == 0, err
    assert "~ update ConfigMap" in out and "Dry run: nothing was changed." in out
    assert kube.snapshot() == before
    assert all(w[2].get("dryRun") == ["All"] for w in kube.writes[n:])


def test_unknown_fields_are_rejected_by_the_server_before_any_write(capsys, kube, spec, monkeypatch):
    import mlc.emit as emit

    real = emit.build

    def build(plan):
        outs = real(plan)
        for o in outs:
            if o.obj and o.obj.get("kind") == "WorkflowTemplate":
                o.obj["spec"]["entrypointz"] = "main"
        return outs

    monkeypatch.setattr(emit, "build", build)
    r = raw(kube, "PATCH", f"/api/v1/namespaces/{NS}", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": NS}},
            "application/apply-patch+yaml", fieldManager="admin")
    assert r.status_code == 201 or r.status_code == 200
    before = kube.snapshot()
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 1
    assert ".spec.entrypointz: field not declared in schema" in err
    assert kube.snapshot() == before


def test_no_terminal_and_no_yes_refuses(capsys, kube, spec):
    code, out, err = mlc(capsys, kube, spec, "apply")
    assert code == 1
    assert "stdin is not a terminal; pass --yes" in err
    assert kube.snapshot() == {}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unreachable_cluster_is_one_line(capsys, kube, spec, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    kc = tmp_path / "dead"
    kc.write_text(Path(kube.kc).read_text().replace(kube.url, f"http://127.0.0.1:{port}"))
    kube.kc = str(kc)
    code, _, err = mlc(capsys, kube, spec, "plan")
    assert code == 1
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in _one_line(err)


def test_expired_credentials_are_one_line(capsys, kube, spec):
    code, _, err = mlc(capsys, kube, spec, "apply", "--yes", "--context", "expired")
    assert code == 1
    assert "rejected the credentials (401 Unauthorized)" in _one_line(err)
    assert kube.snapshot() == {}


def test_forbidden_is_one_line_and_nothing_is_written(capsys, kube, spec):
    applied(capsys, kube, spec)
    edit(spec, "- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    kube.forbid = lambda verb, plural, ns: verb == "patch" and plural == "configmaps"
    before = kube.snapshot()
    code, _, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 1
    line = _one_line(err)
    assert 'forbidden (403): configmaps "churn-spec" is forbidden: User "alice" cannot patch' in line
    assert kube.snapshot() == before


def test_missing_kubeconfig_is_one_line(capsys, kube, spec, tmp_path):
    kube.kc = str(tmp_path / "nope")
    code, _, err = mlc(capsys, kube, spec, "plan")
    assert code == 1
    assert "cannot load the Kubernetes config" in _one_line(err)


def test_delete_removes_what_the_project_owns(capsys, kube, spec):
    applied(capsys, kube, spec)
    mine = len(kube.snapshot())
    stranger = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn-spec-backup"},
                "data": {"a": "b"}}
    assert raw(kube, "POST", f"/api/v1/namespaces/{NS}/configmaps", stranger).status_code == 201

    code, out, err = mlc(capsys, kube, spec, "delete")
    assert code == 1 and "pass --yes" in err
    assert len(kube.snapshot()) == mine + 1

    code, out, err = mlc(capsys, kube, spec, "delete", "--yes")
    assert code == 0, err
    left = kube.snapshot()
    assert set(left) == {("namespaces", "", NS), ("inferenceservices", NS, "churn"),
                         ("configmaps", NS, "churn-spec-backup")}
    assert f"keep InferenceService {NS}/churn (protected" in out
    assert f"keep Namespace {NS} (protected" in out
    assert all(w[2]["propagationPolicy"] == ["Foreground"] for w in kube.writes if w[0] == "DELETE")

    code, out, err = mlc(capsys, kube, spec, "delete", "--yes", "--allow-delete-endpoints")
    assert code == 0, err
    assert kube.snapshot() == {}  # the Namespace went, and with it everything inside


def test_submit_starts_the_train_template_and_watches_it(capsys, kube, spec):
    code, out, err = mlc(capsys, kube, spec, "submit")
    assert code == 1 and "WorkflowTemplate churn-staging/churn-train is not on the cluster" in err
    applied(capsys, kube, spec)

    code, out, err = mlc(capsys, kube, spec, "submit")
    assert code == 0, err
    name = out.strip()
    assert name.startswith("churn-train-") and len(name) == len("churn-train-") + 5
    wf = kube.objects("workflows", NS)[name]
    assert wf["spec"] == {"workflowTemplateRef": {"name": "churn-train"}}
    assert wf["metadata"]["labels"] == {"mlc.dev/project": "churn", "mlc.dev/env": "staging"}

    kube.workflow_phases = ["Pending", "Running", "Running", "Succeeded"]
    code, out, err = mlc(capsys, kube, spec, "submit", "--watch", "--interval", "0.01")
    assert code == 0, err
    name = out.splitlines()[0]
    assert out.splitlines()[1:] == [f"{name}: Pending", f"{name}: Running", f"{name}: Succeeded"]

    kube.workflow_phases = ["Running", "Failed"]
    code, out, err = mlc(capsys, kube, spec, "submit", "--watch", "--interval", "0.01")
    assert code == 1
    assert out.splitlines()[-1].endswith(": Failed")


def test_a_namespace_made_by_somebody_else_is_never_adopted_or_deleted(capsys, kube, spec):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "growth"}}}
    assert raw(kube, "POST", "/api/v1/namespaces", ns).status_code == 201
    code, out, err = mlc(capsys, kube, spec, "apply", "--yes")
    assert code == 0, err
    assert f"= keep Namespace {NS}: exists and is not managed by this project" in out
    assert kube.objects("namespaces")[NS]["metadata"]["labels"] == {"team": "growth"}
    assert not [w for w in kube.writes if w[1] == f"/api/v1/namespaces/{NS}"]
    assert mlc(capsys, kube, spec, "plan")[0] == 0

    code, out, err = mlc(capsys, kube, spec, "delete", "--yes", "--allow-delete-endpoints")
    assert code == 0, err
    assert set(kube.snapshot()) == {("namespaces", "", NS)}


def test_compiled_objects_already_carry_the_ownership_labels():
    from mlc.emit import build
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(REPO / "specs" / "churn")
    for env in ("staging", "prod"):
        objs = [o.obj for o in build(lower(sf.spec, sf.text, env)) if o.resource and o.obj]
        assert objs
        for o in objs:
            labels = o["metadata"].get("labels", {})
            assert {**OWNED, "mlc.dev/env": env}.items() <= labels.items(), (o["kind"], o["metadata"]["name"])


def test_the_fake_rejects_unknown_fields_like_a_strict_server(kube):
    """Guards the fake itself: without loaded CRD schemas the strictness tests above would prove nothing."""
    raw(kube, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    isvc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "x", "namespace": NS},
            "spec": {"predictor": {"minReplicaz": 1, "containers": [{"name": "c", "image": "i"}]}}}
    path = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/x"
    r = raw(kube, "PATCH", path, isvc, "application/apply-patch+yaml", fieldManager="t", fieldValidation="Strict")
    assert r.status_code == 400 and ".spec.predictor.minReplicaz: field not declared in schema" in r.json()["message"]
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "fore": "5m"}]}]}}
    r = raw(kube, "PATCH", f"/apis/monitoring.coreos.com/v1/namespaces/{NS}/prometheusrules/r", rule,
            "application/apply-patch+yaml", fieldManager="t", fieldValidation="Strict")
    assert r.status_code == 400 and "rules[0].fore: field not declared in schema" in r.json()["message"]
    r = raw(kube, "PATCH", "/api/v1/namespaces/missing/configmaps/c",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, "application/apply-patch+yaml",
            fieldManager="t", dryRun="All")
    assert r.status_code == 404 and r.json()["message"] == 'namespaces "missing" not found'


def test_unknown_context_is_one_line(capsys, kube, spec):
    code, _, err = mlc(capsys, kube, spec, "plan", "--context", "nope")
    assert code == 1
    line = _one_line(err)
    assert "cannot load the Kubernetes config" in line and "nope" in line
    assert kube.requests == []


def test_prod_with_argo_4_applies_cleanly(capsys, spec, tmp_path):
    with FakeKube(argo="4.1.2") as k:  # prod compiles for Argo 4 (CronWorkflow spec.schedules)
        kc = str(k.kubeconfig(tmp_path / "kc4"))
        code = main(["apply", str(spec), "--env", "prod", "--kubeconfig", kc, "--yes"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert k.objects("cronworkflows", "churn")["churn-batch"]["spec"]["schedules"] == ["0 2 * * *"]
        assert main(["plan", str(spec), "--env", "prod", "--kubeconfig", kc]) == 0


def test_a_terminal_prompt_that_is_declined_changes_nothing(capsys, kube, spec, monkeypatch):
    import click

    asked = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(click, "confirm", lambda q, default=False: asked.append(q) or False)
    code, out, err = mlc(capsys, kube, spec, "apply")
    assert code == 1
    assert asked == [f"Apply these changes to {kube.url}?"]
    assert "cancelled; nothing was changed" in err
    assert kube.snapshot() == {}
