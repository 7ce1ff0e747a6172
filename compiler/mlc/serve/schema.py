"""Request decoding for `mlc serve`: V2 tensors and /predict rows -> validated columns.

Every request is checked against the spec's serving schema (``plan.inputs``) before it reaches the model, so a
bad request is always the client's 4xx and never the model's 5xx. Two statuses, as KServe and MLServer use them:

* 400: the body is not a well-formed request (not JSON, not an object, tensor shape and data disagree);
* 422: the request is well-formed but breaks the schema (missing, unknown or null column, wrong type,
  a value outside ``allowed``).

Decoding yields ``{column: [python values]}``: plain lists keep single-row requests cheap, and the batcher
concatenates many of them into one DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from mlc.plan import InputColumn

# V2 datatypes of each schema type, first one is what metadata advertises.
V2_TYPES: dict[str, tuple[str, ...]] = {
    "integer": ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"),
    "float": ("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"),
    "boolean": ("BOOL",),
    "string": ("BYTES",),
    "category": ("BYTES",),
    "datetime": ("BYTES",),
}
ROWS_CONTENT_TYPE = "json"  # one BYTES input, each element a JSON object holding one row


class InputError(Exception):
    """The client's fault; ``status`` is 400 (malformed) or 422 (schema)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Columns = dict[str, list[Any]]


class Schema:
    """The serving schema, with the lookups the hot path needs precomputed."""

    def __init__(self, inputs: Sequence[InputColumn]) -> None:
        self.inputs = tuple(inputs)
        self.by_name = {c.name: c for c in self.inputs}
        self.names = tuple(c.name for c in self.inputs)
        self._allowed = {c.name: frozenset(c.allowed) for c in self.inputs if c.allowed is not None}

    # ------------------------------------------------------------------ values
    def check_value(self, col: InputColumn, value: Any, row: int | None) -> Any:
        """One cell: return the value the model gets, or raise a 422 naming the column and row."""
        if value is None:
            if col.nullable:
                return None
            raise InputError(422, f"column '{col.name}'{_at(row)}: null is not allowed (the column is not "
                                  "nullable)")
        t = col.type
        kind = type(value)
        if t == "float":
            if kind is float or kind is int:
                return self._bounded(col, float(value), row)
        elif t == "integer":
            if kind is int:
                return self._bounded(col, value, row)
            if kind is float and value.is_integer():
                return self._bounded(col, int(value), row)
        elif t in ("category", "string"):
            if kind is str:
                allowed = self._allowed.get(col.name)
                if allowed is not None and value not in allowed:
                    raise InputError(422, f"column '{col.name}'{_at(row)}: {value!r} is not an allowed value; "
                                          f"expected one of {', '.join(map(str, col.allowed or ()))}")
                return value
        elif t == "boolean":
            if kind is bool:
                return value
        elif t == "datetime" and kind is str:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise InputError(422, f"column '{col.name}'{_at(row)}: {value!r} is not an ISO 8601 "
                                      "date-time") from None
            return value
        raise InputError(422, f"column '{col.name}'{_at(row)}: expected {_type_word(t)}, got "
                              f"{_json_type(value)} {_short(value)}")

    def varied_columns(self, n: int) -> Columns:
        """``n`` rows that pass this schema and differ: every allowed value, nulls where allowed, numbers
        across the range. Used to check the fast transform against sklearn, and to warm the model up."""
        def value(c: InputColumn, i: int) -> Any:
            if c.nullable and i % 5 == 4:
                return None
            if c.allowed:
                return c.allowed[i % len(c.allowed)]
            if c.type in ("integer", "float"):
                lo = c.min if c.min is not None else (c.max - 100 if c.max is not None else -50.0)
                hi = c.max if c.max is not None else lo + 100
                v = lo + (hi - lo) * ((i * 37) % 101) / 100
                return int(v) if c.type == "integer" else float(v)
            return {"boolean": i % 2 == 0, "datetime": f"2000-01-{1 + i % 28:02d}T00:00:00"}.get(c.type, f"v{i % 7}")

        return {c.name: [value(c, i) for i in range(n)] for c in self.inputs}

    @staticmethod
    def _bounded(col: InputColumn, value: float, row: int | None) -> Any:
        if (col.min is not None and value < col.min) or (col.max is not None and value > col.max):
            lo = "-inf" if col.min is None else f"{col.min:g}"
            hi = "inf" if col.max is None else f"{col.max:g}"
            raise InputError(422, f"column '{col.name}'{_at(row)}: {value!r} is outside the schema's range "
                                  f"[{lo}, {hi}]")
        return value

    def check_names(self, names: Iterable[str]) -> None:
        given = set(names)
        missing = [n for n in self.names if n not in given]
        unknown = sorted(given - self.by_name.keys())
        parts = []
        if missing:
            parts.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(the model takes {', '.join(self.names)})")
        if parts:
            raise InputError(422, "; ".join(parts))

    # ------------------------------------------------------------------ rows
    def row(self, obj: Any) -> Columns:
        """/predict: one JSON object of named features."""
        if not isinstance(obj, dict):
            raise InputError(400, f"expected a JSON object of named features, got {_json_type(obj)}")
        self.check_names(obj)
        by_name = self.by_name
        return {n: [self.check_value(by_name[n], obj[n], None)] for n in self.names}

    def rows(self, objs: Sequence[Any]) -> Columns:
        cols: Columns = {n: [] for n in self.names}
        for i, obj in enumerate(objs):
            if isinstance(obj, (str, bytes)):
                try:
                    obj = orjson.loads(obj)
                except orjson.JSONDecodeError as e:
                    raise InputError(400, f"row {i}: not a JSON object ({e})") from None
            if not isinstance(obj, dict):
                raise InputError(400, f"row {i}: expected a JSON object, got {_json_type(obj)}")
            try:
                self.check_names(obj)
            except InputError as e:
                raise InputError(422, f"row {i}: {e.message}") from None
            for n in self.names:
                cols[n].append(self.check_value(self.by_name[n], obj[n], i))
        return cols

    # ------------------------------------------------------------------ v2
    def v2(self, req: Any) -> tuple[Columns, int]:
        """An Open Inference Protocol v2 request: one tensor per column (MLServer's ``pd`` content type), or
        one BYTES tensor of JSON rows (``parameters.content_type: json``)."""
        if not isinstance(req, dict):
            raise InputError(400, f"expected a JSON object with 'inputs', got {_json_type(req)}")
        inputs = req.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InputError(400, "'inputs' must be a non-empty list of tensors")
        for i, t in enumerate(inputs):
            if not isinstance(t, dict):
                raise InputError(400, f"inputs[{i}]: expected a tensor object, got {_json_type(t)}")
        if len(inputs) == 1 and _content_type(inputs[0]) == ROWS_CONTENT_TYPE:
            data = _tensor_data(inputs[0], 0)
            if not data:
                raise InputError(400, f"input '{inputs[0].get('name')}': no rows")
            return self.rows(data), len(data)
        cols: Columns = {}
        n_rows: int | None = None
        first = ""
        for i, t in enumerate(inputs):
            name = t.get("name")
            if not isinstance(name, str):
                raise InputError(400, f"inputs[{i}]: 'name' must be a string")
            if name in cols:
                raise InputError(400, f"input '{name}' appears twice")
            data = _tensor_data(t, i)
            if n_rows is None:
                n_rows, first = len(data), name
            elif len(data) != n_rows:
                raise InputError(400, f"input '{name}' has {len(data)} rows but '{first}' has {n_rows}; every "
                                      "column tensor must have the same length")
            cols[name] = data  # values checked below, once the names are known to be right
        self.check_names(cols)
        if not n_rows:
            raise InputError(400, "the tensors hold no rows")
        for t in inputs:
            col = self.by_name[t["name"]]
            dt = t.get("datatype")
            if dt is not None and dt not in V2_TYPES[col.type]:
                raise InputError(422, f"input '{col.name}': datatype {dt} does not fit a {col.type} column; "
                                      f"use {V2_TYPES[col.type][0]}")
            check = self.check_value
            cols[col.name] = [check(col, v, r) for r, v in enumerate(cols[col.name])]
        return {n: cols[n] for n in self.names}, n_rows

    def v2_metadata_inputs(self) -> list[dict[str, Any]]:
        out = []
        for c in self.inputs:
            meta: dict[str, Any] = {"name": c.name, "datatype": V2_TYPES[c.type][0], "shape": [-1]}
            params: dict[str, Any] = {"type": c.type, "nullable": c.nullable}
            if c.type in ("string", "category", "datetime"):
                params["content_type"] = "str"
            if c.allowed is not None:
                params["allowed"] = list(c.allowed)
            if c.min is not None:
                params["min"] = c.min
            if c.max is not None:
                params["max"] = c.max
            meta["parameters"] = params
            out.append(meta)
        return out


def _tensor_data(t: Mapping[str, Any], i: int) -> list[Any]:
    name = t.get("name", f"inputs[{i}]")
    data = t.get("data")
    if not isinstance(data, list):
        raise InputError(400, f"input '{name}': 'data' must be a list")
    if data and isinstance(data[0], list):  # row-major nested form, e.g. shape [N, 1]
        flat: list[Any] = []
        for d in data:
            if not isinstance(d, list):
                raise InputError(400, f"input '{name}': 'data' mixes nested and flat values")
            flat.extend(d)
        data = flat
    shape = t.get("shape")
    if shape is not None:
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
                or not all(type(s) is int and s >= 0 for s in shape) or (len(shape) == 2 and shape[1] != 1)):
            raise InputError(400, f"input '{name}': shape {shape!r} is not [N] or [N, 1]")
        if shape[0] != len(data):
            raise InputError(400, f"input '{name}': shape {shape!r} says {shape[0]} values but 'data' holds "
                                  f"{len(data)}")
    return data


def _content_type(t: Mapping[str, Any]) -> str | None:
    p = t.get("parameters")
    return p.get("content_type") if isinstance(p, dict) else None


def _at(row: int | None) -> str:
    return "" if row is None else f" row {row}"


def _type_word(t: str) -> str:
    return {"float": "a number", "integer": "an integer", "boolean": "true or false", "string": "a string",
            "category": "a string", "datetime": "an ISO 8601 date-time string"}[t]


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _short(v: Any) -> str:
    s = orjson.dumps(v).decode() if isinstance(v, (dict, list, str, int, float, bool)) else repr(v)
    return s if len(s) <= 40 else s[:37] + "..."
