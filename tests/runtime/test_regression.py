"""The delivery-eta example end to end: DVC pin, time split, quantile bins, a ridge grid, rmse gates, KS drift
and the live-quality step with labelled feedback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import runtime_support as S
import yaml

from mlc.errors import RunError
from mlc.runtime.monitor import quality_floor


def test_quality_floor_follows_the_metric_direction() -> None:
    assert quality_floor("roc_auc", 0.76, None, 0.95, 0.80) == (pytest.approx(0.76), True)
    assert quality_floor("roc_auc", 0.75, 0.7, 0.95, 0.80)[1] is False
    limit, ok = quality_floor("rmse", 5.4, None, 0.9, 5.0)  # ceiling 5.0 / 0.9 = 5.56
    assert limit == pytest.approx(5.0 / 0.9) and ok
    assert quality_floor("rmse", 6.1, 6.0, None, 5.0) == (6.0, False)
    assert quality_floor("rmse", None, 6.0, None, None)[1] is False


def test_delivery_eta_regression_pipeline(tmp_path: Path) -> None:
    root = tmp_path / "eta"
    shutil.copytree(S.ETA, root, ignore=shutil.ignore_patterns(".mlc"))
    spec = yaml.safe_load((root / "mlproject.yaml").read_text())
    spec["training"]["candidates"] = [spec["training"]["candidates"][0]]  # the ridge grid: fast
    spec["monitoring"]["quality"] = {"metric": "rmse", "min_ratio": 0.9,
                                     "feedback": {"uri": "data/recent.csv"}}
    (root / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    ctx = S.context(root, "r1")
    res = S.run(ctx)
    assert res["register"].outputs["promoted"] == "true"
    train = pd.read_parquet(Path(ctx.step_dir("features")) / "train.parquet")
    test = pd.read_parquet(Path(ctx.step_dir("features")) / "test.parquet")
    assert len(test) == 800 and train["ordered_at"].max() <= test["ordered_at"].min()  # newest 20% is test
    ev = json.loads((Path(ctx.step_dir("evaluate")) / "metrics.json").read_text())
    m = ev["candidates"]["ridge"]["metrics"]
    assert ev["select_by"] == "rmse" and not ev["higher_is_better"] and m["rmse"] < 6.0 and m["r2"] > 0.6
    split = json.loads((Path(ctx.step_dir("features")) / "split.json").read_text())
    assert sum(f.startswith("1-numeric__hour_") for f in split["feature_names"]) == 6  # 6 quantile bins

    mon = S.run(S.context(root, "m1"), purpose="monitor")
    assert mon["drift"].outputs["drifted"] == "false"
    report = json.loads((Path(ctx.step_dir("drift", "m1")) / "report.json").read_text())
    assert report["method"] == "ks" and all(0 <= f["score"] < 0.15 for f in report["features"])
    q = json.loads((Path(ctx.step_dir("quality", "m1")) / "report.json").read_text())
    assert q["passed"] and q["baseline"] == pytest.approx(m["rmse"]) and q["floor"] == pytest.approx(m["rmse"] / 0.9)
    prom = (Path(ctx.step_dir("quality", "m1")) / "quality.prom").read_text()
    assert 'mlc_model_quality{metric="rmse",model="delivery-eta"}' in prom
    assert 'mlc_model_quality_baseline{metric="rmse",model="delivery-eta"}' in prom

    # Feedback where the model is badly wrong: the quality step fails and says by how much.
    recent = pd.read_csv(root / "data" / "recent.csv")
    recent["delivery_minutes"] = recent["delivery_minutes"] * 3
    recent.to_csv(root / "data" / "recent.csv", index=False)
    with pytest.raises(RunError, match=r"live quality below the floor: rmse"):
        S.run(S.context(root, "m2"), purpose="monitor", only=("quality",))
