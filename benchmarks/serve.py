"""Benchmark `mlc serve` against the seed's minimal FastAPI app, in the same run, on the same model.

One-row inference through /v2/models/{name}/infer and /predict at 1 and 50 concurrent closed-loop clients
(each client sends its next request as soon as the previous answer arrived), reporting p50/p95/p99 latency
and throughput. The servers are pinned to CPU 0 and the load generator to CPU 1 (a raw-socket HTTP/1.1
keep-alive client on uvloop: httpx would spend more CPU than the server it measures).

    python benchmarks/serve.py                       # trains with `mlc run` on a tmp copy of specs/churn
    python benchmarks/serve.py --project specs/churn # reuse a project's .mlc store (its champion)
    python benchmarks/serve.py --quick               # a logistic-regression model of the same shape

Goals (issue 5): p95 <= 10 ms at 50 clients; throughput at least the seed app's.
"""

from __future__ import annotations

import argparse
import asyncio
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
sys.path.insert(0, str(REPO / "tests" / "serve"))

import httpx
import serve_support as S

NAME = "churn-classifier"


def prepare(args: argparse.Namespace, tmp: Path) -> Path:
    if args.project:
        project = Path(args.project).resolve()
        if not (project / ".mlc" / "mlflow.db").exists():
            sys.exit(f"{project}/.mlc/mlflow.db does not exist: run `mlc run {project}` first")
        return project
    project = S.copy_project(tmp / "churn")
    if args.quick:
        S.register(project, S.train_pipeline(n=6000))
        return project
    t = time.perf_counter()
    r = subprocess.run([*S.MLC, "run", str(project)], cwd=tmp, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mlc run failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    print(f"mlc run: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return project


def champion(project: Path) -> tuple[str, str]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.mlc' / 'mlflow.db'}"
    mv = MlflowClient(uri, uri).get_model_version_by_alias(NAME, "champion")
    return uri, str(mv.version)


def wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit(f"{url} not ready after {timeout}s")


def start(cmd: list[str], env: dict[str, str], cpu: str, log: Path) -> subprocess.Popen:
    taskset = ["taskset", "-c", cpu] if shutil.which("taskset") else []
    return subprocess.Popen([*taskset, *cmd], env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


# ------------------------------------------------------------------------------------------ load generator
async def _client(port: int, request: bytes, until: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        while clock() < until:
            t0 = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(clock() - t0)
            if head[9:12] != b"200":
                errors.append(int(head[9:12]))
    finally:
        writer.close()


async def _load(port: int, path: str, body: bytes, clients: int, seconds: float) -> tuple[list[float], list[int]]:
    req = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    await asyncio.gather(*(_client(port, req, time.perf_counter() + 1.0, [], []) for _ in range(clients)))
    lat: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, req, until, lat, errors) for _ in range(clients)))
    return lat, errors


def measure(port: int, path: str, body: bytes, clients: int, seconds: float) -> dict:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    t = time.perf_counter()
    lat, errors = runner(_load(port, path, body, clients, seconds))
    wall = time.perf_counter() - t - 1.0
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
            "p50_ms": q[49] * 1e3, "p95_ms": q[94] * 1e3, "p99_ms": q[98] * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", help="a project whose .mlc store holds a champion churn model")
    ap.add_argument("--quick", action="store_true", help="register a logistic-regression model instead of mlc run")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", default="1,50")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})  # the load generator; servers get CPU 0
    tmp = Path(tempfile.mkdtemp(prefix="mlc-bench-"))
    project = prepare(args, tmp)
    tracking, version = champion(project)
    row = S.serving_row(S.churn_rows(1, seed=11)[0])
    row = {k: (v if v is not None else {"monthly_usage_hours": 20.0, "last_contact_days": 30,
                                           "age_group": "25-34"}.get(k)) for k, v in row.items()}
    v2 = json.dumps({"inputs": [{"name": k, "datatype": "BYTES" if isinstance(v, str) else
                                 ("INT64" if isinstance(v, int) else "FP64"), "shape": [1], "data": [v]}
                                for k, v in row.items()]}).encode()
    plain = json.dumps(row).encode()
    clients = [int(c) for c in args.clients.split(",")]
    results = []
    port = S.free_port()
    srv = start([*S.MLC, "serve", str(project), "--port", str(port)], {}, "0", tmp / "mlc.log")
    try:
        wait(f"http://127.0.0.1:{port}/v2/health/ready", srv)
        for path, body in ((f"/v2/models/{NAME}/infer", v2), ("/predict", plain)):
            for c in clients:
                results.append({"server": "mlc serve", "route": path, **measure(port, path, body, c, args.seconds)})
                print(results[-1], file=sys.stderr)
    finally:
        stop(srv)
    port = S.free_port()
    seed = start([sys.executable, "-m", "uvicorn", "benchmarks.seed_app:app", "--port", str(port),
                  "--log-level", "warning"],
                 {"MODEL_URI": f"models:/{NAME}/{version}", "MLFLOW_TRACKING_URI": tracking,
                  "PYTHONPATH": str(REPO)}, "0", tmp / "seed.log")
    try:
        wait(f"http://127.0.0.1:{port}/docs", seed)
        for c in clients:
            results.append({"server": "seed app", "route": "/predict", **measure(port, "/predict", plain, c,
                                                                                  args.seconds)})
            print(results[-1], file=sys.stderr)
    finally:
        stop(seed)
    print(f"model {NAME} version {version} ({project}); {args.seconds:.0f} s per row; "
          f"{os.cpu_count()} CPUs, server on CPU 0, load generator on CPU 1\n")
    print("| server | route | clients | p50 ms | p95 ms | p99 ms | req/s | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['server']} | `{r['route']}` | {r['clients']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['rps']:.0f} | {r['errors']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
