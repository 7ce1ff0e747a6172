"""Benchmark `mlc apply` against a real kube-apiserver, next to `kubectl apply --server-side -k` of the same
environment's generated directory.

    python benchmarks/apply.py                  # churn prod, 3 rounds
    python benchmarks/apply.py --rounds 5 --env prod --project specs/churn

Starts the test server of tests/kubeenv (etcd, kube-apiserver, kube-controller-manager; binaries through
KUBEBUILDER_ASSETS or ../shared/kube) with the Argo CRDs the environment targets, KServe and prometheus-operator.
Each round, on an empty cluster namespace: `kubectl apply --server-side -k generated/<project>/<env>` (first
time, then unchanged), delete the namespace and wait until it is gone, then `mlc apply PATH --env ENV --yes` (first
time, then unchanged: the no-op), and delete again. Every command runs in a fresh process; wall time from spawn to
exit. mlc's numbers include compiling the spec in memory (it never reads generated/); kubectl reads the files.
Prints a Markdown table with the median of the rounds and the machine's load average.
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

from kubeenv import KubeEnv, find_assets


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, check=False)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


def gone(k: KubeEnv, ns: str) -> None:
    k.request("DELETE", f"/api/v1/namespaces/{ns}")
    deadline = time.monotonic() + 300
    while k.request("GET", f"/api/v1/namespaces/{ns}").status_code != 404:
        if time.monotonic() > deadline:
            raise SystemExit(f"namespace {ns} still terminating after 300s")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default="specs/churn")
    ap.add_argument("--env", default="prod")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(REPO / args.project)
    plan = lower(sf.spec, sf.text, args.env)
    gen = REPO / "generated" / plan.project / args.env
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("kubectl not found")
    cache = Path(tempfile.gettempdir()) / "mlc-kube-assets"
    with KubeEnv(find_assets(cache)) as k:
        k.use_argo("4" if plan.argo_version.startswith("4") else "3.7")
        kc = k.kubeconfig(k.dir / "bench.kubeconfig")
        env = {**os.environ, "KUBECONFIG": str(kc)}
        mlc = [str(Path(sys.executable).parent / "mlc")]
        rows: dict[str, list[float]] = {k_: [] for k_ in ("kubectl first", "kubectl unchanged", "mlc first",
                                                          "mlc unchanged")}
        for _ in range(args.rounds):
            ka = [kubectl, "apply", "--server-side", "-k", str(gen)]
            rows["kubectl first"].append(timed(ka, env))
            rows["kubectl unchanged"].append(timed(ka, env))
            gone(k, plan.namespace)
            ma = [*mlc, "apply", str(REPO / args.project), "--env", args.env, "--yes", "--kubeconfig", str(kc)]
            rows["mlc first"].append(timed(ma, env))
            rows["mlc unchanged"].append(timed(ma, env))
            gone(k, plan.namespace)
    load = os.getloadavg()
    print(f"{plan.project}/{args.env}: {args.rounds} rounds, median wall time of a fresh process; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print("| command | first apply | unchanged (no-op) |")
    print("|---|---|---|")
    med = {k_: statistics.median(v) for k_, v in rows.items()}
    print(f"| `kubectl apply --server-side -k generated/{plan.project}/{args.env}` | {med['kubectl first']:.2f} s | "
          f"{med['kubectl unchanged']:.2f} s |")
    print(f"| `mlc apply {args.project} --env {args.env} --yes` | {med['mlc first']:.2f} s | "
          f"{med['mlc unchanged']:.2f} s |")
    print("all rounds:", {k_: [round(x, 2) for x in v] for k_, v in rows.items()})


if __name__ == "__main__":
    main()
