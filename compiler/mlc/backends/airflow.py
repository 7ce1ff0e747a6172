"""Stage 3 backend: Plan -> Apache Airflow 3 DAG files, one per pipeline (``airflow/dag_<project>_<purpose>.py``).

Plain classic-operator Python, one task per plan step, dependencies as in the plan. Every task runs the same
container contract as Argo and KFP, ``mlc step <step> --spec ... --run-id <run> --env <env>``:

- in a cluster environment, as a KubernetesPodOperator (cncf.kubernetes provider) with the environment's image,
  the step's resources, the ServiceAccount, the env and Secret references and the spec ConfigMap at /etc/mlc;
- in ``local``, as a BashOperator that runs the ``mlc`` found on the worker's PATH, with the spec path from the
  Airflow Variable ``mlc_spec_<project>``, so the same DAG runs under a laptop's `airflow standalone`.

The run id is Airflow's, made safe for paths by the DAG's own ``mlc_run_id`` Jinja filter. Steps with output
parameters push them as one XCom (a dict): ``mlc step`` writes them to $MLC_OUTPUTS_JSON, which is
/airflow/xcom/return.json in a pod (the operator's sidecar reads it) and a file the BashOperator prints last.
The generated module imports only the standard library, pendulum, Airflow and the kubernetes client: a scheduler
parses DAG files all the time, and nothing of mlc is installed there.

Not carried over from Argo: the exit handler's pod (its place is the DAG's ``on_failure_callback``, a hook point
documented in docs/airflow.md) and pod garbage collection by TTL (succeeded pods are deleted at once).
"""

from __future__ import annotations

import textwrap

from mlc.backends import Output
from mlc.backends.pysrc import LINE_LENGTH, Call, Dict, List, Raw, call, lit, render
from mlc.plan.model import (
    OUTPUTS_DIR,
    OUTPUTS_JSON_ENV,
    RETRY_BACKOFF_FACTOR,
    RETRY_DELAY_S,
    RETRY_MAX_DELAY_S,
    SPEC_MOUNT_DIR,
    Pipeline,
    Plan,
    Step,
    StepResources,
)

LOCAL_ENV = "local"  # the environment `mlc step` runs without a cluster (see mlc.local.step_command)
XCOM_FILE = "/airflow/xcom/return.json"  # where the KubernetesPodOperator's sidecar reads a pod's XCom
LOCAL_XCOM_FILE = "mlc-outputs.json"  # in the BashOperator's working directory (a fresh temporary one)
START_DATE = "pendulum.datetime(2024, 1, 1, tz=\"UTC\")"  # fixed: the output never depends on the clock
APPROVE = "approve"
HOOKS_MODULE = "mlc_airflow_hooks"
POD_ACTION = "delete_succeeded_pod"  # failed pods stay for `kubectl logs`, as with Argo's OnPodSuccess

_HELPERS = '''

def mlc_run_id(run_id: str) -> str:
    """Airflow's run id made safe as one path segment (<root>/runs/<run id>/).

    A safe run id is kept; otherwise unsafe characters become "-" and a hash of the
    original keeps apart two run ids that differ only there.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")
    if safe == run_id:
        return run_id
    return f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def on_failure(context: dict) -> None:
    """The DAG's failure hook: one line for a log pipeline, then the user's own hook.

    Put a module mlc_airflow_hooks beside the DAG files (or in plugins/) with a function
    on_failure(context). It is imported when a run fails, never while the scheduler
    parses this file.
    """
    dag_run = context.get("dag_run")
    log.error(
        "mlc: DAG run %s of %s/%s failed: %s",
        getattr(dag_run, "run_id", None),
        PROJECT,
        ENV,
        context.get("reason"),
    )
    try:
        hooks = importlib.import_module(HOOKS_MODULE)
    except ModuleNotFoundError as e:
        if e.name != HOOKS_MODULE:
            raise
        return
    hooks.on_failure(context)
'''


def build(plan: Plan) -> list[Output]:
    return [Output(dag_path(plan, p), text=dag_source(plan, p), resource=False) for p in plan.pipelines]


def dag_path(plan: Plan, pipeline: Pipeline) -> str:
    return f"airflow/dag_{plan.project.replace('-', '_')}_{pipeline.purpose.replace('-', '_')}.py"


def dag_id(plan: Plan, pipeline: Pipeline) -> str:
    """Unique across environments: one Airflow often runs the DAGs of several namespaces, and Airflow has
    no namespace of its own."""
    return f"{pipeline.name}-{plan.env}"


def spec_variable(plan: Plan) -> str:
    """The Airflow Variable that holds the spec path for the local DAGs (AIRFLOW_VAR_<NAME> also sets it)."""
    return f"mlc_spec_{plan.project.replace('-', '_')}"


def task_var(step_name: str) -> str:
    """The Python name of a step's task: step names are DNS labels, so this is unique in a pipeline."""
    name = step_name.replace("-", "_")
    return f"{name}_task" if name in _RESERVED else name


_RESERVED = frozenset({"dag", "log", "k8s", "re", "json", "hashlib", "importlib", "logging", "pendulum",
                       "timedelta", "mlc_run_id", "on_failure"})


def _resources(r: StepResources) -> Call | None:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if r.cpu:
        requests["cpu"] = r.cpu
    if r.memory:
        requests["memory"] = limits["memory"] = r.memory
    if r.gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(r.gpu)
    if not requests and not limits:
        return None
    return call("k8s.V1ResourceRequirements", **({"requests": requests} if requests else {}),
                **({"limits": limits} if limits else {}))


def _env_var(name: str, value: str | None = None, secret: str | None = None, key: str | None = None) -> Call:
    if secret:
        ref = call("k8s.V1SecretKeySelector", name=secret, key=key)
        return call("k8s.V1EnvVar", name=name, value_from=call("k8s.V1EnvVarSource", secret_key_ref=ref))
    return call("k8s.V1EnvVar", name=name, value=value)


def _cluster_constants(plan: Plan) -> list[str]:
    env = [_env_var("MLC_OUTPUTS_DIR", OUTPUTS_DIR)]
    env += [_env_var(v.name, secret=v.secret, key=v.secret_key) if v.secret else _env_var(v.name, v.value)
            for v in plan.pod_env]
    env_from = [call("k8s.V1EnvFromSource", secret_ref=call("k8s.V1SecretEnvSource", name=s))
                for s in plan.pod_env_secrets]
    volumes = [call("k8s.V1Volume", name="spec",
                    config_map=call("k8s.V1ConfigMapVolumeSource", name=plan.spec_configmap))]
    mounts = [call("k8s.V1VolumeMount", name="spec", mount_path=SPEC_MOUNT_DIR, read_only=True)]
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        claim = call("k8s.V1PersistentVolumeClaimVolumeSource", claim_name=plan.storage.volume_claim)
        volumes.append(call("k8s.V1Volume", name="artifacts", persistent_volume_claim=claim))
        mounts.append(call("k8s.V1VolumeMount", name="artifacts", mount_path=plan.storage.root))
    lines = [
        f"NAMESPACE = {lit(plan.namespace)}",
        f"IMAGE = {lit(plan.image)}",
        f"SERVICE_ACCOUNT = {lit(plan.service_account)}",
        render(dict(plan.labels), prefix="LABELS = "),
        render(env, prefix="ENV_VARS = "),
        render([Raw("*ENV_VARS"), _env_var(OUTPUTS_JSON_ENV, XCOM_FILE)], prefix="ENV_VARS_XCOM = "),
    ]
    if env_from:
        lines.append(render(env_from, prefix="ENV_FROM = "))
    lines += [render(volumes, prefix="VOLUMES = "), render(mounts, prefix="VOLUME_MOUNTS = ")]
    return lines


def _local_constants(plan: Plan) -> list[str]:
    env = {"MLC_SPEC": f"{{{{ var.value.{spec_variable(plan)} }}}}", "MLC_RUN_ID": "{{ run_id | mlc_run_id }}"}
    with_xcom = Dict(((None, Raw("STEP_ENV")), (Raw(lit(OUTPUTS_JSON_ENV)), Raw(lit(LOCAL_XCOM_FILE)))))
    return [render(env, prefix="STEP_ENV = "), render(with_xcom, prefix="STEP_ENV_XCOM = ")]


def _task(plan: Plan, step: Step) -> str:
    common: list[tuple[str, object]] = [("retries", step.retries)] if step.retries else [("retries", 0)]
    common.append(("execution_timeout", call("timedelta", seconds=step.timeout_s)))
    xcom = bool(step.outputs)
    if plan.env == LOCAL_ENV:
        cmd = f'mlc step {step.name} --spec "$MLC_SPEC" --run-id "$MLC_RUN_ID" --env {plan.env}'
        args: list[tuple[str, object]] = [
            ("task_id", step.name),
            ("bash_command", cmd + (f' && cat "${OUTPUTS_JSON_ENV}"' if xcom else "")),
            ("env", Raw("STEP_ENV_XCOM" if xcom else "STEP_ENV")),
            ("append_env", True),
            *common,
            ("do_xcom_push", xcom),
        ]
        if xcom:
            args.append(("output_processor", Raw("json.loads")))
        return render(Call("BashOperator", tuple(args)), 1, f"{task_var(step.name)} = ")
    command = [Raw("RUN_ID") if c == "{{run_id}}" else c for c in step.command(plan.env, "{{run_id}}")]
    args = [
        ("task_id", step.name),
        ("name", step.name),
        ("namespace", Raw("NAMESPACE")),
        ("image", Raw("IMAGE")),
        ("cmds", command),
        ("env_vars", Raw("ENV_VARS_XCOM" if xcom else "ENV_VARS")),
    ]
    if plan.pod_env_secrets:
        args.append(("env_from", Raw("ENV_FROM")))
    res = _resources(step.resources)
    if res is not None:
        args.append(("container_resources", res))
    args += [
        ("service_account_name", Raw("SERVICE_ACCOUNT")),
        ("volumes", Raw("VOLUMES")),
        ("volume_mounts", Raw("VOLUME_MOUNTS")),
        ("labels", Raw("LABELS")),
        *common,
        ("do_xcom_push", xcom),
        ("on_finish_action", POD_ACTION),
    ]
    return render(Call("KubernetesPodOperator", tuple(args)), 1, f"{task_var(step.name)} = ")


def _edges(pipeline: Pipeline, approve: bool) -> list[str]:
    """``upstream >> task`` per step with dependencies; with manual approval, approve sits before register."""
    lines = []
    for s in pipeline.steps:
        deps = [task_var(d) for d in s.depends]
        if approve and s.kind == "register":
            if deps:
                lines.append(_edge(deps, APPROVE))
            deps = [APPROVE]
        if deps:
            lines.append(_edge(deps, task_var(s.name)))
    return lines


def _edge(deps: list[str], target: str) -> str:
    left = Raw(deps[0]) if len(deps) == 1 else List(tuple(Raw(d) for d in deps))
    return render(left, 1, "", f" >> {target}")


def dag_source(plan: Plan, pipeline: Pipeline) -> str:
    local = plan.env == LOCAL_ENV
    schedule = next((s for s in plan.schedules if s.pipeline == pipeline.name), None)
    approve = plan.manual_approval and pipeline.purpose == "train" and any(
        s.kind == "register" for s in pipeline.steps)
    how = (f"a BashOperator running the `mlc` on the worker's PATH, the spec path from the Airflow Variable "
           f"{spec_variable(plan)}" if local else
           f"a KubernetesPodOperator in {plan.namespace}, image {plan.image}")
    intro = (f"Each task runs `mlc step <step> --spec <spec> --run-id <run> --env {plan.env}` as {how}. "
             "The run id is Airflow's, made safe for paths (mlc_run_id). On failure, on_failure logs one "
             f"line and calls on_failure(context) of the module {HOOKS_MODULE} when one is importable "
             "(see docs/airflow.md in mlc).")
    doc = [f'"""{pipeline.description or pipeline.name} (environment {plan.env}).', "",
           *textwrap.wrap(intro, LINE_LENGTH, break_long_words=False, break_on_hyphens=False), '"""']
    imports = ["import hashlib", "import importlib"]
    if local and any(s.outputs for s in pipeline.steps):
        imports.append("import json")
    imports += ["import logging", "import re", "from datetime import timedelta", "", "import pendulum"]
    if not local:
        imports.append("from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator")
    if local:
        imports.append("from airflow.providers.standard.operators.bash import BashOperator")
    if approve:
        imports.append("from airflow.providers.standard.operators.hitl import ApprovalOperator")
    imports.append("from airflow.sdk import DAG")
    if not local:
        imports.append("from kubernetes.client import models as k8s")
    consts = [f"PROJECT = {lit(plan.project)}", f"ENV = {lit(plan.env)}", f"HOOKS_MODULE = {lit(HOOKS_MODULE)}"]
    if not local:
        consts.append(f"RUN_ID = {lit('{{ run_id | mlc_run_id }}')}")
    consts += _local_constants(plan) if local else _cluster_constants(plan)
    default_args = {"retry_delay": call("timedelta", seconds=RETRY_DELAY_S),
                    "retry_exponential_backoff": Raw(repr(float(RETRY_BACKOFF_FACTOR))),
                    "max_retry_delay": call("timedelta", seconds=RETRY_MAX_DELAY_S)}
    dag_args: list[tuple[str, object]] = [
        ("dag_id", dag_id(plan, pipeline)),
        ("description", pipeline.description or pipeline.name),
        ("schedule", schedule.cron if schedule else None),
        ("start_date", Raw(START_DATE)),
        ("catchup", False),
        ("max_active_runs", 1),
    ]
    if schedule is not None and schedule.suspend:
        dag_args.append(("is_paused_upon_creation", True))
    dag_args += [
        ("tags", ["mlc", plan.project, plan.env, pipeline.purpose]),
        ("default_args", default_args),
        ("user_defined_filters", {"mlc_run_id": Raw("mlc_run_id")}),
        ("on_failure_callback", Raw("on_failure")),
        ("doc_md", Raw("__doc__")),
    ]
    body = [_task(plan, s) for s in pipeline.steps]
    if approve:
        body.append(render(call("ApprovalOperator", task_id=APPROVE,
                                subject=f"Register the {plan.project} model that passed the gates?",
                                fail_on_reject=True), 1, f"{APPROVE} = "))
    edges = _edges(pipeline, approve)
    parts = ["\n".join(doc), "", "from __future__ import annotations", "", "\n".join(imports), "",
             "\n".join(consts), "", "log = logging.getLogger(__name__)", _HELPERS, "",
             render(Call("DAG", tuple(dag_args)), 0, "with ", " as dag:"),
             "\n\n".join(body)]
    if edges:
        parts += ["", "\n".join(edges)]
    return "\n".join(parts) + "\n"
