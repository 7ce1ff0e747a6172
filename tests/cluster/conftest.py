"""Fixtures for the cluster tests: one real kube-apiserver per session (tests/kubeenv, the kube_server fixture in
tests/conftest.py), with the CRDs of the Argo major version under test; each test gets its own copy of the churn
spec in its own namespace."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubeenv import KubeEnv, Unavailable

from mlc.cli import main

REPO = Path(__file__).resolve().parents[2]
ENV_FOR_ARGO = {"3.7": "staging", "4": "prod"}  # the churn environment that targets each Argo version
NAMESPACE_LINE = {"staging": "    namespace: churn-staging\n", "prod": "    namespace: churn\n"}
_n = itertools.count(1)


def _use_argo(k: KubeEnv, version: str) -> None:
    try:
        k.use_argo(version)
    except Unavailable as e:
        pytest.skip(f"no real Kubernetes API server for Argo {version}: {e}")


@pytest.fixture(scope="session", params=["3.7", "4"], ids=["argo3.7", "argo4"])
def argo(request: pytest.FixtureRequest, kube_server: KubeEnv) -> str:
    _use_argo(kube_server, request.param)
    return request.param


@pytest.fixture(scope="session")
def argo_any(kube_server: KubeEnv) -> str:
    """For the tests that need only one Argo version (the CRDs of whichever is installed are fine; 3.7 if none)."""
    if kube_server.argo is None:
        _use_argo(kube_server, "3.7")
    return kube_server.argo or "3.7"


@dataclass
class Project:
    """A copy of specs/churn whose environment ``env`` lives in the fresh namespace ``ns``."""

    k: KubeEnv
    dir: Path
    env: str
    ns: str
    kc: str

    def mlc(self, capsys: pytest.CaptureFixture[str], *args: str, env: str | None = None,
            kubeconfig: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([args[0], str(self.dir), "--env", env or self.env, "--kubeconfig", kubeconfig or self.kc,
                     *args[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    def edit(self, old: str, new: str) -> None:
        f = self.dir / "mlproject.yaml"
        text = f.read_text()
        assert old in text, old
        f.write_text(text.replace(old, new, 1))

    def get(self, plural: str, name: str, api: str = "") -> dict | None:
        base = f"/apis/{api}" if api else "/api/v1"
        r = self.k.request("GET", f"{base}/namespaces/{self.ns}/{plural}/{name}")
        return None if r.status_code == 404 else r.json()

    def names(self, plural: str, api: str = "") -> set[str]:
        base = f"/apis/{api}" if api else "/api/v1"
        r = self.k.request("GET", f"{base}/namespaces/{self.ns}/{plural}")
        return {i["metadata"]["name"] for i in r.json().get("items", [])}


def make_project(k: KubeEnv, tmp_path: Path, env: str) -> Project:
    d = tmp_path / "churn"
    if not d.exists():
        d.mkdir()
        shutil.copy(REPO / "specs" / "churn" / "mlproject.yaml", d / "mlproject.yaml")
    ns = f"t{next(_n)}-{env}"
    f = d / "mlproject.yaml"
    f.write_text(f.read_text().replace(NAMESPACE_LINE[env], f"    namespace: {ns}\n", 1))
    return Project(k, d, env, ns, str(k.kubeconfig(tmp_path / "kubeconfig")))


@pytest.fixture
def project(kube_server: KubeEnv, argo: str, tmp_path: Path) -> Project:
    """The churn environment that targets the installed Argo version, in a namespace of its own."""
    return make_project(kube_server, tmp_path, ENV_FOR_ARGO[argo])


@pytest.fixture
def staging(kube_server: KubeEnv, argo_any: str, tmp_path: Path) -> Project:
    """For behaviour that does not depend on the Argo version: the environment matching the installed CRDs."""
    return make_project(kube_server, tmp_path, ENV_FOR_ARGO[argo_any])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test on the real server runs in one xdist worker (`--dist loadgroup`): one server per run. Those
    tests are kept grouped by Argo version whatever reordered them, since swapping the CRDs takes a while."""
    at = [i for i, item in enumerate(items) if "kube_server" in getattr(item, "fixturenames", ())]
    for i in at:
        items[i].add_marker(pytest.mark.xdist_group("kube"))

    def version(item: pytest.Item) -> int:
        cs = getattr(item, "callspec", None)
        return {"3.7": 0, "4": 1}.get(cs.params.get("argo") if cs else None, 2)

    for i, item in zip(at, sorted((items[i] for i in at), key=version), strict=True):
        items[i] = item


@pytest.fixture
def gc(kube_server: KubeEnv) -> None:
    """Deletions finish only with kube-controller-manager (garbage collector, namespace controller)."""
    if not kube_server.has_controllers:
        pytest.skip("no kube-controller-manager beside kube-apiserver: foreground deletions never finish without "
                    "its garbage collector (setup-envtest does not ship it)")
