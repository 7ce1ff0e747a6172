"""The direct read of the local registry (serve/registry.py) must give what the MLflow client gives, and hand
anything it does not recognise back to MLflow (None)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import serve_support as S

from mlc.serve import registry
from mlc.serve.command import resolve_model

NAME = "churn-classifier"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str, Any]:
    project = S.copy_project(tmp_path_factory.mktemp("reg") / "churn")
    model = S.train_pipeline()
    S.register(project, model)  # version 1, champion
    S.register(project, model, alias="challenger")  # version 2
    return project, f"sqlite:///{project / '.mlc' / 'mlflow.db'}", model


def rows() -> pd.DataFrame:
    from mlc.runtime.data import cast_frame
    from mlc.spec.validate import load_spec

    raw = pd.DataFrame(S.churn_rows(50, seed=9)).astype(str).replace({"": None})
    df, _, _ = cast_frame(raw, load_spec(S.CHURN).spec.data.schema_)
    return df[[c.name for c in S.churn_plan().inputs]]


def test_same_answer_as_the_mlflow_client(store) -> None:
    from mlflow import MlflowClient

    _, uri, model = store
    client = MlflowClient(uri, uri)
    for kw, mv in (({"version": None, "alias": "champion"}, client.get_model_version_by_alias(NAME, "champion")),
                   ({"version": None, "alias": "challenger"}, client.get_model_version_by_alias(NAME, "challenger")),
                   ({"version": 1, "alias": None}, client.get_model_version(NAME, "1"))):
        got = registry.find_version(uri, NAME, **kw)
        assert got is not None
        assert (got.version, got.run_id, got.tags) == (str(mv.version), mv.run_id, mv.tags)
        load = registry.sklearn_loader(got.artifacts)
        assert load is not None
        X = rows()
        np.testing.assert_array_equal(load().predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("kw", [{"version": 9, "alias": None}, {"version": None, "alias": "nope"}])
def test_unknown_version_or_alias_is_left_to_mlflow(store, kw) -> None:
    assert registry.find_version(store[1], NAME, **kw) is None


def test_what_it_does_not_recognise_is_left_to_mlflow(store, monkeypatch, tmp_path) -> None:
    _, uri, _ = store
    assert registry.find_version("http://mlflow:5000", NAME, version=1, alias=None) is None
    assert registry.find_version(f"sqlite:///{tmp_path / 'none.db'}", NAME, version=1, alias=None) is None
    (tmp_path / "other.db").write_bytes(b"not a database")
    assert registry.find_version(f"sqlite:///{tmp_path / 'other.db'}", NAME, version=1, alias=None) is None
    found = registry.find_version(uri, NAME, version=1, alias=None)
    assert found is not None
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-b")
    assert registry.find_version(uri, NAME, version=1, alias=None) is None
    monkeypatch.delenv("MLFLOW_WORKSPACE")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # MLflow's own switch, and its refusal
    assert registry.sklearn_loader(found.artifacts) is None
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    copy = tmp_path / "model"
    copy.mkdir()
    text = (found.artifacts / "MLmodel").read_text()
    (copy / "MLmodel").write_text(text.replace("code: null", "code: code"))
    assert "code: code" in (copy / "MLmodel").read_text()
    assert registry.sklearn_loader(copy) is None  # code paths: MLflow puts them on sys.path first


def test_a_deleted_version_is_not_served(store) -> None:
    from mlflow import MlflowClient

    project, uri, model = store
    version = S.register(project, model, alias=None)
    assert registry.find_version(uri, NAME, version=int(version), alias=None) is not None
    MlflowClient(uri, uri).delete_model_version(NAME, version)
    assert registry.find_version(uri, NAME, version=int(version), alias=None) is None


def test_resolve_model_direct_and_through_mlflow_agree(store, monkeypatch) -> None:
    project, uri, _ = store
    plan = S.churn_plan()
    direct = resolve_model(plan, uri, project=str(project))
    assert "read directly from the local registry" in direct.source
    monkeypatch.setattr(registry, "find_version", lambda *a, **k: None)
    via = resolve_model(plan, uri, project=str(project))
    assert via.source == f"models:/{NAME}/1 (through the MLflow client)"
    fields = ("name", "version", "alias", "run_id", "positive_class", "negative_class")
    assert [getattr(direct, f) for f in fields] == [getattr(via, f) for f in fields]
    assert (direct.version, direct.positive_class, direct.negative_class) == ("1", "yes", "no")
    X = rows()
    np.testing.assert_array_equal(direct.load().predict_proba(X), via.load().predict_proba(X))
