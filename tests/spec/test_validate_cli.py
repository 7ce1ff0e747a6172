"""`mlc validate` as a user and a machine see it: exit codes, text and JSON output, and import hygiene."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlc.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "errors"
HEAVY = (
    "mlflow",
    "sklearn",
    "torch",
    "kfp",
    "hera",
    "pandas",
    "kubernetes",
    "lightning",
    "pytorch_lightning",
    "fastapi",
    "croniter",
    "jinja2",
    "pyarrow",  # only for a local Parquet source (tests/spec/test_datafiles.py)
)


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "specs")]) == 0
    out = capsys.readouterr().out
    assert "churn/mlproject.yaml: ok (churn," in out and "delivery-eta/mlproject.yaml: ok" in out


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    bad = GOLDEN / "e218-misspelt-estimator" / "mlproject.yaml"
    good = ROOT / "specs" / "churn"
    assert main(["validate", str(good), str(bad), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    doc = json.loads(captured.out)
    assert doc["valid"] is False
    assert [f["valid"] for f in doc["files"]] == [True, False]
    (d,) = doc["files"][1]["diagnostics"]
    assert d == {
        "severity": "error",
        "code": "E218",
        "path": "training.candidates[1].estimator",
        "message": "unknown sklearn estimator 'random_forrest'",
        "file": str(bad),
        "line": 55,
        "column": 18,
        "end_column": 32,
        "hint": "did you mean 'random_forest'?",
    }


def test_json_format_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "specs" / "churn"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_every_file_is_reported_in_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = GOLDEN / "e209-replicas", GOLDEN / "e217-prometheus-duration"
    assert main(["validate", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert "error[E209]" in err and "error[E217]" in err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["validate"], 2),  # missing argument
        (["validate", "--format", "xml", "specs/churn"], 2),
        (["validate", "does/not/exist.yaml"], 1),  # unreadable input is the user's input being wrong: E003
        (["--version"], 0),
        (["validate", "--help"], 0),
    ],
)
def test_exit_codes(args: list[str], code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(args) == code


def test_a_spec_file_given_by_directory(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs" / "churn", tmp_path / "churn")
    assert main(["validate", str(tmp_path / "churn")]) == 0


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["validate", "specs/churn"],
        ["validate", "specs/"],
        ["validate", "tests/golden/errors/many-errors-in-one-run"],
    ],
)
def test_no_heavy_imports(argv: list[str]) -> None:
    mods = _modules_after(f"from mlc.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass")
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY)
    assert not heavy, f"`mlc {' '.join(argv)}` imported {heavy}"


@pytest.mark.parametrize("cmd", ["validate", "schema", "init"])
def test_help_has_examples(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([cmd, "--help"]) == 0
    assert "Example" in capsys.readouterr().out
