"""evaluate: the spec's metrics on the test split for every candidate, overall and per slice, and the winner.

Metrics come from each train step's test predictions, so evaluate never reloads a model; they are sklearn's own
metric functions (pr_auc is average precision).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.context import StepContext, StepResult
from mlc.runtime.features import TEST, Y
from mlc.spec.models import LOWER_IS_BETTER

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS = "metrics.json"
MISSING_SLICE = "(missing)"


def score(task: str, model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score, prediction): the positive class probability and the class, or the regression prediction twice."""
    import numpy as np

    if task == "classification":
        proba = np.asarray(model.predict_proba(X))[:, 1].astype("float64")
        return proba, np.asarray(model.predict(X)).astype("int64")
    pred = np.asarray(model.predict(X)).astype("float64")
    return pred, pred


def metric(name: str, y: np.ndarray, s: np.ndarray, pred: np.ndarray) -> float | None:
    """One metric; None when it is undefined on these rows (e.g. roc_auc on a slice with one class)."""
    from sklearn import metrics as m

    fns = {
        "roc_auc": lambda: m.roc_auc_score(y, s),
        "pr_auc": lambda: m.average_precision_score(y, s),
        "accuracy": lambda: m.accuracy_score(y, pred),
        "f1": lambda: m.f1_score(y, pred, zero_division=0),
        "precision": lambda: m.precision_score(y, pred, zero_division=0),
        "recall": lambda: m.recall_score(y, pred, zero_division=0),
        "log_loss": lambda: m.log_loss(y, s, labels=[0, 1]),
        "brier": lambda: m.brier_score_loss(y, s),
        "rmse": lambda: m.root_mean_squared_error(y, s),
        "mae": lambda: m.mean_absolute_error(y, s),
        "r2": lambda: m.r2_score(y, s),
        "mape": lambda: m.mean_absolute_percentage_error(y, s),
    }
    if len(y) == 0:
        return None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = float(fns[name]())
    except ValueError:
        return None
    return None if math.isnan(v) else v


def compute_metrics(task: str, names: list[str], y: np.ndarray, s: np.ndarray, pred: np.ndarray) -> dict:
    del task
    return {n: metric(n, y, s, pred) for n in names}


def slice_metrics(test: pd.DataFrame, column: str, names: list[str], s: np.ndarray,
                  pred: np.ndarray) -> dict[str, dict]:
    """{slice value: {"rows": n, <metric>: value}} for one column of the test split."""
    import numpy as np

    keys = test[column].astype("str").where(test[column].notna(), MISSING_SLICE).to_numpy()
    y = test[Y].to_numpy()
    out: dict[str, dict] = {}
    for value in sorted(set(keys.tolist())):
        idx = np.flatnonzero(keys == value)
        out[value] = {"rows": len(idx), **{n: metric(n, y[idx], s[idx], pred[idx]) for n in names}}
    return out


def better(a: float, b: float, name: str) -> bool:
    return a < b if name in LOWER_IS_BETTER else a > b


def train_steps(ctx: StepContext, step: Step) -> list[tuple[str, str]]:
    """(step name, candidate) of every train step evaluate depends on, in spec order."""
    out = []
    for dep in step.depends:
        _, s = ctx.plan.find_step(dep)
        if s.kind == "train" and s.candidate:
            out.append((dep, s.candidate))
    return out


def evaluate(ctx: StepContext, step: Step) -> StepResult:
    import pandas as pd

    spec = ctx.plan.spec
    test = A.read_parquet(f"{ctx.step_dir('features')}/{TEST}", ctx.storage_options)
    y = test[Y].to_numpy()
    wanted = list(dict.fromkeys([*spec.training.metrics, spec.training.select_by,
                                 *(g.metric for g in spec.gates.metrics), *(g.metric for g in spec.gates.champion)]))
    slice_cols = list(dict.fromkeys(g.column for g in spec.gates.slices))
    slice_names = {c: list(dict.fromkeys(g.metric for g in spec.gates.slices if g.column == c)) for c in slice_cols}
    candidates: dict[str, dict] = {}
    for name, cand in train_steps(ctx, step):
        d = ctx.step_dir(name)
        preds = A.read_parquet(f"{d}/predictions.parquet", ctx.storage_options)
        info = A.read_json(f"{d}/candidate.json", ctx.storage_options)
        if len(preds) != len(test):
            raise RunError(f"{name}: {len(preds)} predictions for {len(test)} test rows; rerun the train step")
        s, pred = preds["score"].to_numpy(), preds["pred"].to_numpy()
        candidates[cand] = {
            "step": name, "mlflow_run_id": info["mlflow_run_id"], "model_uri": info["model_uri"],
            "metrics": {n: metric(n, y, s, pred) for n in wanted},
            "slices": {c: slice_metrics(test, c, slice_names[c], s, pred) for c in slice_cols},
        }
    by = spec.training.select_by
    scored = [(c, v["metrics"][by]) for c, v in candidates.items() if v["metrics"][by] is not None]
    if not scored:
        raise RunError(f"no candidate has a defined {by} on the test split")
    winner, best = scored[0]
    for c, v in scored[1:]:
        if better(v, best, by):
            winner, best = c, v
    report = {"select_by": by, "higher_is_better": by not in LOWER_IS_BETTER, "winner": winner, "score": best,
              "test_rows": len(test), "candidates": candidates}
    A.write_json(f"{ctx.out_dir(step.name)}/{METRICS}", report, ctx.storage_options)
    del pd
    table = {c: v["metrics"] for c, v in candidates.items()}
    return StepResult(outputs={"winner": winner, "score": repr(best)}, metrics={"candidates": table},
                      message=f"winner {winner}: {by} {best:.4f}")
