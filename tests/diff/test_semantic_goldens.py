"""The semantic diff on a table of real edits to both example specs (tests/golden/diff/edits.yaml): every edit
gives exactly the expected changes, each with its impact class and sentence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mlc.diff.semantic import CLASSES, RULES, rule_for, spec_changes
from mlc.spec.validate import load_spec

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "tests" / "golden" / "diff" / "edits.yaml"
CASES = yaml.safe_load(TABLE.read_text(encoding="utf-8"))


def edited(case: dict, tmp: Path) -> tuple[object, object]:
    base = load_spec(REPO / "specs" / case["spec"])
    text = base.text
    for old, new in case["edit"]:
        assert text.count(old) == 1, f"{case['name']}: {old!r} must occur once in specs/{case['spec']}"
        text = text.replace(old, new)
    d = tmp / case["spec"]
    d.mkdir()
    (d / "mlproject.yaml").write_text(text, encoding="utf-8")
    return base.spec, load_spec(d).spec


def found(case: dict, tmp: Path) -> list[dict]:
    old, new = edited(case, tmp)
    return [{"impact": c.impact, "path": c.path, "sentence": c.sentence} for c in spec_changes(old, new)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_edit(case: dict, tmp_path: Path) -> None:
    got = found(case, tmp_path)
    assert "expect" in case, f"{case['name']}: no expectation yet (MLC_REGENERATE=1 writes one)"
    assert got == case["expect"]


def test_every_class_occurs_in_the_table() -> None:
    seen = {e["impact"] for c in CASES for e in c.get("expect", [])}
    assert seen == set(CLASSES), f"no golden edit shows {sorted(set(CLASSES) - seen)}"


def test_rollout_paths_are_traffic_before_they_exist() -> None:
    """Issue 13 adds deployment.online.rollout; its paths are classified by the table's prefix row."""
    for path in ("deployment.online.rollout", "deployment.online.rollout.steps[0].weight",
                 "deployment.online.rollout.analysis.metrics[error-rate].threshold", "deployment.online.canary"):
        assert rule_for(path).impact == "traffic", path
    assert any(r.pattern == "deployment.online.rollout" for r in RULES)


def test_unknown_paths_fall_back_to_their_nearest_ancestor() -> None:
    assert rule_for("monitoring.slo.some_new_field").impact == "alerting"
    assert rule_for("training.candidates[x].some_new_field").impact == "retrain"
    assert rule_for("environments.qa.some_new_field").impact == "redeploy"


def regenerate(tmp: Path) -> None:  # MLC_REGENERATE=1 python -m pytest tests/diff/test_semantic_goldens.py
    lines = TABLE.read_text(encoding="utf-8").split("\n- name: ")[0]
    out = [lines.rstrip("\n")]
    for i, case in enumerate(CASES):
        d = tmp / str(i)
        d.mkdir()
        case = {k: v for k, v in case.items() if k != "expect"}
        case["expect"] = found(case, d)
        out.append(yaml.safe_dump([case], sort_keys=False, allow_unicode=True, width=120).rstrip("\n"))
    TABLE.write_text("\n".join(out) + "\n", encoding="utf-8")


@pytest.mark.skipif(os.environ.get("MLC_REGENERATE") != "1", reason="MLC_REGENERATE=1 rewrites the table")
def test_regenerate(tmp_path: Path) -> None:
    regenerate(tmp_path)
