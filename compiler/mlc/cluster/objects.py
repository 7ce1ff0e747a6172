"""What mlc owns on a cluster: the kinds it produces, the order they go in, ownership stamps, protected kinds.

Ownership is by labels (``app.kubernetes.io/managed-by=mlc``, ``mlc.dev/project``, ``mlc.dev/env``), so a prune
or delete lists exactly this project's objects in this environment with one label selector per kind, and never
touches an object somebody else created with a similar name. The content hash annotation lets a person (or
``kubectl get -o yaml``) see which compile an object came from.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mlc.plan import ENV_LABEL, MANAGED_BY, PROJECT_LABEL, Plan

HASH_ANNOTATION = "mlc.dev/content-hash"
ARGO = "argoproj.io/v1alpha1"
KSERVE = "serving.kserve.io/v1beta1"
PROMETHEUS = "monitoring.coreos.com/v1"
RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    rank: int  # apply order: namespace, then what custom resources refer to, then custom resources
    protected: bool = False  # deleting it takes --allow-delete-endpoints


# Every kind mlc may produce, in apply order. Prune and delete list these (the ones the server serves).
KINDS: tuple[Kind, ...] = (
    Kind("v1", "Namespace", 0, protected=True),
    Kind("v1", "ServiceAccount", 1),
    Kind(RBAC, "Role", 1),
    Kind(RBAC, "RoleBinding", 1),
    Kind("v1", "ConfigMap", 1),
    Kind("v1", "Secret", 1),
    Kind("v1", "PersistentVolumeClaim", 1),
    Kind(ARGO, "WorkflowTemplate", 2),
    Kind(ARGO, "CronWorkflow", 3),  # after the templates it refers to
    Kind(KSERVE, "InferenceService", 2, protected=True),
    Kind(PROMETHEUS, "PrometheusRule", 2),
)
_BY_KEY = {(k.api_version, k.kind): (i, k) for i, k in enumerate(KINDS)}

# Custom resource groups mlc needs, and one line each saying how to get them.
CRD_GROUPS: dict[str, tuple[str, str]] = {
    ARGO: ("Argo Workflows", ("kubectl create namespace argo && kubectl apply -n argo -f "
                              "https://github.com/argoproj/argo-workflows/releases/download/v{argo}/install.yaml")),
    KSERVE: ("KServe", ("helm install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version v0.17.0 && "
                        "helm install kserve oci://ghcr.io/kserve/charts/kserve --version v0.17.0 "
                        "(https://kserve.github.io/website/docs/install/kserve-install)")),
    PROMETHEUS: ("prometheus-operator", ("kubectl create -f https://github.com/prometheus-operator/"
                                         "prometheus-operator/releases/download/v0.93.0/bundle.yaml")),
}
ARGO_RELEASES = {"3.7": "3.7.18", "4": "4.1.2"}


def ownership(plan: Plan) -> dict[str, str]:
    return {**MANAGED_BY, PROJECT_LABEL: plan.project, ENV_LABEL: plan.env}


def selector(plan: Plan) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(ownership(plan).items()))


def content_hash(obj: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the object without the hash annotation itself."""
    o = copy.deepcopy(obj)
    ann = o.get("metadata", {}).get("annotations")
    if ann is not None:
        ann.pop(HASH_ANNOTATION, None)
        if not ann:
            del o["metadata"]["annotations"]
    text = json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stamp(obj: dict[str, Any], plan: Plan, namespaced: bool) -> dict[str, Any]:
    """The one place that makes an object ours: ownership labels (backends already set them; a backend that
    forgot one is fixed here rather than silently left unprunable), the namespace, and the content hash."""
    o = copy.deepcopy(obj)
    md = o.setdefault("metadata", {})
    md["labels"] = {**md.get("labels", {}), **ownership(plan)}
    if namespaced:
        md.setdefault("namespace", plan.namespace)
    else:
        md.pop("namespace", None)
    md.setdefault("annotations", {})[HASH_ANNOTATION] = content_hash(o)
    return o


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["apiVersion"], obj["kind"]


def kind_of(obj: dict[str, Any]) -> Kind:
    hit = _BY_KEY.get(key(obj))
    if hit:
        return hit[1]
    return Kind(obj["apiVersion"], obj["kind"], 1 if "." not in obj["apiVersion"].split("/")[0] else 2)


def ident(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    md = obj["metadata"]
    return obj["apiVersion"], obj["kind"], md.get("namespace") or "", md["name"]


def apply_order(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def sort_key(o: dict[str, Any]) -> tuple:
        i = _BY_KEY.get(key(o), (len(KINDS), None))[0]
        return kind_of(o).rank, i, o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]

    return sorted(objs, key=sort_key)


def delete_order(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(reversed(apply_order(objs)))


def install_hint(api_version: str, argo_version: str) -> str:
    name, how = CRD_GROUPS.get(api_version, (api_version, "install the CRDs that serve " + api_version))
    return f"{name} ({api_version}) is not installed on this cluster; install it with: " + how.format(
        argo=ARGO_RELEASES.get(argo_version, ARGO_RELEASES["3.7"]))
