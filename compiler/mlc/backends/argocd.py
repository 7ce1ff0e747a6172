"""Stage 3 backend: Plan.argocd -> an Argo CD Application (argoproj.io/v1alpha1) for one environment.

The Application points at the environment's own directory, ``generated/<project>/<env>``, and is written beside
it (``argocd/application-<name>.yaml``) but is not listed in that kustomization (``resource=False``): an
Application inside the tree it syncs would deploy itself, and deleting it from Git would make Argo CD prune the
Application that is doing the pruning. It is applied once, by hand or by an app-of-apps, into Argo CD's
namespace; `mlc apply` leaves it out for the same reason.

Tests check it against the Application CRD's openAPIV3Schema (schemas/upstream/argo-cd-applications.crd.json).
"""

from __future__ import annotations

from typing import Any

from mlc.backends import Output
from mlc.plan import Plan

API_VERSION = "argoproj.io/v1alpha1"
FINALIZER = "resources-finalizer.argocd.argoproj.io"  # delete what the Application deployed, then the Application
RETRY_BACKOFF = {"duration": "5s", "factor": 2, "maxDuration": "3m"}


def build(plan: Plan) -> list[Output]:
    if plan.argocd is None:
        return []
    return [Output(f"argocd/application-{plan.argocd.name}.yaml", application(plan), resource=False)]


def application(plan: Plan) -> dict[str, Any]:
    a = plan.argocd
    assert a is not None
    meta: dict[str, Any] = {"name": a.name, "namespace": a.namespace, "labels": dict(plan.labels)}
    if a.annotations:
        meta["annotations"] = dict(a.annotations)
    if a.cascade_delete:
        meta["finalizers"] = [FINALIZER]
    destination: dict[str, Any] = {"namespace": a.dest_namespace}
    if a.server:
        destination["server"] = a.server
    else:
        destination["name"] = a.cluster
    sync: dict[str, Any] = {"syncOptions": list(a.sync_options),
                            "retry": {"limit": a.retry_limit, "backoff": dict(RETRY_BACKOFF)}}
    if a.automated:
        sync["automated"] = {"prune": a.prune, "selfHeal": a.self_heal}
    spec: dict[str, Any] = {
        "project": a.project,
        "source": {"repoURL": a.repo_url, "targetRevision": a.target_revision, "path": a.path},
        "destination": destination,
        "syncPolicy": sync,
    }
    if a.ignore:
        spec["ignoreDifferences"] = [
            {"group": d.group, "kind": d.kind, "name": d.name, "namespace": d.namespace,
             "jsonPointers": list(d.json_pointers), "jqPathExpressions": list(d.jq_paths)}
            for d in a.ignore]
    return {"apiVersion": API_VERSION, "kind": "Application", "metadata": meta, "spec": spec}
