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
    TRAIN_TIMEOUT_S,
    Endpoint,
    EnvVar,
    GitOpsApp,
    IgnoreDifference,
    InputColumn,
    Pipeline,
    Plan,
    Rollout,
    RolloutStep,
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
        *(step(n, "train", ("features",), candidate=c.name, resources=train_res[c.name], outputs=("run_id",),
               timeout_s=TRAIN_TIMEOUT_S)
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
        rollout=rollout(spec, env, e.prometheus) if endpoint else None,
        targets=tuple(dict.fromkeys(e.targets)),
        argocd=gitops_app(e.argocd, project, env, namespace, endpoint) if e.argocd else None,
    )


DEFAULT_PAUSE = "5m"  # each step of the short form `canary: [10, 50, 100]`
ANALYZE_RESOURCES = StepResources("100m", "256Mi")  # the analysis only queries Prometheus and the registry
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"  # prometheus-operator's Service


def rollout(spec: Spec, env: str, env_prometheus: str | None) -> Rollout | None:
    """The rollout of a new version, or None when every version goes straight to 100%. Its Prometheus: the
    environment's; else, on a cluster, the analysis' or prometheus-operator's Service; locally none (the
    analysis' address is the cluster's; `mlc rollout` then reads `mlc serve`'s /metrics)."""
    from mlc.plan import analysis as A

    on = spec.deployment.online
    assert on is not None
    r = on.rollout
    if r is not None and r.steps is not None:
        steps = [RolloutStep(s.weight, s.pause, duration_seconds(s.pause) if s.pause else 0.0) for s in r.steps]
    else:
        steps = [RolloutStep(w, DEFAULT_PAUSE if w < 100 else None, duration_seconds(DEFAULT_PAUSE) if w < 100
                             else 0.0) for w in on.canary]
    if not any(s.weight < 100 for s in steps):
        return None
    a = r.analysis if r is not None else None
    if a is not None and a.metrics is not None:
        metrics = tuple(A.custom(x.name, x.query, min=x.min, max=x.max) if x.query is not None
                        else A.builtin(x.name, min=x.min, max=x.max, of=x.of, margin=x.margin) for x in a.metrics)
    else:
        slo = spec.monitoring.slo
        p95 = slo.latency.p95_ms if slo and slo.latency and slo.latency.p95_ms else None
        metrics = (A.builtin(A.ERROR_RATIO, max=slo.error_rate if slo and slo.error_rate else 0.05),
                   A.builtin(A.LATENCY_P95, max=p95 / 1000 if p95 else 1.0))
    project = spec.metadata.name
    names = [f"analyze-{s.weight}" for s in steps if s.weight < 100]
    rsteps = [Step(n, "analyze", (names[i - 1],) if i else (), ANALYZE_RESOURCES, retries=0,
                   outputs=("verdict",), cacheable=False) for i, n in enumerate(names)]
    rsteps.append(Step("promote", "promote", (names[-1],), ANALYZE_RESOURCES, retries=1, cacheable=False))
    interval = a.interval if a is not None else "1m"
    name = dns_label(project, "rollout")
    return Rollout(
        name=name,
        steps=tuple(steps),
        interval=interval,
        interval_seconds=duration_seconds(interval),
        count=a.count if a is not None else 5,
        failure_limit=a.failure_limit if a is not None else 0,
        inconclusive_limit=a.inconclusive_limit if a is not None else 0,
        metrics=metrics,
        prometheus=env_prometheus or (None if env == "local" else (a.prometheus if a is not None else None)
                                      or DEFAULT_PROMETHEUS),
        on_no_data=a.on_no_data if a is not None else "inconclusive",
        on_failure=r.on_failure if r is not None else "rollback",
        pipeline=Pipeline(name, "rollout", tuple(rsteps),
                          f"Progressive rollout of a new {project} version: "
                          + ", ".join(f"{s.weight}%" for s in steps)),
    )


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_seconds(text: str) -> float:
    """A Prometheus-style duration (``1h30m``, ``10s``, ``250ms``) in seconds; validation ran first."""
    import re

    return float(sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)))


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
