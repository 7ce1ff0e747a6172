"""The JSON Schema of mlproject.yaml, generated from the models (committed as schemas/mlproject.schema.json)."""

from __future__ import annotations

import json

from mlc.spec.models import Spec

SCHEMA_ID = "https://mlc.dev/schemas/mlproject.schema.json"


def schema_dict() -> dict:
    s = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "mlproject.yaml", **s}


def schema_text() -> str:
    return json.dumps(schema_dict(), indent=2, sort_keys=True) + "\n"
