"""Strict validation for the fake API server: which fields would a real server reject as unknown or invalid?

Custom resources use the upstream schemas vendored in ``schemas/upstream/``, made strict by tests/crdschema.py
the way a structural CRD schema is (objects that list ``properties`` and are not
``x-kubernetes-preserve-unknown-fields`` reject other keys). Argo's JSON schema types IntOrString as string, so for Argo only unknown fields are reported.
Built-in kinds use small hand-written schemas of the fields mlc uses (a real server knows them all).
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema
from crdschema import argo_schema, strict, upstream  # tests/ is on sys.path wherever fakekube is importable

OBJECT_META = {"name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences",
               "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "managedFields", "selfLink"}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False}


_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_MAP = {"type": "object", "additionalProperties": _STR}
_TOP = {"apiVersion": _STR, "kind": _STR, "metadata": {"type": "object"}}
CORE: dict[str, dict[str, Any]] = {
    "Namespace": _obj({**_TOP, "spec": _obj({"finalizers": _STRS}), "status": {"type": "object"}}),
    "ConfigMap": _obj({**_TOP, "data": _MAP, "binaryData": _MAP, "immutable": {"type": "boolean"}}),
    "Secret": _obj({**_TOP, "data": _MAP, "stringData": _MAP, "type": _STR, "immutable": {"type": "boolean"}}),
    "ServiceAccount": _obj({**_TOP, "secrets": {"type": "array"}, "imagePullSecrets": {"type": "array"},
                            "automountServiceAccountToken": {"type": "boolean"}}),
    "Role": _obj({**_TOP, "rules": {"type": "array", "items": _obj({
        "apiGroups": _STRS, "resources": _STRS, "verbs": _STRS, "resourceNames": _STRS,
        "nonResourceURLs": _STRS})}}),
    "RoleBinding": _obj({**_TOP, "roleRef": _obj({"apiGroup": _STR, "kind": _STR, "name": _STR}),
                         "subjects": {"type": "array", "items": _obj({
                             "kind": _STR, "name": _STR, "namespace": _STR, "apiGroup": _STR})}}),
    "PersistentVolumeClaim": _obj({**_TOP, "status": {"type": "object"}, "spec": _obj({
        "accessModes": _STRS, "storageClassName": _STR, "volumeMode": _STR, "volumeName": _STR,
        "resources": _obj({"requests": {"type": "object"}, "limits": {"type": "object"}}),
        "selector": {"type": "object"}, "dataSource": {"type": "object"}, "dataSourceRef": {"type": "object"},
        "volumeAttributesClassName": _STR})}),
}


@functools.cache
def _crd_schema(file: str, version: str) -> dict[str, Any]:
    crd = json.loads(upstream(file).read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return strict(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
    raise KeyError(version)


@functools.cache
def _argo_schema(argo: str, kind: str) -> dict[str, Any]:
    doc = json.loads(argo_schema(argo).read_text())
    return {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
            "definitions": strict(doc["definitions"])}


CRD_FILES = {"InferenceService": ("kserve-inferenceservices.crd.json", "v1beta1"),
             "PrometheusRule": ("prometheus-operator-prometheusrules.crd.json", "v1")}


def problems(obj: dict[str, Any], argo: str = "3.7.18") -> tuple[list[str], list[str]]:
    """(unknown fields, invalid values), each as a real server words them."""
    kind = obj.get("kind", "")
    unknown = [f".metadata.{k}: field not declared in schema"
               for k in sorted(set(obj.get("metadata") or {}) - OBJECT_META)]
    invalid: list[str] = []
    if kind in CORE:
        schema = CORE[kind]
    elif kind in CRD_FILES:
        schema = _crd_schema(*CRD_FILES[kind])
    elif obj.get("apiVersion", "").startswith("argoproj.io/"):
        schema = _argo_schema(argo, kind)
    else:
        return unknown, invalid
    body = {k: v for k, v in obj.items() if k != "metadata"}
    v = jsonschema.Draft7Validator(schema) if "$ref" not in schema else jsonschema.Draft202012Validator(schema)
    for err in sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties", {}))
            for k in sorted(set(err.instance) - allowed):
                unknown.append(f"{where}.{k}: field not declared in schema")
        elif err.validator in ("oneOf", "anyOf") and err.context:
            # the branch errors tell which key was unknown; report those like the rest
            for sub in err.context:
                if sub.validator == "additionalProperties":
                    allowed = set(sub.schema.get("properties", {}))
                    for k in sorted(set(sub.instance) - allowed):
                        unknown.append(f"{where}.{k}: field not declared in schema")
        elif "$ref" not in schema:  # Argo's schema mistypes IntOrString; only its unknown fields count
            invalid.append(f"{where.lstrip('.')}: Invalid value: {err.message}")
    return sorted(set(unknown)), invalid
