"""Time from a bad canary's first error to its rollback, on one machine, for real.

`mlc serve --canary` (the challenger made bad with the test-only MLC_SERVE_FAULT hook: every canary request
answers 500), a real `prometheus` scraping it every 250 ms, steady traffic of about 40 requests/s, and
`mlc rollout start --env local` with the analysis interval scaled down to INTERVAL seconds and failure_limit 1.
Measured: from the first 500 the traffic sees to the moment the state file says rolled-back (the weight is 0
and the alias check is done). The analysis needs failure_limit + 1 failed measurements, each after a full
interval of traffic, counted from the weight change: (failure_limit + 1) x interval after the weight moves; the
first error comes a moment after that, so the time measured here is slightly below it.

    python benchmarks/rollout.py [--runs 3] [--interval 2] [--no-prometheus]

With Prometheus (scraping every 0.5 s), keep the interval at least 4 scrapes long, as on a cluster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "serve"), str(REPO / "tests" / "rollout")]

import serve_support as S  # noqa: E402
from test_local_loop import Prometheus, Traffic  # noqa: E402

from mlc.cli import main  # noqa: E402
from mlc.serve.canary import state_path  # noqa: E402

FAILURE_LIMIT = 1


def setup(root: Path, interval: float) -> Path:
    p = S.copy_project(root / "churn")
    spec = yaml.safe_load((p / "mlproject.yaml").read_text())
    spec["deployment"]["online"]["rollout"] = {
        "steps": [{"weight": 20}, {"weight": 100}],
        "analysis": {"interval": f"{int(interval * 1000)}ms", "count": 10, "failure_limit": FAILURE_LIMIT,
                     "metrics": [{"name": "error_ratio", "max": 0.01}]}}
    (p / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    S.register(p, S.train_pipeline(seed=7), alias="champion")
    S.register(p, S.train_pipeline(n=600, seed=8), alias="challenger")
    return p


def once(p: Path, root: Path, prometheus: bool) -> float:
    from mlflow import MlflowClient

    uri = f"sqlite:///{p / '.mlc' / 'mlflow.db'}"
    MlflowClient(uri, uri).set_registered_model_alias("churn-classifier", "champion", "1")
    state_path(p).unlink(missing_ok=True)
    srv = S.Server(p, "--canary", env={"MLC_SERVE_FAULT": "role=canary,error=1.0"}).wait_ready()
    prom = Prometheus(f"127.0.0.1:{srv.port}", root) if prometheus else None
    traffic = Traffic(srv.url)
    rolled_back: list[float] = []

    def watch() -> None:
        f = state_path(p)
        while not rolled_back:
            try:
                if json.loads(f.read_text()).get("phase") == "rolled-back":
                    rolled_back.append(time.monotonic())
            except (OSError, ValueError):
                pass
            time.sleep(0.01)

    w = threading.Thread(target=watch, daemon=True)
    try:
        traffic.start()
        w.start()
        args = ["rollout", "start", str(p), "--env", "local"]
        args += ["--prometheus", prom.url] if prom else ["--metrics-url", f"{srv.url}/metrics"]
        code = main(args)
        w.join(5)
    finally:
        traffic.stop()
        if prom:
            prom.stop()
        srv.stop()
    assert code == 1 and rolled_back and traffic.first_error is not None, "the bad canary was not rolled back"
    return rolled_back[0] - traffic.first_error


def run() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--no-prometheus", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p = setup(root, a.interval)
        times = [once(p, root, not a.no_prometheus) for _ in range(a.runs)]
    floor = (FAILURE_LIMIT + 1) * a.interval
    print(f"first error -> rolled back ({'direct /metrics' if a.no_prometheus else 'via Prometheus'}, interval "
          f"{a.interval:g} s, failure_limit {FAILURE_LIMIT}, floor {floor:g} s): median {statistics.median(times):.2f} s, "
          f"runs {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    run()
