"""Error goldens: each tests/golden/errors/<case>/mlproject.yaml is a bad spec and expected.txt its full
rendered diagnostics, exactly as `mlc validate mlproject.yaml` prints them from inside the case directory.
A case may hold the data files its spec names (data/...), for the checks that read them.

Cases named ``w<code>-...`` (warnings only) and ``ok-...`` (accepted input) are valid specs: they exit 0, and
expected.txt is what stderr (the warnings) and then stdout (the `ok` line) print.

Regenerate (after reviewing the change!) with:  MLC_REGENERATE=1 pytest tests/spec/test_error_goldens.py
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from mlc.cli import main

CASES = Path(__file__).resolve().parents[1] / "golden" / "errors"
REGENERATE = os.environ.get("MLC_REGENERATE") == "1"


def _cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "mlproject.yaml").exists())


def test_there_are_enough_distinct_cases() -> None:
    codes = set()
    for case in _cases():
        expected = CASES / case / "expected.txt"
        if expected.exists():
            codes |= set(re.findall(r"(?:error|warning)\[([EW]\d+)\]", expected.read_text()))
    assert len(_cases()) >= 35
    assert len(codes) >= 30, sorted(codes)


@pytest.mark.parametrize("case", _cases())
def test_error_golden(case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(CASES / case)
    code = main(["validate", "mlproject.yaml"])
    out = capsys.readouterr()
    valid = case.startswith(("ok-", "w"))
    assert code == (0 if valid else 1), f"expected exit {0 if valid else 1}, got {code}\n{out.out}{out.err}"
    if valid:
        assert out.out.startswith("mlproject.yaml: ok (")
        assert "error[" not in out.err
    else:
        assert out.out == ""
    actual = out.err + out.out
    assert "Traceback" not in actual
    expected_file = CASES / case / "expected.txt"
    if REGENERATE:
        expected_file.write_text(actual)
    expected = expected_file.read_text() if expected_file.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), f"{case}/expected.txt", "actual"
            )
        )
        pytest.fail(f"rendered errors differ from the golden (MLC_REGENERATE=1 to accept):\n{diff}")
