"""train-<candidate>: fit one candidate as ``Pipeline([("features", transformer), ("model", estimator)])`` on
the train split, score the test split, and log it all to one nested MLflow run.

The registered object is that Pipeline: it takes a DataFrame of the raw input columns (``plan.inputs``) and has
``predict_proba`` (classification, columns = ``classes_`` = [0, 1], 1 = the positive class) or ``predict``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime import tracking
from mlc.runtime.context import StepContext, StepResult
from mlc.runtime.evaluate import compute_metrics, score
from mlc.runtime.features import TEST, TRAIN, Y, build_transformer, import_path, input_names
from mlc.spec.models import Candidate, Spec

if TYPE_CHECKING:
    import pandas as pd

MODEL = "model.pkl"
PREDICTIONS = "predictions.parquet"
CANDIDATE = "candidate.json"

_CLASSIFIERS = {
    "logistic_regression": "sklearn.linear_model:LogisticRegression",
    "random_forest": "sklearn.ensemble:RandomForestClassifier",
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier",
    "gradient_boosting": "sklearn.ensemble:GradientBoostingClassifier",
    "mlp": "sklearn.neural_network:MLPClassifier",
    "tabular_mlp": "mlc.runtime.lightning_model:TabularMLPClassifier",
}
_REGRESSORS = {
    "linear_regression": "sklearn.linear_model:LinearRegression",
    "ridge": "sklearn.linear_model:Ridge",
    "random_forest": "sklearn.ensemble:RandomForestRegressor",
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingRegressor",
    "gradient_boosting": "sklearn.ensemble:GradientBoostingRegressor",
    "mlp": "sklearn.neural_network:MLPRegressor",
    "tabular_mlp": "mlc.runtime.lightning_model:TabularMLPRegressor",
}
# select_by -> sklearn scorer name for GridSearchCV (higher is better for every scorer).
SCORERS = {"roc_auc": "roc_auc", "pr_auc": "average_precision", "accuracy": "accuracy", "f1": "f1",
           "precision": "precision", "recall": "recall", "log_loss": "neg_log_loss", "brier": "neg_brier_score",
           "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "r2": "r2",
           "mape": "neg_mean_absolute_percentage_error"}


def make_estimator(spec: Spec, cand: Candidate) -> Any:
    task = spec.data.label.task
    table = _CLASSIFIERS if task == "classification" else _REGRESSORS
    params = dict(cand.params)
    if ":" in cand.estimator and cand.framework == "lightning":
        from mlc.runtime.lightning_model import TabularMLPClassifier, TabularMLPRegressor

        cls: Any = TabularMLPClassifier if task == "classification" else TabularMLPRegressor
        params = {"module": cand.estimator, "module_params": params}
    elif ":" in cand.estimator:
        cls = import_path(cand.estimator)
    elif cand.estimator in table:
        if (cand.estimator == "tabular_mlp") != (cand.framework == "lightning"):
            raise RunError(f"candidate '{cand.name}': estimator '{cand.estimator}' needs framework: "
                           f"{'lightning' if cand.estimator == 'tabular_mlp' else 'sklearn'}")
        cls = import_path(table[cand.estimator])
    else:
        other = "regression" if task == "classification" else "classification"
        raise RunError(f"candidate '{cand.name}': estimator '{cand.estimator}' is not a built-in {task} "
                       f"estimator (it is a {other} one, or unknown); built-ins for {task}: "
                       f"{', '.join(sorted(table))}")
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = spec.training.seed
    try:
        est = cls(**params)
    except TypeError as e:
        raise RunError(f"candidate '{cand.name}': {cand.estimator}({params}) failed: {e}") from e
    if task == "classification" and not hasattr(est, "predict_proba"):
        raise RunError(f"candidate '{cand.name}': {type(est).__name__} has no predict_proba; classification "
                       "candidates must give probabilities")
    return est


def build_pipeline(spec: Spec, cand: Candidate) -> Any:
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", build_transformer(spec)), ("model", make_estimator(spec, cand))])


def fit(spec: Spec, cand: Candidate, X: pd.DataFrame, y: pd.Series) -> tuple[Any, dict | None]:
    """The fitted pipeline, and the grid search's results when the candidate has a grid."""
    pipe = build_pipeline(spec, cand)
    try:
        if not cand.grid:
            return pipe.fit(X, y), None
        from sklearn.model_selection import GridSearchCV

        search = GridSearchCV(pipe, {f"model__{k}": list(v) for k, v in cand.grid.items()},
                              scoring=SCORERS[spec.training.select_by], cv=spec.training.cv_folds, n_jobs=1,
                              refit=True, error_score="raise")
        search.fit(X, y)
    except (ValueError, TypeError) as e:
        raise RunError(f"training candidate '{cand.name}' failed: {e}") from e
    cv = {"best_params": {k.removeprefix("model__"): v for k, v in search.best_params_.items()},
          "best_score": float(search.best_score_), "scoring": SCORERS[spec.training.select_by],
          "params": [{k.removeprefix("model__"): v for k, v in p.items()} for p in search.cv_results_["params"]],
          "mean_test_score": [float(s) for s in search.cv_results_["mean_test_score"]],
          "std_test_score": [float(s) for s in search.cv_results_["std_test_score"]]}
    return search.best_estimator_, cv


def _requirements(cand: Candidate) -> list[str]:
    """Pinned explicitly: MLflow's own inference loads the model in a subprocess and costs seconds per model."""
    import cloudpickle
    import numpy
    import pandas
    import sklearn

    reqs = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pandas.__version__}",
            f"numpy=={numpy.__version__}", f"cloudpickle=={cloudpickle.__version__}"]
    if cand.framework == "lightning":
        import torch

        reqs.append(f"torch=={torch.__version__.split('+')[0]}")
    return reqs


def log_candidate(ctx: StepContext, cand: Candidate, model: Any, X: pd.DataFrame, metrics: dict,
                  cv: dict | None, positive: Any) -> tuple[str, str]:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    # MLflow's pickle-format warning, on every model, goes through the step's capture (chatter.py): -v shows it

    run_id = tracking.candidate_run(ctx, cand.name)
    example = X.head(5)
    classification = ctx.plan.task == "classification"
    out = model.predict_proba(example) if classification else model.predict(example)
    import warnings

    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # Integer inputs are non-nullable by construction (nullable integers are cast to float64 at ingest).
        warnings.filterwarnings("ignore", message=".*(integer column|Operation with range).*")
        params = {"estimator": cand.estimator, "framework": cand.framework, **cand.params}
        if cv:
            params.update({f"best_{k}": v for k, v in cv["best_params"].items()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if v is not None})
        if cv:
            mlflow.log_metric("cv_best_score", cv["best_score"])
            mlflow.log_dict(cv, "cv_results.json")
        if positive is not None:
            mlflow.set_tag(tracking.POSITIVE_TAG, str(positive))
            mlflow.log_param(tracking.POSITIVE_TAG, str(positive))
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(example, out), input_example=example,
            pip_requirements=_requirements(cand), serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba" if classification else "predict")
    tracking.end_run(ctx, run_id)
    return run_id, info.model_uri


def train(ctx: StepContext, step: Step) -> StepResult:
    spec = ctx.plan.spec
    cand = next((c for c in spec.training.candidates if c.name == step.candidate), None)
    if cand is None:
        raise RunError(f"step {step.name}: no candidate named '{step.candidate}' in training.candidates")
    feat = ctx.step_dir("features")
    train_df = A.read_parquet(f"{feat}/{TRAIN}", ctx.storage_options)
    test_df = A.read_parquet(f"{feat}/{TEST}", ctx.storage_options)
    positive = A.read_json(f"{feat}/split.json", ctx.storage_options).get("positive_class")
    names = input_names(ctx)
    model, cv = fit(spec, cand, train_df[names], train_df[Y])
    s, pred = score(ctx.plan.task, model, test_df[names])
    metrics = compute_metrics(ctx.plan.task, spec.training.metrics, test_df[Y].to_numpy(), s, pred)
    run_id, model_uri = log_candidate(ctx, cand, model, train_df[names], metrics, cv, positive)
    out = ctx.out_dir(step.name)
    import pandas as pd

    A.write_table(f"{out}/{PREDICTIONS}", pd.DataFrame({"score": s, "pred": pred}), "parquet",
                  ctx.storage_options)
    A.write_pickle(f"{out}/{MODEL}", model, ctx.storage_options)
    A.write_json(f"{out}/{CANDIDATE}", {"candidate": cand.name, "mlflow_run_id": run_id, "model_uri": model_uri,
                                        "test_metrics": metrics, "cv": cv}, ctx.storage_options)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None)
    return StepResult(outputs={"run_id": run_id, "model_uri": model_uri}, metrics=metrics,
                      message=f"{cand.name}: {shown}")
