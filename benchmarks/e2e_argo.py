"""The executed Argo train pipeline (tests/e2e: one process per container, from the compiled WorkflowTemplate)
against `mlc run` of the same spec and environment in one process: the cost of the cluster contract.

    python benchmarks/e2e_argo.py [--runs 1]

Both use the same servers: moto's S3 API for the storage root (filled by `mlc push`) and a real `mlflow server`
for tracking. The spec is a copy of specs/churn whose staging storage.endpoint names the moto server, so `mlc run
--env staging --no-cache` and the pods read and write the same bucket. The deploy step differs: under `mlc run` it
is a local no-op, in the harness it fails at once (no Kubernetes API), so it is left out of the pipeline sum.
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

from e2e.argo import ArgoRunner
from e2e.pods import Cluster
from e2e.servers import CREDENTIALS, mlflow_server, moto_server

MLC = str(Path(sys.executable).parent / "mlc")


def cpu() -> float:
    """CPU seconds (user + sys) of every child process waited for so far: load-independent, unlike wall time."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s, moto_server(Path(tmp_s)) as s3, \
            mlflow_server(Path(tmp_s) / "mlflow") as tracking:
        tmp = Path(tmp_s)
        s3.client().create_bucket(Bucket="ml-staging")
        proj = tmp / "churn"
        shutil.copytree(REPO / "specs" / "churn", proj, ignore=shutil.ignore_patterns(".mlc", "__pycache__"))
        spec = proj / "mlproject.yaml"
        spec.write_text(spec.read_text().replace("endpoint: http://minio.minio.svc:9000", f"endpoint: {s3.url}"))
        env = {**os.environ, **s3.env()}
        run([MLC, "compile", str(proj), "-o", str(tmp / "generated"), "--env", "staging"], env)
        run([MLC, "push", str(proj), "--env", "staging"], env)
        env_dir = tmp / "generated" / "churn" / "staging"
        harness, local, steps, harness_cpu, local_cpu = [], [], [], [], []
        for i in range(args.runs):
            cluster = Cluster.from_compiled(
                env_dir, tmp / f"cluster-{i}",
                secrets={"minio-credentials": {k: CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID",
                                                                           "AWS_SECRET_ACCESS_KEY")}},
                services={"http://mlflow.mlflow.svc:5000": tracking.url})
            runner = ArgoRunner.load(cluster, env_dir / "argo" / "workflowtemplate-churn-train.yaml")
            t, c = time.perf_counter(), cpu()
            wf = runner.submit(f"churn-train-bench-{i}")
            total = time.perf_counter() - t
            harness_cpu.append(cpu() - c)
            failed = [n for n, node in wf.nodes.items() if node.phase != "Succeeded"]
            if failed != ["deploy"]:
                raise SystemExit(f"unexpected failures {failed}: {wf.failed()}")
            deploy = sum(a.seconds for a in wf.nodes["deploy"].pod.attempts)
            harness.append(total - deploy)
            steps.append({n: sum(a.seconds for a in node.pod.attempts) for n, node in wf.nodes.items() if node.pod})
            c = cpu()
            local.append(run([MLC, "run", str(proj), "--env", "staging", "--no-cache"],
                             {**env, "MLFLOW_TRACKING_URI": tracking.url}))
            local_cpu.append(cpu() - c)
        load = os.getloadavg()
        h, loc = statistics.median(harness), statistics.median(local)
        print(f"churn train pipeline, staging env (moto S3 + mlflow server on loopback); median of {args.runs}; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        hc, lc = statistics.median(harness_cpu), statistics.median(local_cpu)
        print("| measurement | wall s | CPU s |\n|---|---|---|")
        print(f"| `mlc run --env staging --no-cache` (one process) | {loc:.2f} | {lc:.2f} |")
        print(f"| executed Argo WorkflowTemplate, one process per step (wall: deploy excluded) | {h:.2f} | "
              f"{hc:.2f} |")
        print(f"| overhead of process-per-step | {h - loc:+.2f} ({h / loc:.2f}x) | {hc - lc:+.2f} ({hc / lc:.2f}x) |")
        last = steps[-1]
        print("per step (s): " + ", ".join(f"{n} {s:.1f}" for n, s in last.items()))


if __name__ == "__main__":
    main()
