"""Stage 2: Spec -> Plan, the IR every backend and the runtime read.

All names, defaults and the container contract are derived here, once:

    every step runs  `mlc step <step> --spec /etc/mlc/mlproject.yaml --run-id <id> --env <env>`
    from the environment's image; the spec arrives through the ConfigMap <project>-spec; steps exchange
    artifacts under <storage.root>/runs/<run-id>/<step>/ and small values through output parameters
    written to $MLC_OUTPUTS_DIR/<name>.

The local executor (`mlc run`) uses the same steps, the same artifact layout and the same run-id contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from mlc import __version__
from mlc.plan.names import dns_label, env_var
from mlc.spec.models import LOWER_IS_BETTER, Resources, Spec

if TYPE_CHECKING:
    from mlc.plan.rules import RuleGroup

DEFAULT_IMAGE = f"ghcr.io/mlc-dev/mlc:{__version__}"
DEFAULT_ARGO_VERSION = "3.7"
SPEC_MOUNT_DIR = "/etc/mlc"
SPEC_FILE = "mlproject.yaml"
SPEC_MOUNT = f"{SPEC_MOUNT_DIR}/{SPEC_FILE}"
OUTPUTS_DIR = "/tmp/mlc-outputs"
RUN_ID = "{{run_id}}"  # placeholder each backend replaces with its own run identifier
LOCAL_STATE_DIR = ".mlc"  # inside the project directory: sqlite tracking store, artifacts, cache
SERVE_PORT = 8080
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlc"}
PROJECT_LABEL = "mlc.dev/project"
ENV_LABEL = "mlc.dev/env"
DEFAULT_STEP_RESOURCES = Resources(cpu="500m", memory="1Gi")


@dataclass(frozen=True)
class StepResources:
    cpu: str | None
    memory: str | None
    gpu: int = 0


@dataclass(frozen=True)
class Step:
    """One container invocation of `mlc step <name>`."""

    name: str  # DNS-1123 label, unique in its pipeline: ingest, train-logreg, ...
    kind: str  # which runtime function runs it: ingest, validate-data, features, train, evaluate, ...
    depends: tuple[str, ...] = ()
    resources: StepResources = StepResources("500m", "1Gi")
    retries: int = 2
    outputs: tuple[str, ...] = ()  # output parameters, written to $MLC_OUTPUTS_DIR/<name>
    candidate: str | None = None  # train steps only
    cacheable: bool = True  # KFP caching / local step cache; never true for steps with side effects

    def command(self, env: str, run_id: str = RUN_ID) -> list[str]:
        return ["mlc", "step", self.name, "--spec", SPEC_MOUNT, "--run-id", run_id, "--env", env]


@dataclass(frozen=True)
class InputColumn:
    """A raw column the model takes at serving time (consumed by a non-drop feature group)."""

    name: str
    type: str  # integer | float | string | boolean | category | datetime
    nullable: bool
    allowed: tuple | None = None
    min: float | None = None  # numeric bounds from the schema, enforced at serving time
    max: float | None = None


@dataclass(frozen=True)
class Pipeline:
    name: str  # Kubernetes name of the WorkflowTemplate / KFP pipeline
    purpose: str  # train | drift | batch
    steps: tuple[Step, ...]
    description: str = ""

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class Schedule:
    """A CronWorkflow: runs ``pipeline`` on ``cron`` (UTC)."""

    name: str
    pipeline: str
    cron: str
    suspend: bool


@dataclass(frozen=True)
class Storage:
    root: str  # s3://bucket/prefix, or an absolute path on a mounted volume
    endpoint: str | None
    secret: str | None  # Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    volume_claim: str | None  # PVC mounted at ``root`` when it is not s3://

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def run_dir(self, run_id: str) -> str:
        return f"{self.root.rstrip('/')}/runs/{run_id}"

    def model_dir(self, model: str, alias: str) -> str:
        """Where the deploy step exports the MLflow model it promotes, for KServe's built-in runtimes."""
        return f"{self.root.rstrip('/')}/models/{model}/{alias}"

    def model_uri(self, model: str, alias: str) -> str:
        """``model_dir`` as KServe's storage initializer reads it: s3:// as is, a volume as pvc://<claim>/..."""
        if self.is_s3 or not self.volume_claim:
            return self.model_dir(model, alias)
        return f"pvc://{self.volume_claim}/models/{model}/{alias}"


@dataclass(frozen=True)
class Endpoint:
    name: str  # InferenceService name
    model: str  # registered model name
    alias: str  # production alias served
    runtime: str  # mlc | mlflow | sklearn
    mode: str  # Knative | Standard
    canary_steps: tuple[int, ...]
    min_replicas: int
    max_replicas: int
    scale_metric: str
    scale_target: int
    resources: StepResources
    timeout_seconds: int
    port: int = SERVE_PORT

    @property
    def canary_percent(self) -> int | None:
        return self.canary_steps[0] if self.canary_steps and self.canary_steps[0] < 100 else None

    def serve_command(self, env: str) -> list[str]:
        return ["mlc", "serve", SPEC_MOUNT, "--env", env, "--alias", self.alias, "--host", "0.0.0.0",
                "--port", str(self.port)]


@dataclass(frozen=True)
class EnvVar:
    """An environment variable of every mlc container (steps and predictor): a literal, or a Secret key."""

    name: str
    value: str | None = None
    secret: str | None = None
    secret_key: str | None = None


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


@dataclass(frozen=True)
class Plan:
    project: str
    env: str
    namespace: str
    image: str
    service_account: str
    tracking_uri: str | None
    storage: Storage
    argo_version: str
    spec_hash: str  # sha256 of the spec text: lineage, cache keys, ConfigMap content
    spec_text: str
    spec_configmap: str
    labels: dict[str, str]  # common labels for every object
    pod_env: tuple[EnvVar, ...]  # every mlc container's environment variables (see container_env)
    pod_env_secrets: tuple[str, ...]  # Secrets exposed whole to every mlc container
    pipelines: tuple[Pipeline, ...]
    schedules: tuple[Schedule, ...]
    endpoint: Endpoint | None
    select_by: str
    select_higher_is_better: bool
    task: str  # classification | regression
    label: str
    inputs: tuple[InputColumn, ...]  # the serving/batch input schema, in spec order
    model_name: str  # registered model name
    spec: Spec = field(repr=False, compare=False)  # for the runtime and the rules builder only
    manual_approval: bool = False  # register waits for a human (Argo: a suspend step before register)

    @cached_property
    def rules(self) -> tuple[RuleGroup, ...]:
        """The monitoring rules (mlc.plan.rules); derived on first use, since lowering for `mlc validate` or
        `mlc run` does not need them."""
        from mlc.plan.rules import build_rules

        return build_rules(self)

    def pipeline(self, purpose: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.purpose == purpose), None)

    def find_step(self, name: str) -> tuple[Pipeline, Step]:
        for p in self.pipelines:
            for s in p.steps:
                if s.name == name:
                    return p, s
        raise KeyError(name)


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


def lower(spec: Spec, spec_text: str, env: str, argo_version: str | None = None) -> Plan:
    """Lower a validated spec for one environment. Pure: the same inputs always give the same Plan."""
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
        image=e.image or DEFAULT_IMAGE,
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
    )


def input_columns(spec: Spec) -> tuple[InputColumn, ...]:
    used = {c for f in spec.features if f.type != "drop" for c in f.columns}
    return tuple(InputColumn(n, c.type, c.nullable, tuple(c.allowed) if c.allowed is not None else None,
                             c.min, c.max)
                 for n, c in spec.data.schema_.items() if n in used)
