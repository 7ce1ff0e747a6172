"""One IO code path for local and remote storage: the pipeline runs against an fsspec memory:// root (the s3
branch of execute: write in place, _SUCCESS last), and a missing s3fs is a clear error."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime import artifacts as A
from mlc.runtime.steps import is_complete


def _one_candidate(spec: dict) -> None:
    spec["training"]["candidates"] = [{"name": "logreg", "estimator": "logistic_regression"}]


def test_pipeline_on_a_remote_filesystem_root(tmp_path: Path) -> None:
    root = S.make_project(tmp_path / "p", _one_candidate)
    ctx = S.context(root, "r1")
    ctx.storage_root = f"memory://mlc-test-{uuid.uuid4().hex}/tiny"
    res = S.run(ctx, until="evaluate")
    assert res["evaluate"].outputs["winner"] == "logreg"
    for step in ("ingest", "validate-data", "features", "train-logreg", "evaluate"):
        assert is_complete(ctx, step), step
    assert A.read_json(f"{ctx.step_dir('evaluate')}/metrics.json")["winner"] == "logreg"
    assert not (root / ".mlc" / "artifacts").exists()  # nothing went to the local default root
    fs, path = A.filesystem(ctx.step_dir("ingest"))
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(path, detail=False)) == [
        "_SUCCESS", "data.parquet", "manifest.json", "result.json"]


def test_missing_s3fs_is_a_run_error_with_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(RunError, match=r"pip install 'mlc\[s3\]'"):
        A.read_bytes("s3://bucket/data.csv", {"client_kwargs": {"endpoint_url": "http://minio:9000"}})
