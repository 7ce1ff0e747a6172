"""Stage 3 backend: Plan.endpoint -> a KServe InferenceService (serving.kserve.io/v1beta1), as a plain dict.

Plain dicts, not the kserve SDK: its objects serialise through the kubernetes client's ``to_dict()`` as
snake_case with nulls, which is not a manifest, and it validates nothing. Tests check this output against
the CRD's openAPIV3Schema instead, strict on unknown fields.

Runtime ``mlc`` (the default) is a custom predictor running ``mlc serve`` from the environment's image, with
the spec from the ConfigMap: the cluster serves exactly what ``mlc serve`` serves locally, V2 protocol and
``/metrics`` included. Runtimes ``mlflow`` and ``sklearn`` use KServe's built-in servers (MLServer, V2) on
``Storage.model_uri``: ``<storage root>/models/<model>/<alias>``, where the deploy step exports the MLflow
model it promotes to the production alias.
"""

from __future__ import annotations

from typing import Any

from mlc.backends import Output
from mlc.plan import SPEC_MOUNT_DIR, Endpoint, Plan, StepResources

API_VERSION = "serving.kserve.io/v1beta1"
CONTAINER = "kserve-container"  # the name KServe gives the predictor's main container
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
# KServe's queue-proxy aggregates the container's metrics with its own when scraping is enabled; the
# prometheus.kserve.io/* keys tell it where the container exports them (they override the runtime's default).
METRICS_ANNOTATIONS = ("serving.kserve.io/enable-prometheus-scraping", "prometheus.kserve.io/port",
                       "prometheus.kserve.io/path")
METRICS_PATH = "/metrics"
READY_PATH = "/v2/health/ready"  # true only once the model is loaded
LIVE_PATH = "/v2/health/live"
# The predictor fields that the deploy step and the rollout workflow change on the live object at run time.
# A GitOps controller reading the kustomization must leave them alone (Argo CD: ignoreDifferences).
MODEL_VERSION_ENV = "MLC_MODEL_VERSION"  # the exact registry version the revision serves
ROLE_ENV = "MLC_SERVE_ROLE"  # stable | canary, the `role` label of the revision's metrics
VERSION_ANNOTATION = "mlc.dev/model-version"  # on the InferenceService: the version its latest revision serves
ROLLOUT_ANNOTATION = "mlc.dev/rollout"  # the rollout's state and last measurements, for `mlc rollout status`
LIVE_JSON_POINTERS = ("/spec/predictor/canaryTrafficPercent", "/spec/predictor/model/storageUri",
                      "/metadata/annotations/mlc.dev~1model-version", "/metadata/annotations/mlc.dev~1rollout")
LIVE_JQ_PATHS = ((f'.spec.predictor.containers[].env[]? | select(.name == "{MODEL_VERSION_ENV}" or '
                  f'.name == "{ROLE_ENV}")'),)


def build(plan: Plan) -> list[Output]:
    if plan.endpoint is None:
        return []
    ep = plan.endpoint
    return [Output(f"kserve/inferenceservice-{ep.name}.yaml", inference_service(plan, ep))]


def inference_service(plan: Plan, ep: Endpoint) -> dict[str, Any]:
    annotations = {DEPLOYMENT_MODE: ep.mode}
    if ep.runtime == "mlc":
        annotations.update(zip(METRICS_ANNOTATIONS, ("true", str(ep.port), METRICS_PATH), strict=True))
    predictor: dict[str, Any] = {"serviceAccountName": plan.service_account}
    if ep.runtime == "mlc":
        predictor.update(_custom(plan, ep))
    else:
        predictor["model"] = {
            "modelFormat": {"name": ep.runtime},
            "protocolVersion": "v2",
            "storageUri": plan.storage.model_uri(ep.model, ep.alias),
            "resources": resources(ep.resources),
        }
    predictor.update({"minReplicas": ep.min_replicas, "maxReplicas": ep.max_replicas,
                      "scaleMetric": ep.scale_metric, "scaleTarget": ep.scale_target,
                      "timeout": ep.timeout_seconds})
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": ep.name, "namespace": plan.namespace, "labels": dict(plan.labels),
                     "annotations": annotations},
        "spec": {"predictor": predictor},
    }


def pinned_predictor(plan: Plan, version: str, role: str, weight: int | None) -> dict[str, Any]:
    """The merge patch that makes a revision serving exactly ``version``: the whole predictor container (a
    merge patch replaces lists) with the version and role in its environment, or, for KServe's built-in
    runtimes, the version's own model directory. ``weight``: the canary's share, or None to remove the field
    (the latest revision takes all traffic)."""
    ep = plan.endpoint
    assert ep is not None
    predictor: dict[str, Any] = {"canaryTrafficPercent": weight}
    if ep.runtime == "mlc":
        pin = [{"name": MODEL_VERSION_ENV, "value": version}, {"name": ROLE_ENV, "value": role}]
        predictor["containers"] = _custom(plan, ep, pin)["containers"]
    else:
        predictor["model"] = {"modelFormat": {"name": ep.runtime}, "protocolVersion": "v2",
                              "storageUri": plan.storage.model_uri(ep.model, f"v{version}"),
                              "resources": resources(ep.resources)}
    return {"metadata": {"annotations": {VERSION_ANNOTATION: version}}, "spec": {"predictor": predictor}}



def _custom(plan: Plan, ep: Endpoint, pin: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    mounts = [{"name": "spec", "mountPath": SPEC_MOUNT_DIR, "readOnly": True}]
    volumes: list[dict[str, Any]] = [{"name": "spec", "configMap": {"name": plan.spec_configmap}}]
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        mounts.append({"name": "artifacts", "mountPath": plan.storage.root})
        volumes.append({"name": "artifacts",
                        "persistentVolumeClaim": {"claimName": plan.storage.volume_claim}})
    env, env_from = pod_env(plan)
    env += pin or []
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": plan.image,
        "command": ep.serve_command(plan.env),
        "ports": [{"containerPort": ep.port, "protocol": "TCP"}],
    }
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    container.update({
        "resources": resources(ep.resources),
        "readinessProbe": _probe(READY_PATH, ep.port, period=5, failures=3),
        "livenessProbe": _probe(LIVE_PATH, ep.port, period=10, failures=3),
        "volumeMounts": mounts,
    })
    return {"containers": [container], "volumes": volumes}


def _probe(path: str, port: int, *, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures}


def resources(r: StepResources) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS): a latency SLO should not depend on a neighbour's burst."""
    req: dict[str, Any] = {}
    if r.cpu:
        req["cpu"] = r.cpu
    if r.memory:
        req["memory"] = r.memory
    if r.gpu:
        req["nvidia.com/gpu"] = str(r.gpu)
    return {"requests": dict(req), "limits": dict(req)} if req else {}


def pod_env(plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The environment every mlc container gets (``Plan.env``), in Kubernetes form."""
    env = [{"name": v.name, "valueFrom": {"secretKeyRef": {"name": v.secret, "key": v.secret_key}}} if v.secret
           else {"name": v.name, "value": v.value} for v in plan.pod_env]
    return env, [{"secretRef": {"name": secret}} for secret in plan.pod_env_secrets]

