"""deploy: locally it points at `mlc serve` (or, for a version awaiting its rollout, at `mlc serve --canary`
and `mlc rollout start`); on a cluster it pins the version on the InferenceService, which tests/e2e and
tests/cluster/test_rollout.py check against a real API server. Here: the messages, and whose credentials the
cluster client takes inside a pod."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import runtime_support as S

from mlc.runtime import artifacts as A
from mlc.runtime.register import deploy


def _online(spec: dict) -> None:
    spec["deployment"]["online"] = {"runtime": "mlc", "canary": [10, 100]}


def _registered(ctx, version: str, rollout_from: str | None) -> None:
    A.write_json(f"{ctx.step_dir('register')}/registered.json",
                 {"version": version, "rollout_from": rollout_from}, ctx.storage_options)


def test_local_deploy_points_at_serve_or_at_the_rollout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = S.context(S.write_spec(tmp_path / "p", _online), "r1")
    monkeypatch.setattr("mlc.runtime.tracking.champion", lambda ctx: SimpleNamespace(version=7))
    assert "production v7" in deploy(ctx, S.step(ctx, "deploy")).message  # no register in this run: production
    _registered(ctx, "7", None)
    msg = deploy(ctx, S.step(ctx, "deploy")).message
    assert "serve it with `mlc serve" in msg and "production v7" in msg
    _registered(ctx, "8", "7")
    msg = deploy(ctx, S.step(ctx, "deploy")).message
    assert "v8 awaits its rollout" in msg and "--canary" in msg and "mlc rollout start" in msg


def test_cluster_client_prefers_the_pods_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a pod, the mounted ServiceAccount token wins over any kubeconfig the image carries; elsewhere the
    kubeconfig is used."""
    from kubernetes.config import incluster_config

    from mlc.cluster.kube import _load_config, in_pod

    token, ca, kc = tmp_path / "token", tmp_path / "ca.crt", tmp_path / "kubeconfig"
    token.write_text("pod-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://kubeconfig.example:6443"}}],
        "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBECONFIG", str(kc))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_pod()
    cfg = _load_config(None, None)
    assert cfg.host == "https://10.0.0.1:443"
    assert cfg.get_api_key_with_prefix("authorization") .lower() == "bearer pod-token"
    token.unlink()  # the service variables without a mounted token: not a pod's credentials
    assert not in_pod()
    # (KUBECONFIG is read when the kubernetes package is imported, so the file is named here)
    assert _load_config(str(kc), None).host == "https://kubeconfig.example:6443"
