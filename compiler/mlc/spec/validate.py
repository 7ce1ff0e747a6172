"""path -> Spec, or one SpecError that lists every problem (structural first, then semantic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
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
    warnings: tuple[Diagnostic, ...] = ()  # only from load_spec(data=True): problems that do not fail
    loaded: Loaded | None = field(default=None, compare=False, repr=False)  # the parse, for placing diagnostics

    @property
    def root(self) -> Path:
        return self.path.parent


def resolve_path(p: str | Path) -> Path:
    """A PATH argument may be a spec file or a directory holding mlproject.yaml."""
    p = Path(p)
    return p / "mlproject.yaml" if p.is_dir() else p


def load_spec(path: str | Path, *, data: bool = False) -> SpecFile:
    """``data``: also check the spec against its local data files (what `mlc validate` does). Off by default:
    a step on a cluster reads its data from the storage root, not from beside the spec."""
    file = resolve_path(path)
    loaded = load_file(str(file))
    spec = validate_loaded(loaded)
    warnings: list[Diagnostic] = []
    if data:
        from mlc.spec.checks.datafiles import check_data_files

        found = check_data_files(spec, loaded, file.parent)
        found.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
        if any(d.severity == "error" for d in found):
            raise SpecError(loaded.file, found, source=loaded.text)
        warnings = found
    return SpecFile(file, spec, loaded.text, tuple(warnings), loaded)


def render_warnings(sf: SpecFile) -> str:
    """The warnings of a valid spec, rendered like errors (``warning[W300] ...``), for stderr."""
    lines = sf.text.splitlines()
    return "\n\n".join(d.render(lines, str(sf.path)) for d in sf.warnings)


def validate_loaded(loaded: Loaded) -> Spec:
    """Structural errors (pydantic) first, then semantic checks, all in one SpecError sorted by position.

    Checks on the raw tree (literal secrets, YAML 1.1/1.2 ambiguities) run even when the models reject the
    spec; the cross-field checks need a typed Spec, so they run only once the structure is right. Checks of
    the data files (load_spec(data=True)) come last, once the spec itself is valid: they compare a sound spec
    with the files it names.
    """
    from mlc.spec.checks import run_checks, run_raw_checks

    diags: list[Diagnostic] = []
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(loaded.data)
    except ValidationError as e:
        diags.extend(_from_pydantic(e, loaded))
    raw = run_raw_checks(loaded)  # a literal secret outranks "unknown field" at the same place
    secret_paths = {d.path for d in raw}
    diags = [d for d in diags if d.path not in secret_paths] + raw
    taken = {d.path for d in diags}
    for d in _ambiguities(loaded):
        if d.path not in taken:
            diags.append(d)
            taken.add(d.path)
    if spec is not None:
        diags.extend(d for d in run_checks(spec, loaded) if d.path not in taken)
    elif isinstance(loaded.data, dict) and (partial := _partial_spec(loaded.data)) is not None:
        diags.extend(d for d in run_checks(partial, loaded, best_effort=True) if d.path not in taken)
    if diags:
        diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
        raise SpecError(loaded.file, diags, source=loaded.text)
    assert spec is not None
    return spec


def _partial_spec(data: dict) -> Spec | None:
    """A Spec built from the top-level sections that are valid on their own, defaults for the rest.

    Lets the semantic checks report on the sound parts of a spec whose structure is broken elsewhere;
    a check that needs a missing section fails and is skipped (see run_checks(best_effort=True)).
    """
    from pydantic import TypeAdapter

    values: dict[str, Any] = {}
    for name, f in Spec.model_fields.items():
        key = f.alias or name
        if key not in data:
            continue
        try:
            values[name] = TypeAdapter(f.annotation).validate_python(data[key])
        except (ValidationError, TypeError, ValueError):
            continue
    if not values:
        return None
    return Spec.model_construct(**values)


def _ambiguities(loaded: Loaded) -> list[Diagnostic]:
    """Plain scalars that mean one thing to mlc (YAML 1.1) and another to editors and YAML 1.2 tools."""
    out = []
    for path, (raw, v11, v12) in loaded.ambiguous.items():
        msg = f"`{raw}` is {_describe(v11)} here (YAML 1.1) but {_describe(v12)} in YAML 1.2"
        if isinstance(v11, bool):
            hint = f'write {str(v11).lower()} for a boolean, or "{raw}" (quoted) for text'
        elif isinstance(v12, float) and isinstance(v11, str):
            hint = f'write {_plain_float(v12)} for a number, or "{raw}" (quoted) for text'
        else:
            hint = f'quote it ("{raw}") if you mean text'
            if isinstance(v11, int) and not isinstance(v11, bool):
                hint += f", or write {v11} for the number mlc reads"
        out.append(Diagnostic("E102", msg, dotted(path), loaded.span(path), hint))
    return out


def _plain_float(f: float) -> str:
    """A float spelt so that YAML 1.1 and 1.2 agree (PyYAML needs a dot and a signed exponent)."""
    r = repr(f)
    if "e" not in r:
        return r
    mant, exp = r.split("e")
    mant = mant if "." in mant else mant + ".0"
    return f"{mant}e{exp if exp[0] in '+-' else '+' + exp}"


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
    import typing

    ann: Any = Spec
    for part in path:
        origin = typing.get_origin(ann)
        if origin is dict or origin is list:  # a name under environments:, or a list index
            ann = typing.get_args(ann)[-1]
            continue
        model = _model_of(ann)
        fields = _fields_by_alias(model) if model else {}
        if part not in fields:
            return None
        ann = _unwrap(fields[part].annotation)
    model = _model_of(ann)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    """Optional[X] -> X, so that dict and list annotations are seen through `| None`."""
    import typing

    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) in (typing.Union, __import__("types").UnionType) and len(args) == 1:
        return args[0]
    return ann


def _union_tags(discriminator: str) -> list[str]:
    """Every value a discriminated union in the language accepts for ``discriminator``."""
    import typing

    from mlc.spec import models as m

    for union in (m.QualityCheck, m.Feature):
        members = typing.get_args(typing.get_args(union)[0])
        if discriminator in members[0].model_fields:
            return [typing.get_args(c.model_fields[discriminator].annotation)[0] for c in members]
    return []


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
    import difflib  # only on the error path: keeps `mlc validate` of a good spec fast

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
        hint = (
            f"did you mean '{close}'?"
            if close
            else (f"valid keys here: {', '.join(options)}" if options else None)
        )
        if path[:1] == ("environments",) and len(path) == 3:
            logic = key in _fields_by_alias(Spec)
            hint = (
                (f"did you mean '{close}'? " if close and not logic else "")
                + ("environments change where and how big, never the pipeline's logic; " if logic else "")
                + "an environment may only change: "
                + ", ".join(options)
            )
        return Diagnostic("E100", f"unknown field '{key}'", where, loaded.span(path, key=True), hint)
    if kind == "missing":
        key = str(path[-1])
        parent = path[:-1]
        return Diagnostic(
            "E101",
            f"missing required field '{key}'",
            dotted(parent) or where,
            loaded.span(parent, key=True),
            f"add `{key}:` here",
        )
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
        options = options or _union_tags(tag)
        if kind == "union_tag_not_found":
            return Diagnostic(
                "E101",
                f"missing required field '{tag}'",
                where,
                loaded.span(path, key=True),
                f"add `{tag}:` with one of: {', '.join(options)}",
            )
        got = node.get(tag) if isinstance(node, dict) else node
        tpath = path + (tag,)
        close = suggest(str(got), options) if isinstance(got, str) else None
        hint = f"did you mean '{close}'?" if close else f"expected one of: {', '.join(options)}"
        return Diagnostic("E103", f"invalid {tag} {_show(got)}", dotted(tpath), loaded.span(tpath), hint)
    if kind.endswith(("_type", "_parsing")) or kind in ("int_from_float", "model_attributes_type"):
        raw = loaded.raw_scalars.get(path)
        expected = _EXPECTED.get(kind, kind.replace("_type", "").replace("_", " "))
        msg = f"expected {expected}, got {_describe(node)}"
        hint = None
        if (
            raw is not None
            and isinstance(node, (bool, int, float, type(None), date))
            and expected == "a string"
        ):
            hint = f'YAML reads `{raw}` as {_describe(node).split(" ")[0]}; quote it: "{raw}"'
        elif raw is not None and not isinstance(node, str):
            hint = f"YAML read `{raw}` as {_describe(node)}"
        else:
            hint = _TYPE_HINTS.get(expected)
        return Diagnostic("E102", msg, where, loaded.span(path), hint)
    # constraint errors: greater_than, less_than_equal, too_short, string_pattern_mismatch, ...
    msg = e["msg"][0].lower() + e["msg"][1:]
    return Diagnostic("E104", f"{msg}, got {_show(node)}", where, loaded.span(path), None)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
}


_TYPE_HINTS = {
    "an integer": "write a whole number without quotes, e.g. 2",
    "a number": "write a number without quotes, e.g. 0.5",
    "true or false": "write true or false",
    "a list": "write a list: [a, b], or one `- item` per line",
    "a mapping": "write `key: value` pairs indented under this key",
    "a string": "quote the value",
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
