"""The harness itself, on small templates of shell containers (fast): what it substitutes, mounts, retries and
skips, and that whatever it does not understand fails instead of being skipped."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.argo import ArgoRunner
from e2e.kfp import KfpRunner
from e2e.pods import Cluster, HarnessError

REPO = Path(__file__).resolve().parents[2]
STAGING = REPO / "generated" / "churn" / "staging"


def sh(script: str, **extra: Any) -> dict[str, Any]:
    return {"container": {"image": "x", "command": ["sh", "-c", script], **extra}}


def template(tasks: list[dict[str, Any]], templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "t"},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "dag": {"tasks": tasks}}, *templates],
                     **spec}}


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path, configmaps={"cfg": {"a.txt": "at http://svc.cluster:80/x\n"}},
                   secrets={"s": {"TOKEN": "t0ps3cret"}}, services={"http://svc.cluster:80": "http://127.0.0.1:9"})


def test_dag_parameters_mounts_secrets_retries_when_and_exit_handler(cluster: Cluster) -> None:
    doc = template(
        [{"name": "first", "template": "first"},
         {"name": "second", "template": "second", "dependencies": ["first"],
          "arguments": {"parameters": [{"name": "got", "value": "{{tasks.first.outputs.parameters.out}}"}]}},
         {"name": "flaky", "template": "flaky"},
         {"name": "never", "template": "first", "dependencies": ["second"], "when": "{{tasks.second.outputs.parameters.echo}} == nope"}],
        [{"name": "first", **sh('cat /etc/cfg/a.txt > /tmp/out/out; echo "$TOKEN {{workflow.name}} $P" >> /tmp/out/out',
                                env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "TOKEN"}}},
                                     {"name": "P", "value": "{{workflow.parameters.p}}"}],
                                volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}]),
          "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out/out"}}]}},
         {"name": "second", "inputs": {"parameters": [{"name": "got"}]},
          **sh('printf %s "{{inputs.parameters.got}}" | wc -l | tr -d " \\n" > /tmp/o/echo'),
          "outputs": {"parameters": [{"name": "echo", "valueFrom": {"path": "/tmp/o/echo"}}]}},
         {"name": "flaky", **sh("test -f /tmp/again && exit 0; touch /tmp/again; exit 3"),
          "retryStrategy": {"limit": "1", "retryPolicy": "OnFailure"}},
         {"name": "exit", "dag": {"tasks": [{"name": "report", "template": "report",
                                             "when": "{{workflow.status}} != Succeeded"}]}},
         {"name": "report", **sh("echo {{workflow.status}}")}],
        onExit="exit", volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
        arguments={"parameters": [{"name": "p", "value": "dflt"}]})
    wf = ArgoRunner(cluster, doc).submit("wf-1", {"p": "given"})
    assert wf.phase == "Succeeded", wf.failed()
    # the ConfigMap at its mountPath, with the cluster name resolved; the Secret in the env; parameters substituted
    assert wf.nodes["first"].outputs["out"] == "at http://127.0.0.1:9/x\nt0ps3cret wf-1 given\n"
    assert wf.nodes["second"].outputs["echo"] == "2"  # the two-line value arrived whole
    assert wf.nodes["flaky"].attempts == 2  # failed once, retried once (limit 1)
    assert wf.nodes["never"].phase == "Skipped"
    assert wf.exit_nodes["report"].phase == "Skipped"
    # each pod has its own /tmp: the flaky pod's marker is not on this machine's /tmp
    assert not Path("/tmp/again").exists() and (cluster.workdir / "pods/wf-1-flaky/tmp/again").exists()


def test_failure_omits_dependents_and_runs_the_exit_handler(cluster: Cluster) -> None:
    doc = template([{"name": "a", "template": "bad"}, {"name": "b", "template": "bad", "dependencies": ["a"]}],
                   [{"name": "bad", **sh("exit 7")},
                    {"name": "exit", "dag": {"tasks": [{"name": "r", "template": "r",
                                                        "when": "{{workflow.status}} != Succeeded"}]}},
                    {"name": "r", **sh("echo '{{workflow.failures}}'")}], onExit="exit")
    wf = ArgoRunner(cluster, doc).submit("wf-2")
    assert (wf.phase, wf.nodes["a"].phase, wf.nodes["b"].phase) == ("Failed", "Failed", "Omitted")
    assert '"displayName": "a"' in wf.exit_nodes["r"].log


@pytest.mark.parametrize("change, message", [
    (lambda d: d["spec"].__setitem__("hostNetwork", True), "spec: unknown field(s) ['hostNetwork']"),
    (lambda d: d["spec"]["templates"][1]["container"].__setitem__("securityContext", {}),
     "template ingest.container: unknown field(s) ['securityContext']"),
    (lambda d: d["spec"]["templates"][1]["container"]["command"].append("{{workflow.uid}}"),
     "template ingest: unknown expression {{workflow.uid}}"),
    (lambda d: d["spec"]["templates"][1]["container"]["env"].append(
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}),
     "template ingest.env[X].valueFrom: unknown field(s) ['configMapKeyRef']"),
])
def test_what_the_harness_does_not_know_fails(cluster: Cluster, change: Any, message: str) -> None:
    (doc,) = list(yaml.safe_load_all((STAGING / "argo/workflowtemplate-churn-train.yaml").read_text()))
    doc = copy.deepcopy(doc)
    change(doc)
    cluster.secrets["minio-credentials"] = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    cluster.configmaps["churn-spec"] = {"mlproject.yaml": ""}
    with pytest.raises(HarnessError, match=re.escape(message)):
        ArgoRunner(cluster, doc).submit("wf-x")


def test_missing_secret_is_a_pod_that_cannot_start(cluster: Cluster) -> None:
    doc = template([{"name": "a", "template": "a"}],
                   [{"name": "a", **sh("true", env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope",
                                                                                             "key": "K"}}}])}])
    with pytest.raises(HarnessError, match="Secret nope/K does not exist"):
        ArgoRunner(cluster, doc).submit("wf-3")


def test_kfp_unknown_placeholder_fails(cluster: Cluster) -> None:
    docs = list(yaml.safe_load_all((STAGING / "kfp/pipeline-churn-monitor.yaml").read_text()))
    docs[0]["deploymentSpec"]["executors"]["exec-drift"]["container"]["command"].append("{{$.pipeline_root}}")
    cluster.secrets["minio-credentials"] = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    cluster.configmaps["churn-spec"] = {"mlproject.yaml": ""}
    with pytest.raises(HarnessError, match=r"unknown placeholder \{\{\$\.pipeline_root\}\}"):
        KfpRunner(cluster, docs).submit("job")


def test_retry_reruns_what_failed_with_the_service_account_credentials(cluster: Cluster) -> None:
    """`argo retry`: the succeeded node keeps its outputs and is not run again; the failed one runs in a new pod,
    which gets a kubeconfig for the template's ServiceAccount once the cluster has credentials for it."""
    doc = template([{"name": "a", "template": "a"},
                    {"name": "b", "template": "b", "dependencies": ["a"],
                     "arguments": {"parameters": [{"name": "x", "value": "{{tasks.a.outputs.parameters.x}}"}]}}],
                   [{"name": "a", **sh("date +%N > /tmp/o/x"),
                     "outputs": {"parameters": [{"name": "x", "valueFrom": {"path": "/tmp/o/x"}}]}},
                    {"name": "b", "inputs": {"parameters": [{"name": "x"}]},
                     **sh('test -f "$KUBECONFIG" && grep -q token "$KUBECONFIG" && echo {{inputs.parameters.x}}')}],
                   serviceAccountName="runner")
    doc["metadata"]["namespace"] = "ns1"
    wf = ArgoRunner(cluster, doc).submit("wf-r")
    assert (wf.phase, wf.nodes["a"].phase, wf.nodes["b"].phase) == ("Failed", "Succeeded", "Failed")
    x = wf.nodes["a"].outputs["x"]
    cluster.kubeconfigs["ns1/runner"] = "users: [{name: sa, user: {token: abc}}]\n"
    again = ArgoRunner(cluster, doc).retry(wf)
    assert again.phase == "Succeeded", again.failed()
    assert wf.phase == "Failed" and wf.nodes["b"].phase == "Failed"  # the retried Workflow is a new record
    assert again.nodes["a"].outputs["x"] == x and again.nodes["a"].attempts == 1
    assert again.nodes["b"].log.strip() == x.strip()
    assert (cluster.workdir / "pods/wf-r-retry1-b/var/run/secrets/mlc-e2e/serviceaccount/kubeconfig").is_file()
