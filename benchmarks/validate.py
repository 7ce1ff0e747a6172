"""Cold-process time of `mlc validate specs/churn`, next to `python -c pass` (goal: under 0.3 s).

    python benchmarks/validate.py [--runs 15]

Each run is a fresh interpreter, as a user or CI would start it; the table shows the median and the spread.
The first, unmeasured run of each command writes mlc's bytecode (an installed package has it; an editable one
writes it on first use), even when PYTHONDONTWRITEBYTECODE is set here: without it every run would compile
mlc's sources again, about a sixth of the time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.3


def _mlc() -> list[str]:
    script = Path(sys.executable).with_name("mlc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlc"]


def _env(write_bytecode: bool) -> dict[str, str]:
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + sys) seconds per run; CPU time is what a busy machine cannot inflate."""
    wall, cpu = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=_env(False))
        wall.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("mlc --help", [*_mlc(), "--help"]),
        ("mlc validate specs/churn", [*_mlc(), "validate", "specs/churn"]),
        ("mlc validate specs/ (2 specs)", [*_mlc(), "validate", "specs/"]),
    ]
    for _, cmd in cases:  # warm the OS file cache and write .pyc files once; every measured run is a new process
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(True))
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} before, {args.runs} runs each\n"
    )
    print(f"| {'command':<32} | wall median s | wall min s | CPU median s |")
    print(f"|{'-' * 34}|---------------|------------|--------------|")
    medians = {}
    for name, cmd in cases:
        wall, cpu = measure(cmd, args.runs)
        medians[name] = statistics.median(wall)
        print(f"| {name:<32} | {medians[name]:13.3f} | {min(wall):10.3f} | {statistics.median(cpu):12.3f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} after; CPU time (user + sys) is the number a busy machine"
          " inflates least")
    ok = medians["mlc validate specs/churn"] < GOAL_S
    print(f"\ngoal: mlc validate specs/churn under {GOAL_S} s -> {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
