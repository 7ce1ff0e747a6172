"""The train pipeline end to end on a tiny project (sklearn + Lightning candidates), then the model contract,
evaluate's metrics against sklearn's, register's idempotence and aliases, the model card, batch-score and drift."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.steps import execute, is_complete, load_result

pytestmark = pytest.mark.slow  # the module fixture trains three candidates, Lightning included (~30 s)


def _with_lightning(spec: dict) -> None:
    spec["training"]["candidates"].append(
        {"name": "mlp", "framework": "lightning", "estimator": "tabular_mlp",
         "params": {"hidden_sizes": [8], "epochs": 2, "batch_size": 128, "learning_rate": 0.01}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict]:
    root = S.make_project(tmp_path_factory.mktemp("pipe") / "tiny", _with_lightning)
    ctx = S.context(root, "run-1")
    return ctx, S.run(ctx)


def _client(ctx: Any) -> Any:
    from mlc.runtime import tracking

    return tracking.client(ctx)


def test_every_step_published_with_result(trained: tuple) -> None:
    ctx, results = trained
    names = [s.name for s in ctx.plan.pipeline("train").steps]
    assert list(results) == names
    for n in names:
        assert is_complete(ctx, n), n
        assert load_result(ctx, n).message == results[n].message
    assert results["register"].outputs["version"] == "1"
    assert results["evaluate"].outputs["winner"] in {"logreg", "forest", "mlp"}
    assert not list(Path(ctx.run_dir()).glob(".*tmp*"))  # no temporary dirs left behind


def test_registered_model_follows_the_contract(trained: tuple) -> None:
    import mlflow.sklearn

    ctx, results = trained
    _client(ctx)
    model = mlflow.sklearn.load_model("models:/tiny-model@champion")
    assert [n for n, _ in model.steps] == ["features", "model"]
    rows = pd.read_csv(ctx.project_dir / "data" / "to_score.csv")  # raw rows, pandas' own dtypes
    inputs = [c.name for c in ctx.plan.inputs]
    p = model.predict_proba(rows[inputs])
    assert p.shape == (len(rows), 2) and list(model.classes_) == [0, 1]
    mv = _client(ctx).get_model_version_by_alias("tiny-model", "champion")
    fingerprint = json.loads((Path(ctx.step_dir("ingest")) / "manifest.json").read_text())["fingerprint"]
    assert mv.tags["mlc.data_fingerprint"] == fingerprint
    assert mv.tags["mlc.spec_hash"] == ctx.plan.spec_hash
    assert mv.tags["mlc.run_id"] == "run-1"
    assert mv.tags["mlc.candidate"] == results["evaluate"].outputs["winner"]
    assert mv.tags["mlc.positive_class"] == "yes"
    info = mlflow.models.get_model_info("models:/tiny-model@champion")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == inputs
    assert info.saved_input_example_info is not None


def test_candidates_are_nested_runs_of_one_parent(trained: tuple) -> None:
    ctx, _ = trained
    c = _client(ctx)
    exp = c.get_experiment_by_name("tiny")
    assert exp.artifact_location == (ctx.project_dir / ".mlc" / "mlruns").resolve().as_uri()
    parents = c.search_runs([exp.experiment_id], "tags.`mlc.role` = 'pipeline'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = c.search_runs([exp.experiment_id], "tags.`mlc.role` = 'candidate'")
    assert sorted(r.data.tags["mlc.candidate"] for r in children) == ["forest", "logreg", "mlp"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    logreg = next(r for r in children if r.data.tags["mlc.candidate"] == "logreg")
    assert logreg.data.params["best_C"] in {"0.1", "1.0"} and "test_roc_auc" in logreg.data.metrics


def test_evaluate_metrics_equal_sklearns(trained: tuple) -> None:
    from sklearn import metrics as m

    ctx, _ = trained
    ev = json.loads((Path(ctx.step_dir("evaluate")) / "metrics.json").read_text())
    test = pd.read_parquet(Path(ctx.step_dir("features")) / "test.parquet")
    y = test["__y__"].to_numpy()
    inputs = [c.name for c in ctx.plan.inputs]
    for cand, step in (("logreg", "train-logreg"), ("forest", "train-forest"), ("mlp", "train-mlp")):
        model = pickle.loads((Path(ctx.step_dir(step)) / "model.pkl").read_bytes())
        p = model.predict_proba(test[inputs])[:, 1]
        pred = model.predict(test[inputs])
        got = ev["candidates"][cand]["metrics"]
        assert got["roc_auc"] == pytest.approx(m.roc_auc_score(y, p), abs=1e-12)
        assert got["pr_auc"] == pytest.approx(m.average_precision_score(y, p), abs=1e-12)
        assert got["accuracy"] == pytest.approx(m.accuracy_score(y, pred), abs=1e-12)
        assert got["f1"] == pytest.approx(m.f1_score(y, pred), abs=1e-12)
        assert got["log_loss"] == pytest.approx(m.log_loss(y, p), abs=1e-12)
        assert got["brier"] == pytest.approx(m.brier_score_loss(y, p), abs=1e-12)
        north = (test["region"] == "north").to_numpy()
        sl = ev["candidates"][cand]["slices"]["region"]["north"]
        assert sl["rows"] == int(north.sum())
        assert sl["roc_auc"] == pytest.approx(m.roc_auc_score(y[north], p[north]), abs=1e-12)
    best = max(ev["candidates"], key=lambda c: ev["candidates"][c]["metrics"]["roc_auc"])
    assert ev["winner"] == best


def test_register_is_idempotent_and_writes_the_model_card(trained: tuple) -> None:
    ctx, _ = trained
    again = execute(ctx, S.step(ctx, "register"))  # a retried register step
    assert again.outputs["version"] == "1"
    versions = _client(ctx).search_model_versions("name='tiny-model'")
    assert [str(v.version) for v in versions] == ["1"]
    card = (Path(ctx.step_dir("register")) / "model_card.md").read_text()
    assert card.startswith("# Model card: tiny-model v1")
    for section in ("## Intended use", "## Data", "## Metrics (test split)", "### Per slice", "## Gates",
                    "## Limitations", "## Lineage", "A tiny churn model for tests.", "No champion existed"):
        assert section in card, section


def test_retraining_identical_content_registers_no_new_version(trained: tuple) -> None:
    from mlc.runtime.register import CONTENT_TAG

    ctx, results = trained
    winner = results["evaluate"].outputs["winner"]
    v1 = _client(ctx).get_model_version("tiny-model", "1")
    assert len(v1.tags[CONTENT_TAG]) == 64
    before = results[f"train-{winner}"].outputs["run_id"]
    again = {n: execute(ctx, S.step(ctx, n)) for n in (f"train-{winner}", "evaluate", "gate", "register")}
    assert again[f"train-{winner}"].outputs["run_id"] != before  # a new MLflow run with the same model
    assert again["register"].outputs["version"] == "1"
    assert again["register"].message.startswith("model unchanged: tiny-model v1 already holds this content")
    assert [str(v.version) for v in _client(ctx).search_model_versions("name='tiny-model'")] == ["1"]
    assert _client(ctx).get_model_version("tiny-model", "1").tags == v1.tags  # v1's lineage is kept


def test_batch_score_writes_predictions_with_version(trained: tuple) -> None:
    ctx, _ = trained
    res = S.run(ctx, purpose="batch")["batch-score"]
    out = pd.read_csv(ctx.project_dir / "predictions" / "scores.csv")
    assert list(out.columns) == ["customer_id", "score", "prediction", "model_version"]
    assert len(out) == 50 and res.outputs["rows"] == "50"
    assert set(out["model_version"]) == {1} and set(out["prediction"]) <= {"yes", "no"}
    assert ((out["score"] > 0.5) == (out["prediction"] == "yes")).all()


def test_drift_same_distribution_passes_and_exports_gauges(trained: tuple) -> None:
    ctx, _ = trained
    res = S.run(ctx, purpose="monitor")["drift"]
    assert res.outputs["drifted"] == "false"
    out = Path(ctx.step_dir("drift"))
    prom = (out / "drift.prom").read_text()
    assert 'mlc_feature_drift_score{feature="tenure_months",method="psi",model="tiny-model"}' in prom
    assert 'mlc_drift_check_last_run_timestamp_seconds{model="tiny-model"}' in prom
    report = json.loads((out / "report.json").read_text())
    assert report["reference"].endswith("run-1/features/train.parquet") and report["reference_rows"] == 600
    assert "<table>" in (out / "report.html").read_text()


def test_drift_on_shifted_window_fails_or_triggers_retraining(trained: tuple, tmp_path: Path) -> None:
    ctx, _ = trained
    gen = S.churn_generator()
    S.write_csv(ctx.project_dir / "data" / "current.csv", gen.make_rows(400, seed=8, start_id=100001, shift=2.0))
    try:
        with pytest.raises(RunError, match=r"(?s)drift detected.*monthly_usage_hours: psi"):
            S.run(S.context(ctx.project_dir, "mon-2"), purpose="monitor")
        report = json.loads((Path(ctx.step_dir("drift", "mon-2")) / "report.json").read_text())
        assert report["drifted"] and "monthly_usage_hours" in report["drifted_features"]

        def on_drift(spec: dict) -> None:
            _with_lightning(spec)
            spec["monitoring"]["retraining"] = {"on_drift": True}

        S.write_spec(ctx.project_dir, on_drift)
        res = S.run(S.context(ctx.project_dir, "mon-3"), purpose="monitor")["drift"]
        assert res.outputs["drifted"] == "true" and "retrain trigger emitted" in res.message
    finally:
        S.write_csv(ctx.project_dir / "data" / "current.csv", gen.make_rows(400, seed=8, start_id=100001))
        S.write_spec(ctx.project_dir, _with_lightning)


def test_psi_and_ks_separate_shifted_from_fresh_samples() -> None:
    from mlc.runtime.monitor import ks, psi

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 4000)
    same = rng.normal(0, 1, 1000)
    shifted = rng.normal(0.8, 1, 1000)
    assert psi(ref, same) < 0.05 and psi(ref, shifted) > 0.2  # below / above the usual PSI threshold
    assert ks(ref, same) < 0.06 and ks(ref, shifted) > 0.15
    from scipy.stats import ks_2samp

    assert ks(ref, shifted) == pytest.approx(ks_2samp(ref, shifted).statistic)
    # An empty bin is smoothed, not infinite.
    assert np.isfinite(psi(ref, np.full(100, 50.0)))


def test_drift_without_a_production_model_says_run_first(tmp_path: Path) -> None:
    root = S.make_project(tmp_path / "p")
    with pytest.raises(RunError, match=r"no version of model 'tiny-model' holds the alias 'champion'(?s:.*)mlc run"):
        S.run(S.context(root, "m1"), purpose="monitor")
