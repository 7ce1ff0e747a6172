"""ingest and validate-data on small generated data: pins, fingerprints, casting, and check failures."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.steps import is_complete


def test_ingest_fingerprints_casts_and_records_schema(tmp_path: Path) -> None:
    import pandas as pd

    root = S.make_project(tmp_path / "p")
    ctx = S.context(root, "r1")
    res = S.run(ctx, only=("ingest",))["ingest"]
    raw = (root / "data" / "customers.csv").read_bytes()
    out = Path(ctx.step_dir("ingest"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 800 and res.metrics["rows"] == 800
    assert manifest["files"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    combined = hashlib.sha256(f"customers:{hashlib.sha256(raw).hexdigest()}\n".encode()).hexdigest()
    assert manifest["fingerprint"] == combined == res.outputs["fingerprint"]
    df = pd.read_parquet(out / "data.parquet")
    assert str(df["region"].dtype) == "str" and str(df["customer_id"].dtype) == "str"
    assert str(df["tenure_months"].dtype) == "int64"  # non-nullable integer
    assert str(df["last_contact_days"].dtype) == "float64"  # nullable integer: NaN needs a float
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])
    assert manifest["schema"]["plan"] == {"type": "category", "dtype": "str"}
    assert is_complete(ctx, "ingest") and (out / "result.json").exists()


def test_sha256_pin_mismatch_fails_with_both_digests(tmp_path: Path) -> None:
    def pin(spec: dict) -> None:
        spec["data"]["sources"][0]["pin"] = {"sha256": "0" * 64}

    root = S.make_project(tmp_path / "p", pin)
    ctx = S.context(root, "r1")
    with pytest.raises(RunError) as e:
        S.run(ctx, only=("ingest",))
    msg = str(e.value)
    actual = hashlib.sha256((root / "data" / "customers.csv").read_bytes()).hexdigest()
    assert "pin mismatch" in msg and "0" * 64 in msg and actual in msg
    assert not is_complete(ctx, "ingest")


def test_dvc_pin_checks_md5(tmp_path: Path) -> None:
    root = tmp_path / "eta"
    shutil.copytree(S.ETA, root, ignore=shutil.ignore_patterns(".mlc"))
    ctx = S.context(root, "r1")
    S.run(ctx, only=("ingest",))  # the committed pointer matches the committed data
    assert is_complete(ctx, "ingest")
    with (root / "data" / "orders.csv").open("a") as fh:
        fh.write("O9999999,2026-02-01T10:00,10,1.0,1,5.0,car,clear,center,20.0\n")
    with pytest.raises(RunError, match=r"(?s)expected md5 1bc5b8210651f3d96296af1a41398e19.*dvc pull"):
        S.run(S.context(root, "r2"), only=("ingest",))


def test_failing_checks_are_listed_and_nothing_is_published(tmp_path: Path) -> None:
    def strict(spec: dict) -> None:
        spec["data"]["checks"] += [
            {"check": "range", "column": "plan_price", "max": 20},
            {"check": "row_count", "min": 10_000},
            {"check": "not_null", "column": "last_contact_days", "min_rate": 1.0, "severity": "warn"},
        ]

    root = S.make_project(tmp_path / "p", strict)
    ctx = S.context(root, "r1")
    S.run(ctx, only=("ingest",))
    with pytest.raises(RunError) as e:
        S.run(ctx, only=("validate-data",))
    msg = str(e.value)
    assert "2 of" in msg
    assert "range plan_price: observed min" in msg and "expected <= 20" in msg
    assert "row_count: observed 800 rows, expected >= 10000 rows" in msg
    assert "last_contact_days" not in msg  # a warn check never fails the run
    out = Path(ctx.step_dir("validate-data"))
    assert not is_complete(ctx, "validate-data")
    report = json.loads((out / "report.json").read_text())  # published for the user, without _SUCCESS
    assert report["passed"] is False
    assert any(r["check"] == "not_null" and r["severity"] == "warn" and not r["passed"] for r in report["checks"])
    assert "| FAIL | error | row_count |" in (out / "report.md").read_text()
    assert f"report: {out}/report.md" in msg  # the published path, not the step's temporary directory
    assert f"report: {out}/report.md" in json.loads((out / "result.json").read_text())["error"]


def test_mlc_run_names_the_published_report_of_a_failed_check(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from mlc.local import run_command

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = S.make_project(tmp_path / "p", lambda spec: spec["data"]["checks"].append({"check": "row_count",
                                                                                      "min": 10_000}))
    assert run_command(str(root), "local") == 1
    err = capsys.readouterr().err
    printed = re.findall(r"report: (\S+)", err)
    assert printed, err
    assert ".tmp-" not in printed[0] and Path(printed[0]).is_file()
    assert "| FAIL | error | row_count |" in Path(printed[0]).read_text()


def test_schema_type_null_allowed_and_unique_violations(tmp_path: Path) -> None:
    root = S.make_project(tmp_path / "p")
    csv = root / "data" / "customers.csv"
    lines = csv.read_text().splitlines()
    head = lines[0].split(",")
    row = dict(zip(head, lines[1].split(",")))
    bad = [dict(row, tenure_months="lots"), dict(row, region="mars"), dict(row, plan="")]
    lines += [",".join(r[h] for h in head) for r in bad]  # also duplicates customer_id three times
    csv.write_text("\n".join(lines) + "\n")
    ctx = S.context(root, "r1")
    S.run(ctx, only=("ingest",))
    with pytest.raises(RunError) as e:
        S.run(ctx, only=("validate-data",))
    msg = str(e.value)
    assert "type tenure_months: observed 1 value(s) not integer" in msg
    assert "allowed region: observed unexpected ['mars']" in msg
    assert "nullable plan: observed 1 null(s)" in msg
    assert "unique customer_id: observed 3 duplicate value(s)" in msg


def test_valid_data_passes(tmp_path: Path) -> None:
    root = S.make_project(tmp_path / "p")
    ctx = S.context(root, "r1")
    res = S.run(ctx, only=("ingest", "validate-data"))["validate-data"]
    assert res.metrics["warnings"] == 0 and "checks passed" in res.message
    assert is_complete(ctx, "validate-data")
