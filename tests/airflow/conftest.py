"""The Airflow 3 the generated DAGs are proven with: a virtualenv of its own (tools/airflow-venv.sh builds it at
.tools/airflow; MLC_AIRFLOW_PYTHON names another one's python), and one AIRFLOW_HOME with a migrated sqlite
metadata database per test session. That venv holds no mlc: the DAG files must not import it, and their tasks
run the `mlc` executable found on PATH, here a wrapper around this test run's interpreter and source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = REPO / ".tools" / "airflow" / "bin" / "python"


@dataclass
class Airflow:
    python: Path
    home: Path
    bin: Path  # holds the `mlc` wrapper

    def env(self, dags: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AIRFLOW", "MLFLOW", "MLC_"))}
        env.update(AIRFLOW_HOME=str(self.home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                   AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONDONTWRITEBYTECODE="1",
                   PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        env.update(extra)
        return env

    def run(self, args: list[str], dags: Path, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], env=self.env(dags, **extra), capture_output=True,
                              text=True, timeout=timeout, cwd=self.home, check=False)

    def cli(self, args: list[str], dags: Path, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
        return self.run(["-m", "airflow", *args], dags, timeout, **extra)


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    python = Path(os.environ.get("MLC_AIRFLOW_PYTHON", DEFAULT_PYTHON))
    if not python.exists():
        pytest.skip(f"no Airflow virtualenv at {python}: run tools/airflow-venv.sh (or set MLC_AIRFLOW_PYTHON)")
    code = "import airflow.providers.cncf.kubernetes, airflow; print(airflow.__version__)"
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{python} has no Airflow with the cncf.kubernetes provider: {probe.stderr.strip()[-300:]}")
    root = tmp_path_factory.mktemp("airflow")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    mlc = bin_dir / "mlc"  # the `mlc` a worker finds on PATH: this test run's interpreter and source tree
    mlc.write_text(f"#!/bin/sh\nPYTHONPATH={REPO / 'compiler'} PYTHONDONTWRITEBYTECODE=1 "
                   f"exec {sys.executable} -m mlc \"$@\"\n")
    mlc.chmod(0o755)
    af = Airflow(python, root / "home", bin_dir)
    af.home.mkdir()
    done = af.cli(["db", "migrate"], root / "no-dags")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return af
