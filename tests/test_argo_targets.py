"""What needs Argo says so when an environment's `targets` leave it out, before anything connects anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlc.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _copy(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(ROOT / "specs" / name, dest, ignore=shutil.ignore_patterns(".mlc"))
    return dest


def _edit(project: Path, old: str, new: str) -> None:
    f = project / "mlproject.yaml"
    text = f.read_text()
    assert old in text, old
    f.write_text(text.replace(old, new, 1))


def test_a_rollout_in_an_environment_without_argo_is_a_positioned_error(tmp_path: Path, capsys) -> None:
    p = _copy("churn", tmp_path)
    _edit(p, "  staging:\n    targets: [argo, kfp, airflow]", "  staging:\n    targets: [kfp, airflow]")
    code = main(["validate", str(p)])
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate((p / "mlproject.yaml").read_text().splitlines(), 1) if "[kfp, airflow]" in t)
    assert code == 1
    assert f"mlproject.yaml:{line}:14: error[E230] environments.staging.targets:" in err
    assert "the canary would never move past its first step" in err
    assert "targets: [kfp, airflow, argo]" in err and "Traceback" not in err


def test_submit_to_an_environment_without_argo_names_its_targets_before_connecting(tmp_path: Path,
                                                                                    capsys) -> None:
    p = _copy("delivery-eta", tmp_path)  # no rollout: the spec is valid with any targets
    _edit(p, "  prod:\n    targets: [argo, kfp, airflow]", "  prod:\n    targets: [kfp]")
    # a kubeconfig that does not exist: reading it would be the first error, so none means nothing connected
    code = main(["submit", str(p), "--env", "prod", "--kubeconfig", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "`mlc submit` starts an Argo Workflow, but environment prod compiles none (targets: kfp)" in err
    assert "add argo to environments.prod.targets" in err
    assert "missing" not in err and "Traceback" not in err


@pytest.mark.parametrize("targets", ["[argo]", "[argo, kfp, airflow]"])
def test_environments_that_target_argo_pass_the_check(tmp_path: Path, capsys, targets: str) -> None:
    p = _copy("churn", tmp_path)
    _edit(p, "  staging:\n    targets: [argo, kfp, airflow]", f"  staging:\n    targets: {targets}")
    assert main(["validate", str(p)]) == 0, capsys.readouterr().err
