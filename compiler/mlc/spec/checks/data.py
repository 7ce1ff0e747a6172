"""Checks of the data and features sections: every column named exists, belongs to one feature group and
fits its transform; bounds, label, split and version pins make sense.

    E200 unknown column     E201 column in two feature groups     E202 label/entity used as a feature
    E205 bad positive class E206 split does not fit               E211 version pin
    E221 column bounds      E222 transform does not fit the column type
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.spec.checks.common import closest, diag
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec


def _column_refs(spec: Spec) -> Iterator[tuple[tuple, str]]:
    """Every place a spec names a column, as (path, column)."""
    d = spec.data
    yield ("data", "label", "column"), d.label.column
    if d.entity is not None:
        yield ("data", "entity"), d.entity
    if d.split.time_column is not None:
        yield ("data", "split", "time_column"), d.split.time_column
    for i, c in enumerate(d.checks):
        col = getattr(c, "column", None)
        if col is not None:
            yield ("data", "checks", i, "column"), col
    for i, f in enumerate(spec.features):
        for j, col in enumerate(f.columns):
            yield ("features", i, "columns", j), col
    for i, g in enumerate(spec.gates.slices):
        yield ("gates", "slices", i, "column"), g.column
    if spec.monitoring.drift:
        for j, col in enumerate(spec.monitoring.drift.features):
            yield ("monitoring", "drift", "features", j), col


def columns_exist(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    schema = spec.data.schema_
    for path, col in _column_refs(spec):
        if col not in schema:
            close = closest(col, schema)
            hint = f"did you mean '{close}'?" if close else "declare it under data.schema"
            yield diag(loaded, "E200", path, f"column '{col}' is not in data.schema", hint)


def feature_columns(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    first: dict[str, int] = {}
    label, entity = spec.data.label.column, spec.data.entity
    numeric_types = {"integer", "float", "boolean"}
    for i, f in enumerate(spec.features):
        for j, col in enumerate(f.columns):
            path = ("features", i, "columns", j)
            if col in first and first[col] != i:
                yield diag(
                    loaded,
                    "E201",
                    path,
                    f"column '{col}' is already in features[{first[col]}]",
                    "each column belongs to exactly one feature group",
                )
            first.setdefault(col, i)
            if f.type == "drop":
                continue
            if col == label:
                yield diag(
                    loaded,
                    "E202",
                    path,
                    f"the label '{col}' is used as a feature",
                    "remove it from the features: the model would see the answer",
                )
            elif col == entity:
                yield diag(
                    loaded,
                    "E202",
                    path,
                    f"the entity column '{col}' is used as a feature",
                    "an id never generalises; remove it or put it in a `type: drop` group",
                )
            ctype = spec.data.schema_[col].type if col in spec.data.schema_ else None
            if f.type == "numeric" and ctype is not None and ctype not in numeric_types:
                yield diag(
                    loaded,
                    "E222",
                    path,
                    f"numeric transform on column '{col}' of type {ctype}",
                    "use `type: categorical` for category and string columns",
                )


def column_bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for name, c in spec.data.schema_.items():
        if c.min is not None and c.max is not None and c.min > c.max:
            yield diag(
                loaded,
                "E221",
                ("data", "schema", name, "min"),
                f"min {c.min:g} is above max {c.max:g}",
                "swap the bounds",
            )
        if (c.min is not None or c.max is not None) and c.type not in ("integer", "float"):
            yield diag(
                loaded,
                "E221",
                ("data", "schema", name),
                f"min/max on a {c.type} column",
                "bounds apply to integer and float columns; use `allowed` for the others",
            )
    for i, chk in enumerate(spec.data.checks):
        lo, hi = getattr(chk, "min", None), getattr(chk, "max", None)
        if chk.check == "range":
            if lo is None and hi is None:
                yield diag(loaded, "E221", ("data", "checks", i), "a range check needs min, max or both")
            elif lo is not None and hi is not None and lo > hi:
                yield diag(
                    loaded,
                    "E221",
                    ("data", "checks", i, "min"),
                    f"min {lo:g} is above max {hi:g}",
                    "swap the bounds",
                )


def label_and_split(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    label, split = spec.data.label, spec.data.split
    col = spec.data.schema_.get(label.column)
    if label.task == "regression":
        if label.positive is not None:
            yield diag(
                loaded,
                "E205",
                ("data", "label", "positive"),
                "a regression label has no positive class",
                "remove `positive:` or use `task: classification`",
            )
        if col is not None and col.type not in ("integer", "float"):
            yield diag(
                loaded,
                "E205",
                ("data", "label", "task"),
                f"regression on column '{label.column}' of type {col.type}",
                "regression needs an integer or float label; did you mean `task: classification`?",
            )
    elif label.positive is not None and col is not None and col.allowed is not None:
        allowed = [str(v).lower() if isinstance(v, bool) else str(v) for v in col.allowed]
        pos = str(label.positive).lower() if isinstance(label.positive, bool) else str(label.positive)
        if pos not in allowed:
            yield diag(
                loaded,
                "E205",
                ("data", "label", "positive"),
                f"positive class {label.positive!r} is not one of the label's allowed values",
                f"expected one of: {', '.join(allowed)}",
            )
    if split.strategy == "stratified" and label.task != "classification":
        yield diag(
            loaded,
            "E206",
            ("data", "split", "strategy"),
            "a stratified split needs a classification label",
            "use `strategy: random` or `strategy: time` for regression",
        )
    if split.strategy == "time" and split.time_column is None:
        yield diag(
            loaded,
            "E206",
            ("data", "split", "strategy"),
            "a time split needs `time_column`",
            "add `time_column:` naming a datetime column",
        )
    if split.strategy != "time" and split.time_column is not None:
        yield diag(
            loaded,
            "E206",
            ("data", "split", "time_column"),
            f"time_column is only used with `strategy: time`, not {split.strategy}",
            "set `strategy: time` or remove time_column",
        )


def pins(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for i, s in enumerate(spec.data.sources):
        if s.pin is None:
            continue
        p = ("data", "sources", i, "pin")
        if (s.pin.sha256 is None) == (s.pin.dvc is None):
            yield diag(
                loaded,
                "E211",
                p,
                "a pin needs exactly one of `sha256` and `dvc`",
                "sha256: the file's hash (`sha256sum FILE`); dvc: the path of its .dvc pointer file",
            )
        if s.pin.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", s.pin.sha256):
            yield diag(
                loaded,
                "E211",
                p + ("sha256",),
                "sha256 must be 64 hexadecimal characters",
                "compute it with `sha256sum FILE`",
            )
        if s.pin.dvc is not None and not s.pin.dvc.endswith(".dvc"):
            yield diag(
                loaded,
                "E211",
                p + ("dvc",),
                f"a DVC pointer file ends with .dvc, got {s.pin.dvc!r}",
                f"did you mean '{s.pin.dvc}.dvc'?",
            )
