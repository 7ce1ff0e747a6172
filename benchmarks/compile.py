"""Cold-process timings of `mlc compile` (median of N runs, each a fresh interpreter).

    .venv/bin/python benchmarks/compile.py [--runs 5]

Measures, interleaving the commands so that load on a shared machine hits all of them alike:
  baseline     benchmarks/baseline_hera_kfp.py: the churn train pipeline, hand-written in hera + kfp
  compile      mlc compile specs/churn (3 environments: Argo, KFP, KServe, Prometheus, kustomize)
  check        mlc compile specs/ --check, nothing changed (the lock file path: no hera, no kfp)
  compile-100  mlc compile on 100 variants of churn in one call
Goals (issue 3): compile <= 1.1x baseline; check < 0.3 s; compile-100 < 10 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MLC = [PY, "-m", "mlc"]


CPU: dict[str, list[float]] = {}
# mlc's bytecode is written on the first run and read afterwards, as an installed package has it
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], cwd: Path, key: str = "") -> float:
    """Wall seconds; the child's CPU seconds (user + sys, all its processes) go to CPU[key], the fairer
    number on a machine shared with other work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(key, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def variants(src: Path, dest: Path, n: int) -> None:
    text = (src / "mlproject.yaml").read_text()
    for i in range(n):
        d = dest / f"churn-{i:03d}"
        shutil.copytree(src, d, ignore=shutil.ignore_patterns(".mlc"))
        (d / "mlproject.yaml").write_text(re.sub(r"(?m)^  name: churn$", f"  name: churn-{i:03d}", text, count=1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlc-bench-") as tmp:
        work = Path(tmp)
        many = work / "many"
        variants(ROOT / "specs" / "churn", many, 100)
        checked = work / "checked"
        subprocess.run([*MLC, "compile", "specs/", "-o", str(checked)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        cmds = {
            "baseline": [PY, str(ROOT / "benchmarks" / "baseline_hera_kfp.py")],
            "compile": [*MLC, "compile", "specs/churn", "-o", str(work / "one")],
            "check": [*MLC, "compile", "specs/", "--check", "-o", str(checked)],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for k, cmd in cmds.items():
                times[k].append(run(cmd, ROOT, k))
        hundred = [run([*MLC, "compile", str(many), "-o", str(work / "out100")], ROOT, "compile-100")
                   for _ in range(max(3, args.runs // 2))]  # the first writes into an empty directory
    print(f"load average {os.getloadavg()[0]:.1f} at the end (1 min); {os.cpu_count()} CPUs")
    med = {k: statistics.median(v) for k, v in times.items()}
    med["compile-100"] = statistics.median(hundred)
    cpu = {k: statistics.median(v) for k, v in CPU.items()}
    print(f"{'what':<13} {'wall s':>8} {'cpu s':>8}   wall runs")
    for k, v in med.items():
        runs = times.get(k, hundred)
        print(f"{k:<13} {v:8.3f} {cpu[k]:8.3f}   {', '.join(f'{x:.2f}' for x in runs)}")
    print(f"compile / baseline: wall {med['compile'] / med['baseline']:.2f}, cpu {cpu['compile'] / cpu['baseline']:.2f}"
          f" (goal <= 1.10); check < 0.3 s: {med['check'] < 0.3}; 100 specs < 10 s: {med['compile-100'] < 10};"
          f" 100 baseline scripts ~ {100 * med['baseline']:.0f} s"
          f" ({100 * med['baseline'] / med['compile-100']:.0f}x the 100-spec compile; goal >= 25x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
