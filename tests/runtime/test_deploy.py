"""deploy: locally it only points at `mlc serve`; on a cluster it patches the InferenceService so the predictor
rolls out and loads the new production version."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.register import VERSION_ANNOTATION, deploy

CRD = S.REPO / ".." / "shared" / "crds" / "kserve-inferenceservices.crd.json"


def _online(spec: dict) -> None:
    spec["deployment"]["online"] = {"runtime": "mlc"}


def test_deploy_patches_the_inference_service_on_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes

    calls = []

    class Api:
        def patch_namespaced_custom_object(self, *args):  # type: ignore[no-untyped-def]
            calls.append(args)

    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", Api)
    monkeypatch.setattr("mlc.runtime.tracking.champion", lambda ctx: SimpleNamespace(version=7))
    ctx = S.context(S.write_spec(tmp_path / "p", _online), "r1")
    ctx.local = False
    res = deploy(ctx, S.step(ctx, "deploy"))
    ((group, version, namespace, plural, name, body),) = calls
    assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
    assert (namespace, name) == (ctx.plan.namespace, ctx.plan.endpoint.name) == ("tiny-local", "tiny")
    assert body["spec"]["predictor"]["annotations"] == {VERSION_ANNOTATION: "7"}
    assert res.outputs == {"version": "7"}
    crd = json.loads(CRD.read_text())
    v1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    assert "annotations" in v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"][
        "properties"]  # the field we patch exists in KServe's schema

    monkeypatch.setattr("mlc.runtime.tracking.champion", lambda ctx: None)
    with pytest.raises(RunError, match="nothing to deploy"):
        deploy(ctx, S.step(ctx, "deploy"))


def test_deploy_locally_points_at_mlc_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlc.runtime.tracking.champion", lambda ctx: SimpleNamespace(version=2))
    ctx = S.context(S.write_spec(tmp_path / "p", _online), "r1")
    res = deploy(ctx, S.step(ctx, "deploy"))
    assert res.message.startswith("local: serve it with `mlc serve") and "production v2" in res.message
