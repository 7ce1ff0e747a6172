"""The fault table: an unreachable, refusing or misconfigured service of the user's environment ends in exit 1 with
one line naming the service, where, what it answered and what to check; never exit 3 with a traceback.

Every fault comes from a real server or a real absence: moto's S3 API for NoSuchBucket, a real `mlflow server`
(MLflow 3, started without --allowed-hosts) reached through a host name it does not allow for the 403, closed
ports for "unreachable", a process with no kubeconfig and no in-cluster service account for the Kubernetes API,
and for Prometheus a closed port and a real HTTP server that is not a Pushgateway (moto) as MLC_PUSHGATEWAY.
The steps run as `mlc step` subprocesses, the way a container runs them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.servers import CREDENTIALS, MlflowServer, S3Server, closed_port, mlflow_server, moto_server

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "specs" / "churn"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> MlflowServer:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Path:
    """churn with two extra environments: `vol` (a local-path root, data pushed there) and `nobucket`."""
    d = tmp_path_factory.mktemp("faults") / "churn"
    shutil.copytree(CHURN, d, ignore=shutil.ignore_patterns(".mlc", "__pycache__"))
    spec = d / "mlproject.yaml"
    text = spec.read_text()
    extra = (f"  vol:\n    storage: {{root: {d.parent / 'volume'}}}\n    tracking_uri: sqlite:///{d.parent}/mlflow.db\n"
             f"  nobucket:\n    storage: {{root: s3://no-such-bucket/churn, endpoint: {s3.url}}}\n"
             f"    tracking_uri: sqlite:///{d.parent}/mlflow.db\n")
    assert "\nenvironments:\n" in text
    text = text.replace("\nenvironments:\n", "\nenvironments:\n" + extra, 1)
    spec.write_text(text)
    assert mlc("push", str(d), "--env", "vol").returncode == 0
    return d


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "MLFLOW_", "KUBERNETES_", "MLC_")) and k != "KUBECONFIG"}
    return {**env, **CREDENTIALS, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
            "HOME": env.get("HOME", "/tmp")}


def mlc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlc", *args], check=False, capture_output=True, text=True,
                          timeout=300,
                          env={**base_env(), **env})


def step(project: Path, name: str, env: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return mlc("step", name, "--spec", str(project / "mlproject.yaml"), "--run-id", f"faults-{name}-{env}",
               "--env", env, **environ)


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    """The error line; the run must have exited 1 with it as the last line and no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.stderr.strip().splitlines()[-1]


def registered_champion(project: Path) -> None:
    """A champion version in the vol environment's registry, so deploy gets as far as the Kubernetes API."""
    import mlflow
    from mlflow import MlflowClient

    store = f"sqlite:///{project.parent}/mlflow.db"
    # the registry too: without it MlflowClient takes the process-wide registry URI, which an earlier test in
    # this worker may have pointed at another store (mlflow.set_registry_uri through tracking.use_store)
    c = MlflowClient(store, registry_uri=store)
    try:
        c.get_model_version_by_alias("churn-classifier", "champion")
        return
    except mlflow.exceptions.MlflowException:
        pass
    c.create_registered_model("churn-classifier")
    v = c.create_model_version("churn-classifier", source=str(project.parent / "no-model"))
    c.set_registered_model_alias("churn-classifier", "champion", v.version)


def test_s3_no_such_bucket(project: Path, s3: S3Server) -> None:
    line = one_line(step(project, "ingest", "nobucket"))
    assert line.startswith(f"error: S3 at {s3.url} (bucket no-such-bucket): ")
    assert "NoSuchBucket: The specified bucket does not exist" in line
    assert line.endswith("check that the bucket exists (create it) and that storage.root names it")


def test_s3_unreachable(project: Path) -> None:
    port = closed_port()
    text = (project / "mlproject.yaml").read_text()
    other = project.parent / "unreachable"
    if not other.exists():
        shutil.copytree(project, other)
        (other / "mlproject.yaml").write_text(re.sub(r"endpoint: http://127\.0\.0\.1:\d+",
                                                     f"endpoint: http://127.0.0.1:{port}", text))
    url = re.search(r"endpoint: (http://127\.0\.0\.1:\d+)", (other / "mlproject.yaml").read_text()).group(1)
    line = one_line(step(other, "ingest", "nobucket"))
    assert line.startswith(f"error: S3 at {url}: unreachable (Could not connect to the endpoint URL")


def test_mlflow_refuses_the_host(project: Path, tracking: MlflowServer) -> None:
    """MLflow 3 checks the Host header (DNS-rebinding protection): a name it does not allow gets 403. 127.1 is
    the loopback address under a name that is not in its default list (localhost, 127.0.0.1, private ranges)."""
    uri = f"http://127.1:{tracking.port}"
    line = one_line(step(project, "ingest", "vol", MLFLOW_TRACKING_URI=uri))
    assert line.startswith(f"error: MLflow at {uri}: API request to endpoint /api/2.0/mlflow/experiments/"), line
    assert "failed with error code 403 != 200" in line and "Invalid Host header" in line
    assert line.endswith("check the server's --allowed-hosts (MLflow 3 refuses hosts it does not list; start it "
                         "with --allowed-hosts '<host>:<port>,...' naming this tracking URI's host)")


def test_mlflow_unreachable(project: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    line = one_line(step(project, "ingest", "vol", MLFLOW_TRACKING_URI=uri))
    assert line.startswith(f"error: MLflow at {uri}: API request to ")
    assert "Connection refused" in line or "Max retries" in line
    assert line.endswith("check that the tracking server is running and tracking_uri / MLFLOW_TRACKING_URI point "
                         "at it")


def test_kubernetes_not_configured(project: Path) -> None:
    """`mlc step deploy` outside a pod, with no kubeconfig: the ConfigException of the issue."""
    registered_champion(project)
    line = one_line(step(project, "deploy", "vol"))
    assert line == ("error: no Kubernetes credentials: no kubeconfig at ~/.kube/config, and not in a pod "
                    "(KUBERNETES_SERVICE_HOST is not set); set KUBECONFIG, or run the step in a pod whose "
                    "ServiceAccount token is mounted"), line


def test_kubernetes_service_without_token(project: Path) -> None:
    """KUBERNETES_SERVICE_HOST/PORT set (as in a pod) but no mounted ServiceAccount token."""
    registered_champion(project)
    line = one_line(step(project, "deploy", "vol", KUBERNETES_SERVICE_HOST="127.0.0.1",
                         KUBERNETES_SERVICE_PORT=str(closed_port())))
    assert line.startswith("error: no Kubernetes credentials: no kubeconfig at ~/.kube/config, and not in a pod "
                           "(KUBERNETES_SERVICE_HOST is set but no ServiceAccount token is mounted at "
                           "/var/run/secrets/kubernetes.io/serviceaccount/token)"), line


@pytest.mark.parametrize("kind", ["closed", "not-a-pushgateway"])
def test_prometheus_pushgateway(kind: str, project: Path, s3: S3Server, tmp_path: Path) -> None:
    """The Pushgateway adapter, in process: the drift and quality steps call export_gauges with MLC_PUSHGATEWAY
    (running them needs a trained model; the executed monitor pipeline in tests/e2e covers that path)."""
    from prometheus_client import Gauge

    from mlc.errors import ServiceError
    from mlc.plan import lower
    from mlc.runtime.context import make_context
    from mlc.runtime.monitor import export_gauges
    from mlc.services import guard
    from mlc.spec.validate import load_spec

    gateway = f"127.0.0.1:{closed_port()}" if kind == "closed" else s3.url.removeprefix("http://")
    sf = load_spec(str(project))
    ctx = make_context(sf, lower(sf.spec, sf.text, "vol"), "faults-prom", local=False)
    os.environ["MLC_PUSHGATEWAY"] = gateway
    try:
        with pytest.raises(ServiceError) as e, guard():
            export_gauges(ctx, str(tmp_path), "drift", lambda r: Gauge("mlc_test", "t", registry=r).set(1))
    finally:
        del os.environ["MLC_PUSHGATEWAY"]
    line = f"error: {e.value}"
    assert line.startswith(f"error: Prometheus Pushgateway at {gateway}: ")
    if kind == "closed":
        assert "unreachable (" in line and "Connection refused" in line
    else:
        assert re.search(r"answered [45]\d\d ", line), line
    assert line.endswith("check that the Pushgateway runs and MLC_PUSHGATEWAY (host:port) points at it")
