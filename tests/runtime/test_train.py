"""Estimators: every built-in trains for its task, grids pick by select_by, Lightning is wrapped as an sklearn
estimator that pickles without a Trainer, and a missing Lightning install is a clear RunError."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.train import fit, make_estimator
from mlc.spec.models import Candidate, Spec


def _data(n: int = 240) -> tuple[pd.DataFrame, pd.Series]:
    from mlc.runtime.data import cast_frame

    gen = S.churn_generator()
    raw = pd.DataFrame(gen.make_rows(n, seed=11)).astype("str").replace({"": None})
    df, _, _ = cast_frame(raw, Spec.model_validate(S.TINY).data.schema_)
    return df, (df["churned"] == "yes").astype("int64")


CLASSIFICATION = Spec.model_validate(S.TINY)
REGRESSION = Spec.model_validate({**S.TINY, "data": {**S.TINY["data"], "label": {"column": "plan_price",
                                                                                  "task": "regression"}},
                                  "features": [f for f in S.TINY["features"] if f["columns"] != ["plan_price"]],
                                  "training": {**S.TINY["training"], "metrics": ["rmse"], "select_by": "rmse"},
                                  "gates": {}})


@pytest.mark.parametrize("name", ["logistic_regression", "random_forest", "hist_gradient_boosting",
                                  "gradient_boosting", "mlp"])
def test_each_builtin_classifier_trains(name: str) -> None:
    X, y = _data()
    params = {"max_iter": 30} if name in ("mlp", "hist_gradient_boosting") else {}
    if name in ("random_forest", "gradient_boosting"):
        params = {"n_estimators": 10}
    model, cv = fit(CLASSIFICATION, Candidate(name="c", estimator=name, params=params), X, y)
    p = model.predict_proba(X)
    assert cv is None and p.shape == (len(X), 2) and list(model.classes_) == [0, 1]
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    est = model.named_steps["model"]
    if "random_state" in est.get_params():
        assert est.random_state == 42  # training.seed


@pytest.mark.parametrize("name", ["linear_regression", "ridge", "random_forest", "hist_gradient_boosting",
                                  "gradient_boosting", "mlp"])
def test_each_builtin_regressor_trains(name: str) -> None:
    X, _ = _data()
    y = X["plan_price"]
    params = {"max_iter": 30} if name in ("mlp", "hist_gradient_boosting") else {}
    if name in ("random_forest", "gradient_boosting"):
        params = {"n_estimators": 10}
    model, _ = fit(REGRESSION, Candidate(name="r", estimator=name, params=params), X, y)
    assert model.predict(X).shape == (len(X),)


def test_wrong_task_builtin_and_import_path() -> None:
    with pytest.raises(RunError, match="not a built-in classification estimator"):
        make_estimator(CLASSIFICATION, Candidate(name="c", estimator="ridge"))
    est = make_estimator(CLASSIFICATION, Candidate(name="c", estimator="sklearn.tree:DecisionTreeClassifier",
                                                   params={"max_depth": 2}))
    assert est.max_depth == 2 and est.random_state == 42
    with pytest.raises(RunError, match="has no predict_proba"):
        make_estimator(CLASSIFICATION, Candidate(name="c", estimator="sklearn.svm:LinearSVC"))


def test_grid_search_uses_cv_and_select_by() -> None:
    from sklearn.model_selection import GridSearchCV

    X, y = _data()
    cand = Candidate(name="c", estimator="logistic_regression", params={"max_iter": 300},
                     grid={"C": [0.001, 1.0]})
    model, cv = fit(CLASSIFICATION, cand, X, y)
    from mlc.runtime.train import build_pipeline

    ref = GridSearchCV(build_pipeline(CLASSIFICATION, cand), {"model__C": [0.001, 1.0]}, scoring="roc_auc",
                       cv=3).fit(X, y)
    assert cv["best_params"] == {"C": ref.best_params_["model__C"]}
    assert cv["best_score"] == pytest.approx(ref.best_score_, abs=1e-12)
    assert model.named_steps["model"].C == ref.best_params_["model__C"]
    assert len(cv["mean_test_score"]) == 2 and cv["scoring"] == "roc_auc"


def test_lightning_candidate_trains_pickles_and_is_deterministic() -> None:
    X, y = _data()
    cand = Candidate(name="nn", framework="lightning", estimator="tabular_mlp",
                     params={"hidden_sizes": [8], "epochs": 3, "batch_size": 64, "learning_rate": 0.01})
    a, _ = fit(CLASSIFICATION, cand, X, y)
    b, _ = fit(CLASSIFICATION, cand, X, y)
    pa = a.predict_proba(X)
    np.testing.assert_array_equal(pa, b.predict_proba(X))  # seeded and deterministic
    assert pa.shape == (len(X), 2) and 0 < pa[:, 1].mean() < 1
    blob = pickle.dumps(a)
    assert b"Trainer" not in blob
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.predict_proba(X), pa)
    np.testing.assert_array_equal(restored.predict(X), (pa[:, 1] > 0.5).astype(int))


def test_lightning_regressor_and_user_module() -> None:
    X, _ = _data()
    y = X["plan_price"]
    cand = Candidate(name="nn", framework="lightning", estimator="lightning_user_module:TinyRegressor",
                     params={"hidden": 4})
    model, _ = fit(REGRESSION, cand, X, y)
    pred = model.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), pred)


def test_missing_lightning_is_a_clear_run_error(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(60)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)  # import now raises ImportError
    cand = Candidate(name="nn", framework="lightning", estimator="tabular_mlp", params={"epochs": 1})
    with pytest.raises(RunError, match=r"pip install 'mlc\[lightning\]'"):
        fit(CLASSIFICATION, cand, X, y)
