"""`mlc validate` against the data files a spec names: existence, header columns, warnings, bounded reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlc.cli import main
from mlc.errors import SpecError
from mlc.spec.validate import load_spec

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "specs" / "churn"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(CHURN, tmp_path / "churn")
    return tmp_path / "churn"


def _edit(project: Path, old: str, new: str) -> None:
    spec = project / "mlproject.yaml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))


def _header(file: Path, old: str, new: str) -> None:
    lines = file.read_text().split("\n", 1)
    assert old in lines[0]
    file.write_text(lines[0].replace(old, new) + "\n" + lines[1])


def _errors(project: Path) -> list[dict]:
    with pytest.raises(SpecError) as e:
        load_spec(project, data=True)
    return [d.to_json() for d in e.value.diagnostics]


def _line_of(project: Path, needle: str) -> tuple[int, int]:
    for i, line in enumerate((project / "mlproject.yaml").read_text().splitlines(), 1):
        if needle in line:
            return i, line.index(needle.split(": ", 1)[-1]) + 1
    raise AssertionError(needle)


def test_the_examples_pass_with_no_warnings() -> None:
    for name in ("churn", "delivery-eta"):
        assert load_spec(ROOT / "specs" / name, data=True).warnings == ()


def test_missing_file_suggests_the_file_beside_it(project: Path) -> None:
    (project / "data" / "customers.csv").rename(project / "data" / "wa_churn.csv")
    _edit(project, "uri: data/customers.csv", "uri: data/wa-churn.csv")
    (d,) = _errors(project)
    line, col = _line_of(project, "uri: data/wa-churn.csv")
    assert (d["code"], d["path"], d["line"], d["column"]) == ("E300", "data.sources[0].uri", line, col)
    assert d["message"] == "data file 'data/wa-churn.csv' does not exist"
    assert d["hint"] == "did you mean 'data/wa_churn.csv'?"


def test_missing_directory(project: Path) -> None:
    _edit(project, "uri: data/customers.csv", "uri: dataset/customers.csv")
    (d,) = _errors(project)
    assert d["code"] == "E300" and "'dataset' does not exist" in d["hint"]


def test_only_validate_reads_data(project: Path) -> None:
    """compile, run and the steps on a cluster load the spec without looking for files beside it."""
    (project / "data" / "customers.csv").unlink()
    assert load_spec(project).spec.metadata.name == "churn"
    _errors(project)


def test_schema_column_missing_from_the_header(project: Path) -> None:
    _header(project / "data" / "customers.csv", "tenure_months", "Tenure_months")
    (d,) = _errors(project)
    assert (d["code"], d["path"]) == ("E301", "data.sources[0].uri")
    assert d["message"] == "column 'tenure_months' of data.schema is not in data/customers.csv"
    assert d["hint"] == "did you mean 'Tenure_months'? (the file's header has it)"


def test_several_unmatched_columns_are_one_error_listing_the_header(project: Path) -> None:
    (project / "data" / "customers.csv").write_text("a,b\n1,2\n")
    diags = _errors(project)
    assert [d["code"] for d in diags] == ["E301", "W300"]
    assert diags[0]["message"].startswith("columns 'customer_id', 'signup_date', ")
    assert diags[0]["hint"] == "the file's columns: a, b"
    assert diags[1]["severity"] == "warning" and "'a', 'b'" in diags[1]["message"]


def test_a_semicolon_file_is_named_as_such(project: Path) -> None:
    src = project / "data" / "customers.csv"
    src.write_text(src.read_text().replace(",", ";"))
    d = _errors(project)[0]
    assert "one column" in d["hint"] and "not ';'" in d["hint"]


def test_extra_columns_are_a_warning_not_a_failure(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _header(project / "data" / "customers.csv", "churned", "churned,notes,score_v2")
    assert main(["validate", str(project)]) == 0
    out = capsys.readouterr()
    assert out.out.endswith(": ok (churn, 3 environments, 1 warning)\n")
    assert "warning[W300] data.sources[0].uri: data/customers.csv has columns 'notes', 'score_v2'" in out.err
    assert "error" not in out.err
    assert main(["validate", str(project), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert [(d["severity"], d["code"]) for d in doc["files"][0]["diagnostics"]] == [("warning", "W300")]


def test_warnings_ride_along_with_errors(project: Path) -> None:
    _header(project / "data" / "customers.csv", "churned", "churned,notes")
    _header(project / "data" / "current.csv", "plan_price", "price")
    with pytest.raises(SpecError) as e:
        load_spec(project, data=True)
    assert e.value.summary().endswith(": 1 error, 1 warning")
    assert [d.severity for d in e.value.diagnostics] == ["warning", "error"]  # by position in the spec


def test_each_source_needs_what_its_step_reads(project: Path) -> None:
    """Batch input needs the model's inputs (no label); drift, its features; none warns on extra columns."""
    _header(project / "data" / "to_score.csv", "plan_price", "plan_prize")
    _header(project / "data" / "current.csv", "support_tickets", "tickets")
    _header(project / "data" / "current.csv", "churned", "churned,extra")
    diags = _errors(project)
    assert [(d["code"], d["path"]) for d in diags] == [
        ("E301", "deployment.batch.input.uri"),
        ("E301", "monitoring.drift.current.uri"),
    ]
    assert "of the model's inputs" in diags[0]["message"] and "'plan_prize'" in diags[0]["hint"]
    assert "of monitoring.drift.features" in diags[1]["message"] and "'tickets'" in diags[1]["hint"]


def test_remote_uris_are_not_touched(project: Path) -> None:
    _edit(project, "uri: data/customers.csv", "uri: s3://bucket/churn/customers.csv")
    _edit(project, "pin: {sha256: 50b73759d55cf00064534ef134608e502e6cb1746768d7649c7492c4a9554bb1}", "")
    _edit(project, "current: {uri: data/current.csv}", "current: {uri: https://example.com/current.csv}")
    assert load_spec(project, data=True).warnings == ()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"caf\xe9,x\n", "not UTF-8 text (byte 3)"),
        (b"x" * (1 << 21), "no header line ends within the first 1 MiB"),
    ],
)
def test_unreadable_csv(project: Path, content: bytes, why: str) -> None:
    (project / "data" / "customers.csv").write_bytes(content)
    (d,) = _errors(project)
    assert d["code"] == "E302" and d["message"] == f"cannot read data/customers.csv as csv: {why}"


def test_header_like_pandas_reads_it(project: Path) -> None:
    """BOM dropped, quoted names with commas and newlines, a leading blank line, no trailing newline."""
    src = project / "data" / "customers.csv"
    header = src.read_text().split("\n", 1)[0].replace("plan_price", '"plan_price"')
    src.write_bytes(b"\xef\xbb\xbf\n" + header.encode() + b',"a, b","c\nd",')
    (d,) = [d for d in load_spec(project, data=True).warnings]
    assert d.code == "W300" and "'a, b', 'c\nd', 'Unnamed: 13'" in d.message


def test_pointers_are_warnings(project: Path) -> None:
    (project / "data" / "current.csv").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n"
    )
    (project / "data" / "to_score.csv").rename(project / "data" / "to_score.csv.bak")
    (project / "data" / "to_score.csv.dvc").write_text("outs:\n- md5: 0\n  path: to_score.csv\n")
    w = load_spec(project, data=True).warnings
    assert [(d.code, d.path) for d in w] == [
        ("W301", "deployment.batch.input.uri"),
        ("W301", "monitoring.drift.current.uri"),
    ]
    assert "dvc pull" in (w[0].hint or "") and "git lfs pull" in (w[1].hint or "")


def test_parquet_footer(project: Path) -> None:
    import pandas as pd

    df = pd.read_csv(project / "data" / "customers.csv", dtype=str).rename(columns={"region": "Region"})
    df.index = df.index + 10  # a non-default index is stored as a column; read_parquet makes it the index
    df.to_parquet(project / "data" / "customers.parquet")
    _edit(
        project,
        "uri: data/customers.csv\n      format: csv",
        "uri: data/customers.parquet\n      format: parquet",
    )
    _edit(project, "pin: {sha256: 50b73759d55cf00064534ef134608e502e6cb1746768d7649c7492c4a9554bb1}", "")
    (d,) = _errors(project)
    assert (
        d["code"] == "E301"
        and d["message"] == "column 'region' of data.schema is not in data/customers.parquet"
    )
    assert d["hint"] == "did you mean 'Region'? (the file's header has it)"
    (project / "data" / "customers.parquet").write_text("customer_id,x\n")
    (d,) = _errors(project)
    assert d["code"] == "E302" and "is it a Parquet file?" in d["hint"]


def test_csv_sources_do_not_import_pyarrow() -> None:
    code = (
        "import sys; from mlc.spec.validate import load_spec; "
        f"load_spec({str(CHURN)!r}, data=True); print('pyarrow' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_quality_feedback_needs_the_label(project: Path) -> None:
    _edit(project, "    min_ratio: 0.95\n", "    min_ratio: 0.95\n    feedback: {uri: data/to_score.csv}\n")
    (d,) = _errors(project)
    assert (d["code"], d["path"]) == ("E301", "monitoring.quality.feedback.uri")
    assert d["message"] == "column 'churned' of the model's inputs and the label is not in data/to_score.csv"
    _edit(project, "feedback: {uri: data/to_score.csv}", "feedback: {uri: data/current.csv}")
    assert load_spec(project, data=True).warnings == ()
