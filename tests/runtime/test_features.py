"""features: the split the spec asks for, the label mapping, and a transformer fitted on the train split only."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import runtime_support as S

from mlc.errors import RunError
from mlc.runtime.features import Y, build_transformer, map_label, split


def _features(tmp_path: Path, edit=None) -> tuple:
    root = S.make_project(tmp_path / "p", edit)
    ctx = S.context(root, "r1")
    S.run(ctx, only=("ingest", "validate-data", "features"))
    out = Path(ctx.step_dir("features"))
    return ctx, out, pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "test.parquet")


def test_transformer_is_fitted_on_train_only(tmp_path: Path) -> None:
    _, out, train, test = _features(tmp_path)
    ct = pickle.loads((out / "transformer.pkl").read_bytes())
    scaler = ct.named_transformers_["0-numeric"].named_steps["scale"]
    cols = ["tenure_months", "last_contact_days", "support_tickets"]
    imputed = train[cols].fillna(train[cols].median())
    np.testing.assert_allclose(scaler.mean_, imputed.mean().to_numpy(), rtol=0, atol=1e-12)
    full = pd.concat([train, test])[cols]
    assert not np.allclose(scaler.mean_, full.fillna(full.median()).mean().to_numpy(), rtol=0, atol=1e-9)
    info = json.loads((out / "split.json").read_text())
    assert info["positive_class"] == "yes" and info["negative_class"] == "no"
    assert "3-categorical__region_north" in info["feature_names"]


def test_stratified_split_sizes_and_label_mapping(tmp_path: Path) -> None:
    ctx, _, train, test = _features(tmp_path)
    assert len(test) == 200 and len(train) == 600  # ceil(0.25 * 800)
    assert set(train[Y].unique()) == {0, 1}
    assert (train[Y] == (train["churned"] == "yes")).all()
    assert abs(train[Y].mean() - test[Y].mean()) < 0.01  # stratified on the label
    assert set(train["customer_id"]).isdisjoint(test["customer_id"])
    # Same seed, same split: sklearn's train_test_split with the spec's seed and stratification.
    from sklearn.model_selection import train_test_split

    data = pd.read_parquet(Path(ctx.step_dir("ingest")) / "data.parquet")
    _, t = train_test_split(data, test_size=0.25, random_state=3, stratify=data["churned"] == "yes")
    assert list(t["customer_id"]) == list(test["customer_id"])


def test_time_split_puts_the_newest_rows_in_test() -> None:
    from mlc.spec.models import Spec

    spec = Spec.model_validate({**S.TINY, "data": {**S.TINY["data"], "split": {
        "strategy": "time", "time_column": "signup_date", "test_size": 0.3}}})
    df = pd.DataFrame({"signup_date": pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-09", "2024-01-03",
                                                      "2024-01-07", "2024-01-02", "2024-01-08", "2024-01-04",
                                                      "2024-01-06", "2024-01-10"]), "x": range(10)})
    train, test = split(spec, df, pd.Series([0, 1] * 5))
    assert len(test) == 3 and len(train) == 7
    assert train["signup_date"].max() < test["signup_date"].min()
    assert list(test["signup_date"].dt.day) == [8, 9, 10]


def test_random_split_is_seeded(tmp_path: Path) -> None:
    from mlc.spec.models import Spec

    spec = Spec.model_validate({**S.TINY, "data": {**S.TINY["data"], "split": {"strategy": "random", "seed": 1}}})
    df = pd.DataFrame({"x": range(50)})
    a = split(spec, df, df["x"] % 2)[1]["x"].tolist()
    b = split(spec, df, df["x"] % 2)[1]["x"].tolist()
    assert a == b and len(a) == 10


def test_default_positive_class_is_the_larger_value_and_two_classes_required() -> None:
    from mlc.spec.models import Spec

    data = {**S.TINY["data"], "label": {"column": "churned", "task": "classification"}}
    spec = Spec.model_validate({**S.TINY, "data": data})
    y, pos = map_label(spec, pd.Series(["no", "yes", "no"], dtype="str"))
    assert pos == "yes" and y.tolist() == [0, 1, 0]
    with pytest.raises(RunError, match="exactly two classes"):
        map_label(spec, pd.Series(["a", "b", "c"], dtype="str"))


def test_an_integer_label_read_as_floats_matches_its_integer_positive_class() -> None:
    """An integer label column with a missing value arrives as float64 (1.0, 0.0): positive: 1 must still match."""
    from mlc.runtime.features import negative_class
    from mlc.spec.models import Spec

    for positive in (1, None):
        label = {"column": "churned", "task": "classification", **({"positive": positive} if positive else {})}
        spec = Spec.model_validate({**S.TINY, "data": {**S.TINY["data"], "label": label}})
        y_raw = pd.Series([0.0, 1.0, np.nan, 1.0], dtype="float64")
        y, pos = map_label(spec, y_raw)
        assert y.tolist() == [0, 1, 0, 1] and str(pos) == "1"
        assert negative_class(pos, y_raw) == "0"


def test_every_transform_kind_builds_and_transforms() -> None:
    from mlc.spec.models import Spec

    feats = [
        {"columns": ["a"], "type": "numeric", "impute": "zero", "scale": "minmax"},
        {"columns": ["b"], "type": "numeric", "impute": "mean", "bins": 4},
        {"columns": ["c"], "type": "categorical", "encode": "ordinal", "impute": "most_frequent"},
        {"columns": ["d"], "type": "passthrough"},
        {"columns": ["e"], "type": "custom", "transformer": "sklearn.preprocessing:PolynomialFeatures",
         "params": {"degree": 2, "include_bias": False}},
        {"columns": ["f"], "type": "drop"},
    ]
    spec = Spec.model_validate({**S.TINY, "features": feats})
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": [1.0, 2.0, 3.0, 4.0],
                       "c": pd.array(["x", None, "y", "x"], dtype="str"), "d": [1, 2, 3, 4],
                       "e": [1.0, 2.0, 3.0, 4.0], "f": [9, 9, 9, 9]})
    ct = build_transformer(spec).fit(df)
    out = ct.transform(df)
    names = list(ct.get_feature_names_out())
    np.testing.assert_allclose(out[:, names.index("0-numeric__a")], [0.2, 0.0, 0.6, 1.0])  # zero-imputed, minmax
    assert sum(n.startswith("1-numeric__b") for n in names) == 4  # one-hot quantile bins
    assert out[:, names.index("2-categorical__c")].tolist() == [0.0, 0.0, 1.0, 0.0]  # most frequent 'x' -> 0
    assert out[:, names.index("4-custom__e^2")].tolist() == [1.0, 4.0, 9.0, 16.0]
    assert not any("f" == n.split("__")[-1] for n in names)
    unseen = ct.transform(pd.DataFrame({**{k: v[:1] for k, v in df.items()},
                                        "c": pd.array(["zzz"], dtype="str")}))
    assert unseen[0, names.index("2-categorical__c")] == -1.0  # unknown category -> unknown_value


def test_bad_custom_transformer_path_is_a_run_error() -> None:
    from mlc.spec.models import Spec

    spec = Spec.model_validate({**S.TINY, "features": [{"columns": ["a"], "type": "custom",
                                                         "transformer": "nope.missing:Thing"}]})
    with pytest.raises(RunError, match="cannot import 'nope.missing:Thing'"):
        build_transformer(spec)
