"""Helpers for the `mlc serve` tests and benchmark: a tmp copy of specs/churn with a registered model of the
exact shape `mlc run` registers (Pipeline[features ColumnTransformer, model], label mapped to 0/1, positive
class in the version tag), and a real `mlc serve` subprocess on a free port.

Not a test module: imported by tests/serve/test_*.py, tests/test_monitoring_e2e.py and
benchmarks/serve.py. The subprocess gets this directory on PYTHONPATH so that ``FailOn`` unpickles.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "specs" / "churn"
HERE = Path(__file__).resolve().parent
MLC = [sys.executable, "-m", "mlc"]


def churn_rows(n: int, seed: int, shift: float = 0.0) -> list[dict]:
    spec = importlib.util.spec_from_file_location("churn_generate_data", CHURN / "generate_data.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_rows(n, seed, shift=shift)


def copy_project(dst: Path, src: Path = CHURN) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "mlproject.yaml", dst / "mlproject.yaml")
    shutil.copytree(src / "data", dst / "data")
    return dst


@functools.cache
def churn_plan() -> Any:
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(CHURN)
    return lower(sf.spec, sf.text, "local")


def serving_row(raw: dict) -> dict:
    """A generated row as a client sends it: the model's input columns, typed, empty strings as null."""
    out: dict[str, Any] = {}
    for c in churn_plan().inputs:
        v = raw[c.name]
        if v == "" or v is None:
            out[c.name] = None
        elif c.type == "integer":
            out[c.name] = int(v)
        elif c.type == "float":
            out[c.name] = float(v)
        else:
            out[c.name] = str(v)
    return out


class FailOn:
    """Wraps a fitted pipeline and raises on one sentinel value: a real model failure, to produce real 5xx."""

    def __init__(self, inner: Any, column: str, value: Any) -> None:
        self.inner, self.column, self.value = inner, column, value
        self.classes_ = inner.classes_

    def _check(self, df: Any) -> None:
        if (df[self.column] == self.value).any():
            raise ValueError(f"injected failure: {self.column} == {self.value}")

    def predict_proba(self, df: Any) -> Any:
        self._check(df)
        return self.inner.predict_proba(df)

    def predict(self, df: Any) -> Any:
        self._check(df)
        return self.inner.predict(df)


def train_pipeline(n: int = 800, seed: int = 7) -> Any:
    """The pipeline `mlc run` registers, trained quickly: features from mlc's own builder, logistic regression."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from mlc.plan import lower
    from mlc.runtime.data import cast_frame
    from mlc.runtime.features import build_transformer
    from mlc.spec.validate import load_spec

    sf = load_spec(CHURN)
    plan = lower(sf.spec, sf.text, "local")
    raw = pd.DataFrame(churn_rows(n, seed)).astype(str).replace({"": None})
    df, _, _ = cast_frame(raw, sf.spec.data.schema_)
    y = (df["churned"] == "yes").astype("int64")
    names = [c.name for c in plan.inputs]
    pipe = Pipeline([("features", build_transformer(sf.spec)), ("model", LogisticRegression(max_iter=1000))])
    return pipe.fit(df[names], y)


def register(project: Path, model: Any, *, alias: str | None = "champion", name: str = "churn-classifier",
             positive: str = "yes") -> str:
    """Log ``model`` with mlflow.sklearn into <project>/.mlc/mlflow.db, register it, tag and alias it."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    state = project / ".mlc"
    state.mkdir(exist_ok=True)
    uri = f"sqlite:///{state / 'mlflow.db'}"
    from mlc.runtime.tracking import use_store

    use_store(uri)
    client = MlflowClient(uri, uri)
    exp = client.get_experiment_by_name("churn") or None
    exp_id = exp.experiment_id if exp else client.create_experiment(
        "churn", artifact_location=(state / "mlruns").resolve().as_uri())
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.set_tag("mlc.positive_class", positive)
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="pickle")
    mv = mlflow.register_model(info.model_uri, name)
    client.set_model_version_tag(name, mv.version, "mlc.positive_class", positive)
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    del run
    return str(mv.version)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for an `mlc` subprocess: mlflow.set_tracking_uri in this process exports
    MLFLOW_TRACKING_URI, which would point the child at another test's store."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    e.pop("MLFLOW_TRACKING_URI", None)
    e.pop("MLFLOW_REGISTRY_URI", None)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`mlc serve` in a subprocess; ``url`` once ready."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        e = clean_env(PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), **(env or {}))
        self.log = project / f"serve-{self.port}.log"
        self._fh = self.log.open("wb")
        self.proc = subprocess.Popen([*MLC, "serve", str(project), "--port", str(self.port), *args],
                                     stdout=self._fh, stderr=subprocess.STDOUT, env=e)

    def wait_ready(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlc serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"mlc serve not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()
        return self.proc.returncode
