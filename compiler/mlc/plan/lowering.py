"""Stage 2: Spec -> Plan. Pure: the same spec text, environment and Argo version always give the same Plan."""

from __future__ import annotations

import hashlib

from mlc.image import base_image, extras_for
from mlc.image.refs import local_tag
from mlc.plan.model import (
    DEFAULT_ARGO_VERSION,
    ENV_LABEL,
    MANAGED_BY,
    PROJECT_LABEL,
    Endpoint,
    EnvVar,
    GitOpsApp,
    IgnoreDifference,
    InputColumn,
    Pipeline,
    Plan,
    Schedule,
    Step,
    StepResources,
    Storage,
)
from mlc.plan.names import dns_label, env_var
from mlc.spec.models import LOWER_IS_BETTER, ArgoCD, Resources, Spec

DEFAULT_STEP_RESOURCES = Resources(cpu="500m", memory="1Gi")


def container_env(tracking_uri: str | None, storage: Storage,
                  secrets: tuple[tuple[str, str | None], ...]) -> tuple[tuple[EnvVar, ...], tuple[str, ...]]:
    """The environment shared by every mlc container, and the Secrets mounted whole (envFrom). Credentials are
    only ever references."""
    env: list[EnvVar] = []
    if tracking_uri:
        env.append(EnvVar("MLFLOW_TRACKING_URI", tracking_uri))
    if storage.endpoint:
        env += [EnvVar("AWS_ENDPOINT_URL", storage.endpoint), EnvVar("MLFLOW_S3_ENDPOINT_URL", storage.endpoint)]
    if storage.secret:
        env += [EnvVar(k, secret=storage.secret, secret_key=k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    env += [EnvVar(env_var(key), secret=secret, secret_key=key) for secret, key in secrets if key]
    return tuple(env), tuple(secret for secret, key in secrets if not key)


def _res(*layers: Resources | None, default: Resources = DEFAULT_STEP_RESOURCES) -> StepResources:
    """Merge resource layers; later layers win field by field."""
    cpu, mem, gpu = default.cpu, default.memory, default.gpu
    for r in layers:
        if r is None:
            continue
        cpu = r.cpu or cpu
        mem = r.memory or mem
        gpu = r.gpu if "gpu" in r.model_fields_set else gpu
    return StepResources(cpu, mem, gpu)


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lower(spec: Spec, spec_text: str, env: str, argo_version: str | None = None, image: str | None = None) -> Plan:
    """Lower a validated spec for one environment. Pure: the same inputs always give the same Plan.

    ``image``: the reference mlc.image.refs.resolve found (the spec's, or the digest images.lock recorded);
    compile and apply pass it. Without it the plan carries the spec's own reference, `local`'s build tag, or none
    ("", which no backend may emit: compile and apply refuse such an environment first)."""
    if env not in spec.environments and env != "local":
        from mlc.errors import UsageError

        raise UsageError(f"environment '{env}' is not defined; the spec has: {', '.join(spec.environments)}")
    e = spec.environments.get(env) or spec.environments.get("local")
    assert e is not None
    project = spec.metadata.name
    sizes = e.resources
    default_res = _res(sizes.default if sizes else None)
    train_res = {c.name: _res(spec.training.resources, sizes.train if sizes else None, c.resources)
                 for c in spec.training.candidates}

    def step(name: str, kind: str, depends: tuple[str, ...] = (), **kw) -> Step:
        return Step(name=name, kind=kind, depends=depends, resources=kw.pop("resources", default_res), **kw)

    train_names = tuple(dns_label("train", c.name) for c in spec.training.candidates)
    steps = [
        step("ingest", "ingest"),
        step("validate-data", "validate-data", ("ingest",), retries=0),
        step("features", "features", ("validate-data",)),
        *(step(n, "train", ("features",), candidate=c.name, resources=train_res[c.name], outputs=("run_id",))
          for n, c in zip(train_names, spec.training.candidates)),
        step("evaluate", "evaluate", train_names, outputs=("winner", "score")),
        step("gate", "gate", ("evaluate",), retries=0, outputs=("passed",)),
        step("register", "register", ("gate",), retries=1, outputs=("version",), cacheable=False),
    ]
    if spec.deployment.online:
        steps.append(step("deploy", "deploy", ("register",), retries=1, cacheable=False))
    pipelines = [Pipeline(dns_label(project, "train"), "train", tuple(steps),
                          f"Train, evaluate, gate and register {project}")]
    if spec.monitoring.drift or spec.monitoring.quality:
        mon = []
        if spec.monitoring.drift:
            mon.append(step("drift", "drift", outputs=("drifted",), retries=1, cacheable=False))
        if spec.monitoring.quality and spec.monitoring.quality.feedback:
            mon.append(step("quality", "quality", retries=1, cacheable=False))
        pipelines.append(Pipeline(dns_label(project, "monitor"), "monitor", tuple(mon),
                                  f"Drift and quality checks for {project}"))
    if spec.deployment.batch:
        pipelines.append(Pipeline(dns_label(project, "batch"), "batch",
                                  (step("batch-score", "batch-score", retries=1, cacheable=False),),
                                  f"Batch scoring with the production model of {project}"))

    suspend = not e.schedules
    schedules = []
    rt = spec.monitoring.retraining
    if rt and rt.schedule:
        schedules.append(Schedule(dns_label(project, "retrain"), pipelines[0].name, rt.schedule, suspend))
    if spec.monitoring.drift:
        schedules.append(Schedule(dns_label(project, "monitor"), dns_label(project, "monitor"),
                                  spec.monitoring.drift.schedule, suspend))
    if spec.deployment.batch:
        schedules.append(Schedule(dns_label(project, "batch"), dns_label(project, "batch"),
                                  spec.deployment.batch.schedule, suspend))

    endpoint = None
    on = spec.deployment.online
    if on:
        endpoint = Endpoint(
            name=dns_label(project),
            model=spec.registry.model,
            alias=spec.registry.production_alias,
            runtime=on.runtime,
            mode=on.mode,
            canary_steps=tuple(on.canary),
            min_replicas=on.replicas.min,
            max_replicas=on.replicas.max,
            scale_metric=on.autoscaling.metric,
            scale_target=on.autoscaling.target,
            resources=_res(on.resources, sizes.serve if sizes else None, default=on.resources),
            timeout_seconds=on.timeout_seconds,
        )

    namespace = e.namespace or dns_label(project, env)
    if e.storage:
        root = e.storage.root
        endpoint_url = e.storage.endpoint
        secret = e.storage.credentials.secret if e.storage.credentials else None
    else:
        root, endpoint_url, secret = f"/var/lib/mlc/{project}", None, None
    storage = Storage(root, endpoint_url, secret, None if root.startswith("s3://") else dns_label(project, "artifacts"))
    env_vars, env_from = container_env(e.tracking_uri, storage, tuple((s.secret, s.key) for s in e.secrets))
    labels = {**spec.metadata.labels, **MANAGED_BY, PROJECT_LABEL: project, ENV_LABEL: env}
    return Plan(
        project=project,
        env=env,
        namespace=namespace,
        image=image if image is not None else (e.image or (local_tag(project) if env == "local" else "")),
        service_account=e.service_account or dns_label(project, "pipeline"),
        tracking_uri=e.tracking_uri,
        storage=storage,
        argo_version=argo_version or e.argo_version or DEFAULT_ARGO_VERSION,
        spec_hash=spec_hash(spec_text),
        spec_text=spec_text,
        spec_configmap=dns_label(project, "spec"),
        labels=dict(sorted(labels.items())),
        pod_env=env_vars,
        pod_env_secrets=env_from,
        pipelines=tuple(pipelines),
        schedules=tuple(schedules),
        endpoint=endpoint,
        select_by=spec.training.select_by,
        select_higher_is_better=spec.training.select_by not in LOWER_IS_BETTER,
        task=spec.data.label.task,
        label=spec.data.label.column,
        inputs=input_columns(spec),
        model_name=spec.registry.model,
        spec=spec,
        manual_approval=spec.gates.manual_approval,
        image_base=base_image(spec, env),
        image_extras=extras_for(spec, env),
        argocd=gitops_app(e.argocd, project, env, namespace, endpoint) if e.argocd else None,
    )


# Server-side apply: the objects are large (the spec ConfigMap, Argo's templates) and mlc applies them that way
# too; RespectIgnoreDifferences: without it a sync still writes the ignored fields back (argo-cd#9678);
# PruneLast: objects that are gone are deleted only after the rest is healthy.
ARGOCD_SYNC_OPTIONS = ("ServerSideApply=true", "RespectIgnoreDifferences=true", "PruneLast=true")


def gitops_app(a: ArgoCD, project: str, env: str, namespace: str, endpoint: Endpoint | None) -> GitOpsApp:
    """The Argo CD Application of one environment. Its ignoreDifferences are exactly the InferenceService fields
    the deploy step and the rollout patch on the live object (mlc.backends.kserve.LIVE_*), which Git never
    holds: without them, self-heal would undo every promotion."""
    from mlc.backends.kserve import LIVE_JQ_PATHS, LIVE_JSON_POINTERS

    ignore = ()
    if endpoint is not None:
        ignore = (IgnoreDifference("serving.kserve.io", "InferenceService", endpoint.name, namespace,
                                   tuple(LIVE_JSON_POINTERS), tuple(LIVE_JQ_PATHS)),)
    url = a.destination.startswith(("https://", "http://"))
    return GitOpsApp(
        name=a.name or dns_label(project, env), namespace=a.namespace, project=a.project, repo_url=a.repo_url,
        target_revision=a.target_revision, path=a.path or f"generated/{project}/{env}",
        server=a.destination if url else None, cluster=None if url else a.destination, dest_namespace=namespace,
        automated=a.automated, prune=a.prune, self_heal=a.self_heal, cascade_delete=a.cascade_delete,
        retry_limit=a.retry_limit, sync_options=ARGOCD_SYNC_OPTIONS, ignore=ignore,
        annotations=tuple(sorted(a.annotations.items())))


def input_columns(spec: Spec) -> tuple[InputColumn, ...]:
    used = {c for f in spec.features if f.type != "drop" for c in f.columns}
    return tuple(InputColumn(n, c.type, c.nullable, tuple(c.allowed) if c.allowed is not None else None,
                             c.min, c.max)
                 for n, c in spec.data.schema_.items() if n in used)
