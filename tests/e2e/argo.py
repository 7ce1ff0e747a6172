"""Run an Argo WorkflowTemplate from its YAML the way the workflow controller would, one process per container.

Supported, because the compiled templates use it: a DAG entrypoint (dependencies, arguments.parameters, when),
container templates (command, args, env with secretKeyRef, envFrom, volumeMounts of configMap, PVC and emptyDir
volumes, inputs.parameters, outputs.parameters from valueFrom.path, retryStrategy.limit), suspend templates
(resumed at once, as `argo resume` would, or after their duration), resource templates with `action: patch` (sent
to the real kube-apiserver as the workflow's ServiceAccount, as Argo's executor does with kubectl patch), the onExit handler with {{workflow.status}} and
{{workflow.failures}}, spec.serviceAccountName (the pod gets that ServiceAccount's credentials from the cluster as
a kubeconfig, when it has them), and `argo retry` of a failed Workflow. Substitutions: {{workflow.name}}, {{workflow.parameters.*}}, {{inputs.parameters.*}},
{{tasks.<t>.outputs.parameters.<p>}}, {{workflow.status}}, {{workflow.failures}}. Anything else is a HarnessError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.pods import Cluster, HarnessError, Pod, known, load_yaml_docs, secret_env, wait_order

SPEC_FIELDS = {"entrypoint", "onExit", "podGC", "podMetadata", "serviceAccountName", "templates", "ttlStrategy",
               "volumes", "workflowMetadata", "arguments", "activeDeadlineSeconds"}
TEMPLATE_FIELDS = {"name", "dag", "container", "inputs", "outputs", "retryStrategy", "metadata", "suspend",
                   "activeDeadlineSeconds", "resource"}
PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
               "strategic": "application/strategic-merge-patch+json"}
CONTAINER_FIELDS = {"command", "args", "env", "envFrom", "image", "imagePullPolicy", "resources", "volumeMounts"}
TASK_FIELDS = {"name", "template", "dependencies", "arguments", "when"}
_EXPR = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SA_DIR = "/var/run/secrets/mlc-e2e/serviceaccount"  # where a pod finds its ServiceAccount's kubeconfig


@dataclass
class Node:
    name: str
    template: str
    phase: str = "Pending"  # Succeeded | Failed | Skipped | Omitted
    outputs: dict[str, str] = field(default_factory=dict)
    pod: Pod | None = None
    message: str = ""

    @property
    def attempts(self) -> int:
        return len(self.pod.attempts) if self.pod else 0

    @property
    def log(self) -> str:
        return "\n".join(a.log for a in self.pod.attempts) if self.pod else ""


@dataclass
class Workflow:
    name: str
    phase: str
    nodes: dict[str, Node]
    exit_nodes: dict[str, Node]
    scope: dict[str, str] = field(default_factory=dict)
    retries: int = 0

    def failed(self) -> dict[str, str]:
        return {n: node.log[-2000:] for n, node in self.nodes.items() if node.phase == "Failed"}


def substitute(text: str, scope: dict[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in scope:
            raise HarnessError(f"{where}: unknown expression {{{{{key}}}}} (known here: {sorted(scope)})")
        return scope[key]

    return _EXPR.sub(one, text)


def evaluate_when(expr: str, where: str) -> bool:
    """Argo's `when` after substitution: comparisons joined by && or ||, as the compiled templates write them."""
    def atom(a: str) -> bool:
        a = a.strip()
        m = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", a)
        if m:
            left, op, right = (x.strip().strip("'\"") for x in m.groups())
            return (left == right) if op == "==" else (left != right)
        if a in ("true", "false"):
            return a == "true"
        raise HarnessError(f"{where}: cannot evaluate when: {expr!r}")

    if "||" in expr:
        return any(evaluate_when(p, where) for p in expr.split("||"))
    return all(atom(p) for p in expr.split("&&"))


class ArgoRunner:
    def __init__(self, cluster: Cluster, template: dict[str, Any]) -> None:
        if template.get("kind") != "WorkflowTemplate":
            raise HarnessError(f"not a WorkflowTemplate: {template.get('kind')}")
        self.cluster = cluster
        self.doc = template
        self.spec = template["spec"]
        known(self.spec, SPEC_FIELDS, "spec")
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.volumes = {v["name"]: v for v in self.spec.get("volumes", [])}

    @classmethod
    def load(cls, cluster: Cluster, path: Path) -> ArgoRunner:
        (doc,) = load_yaml_docs(path)
        return cls(cluster, doc)

    def submit(self, name: str, parameters: dict[str, str] | None = None) -> Workflow:
        """Run the template as Workflow ``name``, then its exit handler; the Workflow's phase and nodes."""
        params = {p["name"]: str(p.get("value", "")) for p in self.spec.get("arguments", {}).get("parameters", [])}
        params.update(parameters or {})
        scope = {"workflow.name": name, **{f"workflow.parameters.{k}": v for k, v in params.items()}}
        wf = Workflow(name, "Running", {}, {}, scope)
        return self._finish(wf, self._dag(name, self.templates[self.spec["entrypoint"]], scope, ""), "")

    def retry(self, wf: Workflow) -> Workflow:
        """`argo retry`: the same Workflow again, its succeeded and skipped nodes kept with their outputs, the
        failed and omitted ones run in new pods (here, with this runner's cluster), then the exit handler."""
        again = Workflow(wf.name, "Running", {}, {}, wf.scope, wf.retries + 1)  # ``wf`` stays as it ended
        prefix = f"retry{again.retries}-"
        nodes = self._dag(wf.name, self.templates[self.spec["entrypoint"]], wf.scope, prefix, keep=wf.nodes)
        return self._finish(again, nodes, prefix)

    def _finish(self, wf: Workflow, nodes: dict[str, Node], prefix: str) -> Workflow:
        wf.nodes = nodes
        wf.phase = "Succeeded" if all(n.phase in ("Succeeded", "Skipped") for n in nodes.values()) else "Failed"
        wf.exit_nodes = {}
        if self.spec.get("onExit"):
            failures = [{"displayName": n.name, "message": n.message, "templateName": n.template, "phase": n.phase}
                        for n in nodes.values() if n.phase == "Failed"]
            exit_scope = {**wf.scope, "workflow.status": wf.phase, "workflow.failures": json.dumps(failures)}
            wf.exit_nodes = self._dag(wf.name, self.templates[self.spec["onExit"]], exit_scope, f"{prefix}onexit-")
        return wf

    def _dag(self, wf: str, template: dict[str, Any], scope: dict[str, str], prefix: str,
             keep: dict[str, Node] | None = None) -> dict[str, Node]:
        known(template, TEMPLATE_FIELDS, f"template {template['name']}")
        if "dag" not in template:
            raise HarnessError(f"template {template['name']}: an entrypoint or exit handler that is not a dag")
        known(template["dag"], {"tasks"}, f"template {template['name']}.dag")
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        for t in tasks.values():
            known(t, TASK_FIELDS, f"{template['name']}.tasks[{t['name']}]")
        order = wait_order({n: list(t.get("dependencies", [])) for n, t in tasks.items()})
        nodes: dict[str, Node] = {}
        for n in order:
            t = tasks[n]
            if keep and n in keep and keep[n].phase in ("Succeeded", "Skipped"):
                nodes[n] = keep[n]
                continue
            node = nodes[n] = Node(n, t["template"])
            if any(nodes[d].phase not in ("Succeeded", "Skipped") for d in t.get("dependencies", [])):
                node.phase = "Omitted"
                continue
            task_scope = {**scope}
            for dep, dn in nodes.items():
                for k, v in dn.outputs.items():
                    task_scope[f"tasks.{dep}.outputs.parameters.{k}"] = v
            where = f"{template['name']}.tasks[{n}]"
            if "when" in t and not evaluate_when(substitute(t["when"], task_scope, where), where):
                node.phase = "Skipped"
                continue
            args = {p["name"]: substitute(str(p["value"]), task_scope, where)
                    for p in t.get("arguments", {}).get("parameters", [])}
            self._run(wf, self.templates[t["template"]], node, {**scope, **{f"inputs.parameters.{k}": v
                                                                            for k, v in args.items()}}, prefix)
        return nodes

    def _resource(self, t: dict[str, Any], node: Node, scope: dict[str, str], where: str) -> None:
        """`kubectl patch` of the manifest's object, with the workflow ServiceAccount's credentials."""
        import yaml

        from mlc.cluster.kube import ClusterError, Kube, ResourceType

        r = t["resource"]
        known(r, {"action", "manifest", "mergeStrategy"}, f"{where}.resource")
        if r["action"] != "patch":
            raise HarnessError(f"{where}: resource action {r['action']} is not supported")
        obj = yaml.safe_load(substitute(r["manifest"], scope, where))
        sa = f"{self.doc['metadata'].get('namespace', 'default')}/{self.spec.get('serviceAccountName', 'default')}"
        if sa not in self.cluster.kubeconfigs:
            node.phase, node.message = "Failed", f"no credentials for ServiceAccount {sa}"
            return
        kc = self.cluster.workdir / f"kubeconfig-{sa.replace('/', '-')}"
        kc.parent.mkdir(parents=True, exist_ok=True)
        kc.write_text(self.cluster.kubeconfigs[sa])
        md = obj["metadata"]
        group_version, kind = obj["apiVersion"], obj["kind"]
        rt = ResourceType(group_version, kind, kind.lower() + "s", True)
        k = Kube(str(kc))
        try:
            code, _ = k.request("PATCH", rt.path(md["namespace"], md["name"]), body=obj,
                                content_type=PATCH_TYPES[r.get("mergeStrategy", "strategic")])
        except ClusterError as e:
            node.phase, node.message = "Failed", str(e)
            return
        finally:
            k.close()
        node.phase, node.message = ("Succeeded", "") if code < 300 else ("Failed", f"HTTP {code}")

    def _run(self, wf: str, t: dict[str, Any], node: Node, scope: dict[str, str], prefix: str) -> None:
        where = f"template {t['name']}"
        known(t, TEMPLATE_FIELDS, where)
        for p in t.get("inputs", {}).get("parameters", []):
            key = f"inputs.parameters.{p['name']}"
            if key not in scope:
                if "value" not in p and "default" not in p:
                    raise HarnessError(f"{where}: input parameter {p['name']} has no argument and no default")
                scope[key] = str(p.get("value", p.get("default")))
        if "suspend" in t:
            known(t["suspend"], {"duration"}, f"{where}.suspend")
            if "duration" in t["suspend"]:  # a timed pause (seconds in the tests)
                import time

                time.sleep(_seconds(t["suspend"]["duration"], where))
            node.phase = "Succeeded"  # an approval gate, resumed at once (what `argo resume` does)
            return
        if "resource" in t:
            self._resource(t, node, scope, where)
            return
        if "container" not in t:
            raise HarnessError(f"{where}: neither container, dag, suspend nor resource")
        c = t["container"]
        known(c, CONTAINER_FIELDS, f"{where}.container")
        env = secret_env(self.cluster, c.get("env", []), where)
        for ef in c.get("envFrom", []):
            known(ef, {"secretRef"}, f"{where}.envFrom")
            env = {**self.cluster.secret(ef["secretRef"]["name"], None, bool(ef["secretRef"].get("optional")),
                                         where), **env}
        env = {k: substitute(v, scope, where) for k, v in env.items()}
        mounts, scratch = {}, []
        for m in c.get("volumeMounts", []):
            known(m, {"name", "mountPath", "readOnly", "subPath"}, f"{where}.volumeMounts")
            vol = self.volumes.get(m["name"])
            if vol is None:
                raise HarnessError(f"{where}: volumeMount {m['name']} names no volume of the template")
            if "configMap" in vol:
                cm = self.cluster.configmaps.get(vol["configMap"]["name"])
                if cm is None:
                    raise HarnessError(f"{where}: ConfigMap {vol['configMap']['name']} was not compiled")
                mounts[m["mountPath"]] = cm
            elif "persistentVolumeClaim" in vol or "emptyDir" in vol:
                scratch.append(m["mountPath"])
            else:
                raise HarnessError(f"{where}: volume kind {sorted(vol)} is not supported")
        sa = f"{self.doc['metadata'].get('namespace', 'default')}/{self.spec.get('serviceAccountName', 'default')}"
        if sa in self.cluster.kubeconfigs:
            mounts[SA_DIR] = {"kubeconfig": self.cluster.kubeconfigs[sa]}
            env["KUBECONFIG"] = f"{SA_DIR}/kubeconfig"
        outputs = t.get("outputs", {}).get("parameters", [])
        for o in outputs:
            known(o, {"name", "valueFrom"}, f"{where}.outputs.parameters[{o['name']}]")
            known(o["valueFrom"], {"path", "default"}, f"{where}.outputs.parameters[{o['name']}].valueFrom")
            scratch.append(str(Path(o["valueFrom"]["path"]).parent))
        cmd = [substitute(x, scope, where) for x in [*c.get("command", []), *c.get("args", [])]]
        if not cmd:
            raise HarnessError(f"{where}: no command (the image's entrypoint is not known here)")
        pod = node.pod = Pod(self.cluster, f"{wf}-{prefix}{node.name}", cmd, env, mounts, tuple(scratch))
        retry = t.get("retryStrategy") or {}
        known(retry, {"limit", "retryPolicy", "backoff"}, f"{where}.retryStrategy")
        if retry.get("retryPolicy", "OnFailure") not in ("OnFailure", "Always", "OnError"):
            raise HarnessError(f"{where}: retryPolicy {retry['retryPolicy']}")
        for _ in range(int(retry.get("limit", 0)) + 1):  # backoff durations are not waited out
            a = pod.run()
            if a.exit_code == 0:
                break
        if pod.attempts[-1].exit_code != 0:
            node.phase, node.message = "Failed", f"exit code {pod.attempts[-1].exit_code}"
            return
        for o in outputs:
            f = pod.local(o["valueFrom"]["path"])
            if f.exists():
                node.outputs[o["name"]] = f.read_text()
            elif "default" in o["valueFrom"]:
                node.outputs[o["name"]] = str(o["valueFrom"]["default"])
            else:
                node.phase = "Failed"
                node.message = f"output parameter {o['name']}: {o['valueFrom']['path']} was not written"
                return
        node.phase = "Succeeded"


def _seconds(text: str, where: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text)
    if not m:
        raise HarnessError(f"{where}: suspend duration {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
