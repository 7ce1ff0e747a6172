"""Stage 3 backend: Plan -> Kubeflow Pipelines v2 IR, via the kfp SDK compiler (and kfp-kubernetes).

Components are built from data (component YAML text), one per step, inside a generated ``@dsl.pipeline``
function, so the SDK's own compiler checks the DAG. The pods follow the same contract as Argo and ``mlc run``:
the spec ConfigMap mounted at /etc/mlc, the storage credentials as Secret references, artifacts under the
storage root. The run id is the KFP pipeline job id, so every step of one run shares a directory.

Differences from Argo, because KFP v2 has no field for them: the ServiceAccount is chosen when a run is
submitted; there is no manual-approval suspend (the register step is gated by `mlc step gate`); Secrets listed
without a key are mounted as files under /var/run/secrets/mlc/<secret> (KFP has no envFrom).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from typing import Any

from mlc.backends import Output
from mlc.plan import OUTPUTS_DIR, SPEC_MOUNT_DIR, Pipeline, Plan, Step
from mlc.plan.names import env_var

SECRETS_DIR = "/var/run/secrets/mlc"
RUN_ID_INPUT = "run_id"


def build(plan: Plan) -> list[Output]:
    return [Output(f"kfp/pipeline-{p.name}.yaml", text=compile_pipeline(plan, p), resource=False)
            for p in plan.pipelines]


def component_text(plan: Plan, step: Step) -> str:
    """A v1 component YAML for one step (JSON is YAML). Output parameters are copied from the contract's
    $MLC_OUTPUTS_DIR/<name> to the paths KFP hands the container."""
    cmd: list[Any] = step.command(plan.env, "RUN_ID")
    cmd[cmd.index("RUN_ID")] = {"inputValue": RUN_ID_INPUT}
    outputs = [{"name": o, "type": "String"} for o in step.outputs]
    if step.outputs:
        # sh -c 'mlc step ... "$1"' sh <run-id> <out1> <out2>: the argument positions are fixed, so no quoting
        # of runtime values is ever needed.
        head = [shlex.quote(c) for c in cmd[: cmd.index({"inputValue": RUN_ID_INPUT})]]
        tail = [shlex.quote(c) for c in cmd[cmd.index({"inputValue": RUN_ID_INPUT}) + 1:]]
        script = " ".join([*head, '"$1"', *tail])
        copies = [f'cp "$MLC_OUTPUTS_DIR/{o}" "${i + 2}"' for i, o in enumerate(step.outputs)]
        cmd = ["sh", "-ec", "; ".join([script, *copies]), "sh", {"inputValue": RUN_ID_INPUT},
               *({"outputPath": o} for o in step.outputs)]
    doc = {
        "name": step.name,
        "inputs": [{"name": RUN_ID_INPUT, "type": "String"}],
        "outputs": outputs,
        "implementation": {"container": {"image": plan.image, "command": cmd}},
    }
    return json.dumps(doc)


def _configure(task: Any, plan: Plan, step: Step) -> None:
    from kfp import kubernetes

    r = step.resources
    if r.cpu:
        task.set_cpu_request(r.cpu)
    if r.memory:
        task.set_memory_request(r.memory)
        task.set_memory_limit(r.memory)
    if r.gpu:
        task.set_accelerator_type("nvidia.com/gpu")
        task.set_accelerator_limit(r.gpu)
    if step.retries:
        task.set_retry(num_retries=step.retries, backoff_duration="30s", backoff_factor=2,
                       backoff_max_duration="600s")
    task.set_caching_options(step.cacheable)
    task.set_env_variable("MLC_OUTPUTS_DIR", OUTPUTS_DIR)
    if plan.tracking_uri:
        task.set_env_variable("MLFLOW_TRACKING_URI", plan.tracking_uri)
    if plan.storage.endpoint:
        task.set_env_variable("AWS_ENDPOINT_URL", plan.storage.endpoint)
        task.set_env_variable("MLFLOW_S3_ENDPOINT_URL", plan.storage.endpoint)
    if plan.storage.secret:
        kubernetes.use_secret_as_env(task, plan.storage.secret, {k: k for k in
                                                                 ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    for secret, key in plan.secrets:
        if key:
            kubernetes.use_secret_as_env(task, secret, {key: env_var(key)})
        else:
            kubernetes.use_secret_as_volume(task, secret, f"{SECRETS_DIR}/{secret}")
    kubernetes.use_config_map_as_volume(task, plan.spec_configmap, SPEC_MOUNT_DIR)
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        kubernetes.mount_pvc(task, plan.storage.volume_claim, plan.storage.root)
    for k, v in plan.labels.items():
        kubernetes.add_pod_label(task, k, v)


def compile_pipeline(plan: Plan, pipeline: Pipeline) -> str:
    from kfp import compiler, components, dsl

    comps = {s.name: components.load_component_from_text(component_text(plan, s)) for s in pipeline.steps}

    @dsl.pipeline(name=pipeline.name, description=pipeline.description or None)
    def generated():  # noqa: ANN202 - kfp reads the (absent) return annotation as the outputs
        tasks: dict[str, Any] = {}
        for s in pipeline.steps:  # the plan's order is topological
            t = comps[s.name](run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            t.set_display_name(s.name)
            _configure(t, plan, s)
            for d in s.depends:
                t.after(tasks[d])
            tasks[s.name] = t

    with tempfile.TemporaryDirectory(prefix="mlc-kfp-") as tmp:
        path = os.path.join(tmp, "pipeline.yaml")
        compiler.Compiler().compile(generated, path)
        with open(path, encoding="utf-8") as f:
            return f.read()
