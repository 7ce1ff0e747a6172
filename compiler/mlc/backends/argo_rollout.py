"""Stage 3 backend, Argo part two: Plan.rollout -> the ``<project>-rollout`` WorkflowTemplate.

KServe moves traffic between revisions only when told (``canaryTrafficPercent``) and judges nothing, so the
loop is a workflow: for each step below 100, set the weight (a resource template, a JSON merge patch), analyse
the canary (``mlc step analyze-<weight>``: waits for the revision, queries Prometheus ``count`` times every
``interval``, rolls back and exits non-zero on failure), hold for the step's pause (a suspend node, no pod);
then ``mlc step promote``. A failed step fails the workflow, so the exit handler reports it like any other.

Started with two parameters by the train pipeline's deploy step, or by ``mlc rollout start``: ``version``,
the registry version to roll out, and ``stable``, the one it is compared with (serving the rest).
"""

from __future__ import annotations

from typing import Any

from mlc.backends import Output
from mlc.plan import Plan, Rollout

VERSION_PARAM = "version"
STABLE_PARAM = "stable"
VERSION_ENV = "MLC_ROLLOUT_VERSION"
STABLE_ENV = "MLC_ROLLOUT_STABLE"
ROLLOUT_LABEL = "mlc.dev/rollout"  # on the rollout's Workflows: what `mlc rollout abort|promote` stops


def build(plan: Plan) -> list[Output]:
    if plan.rollout is None or plan.endpoint is None:
        return []
    r = plan.rollout
    return [Output(f"argo/workflowtemplate-{r.name}.yaml", rollout_template(plan, r))]


def weight_patch(plan: Plan, weight: int) -> dict[str, Any]:
    """The merge patch of one step: only the percentage; the revision itself was made by the deploy step."""
    assert plan.endpoint is not None
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": plan.endpoint.name, "namespace": plan.namespace},
            "spec": {"predictor": {"canaryTrafficPercent": weight}}}


def rollout_template(plan: Plan, r: Rollout) -> dict[str, Any]:
    # hera here, not at the top: the steps and `mlc rollout` read this module's names without paying for it
    import yaml
    from hera.workflows import DAG, Env, Parameter, Resource, Suspend, Task, WorkflowTemplate
    from hera.workflows import models as m

    from mlc.backends import argo

    env, env_from = argo._env(plan)
    env = [*env, Env(name=VERSION_ENV, value=f"{{{{workflow.parameters.{VERSION_PARAM}}}}}"),
           Env(name=STABLE_ENV, value=f"{{{{workflow.parameters.{STABLE_PARAM}}}}}")]
    volumes, mounts = argo._volumes(plan)
    templates: list[Any] = []
    tasks: list[Task] = []
    previous: str | None = None

    def chain(name: str, template: str) -> None:
        nonlocal previous
        tasks.append(Task(name=name, template=template, dependencies=[previous] if previous else None))
        previous = name

    for s in r.steps:
        if s.weight == 100:
            break
        set_weight = f"set-weight-{s.weight}"
        templates.append(Resource(name=set_weight, action="patch", merge_strategy="merge",
                                  manifest=yaml.safe_dump(weight_patch(plan, s.weight), sort_keys=False)))
        chain(set_weight, set_weight)
        analyze = r.analyze_step(s.weight)
        templates.append(argo._container(plan, r.pipeline.step(analyze), env, env_from, mounts))
        chain(analyze, analyze)
        if s.pause:
            pause = f"pause-{s.weight}"
            templates.append(Suspend(name=pause, duration=s.pause))
            chain(pause, pause)
    templates.append(argo._container(plan, r.pipeline.step("promote"), env, env_from, mounts))
    chain("promote", "promote")
    labels = {**plan.labels, ROLLOUT_LABEL: plan.endpoint.name if plan.endpoint else r.name}
    wt = WorkflowTemplate(
        name=r.name,
        namespace=plan.namespace,
        labels=dict(plan.labels),
        annotations={"workflows.argoproj.io/description": r.pipeline.description},
        entrypoint=argo.ENTRYPOINT,
        on_exit=argo.EXIT_HANDLER,
        service_account_name=plan.service_account,
        arguments=[Parameter(name=VERSION_PARAM, description="Registry version to roll out"),
                   Parameter(name=STABLE_PARAM, description="Registry version serving the rest (compared with)")],
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        ttl_strategy=m.TTLStrategy(seconds_after_success=argo.TTL_SUCCESS,
                                   seconds_after_failure=argo.TTL_FAILURE),
        pod_metadata=m.Metadata(labels=dict(plan.labels)),
        workflow_metadata=m.WorkflowMetadata(labels=dict(sorted(labels.items()))),
        volumes=volumes,
        templates=[DAG(name=argo.ENTRYPOINT, tasks=tasks), *templates, *argo._exit_handler(plan)],
    )
    return wt.to_dict()
