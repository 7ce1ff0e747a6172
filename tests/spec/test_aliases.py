"""`auc` is what people write for ROC AUC: accepted everywhere a metric is named, normalised on load."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from mlc.spec.loader import load_text
from mlc.spec.schema import schema_text
from mlc.spec.validate import validate_loaded

ROOT = Path(__file__).resolve().parents[2]


def test_auc_is_roc_auc_everywhere() -> None:
    text = (ROOT / "specs" / "churn" / "mlproject.yaml").read_text().replace("roc_auc", "auc")
    assert "roc_auc" not in text
    spec = validate_loaded(load_text(text, "mlproject.yaml"))
    assert spec.training.select_by == "roc_auc"
    assert "auc" not in spec.training.metrics and "roc_auc" in spec.training.metrics
    assert {g.metric for g in spec.gates.metrics} >= {"roc_auc"}
    assert all(g.metric != "auc" for g in (*spec.gates.metrics, *spec.gates.champion, *spec.gates.slices))


def test_the_json_schema_accepts_auc() -> None:
    import yaml

    text = (ROOT / "specs" / "churn" / "mlproject.yaml").read_text()
    text = text.replace("select_by: roc_auc", "select_by: auc")
    jsonschema.validate(yaml.safe_load(text), json.loads(schema_text()))
