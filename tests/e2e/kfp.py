"""Run a KFP v2 pipeline from its IR YAML the way the KFP driver and launcher would, one process per executor.

The first document is the PipelineSpec (components, deploymentSpec.executors, root.dag), the second the
Kubernetes platform spec (configMapAsVolume, secretAsEnv, pvcMount per executor). Placeholders:
{{$.inputs.parameters['p']}}, {{$.outputs.parameters['p'].output_file}} (a container-local file the launcher
reads back), and in constants {{$.pipeline_job_uuid}} and {{$.pipeline_job_name}}. Task inputs: runtimeValue
constants, taskOutputParameter and componentInputParameter. retryPolicy.maxRetryCount is honoured. Anything else
is a HarnessError.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.pods import Cluster, HarnessError, Pod, known, load_yaml_docs, secret_env, wait_order

TASK_FIELDS = {"cachingOptions", "componentRef", "dependentTasks", "inputs", "retryPolicy", "taskInfo"}
CONTAINER_FIELDS = {"command", "args", "env", "image", "resources"}
PLATFORM_FIELDS = {"configMapAsVolume", "secretAsEnv", "podMetadata", "pvcMount"}
_PH = re.compile(r"\{\{\$\.([^{}]*)\}\}")
OUTPUTS = "/tmp/kfp/outputs"


@dataclass
class Task:
    name: str
    phase: str = "Pending"  # SUCCEEDED | FAILED | SKIPPED (an upstream failed)
    outputs: dict[str, str] = field(default_factory=dict)
    pod: Pod | None = None

    @property
    def log(self) -> str:
        return "\n".join(a.log for a in self.pod.attempts) if self.pod else ""


@dataclass
class Run:
    job_uuid: str
    state: str
    tasks: dict[str, Task]

    def failed(self) -> dict[str, str]:
        return {n: t.log[-2000:] for n, t in self.tasks.items() if t.phase == "FAILED"}


class KfpRunner:
    def __init__(self, cluster: Cluster, docs: list[dict[str, Any]]) -> None:
        self.cluster = cluster
        self.spec = docs[0]
        known(self.spec, {"components", "deploymentSpec", "pipelineInfo", "root", "schemaVersion", "sdkVersion",
                          "defaultPipelineRoot"}, "PipelineSpec")
        platform = docs[1] if len(docs) > 1 else {}
        self.platform = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}) \
            .get("executors", {})
        if len(docs) > 2:
            raise HarnessError("more than two documents in the IR YAML")

    @classmethod
    def load(cls, cluster: Cluster, path: Path) -> KfpRunner:
        return cls(cluster, load_yaml_docs(path))

    def submit(self, job_name: str, arguments: dict[str, str] | None = None) -> Run:
        job_uuid = str(uuid.uuid4())
        root = self.spec["root"]
        known(root, {"dag", "inputDefinitions"}, "root")
        pipeline_inputs = {k: str(v.get("defaultValue", "")) for k, v in
                           root.get("inputDefinitions", {}).get("parameters", {}).items()}
        pipeline_inputs.update(arguments or {})
        tasks = root["dag"]["tasks"]
        for n, t in tasks.items():
            known(t, TASK_FIELDS, f"root.dag.tasks[{n}]")
        order = wait_order({n: list(t.get("dependentTasks", [])) for n, t in tasks.items()})
        done: dict[str, Task] = {}
        consts = {"pipeline_job_uuid": job_uuid, "pipeline_job_name": job_name}
        for n in order:
            t, task = tasks[n], Task(n)
            done[n] = task
            if any(done[d].phase != "SUCCEEDED" for d in t.get("dependentTasks", [])):
                task.phase = "SKIPPED"
                continue
            inputs = {}
            for p, src in t.get("inputs", {}).get("parameters", {}).items():
                where = f"tasks[{n}].inputs.parameters[{p}]"
                known(src, {"runtimeValue", "taskOutputParameter", "componentInputParameter"}, where)
                if "runtimeValue" in src:
                    inputs[p] = self._placeholders(str(src["runtimeValue"]["constant"]), consts, where)
                elif "taskOutputParameter" in src:
                    ref = src["taskOutputParameter"]
                    inputs[p] = done[ref["producerTask"]].outputs[ref["outputParameterKey"]]
                else:
                    inputs[p] = pipeline_inputs[src["componentInputParameter"]]
            self._execute(f"{job_name}-{n}", t, task, inputs)
        state = "SUCCEEDED" if all(x.phase == "SUCCEEDED" for x in done.values()) else "FAILED"
        return Run(job_uuid, state, done)

    def _placeholders(self, text: str, scope: dict[str, str], where: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) not in scope:
                raise HarnessError(f"{where}: unknown placeholder {{{{$.{m.group(1)}}}}} (known: {sorted(scope)})")
            return scope[m.group(1)]

        return _PH.sub(one, text)

    def _execute(self, pod_name: str, t: dict[str, Any], task: Task, inputs: dict[str, str]) -> None:
        comp_name = t["componentRef"]["name"]
        comp = self.spec["components"][comp_name]
        known(comp, {"executorLabel", "inputDefinitions", "outputDefinitions"}, comp_name)
        label = comp["executorLabel"]
        ex = self.spec["deploymentSpec"]["executors"][label]
        known(ex, {"container"}, label)
        c = ex["container"]
        known(c, CONTAINER_FIELDS, f"{label}.container")
        declared_in = set(comp.get("inputDefinitions", {}).get("parameters", {}))
        if set(inputs) != declared_in:
            raise HarnessError(f"{label}: inputs {sorted(inputs)} but the component declares {sorted(declared_in)}")
        outs = list(comp.get("outputDefinitions", {}).get("parameters", {}))
        scope = {**{f"inputs.parameters['{k}']": v for k, v in inputs.items()},
                 **{f"outputs.parameters['{o}'].output_file": f"{OUTPUTS}/{o}" for o in outs}}
        cmd = [self._placeholders(x, scope, label) for x in [*c.get("command", []), *c.get("args", [])]]
        env = secret_env(self.cluster, c.get("env", []), label)
        plat = self.platform.get(label, {})
        known(plat, PLATFORM_FIELDS, f"platform {label}")
        mounts, scratch = {}, [OUTPUTS]
        for cm in plat.get("configMapAsVolume", []):
            known(cm, {"configMapName", "configMapNameParameter", "mountPath", "optional"}, f"{label} configMap")
            data = self.cluster.configmaps.get(cm["configMapName"])
            if data is None:
                raise HarnessError(f"{label}: ConfigMap {cm['configMapName']} was not compiled")
            mounts[cm["mountPath"]] = data
        for pvc in plat.get("pvcMount", []):
            scratch.append(pvc["mountPath"])
        for s in plat.get("secretAsEnv", []):
            known(s, {"secretName", "secretNameParameter", "keyToEnv", "optional"}, f"{label} secretAsEnv")
            for kv in s.get("keyToEnv") or []:
                got = self.cluster.secret(s["secretName"], kv["secretKey"], bool(s.get("optional")), label)
                if got:
                    env[kv["envVar"]] = got[kv["secretKey"]]
        pod = task.pod = Pod(self.cluster, pod_name, cmd, env, mounts, tuple(scratch))
        retries = int((t.get("retryPolicy") or {}).get("maxRetryCount", 0))
        for _ in range(retries + 1):
            if pod.run().exit_code == 0:
                break
        if pod.attempts[-1].exit_code != 0:
            task.phase = "FAILED"
            return
        for o in outs:
            f = pod.local(f"{OUTPUTS}/{o}")
            if not f.exists():
                task.phase = "FAILED"
                return
            task.outputs[o] = f.read_text()
        task.phase = "SUCCEEDED"
