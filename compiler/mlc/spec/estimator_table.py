"""Generate estimator_params.py: the parameters of every built-in estimator, with the JSON types they take.

    python -m mlc.spec.estimator_table           # rewrite compiler/mlc/spec/estimator_params.py
    python -m mlc.spec.estimator_table --check   # exit 1 when the committed table is stale

Validation reads the committed table so that `mlc validate` never imports sklearn; tests/spec regenerates it
and fails when it differs from what the installed scikit-learn and mlc's Lightning estimators say.

Types come from sklearn's ``_parameter_constraints`` where a class declares them (Interval(Integral) ->
integer, Interval(RealNotInt) -> float, Interval(Real) -> number, StrOptions -> an enum of strings, ...);
otherwise from the type of the parameter's default. Constraints a YAML value cannot meet (a callable, a
RandomState, an object with methods) are left out; a parameter left with none takes anything. Hidden
constraints (deprecated values) are kept, marked hidden: sklearn accepts them, messages do not offer them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any

TARGET = Path(__file__).with_name("estimator_params.py")
_INTERNAL = {"tabular_mlp": {"module", "module_params"}}  # set by make_estimator for import-path modules


def _classes() -> dict[str, dict[str, str]]:
    from mlc.runtime.train import _CLASSIFIERS, _REGRESSORS

    return {"classification": dict(_CLASSIFIERS), "regression": dict(_REGRESSORS)}


def _alternative(c: Any) -> list[dict] | None:
    """One sklearn constraint as JSON-type alternatives, [] when YAML cannot express it, None if unknown."""
    from sklearn.utils import _param_validation as pv

    if isinstance(c, str) and c == "no_validation":
        return None
    hidden = isinstance(c, pv.Hidden)  # a deprecated value, say: still accepted, never suggested
    got = _visible(pv.make_constraint(c.constraint if hidden else c))
    return None if got is None else [{**a, "hidden": True} if hidden else a for a in got]


def _visible(c: Any) -> list[dict] | None:
    from numbers import Integral, Real

    from sklearn.utils import _param_validation as pv

    if isinstance(c, pv.Interval):
        kind = "integer" if c.type is Integral else ("float" if c.type is pv.RealNotInt else "number")
        alt: dict[str, Any] = {"type": kind}
        for key, v in (("min", c.left), ("max", c.right)):
            if v is not None and math.isfinite(v):
                alt[key] = int(v) if kind == "integer" else float(v)
        alt["closed"] = c.closed  # which ends belong to it; a missing bound is an infinity
        return [alt]
    if isinstance(c, pv.StrOptions):
        return [{"type": "string", "enum": sorted(c.options)}]
    if isinstance(c, pv.Options):
        values = sorted(c.options, key=repr)
        if all(isinstance(v, str) for v in values):
            return [{"type": "string", "enum": values}]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return [{"type": "number", "enum": values}]
        return None
    if isinstance(c, pv._Booleans):
        return [{"type": "boolean"}]
    if isinstance(c, pv._NoneConstraint):
        return [{"type": "null"}]
    if isinstance(c, (pv._ArrayLikes, pv._IterablesNotString)):
        return [{"type": "array"}]
    if isinstance(c, pv._RandomStates):
        return [{"type": "integer", "min": 0, "max": 2**32 - 1, "closed": "both"}, {"type": "null"}]
    if isinstance(c, pv._VerboseHelper):
        return [{"type": "integer", "min": 0, "closed": "left"}, {"type": "boolean"}]
    if isinstance(c, pv._InstancesOf):
        t = c.type
        if t is bool:
            return [{"type": "boolean"}]
        if t is int or t is Integral:
            return [{"type": "integer"}]
        if t is float or t is Real:
            return [{"type": "number"}]
        if t is str:
            return [{"type": "string"}]
        if t is dict:
            return [{"type": "object"}]
        if t in (list, tuple):
            return [{"type": "array"}]
        return []  # an instance of a class (a Criterion, a loss object): not writable in YAML
    if isinstance(c, (pv._Callables, pv.HasMethods, pv._SparseMatrices)):
        return []
    return None


def _from_default(default: Any) -> list[dict]:
    if isinstance(default, bool):
        return [{"type": "boolean"}]
    if isinstance(default, int):
        return [{"type": "integer"}]
    if isinstance(default, float):
        return [{"type": "number"}]
    if isinstance(default, str):
        return [{"type": "string"}]
    if isinstance(default, (list, tuple)):
        return [{"type": "array"}]
    if isinstance(default, dict):
        return [{"type": "object"}]
    return [{"type": "any"}]


def _params(cls: type, skip: set[str]) -> dict[str, list[dict]]:
    constraints = getattr(cls, "_parameter_constraints", {})
    out: dict[str, list[dict]] = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name not in constraints:
            out[name] = _from_default(p.default)
            continue
        alts: list[dict] = []
        for c in constraints[name]:
            got = _alternative(c)
            if got is None:
                alts = [{"type": "any"}]
                break
            alts.extend(a for a in got if a not in alts)
        out[name] = alts or [{"type": "any"}]
    return dict(sorted(out.items()))


def build() -> dict[str, dict[str, dict[str, Any]]]:
    from mlc.runtime.features import import_path

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for task, names in _classes().items():
        table[task] = {}
        for name, path in sorted(names.items()):
            cls = import_path(path)
            table[task][name] = {"class": path, "params": _params(cls, _INTERNAL.get(name, set()))}
    return table


def _literal(v: Any) -> str:
    """A Python literal in the house style (double quotes), for the few types the table holds."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float) and not math.isfinite(v):
        return f'float("{v}")'  # YAML writes it .inf
    if isinstance(v, (bool, int, float)):
        return repr(v)
    raise TypeError(f"cannot write {v!r} into the table")


def render() -> str:
    """The module text: one parameter a line, so that a change in sklearn reads as a small diff."""
    import sklearn

    q = _literal
    lines = [
        '"""Parameters of the built-in estimators and the JSON types they take (see estimator_table.py).',
        "",
        "Generated by `python -m mlc.spec.estimator_table`; do not edit.",
        '"""',
        "",
        f"# from scikit-learn {sklearn.__version__}",
        "# fmt: off",
        "ESTIMATORS: dict = {",
    ]
    for task, estimators in build().items():
        lines.append(f"    {q(task)}: {{")
        for name, e in estimators.items():
            lines += [
                f"        {q(name)}: {{",
                f'            "class": {q(e["class"])},',
                '            "params": {',
            ]
            for param, alts in e["params"].items():
                one = f"                {q(param)}: {q(alts)},"
                if len(one) <= 110:
                    lines.append(one)
                else:
                    lines.append(f"                {q(param)}: [")
                    for a in alts:
                        alt = f"                    {q(a)},"
                        lines.append(alt if len(alt) <= 110 else alt + "  # noqa: E501")
                    lines.append("                ],")
            lines += ["            },", "        },"]
        lines.append("    },")
    lines += ["}", "# fmt: on", ""]
    return "\n".join(lines)


def comparable(text: str) -> str:
    """The table without the version line: a new scikit-learn with the same parameters is not stale."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("# from scikit-learn "))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mlc.spec.estimator_table", description="Generate the table.")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed table is stale")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if comparable(current) != comparable(text):
            print(f"{TARGET} is stale: run python -m mlc.spec.estimator_table", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
