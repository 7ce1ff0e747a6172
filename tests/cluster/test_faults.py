"""Faults a real API server does not produce on demand, injected by a proxy in front of the real one
(tests/fakekube.FaultProxy): a 500, a server that stops answering, a connection dropped mid-apply. Plus the
config errors that need no server at all. Each ends in one line and exit 1, and says how far a write got."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import Project
from fakekube import FaultProxy
from kubeenv import ADMIN_TOKEN

from mlc.cli import main


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def writes(path_part: str, nth: int, what: str):
    """Fault the ``nth`` real (not dry-run) write whose path contains ``path_part``."""
    seen = []

    def fault(method, path, query):
        if method in ("PATCH", "POST", "DELETE") and "dryRun" not in query and path_part in path:
            seen.append(path)
            if len(seen) == nth:
                return what
        return None

    return fault


def proxied(p: Project, tmp_path: Path, fault, hang_s: float = 5.0) -> tuple[FaultProxy, str]:
    proxy = FaultProxy(p.k.url, p.k.dir / "ca.crt", fault, hang_s)
    return proxy, str(proxy.kubeconfig(tmp_path / "proxy.kubeconfig", ADMIN_TOKEN))


def test_a_500_mid_apply_says_how_far_it_got_and_a_rerun_finishes(capsys, staging, tmp_path):
    proxy, kc = proxied(staging, tmp_path, writes("/configmaps/churn-spec", 1, "500"))
    with proxy:
        code, _out, err = staging.mlc(capsys, "apply", "--yes", kubeconfig=kc)
    assert code == 1
    line = one_line(err)
    assert f"ConfigMap {staging.ns}/churn-spec: 500 InternalError: etcdserver: request timed out" in line
    assert "changes were made before this, the rest were not" in line and "`mlc apply` again" in line
    assert proxy.injected == [("500", "PATCH", f"/api/v1/namespaces/{staging.ns}/configmaps/churn-spec")]
    code, _, err = staging.mlc(capsys, "apply", "--yes")  # straight to the server: finishes the job
    assert code == 0, err
    assert staging.mlc(capsys, "plan")[0] == 0


def test_a_dropped_connection_mid_apply_says_how_far_it_got(capsys, staging, tmp_path):
    staging.mlc(capsys, "apply", "--yes")
    staging.edit("- {metric: roc_auc, min: 0.80}", "- {metric: roc_auc, min: 0.85}")
    proxy, kc = proxied(staging, tmp_path, writes("/namespaces/", 1, "drop"))
    with proxy:
        code, _out, err = staging.mlc(capsys, "apply", "--yes", kubeconfig=kc)
    assert code == 1
    line = one_line(err)
    assert f"cannot reach the Kubernetes API at {proxy.url}" in line
    assert "0 of " in line and "changes were made before this" in line
    assert [i[0] for i in proxy.injected] == ["drop"]
    code, _, err = staging.mlc(capsys, "apply", "--yes")
    assert code == 0, err
    assert "min: 0.85" in staging.get("configmaps", "churn-spec")["data"]["mlproject.yaml"]


def test_a_server_that_stops_answering_times_out_in_one_line(capsys, staging, tmp_path, monkeypatch):
    from mlc.cluster import kube

    monkeypatch.setattr(kube, "TIMEOUT_S", 1.0)
    proxy, kc = proxied(staging, tmp_path, lambda m, path, q: "hang" if path == "/apis" else None, hang_s=4)
    with proxy:
        code, _, err = staging.mlc(capsys, "plan", kubeconfig=kc)
    assert code == 1
    assert f"the Kubernetes API at {proxy.url} did not answer within 1s" in one_line(err)


# -- no server needed ---------------------------------------------------------------------------------------
@pytest.fixture
def spec_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "specs" / "churn"


def run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_unreachable_cluster_is_one_line(capsys, spec_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    kc = tmp_path / "dead"
    kc.write_text(f"""apiVersion: v1
kind: Config
current-context: dead
clusters: [{{name: dead, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: dead, context: {{cluster: dead, user: u}}}}]
""")
    code, err = run(capsys, "plan", str(spec_dir), "--env", "staging", "--kubeconfig", str(kc))
    assert code == 1
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in one_line(err)
    code, err = run(capsys, "plan", str(spec_dir), "--env", "staging", "--kubeconfig", str(kc), "--context", "nope")
    assert code == 1
    line = one_line(err)
    assert "cannot load the Kubernetes config" in line and "nope" in line


def test_missing_kubeconfig_is_one_line(capsys, spec_dir, tmp_path):
    code, err = run(capsys, "plan", str(spec_dir), "--env", "staging", "--kubeconfig", str(tmp_path / "nope"))
    assert code == 1
    assert "cannot load the Kubernetes config" in one_line(err)


def test_compiled_objects_already_carry_the_ownership_labels(spec_dir):
    from mlc.emit import build
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(spec_dir)
    for env in ("staging", "prod"):
        objs = [o.obj for o in build(lower(sf.spec, sf.text, env)) if o.resource and o.obj]
        assert objs
        for o in objs:
            labels = o["metadata"].get("labels", {})
            want = {"app.kubernetes.io/managed-by": "mlc", "mlc.dev/project": "churn", "mlc.dev/env": env}
            assert want.items() <= labels.items(), (o["kind"], o["metadata"]["name"])
