"""`mlc validate --format github|sarif`: workflow commands GitHub turns into annotations on the PR's lines, and a
SARIF 2.1.0 log valid against the OASIS schema (vendored in schemas/upstream/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from crdschema import upstream

from mlc.cli import main

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "errors"
BAD = GOLDEN / "e218-misspelt-estimator"
COMMAND = re.compile(r"^::(error|warning) ((?:[a-zA-Z]+=[^,:]*)(?:,[a-zA-Z]+=[^,:]*)*)::(.*)$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_github_error_is_one_workflow_command_with_position_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(BAD), "--format", "github")
    assert code == 1 and err == ""
    cmd = out.splitlines()[0]
    m = COMMAND.match(cmd)
    assert m, cmd
    props = dict(p.split("=", 1) for p in m.group(2).split(","))
    assert props == {"file": f"{BAD}/mlproject.yaml", "line": "55", "col": "18", "endColumn": "32",
                     "title": "E218"}
    assert m.group(3) == ("training.candidates[1].estimator: unknown sklearn estimator 'random_forrest'"
                          "%0Ahint: did you mean 'random_forest'?")
    assert out.splitlines()[-1] == f"{BAD}/mlproject.yaml: 1 error"


def test_github_relative_paths_stay_relative(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    code, out, _ = run(capsys, "specs/", "tests/golden/errors/e218-misspelt-estimator", "--format", "github")
    assert code == 1
    assert out.startswith("::error file=tests/golden/errors/e218-misspelt-estimator/mlproject.yaml,line=55,")
    assert "specs/churn/mlproject.yaml: ok" in out.splitlines()


def test_github_escapes_what_would_end_a_property_or_the_message() -> None:
    from mlc.ci.annotations import github_command
    from mlc.errors import Diagnostic, Span

    d = Diagnostic("E102", "50% of a:b,c\nnext", "a.b", Span("x,y:z.yaml", 3, 4))
    assert github_command(d, "x") == "::error file=x%2Cy%3Az.yaml,line=3,col=4,title=E102::a.b: 50%25 of a:b,c%0Anext"


def test_every_error_golden_is_a_github_annotation_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    cases = sorted(p for p in GOLDEN.iterdir() if (p / "mlproject.yaml").is_file())
    assert len(cases) > 20
    code, out, _ = run(capsys, *map(str, cases), "--format", "github")
    assert code == 1
    commands = [line for line in out.splitlines() if line.startswith("::")]
    assert all(COMMAND.match(c) for c in commands)
    titles = {re.search(r"title=([A-Z]\d+)", c).group(1) for c in commands}
    assert {p.name.split("-")[0].upper() for p in cases if re.match(r"[ew]\d+-", p.name)} <= titles


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(upstream("sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema)


def test_sarif_is_valid_sarif_2_1_0(capsys: pytest.CaptureFixture[str], sarif_validator) -> None:
    cases = sorted(str(p) for p in GOLDEN.iterdir() if (p / "mlproject.yaml").is_file())
    code, out, err = run(capsys, str(REPO / "specs"), *cases, "--format", "sarif")
    assert code == 1 and err == ""
    log = json.loads(out)
    errors = sorted(e.message for e in sarif_validator.iter_errors(log))
    assert errors == []
    (r,) = log["runs"]
    assert r["tool"]["driver"]["name"] == "mlc"
    e218 = next(x for x in r["results"] if x["ruleId"] == "E218")
    region = e218["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 55, "startColumn": 18, "endColumn": 32}
    assert e218["level"] == "error"
    ids = [rule["id"] for rule in r["tool"]["driver"]["rules"]]
    assert all(ids[x["ruleIndex"]] == x["ruleId"] for x in r["results"])
    assert {a["location"]["uri"] for a in r["artifacts"]} >= {str(REPO / "specs/churn/mlproject.yaml")}


def test_sarif_of_valid_specs_has_no_results(capsys: pytest.CaptureFixture[str], sarif_validator) -> None:
    code, out, _ = run(capsys, str(REPO / "specs"), "--format", "sarif")
    assert code == 0
    log = json.loads(out)
    assert list(sarif_validator.iter_errors(log)) == []
    assert log["runs"][0]["results"] == [] and len(log["runs"][0]["artifacts"]) == 2


def test_the_sarif_schema_rejects_a_broken_log(sarif_validator) -> None:
    from mlc.ci.annotations import sarif
    from mlc.errors import Diagnostic, Span

    log = sarif([("a.yaml", [Diagnostic("E1", "m", "p", Span("a.yaml", 1, 1))])])
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert any("fatal" in e.message for e in sarif_validator.iter_errors(log))
