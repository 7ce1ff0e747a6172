"""The JSON Schema of mlproject.yaml, generated from the models (committed as schemas/mlproject.schema.json).

Editors (yaml-language-server, via the `# yaml-language-server: $schema=` line) use it for completion and
hover text, so every property carries its description, enums and default; pydantic leaves out defaults
made by a factory, so those are filled in here. Refresh the committed copy with
`mlc schema > schemas/mlproject.schema.json`.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel

from mlc.spec.models import Spec

SCHEMA_ID = "https://mlc.dev/schemas/mlproject.schema.json"


def schema_dict() -> dict:
    s = Spec.model_json_schema(by_alias=True, mode="validation")
    defs = s.get("$defs", {})
    for model in _models(Spec):
        target = s if model is Spec else defs.get(model.__name__)
        if target is not None:
            _add_factory_defaults(model, target.get("properties", {}))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlproject.yaml",
        **s,
    }


def schema_text() -> str:
    return json.dumps(schema_dict(), indent=2, sort_keys=True) + "\n"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model reachable from ``root`` through field annotations, root first."""
    seen: list[type[BaseModel]] = []
    todo: list[Any] = [root]
    while todo:
        ann = todo.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if ann in seen:
                continue
            seen.append(ann)
            todo.extend(f.annotation for f in ann.model_fields.values())
        else:
            todo.extend(typing.get_args(ann))
    return seen


def _add_factory_defaults(model: type[BaseModel], props: dict) -> None:
    for name, f in model.model_fields.items():
        prop = props.get(f.alias or name)
        if prop is None or f.default_factory is None or "default" in prop:
            continue
        value = f.default_factory()  # type: ignore[call-arg]
        prop["default"] = _plain(value)


def _plain(v: Any) -> Any:
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v
