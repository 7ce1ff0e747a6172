"""Stage 3 backend: Plan -> Argo Workflows (WorkflowTemplate per pipeline, CronWorkflow per schedule), via hera.

hera 7 models Argo v4. For Argo 3.7 the only difference we emit is CronWorkflow ``spec.schedule`` (a string)
instead of ``spec.schedules`` (a list); hera always writes the list, so the dict is rewritten after ``to_dict()``.
Every pod runs the same container contract as ``mlc run`` (see mlc.plan): the spec from the ConfigMap, artifacts
under the storage root, small values through ``$MLC_OUTPUTS_DIR/<name>`` output parameters.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    Env,
    Parameter,
    RetryStrategy,
    SecretEnv,
    SecretEnvFrom,
    Suspend,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m

from mlc.backends import Output
from mlc.plan import OUTPUTS_DIR, SPEC_MOUNT_DIR, Pipeline, Plan, Step, StepResources

RUN_ID = "{{workflow.name}}"
ENTRYPOINT = "main"
EXIT_HANDLER = "exit-handler"
APPROVE = "approve"
# Failed pods stay for `kubectl logs`; finished workflows are garbage-collected after these many seconds.
TTL_SUCCESS = 3 * 24 * 3600
TTL_FAILURE = 7 * 24 * 3600
HISTORY_SUCCESS = 3
HISTORY_FAILURE = 5
RETRY_POLICY = "OnFailure"  # retries pod errors and non-zero exits; a failed gate is exit 1 and has retries=0
# IntOrString fields are written as strings: Argo parses both, and its JSON schema types them as string.
BACKOFF = m.Backoff(duration="30s", factor="2", max_duration="10m")
# The exit handler writes one line a log pipeline can alert on; Argo also emits a WorkflowFailed k8s Event.
REPORT_FAILURE = (
    'echo "mlc: workflow $WORKFLOW_NAME of $MLC_PROJECT/$MLC_ENV finished $WORKFLOW_STATUS;'
    ' failures: $WORKFLOW_FAILURES" >&2'
)


def build(plan: Plan) -> list[Output]:
    outs = [Output(f"argo/workflowtemplate-{p.name}.yaml", workflow_template(plan, p)) for p in plan.pipelines]
    for s in plan.schedules:
        outs.append(Output(f"argo/cronworkflow-{s.name}.yaml", cron_workflow(plan, s.name, s.pipeline, s.cron,
                                                                                s.suspend)))
    return outs


def _env(plan: Plan) -> tuple[list[Any], list[Any]]:
    env: list[Any] = [Env(name="MLC_OUTPUTS_DIR", value=OUTPUTS_DIR)]
    env += [SecretEnv(name=v.name, secret_name=v.secret, secret_key=v.secret_key) if v.secret
            else Env(name=v.name, value=v.value) for v in plan.pod_env]
    return env, [SecretEnvFrom(name=secret) for secret in plan.pod_env_secrets]


def _resources(r: StepResources) -> m.ResourceRequirements:
    requests: dict[str, m.Quantity] = {}
    limits: dict[str, m.Quantity] = {}
    if r.cpu:
        requests["cpu"] = m.Quantity(r.cpu)
    if r.memory:
        requests["memory"] = limits["memory"] = m.Quantity(r.memory)
    if r.gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = m.Quantity(str(r.gpu))
    return m.ResourceRequirements(requests=requests or None, limits=limits or None)


def _volumes(plan: Plan) -> tuple[list[m.Volume], list[m.VolumeMount]]:
    vols = [m.Volume(name="spec", config_map=m.ConfigMapVolumeSource(name=plan.spec_configmap))]
    mounts = [m.VolumeMount(name="spec", mount_path=SPEC_MOUNT_DIR, read_only=True)]
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        vols.append(m.Volume(name="artifacts",
                             persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(
                                 claim_name=plan.storage.volume_claim)))
        mounts.append(m.VolumeMount(name="artifacts", mount_path=plan.storage.root))
    return vols, mounts


def _container(plan: Plan, step: Step, env: list[Any], env_from: list[Any],
               mounts: list[m.VolumeMount]) -> Container:
    return Container(
        name=step.name,
        image=plan.image,
        command=step.command(plan.env, RUN_ID),
        env=env,
        env_from=env_from or None,
        resources=_resources(step.resources),
        volume_mounts=mounts,
        retry_strategy=RetryStrategy(limit=str(step.retries), retry_policy=RETRY_POLICY, backoff=BACKOFF)
        if step.retries else None,
        outputs=[Parameter(name=o, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{o}")) for o in step.outputs]
        or None,
    )


def _exit_handler(plan: Plan) -> list[Any]:
    report = Container(
        name="report-failure",
        image=plan.image,
        command=["sh", "-c", REPORT_FAILURE],
        env=[Env(name="WORKFLOW_NAME", value="{{workflow.name}}"),
             Env(name="WORKFLOW_STATUS", value="{{workflow.status}}"),
             Env(name="WORKFLOW_FAILURES", value="{{workflow.failures}}"),
             Env(name="MLC_PROJECT", value=plan.project), Env(name="MLC_ENV", value=plan.env)],
        resources=m.ResourceRequirements(requests={"cpu": m.Quantity("10m"),
                                                   "memory": m.Quantity("16Mi")}),
    )
    dag = DAG(name=EXIT_HANDLER, tasks=[
        Task(name="report-failure", template="report-failure", when="{{workflow.status}} != Succeeded")])
    return [dag, report]


def workflow_template(plan: Plan, pipeline: Pipeline) -> dict[str, Any]:
    env, env_from = _env(plan)
    volumes, mounts = _volumes(plan)
    templates: list[Any] = []
    tasks: list[Task] = []
    approve = plan.manual_approval and pipeline.purpose == "train" and any(
        s.kind == "register" for s in pipeline.steps)
    for s in pipeline.steps:
        templates.append(_container(plan, s, env, env_from, mounts))
        deps = list(s.depends)
        if approve and s.kind == "register":
            tasks.append(Task(name=APPROVE, template=APPROVE, dependencies=deps or None))
            deps = [APPROVE]
        tasks.append(Task(name=s.name, template=s.name, dependencies=deps or None))
    if approve:
        templates.append(Suspend(name=APPROVE))
    templates = [DAG(name=ENTRYPOINT, tasks=tasks), *templates, *_exit_handler(plan)]
    wt = WorkflowTemplate(
        name=pipeline.name,
        namespace=plan.namespace,
        labels=dict(plan.labels),
        annotations={"workflows.argoproj.io/description": pipeline.description} if pipeline.description else None,
        entrypoint=ENTRYPOINT,
        on_exit=EXIT_HANDLER,
        service_account_name=plan.service_account,
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        ttl_strategy=m.TTLStrategy(seconds_after_success=TTL_SUCCESS, seconds_after_failure=TTL_FAILURE),
        pod_metadata=m.Metadata(labels=dict(plan.labels)),
        workflow_metadata=m.WorkflowMetadata(labels=dict(plan.labels)),
        volumes=volumes,
        templates=templates,
    )
    return wt.to_dict()


def cron_workflow(plan: Plan, name: str, template: str, cron: str, suspend: bool) -> dict[str, Any]:
    cw = CronWorkflow(
        name=name,
        namespace=plan.namespace,
        labels=dict(plan.labels),
        schedules=[cron],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=300,
        successful_jobs_history_limit=HISTORY_SUCCESS,
        failed_jobs_history_limit=HISTORY_FAILURE,
        cron_suspend=suspend,
        workflow_metadata=m.WorkflowMetadata(labels=dict(plan.labels)),
        workflow_template_ref=m.WorkflowTemplateRef(name=template),
    )
    doc = cw.to_dict()
    if plan.argo_version.startswith("3"):
        spec = doc["spec"]
        schedules = spec.pop("schedules")
        spec["schedule"] = schedules[0]
    return doc
