"""Helpers for the step-runtime tests (not a test module): a tiny churn-like project written into tmp_path,
and a way to run a plan's steps through `execute`, the same call `mlc run` and `mlc step` make."""

from __future__ import annotations

import copy
import csv
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHURN = REPO / "specs" / "churn"
ETA = REPO / "specs" / "delivery-eta"

SCHEMA = {
    "customer_id": {"type": "string", "nullable": False, "unique": True},
    "signup_date": {"type": "datetime", "nullable": False},
    "tenure_months": {"type": "integer", "nullable": False, "min": 0, "max": 120},
    "monthly_usage_hours": {"type": "float", "min": 0},
    "last_contact_days": {"type": "integer", "min": 0, "max": 365},
    "plan": {"type": "category", "nullable": False, "allowed": ["basic", "standard", "premium"]},
    "plan_price": {"type": "float", "nullable": False, "min": 0},
    "support_tickets": {"type": "integer", "nullable": False, "min": 0},
    "region": {"type": "category", "nullable": False, "allowed": ["north", "south", "east", "west"]},
    "age_group": {"type": "category", "allowed": ["18-24", "25-34", "35-44", "45-54", "55+"]},
    "churned": {"type": "category", "nullable": False, "allowed": ["yes", "no"]},
}

TINY: dict[str, Any] = {
    "apiVersion": "mlc.dev/v1alpha1",
    "kind": "MLProject",
    "metadata": {"name": "tiny", "team": "t", "description": "A tiny churn model for tests."},
    "data": {
        "sources": [{"name": "customers", "uri": "data/customers.csv"}],
        "schema": SCHEMA,
        "checks": [{"check": "row_count", "min": 100},
                   {"check": "not_null", "column": "monthly_usage_hours", "min_rate": 0.9},
                   {"check": "range", "column": "plan_price", "min": 1, "max": 100},
                   {"check": "unique", "column": "customer_id"}],
        "label": {"column": "churned", "task": "classification", "positive": "yes"},
        "entity": "customer_id",
        "split": {"strategy": "stratified", "test_size": 0.25, "seed": 3},
    },
    "features": [
        {"columns": ["tenure_months", "last_contact_days", "support_tickets"], "type": "numeric",
         "impute": "median", "scale": "standard"},
        {"columns": ["monthly_usage_hours"], "type": "numeric", "clip": {"min": 0, "max": 200}, "log": True},
        {"columns": ["plan_price"], "type": "numeric", "scale": "robust"},
        {"columns": ["plan", "region", "age_group"], "type": "categorical", "max_categories": 10},
        {"columns": ["signup_date"], "type": "drop"},
    ],
    "training": {
        "experiment": "tiny", "seed": 42, "metrics": ["roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier"],
        "select_by": "roc_auc",
        "candidates": [
            {"name": "logreg", "estimator": "logistic_regression", "params": {"max_iter": 500},
             "grid": {"C": [0.1, 1.0]}},
            {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 15, "min_samples_leaf": 5}},
        ],
    },
    "gates": {
        "metrics": [{"metric": "roc_auc", "min": 0.6}],
        "champion": [{"metric": "roc_auc", "max_relative_drop": 0.01}],
        "slices": [{"column": "region", "metric": "roc_auc", "max_gap": 0.5, "min_rows": 30}],
    },
    "registry": {"model": "tiny-model"},
    "deployment": {"batch": {"schedule": "0 2 * * *", "input": {"uri": "data/to_score.csv"},
                             "output": {"uri": "predictions/scores.csv"}}},
    "monitoring": {"drift": {"features": ["tenure_months", "monthly_usage_hours", "last_contact_days"],
                             "method": "psi", "threshold": 0.2, "current": {"uri": "data/current.csv"}},
                   "retraining": {"on_drift": False}},
}


def churn_generator() -> Any:
    spec = importlib.util.spec_from_file_location("churn_generate_data_rt", CHURN / "generate_data.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_csv(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [c for c in rows[0] if c not in drop]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def make_project(root: Path, edit: Callable[[dict], None] | None = None, n: int = 800,
                 current_shift: float = 0.0) -> Path:
    """A tiny churn project: mlproject.yaml and data/ (customers, current window, rows to score)."""
    gen = churn_generator()
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "data" / "customers.csv", gen.make_rows(n, seed=7))
    write_csv(root / "data" / "current.csv", gen.make_rows(400, seed=8, start_id=100001, shift=current_shift))
    write_csv(root / "data" / "to_score.csv", gen.make_rows(50, seed=9, start_id=200001), drop=("churned",))
    write_spec(root, edit)
    return root


def write_spec(root: Path, edit: Callable[[dict], None] | None = None) -> Path:
    spec = copy.deepcopy(TINY)
    root.mkdir(parents=True, exist_ok=True)
    if edit:
        edit(spec)
    (root / "mlproject.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def context(root: Path, run_id: str, env: str = "local") -> Any:
    from mlc.plan import lower
    from mlc.runtime.context import make_context
    from mlc.spec.validate import load_spec

    sf = load_spec(root)
    plan = lower(sf.spec, sf.text, env)
    return make_context(sf, plan, run_id, local=True)


def run(ctx: Any, purpose: str = "train", only: tuple[str, ...] = (), until: str | None = None) -> dict:
    """Execute a pipeline's steps in plan order; returns {step name: StepResult}."""
    from mlc.runtime.steps import execute

    results = {}
    for st in ctx.plan.pipeline(purpose).steps:
        if only and st.name not in only:
            continue
        results[st.name] = execute(ctx, st)
        if st.name == until:
            break
    return results


def step(ctx: Any, name: str) -> Any:
    return ctx.plan.find_step(name)[1]
