"""`mlc init`: the scaffold validates as it is, lowers to a plan, and never overwrites a spec."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlc.cli import main
from mlc.spec.validate import load_spec


def test_init_validates_and_lowers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lead-scoring"
    assert main(["init", str(target)]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["validate", str(target)]) == 0
    sf = load_spec(target)
    assert sf.spec.metadata.name == "lead-scoring"
    text = sf.text
    assert text.startswith("# yaml-language-server: $schema=")
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith("#")) >= 20  # commented

    from mlc.plan import lower

    plan = lower(sf.spec, sf.text, "local")
    assert plan is not None


def test_sample_data_is_realistic(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "p")]) == 0
    with (tmp_path / "p" / "data" / "leads.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1000
    share = sum(r["converted"] == "yes" for r in rows) / len(rows)
    assert 0.2 < share < 0.8  # both classes, not a constant label
    assert any(r["pages_per_visit"] == "" for r in rows)  # some missing values
    assert len({r["lead_id"] for r in rows}) == 1000
    assert (tmp_path / "p" / "data" / "current.csv").exists()


def test_init_is_deterministic(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "a"), "--name", "same"]) == 0
    assert main(["init", str(tmp_path / "b"), "--name", "same"]) == 0
    for f in ("data/leads.csv", "data/current.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlproject.yaml").write_text("mine\n")
    assert main(["init", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "mlproject.yaml").read_text() == "mine\n"


def test_init_rejects_a_bad_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "x"), "--name", "Bad_Name"]) == 2
    assert "not valid" in capsys.readouterr().err
    assert not (tmp_path / "x" / "mlproject.yaml").exists()


def test_init_derives_a_valid_name_from_the_directory(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "My Project_2")]) == 0
    assert load_spec(tmp_path / "My Project_2").spec.metadata.name == "my-project-2"
