"""Run by the Airflow venv's python (not collected by pytest): load DAG folders in a real DagBag and print, as
JSON, the import errors, every DAG's settings and task graph, and whether anything imported mlc."""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def seconds(td: object) -> float | None:
    return td.total_seconds() if td is not None else None  # type: ignore[attr-defined]


def task(t: object) -> dict:
    return {
        "operator": type(t).__name__,
        "upstream": sorted(t.upstream_task_ids),
        "retries": t.retries,
        "retry_delay": seconds(t.retry_delay),
        "retry_exponential_backoff": t.retry_exponential_backoff,
        "max_retry_delay": seconds(t.max_retry_delay),
        "execution_timeout": seconds(t.execution_timeout),
        "do_xcom_push": t.do_xcom_push,
        "service_account_name": getattr(t, "service_account_name", None),
        "namespace": getattr(t, "namespace", None),
        "image": getattr(t, "image", None),
        "on_finish_action": str(getattr(t, "on_finish_action", "") or "") or None,
    }


out: dict = {}
for folder in sys.argv[1:]:
    bag = DagBag(dag_folder=folder)
    out[folder] = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {
        dag_id: {"file": dag.fileloc, "schedule": getattr(dag, "schedule", None), "catchup": dag.catchup,
                 "tags": sorted(dag.tags), "max_active_runs": dag.max_active_runs,
                 "is_paused_upon_creation": dag.is_paused_upon_creation,
                 "on_failure_callback": getattr(dag.on_failure_callback, "__name__", None),
                 "tasks": {t.task_id: task(t) for t in dag.tasks}}
        for dag_id, dag in bag.dags.items()}}
out["mlc_imported"] = sorted(m for m in sys.modules if m == "mlc" or m.startswith("mlc."))
print("DAGBAG-JSON " + json.dumps(out, default=str))
