"""Gate logic: absolute thresholds, champion-relative drops (with and without a champion), slice gaps, manual
approval; and end to end against a real registry: a worse challenger leaves the champion alone, a better one
takes the production alias."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.gates import absolute_gates, champion_gates, drop, slice_gates
from mlc.spec.models import Gates


def test_absolute_gates() -> None:
    g = Gates.model_validate({"metrics": [{"metric": "roc_auc", "min": 0.8}, {"metric": "brier", "max": 0.15}]})
    res = absolute_gates(g, {"roc_auc": 0.79, "brier": 0.1})
    assert [r["passed"] for r in res] == [False, True]
    assert res[0]["expected"] == "min 0.8" and res[0]["observed"] == 0.79
    assert absolute_gates(g, {"roc_auc": None, "brier": 0.1})[0]["passed"] is False  # undefined never passes


def test_drop_follows_the_metric_direction() -> None:
    assert drop("roc_auc", 0.80, 0.85) == pytest.approx(0.05)  # lower auc is worse
    assert drop("rmse", 5.5, 5.0) == pytest.approx(0.5)  # higher rmse is worse
    assert drop("rmse", 4.0, 5.0) < 0  # an improvement is a negative drop


def test_relative_gates_with_and_without_champion() -> None:
    g = Gates.model_validate({"champion": [{"metric": "roc_auc", "max_relative_drop": 0.01},
                                           {"metric": "rmse", "max_drop": 0.25}]})
    skipped = champion_gates(g, {"roc_auc": 0.7, "rmse": 9.0}, None, None)
    assert all(r["passed"] and r["skipped"] for r in skipped)
    assert "relative gates skipped" in skipped[0]["reason"]
    res = champion_gates(g, {"roc_auc": 0.792, "rmse": 5.3}, {"roc_auc": 0.80, "rmse": 5.0}, "3")
    assert res[0]["passed"] and res[0]["relative_drop"] == pytest.approx(0.01)  # exactly at the limit
    assert not res[1]["passed"] and res[1]["drop"] == pytest.approx(0.3) and res[1]["champion_version"] == "3"
    res = champion_gates(g, {"roc_auc": 0.78, "rmse": 5.2}, {"roc_auc": 0.80, "rmse": 5.0}, "3")
    assert [r["passed"] for r in res] == [False, True]


def test_slice_gap_ignores_small_slices_but_reports_them() -> None:
    g = Gates.model_validate({"slices": [{"column": "region", "metric": "roc_auc", "max_gap": 0.1,
                                          "min_rows": 30}]})
    slices = {"region": {"east": {"rows": 100, "roc_auc": 0.85}, "west": {"rows": 90, "roc_auc": 0.78},
                         "tiny": {"rows": 5, "roc_auc": 0.2}}}
    (r,) = slice_gates(g, slices)
    assert r["passed"] and r["observed"] == pytest.approx(0.07) and r["not_gated"] == {"tiny": 5}
    slices["region"]["west"]["roc_auc"] = 0.70
    (r,) = slice_gates(g, slices)
    assert not r["passed"] and r["worst"] == "west"


def _cand(name: str, **params) -> dict:
    return {"name": name, "estimator": "random_forest", "params": params} if params else \
        {"name": name, "estimator": "logistic_regression", "params": {"max_iter": 500}}


def _spec(candidate: dict, manual: bool = False):
    def edit(spec: dict) -> None:
        spec["training"]["candidates"] = [candidate]
        spec["gates"]["metrics"] = [{"metric": "roc_auc", "min": 0.5}]
        spec["gates"]["manual_approval"] = manual
    return edit


@pytest.mark.slow  # four pipeline runs against one registry (~20 s)
def test_champion_gate_blocks_a_worse_model_and_a_better_one_is_promoted(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlc.runtime import tracking

    weak = _cand("stump", n_estimators=1, max_depth=1)
    root = S.make_project(tmp_path / "p", _spec(weak))
    first = S.run(S.context(root, "r1"))
    assert first["register"].outputs == {"version": "1", "promoted": "true"}
    gate = json.loads((Path(S.context(root, "r1").step_dir("gate")) / "report.json").read_text())
    assert gate["champion"] is None and gate["skipped"] == ["roc_auc"]

    # A better model passes the relative gate and takes the production alias.
    S.write_spec(root, _spec(_cand("logreg")))
    ctx2 = S.context(root, "r2")
    second = S.run(ctx2)
    assert second["register"].outputs == {"version": "2", "promoted": "true"}
    c = tracking.client(ctx2)
    assert str(c.get_model_version_by_alias("tiny-model", "champion").version) == "2"
    rel = next(g for g in json.loads((Path(ctx2.step_dir("gate")) / "report.json").read_text())["gates"]
               if g["gate"] == "champion")
    assert rel["passed"] and rel["champion_version"] == "1" and rel["drop"] < 0

    # The weak model again: the relative gate fails against the better champion; nothing moves.
    S.write_spec(root, _spec(weak))
    ctx3 = S.context(root, "r3")
    with pytest.raises(RunError) as e:
        S.run(ctx3)
    msg = str(e.value)
    assert "champion gate roc_auc" in msg and "champion v2" in msg and "nothing was registered as production" in msg
    assert str(c.get_model_version_by_alias("tiny-model", "champion").version) == "2"
    assert len(c.search_model_versions("name='tiny-model'")) == 2  # register never ran
    md = (Path(ctx3.step_dir("gate")) / "report.md").read_text()
    assert "# Gates: FAILED" in md and "| FAIL | champion | roc_auc |" in md

    # Manual approval: every gate passes, yet production stays where it is until approved.
    def manual(spec: dict) -> None:  # a model other than v2 (the same one would be v2 again: nothing to register)
        _spec({**_cand("logreg"), "params": {"max_iter": 500, "C": 0.5}}, manual=True)(spec)
        spec["gates"]["champion"] = []

    S.write_spec(root, manual)
    monkeypatch.delenv("MLC_APPROVED", raising=False)
    ctx4 = S.context(root, "r4")
    fourth = S.run(ctx4)
    assert fourth["register"].outputs == {"version": "3", "promoted": "false"}
    assert str(c.get_model_version_by_alias("tiny-model", "champion").version) == "2"
    assert str(c.get_model_version_by_alias("tiny-model", "challenger").version) == "3"

    # Approved: rerunning register promotes the version that exists, and registers nothing new.
    monkeypatch.setenv("MLC_APPROVED", "1")
    from mlc.runtime.steps import execute

    approved = execute(ctx4, S.step(ctx4, "register"))
    assert approved.outputs == {"version": "3", "promoted": "true"}
    assert str(c.get_model_version_by_alias("tiny-model", "champion").version) == "3"
    assert len(c.search_model_versions("name='tiny-model'")) == 3


def test_manual_approval_is_pending_locally_until_approved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlc.runtime.gates import approval_state

    root = S.make_project(tmp_path / "p", _spec(_cand("logreg"), manual=True))
    ctx = S.context(root, "r1")
    monkeypatch.delenv("MLC_APPROVED", raising=False)
    assert approval_state(ctx) == "pending"
    monkeypatch.setenv("MLC_APPROVED", "1")
    assert approval_state(ctx) == "approved"
    ctx.local = False  # on a cluster the suspend step before register is the approval
    monkeypatch.delenv("MLC_APPROVED")
    assert approval_state(ctx) == "approved"
    ctx.local = True
    res = S.run(ctx)
    gate = json.loads((Path(ctx.step_dir("gate")) / "report.json").read_text())
    assert gate["approval"] == "pending" and res["gate"].outputs["approval"] == "pending"
    assert res["register"].outputs == {"version": "1", "promoted": "false"}
    from mlc.runtime import tracking

    assert tracking.champion(ctx) is None
    assert "approval pending" in res["register"].message
