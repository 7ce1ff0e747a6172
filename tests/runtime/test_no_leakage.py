"""No leakage: mlc's metrics on the churn example equal those of a plain, hand-written sklearn script with the
same split, the same transforms and the same estimators, to 1e-9.

The script below fits its ColumnTransformer inside the model Pipeline on the train rows only, the textbook way.
If mlc fitted anything on the test rows (or on all rows before splitting), the numbers would differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import runtime_support as S
import yaml


def hand_written(csv: Path) -> dict[str, dict[str, float]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        log_loss,
        roc_auc_score,
    )
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler, StandardScaler

    df = pd.read_csv(csv)
    y = (df["churned"] == "yes").astype(int)
    X = df.drop(columns=["churned"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)

    def features() -> ColumnTransformer:
        return ColumnTransformer([
            ("a", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             ["tenure_months", "last_contact_days", "support_tickets"]),
            ("b", Pipeline([("clip", FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 200})),
                            ("log", FunctionTransformer(np.log1p)),
                            ("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             ["monthly_usage_hours"]),
            ("c", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", RobustScaler())]),
             ["plan_price"]),
            ("d", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                            ("onehot", OneHotEncoder(max_categories=10, handle_unknown="infrequent_if_exist",
                                                     sparse_output=False))]),
             ["plan", "region", "age_group"]),
        ], sparse_threshold=0.0)

    models = {"logreg": LogisticRegression(max_iter=1000, random_state=42),
              "forest": RandomForestClassifier(n_estimators=40, min_samples_leaf=5, random_state=42)}
    out = {}
    for name, est in models.items():
        model = Pipeline([("features", features()), ("model", est)]).fit(X_train, y_train)
        p = model.predict_proba(X_test)[:, 1]
        pred = model.predict(X_test)
        out[name] = {"roc_auc": roc_auc_score(y_test, p), "pr_auc": average_precision_score(y_test, p),
                     "accuracy": accuracy_score(y_test, pred), "f1": f1_score(y_test, pred),
                     "log_loss": log_loss(y_test, p), "brier": brier_score_loss(y_test, p)}
    return out


def test_mlc_metrics_equal_a_hand_written_sklearn_script(tmp_path: Path) -> None:
    root = tmp_path / "churn"
    shutil.copytree(S.CHURN, root, ignore=shutil.ignore_patterns(".mlc", "predictions"))
    spec = yaml.safe_load((root / "mlproject.yaml").read_text())
    spec["training"]["candidates"] = [
        {"name": "logreg", "estimator": "logistic_regression", "params": {"max_iter": 1000}},
        {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 40, "min_samples_leaf": 5}},
    ]
    spec["gates"] = {}
    (root / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    ctx = S.context(root, "leak")
    S.run(ctx, until="evaluate")
    got = json.loads((Path(ctx.step_dir("evaluate")) / "metrics.json").read_text())["candidates"]
    want = hand_written(root / "data" / "customers.csv")
    for cand in ("logreg", "forest"):
        for metric, value in want[cand].items():
            assert abs(got[cand]["metrics"][metric] - value) <= 1e-9, (cand, metric, got[cand]["metrics"][metric],
                                                                      value)
    assert want["logreg"]["roc_auc"] > 0.75  # a real model, not a degenerate one that trivially agrees
