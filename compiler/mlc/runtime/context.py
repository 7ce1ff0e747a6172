"""Where a step runs: resolved once from the Plan, identical for `mlc run` and a pod on a cluster.

Artifacts of run R and step S live under ``<root>/runs/<R>/<S>/``. ``root`` is the plan's storage root on a
cluster, and ``<project>/.mlc/artifacts`` for a local environment without a storage root. A step writes its
artifacts into a temporary directory and renames it into place only when it finished, so a step killed
half-way never leaves something a later run mistakes for complete (the ``_SUCCESS`` marker is written last).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.plan import LOCAL_STATE_DIR, OUTPUTS_DIR, Plan
from mlc.plan.model import OUTPUTS_JSON_ENV
from mlc.spec.validate import SpecFile

SUCCESS = "_SUCCESS"


@dataclass
class StepResult:
    """What a step reports: output parameters, metrics for the summary, and a one-line message."""

    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class StepContext:
    plan: Plan
    spec_file: SpecFile
    run_id: str
    storage_root: str  # local absolute path or s3://bucket/prefix
    tracking_uri: str
    local: bool  # True under `mlc run`; False inside a cluster pod
    outputs_dir: Path | None = None  # where output parameters go ($MLC_OUTPUTS_DIR on a cluster)
    storage_options: dict[str, Any] = field(default_factory=dict)  # fsspec options (S3 endpoint)
    # step name -> the directory it writes into while running (a temporary sibling of step_dir, see steps.py)
    work_dirs: dict[str, str] = field(default_factory=dict)
    verbosity: int = 0  # -v: library INFO and warnings are shown (see chatter.py); -vv: DEBUG too

    @property
    def project_dir(self) -> Path:
        return self.spec_file.root

    @property
    def state_dir(self) -> Path:
        return self.project_dir / LOCAL_STATE_DIR

    def run_dir(self, run_id: str | None = None) -> str:
        return f"{self.storage_root.rstrip('/')}/runs/{run_id or self.run_id}"

    def step_dir(self, step: str, run_id: str | None = None) -> str:
        return f"{self.run_dir(run_id)}/{step}"

    def out_dir(self, step: str) -> str:
        """Where a running step writes: its temporary directory under `execute`, else its step_dir."""
        return self.work_dirs.get(step) or self.step_dir(step)

    def data_uri(self, uri: str) -> str:
        """Resolve a data URI from the spec: schemes pass through, relative paths are relative to the project
        (locally) or to ``<storage root>/project`` (on a cluster, where the project's files are synced there)."""
        if "://" in uri or os.path.isabs(uri):
            return uri
        if self.local:
            return str((self.project_dir / uri).resolve())
        return f"{self.storage_root.rstrip('/')}/project/{uri}"

    def write_output(self, name: str, value: str) -> None:
        if self.outputs_dir is None:
            return
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        (self.outputs_dir / name).write_text(value)

    def write_outputs_json(self, outputs: dict[str, str]) -> None:
        """All output parameters as one JSON object, where $MLC_OUTPUTS_JSON names: Airflow's XCom contract
        (the KubernetesPodOperator's sidecar reads /airflow/xcom/return.json; a BashOperator pushes the last
        line it prints). Without the variable, nothing is written."""
        path = os.environ.get(OUTPUTS_JSON_ENV)
        if not path:
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(outputs, sort_keys=True) + "\n", encoding="utf-8")


def local_tracking_uri(project_dir: Path) -> str:
    db = (project_dir / LOCAL_STATE_DIR / "mlflow.db").resolve()
    return f"sqlite:///{db}"


def make_context(spec_file: SpecFile, plan: Plan, run_id: str, *, local: bool, verbosity: int = 0) -> StepContext:
    """Resolve storage and tracking for this environment. MLFLOW_TRACKING_URI overrides the spec."""
    env = spec_file.spec.environments.get(plan.env)
    has_storage = env is not None and env.storage is not None
    if local and not has_storage:
        root = str((spec_file.root / LOCAL_STATE_DIR / "artifacts").resolve())
    elif has_storage and not plan.storage.is_s3 and not os.path.isabs(plan.storage.root):
        root = str((spec_file.root / plan.storage.root).resolve())
    else:
        root = plan.storage.root
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or plan.tracking_uri or local_tracking_uri(spec_file.root)
    if tracking == local_tracking_uri(spec_file.root):
        from mlc.runtime.localstore import follow_project

        follow_project(spec_file.root / LOCAL_STATE_DIR)  # a copied project reads its own artifacts, not the original's
    opts: dict[str, Any] = {}
    if plan.storage.is_s3 and plan.storage.endpoint:
        opts = {"client_kwargs": {"endpoint_url": plan.storage.endpoint}}
    outputs = os.environ.get("MLC_OUTPUTS_DIR") or (None if local else OUTPUTS_DIR)
    return StepContext(plan, spec_file, run_id, root, tracking, local, Path(outputs) if outputs else None, opts,
                       verbosity=verbosity)
