"""The churn example's training written by hand, the way a data scientist would without mlc: the yardstick
that `mlc run` is measured against in benchmarks/run.py.

The same split, the same transforms, the same four candidates (logistic regression with a 3-fold grid over C,
a random forest, histogram gradient boosting, and a Lightning MLP), each logged to MLflow as a nested run with
params, test metrics and the model with its signature; the best by ROC AUC is registered and gets the
champion alias. It does none of mlc's data checks, gates, slices, model card or step cache.

    python benchmarks/handwritten_churn.py --data specs/churn/data/customers.csv --tracking-uri sqlite:///x.db
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from mlflow.models import infer_signature
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
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
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler, StandardScaler

SEED = 42
NUMERIC = ["tenure_months", "last_contact_days", "support_tickets"]
CATEGORICAL = ["plan", "region", "age_group"]


def transformer() -> ColumnTransformer:
    usage = Pipeline([("clip", FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 200})),
                      ("log1p", FunctionTransformer(np.log1p)), ("impute", SimpleImputer(strategy="median"))])
    return ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
        ("usage", usage, ["monthly_usage_hours"]),
        ("price", RobustScaler(), ["plan_price"]),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                          ("onehot", OneHotEncoder(max_categories=10, handle_unknown="infrequent_if_exist",
                                                   sparse_output=False))]), CATEGORICAL),
    ])


class LitMLP(pl.LightningModule):
    def __init__(self, n_in: int, hidden: tuple[int, ...], lr: float) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for h in hidden:
            layers += [torch.nn.Linear(n_in, h), torch.nn.ReLU()]
            n_in = h
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(n_in, 1))
        self.lr = lr
        self.loss = torch.nn.BCEWithLogitsLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(self, batch, _i):  # type: ignore[no-untyped-def]
        x, y = batch
        return self.loss(self(x), y)

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Just enough sklearn to put the Lightning net behind the same ColumnTransformer."""

    def __init__(self, hidden=(32, 16), epochs=15, batch_size=256, lr=0.003):  # type: ignore[no-untyped-def]
        self.hidden, self.epochs, self.batch_size, self.lr = hidden, epochs, batch_size, lr

    def fit(self, X, y):  # type: ignore[no-untyped-def]
        pl.seed_everything(SEED, verbose=False)
        X = torch.tensor(np.asarray(X, dtype=np.float32))
        y = torch.tensor(np.asarray(y, dtype=np.float32))
        self.module_ = LitMLP(X.shape[1], tuple(self.hidden), self.lr)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=self.batch_size,
                                             shuffle=True)
        pl.Trainer(max_epochs=self.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False).fit(self.module_, loader)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            p = torch.sigmoid(self.module_(torch.tensor(np.asarray(X, dtype=np.float32)))).numpy()
        return np.column_stack([1 - p, p])

    def predict(self, X):  # type: ignore[no-untyped-def]
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


CANDIDATES = {
    "logreg": (LogisticRegression(max_iter=1000, random_state=SEED), {"model__C": [0.1, 1.0]}),
    "forest": (RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=SEED), None),
    "boosting": (HistGradientBoostingClassifier(learning_rate=0.05, max_iter=200, random_state=SEED), None),
    "tabular-mlp": (MLPClassifier(hidden=(32, 16), epochs=15, batch_size=256, lr=0.003), None),
}


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = (p > 0.5).astype(int)
    return {"roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p),
            "accuracy": accuracy_score(y, pred), "f1": f1_score(y, pred), "log_loss": log_loss(y, p),
            "brier": brier_score_loss(y, p)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).parents[1] / "specs/churn/data/customers.csv"))
    ap.add_argument("--tracking-uri", default="sqlite:///handwritten-mlflow.db")
    args = ap.parse_args()
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("churn-handwritten")

    df = pd.read_csv(args.data)
    y = (df.pop("churned") == "yes").astype(int)
    X = df[NUMERIC + ["monthly_usage_hours", "plan_price"] + CATEGORICAL]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    reqs = ["scikit-learn", "pandas", "numpy", "torch"]

    best: tuple[float, str] = (-1.0, "")
    with mlflow.start_run(run_name="pipeline"):
        for name, (est, grid) in CANDIDATES.items():
            with mlflow.start_run(run_name=name, nested=True):
                pipe = Pipeline([("features", transformer()), ("model", est)])
                if grid:
                    search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=3).fit(X_train, y_train)
                    pipe = search.best_estimator_
                    mlflow.log_params({k.removeprefix("model__"): v for k, v in search.best_params_.items()})
                else:
                    pipe.fit(X_train, y_train)
                mlflow.log_params({k: str(v) for k, v in est.get_params().items()})
                m = metrics(y_test.to_numpy(), pipe.predict_proba(X_test)[:, 1])
                mlflow.log_metrics(m)
                example = X_train.head(5)
                info = mlflow.sklearn.log_model(pipe, name="model", input_example=example, pip_requirements=reqs,
                                                serialization_format="cloudpickle",
                                                signature=infer_signature(example, pipe.predict_proba(example)))
                print(f"{name:12s} " + " ".join(f"{k}={v:.4f}" for k, v in m.items()), flush=True)
                best = max(best, (m["roc_auc"], info.model_uri))
    version = mlflow.register_model(best[1], "churn-handwritten")
    mlflow.MlflowClient().set_registered_model_alias("churn-handwritten", "champion", version.version)
    print(f"registered churn-handwritten v{version.version}; {time.perf_counter() - t0:.1f}s in the script")


if __name__ == "__main__":
    main()
