"""Stage 3 backend: the plain Kubernetes objects the pipelines and the predictor stand on.

The Namespace; the ConfigMap that carries the spec to every pod (mounted at ``SPEC_MOUNT_DIR``); the
ServiceAccount that pipeline pods and the predictor run as; a Role and RoleBinding with only what the pods
need; and, when storage is a path rather than s3://, the ReadWriteMany claim mounted at that path.

Credentials are never generated: the ServiceAccount *references* the environment's storage Secret the way
KServe's storage initializer expects (``secrets:`` plus ``serving.kserve.io/s3-*`` annotations).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mlc.backends import Output
from mlc.plan import SPEC_FILE, Plan
from mlc.plan.names import dns_label

SPEC_HASH_ANNOTATION = "mlc.dev/spec-sha256"
ARTIFACTS_SIZE = "20Gi"  # requested size of the artifacts claim; resize it in place if a project needs more

# Argo Workflows >= 3.4 (emissary executor): the executor reports outputs through WorkflowTaskResults and
# needs nothing else (argo-workflows docs/workflow-rbac.md, "the minimum for the executor to function").
# On InferenceServices, exactly what the deploy step and the rollout do: read one (its status, the revision
# that is ready) and merge-patch it (the pinned version, the canary's weight). They never create, delete,
# list or watch one. With a rollout, the deploy step starts the <project>-rollout Workflow.
ISVC_RULE = ("serving.kserve.io", "inferenceservices", ("get", "patch"))
RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("argoproj.io", "workflowtaskresults", ("create", "patch")),
    ISVC_RULE,
)
ROLLOUT_RULES = (("argoproj.io", "workflows", ("create", "list")),)


def build(plan: Plan) -> list[Output]:
    role = dns_label(plan.project, "pipeline")
    outs = [
        Output("core/namespace.yaml", namespace(plan)),
        Output(f"core/configmap-{plan.spec_configmap}.yaml", spec_configmap(plan)),
        Output(f"core/serviceaccount-{plan.service_account}.yaml", service_account(plan)),
        Output(f"core/role-{role}.yaml", _role(plan, role)),
        Output(f"core/rolebinding-{role}.yaml", _role_binding(plan, role)),
    ]
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        claim = plan.storage.volume_claim
        outs.append(Output(f"core/persistentvolumeclaim-{claim}.yaml", artifacts_claim(plan)))
    return outs


def _meta(plan: Plan, name: str, namespaced: bool = True, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = plan.namespace
    meta["labels"] = dict(plan.labels)
    meta.update(extra)
    return meta


def namespace(plan: Plan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(plan, plan.namespace, namespaced=False)}


def spec_configmap(plan: Plan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(plan, plan.spec_configmap, annotations={SPEC_HASH_ANNOTATION: plan.spec_hash}),
            "data": {SPEC_FILE: plan.spec_text}}


def s3_annotations(endpoint: str | None) -> dict[str, str]:
    """KServe's storage initializer wants ``host:port`` and a separate https switch, not a URL."""
    if not endpoint:
        return {}
    u = urlparse(endpoint)
    return {"serving.kserve.io/s3-endpoint": u.netloc or u.path,
            "serving.kserve.io/s3-usehttps": "0" if u.scheme == "http" else "1"}


def service_account(plan: Plan) -> dict[str, Any]:
    sa: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount"}
    ann = s3_annotations(plan.storage.endpoint) if plan.storage.secret else {}
    sa["metadata"] = _meta(plan, plan.service_account, **({"annotations": ann} if ann else {}))
    if plan.storage.secret:
        sa["secrets"] = [{"name": plan.storage.secret}]
    return sa


def _role(plan: Plan, name: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(plan, name),
            "rules": [{"apiGroups": [g], "resources": [r], "verbs": list(v)}
                      for g, r, v in RULES + (ROLLOUT_RULES if plan.rollout else ())]}


def _role_binding(plan: Plan, name: str) -> dict[str, Any]:
    subject = {"kind": "ServiceAccount", "name": plan.service_account, "namespace": plan.namespace}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _meta(plan, name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject]}


def artifacts_claim(plan: Plan) -> dict[str, Any]:
    assert plan.storage.volume_claim
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(plan, plan.storage.volume_claim),
            "spec": {"accessModes": ["ReadWriteMany"],  # parallel train steps may run on different nodes
                     "resources": {"requests": {"storage": ARTIFACTS_SIZE}}}}
