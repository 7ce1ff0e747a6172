"""Request decoding for `mlc serve`: V2 tensors and /predict rows -> validated columns.

Every request is checked against the spec's serving schema (``plan.inputs``) before it reaches the model, so a
bad request is always the client's 4xx and never the model's 5xx. Two statuses, as KServe and MLServer use them:

* 400: the body is not a well-formed request (not JSON, not an object, tensor shape and data disagree);
* 422: the request is well-formed but breaks the schema (missing or unknown column, wrong type or V2 datatype,
  null in a non-nullable column, a value outside ``allowed`` or the range); the body lists every problem.

Decoding yields ``{column: [python values]}``: plain lists keep single-row requests cheap, and the batcher
concatenates many of them into one DataFrame.
"""

from __future__ import annotations

import difflib
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


MAX_PROBLEMS = 100  # problems listed in a 422 body; the rest are only counted (problems_omitted)
SUMMARY_PROBLEMS = 10  # problems spelt out in the body's one-line "error"


class InputError(Exception):
    """The client's fault; ``status`` is 400 (malformed), 413 (too large) or 422 (schema).

    A 422 carries every problem found (``problems``), each ``{"column", "row", "check", "message"}``, so a client
    fixes a request in one round trip, as `mlc validate` reports every error of a spec in one run.
    """

    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None,
                 omitted: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems
        self.omitted = omitted

    def body(self) -> dict[str, Any]:
        if self.problems is None:
            return {"error": self.message}
        return {"error": self.message, "problems": self.problems, "problems_omitted": self.omitted}


class _Bad(Exception):
    """One cell breaks the schema; becomes a problem of the 422."""

    def __init__(self, check: str, message: str) -> None:
        self.check = check
        self.message = message


Columns = dict[str, list[Any]]
Problem = tuple[int, int, str, dict[str, Any]]  # sort key (row, column position, name) and the problem


class Schema:
    """The serving schema, with the lookups the hot path needs precomputed.

    Each decoder runs a strict pass that stops at the first problem (all a good request pays for), and only when
    that pass fails, a second pass that collects every problem of the request for the 422.
    """

    def __init__(self, inputs: Sequence[InputColumn]) -> None:
        self.inputs = tuple(inputs)
        self.by_name = {c.name: c for c in self.inputs}
        self.names = tuple(c.name for c in self.inputs)
        self._pos = {n: i for i, n in enumerate(self.names)}
        self._allowed = {c.name: frozenset(c.allowed) for c in self.inputs if c.allowed is not None}

    # ------------------------------------------------------------------ values
    def check_value(self, col: InputColumn, value: Any, row: int | None) -> Any:
        """One cell: return the value the model gets, or raise a 422 naming the column and row."""
        try:
            return self._value(col, value)
        except _Bad as b:
            raise self._error([self._problem(b.check, col.name, row, b.message)]) from None

    def _value(self, col: InputColumn, value: Any) -> Any:
        if value is None:
            if col.nullable:
                return None
            raise _Bad("nullable", "null is not allowed (the column is not nullable)")
        t = col.type
        kind = type(value)
        if t == "float":
            if kind is float or kind is int:
                return self._bounded(col, float(value))
        elif t == "integer":
            if kind is int:
                return self._bounded(col, value)
            if kind is float and value.is_integer():
                return self._bounded(col, int(value))
        elif t in ("category", "string"):
            if kind is str:
                allowed = self._allowed.get(col.name)
                if allowed is not None and value not in allowed:
                    raise _Bad("allowed", f"{_quoted(value)} is not an allowed value (expected one of "
                                          f"{', '.join(map(str, col.allowed or ()))})")
                return value
        elif t == "boolean":
            if kind is bool:
                return value
        elif t == "datetime" and kind is str:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise _Bad("type", f"{_quoted(value)} is not an ISO 8601 date-time") from None
            return value
        raise _Bad("type", f"expected {_type_word(t)}, got {_json_type(value)} {_short(value)}")

    @staticmethod
    def _bounded(col: InputColumn, value: float) -> Any:
        if (col.min is not None and value < col.min) or (col.max is not None and value > col.max):
            lo = "-inf" if col.min is None else f"{col.min:g}"
            hi = "inf" if col.max is None else f"{col.max:g}"
            raise _Bad("range", f"{value!r} is outside the schema's range [{lo}, {hi}]")
        return value

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

    # ------------------------------------------------------------------ problems
    def _problem(self, check: str, column: str, row: int | None, message: str) -> Problem:
        where = f"column '{column}'" + ("" if row is None else f" row {row}")
        return (-1 if row is None else row, self._pos.get(column, len(self.names)), column,
                {"column": column, "row": row, "check": check, "message": f"{where}: {message}"})

    def _name_problems(self, given: Iterable[str], row: int | None) -> list[Problem]:
        given = set(given)
        out = [self._problem("missing", n, row, "missing (the model needs every input column)")
               for n in self.names if n not in given]
        for u in sorted(given - self.by_name.keys()):
            close = difflib.get_close_matches(u, self.names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"it takes {', '.join(self.names)}"
            out.append(self._problem("unknown", u, row, f"not an input of the model ({hint})"))
        return out

    def _row_problems(self, obj: dict, row: int | None) -> list[Problem]:
        out = self._name_problems(obj, row)
        for c in self.inputs:
            if c.name in obj:
                try:
                    self._value(c, obj[c.name])
                except _Bad as b:
                    out.append(self._problem(b.check, c.name, row, b.message))
        return out

    @staticmethod
    def _error(found: list[Problem]) -> InputError:
        """Every problem, in a stable order: request-wide ones (row null) first, then by row, then by column in
        the schema's order (unknown columns last, by name)."""
        found.sort(key=lambda p: p[:3])
        problems = [p[3] for p in found]
        n = len(problems)
        if n == 1:
            message = problems[0]["message"]
        else:
            listed = "; ".join(p["message"] for p in problems[:SUMMARY_PROBLEMS])
            message = f"{n} problems: {listed}" + (f"; and {n - SUMMARY_PROBLEMS} more" if n > SUMMARY_PROBLEMS
                                                   else "")
        return InputError(422, message, problems[:MAX_PROBLEMS], max(0, n - MAX_PROBLEMS))

    def check_names(self, names: Iterable[str]) -> None:
        if found := self._name_problems(names, None):
            raise self._error(found)

    # ------------------------------------------------------------------ rows
    def row(self, obj: Any) -> Columns:
        """/predict: one JSON object of named features."""
        if not isinstance(obj, dict):
            raise InputError(400, f"expected a JSON object of named features, got {_json_type(obj)}")
        by_name, value = self.by_name, self._value
        if len(obj) == len(self.names):  # then every name present means exactly the names
            try:
                return {n: [value(by_name[n], obj[n])] for n in self.names}
            except (KeyError, _Bad):
                pass
        raise self._error(self._row_problems(obj, None))

    def rows(self, objs: Sequence[Any]) -> Columns:
        parsed = []
        for i, obj in enumerate(objs):
            if isinstance(obj, (str, bytes)):
                try:
                    obj = orjson.loads(obj)
                except orjson.JSONDecodeError as e:
                    raise InputError(400, f"row {i}: not a JSON object ({e})") from None
            if not isinstance(obj, dict):
                raise InputError(400, f"row {i}: expected a JSON object, got {_json_type(obj)}")
            parsed.append(obj)
        by_name, value, k = self.by_name, self._value, len(self.names)
        try:
            cols: Columns = {n: [] for n in self.names}
            for obj in parsed:
                if len(obj) != k:
                    raise KeyError
                for n in self.names:
                    cols[n].append(value(by_name[n], obj[n]))
            return cols
        except (KeyError, _Bad):
            pass
        raise self._error([p for i, obj in enumerate(parsed) for p in self._row_problems(obj, i)])

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
        types: dict[str, Any] = {}
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
            types[name] = t.get("datatype")
        if not n_rows:
            raise InputError(400, "the tensors hold no rows")
        by_name, value = self.by_name, self._value
        if len(cols) == len(self.names):
            try:
                for n in self.names:
                    dt = types[n]
                    if dt is not None and dt not in V2_TYPES[by_name[n].type]:
                        raise KeyError(n)
                return {n: [value(by_name[n], v) for v in cols[n]] for n in self.names}, n_rows
            except (KeyError, _Bad):
                pass
        found = self._name_problems(cols, None)
        for c in self.inputs:
            if c.name not in cols:
                continue
            dt = types[c.name]
            if dt is not None and dt not in V2_TYPES[c.type]:
                found.append(self._problem("datatype", c.name, None, f"datatype {dt} does not fit a {c.type} "
                                                                     f"column; use {V2_TYPES[c.type][0]}"))
            for r, v in enumerate(cols[c.name]):
                try:
                    value(c, v)
                except _Bad as b:
                    found.append(self._problem(b.check, c.name, r, b.message))
        raise self._error(found)

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


def _quoted(v: str) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:36] + "...'"
