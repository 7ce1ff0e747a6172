"""`mlc ci init`: what the workflow holds (pinned actions, least privilege, the environments in order) for both
examples, checked by the real actionlint and the GitHub workflow schema; and what it refuses."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml
from prrepo import make_repo, mlc
from test_pr_loop import lint_workflow

from mlc.ci.workflow import ACTIONS
from mlc.diff.render import MARKER

pytestmark = pytest.mark.xdist_group("pr-loop")


def workflow(root: Path) -> tuple[str, dict]:
    text = (root / ".github" / "workflows" / "mlc.yaml").read_text()
    return text, yaml.safe_load(text)


@pytest.mark.parametrize("name,envs", [("churn", ["staging", "prod"]), ("delivery-eta", ["prod"])])
def test_workflow_of_each_example(name: str, envs: list[str], tmp_path: Path) -> None:
    root = make_repo(tmp_path, name)
    mlc(root, "ci", "init", f"specs/{name}", check=True)
    text, wf = workflow(root)
    lint_workflow(root / ".github" / "workflows" / "mlc.yaml")
    assert wf["permissions"] == {}
    for name_, job in wf["jobs"].items():
        writes = {k for k, v in job["permissions"].items() if v != "read"}
        assert writes == ({"pull-requests"} if name_ == "check" else set()), name_
    uses = re.findall(r"uses: (\S+)", text)
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses)
    assert {u.split("@")[1] for u in uses} == {v.split()[0] for v in ACTIONS.values()}
    assert wf["jobs"]["check"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    steps = "\n".join(s.get("run", "") for s in wf["jobs"]["check"]["steps"])
    assert f"mlc validate specs/{name} --format github" in steps and "--check" in steps
    assert '--base "origin/${BASE_REF}" --format markdown' in steps
    assert MARKER in text
    assert f"plan-{envs[0]}" in wf["jobs"]
    applies = [j for j in wf["jobs"] if j.startswith("apply-")]
    assert applies == [f"apply-{e}" for e in envs]
    for prev, e in itertools.pairwise(envs):
        assert wf["jobs"][f"apply-{e}"]["needs"] == f"apply-{prev}"
    for e in envs:
        job = wf["jobs"][f"apply-{e}"]
        assert job["environment"] == e and job["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
        assert f"mlc apply specs/{name} --env {e}" in job["steps"][-1]["run"]


def test_refuses_to_overwrite_and_unknown_envs(tmp_path: Path) -> None:
    root = make_repo(tmp_path, "churn")
    mlc(root, "ci", "init", "specs/churn", "--env", "prod", check=True)
    _, wf = workflow(root)
    assert [j for j in wf["jobs"] if j.startswith(("apply-", "plan-"))] == ["plan-prod", "apply-prod"]
    r = mlc(root, "ci", "init", "specs/churn")
    assert r.returncode == 2 and "exists; pass --force" in r.stderr
    assert mlc(root, "ci", "init", "specs/churn", "--force", "--branch", "trunk").returncode == 0
    assert workflow(root)[1][True]["push"]["branches"] == ["trunk"]  # YAML 1.1 reads the key `on` as true
    r = mlc(root, "ci", "init", "specs/churn", "--env", "qa", "--force")
    assert r.returncode == 2 and "--env qa: no spec given defines it" in r.stderr
