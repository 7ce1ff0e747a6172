"""Real servers on loopback for the push, fault and executed-pipeline tests: moto's S3 API and `mlflow server`.

Each is a subprocess on a free port, started in its own session so that stopping it takes its workers too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "mlc-test", "AWS_SECRET_ACCESS_KEY": "mlc-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on (bound and released; nothing else on loopback picks ports this way)."""
    return free_port()


def _wait(proc: subprocess.Popen, url: str, what: str, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class S3Server:
    url: str

    def client(self, **creds: str):  # type: ignore[no-untyped-def]
        import boto3

        c = {**CREDENTIALS, **creds}
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=c["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"], region_name=c["AWS_DEFAULT_REGION"])

    def env(self) -> dict[str, str]:
        """What a process needs to reach this server (credentials the standard way, the endpoint by env)."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url}


@contextlib.contextmanager
def moto_server(log_dir: Path, *, auth: bool = False) -> Iterator[S3Server]:
    """moto's S3 API server. ``auth=True`` makes it check every request's access key against its IAM store,
    so credentials it never issued are refused with InvalidAccessKeyId, as AWS and MinIO do."""
    port = free_port()
    log = log_dir / f"moto-{port}.log"
    env = {**os.environ, "MOTO_PORT": str(port)}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(proc, f"{url}/moto-api/", "moto_server", log)
        yield S3Server(url)
    finally:
        _stop(proc)


@dataclass
class MlflowServer:
    url: str
    port: int


@contextlib.contextmanager
def mlflow_server(workdir: Path, *, artifacts: str | None = None, env: dict[str, str] | None = None,
                  extra: tuple[str, ...] = ()) -> Iterator[MlflowServer]:
    """A real `mlflow server` (MLflow 3: host-header checking on, allowing loopback names by default)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "mlflow-server.log"
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *extra]
    if artifacts:
        cmd += ["--artifacts-destination", artifacts]
    else:
        cmd += ["--artifacts-destination", str(workdir / "artifacts")]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(proc, f"{url}/health", "mlflow server", log)
        yield MlflowServer(url, port)
    finally:
        _stop(proc)
