"""features: split exactly as the spec says, map the label, and build the sklearn ColumnTransformer.

The transformer is fitted on the train split only. Every model pipeline gets an unfitted clone of the same
transformer (``build_transformer``) and refits it on the same train rows inside its own Pipeline, so the model
that is registered scores raw rows and nothing about the test split leaks into training.
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.context import StepContext, StepResult
from mlc.spec.models import Label, Spec

if TYPE_CHECKING:
    import pandas as pd

Y = "__y__"  # the mapped label column in train/test parquet (1 = positive class for classification)
TRAIN, TEST, SPLIT = "train.parquet", "test.parquet", "split.json"
MISSING = "__missing__"


def import_path(path: str) -> Any:
    """Resolve 'package.module:Name' with an error that says what was wrong."""
    mod, _, name = path.partition(":")
    if not mod or not name:
        raise RunError(f"'{path}' is not an import path; expected 'package.module:Name'")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as e:
        raise RunError(f"cannot import '{path}': {e}") from e


# ----------------------------------------------------------------------------- label and split
def positive_class(label: Label, values: pd.Series) -> Any:
    """The spec's positive class, or the larger of the two sorted label values."""
    if label.positive is not None:
        return label.positive
    uniq = sorted(values.dropna().unique().tolist())
    if not uniq:
        return None
    top = uniq[-1]
    return int(top) if isinstance(top, float) and top.is_integer() else top


def class_key(value: Any) -> str:
    """One spelling per class: an integer label column with missing values is read as floats, so 1.0 is 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def negative_class(pos: Any, y: pd.Series) -> str:
    return next(v for v in sorted({class_key(v) for v in y.dropna().unique().tolist()}) if v != class_key(pos))


def map_label(spec: Spec, y: pd.Series) -> tuple[pd.Series, Any]:
    import numpy as np

    label = spec.data.label
    if label.task == "regression":
        return y.astype("float64"), None
    pos = positive_class(label, y)
    uniq = sorted({class_key(v) for v in y.dropna().unique().tolist()})
    if len(uniq) != 2:
        raise RunError(f"label '{label.column}' must have exactly two classes for binary classification, "
                       f"found {len(uniq)}: {uniq[:10]}")
    if class_key(pos) not in uniq:
        raise RunError(f"the positive class '{pos}' does not occur in label '{label.column}' (values: {uniq})")
    return (y.map(class_key, na_action="ignore") == class_key(pos)).astype(np.int64), pos


def split(spec: Spec, df: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test rows. time: the newest ``ceil(test_size * n)`` rows (sklearn's rounding) are the test set."""
    from sklearn.model_selection import train_test_split

    sp = spec.data.split
    if sp.strategy == "time":
        assert sp.time_column
        order = df[sp.time_column].argsort(kind="mergesort")
        ordered = df.iloc[order]
        n_test = math.ceil(sp.test_size * len(df))
        return ordered.iloc[: len(df) - n_test], ordered.iloc[len(df) - n_test:]
    stratify = y if sp.strategy == "stratified" else None
    try:
        train, test = train_test_split(df, test_size=sp.test_size, random_state=sp.seed, stratify=stratify)
    except ValueError as e:
        raise RunError(f"cannot split the data as data.split says ({sp.strategy}): {e}") from e
    return train, test


# ----------------------------------------------------------------------------- transformer
def _numeric(f: Any) -> Any:
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        MinMaxScaler,
        RobustScaler,
        StandardScaler,
    )

    steps: list[tuple[str, Any]] = []
    if f.clip is not None:
        steps.append(("clip", FunctionTransformer(np.clip, kw_args={"a_min": f.clip.min, "a_max": f.clip.max},
                                                  feature_names_out="one-to-one")))
    if f.log:
        steps.append(("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")))
    if f.impute != "none":
        strategy = "constant" if f.impute == "zero" else f.impute
        # an int fill value casts to both int64 (non-nullable integers) and float64 columns; 0.0 does not
        steps.append(("impute", SimpleImputer(strategy=strategy, fill_value=0 if f.impute == "zero" else None)))
    if f.bins:
        steps.append(("bins", KBinsDiscretizer(n_bins=f.bins, encode="onehot-dense", strategy="quantile",
                                               quantile_method="averaged_inverted_cdf")))
    elif f.scale != "none":
        steps.append(("scale", {"standard": StandardScaler, "minmax": MinMaxScaler,
                                "robust": RobustScaler}[f.scale]()))
    return Pipeline(steps) if steps else "passthrough"


def _categorical(f: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    imp = (SimpleImputer(strategy="constant", fill_value=MISSING) if f.impute == "constant"
           else SimpleImputer(strategy="most_frequent"))
    if f.encode == "ordinal":
        enc: Any = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    else:
        enc = OneHotEncoder(max_categories=f.max_categories, handle_unknown="infrequent_if_exist",
                            sparse_output=False)
    return Pipeline([("impute", imp), ("encode", enc)])


def build_transformer(spec: Spec) -> Any:
    """The unfitted ColumnTransformer for spec.features; one transformer per feature group, in spec order."""
    from sklearn.compose import ColumnTransformer

    parts = []
    for i, f in enumerate(spec.features):
        name = f"{i}-{f.type}"
        if f.type == "drop":
            continue
        if f.type == "numeric":
            parts.append((name, _numeric(f), list(f.columns)))
        elif f.type == "categorical":
            parts.append((name, _categorical(f), list(f.columns)))
        elif f.type == "passthrough":
            parts.append((name, "passthrough", list(f.columns)))
        elif f.type == "custom":
            cls = import_path(f.transformer)
            try:
                parts.append((name, cls(**f.params), list(f.columns)))
            except TypeError as e:
                raise RunError(f"features[{i}]: {f.transformer}({f.params}) failed: {e}") from e
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True)


def input_names(ctx: StepContext) -> list[str]:
    return [c.name for c in ctx.plan.inputs]


# ----------------------------------------------------------------------------- step
def features(ctx: StepContext, step: Step) -> StepResult:
    spec = ctx.plan.spec
    df = A.read_parquet(f"{ctx.step_dir('ingest')}/data.parquet", ctx.storage_options)
    label = spec.data.label.column
    keep = df[df[label].notna()].copy()
    y, pos = map_label(spec, keep[label])
    keep[Y] = y
    train, test = split(spec, keep, keep[Y])
    names = input_names(ctx)
    transformer = build_transformer(spec)
    try:
        transformer.fit(train[names], train[Y])
    except (ValueError, TypeError) as e:
        raise RunError(f"fitting the feature transformer on the train split failed: {e}") from e
    out = ctx.out_dir(step.name)
    A.write_table(f"{out}/{TRAIN}", train.reset_index(drop=True), "parquet", ctx.storage_options)
    A.write_table(f"{out}/{TEST}", test.reset_index(drop=True), "parquet", ctx.storage_options)
    A.write_pickle(f"{out}/transformer.pkl", transformer, ctx.storage_options)
    info = {"strategy": spec.data.split.strategy, "seed": spec.data.split.seed, "train_rows": len(train),
            "test_rows": len(test), "dropped_unlabelled": int(len(df) - len(keep)), "inputs": names,
            "positive_class": pos, "negative_class": negative_class(pos, keep[label]) if pos is not None else None,
            "feature_names": [str(n) for n in transformer.get_feature_names_out()]}
    if spec.data.label.task == "classification":
        info["train_positive_rate"] = float(train[Y].mean())
        info["test_positive_rate"] = float(test[Y].mean())
    A.write_json(f"{out}/{SPLIT}", info, ctx.storage_options)
    return StepResult(metrics={"train_rows": len(train), "test_rows": len(test),
                               "features": len(info["feature_names"])},
                      message=f"train {len(train)} / test {len(test)} rows, {len(info['feature_names'])} features")
