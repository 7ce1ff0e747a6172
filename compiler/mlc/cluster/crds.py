"""Preflight against the installed CRDs' schemas: does the cluster declare every field this compile uses?

A real server with ``fieldValidation=Strict`` rejects an undeclared field one object at a time, in the middle of
an apply, with ``failed to create typed patch object``. Reading the schemas first (OpenAPI v3, which every
authenticated user may read) turns that into one message before anything is sent, and for Argo into the actual
cause: the cluster's CRDs are for another Argo major version than the environment targets.

Schemas that preserve unknown fields (Argo's default "minimal" CRDs do, for the whole spec) cannot tell: then
mlc says so and does not block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlc.cluster.kube import Kube, describe
from mlc.cluster.objects import ARGO, ARGO_RELEASES, CRD_GROUPS
from mlc.plan import Plan

PRESERVE = "x-kubernetes-preserve-unknown-fields"


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check(kube: Kube, plan: Plan, objs: list[dict[str, Any]]) -> Findings:
    """Compare every custom resource in ``objs`` with the served schema of its kind."""
    out = Findings()
    custom = [o for o in objs if "." in o["apiVersion"].split("/")[0]]
    if not custom:
        return out
    schemas: dict[tuple[str, str], dict[str, Any] | None] = {}
    for gv in sorted({o["apiVersion"] for o in custom}):
        got = kube.openapi_schemas(gv)
        if got is None:
            out.notes.append(f"cannot read the cluster's OpenAPI schema of {gv}; the check that its CRDs "
                             "declare every field this project uses was skipped")
            continue
        for s in got.values():
            for gvk in s.get("x-kubernetes-group-version-kind") or []:
                v = f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk["version"]
                schemas[(v, gvk["kind"])] = s
    undeclared: dict[str, list[str]] = {}  # describe(obj) -> field paths
    blind: set[str] = set()  # kinds whose schema preserves unknown fields somewhere we write
    for o in custom:
        s = schemas.get((o["apiVersion"], o["kind"]))
        if s is None:
            continue
        paths: list[str] = []
        opaque: list[str] = []
        _walk({k: v for k, v in o.items() if k not in ("apiVersion", "kind", "metadata")}, s, "", paths, opaque)
        if paths:
            undeclared[describe(o)] = paths
        if opaque and o["apiVersion"] == ARGO:
            blind.add(o["kind"])
    argo_objs = [o for o in custom if o["apiVersion"] == ARGO]
    if argo_objs:
        out.errors.extend(_argo(plan, schemas, undeclared, out.notes, blind))
    for what, paths in sorted(undeclared.items()):
        kind = what.split(" ", 1)[0]
        gv = next(o["apiVersion"] for o in custom if describe(o) == what)
        name = CRD_GROUPS.get(gv, (gv, ""))[0]
        how = CRD_GROUPS.get(gv, ("", "install the CRDs mlc targets"))[1].format(
            argo=ARGO_RELEASES.get(plan.argo_version, ARGO_RELEASES["3.7"]))
        out.errors.append(f"{what}: the {kind} CRD on this cluster does not declare {', '.join(paths)}, which "
                          f"environment {plan.env} uses; the cluster's {name} CRDs are for another version than "
                          f"mlc targets: {how}")
    return out


def _argo(plan: Plan, schemas: dict[tuple[str, str], dict[str, Any] | None], undeclared: dict[str, list[str]],
          notes: list[str], blind: set[str]) -> list[str]:
    """Name the Argo major version the installed CRDs are for, from ``CronWorkflow.spec``."""
    cron = schemas.get((ARGO, "CronWorkflow"))
    spec = ((cron or {}).get("properties") or {}).get("spec") or {}
    props = spec.get("properties") or {}
    if cron is None or not props or spec.get(PRESERVE):
        if blind:
            notes.append(f"the Argo Workflows CRDs on this cluster do not declare their fields ({PRESERVE}), "
                         f"so mlc cannot tell which Argo version they are for; environment {plan.env} targets "
                         f"{plan.argo_version}")
        return []
    cluster = "4.x" if "schedule" not in props and "schedules" in props else "3.x"
    wanted = "4.x" if plan.argo_version.startswith("4") else "3.x"
    if cluster == wanted:
        return []  # any undeclared field is reported per object
    argo_bad = [w for w in undeclared if w.split(" ", 1)[0] in ("WorkflowTemplate", "CronWorkflow", "Workflow")]
    if not argo_bad:  # the objects fit these CRDs (Argo 3.6+ also reads `schedules`)
        notes.append(f"cluster has Argo Workflows {cluster} CRDs; environment {plan.env} targets "
                     f"{plan.argo_version}: every object fits these CRDs")
        return []
    for w in argo_bad:
        undeclared.pop(w)
    other = "4" if cluster == "4.x" else "3.7"
    return [(f"cluster has Argo Workflows {cluster} CRDs; environment {plan.env} targets {plan.argo_version}: "
             f"set `argo_version: {other}` (or install the {plan.argo_version} CRDs)")]


def _walk(value: Any, schema: dict[str, Any], path: str, out: list[str], opaque: list[str]) -> None:
    schema = _merged(schema)
    if schema.get(PRESERVE) and not schema.get("properties"):
        opaque.append(path or ".")
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            p = f"{path}.{k}"
            if props is not None and k in props:
                _walk(v, props[k], p, out, opaque)
            elif isinstance(extra, dict):
                _walk(v, extra, p, out, opaque)
            elif props is not None and not schema.get(PRESERVE):
                out.append(p)
            elif schema.get(PRESERVE):
                opaque.append(p)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _walk(v, schema["items"], f"{path}[{i}]", out, opaque)


def _merged(schema: dict[str, Any]) -> dict[str, Any]:
    """Fold ``allOf`` branches in (structural schemas keep properties at the top; this is for safety)."""
    if "allOf" not in schema:
        return schema
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for s in schema["allOf"]:
        if isinstance(s, dict) and "$ref" not in s:
            for k, v in _merged(s).items():
                if k == "properties":
                    out["properties"] = {**out.get("properties", {}), **v}
                else:
                    out.setdefault(k, v)
    return out
