"""Parse time of the generated Airflow DAG files, as Airflow's DAG processor pays it.

    .venv/bin/python benchmarks/airflow_parse.py [--repeat 20] [--runs 5]

Runs in the Airflow virtualenv (tools/airflow-venv.sh; MLC_AIRFLOW_PYTHON names another) on generated/:
  warm   DagBag.process_file of each file in one process with Airflow already imported (the DAG processor's
         case), median of --repeat parses per file; the table shows the slowest file's median
  cold   `python <dag file>` in a fresh interpreter, Airflow's own "time python your_dag.py" check, median of
         --runs, beside `python -c "<the same imports>"`: the difference is what the file itself costs
Airflow's guideline: a DAG file should parse well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PY = Path(os.environ.get("MLC_AIRFLOW_PYTHON", ROOT / ".tools" / "airflow" / "bin" / "python"))

WARM = r"""
import json, statistics, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder="/nonexistent")
out = {}
for f in sys.argv[2:]:
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        dags = bag.process_file(f, only_if_updated=False)
        times.append(time.perf_counter() - t)
        assert dags and not bag.import_errors, (f, bag.import_errors)
        bag.dags.clear()
    out[f] = statistics.median(times)
print("WARM " + json.dumps(out))
"""


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AIRFLOW"))}
    e["AIRFLOW_HOME"] = str(ROOT / ".tools" / "airflow-home-bench")
    e["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    e["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ beside the DAG files in generated/
    return e


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env(), check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not AIRFLOW_PY.exists():
        raise SystemExit(f"no Airflow venv at {AIRFLOW_PY}: run tools/airflow-venv.sh")
    files = sorted(str(p) for p in (ROOT / "generated").glob("*/*/airflow/*.py"))
    done = subprocess.run([str(AIRFLOW_PY), "-c", WARM, str(a.repeat), *files], env=env(), capture_output=True,
                          text=True, check=True)
    warm = json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("WARM "))[5:])
    slowest = max(warm, key=warm.get)
    biggest = max(files, key=lambda f: Path(f).stat().st_size)  # the cluster train DAG: most tasks
    imports = ("import hashlib, importlib, json, logging, re, datetime, pendulum; "
               "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator; "
               "from airflow.providers.standard.operators.bash import BashOperator; "
               "from airflow.sdk import DAG; from kubernetes.client import models")
    base, cold = [], []
    for _ in range(a.runs):  # interleaved, so that load on a shared machine hits both alike
        base.append(wall([str(AIRFLOW_PY), "-c", imports]))
        cold.append(wall([str(AIRFLOW_PY), biggest]))

    def rel(f: str) -> str:
        return str(Path(f).relative_to(ROOT))

    print(f"{len(files)} DAG files; load average {os.getloadavg()[0]:.1f}")
    print("| measurement | s |\n|---|---|")
    print(f"| warm parse (DagBag.process_file), median over all files | {statistics.median(warm.values()):.4f} |")
    print(f"| warm parse, slowest file ({rel(slowest)}) | {warm[slowest]:.4f} |")
    print(f"| cold `python {rel(biggest)}` | {statistics.median(cold):.3f} |")
    print(f"| cold `python -c <its imports>` (baseline) | {statistics.median(base):.3f} |")
    print(f"| the file itself, cold minus baseline | {statistics.median(cold) - statistics.median(base):.3f} |")


if __name__ == "__main__":
    main()
