"""Estimator parameters against each built-in estimator's real ones: a name it has, a value of a JSON type it
takes. The table (spec/estimator_params.py) is generated from the installed sklearn and mlc's Lightning
estimators by spec/estimator_table.py, so that validation never imports sklearn.

Import-path estimators ('package.module:Class'), Lightning modules and custom transformers are not checked:
their parameters are only known once their code is imported.

    E224 an unknown parameter (did-you-mean)
    E225 a value of the wrong type, out of range, or not one of the allowed strings
    E226 a built-in estimator that has no version for the task (logistic_regression for regression)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlc.errors import Diagnostic
from mlc.spec.checks.common import closest, diag
from mlc.spec.loader import Loaded
from mlc.spec.models import BUILTIN_ESTIMATORS, Spec

_NAMES = {
    "integer": "an integer",
    "float": "a float",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "null": "null",
    "array": "a list",
    "object": "a mapping",
}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def estimator_params(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    from mlc.spec.estimator_params import ESTIMATORS

    task = spec.data.label.task
    table = ESTIMATORS.get(task, {})
    for i, c in enumerate(spec.training.candidates):
        own = BUILTIN_ESTIMATORS.get(c.framework, ())
        if c.estimator not in own:
            continue  # an import path, or an unknown name (estimators() reports that)
        base = ("training", "candidates", i)
        entry = table.get(c.estimator)
        if entry is None:
            fits = [n for n in own if n in table]
            yield diag(
                loaded,
                "E226",
                base + ("estimator",),
                f"'{c.estimator}' has no {task} version",
                f"{c.framework} {task} estimators: {', '.join(fits)}",
            )
            continue
        cls = entry["class"].replace(":", ".")
        accepted: dict[str, list[dict]] = entry["params"]
        for section, values in (("params", c.params), ("grid", c.grid)):
            for key, value in values.items():
                where = base + (section, key)
                if key not in accepted:
                    close = closest(key, accepted)
                    shown = ", ".join(sorted(accepted))
                    yield diag(
                        loaded,
                        "E224",
                        where,
                        f"unknown parameter '{key}' of {c.estimator} ({cls})",
                        f"did you mean '{close}'?" if close else f"its parameters: {shown}",
                        key=True,
                    )
                    continue
                items = [(where, value)] if section == "params" else [
                    (where + (j,), v) for j, v in enumerate(value)
                ]  # fmt: skip
                for path, v in items:
                    if not any(_accepts(a, v) for a in accepted[key]):
                        yield _wrong(loaded, path, key, v, accepted[key])


def _accepts(a: dict, v: Any) -> bool:
    t = a["type"]
    if t == "any":
        return True
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "string":
        return isinstance(v, str) and ("enum" not in a or v in a["enum"])
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if (t == "integer" and not isinstance(v, int)) or (t == "float" and not isinstance(v, float)):
        return False
    if "enum" in a:
        return v in a["enum"]
    if v != v:  # NaN is in no interval
        return False
    # as sklearn's Interval: a missing bound is an infinity, excluded unless that side is closed
    inf = float("inf")
    lo, hi, closed = a.get("min", -inf), a.get("max", inf), a.get("closed", "neither")
    if v < lo or (v == lo and closed in ("right", "neither")):
        return False
    return not (v > hi or (v == hi and closed in ("left", "neither")))


def _num(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:g}".replace("inf", ".inf")  # as YAML writes it


def _expected(alts: list[dict]) -> str:
    words: list[str] = []
    strings: list[str] = []
    for a in [a for a in alts if not a.get("hidden")] or alts:
        if a["type"] == "string" and "enum" in a:
            strings += [s for s in a["enum"] if s not in strings]
            continue
        text = _NAMES.get(a["type"], "anything")
        if "enum" in a:
            text = "one of " + ", ".join(_num(v) for v in a["enum"])
        lo, hi, closed = a.get("min"), a.get("max"), a.get("closed", "neither")
        if lo is not None and hi is not None:
            left = "[" if closed in ("left", "both") else "("
            right = "]" if closed in ("right", "both") else ")"
            text += f" in {left}{_num(lo)}, {_num(hi)}{right}"
        elif lo is not None:
            text += f" {'>=' if closed in ('left', 'both') else '>'} {_num(lo)}"
        elif hi is not None:
            text += f" {'<=' if closed in ('right', 'both') else '<'} {_num(hi)}"
        if text not in words:
            words.append(text)
    if strings:
        words.insert(len(words) - ("null" in words), "one of " + ", ".join(f"'{s}'" for s in strings))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _wrong(loaded: Loaded, path: tuple, key: str, v: Any, alts: list[dict]) -> Diagnostic:
    from mlc.spec.validate import _describe

    types = {a["type"] for a in alts}
    numeric = types & {"integer", "float", "number"}
    hint = None
    if isinstance(v, str) and numeric and _NUMBER.match(v.strip()):
        hint = f"write {v.strip()} without quotes: YAML reads a quoted number as text"
    elif isinstance(v, str):
        options = [
            s for a in alts if a["type"] == "string" and not a.get("hidden") for s in a.get("enum", [])
        ]
        close = closest(v, options) if options else None
        if close is not None:
            hint = f"did you mean '{close}'?"
    elif isinstance(v, float) and v.is_integer() and "integer" in types and "float" not in types:
        hint = f"write {int(v)}: {key} takes a whole number"
    return diag(loaded, "E225", path, f"expected {_expected(alts)}, got {_describe(v)}", hint)
