"""Fixtures shared by test directories: the one real kube-apiserver of a session (tests/kubeenv), used by the
cluster tests and by the executed pipelines' deploy step (tests/e2e)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubeenv import KubeEnv, Unavailable, find_assets


@pytest.fixture(scope="session")
def kube_server(request: pytest.FixtureRequest):
    cache = Path(request.config.cache.mkdir("kube-assets")) if request.config.cache else Path("/tmp/mlc-kube")
    try:
        assets = find_assets(cache)
    except Unavailable as e:
        pytest.skip(f"no real Kubernetes API server: {e}")
    k = KubeEnv(assets)
    try:
        k.__enter__()
    except Unavailable as e:
        pytest.skip(f"no real Kubernetes API server: {e}")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(k.dir / "cache")  # mlc keeps OpenAPI documents there; not in ~/.cache
    try:
        yield k
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved
        k.stop()
