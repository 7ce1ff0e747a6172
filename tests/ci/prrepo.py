"""A real temporary git repository holding a copy of an example project and its committed generated/: the
ground the pull-request tests stand on (what a user's repository looks like after `mlc compile`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def mlc(cwd: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real command line, as CI and pre-commit run it (a child process, this checkout's mlc)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "compiler"), "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    r = subprocess.run([sys.executable, "-m", "mlc", *args], cwd=cwd, capture_output=True, text=True, env=env,
                       check=False)
    if check and r.returncode:
        raise AssertionError(f"mlc {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def git(cwd: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV},
                       check=False)
    if r.returncode:
        raise AssertionError(f"git {' '.join(args)}: {r.stderr}")
    return r.stdout


def make_repo(tmp: Path, name: str) -> Path:
    """tmp/repo with specs/<name>/ (spec and data), generated/ compiled from it, one commit on main."""
    root = tmp / "repo"
    shutil.copytree(REPO / "specs" / name, root / "specs" / name, ignore=shutil.ignore_patterns(".mlc"))
    mlc(root, "compile", "specs/", check=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    spec = root / "specs" / name / "mlproject.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    spec.write_text(text.replace(old, new), encoding="utf-8")
