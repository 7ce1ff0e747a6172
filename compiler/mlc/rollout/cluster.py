"""The rollout on a cluster: the InferenceService's weight and pinned version, its state annotation, and the
``<project>-rollout`` Workflows. Used by the deploy, analyze and promote steps inside pods and by
`mlc rollout start|status|promote|abort` from a laptop, through the same REST client (mlc.cluster.kube).

Only two verbs on InferenceServices, get and merge-patch: the pipeline's Role grants exactly those.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mlc.backends import kserve
from mlc.backends.argo_rollout import ROLLOUT_LABEL, STABLE_PARAM, VERSION_PARAM
from mlc.cluster.commands import TERMINAL_PHASES
from mlc.cluster.kube import Kube, ResourceType
from mlc.errors import RunError
from mlc.plan import Plan
from mlc.plan import metrics as M

ISVC = ResourceType(kserve.API_VERSION, "InferenceService", "inferenceservices", True)
WORKFLOW = ResourceType("argoproj.io/v1alpha1", "Workflow", "workflows", True)
MERGE = "application/merge-patch+json"
KEEP_MEASUREMENTS = 30  # in the annotation; the analyze step's artifact has them all


def _name(plan: Plan) -> str:
    assert plan.endpoint is not None
    return plan.endpoint.name


def patch(kube: Kube, plan: Plan, body: dict[str, Any]) -> dict[str, Any]:
    code, out = kube.request("PATCH", ISVC.path(plan.namespace, _name(plan)), body=body, content_type=MERGE,
                             what=f"patch InferenceService {plan.namespace}/{_name(plan)}")
    if code == 404:
        raise RunError(f"InferenceService {plan.namespace}/{_name(plan)} is not on the cluster; "
                       "run `mlc apply` first")
    return out


def get(kube: Kube, plan: Plan) -> dict[str, Any]:
    obj = kube.get(ISVC, plan.namespace, _name(plan))
    if obj is None:
        raise RunError(f"InferenceService {plan.namespace}/{_name(plan)} is not on the cluster; "
                       "run `mlc apply` first")
    return obj


def read_state(obj: dict[str, Any]) -> dict[str, Any]:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(kserve.ROLLOUT_ANNOTATION)
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {"phase": "unknown", "reason": f"unreadable {kserve.ROLLOUT_ANNOTATION} annotation"}
    return doc if isinstance(doc, dict) else {}


def write_state(kube: Kube, plan: Plan, state: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """The state rides on the InferenceService itself, so `mlc rollout status` needs nothing else."""
    doc = {**state, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if isinstance(doc.get("measurements"), list):
        doc["measurements"] = doc["measurements"][-KEEP_MEASUREMENTS:]
    body: dict[str, Any] = {"metadata": {"annotations": {kserve.ROLLOUT_ANNOTATION: json.dumps(
        doc, sort_keys=True, separators=(",", ":"))}}}
    if extra:
        body = _merge(body, extra)
    patch(kube, plan, body)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def running(kube: Kube, plan: Plan) -> list[dict[str, Any]]:
    wfs = kube.list(WORKFLOW, plan.namespace, f"{ROLLOUT_LABEL}={_name(plan)}")
    return [w for w in wfs if (w.get("status") or {}).get("phase") not in TERMINAL_PHASES
            and not (w.get("spec") or {}).get("shutdown")]


def begin(kube: Kube, plan: Plan, version: str, stable: str) -> str:
    """Pin the new revision to ``version`` at the first step's weight, then start the rollout Workflow."""
    r = plan.rollout
    assert r is not None
    busy = running(kube, plan)
    if busy:
        raise RunError(f"rollout {busy[0]['metadata']['name']} is still running; finish it with "
                       "`mlc rollout promote|abort` first")
    first = r.steps[0].weight
    state = {"model": plan.model_name, "canary": version, "stable": stable, "weight": first, "phase": "running",
             "steps": [], "measurements": []}
    write_state(kube, plan, state, kserve.pinned_predictor(plan, version, M.ROLE_CANARY, first))
    wf = {"apiVersion": WORKFLOW.api_version, "kind": "Workflow",
          "metadata": {"generateName": f"{r.name}-", "namespace": plan.namespace,
                       "labels": {**plan.labels, ROLLOUT_LABEL: _name(plan)}},
          "spec": {"workflowTemplateRef": {"name": r.name},
                   "arguments": {"parameters": [{"name": VERSION_PARAM, "value": version},
                                                {"name": STABLE_PARAM, "value": stable}]}}}
    created = kube.create(WORKFLOW, plan.namespace, wf)
    return str(created["metadata"]["name"])


def pin(kube: Kube, plan: Plan, version: str) -> None:
    """No rollout: the new revision serves ``version`` and takes all traffic."""
    patch(kube, plan, kserve.pinned_predictor(plan, version, M.ROLE_STABLE, None))


def wait_ready(kube: Kube, plan: Plan, timeout: float, poll: float = 2.0) -> str:
    """The revision KServe made for the canary, once it is ready (its latestReadyRevision)."""
    deadline = time.monotonic() + timeout
    while True:
        obj = get(kube, plan)
        status = obj.get("status") or {}
        pred = (status.get("components") or {}).get("predictor") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        latest, created = pred.get("latestReadyRevision"), pred.get("latestCreatedRevision")
        if ready and latest and (created is None or latest == created):
            return str(latest)
        if time.monotonic() >= deadline:
            why = next((c.get("message") for c in status.get("conditions") or []
                        if c.get("type") == "Ready" and c.get("message")), "no Ready condition yet")
            raise RunError(f"InferenceService {plan.namespace}/{_name(plan)}: the canary revision "
                           f"{created or '?'} is not ready after {timeout:.0f}s ({why})")
        time.sleep(poll)


def stop(kube: Kube, plan: Plan, how: str) -> list[str]:
    """Stop the running rollout Workflows: ``Terminate`` (promote: no alert) or ``Stop`` (abort: the exit
    handler reports it)."""
    names = []
    for w in running(kube, plan):
        name = w["metadata"]["name"]
        kube.request("PATCH", WORKFLOW.path(plan.namespace, name), body={"spec": {"shutdown": how}},
                     content_type=MERGE, what=f"stop Workflow {name}")
        names.append(name)
    return names


def keep_live_fields(desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The compiled InferenceService with the live values of the fields the deploy step and the rollout own
    (kserve.LIVE_*: the canary's weight, the pinned version and role, the versioned storageUri, their
    annotations), so that `mlc apply` during or after a rollout neither resets the pin nor moves traffic. The
    content hash stays that of the compiled object: it was stamped before."""
    import copy

    out = copy.deepcopy(desired)
    lmd, lspec = live.get("metadata") or {}, (live.get("spec") or {}).get("predictor") or {}
    ann = out["metadata"].setdefault("annotations", {})
    for key in (kserve.VERSION_ANNOTATION, kserve.ROLLOUT_ANNOTATION):
        if key in (lmd.get("annotations") or {}):
            ann[key] = lmd["annotations"][key]
    pred = out.get("spec", {}).get("predictor", {})
    if "canaryTrafficPercent" in lspec:
        pred["canaryTrafficPercent"] = lspec["canaryTrafficPercent"]
    pinned = {kserve.MODEL_VERSION_ENV, kserve.ROLE_ENV}
    live_c = {c.get("name"): c for c in lspec.get("containers") or []}
    for c in pred.get("containers") or []:
        kept = [e for e in (live_c.get(c.get("name")) or {}).get("env") or [] if e.get("name") in pinned]
        if kept:
            c["env"] = [e for e in c.get("env", []) if e.get("name") not in pinned] + kept
    if "model" in pred and "storageUri" in (lspec.get("model") or {}):
        pred["model"]["storageUri"] = lspec["model"]["storageUri"]
    return out
