"""Validate objects against a CustomResourceDefinition's openAPIV3Schema as strictly as an API server with
``fieldValidation=Strict``: unknown fields are errors.

A CRD schema is OpenAPI v3 with Kubernetes extensions, not JSON Schema. Translated here:
- every object that lists ``properties`` and is not ``x-kubernetes-preserve-unknown-fields`` gets
  ``additionalProperties: false`` (an API server prunes or rejects what the schema does not list);
- ``x-kubernetes-int-or-string`` accepts an integer or a string;
- ``metadata`` at the top is an ObjectMeta, which CRDs leave as ``{type: object}``; it is checked here for the
  fields a manifest may carry, so a misspelt ``annotation`` is caught too.

Usage: ``crd_validator("kserve-inferenceservices.crd.json").validate(obj)`` or ``errors(validator, obj)``.

The upstream schemas are vendored in ``schemas/upstream/`` (sources, versions, licenses and hashes in its
README). This module is the one place that knows where: every test reaches them through ``upstream()`` or
``argo_schema()``, so a fresh clone needs nothing beside it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / "schemas" / "upstream"
ARGO_SCHEMAS = {"3.7": "argo-workflows-3.7.schema.json", "4": "argo-workflows-4.schema.json"}


def upstream(name: str) -> Path:
    """A vendored upstream file by name, e.g. ``upstream("kserve-inferenceservices.crd.json")``."""
    path = UPSTREAM / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such vendored schema; see {UPSTREAM / 'README.md'}")
    return path


def argo_schema(version: str) -> Path:
    """Argo Workflows' JSON schema for mlc's ``--argo-version`` (``3.7``, ``4``) or a release (``3.7.18``)."""
    for line, name in ARGO_SCHEMAS.items():
        if version == line or version.startswith(line + "."):
            return upstream(name)
    raise KeyError(f"no vendored Argo Workflows schema for {version!r}; there are: {', '.join(ARGO_SCHEMAS)}")

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253,
                 "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {**_STRING_MAP, "propertyNames": {"maxLength": 317},
                   "additionalProperties": {"type": "string", "maxLength": 63,
                                            "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}},
        "annotations": _STRING_MAP,
        "generateName": {"type": "string"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema with the Kubernetes extensions turned into JSON Schema."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def crd_schema(crd_file: str, version: str | None = None) -> dict[str, Any]:
    crd = json.loads(upstream(crd_file).read_text())
    versions = crd["spec"]["versions"]
    v = next(v for v in versions if (v["name"] == version if version else v.get("storage")))
    schema = strict(v["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = copy.deepcopy(OBJECT_META)
    return schema


def crd_validator(crd_file: str, version: str | None = None) -> jsonschema.Draft7Validator:
    schema = crd_schema(crd_file, version)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, format_checker=jsonschema.FormatChecker())


def errors(validator: jsonschema.protocols.Validator, obj: Any) -> list[str]:
    """Every violation, as ``path.to.field: message`` lines sorted for stable assertion output."""
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(obj))
