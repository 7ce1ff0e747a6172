"""Benchmark `mlc diff --base HEAD~1` on the churn example next to one `mlc compile` of the same spec.

    python benchmarks/diff.py             # 5 rounds
    python benchmarks/diff.py --rounds 9

Builds a real git repository in a temporary directory: specs/churn and its compiled generated/ in one commit,
then a raised gate, recompiled, in a second commit (what a merged pull request looks like). Each round, in a
fresh process each:
- `mlc diff specs/churn --base HEAD~1 --format markdown` (both sides' generated files come from the committed
  output, which the locks vouch for: the CI case, where `mlc compile --check` has passed just before);
- the same with the working tree's lock emptied, so the head side is compiled;
- the same with `--against` an empty directory outside the repository, so both sides are compiled;
- `mlc compile specs/churn -o <empty dir>`: one full compile, every environment.
Wall time from spawn to exit; prints a Markdown table with the median and the load average.
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
GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@example.com", "GIT_CONFIG_GLOBAL": os.devnull}


def sh(argv: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    env = {**os.environ, **GIT, "PYTHONPATH": str(REPO / "compiler")}
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    mlc = [sys.executable, "-m", "mlc"]
    with tempfile.TemporaryDirectory() as t:
        root = Path(t) / "repo"
        shutil.copytree(REPO / "specs" / "churn", root / "specs" / "churn", ignore=shutil.ignore_patterns(".mlc"))
        sh([*mlc, "compile", "specs/"], root)
        sh(["git", "init", "-q", "-b", "main"], root)
        sh(["git", "add", "-A"], root)
        sh(["git", "commit", "-qm", "base"], root)
        spec = root / "specs" / "churn" / "mlproject.yaml"
        spec.write_text(spec.read_text().replace("{metric: roc_auc, min: 0.80}", "{metric: roc_auc, min: 0.82}"))
        sh([*mlc, "compile", "specs/"], root)
        sh(["git", "commit", "-qam", "stricter gate"], root)
        lock = root / "generated" / "mlc.lock.json"
        rows: dict[str, list[float]] = {"diff": [], "diff, head compiled": [], "diff, both compiled": [],
                                        "compile": []}  # keys in the order of the table
        empty = Path(t) / "empty"
        for _ in range(args.rounds):
            rows["diff"].append(sh([*mlc, "diff", "specs/churn", "--base", "HEAD~1", "--format", "markdown"], root,
                                   (1,)))
            shutil.rmtree(empty, ignore_errors=True)
            empty.mkdir()
            rows["diff, both compiled"].append(sh([*mlc, "diff", "specs/churn", "--base", "HEAD~1", "--against",
                                                   str(empty), "--format", "markdown"], root, (1,)))
            saved = lock.read_bytes()
            lock.write_text("{}")
            rows["diff, head compiled"].append(sh([*mlc, "diff", "specs/churn", "--base", "HEAD~1",
                                                   "--format", "markdown"], root, (1,)))
            lock.write_bytes(saved)
            shutil.rmtree(empty, ignore_errors=True)
            rows["compile"].append(sh([*mlc, "compile", "specs/churn", "-o", str(empty)], root))
    load = os.getloadavg()
    print(f"churn, {args.rounds} rounds, median wall time; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"{os.cpu_count()} CPUs\n")
    print("| command | median s | min s |\n|---|---|---|")
    labels = {"diff": "`mlc diff specs/churn --base HEAD~1 --format markdown`",
              "diff, head compiled": "the same, the working tree's lock stale (head compiled)",
              "diff, both compiled": "the same, no committed output to reuse (both sides compiled)",
              "compile": "`mlc compile specs/churn` (3 environments)"}
    for k, v in rows.items():
        print(f"| {labels[k]} | {statistics.median(v):.2f} | {min(v):.2f} |")


if __name__ == "__main__":
    main()
