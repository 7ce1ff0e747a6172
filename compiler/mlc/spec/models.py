"""The typed mlproject.yaml language.

Every field has a description: it feeds editor completion (schemas/mlproject.schema.json) and the README's
spec reference. Cross-field rules live in checks.py so that all problems are reported in one run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

API_VERSION = "mlc.dev/v1alpha1"
KIND = "MLProject"

CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape"})
METRIC_ALIASES = {"auc": "roc_auc"}  # what people write -> the metric mlc computes, normalised on load
Metric = Annotated[Literal["roc_auc", "pr_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier",
                           "rmse", "mae", "r2", "mape", "auc"],
                   AfterValidator(lambda m: METRIC_ALIASES.get(m, m))]
BUILTIN_ESTIMATORS = {
    "sklearn": ("logistic_regression", "linear_regression", "ridge", "random_forest",
                "hist_gradient_boosting", "gradient_boosting", "mlp"),
    "lightning": ("tabular_mlp",),
}


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SecretRef(_M):
    """A reference to a Kubernetes Secret key. Literal credentials are never allowed in a spec."""

    secret: str = Field(description="Name of the Kubernetes Secret.")
    key: str | None = Field(None, description="Key inside the Secret; omit to mount every key as env vars.")


# --------------------------------------------------------------------------- metadata
class Metadata(_M):
    name: str = Field(description="Project name; becomes part of every Kubernetes name (DNS-1123 label).")
    owner: str | None = Field(None, description="Person or group accountable for the model (e-mail or handle).")
    team: str | None = Field(None, description="Owning team; used as the default alert routing label.")
    description: str | None = Field(None, description="One paragraph on what the model is for.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra Kubernetes labels for every object.")


# --------------------------------------------------------------------------- environments
class Storage(_M):
    root: str = Field(description="Where steps share artifacts: a local path or s3://bucket/prefix.")
    endpoint: str | None = Field(None, description="Custom S3 endpoint URL (MinIO), e.g. http://minio.minio:9000.")
    credentials: SecretRef | None = Field(
        None, description="Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the storage root.")


class Resources(_M):
    cpu: str | None = Field(None, description="CPU request as a Kubernetes quantity, e.g. '500m' or '2'.")
    memory: str | None = Field(None, description="Memory request as a Kubernetes quantity, e.g. '2Gi'.")
    gpu: int = Field(0, ge=0, description="Number of nvidia.com/gpu to request.")


class ResourceSizes(_M):
    """Per-environment resource overrides, by step class."""

    default: Resources | None = Field(None, description="Every pipeline step except training.")
    train: Resources | None = Field(None, description="Every train-<candidate> step.")
    serve: Resources | None = Field(None, description="The online predictor.")


class ArgoCD(_M):
    """Opt-in: an Argo CD Application that syncs this environment's generated kustomization from Git."""

    repo_url: str = Field(description="Git repository Argo CD reads the generated output from, e.g. "
                                      "https://github.com/acme/ml.git (credentials live in Argo CD, never here).")
    target_revision: str = Field("HEAD", description="Branch, tag or commit Argo CD syncs.")
    path: str | None = Field(None, description="Directory of the environment's kustomization.yaml in that "
                                               "repository. Default: generated/<project>/<env>.")
    project: str = Field("default", description="Argo CD AppProject of the Application.")
    namespace: str = Field("argocd", description="Namespace the Application lives in (the one Argo CD watches).")
    name: str | None = Field(None, description="Application name. Default: <project>-<env>.")
    destination: str = Field("https://kubernetes.default.svc", description="Target cluster: an API server URL "
                             "(https://...), or the name of a cluster registered in Argo CD.")
    automated: bool = Field(True, description="Sync every new commit of target_revision (false: sync by hand).")
    prune: bool = Field(True, description="Automated sync deletes objects mlc no longer generates.")
    self_heal: bool = Field(True, description="Automated sync reverts changes made on the cluster by hand (the "
                                              "fields the deploy step and the rollout set are left alone).")
    cascade_delete: bool = Field(False, description="Deleting the Application deletes what it deployed (the "
                                                    "resources finalizer). Default off: the endpoint keeps serving.")
    retry_limit: int = Field(5, ge=0, le=100, description="Failed syncs retried this many times (backoff 5s, "
                                                          "doubling, at most 3m).")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the Application, e.g. "
                                        "notifications.argoproj.io/subscribe.on-sync-failed.slack: ml-alerts.")


class Environment(_M):
    """An overlay: only where and how big, never what the pipeline does."""

    namespace: str | None = Field(None, description="Kubernetes namespace. Default: <project>-<env>.")
    image: str | None = Field(
        None, description="Image that runs every step and `mlc serve`: repo/name@sha256:<digest> or repo/name:tag. "
        "Default: the digest `mlc build --push` recorded in images.lock beside the spec.")
    image_base: str | None = Field(
        None, description="Base image of the step image `mlc image` writes. Default: python:3.11-slim-bookworm.")
    storage: Storage | None = Field(None, description="Artifact storage root. Default: .mlc/artifacts in the project.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI. Default: a sqlite store in .mlc/ (local runs only).")
    service_account: str | None = Field(None, description="ServiceAccount for pipeline pods and the predictor.")
    resources: ResourceSizes | None = Field(None, description="Resource overrides by step class.")
    schedules: bool = Field(True, description="Whether CronWorkflows are active (false: generated but suspended).")
    argo_version: Literal["3.7", "4"] | None = Field(
        None, description="Argo Workflows major version to target. Default: 3.7 (see README).")
    secrets: list[SecretRef] = Field(default_factory=list,
                                     description="Secrets exposed to every step as environment variables.")
    prometheus: str | None = Field(None, description="Prometheus base URL the rollout analysis queries in this "
                                                     "environment (overrides rollout.analysis.prometheus).")
    targets: list[Literal["argo", "kfp", "airflow"]] = Field(
        default_factory=lambda: ["argo", "kfp"], min_length=1,
        description="Workflow engines the pipelines compile to: argo, kfp, airflow (Airflow 3 DAG files). "
        "Default: argo and kfp. A cluster environment with a canary rollout needs argo: the rollout runs as an "
        "Argo Workflow.")
    argocd: ArgoCD | None = Field(None, description="Emit an Argo CD Application for this environment "
                                                    "(generated/<project>/<env>/argocd/).")


# --------------------------------------------------------------------------- data
class Pin(_M):
    sha256: str | None = Field(None, description="Expected sha256 of the file (64 hex characters).")
    dvc: str | None = Field(None, description="Path to a DVC pointer file (*.dvc) whose md5 the file must match.")


class Source(_M):
    name: str = Field("main", description="Name of the source; rows of all sources are concatenated.")
    uri: str = Field(description="Path (relative to the spec) or s3:// URI of the data file.")
    format: Literal["csv", "parquet"] = Field("csv", description="File format.")
    pin: Pin | None = Field(None, description="Version pin checked at ingest; a mismatch fails the run.")


ColumnType = Literal["integer", "float", "string", "boolean", "category", "datetime"]


class Column(_M):
    type: ColumnType = Field(description="Logical type of the column.")
    nullable: bool = Field(True, description="Whether missing values are allowed at all.")
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed: list[str | int | float | bool] | None = Field(None, description="The only values allowed.")
    unique: bool = Field(False, description="Whether every non-null value must be distinct.")
    description: str | None = Field(None, description="What the column means; shown in the model card.")


class _Check(_M):
    severity: Literal["error", "warn"] = Field("error", description="`warn` reports without failing the run.")


class NotNullCheck(_Check):
    check: Literal["not_null"] = Field(description="Share of non-null values in a column.")
    column: str = Field(description="Column to check.")
    min_rate: float = Field(1.0, ge=0, le=1, description="Smallest share of non-null values, 0..1.")


class RangeCheck(_Check):
    check: Literal["range"] = Field(description="Every non-null value of a column within bounds.")
    column: str = Field(description="Column to check.")
    min: float | None = Field(None, description="Smallest allowed value.")
    max: float | None = Field(None, description="Largest allowed value.")


class AllowedValuesCheck(_Check):
    check: Literal["allowed_values"] = Field(description="Every non-null value of a column from a fixed set.")
    column: str = Field(description="Column to check.")
    values: list[str | int | float | bool] = Field(description="The only values allowed (nulls are ignored).")


class UniqueCheck(_Check):
    check: Literal["unique"] = Field(description="Non-null values of a column are distinct.")
    column: str = Field(description="Column whose non-null values must be distinct.")


class RowCountCheck(_Check):
    check: Literal["row_count"] = Field(description="A minimum number of rows.")
    min: int = Field(ge=0, description="Smallest number of rows.")


class DuplicateRowsCheck(_Check):
    check: Literal["duplicate_rows"] = Field(description="A maximum share of fully duplicated rows.")
    max_share: float = Field(ge=0, le=1, description="Largest share of fully duplicated rows, 0..1.")


QualityCheck = Annotated[
    Union[NotNullCheck, RangeCheck, AllowedValuesCheck, UniqueCheck, RowCountCheck, DuplicateRowsCheck],
    Field(discriminator="check"),
]


class Label(_M):
    column: str = Field(description="The target column.")
    task: Literal["classification", "regression"] = Field(description="Binary classification or regression.")
    positive: str | int | bool | None = Field(
        None, description="The positive class (classification). Default: the larger of two sorted values.")


class Split(_M):
    strategy: Literal["random", "stratified", "time"] = Field(
        "stratified", description="stratified on the label, random, or time (the newest rows are the test set).")
    test_size: float = Field(0.2, gt=0, lt=1, description="Share of rows held out for evaluation.")
    time_column: str | None = Field(None, description="Ordering column for strategy: time.")
    seed: int = Field(42, description="Random seed of the split.")


class Data(_M):
    sources: list[Source] = Field(min_length=1, description="Where the training data comes from.")
    schema_: dict[str, Column] = Field(alias="schema", description="Every column, by name.")
    checks: list[QualityCheck] = Field(default_factory=list, description="Quality checks run by validate-data.")
    label: Label = Field(description="What the model predicts.")
    entity: str | None = Field(None, description="The id column; never used as a feature, kept in predictions.")
    split: Split = Field(default_factory=Split, description="How rows are split into train and test.")


# --------------------------------------------------------------------------- features
class _Feature(_M):
    columns: list[str] = Field(min_length=1, description="Columns this transform applies to.")


class Clip(_M):
    min: float | None = Field(None, description="Lower bound.")
    max: float | None = Field(None, description="Upper bound.")


class NumericFeature(_Feature):
    type: Literal["numeric"] = Field(description="Numeric columns: impute, clip, log, scale or bucketize.")
    impute: Literal["mean", "median", "zero", "none"] = Field("median", description="How missing values are filled.")
    clip: Clip | None = Field(None, description="Clip values to this range before other transforms.")
    log: bool = Field(False, description="Apply log1p (values must be > -1 after clipping).")
    scale: Literal["standard", "minmax", "robust", "none"] = Field("standard", description="Scaling.")
    bins: int | None = Field(None, ge=2, le=100, description="Bucketize into this many quantile bins (one-hot).")


class CategoricalFeature(_Feature):
    type: Literal["categorical"] = Field(description="Categorical columns: one-hot or ordinal encoding.")
    encode: Literal["onehot", "ordinal"] = Field("onehot", description="Encoding.")
    max_categories: int | None = Field(
        20, ge=2, description="One-hot: keep the most frequent N, the rest become 'infrequent'.")
    impute: Literal["most_frequent", "constant"] = Field(
        "constant", description="Missing values: the most frequent value, or a '__missing__' category.")


class PassthroughFeature(_Feature):
    type: Literal["passthrough"] = Field(description="Columns used as they are.")


class DropFeature(_Feature):
    type: Literal["drop"] = Field(description="Columns never given to the model.")


class CustomFeature(_Feature):
    type: Literal["custom"] = Field(description="Columns transformed by your own sklearn transformer.")
    transformer: str = Field(description="Import path 'package.module:Class' of an sklearn transformer.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the transformer.")


Feature = Annotated[
    Union[NumericFeature, CategoricalFeature, PassthroughFeature, DropFeature, CustomFeature],
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- training
class Candidate(_M):
    name: str = Field(description="Candidate name; becomes the step train-<name> (DNS-1123 label).")
    framework: Literal["sklearn", "lightning"] = Field("sklearn", description="Training framework.")
    estimator: str = Field(description="A built-in name (logistic_regression, random_forest, hist_gradient_boosting, "
                                       "mlp, tabular_mlp, ...) or an import path 'package.module:Class'.")
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator keyword arguments.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Small search grid; each combination is cross-validated on the train split.")
    resources: Resources | None = Field(None, description="Overrides training.resources for this candidate.")


class Training(_M):
    experiment: str = Field(description="MLflow experiment name.")
    seed: int = Field(42, description="Seed for estimators and Lightning.")
    metrics: list[Metric] = Field(
        min_length=1, description="Metrics computed on the test split; `auc` is an alias of `roc_auc`.")
    select_by: Metric = Field(description="Metric that picks the winning candidate (direction is known per metric).")
    cv_folds: int = Field(3, ge=2, le=10, description="Folds used to pick grid parameters.")
    candidates: list[Candidate] = Field(min_length=1, description="Models to train, in parallel.")
    resources: Resources = Field(default_factory=lambda: Resources(cpu="1", memory="2Gi"),
                                 description="Default resources of each train step.")


# --------------------------------------------------------------------------- gates
class MetricGate(_M):
    metric: Metric = Field(description="Metric to check on the test split.")
    min: float | None = Field(None, description="The metric must be at least this.")
    max: float | None = Field(None, description="The metric must be at most this.")


class ChampionGate(_M):
    metric: Metric = Field(description="Metric compared with the live champion's.")
    max_drop: float | None = Field(None, ge=0, description="Largest allowed absolute drop below the champion.")
    max_relative_drop: float | None = Field(
        None, ge=0, lt=1, description="Largest allowed drop as a share of the champion's value (0.01 = 1%).")


class SliceGate(_M):
    column: str = Field(description="Column whose values define the slices.")
    metric: Metric = Field(description="Metric computed per slice.")
    max_gap: float = Field(ge=0, description="Largest allowed gap between the best and worst slice.")
    min_rows: int = Field(30, ge=1, description="Slices with fewer test rows are reported but not gated.")


class Gates(_M):
    metrics: list[MetricGate] = Field(default_factory=list, description="Absolute floors and ceilings.")
    champion: list[ChampionGate] = Field(default_factory=list, description="Gates relative to the production model.")
    slices: list[SliceGate] = Field(default_factory=list, description="Fairness / slice gap gates.")
    manual_approval: bool = Field(False, description="Production moves only after `mlc approve` (or the Argo "
                                                     "suspend step) even when every gate passes.")


class Registry(_M):
    model: str = Field(description="Registered model name in MLflow.")
    candidate_alias: str = Field("challenger", description="Alias set on every newly registered version.")
    production_alias: str = Field("champion", description="Alias that serving and champion gates use.")


# --------------------------------------------------------------------------- deployment
class Replicas(_M):
    min: int = Field(1, ge=0, description="Smallest replica count (0 allows scale to zero).")
    max: int = Field(3, ge=1, description="Largest replica count.")


class Autoscaling(_M):
    metric: Literal["concurrency", "rps", "cpu", "memory"] = Field("concurrency", description="Scale metric.")
    target: int = Field(10, ge=1, description="Target value per replica.")


class RolloutStep(_M):
    weight: int = Field(description="Share of requests (percent) the new version gets at this step; the last "
                                    "step is 100, which promotes it.")
    pause: str | None = Field(None, description="How long to hold this weight after its analysis passed, before "
                                                "the next step (a duration: 30s, 10m, 1h).")


class AnalysisMetric(_M):
    """One check of the canary: a built-in over `mlc serve`'s series, or raw PromQL."""

    name: str = Field(description="error_ratio, latency_p95, latency_p99, score_shift, relative_to_stable, or a "
                                   "name of your own with `query`.")
    query: str | None = Field(None, description="Raw PromQL for a metric of your own; $version, $model and "
                                                "$namespace are replaced, and $interval by the analysis interval. "
                                                "It must return one series.")
    min: float | None = Field(None, description="The measurement passes when it is at least this.")
    max: float | None = Field(None, description="The measurement passes when it is at most this (error_ratio: a "
                                                "share 0..1; latency: seconds; score_shift: absolute difference).")
    of: Literal["error_ratio", "latency_p95", "latency_p99"] | None = Field(
        None, description="relative_to_stable: the metric the canary must not be worse at than stable.")
    margin: float | None = Field(None, description="relative_to_stable: how much worse than stable the canary may "
                                                   "be, in the metric's unit (default 0).")


class Analysis(_M):
    interval: str = Field("1m", description="Time between measurements, and the rate window of the built-ins.")
    count: int = Field(5, ge=1, le=1000, description="Measurements per step.")
    failure_limit: int = Field(0, ge=0, description="Failed measurements a metric may have in a step; one more "
                                                    "fails the step.")
    inconclusive_limit: int = Field(0, ge=0, description="Inconclusive measurements (no data) a metric may have "
                                                         "in a step; one more pauses the rollout.")
    metrics: list[AnalysisMetric] | None = Field(
        None, description="What to measure. Default: error_ratio (max: the SLO's error_rate, else 0.05) and "
                          "latency_p95 (max: the SLO's p95, else 1s).")
    prometheus: str | None = Field(None, description="Prometheus base URL the analysis queries on a cluster "
                                                     "(default: prometheus-operated.monitoring.svc:9090); "
                                                     "environments.<env>.prometheus overrides it. Not used by "
                                                     "`local`, which reads `mlc serve`'s /metrics unless "
                                                     "environments.local.prometheus is set.")
    on_no_data: Literal["inconclusive", "fail"] = Field(
        "inconclusive", description="What a query that returns nothing (no traffic yet, wrong labels) counts as.")


class Rollout(_M):
    steps: list[RolloutStep] | None = Field(
        None, description="Traffic steps, ascending, ending at 100. Default: the `canary` list, each held 5m.")
    analysis: Analysis = Field(default_factory=Analysis, description="How each step is judged.")
    on_failure: Literal["rollback", "pause"] = Field(
        "rollback", description="rollback: traffic back to 0 and the production alias back to the stable "
                                "version; pause: hold the weight for `mlc rollout promote|abort`.")


class Online(_M):
    runtime: Literal["mlc", "mlflow", "sklearn"] = Field(
        "mlc", description="mlc: a custom predictor running `mlc serve` (same as local); mlflow/sklearn: KServe's "
                           "built-in runtime with storageUri.")
    protocol: Literal["v2"] = Field("v2", description="Inference protocol (Open Inference Protocol v2).")
    mode: Literal["Knative", "Standard"] = Field("Knative", description="KServe deployment mode (canary needs Knative).")
    canary: list[int] = Field(default_factory=list, description="Canary traffic steps in percent, ascending, "
                                                                "1..100 (short for rollout.steps, 5m each).")
    rollout: Rollout | None = Field(None, description="Progressive delivery: traffic steps, each judged by metric "
                                                      "analysis, then promotion or rollback.")
    replicas: Replicas = Field(default_factory=Replicas, description="Replica bounds.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Autoscaling metric and target.")
    resources: Resources = Field(default_factory=lambda: Resources(cpu="500m", memory="1Gi"),
                                 description="Predictor resources.")
    timeout_seconds: int = Field(60, ge=1, le=3600, description="Request timeout.")


class DataRef(_M):
    uri: str = Field(description="Path (relative to the spec) or s3:// URI.")
    format: Literal["csv", "parquet"] = Field("csv", description="File format.")


class Batch(_M):
    schedule: str = Field(description="Cron schedule (5 fields, UTC).")
    input: DataRef = Field(description="Rows to score.")
    output: DataRef = Field(description="Where predictions are written.")


class Deployment(_M):
    online: Online | None = Field(None, description="Online serving on KServe.")
    batch: Batch | None = Field(None, description="Scheduled batch scoring.")


# --------------------------------------------------------------------------- monitoring
class Latency(_M):
    p95_ms: float | None = Field(None, gt=0, description="95th percentile latency objective in ms: an alert on the "
                                 "quantile, and an error-budget SLO of 95% of the requests within it.")
    p99_ms: float | None = Field(None, gt=0, description="99th percentile latency objective in ms: an alert on the "
                                 "quantile, and an error-budget SLO of 99% of the requests within it.")


class Slo(_M):
    latency: Latency | None = Field(None, description="Latency objectives.")
    error_rate: float | None = Field(None, gt=0, lt=1, description="Largest share of failed (5xx) requests.")
    availability: float | None = Field(None, gt=0, lt=1, description="Availability objective, e.g. 0.999.")
    window: str = Field("30d", description="SLO window (Prometheus duration), used for the error budget.")
    latency_window: str = Field("5m", description="Window of the latency percentiles.")


class Drift(_M):
    features: list[str] = Field(min_length=1, description="Columns compared with the training reference.")
    method: Literal["psi", "ks"] = Field("psi", description="Population stability index or Kolmogorov-Smirnov.")
    threshold: float = Field(gt=0, description="Drift score above which a feature is drifted (psi) or the KS "
                                               "statistic limit (ks).")
    schedule: str = Field("0 * * * *", description="Cron schedule of the drift check.")
    reference: Literal["training"] = Field("training", description="Reference window: the training split.")
    current: DataRef = Field(description="The recent data window to compare.")


class Quality(_M):
    metric: Metric = Field(description="Metric computed on labelled feedback data.")
    min: float | None = Field(None, description="Absolute floor.")
    min_ratio: float | None = Field(None, gt=0, le=1, description="Floor as a share of the training baseline.")
    feedback: DataRef | None = Field(None, description="Labelled recent rows used to compute live quality.")


class Alerts(_M):
    severity: Literal["page", "ticket", "info"] = Field("ticket", description="Severity label of alerts.")
    team: str | None = Field(None, description="Team label. Default: metadata.team.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra routing labels.")


class Retraining(_M):
    schedule: str | None = Field(None, description="Cron schedule for retraining.")
    on_drift: bool = Field(False, description="Drift above threshold starts a retraining run.")


class Monitoring(_M):
    slo: Slo | None = Field(None, description="Service level objectives of the online endpoint.")
    drift: Drift | None = Field(None, description="Feature drift monitoring.")
    quality: Quality | None = Field(None, description="Live quality floor.")
    alerts: Alerts = Field(default_factory=Alerts, description="Alert routing labels.")
    retraining: Retraining | None = Field(None, description="When to retrain.")


# --------------------------------------------------------------------------- root
class Spec(_M):
    """An ML project: data, features, training, gates, registry, deployment and monitoring."""

    api_version: Literal["mlc.dev/v1alpha1"] = Field(alias="apiVersion", description="Language version.")
    kind: Literal["MLProject"] = Field(description="Always MLProject.")
    metadata: Metadata = Field(description="Who owns the project and what it is for.")
    environments: dict[str, Environment] = Field(
        default_factory=lambda: {"local": Environment()},
        description="Named overlays. `local` is always available for `mlc run`.")
    data: Data = Field(description="Training data: sources, column schema, quality checks, label and split.")
    features: list[Feature] = Field(min_length=1, description="Feature transforms, applied in one ColumnTransformer.")
    training: Training = Field(description="Candidates to train, metrics, and how the winner is chosen.")
    gates: Gates = Field(default_factory=Gates, description="Promotion gates.")
    registry: Registry = Field(description="Where the winning model is registered in MLflow, and its aliases.")
    deployment: Deployment = Field(default_factory=Deployment, description="Online and batch deployment.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="SLOs, drift, quality and retraining.")
