"""Pointing MLflow at a project's store must not leak into os.environ: child processes (and make_context for
another project in the same process) would read it as the user's MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI."""

from __future__ import annotations

import os

import pytest

from mlc.runtime.tracking import use_store


def test_use_store_points_mlflow_without_touching_the_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    use_store(uri)
    assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_registry_uri() == uri
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user-choice:5000")
    use_store(f"sqlite:///{tmp_path / 'b.db'}")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://user-choice:5000"
