"""Wall time of `mlc run` on the churn example against the same training written by hand, and of a rerun with
nothing changed. Goals: mlc run <= 1.2x the hand-written script; the no-change rerun < 2 s.

    .venv/bin/python benchmarks/run.py [--repeat 3] [--json out.json]

Each measurement is a fresh process in a fresh copy of specs/churn (no .mlc/ state, a new sqlite store), so
import time counts the same for both. The two are interleaved and the median is reported, because the machine
this runs on may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


THREADS: dict[str, str] = {}


def timed(cmd: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(THREADS)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def _run_json(project: Path) -> dict:
    latest = (project / ".mlc" / "cache" / "latest-train").read_text().strip()
    return json.loads((project / ".mlc" / "artifacts" / "runs" / latest / "run.json").read_text())


def _all_cached(project: Path) -> bool:
    return all(s["status"] == "cached" for s in _run_json(project)["steps"])


def _print_steps(project: Path) -> None:
    run = _run_json(project)
    print("  mlc run steps: " + ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in run["steps"]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--threads", help="Set OMP_NUM_THREADS (and MKL/torch) for both, for steadier numbers on a "
                                      "shared machine.")
    args = ap.parse_args()
    if args.threads:
        THREADS.update(OMP_NUM_THREADS=args.threads, MKL_NUM_THREADS=args.threads)
    mlc = [str(BIN / "mlc")] if (BIN / "mlc").exists() else [sys.executable, "-m", "mlc"]
    results: dict[str, list[float]] = {"handwritten": [], "mlc run": [], "mlc run (no change)": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            project = work / "churn"
            shutil.copytree(REPO / "specs" / "churn", project, ignore=shutil.ignore_patterns(".mlc"))
            hand = work / "hand"
            hand.mkdir()
            results["handwritten"].append(timed(
                [sys.executable, str(REPO / "benchmarks" / "handwritten_churn.py"),
                 "--data", str(project / "data" / "customers.csv"),
                 "--tracking-uri", f"sqlite:///{hand / 'mlflow.db'}"], hand))
            results["mlc run"].append(timed([*mlc, "run", str(project)], work))
            _print_steps(project)
            for _attempt in range(3):  # a source edit during the run (a shared dev box) invalidates the cache
                rerun = timed([*mlc, "run", str(project)], work)
                if _all_cached(project):
                    break
                print("  rerun was not all cache hits (mlc's code changed meanwhile?); measuring again")
            results["mlc run (no change)"].append(rerun)
    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["mlc run"] / med["handwritten"]
    print(f"{'measurement':<24} {'median s':>9}   runs")
    for k, v in results.items():
        print(f"{k:<24} {med[k]:9.2f}   {', '.join(f'{x:.2f}' for x in v)}")
    print(f"mlc run / handwritten = {ratio:.2f}x (goal <= 1.2x); "
          f"no-change rerun {med['mlc run (no change)']:.2f}s (goal < 2 s)")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "median": med, "ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
