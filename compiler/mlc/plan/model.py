"""The Plan: the IR between the spec and every backend and the runtime (frozen dataclasses, nothing else).

Every name, default and the container contract are fixed here, once:

    every step runs  `mlc step <step> --spec /etc/mlc/mlproject.yaml --run-id <id> --env <env>`
    from the environment's image; the spec arrives through the ConfigMap <project>-spec; steps exchange
    artifacts under <storage.root>/runs/<run-id>/<step>/ and small values through output parameters
    written to $MLC_OUTPUTS_DIR/<name>.

The local executor (`mlc run`) uses the same steps, the same artifact layout and the same run-id contract.
``mlc.plan.lowering`` builds a Plan from a validated Spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from mlc.plan.analysis import AnalysisMetric

if TYPE_CHECKING:
    from mlc.plan.rules import RuleGroup
    from mlc.spec.models import Spec

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
OUTPUTS_JSON_ENV = "MLC_OUTPUTS_JSON"  # if set, `mlc step` also writes its outputs there as one JSON object
# Retry backoff of every step with retries (Argo's backoff, KFP's set_retry, Airflow's retry_delay): 30 s, doubled
# each attempt, at most 10 minutes.
RETRY_DELAY_S = 30
RETRY_BACKOFF_FACTOR = 2
RETRY_MAX_DELAY_S = 600
STEP_TIMEOUT_S = 3600  # a step's execution time limit (Airflow's execution_timeout); train steps get TRAIN_TIMEOUT_S
TRAIN_TIMEOUT_S = 4 * 3600
DEFAULT_TARGETS = ("argo", "kfp")  # the workflow engines an environment compiles to unless it lists `targets`



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
    timeout_s: int = STEP_TIMEOUT_S  # execution limit of one attempt (Airflow's execution_timeout)

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
    min_replicas: int
    max_replicas: int
    scale_metric: str
    scale_target: int
    resources: StepResources
    timeout_seconds: int
    port: int = SERVE_PORT

    def serve_command(self, env: str) -> list[str]:
        return ["mlc", "serve", SPEC_MOUNT, "--env", env, "--alias", self.alias, "--host", "0.0.0.0",
                "--port", str(self.port)]


@dataclass(frozen=True)
class RolloutStep:
    weight: int  # percent of requests to the new version; 100 promotes it
    pause: str | None  # hold after the step's analysis passed (a duration Argo's suspend reads), or none
    pause_seconds: float


@dataclass(frozen=True)
class Rollout:
    """Progressive delivery of a newly registered version: for each step below 100, set the canary's weight,
    wait for its revision, analyse it, hold; then promote. Compiled into its own Argo WorkflowTemplate;
    ``mlc rollout start --env local`` runs the same analysis against `mlc serve --canary`."""

    name: str  # the WorkflowTemplate: <project>-rollout
    steps: tuple[RolloutStep, ...]
    interval: str  # between measurements; also the rate window of the built-in queries
    interval_seconds: float
    count: int
    failure_limit: int
    inconclusive_limit: int
    metrics: tuple[AnalysisMetric, ...]
    prometheus: str | None  # None (local only, by default): read `mlc serve`'s /metrics directly
    on_no_data: str  # inconclusive | fail
    on_failure: str  # rollback | pause
    pipeline: Pipeline  # analyze-<weight> per step below 100, then promote; not one of Plan.pipelines

    def analyze_step(self, weight: int) -> str:
        return f"analyze-{weight}"

    def step_for(self, name: str) -> RolloutStep | None:
        return next((s for s in self.steps if self.analyze_step(s.weight) == name), None)


@dataclass(frozen=True)
class EnvVar:
    """An environment variable of every mlc container (steps and predictor): a literal, or a Secret key."""

    name: str
    value: str | None = None
    secret: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class IgnoreDifference:
    """Fields of one live object that a GitOps controller must not revert (set at run time, not in Git)."""

    group: str
    kind: str
    name: str
    namespace: str
    json_pointers: tuple[str, ...]
    jq_paths: tuple[str, ...]


@dataclass(frozen=True)
class GitOpsApp:
    """An Argo CD Application for this environment: it syncs ``path`` of ``repo_url`` into ``dest_namespace``."""

    name: str
    namespace: str  # where the Application lives (argocd)
    project: str  # the AppProject
    repo_url: str
    target_revision: str
    path: str  # generated/<project>/<env>, the directory of the kustomization
    server: str | None  # the destination: an API server URL, or
    cluster: str | None  # a cluster's name in Argo CD
    dest_namespace: str
    automated: bool
    prune: bool
    self_heal: bool
    cascade_delete: bool
    retry_limit: int
    sync_options: tuple[str, ...]
    ignore: tuple[IgnoreDifference, ...]
    annotations: tuple[tuple[str, str], ...] = ()


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
    image_base: str = ""  # the step image's base (FROM), see mlc.image
    image_extras: tuple[str, ...] = ()  # mlc's optional dependency groups the step image installs
    rollout: Rollout | None = None  # progressive delivery of the endpoint (canary steps below 100)
    targets: tuple[str, ...] = DEFAULT_TARGETS  # workflow engines emitted for this environment: argo, kfp, airflow
    argocd: GitOpsApp | None = None  # the environment's Argo CD Application, when it asks for one

    @cached_property
    def latency_buckets(self) -> tuple[float, ...]:
        """The request-duration histogram's bounds (seconds) that `mlc serve` exports: the standard ones plus
        each latency objective, so that "requests within p95_ms" is a bucket count, exact, for the latency
        SLOs' error budgets (mlc.plan.rules)."""
        from mlc.plan.metrics import LATENCY_BUCKETS

        slo = self.spec.monitoring.slo
        lat = slo.latency if slo is not None else None
        extra = {ms / 1000 for ms in (lat.p95_ms, lat.p99_ms) if ms is not None} if lat is not None else set()
        return tuple(sorted(set(LATENCY_BUCKETS) | extra))

    @cached_property
    def rules(self) -> tuple[RuleGroup, ...]:
        """The monitoring rules (mlc.plan.rules); derived on first use, since lowering for `mlc validate` or
        `mlc run` does not need them."""
        from mlc.plan.rules import build_rules

        return build_rules(self)

    def pipeline(self, purpose: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.purpose == purpose), None)

    def argo_target(self, command: str) -> str | None:
        """Why ``command`` (which starts Argo Workflows) cannot run for this environment, or None when it can:
        an environment whose ``targets`` leave out argo has no WorkflowTemplates on its cluster."""
        if "argo" in self.targets:
            return None
        return (f"`{command}` starts an Argo Workflow, but environment {self.env} compiles none (targets: "
                f"{', '.join(self.targets)}); add argo to environments.{self.env}.targets, or start the pipeline "
                "on the engine it targets")

    def find_step(self, name: str) -> tuple[Pipeline, Step]:
        for p in (*self.pipelines, *((self.rollout.pipeline,) if self.rollout else ())):
            for s in p.steps:
                if s.name == name:
                    return p, s
        raise KeyError(name)
