"""The committed JSON Schema is what editors use: it must match the models and describe every field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlc.cli import main
from mlc.spec.schema import schema_dict, schema_text

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "mlproject.schema.json"


def test_committed_schema_matches_the_models() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "schemas/mlproject.schema.json is stale; regenerate it with:\n"
        "    mlc schema > schemas/mlproject.schema.json"
    )


def test_mlc_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema_dict()


def test_schema_is_valid_and_accepts_the_examples() -> None:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for spec in sorted((ROOT / "specs").glob("*/mlproject.yaml")):
        jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(spec.read_text()))
        assert spec.read_text().startswith(
            "# yaml-language-server: $schema=../../schemas/mlproject.schema.json"
        )


def test_schema_rejects_unknown_keys() -> None:
    schema = json.loads(COMMITTED.read_text())
    spec = yaml.safe_load((ROOT / "specs" / "churn" / "mlproject.yaml").read_text())
    spec["training"]["experimnet"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(spec)


def test_every_property_has_a_description_for_editor_hover() -> None:
    schema = schema_dict()
    missing = []
    for name, d in [("<root>", schema), *schema["$defs"].items()]:
        for prop, p in d.get("properties", {}).items():
            if "description" not in p:
                missing.append(f"{name}.{prop}")
    assert not missing


def test_enums_and_factory_defaults_are_in_the_schema() -> None:
    defs = schema_dict()["$defs"]
    assert defs["Label"]["properties"]["task"]["enum"] == ["classification", "regression"]
    assert defs["Training"]["properties"]["resources"]["default"] == {"cpu": "1", "memory": "2Gi", "gpu": 0}
    assert defs["Split"]["properties"]["test_size"]["default"] == 0.2
