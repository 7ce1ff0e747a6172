"""The numpy twin of the fitted feature transformer gives sklearn's output exactly, for every transform the
spec language has, and declines (None) what it does not know, so serving falls back to sklearn."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlc.plan import lower
from mlc.runtime.data import cast_frame
from mlc.runtime.features import build_transformer
from mlc.serve.fastpath import compile_transformer
from mlc.spec.loader import load_text
from mlc.spec.validate import validate_loaded

SPECS = Path(__file__).resolve().parents[2] / "specs"


def spec_of(name: str, edit=None):
    raw = yaml.safe_load((SPECS / name / "mlproject.yaml").read_text())
    if edit:
        edit(raw)
    text = yaml.safe_dump(raw, sort_keys=False)
    return validate_loaded(load_text(text, "mlproject.yaml")), text


def columns_of(df: pd.DataFrame, types: dict[str, str]) -> dict[str, list]:
    """Request columns as the server decodes them: Python values, None for missing."""
    out = {}
    for name, t in types.items():
        vals = []
        for v in df[name].tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                vals.append(None)
            elif t == "integer":
                vals.append(int(v))
            elif t == "float":
                vals.append(float(v))
            else:
                vals.append(str(v))
        out[name] = vals
    return out


def check_twin(name: str, data: str, edit=None, extra_rows: pd.DataFrame | None = None) -> None:
    spec, text = spec_of(name, edit)
    plan = lower(spec, text, "local")
    raw = pd.read_csv(SPECS / name / "data" / data, dtype=str)
    df, _, _ = cast_frame(raw, spec.data.schema_)
    ct = build_transformer(spec).fit(df.iloc[:3000])
    types = {c.name: c.type for c in plan.inputs}
    fast = compile_transformer(ct, types)
    assert fast is not None
    rows = df.iloc[3000:3400] if extra_rows is None else pd.concat([df.iloc[3000:3200], extra_rows])
    expected = ct.transform(rows)
    got = fast(columns_of(rows, types))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_churn_features() -> None:
    check_twin("churn", "customers.csv")


def test_regression_features_with_quantile_bins() -> None:
    check_twin("delivery-eta", "orders.csv")


def test_every_other_transform() -> None:
    def edit(raw: dict) -> None:
        raw["features"] = [
            {"columns": ["tenure_months"], "type": "numeric", "impute": "zero", "scale": "minmax"},
            {"columns": ["last_contact_days"], "type": "numeric", "impute": "mean", "scale": "none", "bins": 4},
            {"columns": ["support_tickets"], "type": "passthrough"},
            {"columns": ["plan_price"], "type": "numeric", "clip": {"min": 5, "max": 30}, "log": True},
            {"columns": ["plan", "region"], "type": "categorical", "encode": "ordinal", "impute": "most_frequent"},
            {"columns": ["age_group"], "type": "categorical", "max_categories": 3},
            {"columns": ["signup_date", "monthly_usage_hours"], "type": "drop"},
        ]
        raw["monitoring"]["drift"]["features"] = ["tenure_months"]

    # unseen categories: an infrequent bucket for one-hot, unknown_value for ordinal
    odd = pd.DataFrame({"tenure_months": [1], "last_contact_days": [2.0], "support_tickets": [0],
                        "plan_price": [9.0], "plan": ["platinum"], "region": ["mars"], "age_group": ["99+"]})
    check_twin("churn", "customers.csv", edit, extra_rows=odd)


def test_a_custom_transformer_is_left_to_sklearn() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import PolynomialFeatures

    ct = ColumnTransformer([("poly", PolynomialFeatures(), ["a"])]).fit(pd.DataFrame({"a": [1.0, 2.0]}))
    assert compile_transformer(ct, {"a": "float"}) is None
    ct2 = copy.deepcopy(ct)
    assert compile_transformer(ct2, {"a": "datetime"}) is None


def test_served_model_uses_the_twin_only_when_it_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from mlc.serve.model import ServedModel
    from mlc.serve.schema import Schema

    spec, text = spec_of("churn")
    plan = lower(spec, text, "local")
    raw = pd.read_csv(SPECS / "churn" / "data" / "customers.csv", dtype=str)
    df, _, _ = cast_frame(raw, spec.data.schema_)
    y = (df["churned"] == "yes").astype(int)
    pipe = Pipeline([("features", build_transformer(spec)), ("model", LogisticRegression(max_iter=500))])
    pipe.fit(df.iloc[:3000], y.iloc[:3000])
    model = ServedModel(name="churn-classifier", version="1", task="classification", schema=Schema(plan.inputs),
                        alias="champion", run_id="r", positive_class="yes")
    model.set_pipeline(pipe)
    cols = columns_of(df.iloc[3000:3100], {c.name: c.type for c in plan.inputs})
    before = model.predict(cols)
    assert model.accelerate() and model.fast is not None
    after = model.predict(cols)
    np.testing.assert_allclose(after["score"], before["score"], rtol=1e-9)
    assert after["label"] == before["label"]
    np.testing.assert_allclose(after["score"], pipe.predict_proba(model.frame(cols))[:, 1], rtol=1e-9)

    # a twin that disagrees with sklearn is never used
    broken = ServedModel(name="churn-classifier", version="1", task="classification",
                         schema=Schema(plan.inputs), alias="champion", run_id="r", positive_class="yes")
    broken.set_pipeline(pipe)
    import mlc.serve.fastpath as fp

    real = fp.compile_transformer
    monkeypatch.setattr(fp, "compile_transformer", lambda ct, types: (lambda c: real(ct, types)(c) + 1.0))
    assert not broken.accelerate() and broken.fast is None
