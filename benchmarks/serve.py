"""Benchmark `mlc serve` against the seed's minimal FastAPI app, in the same run, on the same model.

One-row inference through /v2/models/{name}/infer and /predict at 1 and 50 concurrent closed-loop clients
(each client sends its next request as soon as the previous answer arrived), reporting p50/p95/p99 latency
and throughput. The servers are pinned to CPU 0 and the load generator to CPU 1 (a raw-socket HTTP/1.1
keep-alive client on uvloop: httpx would spend more CPU than the server it measures).

    python benchmarks/serve.py                       # trains with `mlc run` on a tmp copy of specs/churn
    python benchmarks/serve.py --project specs/churn # reuse a project's .mlc store (its champion)
    python benchmarks/serve.py --quick               # a logistic-regression model of the same shape
    python benchmarks/serve.py --project specs/churn --time-to-ready 5   # start-up only: live and ready
    python benchmarks/serve.py --quick --canary --no-seed  # `mlc serve --canary`: two versions, weight 50

`--time-to-ready N` starts `mlc serve` N times (after one untimed start that warms the OS file cache) and reports,
from the spawn of the process, when /v2/health/live and /v2/health/ready first answered 200, with the server's
own breakdown of the model load (its "ready in ..." log line).

Goals (issue 5): p95 <= 10 ms at 50 clients; throughput at least the seed app's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
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
        if args.canary:
            S.register(project, S.train_pipeline(n=6000, seed=8), alias="challenger")
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


async def _load(port: int, path: str, body: bytes, clients: int, seconds: float,
                pid: int | None) -> tuple[list[float], list[int], float | None]:
    req = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    await asyncio.gather(*(_client(port, req, time.perf_counter() + 1.0, [], []) for _ in range(clients)))
    lat: list[float] = []
    errors: list[int] = []
    cpu0 = cpu_seconds(pid)
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, req, until, lat, errors) for _ in range(clients)))
    cpu1 = cpu_seconds(pid)
    return lat, errors, (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of the server process (Linux): CPU per request is what another job's load on the
    machine changes least, unlike latency and throughput."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, path: str, body: bytes, clients: int, seconds: float, pid: int | None = None) -> dict:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    t = time.perf_counter()
    lat, errors, cpu = runner(_load(port, path, body, clients, seconds, pid))
    wall = time.perf_counter() - t - 1.0
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
            "p50_ms": q[49] * 1e3, "p95_ms": q[94] * 1e3, "p99_ms": q[98] * 1e3,
            "cpu_us_per_request": cpu / len(lat) * 1e6 if cpu is not None and lat else None}


# ------------------------------------------------------------------------------------------ time to ready
def _status(port: int, path: str) -> int | None:
    """One GET on a fresh connection with a raw socket: polling every 10 ms must not load the machine."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
        return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else None
    except (OSError, ValueError):
        return None


def time_to_ready(project: Path, tmp: Path, runs: int) -> list[dict]:
    out = []
    for i in range(runs + 1):
        port = S.free_port()
        log = tmp / f"start-{i}.log"
        t0 = time.perf_counter()
        proc = subprocess.Popen([*S.MLC, "serve", str(project), "--port", str(port)], stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, env=S.clean_env())
        live = ready = None
        try:
            while ready is None and time.perf_counter() - t0 < 180:
                if proc.poll() is not None:
                    sys.exit(f"mlc serve exited {proc.returncode}:\n{log.read_text()}")
                now = time.perf_counter() - t0
                if live is None and _status(port, "/v2/health/live") == 200:
                    live = now
                if live is not None and _status(port, "/v2/health/ready") == 200:
                    ready = time.perf_counter() - t0
                time.sleep(0.01)
        finally:
            stop(proc)
        m = re.search(r"ready in (.*)", log.read_text())
        r = {"run": i, "live_s": live, "ready_s": ready, "server": m.group(1).strip() if m else ""}
        print(r, file=sys.stderr)
        if i:  # the first start only fills the OS file cache
            out.append(r)
    return out


def report_time_to_ready(results: list[dict]) -> None:
    def med(k: str) -> str:
        vals = [r[k] for r in results if r[k] is not None]
        return f"{statistics.median(vals):.2f} (min {min(vals):.2f}, max {max(vals):.2f})" if vals else "-"

    print(f"{len(results)} starts of `mlc serve`; load average {os.getloadavg()[0]:.2f} at the end; "
          f"{os.cpu_count()} CPUs\n")
    print(f"live after  {med('live_s')} s\nready after {med('ready_s')} s")
    for r in results:
        print(f"  run {r['run']}: live {r['live_s']:.2f} s, ready {r['ready_s']:.2f} s; server: {r['server']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", help="a project whose .mlc store holds a champion churn model")
    ap.add_argument("--quick", action="store_true", help="register a logistic-regression model instead of mlc run")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", default="1,50")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--time-to-ready", type=int, metavar="N", help="measure start-up only, over N starts")
    ap.add_argument("--canary", action="store_true",
                    help="serve champion and challenger with `mlc serve --canary --canary-weight 50` (with --quick, "
                         "a challenger is registered; with --project, the project must have one)")
    ap.add_argument("--no-seed", action="store_true", help="skip the seed app")
    args = ap.parse_args()
    if args.time_to_ready:
        tmp = Path(tempfile.mkdtemp(prefix="mlc-bench-"))
        results = time_to_ready(prepare(args, tmp), tmp, args.time_to_ready)
        report_time_to_ready(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        shutil.rmtree(tmp, ignore_errors=True)
        return
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
    extra = ["--canary", "--canary-weight", "50"] if args.canary else []
    srv = start([*S.MLC, "serve", str(project), "--port", str(port), *extra], {}, "0", tmp / "mlc.log")
    try:
        wait(f"http://127.0.0.1:{port}/v2/health/ready", srv)
        for path, body in ((f"/v2/models/{NAME}/infer", v2), ("/predict", plain)):
            for c in clients:
                results.append({"server": "mlc serve --canary" if args.canary else "mlc serve", "route": path,
                                **measure(port, path, body, c, args.seconds, srv.pid)})
                print(results[-1], file=sys.stderr)
    finally:
        stop(srv)
    if not args.no_seed:
        port = S.free_port()
        seed = start([sys.executable, "-m", "uvicorn", "benchmarks.seed_app:app", "--port", str(port),
                      "--log-level", "warning"],
                     {"MODEL_URI": f"models:/{NAME}/{version}", "MLFLOW_TRACKING_URI": tracking,
                      "PYTHONPATH": str(REPO)}, "0", tmp / "seed.log")
        try:
            wait(f"http://127.0.0.1:{port}/docs", seed)
            for c in clients:
                results.append({"server": "seed app", "route": "/predict", **measure(port, "/predict", plain, c,
                                                                                      args.seconds, seed.pid)})
                print(results[-1], file=sys.stderr)
        finally:
            stop(seed)
    print(f"model {NAME} version {version} ({project}); {args.seconds:.0f} s per row; "
          f"{os.cpu_count()} CPUs, server on CPU 0, load generator on CPU 1; load average {os.getloadavg()[0]:.1f} "
          "at the end\n")
    print("| server | route | clients | p50 ms | p95 ms | p99 ms | req/s | server CPU µs/req | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cpu = f"{r['cpu_us_per_request']:.0f}" if r["cpu_us_per_request"] is not None else "-"
        print(f"| {r['server']} | `{r['route']}` | {r['clients']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['rps']:.0f} | {cpu} | {r['errors']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
