"""path -> Spec, or one SpecError that lists every problem (structural first, then semantic)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlc.errors import Diagnostic, SpecError
from mlc.spec.loader import Loaded, load_file
from mlc.spec.models import Spec


@dataclass(frozen=True)
class SpecFile:
    """A validated spec and where it came from (relative data paths resolve against ``root``)."""

    path: Path
    spec: Spec
    text: str

    @property
    def root(self) -> Path:
        return self.path.parent


def resolve_path(p: str | Path) -> Path:
    """A PATH argument may be a spec file or a directory holding mlproject.yaml."""
    p = Path(p)
    return p / "mlproject.yaml" if p.is_dir() else p


def load_spec(path: str | Path) -> SpecFile:
    file = resolve_path(path)
    loaded = load_file(str(file))
    spec = validate_loaded(loaded)
    return SpecFile(file, spec, loaded.text)


def validate_loaded(loaded: Loaded) -> Spec:
    diags: list[Diagnostic] = []
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(loaded.data)
    except ValidationError as e:
        diags.extend(_from_pydantic(e, loaded))
    if spec is not None:
        from mlc.spec.checks import run_checks

        diags.extend(run_checks(spec, loaded))
    if diags:
        diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
        raise SpecError(loaded.file, diags, source=loaded.text)
    assert spec is not None
    return spec


# ----------------------------------------------------------------------------- pydantic -> diagnostics
def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _real_path(loc: tuple, data: Any) -> tuple[tuple, Any]:
    """Map a pydantic loc onto the data tree, dropping union tags and validator names it inserts."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in node and part == loc[-1]:
            path.append(part)  # a missing or unknown key: keep it so the message names it
            node = None
        # anything else is a discriminator tag or a function name
    return tuple(path), node


def _model_at(path: tuple) -> type[BaseModel] | None:
    """The pydantic model class that describes the mapping at ``path`` (used for key suggestions)."""
    from mlc.spec import models as m

    model: Any = Spec
    for part in path:
        if isinstance(part, int):
            continue
        fields = _fields_by_alias(model) if model else {}
        if part not in fields:
            return None
        model = _model_of(fields[part].annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _fields_by_alias(model: type[BaseModel]) -> dict:
    return {(f.alias or n): f for n, f in model.model_fields.items()}


def _model_of(ann: Any) -> Any:
    import typing

    origin = typing.get_origin(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        if origin is dict and arg is str:
            continue
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def suggest(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _from_pydantic(err: ValidationError, loaded: Loaded) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple] = set()
    for e in err.errors(include_url=False):
        path, node = _real_path(tuple(e["loc"]), loaded.data)
        kind = e["type"]
        d = _diagnose(kind, e, path, node, loaded)
        key = (d.code, d.path, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _diagnose(kind: str, e: dict, path: tuple, node: Any, loaded: Loaded) -> Diagnostic:
    where = dotted(path)
    if kind == "extra_forbidden":
        key = str(path[-1])
        model = _model_at(path[:-1])
        options = sorted(_fields_by_alias(model)) if model else []
        close = suggest(key, options)
        hint = f"did you mean '{close}'?" if close else (f"valid keys here: {', '.join(options)}" if options else None)
        if path[:1] == ("environments",) and len(path) == 3:
            hint = ((f"did you mean '{close}'? " if close else "")
                    + "an environment may only change: " + ", ".join(options))
        return Diagnostic("E100", f"unknown field '{key}'", where, loaded.span(path, key=True), hint)
    if kind == "missing":
        key = str(path[-1])
        parent = path[:-1]
        return Diagnostic("E101", f"missing required field '{key}'", dotted(parent) or where,
                          loaded.span(parent, key=True), f"add `{key}:` here")
    if kind in ("literal_error", "enum"):
        expected = e.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",") if o.strip()]
        close = suggest(str(node), options) if isinstance(node, str) else None
        hint = f"did you mean '{close}'?" if close else f"expected one of: {', '.join(options)}"
        return Diagnostic("E103", f"invalid value {_show(node)}", where, loaded.span(path), hint)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = e.get("ctx", {})
        tag = ctx.get("discriminator", "").strip("'")
        options = [o.strip().strip("'") for o in ctx.get("expected_tags", "").split(",") if o.strip()]
        if kind == "union_tag_not_found":
            return Diagnostic("E101", f"missing required field '{tag}'", where, loaded.span(path, key=True),
                              f"add `{tag}:` with one of: {', '.join(options)}")
        got = node.get(tag) if isinstance(node, dict) else node
        tpath = path + (tag,)
        close = suggest(str(got), options) if isinstance(got, str) else None
        hint = f"did you mean '{close}'?" if close else f"expected one of: {', '.join(options)}"
        return Diagnostic("E103", f"invalid {tag} {_show(got)}", dotted(tpath), loaded.span(tpath), hint)
    if kind.endswith("_type") or kind in ("model_type", "dict_type", "list_type", "model_attributes_type"):
        raw = loaded.raw_scalars.get(path)
        expected = _EXPECTED.get(kind, kind.replace("_type", "").replace("_", " "))
        msg = f"expected {expected}, got {_describe(node)}"
        hint = None
        if raw is not None and isinstance(node, (bool, int, float, type(None))) and expected == "a string":
            hint = f"YAML reads `{raw}` as {_describe(node).split(' ')[0]}; quote it: \"{raw}\""
        elif raw is not None and not isinstance(node, str):
            hint = f"YAML read `{raw}` as {_describe(node)}"
        return Diagnostic("E102", msg, where, loaded.span(path), hint)
    # constraint errors: greater_than, less_than_equal, too_short, string_pattern_mismatch, ...
    msg = e["msg"][0].lower() + e["msg"][1:]
    return Diagnostic("E104", f"{msg}, got {_show(node)}", where, loaded.span(path), None)


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "dict_type": "a mapping", "list_type": "a list", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "int_from_float": "an integer", "int_parsing": "an integer", "float_parsing": "a number",
    "bool_parsing": "true or false",
}


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, int):
        return f"integer {v}"
    if isinstance(v, float):
        return f"number {v}"
    if isinstance(v, str):
        return f"string {_show(v)}"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} {v}"


def _show(v: Any) -> str:
    s = repr(v) if isinstance(v, str) else ("null" if v is None else str(v))
    return s if len(s) <= 60 else s[:57] + "..."
