"""`mlc push` of the churn example's files to moto's S3 server on loopback: the first push into an empty bucket,
then an unchanged re-push (every file skipped by the sha256 in its metadata).

    python benchmarks/push.py [--runs 5]

Each measurement is a fresh `mlc push` process (wall time, median of --runs); each first push gets a new bucket.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from e2e.servers import moto_server


def project(base: Path, bucket: str) -> Path:
    d = base / bucket / "churn"
    shutil.copytree(REPO / "specs" / "churn", d, ignore=shutil.ignore_patterns(".mlc", "__pycache__"))
    spec = d / "mlproject.yaml"
    spec.write_text(spec.read_text().replace("root: s3://ml-staging/churn", f"root: s3://{bucket}/churn"))
    return d


CPU: dict[str, list[float]] = {"first": [], "again": []}


def timed(cmd: list[str], env: dict[str, str], kind: str) -> tuple[float, str]:
    """Wall seconds and the plan line; the child's CPU seconds (user + sys) go to CPU[kind]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[kind].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return dt, r.stdout.splitlines()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    mlc = str(Path(sys.executable).parent / "mlc")
    with tempfile.TemporaryDirectory() as tmp, moto_server(Path(tmp)) as s3:
        env = {**os.environ, **s3.env()}
        first, again = [], []
        plan_first = plan_again = ""
        for i in range(args.runs):
            bucket = f"bench-{i}"
            s3.client().create_bucket(Bucket=bucket)
            p = project(Path(tmp), bucket)
            dt, plan_first = timed([mlc, "push", str(p), "--env", "staging"], env, "first")
            first.append(dt)
            dt, plan_again = timed([mlc, "push", str(p), "--env", "staging"], env, "again")
            again.append(dt)
        load = os.getloadavg()
        print(f"mlc push specs/churn --env staging to moto on loopback; median of {args.runs} fresh processes; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print("| measurement | wall s | CPU s |\n|---|---|---|")
        print(f"| first push ({plan_first.split(': ', 1)[1]}) | {statistics.median(first):.3f} | "
              f"{statistics.median(CPU['first']):.3f} |")
        print(f"| unchanged re-push ({plan_again.split(': ', 1)[1]}) | {statistics.median(again):.3f} | "
              f"{statistics.median(CPU['again']):.3f} |")


if __name__ == "__main__":
    main()
