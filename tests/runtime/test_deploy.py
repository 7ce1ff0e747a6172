"""deploy: locally it only points at `mlc serve`; on a cluster it patches the InferenceService so the predictor
rolls out and loads the new production version."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import runtime_support as S
from crdschema import upstream

from mlc.errors import RunError
from mlc.runtime.register import VERSION_ANNOTATION, deploy

CRD = upstream("kserve-inferenceservices.crd.json")


def _online(spec: dict) -> None:
    spec["deployment"]["online"] = {"runtime": "mlc"}


def test_deploy_patches_the_inference_service_on_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes

    calls = []

    class Api:
        def patch_namespaced_custom_object(self, *args):  # type: ignore[no-untyped-def]
            calls.append(args)

    monkeypatch.setattr("mlc.runtime.register.load_kube_config", lambda config: None)
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


def test_deploy_client_config_in_a_pod_then_kubeconfig_then_a_clear_error(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    from mlc.errors import ServiceError
    from mlc.runtime.register import load_kube_config

    used: list[str] = []
    config = SimpleNamespace(load_incluster_config=lambda: used.append("in-cluster"),
                             load_kube_config=lambda: used.append("kubeconfig"))
    token, kc = tmp_path / "token", tmp_path / "kubeconfig"
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBECONFIG", str(kc))
    kc.write_text("{}")
    token.write_text("t")
    load_kube_config(config)  # a pod: its ServiceAccount wins over a kubeconfig
    token.unlink()
    load_kube_config(config)  # the service variables without a mounted token: not a pod's credentials
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    load_kube_config(config)
    assert used == ["in-cluster", "kubeconfig", "kubeconfig"]
    kc.unlink()
    with pytest.raises(ServiceError, match=r"neither found \(KUBERNETES_SERVICE_HOST is not set; no kubeconfig at "
                                           + str(kc)):
        load_kube_config(config)
    assert used == ["in-cluster", "kubeconfig", "kubeconfig"]


def test_deploy_locally_points_at_mlc_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlc.runtime.tracking.champion", lambda ctx: SimpleNamespace(version=2))
    ctx = S.context(S.write_spec(tmp_path / "p", _online), "r1")
    res = deploy(ctx, S.step(ctx, "deploy"))
    assert res.message.startswith("local: serve it with `mlc serve") and "production v2" in res.message


@pytest.mark.slow
def test_deploy_exports_the_production_model_for_builtin_runtimes(tmp_path: Path) -> None:
    """runtime: sklearn serves from storageUri, so deploy copies the champion's MLflow model files there; the
    exported files load as the same model."""
    import mlflow.sklearn
    import pandas as pd

    def edit(spec: dict) -> None:
        spec["deployment"]["online"] = {"runtime": "sklearn"}
        spec["training"]["candidates"] = spec["training"]["candidates"][:1]

    root = S.make_project(tmp_path / "p", edit, n=400)
    ctx = S.context(root, "r1")
    results = S.run(ctx)
    assert "exported to" in results["deploy"].message
    dst = Path(ctx.storage_root) / "models" / "tiny-model" / "champion"
    assert (dst / "MLmodel").is_file() and (dst / "MLC_VERSION").read_text().strip() == "1"
    model = mlflow.sklearn.load_model(str(dst))
    rows = pd.read_csv(root / "data" / "to_score.csv").head(5)
    assert model.predict_proba(rows).shape == (5, 2)
