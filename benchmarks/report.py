"""Benchmark `mlc report` and the dashboard build.

    python benchmarks/report.py                      # trains a tmp copy of specs/churn once, then measures
    python benchmarks/report.py --project DIR        # a project that already has a recorded run

`mlc report` runs in fresh processes (wall time from spawn to exit), with `--no-mlflow` and with the MLflow
logging; the dashboard is built in this process (``mlc.backends.grafana.dashboard_json`` of churn prod, after
one warm-up call that imports grafana-foundation-sdk). Prints a Markdown table with the medians and the
machine's load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def wall(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    mlc = [sys.executable, "-m", "mlc"]
    tmp = None
    project = a.project
    if project is None:
        tmp = Path(tempfile.mkdtemp(prefix="mlc-bench-report-"))
        project = tmp / "churn"
        shutil.copytree(REPO / "specs" / "churn", project, ignore=shutil.ignore_patterns(".mlc"))
        subprocess.run([*mlc, "run", str(project)], check=True, capture_output=True)
    try:
        plain = [wall([*mlc, "report", str(project), "--no-mlflow"], project.parent) for _ in range(a.runs)]
        logged = [wall([*mlc, "report", str(project)], project.parent) for _ in range(a.runs)]
        from planhelpers import example_plan

        from mlc.backends import grafana

        p = example_plan("churn", "prod")
        grafana.dashboard_json(p)
        t = time.perf_counter()
        for _ in range(50):
            grafana.dashboard_json(p)
        build_ms = (time.perf_counter() - t) / 50 * 1000
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("| what | median |\n|---|---|")
    print(f"| `mlc report --no-mlflow` | {statistics.median(plain):.2f} s |")
    print(f"| `mlc report` (figures logged to MLflow) | {statistics.median(logged):.2f} s |")
    print(f"| dashboard JSON of churn prod, in process | {build_ms:.1f} ms |")
    print(f"\nload average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
