"""A numpy twin of the fitted feature transformer, for serving small batches.

Why: a fitted ColumnTransformer spends ~6 ms per call in per-step validation and pandas indexing, whether it
transforms 1 row or 50; that overhead, not the model, bounds `mlc serve`'s latency. This module compiles the
fitted transformer that `runtime/features.py` builds (imputers, scalers, clip/log1p, quantile bins, one-hot and
ordinal encoders) into plain numpy on the request's columns, skipping the DataFrame entirely.

It is an optimisation only: ``compile_transformer`` returns None for anything it does not know (a custom
transformer, an unexpected setting), and the server checks the twin against sklearn on varied example rows
before using it (``verified``); on any difference it keeps sklearn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Columns = dict[str, list[Any]]
Op = Callable[[np.ndarray], np.ndarray]


class Unsupported(Exception):
    pass


def _numeric_op(step: Any) -> Op:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler

    if isinstance(step, FunctionTransformer):
        kw = step.kw_args or {}
        if step.func is None and not kw:  # what a fitted ColumnTransformer makes of "passthrough"
            return lambda X: X
        if step.func is np.clip:
            lo, hi = kw.get("a_min"), kw.get("a_max")
            return lambda X: np.clip(X, lo, hi)
        if step.func is np.log1p and not kw:
            return np.log1p
        raise Unsupported(f"function {step.func!r}")
    if isinstance(step, SimpleImputer):
        fill = np.asarray(step.statistics_, dtype="float64")
        if np.isnan(fill).any() or step.add_indicator:
            raise Unsupported("imputer that drops or adds columns")

        def impute(X: np.ndarray) -> np.ndarray:
            return np.where(np.isnan(X), fill, X)
        return impute
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None
        return lambda X: _affine(X, mean, scale)
    if isinstance(step, RobustScaler):
        return lambda X: _affine(X, step.center_ if step.with_centering else None,
                                 step.scale_ if step.with_scaling else None)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            raise Unsupported("MinMaxScaler(clip=True)")
        return lambda X: X * step.scale_ + step.min_
    if type(step).__name__ == "KBinsDiscretizer" and step.encode == "onehot-dense":
        return _bins(step)
    raise Unsupported(type(step).__name__)


def _affine(X: np.ndarray, center: Any, scale: Any) -> np.ndarray:
    if center is not None:
        X = X - center
    if scale is not None:
        X = X / scale
    return X


def _bins(step: Any) -> Op:
    edges = [e[1:-1] for e in step.bin_edges_]
    widths = [int(n) for n in step.n_bins_]
    offsets = np.cumsum([0, *widths[:-1]])

    def binned(X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], sum(widths)))
        for j, (e, w, off) in enumerate(zip(edges, widths, offsets)):
            idx = np.clip(np.searchsorted(e, X[:, j], side="right"), 0, w - 1)
            out[np.arange(X.shape[0]), off + idx] = 1.0
        return out
    return binned


def _categorical_op(steps: Sequence[Any]) -> Callable[[list[list[Any]]], np.ndarray]:
    """impute + encode on per-column value lists -> a float matrix."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer) or steps[0].add_indicator:
        raise Unsupported("categorical pipeline shape")
    fills = list(steps[0].statistics_)
    enc = steps[1]
    if isinstance(enc, OneHotEncoder):
        if enc.drop is not None or enc.handle_unknown not in ("ignore", "infrequent_if_exist"):
            raise Unsupported("one-hot setting")
        infrequent = getattr(enc, "infrequent_categories_", None) or [None] * len(enc.categories_)
        maps, widths, unknown = [], [], []
        for cats, infreq in zip(enc.categories_, infrequent):
            rare = set(infreq.tolist()) if infreq is not None else set()
            frequent = [c for c in cats.tolist() if c not in rare]
            m = {c: i for i, c in enumerate(frequent)}
            width = len(frequent) + (1 if rare else 0)
            m.update({c: width - 1 for c in rare})
            maps.append(m)
            widths.append(width)
            unknown.append(width - 1 if rare and enc.handle_unknown == "infrequent_if_exist" else None)
        offsets = np.cumsum([0, *widths[:-1]]).tolist()

        def onehot(cols: list[list[Any]]) -> np.ndarray:
            n = len(cols[0])
            out = np.zeros((n, sum(widths)))
            for j, values in enumerate(cols):
                m, off, unk, fill = maps[j], offsets[j], unknown[j], fills[j]
                for r, v in enumerate(values):
                    i = m.get(fill if v is None else v, unk)
                    if i is not None:
                        out[r, off + i] = 1.0
            return out
        return onehot
    if isinstance(enc, OrdinalEncoder):
        if enc.handle_unknown != "use_encoded_value":
            raise Unsupported("ordinal setting")
        maps = [{c: float(i) for i, c in enumerate(cats.tolist())} for cats in enc.categories_]
        unk_value = float(enc.unknown_value)

        def ordinal(cols: list[list[Any]]) -> np.ndarray:
            return np.array([[maps[j].get(fills[j] if v is None else v, unk_value) for j, v in enumerate(row)]
                             for row in zip(*cols)], dtype="float64").reshape(len(cols[0]), len(cols))
        return ordinal
    raise Unsupported(type(enc).__name__)


def compile_transformer(ct: Any, types: dict[str, str]) -> Callable[[Columns], np.ndarray] | None:
    """The fitted ColumnTransformer as one function of request columns, or None when a part is unknown."""
    from sklearn.pipeline import Pipeline

    parts: list[Callable[[Columns], np.ndarray]] = []
    try:
        for _name, trans, cols in ct.transformers_:
            cols = list(cols)
            if trans == "drop" or not cols:
                continue
            steps = [s for _, s in trans.steps] if isinstance(trans, Pipeline) else ([] if trans == "passthrough"
                                                                                    else [trans])
            if all(types.get(c) in ("integer", "float") for c in cols):
                ops = [_numeric_op(s) for s in steps]
                parts.append(_numeric_part(cols, ops))
            elif all(types.get(c) in ("category", "string") for c in cols) and steps:
                cat = _categorical_op(steps)
                parts.append(lambda columns, cols=cols, cat=cat: cat([columns[c] for c in cols]))
            else:
                raise Unsupported(f"columns {cols}")
    except (Unsupported, AttributeError, TypeError):
        return None

    def transform(columns: Columns) -> np.ndarray:
        return np.hstack([p(columns) for p in parts]) if parts else np.zeros((len(next(iter(columns.values()))), 0))
    return transform


def _numeric_part(cols: list[str], ops: list[Op]) -> Callable[[Columns], np.ndarray]:
    def part(columns: Columns) -> np.ndarray:
        X = np.array([[np.nan if v is None else v for v in columns[c]] for c in cols], dtype="float64").T
        for op in ops:
            X = op(X)
        return X
    return part


def verified(fast: Callable[[Columns], np.ndarray], ct: Any, frame: Callable[[Columns], Any],
             examples: Columns) -> bool:
    """True when the twin gives sklearn's output on ``examples`` (to float rounding)."""
    try:
        expected = np.asarray(ct.transform(frame(examples)), dtype="float64")
        got = fast(examples)
    except Exception:  # noqa: BLE001 - any failure means: keep sklearn
        return False
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=1e-9, atol=1e-12, equal_nan=True))
