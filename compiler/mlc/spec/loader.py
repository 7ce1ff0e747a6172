"""Safe YAML loading that remembers where every node came from.

PyYAML's SafeLoader is used for scanning and scalar resolution only; the tree is built here so that
duplicate keys, alias bombs and absurd nesting are rejected with a position instead of exhausting memory.
The libyaml-backed loader is used when PyYAML has it: parsing is 15x faster, which is most of what keeps
`mlc validate` under its time budget; the pure-Python one gives the same tree and positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from mlc.errors import Diagnostic, Span, SpecError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 2_000_000  # a spec is a few KB; anything this large is a mistake or an attack
MAX_DEPTH = 64
MAX_NODES = 100_000  # counted after alias expansion: defeats billion-laughs

Path_ = tuple[str | int, ...]


@dataclass
class Loaded:
    """A parsed spec: the plain data, plus spans of each key and each value by path."""

    file: str
    text: str
    data: Any
    value_spans: dict[Path_, Span] = field(default_factory=dict)
    key_spans: dict[Path_, Span] = field(default_factory=dict)
    raw_scalars: dict[Path_, str] = field(default_factory=dict)  # source text of scalars YAML re-typed
    # plain scalars that YAML 1.1 (PyYAML, so mlc) and YAML 1.2 (editors, most other tools) read differently
    ambiguous: dict[Path_, tuple[str, Any, Any]] = field(default_factory=dict)  # path -> (raw, 1.1, 1.2)

    def span(self, path: Path_, *, key: bool = False) -> Span | None:
        """The closest known span for ``path``: the node itself, else its nearest ancestor."""
        p = tuple(path)
        while True:
            if key and p in self.key_spans:
                return self.key_spans[p]
            if p in self.value_spans:
                return self.value_spans[p]
            if p in self.key_spans:
                return self.key_spans[p]
            if not p:
                return None
            p = p[:-1]


def _span(file: str, node: yaml.Node) -> Span:
    s, e = node.start_mark, node.end_mark
    end = e.column + 1 if e.line == s.line else None
    return Span(file, s.line + 1, s.column + 1, end)


def _fail(file: str, text: str, code: str, msg: str, span: Span | None = None, hint: str | None = None):
    raise SpecError(file, [Diagnostic(code, msg, span=span, hint=hint)], source=text)


def load_text(text: str, file: str = "<string>") -> Loaded:
    if len(text) > MAX_BYTES:
        _fail(
            file,
            "",
            "E003",
            f"file is {len(text):,} bytes; a spec may be at most {MAX_BYTES:,}",
            hint="an mlproject.yaml describes a project; data belongs in files it references",
        )
    if "\x00" in text:
        _fail(
            file,
            "",
            "E003",
            "file contains NUL bytes: this is not a YAML text file",
            _offset_span(file, text, text.index("\x00")),
            hint="a spec is a UTF-8 text file",
        )
    if not text.strip() or all(ln.strip().startswith("#") or not ln.strip() for ln in text.splitlines()):
        _fail(
            file,
            text,
            "E005",
            "the spec is empty",
            hint="start with `apiVersion: mlc.dev/v1alpha1` and `kind: MLProject`, or run `mlc init DIR`",
        )
    try:
        node, loader = _compose(text, file, _Loader)
    except yaml.YAMLError:
        # libyaml words its errors differently: re-parse with the pure-Python parser, so that a message (and
        # the error goldens) are the same whether or not PyYAML was built with libyaml
        try:
            node, loader = _compose(text, file, yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            _fail_yaml(file, text, e)
        except yaml.YAMLError as e:  # reader errors (bad characters) carry no problem_mark
            _fail_unmarked(file, text, e)
    if node is None:
        _fail(file, text, "E005", "the spec is empty")
    out = Loaded(file, text, None)
    budget = [MAX_NODES]
    out.data = _build(node, (), out, loader, budget)
    if not isinstance(out.data, dict):
        kind = type(out.data).__name__ if out.data is not None else "null"
        _fail(
            file,
            text,
            "E004",
            f"the top level must be a mapping, got a {_yaml_kind(out.data) or kind}",
            _span(file, node),
            hint="a spec starts with `apiVersion:`, `kind:` and `metadata:` keys",
        )
    return out


def load_file(path: str) -> Loaded:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(
            path, [Diagnostic("E003", f"cannot read the spec: {e.strerror}")], source=""
        ) from None
    if len(raw) > MAX_BYTES:
        _fail(
            path,
            "",
            "E003",
            f"file is over {MAX_BYTES:,} bytes; a spec may be at most {MAX_BYTES:,}",
            hint="an mlproject.yaml describes a project; data belongs in files it references",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        head = raw[: e.start].decode("utf-8", errors="replace")
        _fail(
            path,
            "",
            "E003",
            f"file is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            _offset_span(path, head, len(head)),
            hint="save the spec as UTF-8",
        )
    return load_text(text, path)


def _yaml_kind(v: Any) -> str:
    return {list: "list", str: "string", int: "integer", float: "number", bool: "boolean"}.get(type(v), "")


def _compose(text: str, file: str, loader_cls: Any) -> tuple[yaml.Node | None, Any]:
    """Check the nesting depth on the event stream (iterative), then compose the node graph.

    The composer recurses once per level, so deep nesting must fail before it runs; YAML errors propagate.
    """
    depth = 0
    for ev in yaml.parse(text, Loader=loader_cls):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                m = ev.start_mark
                _fail(
                    file,
                    text,
                    "E006",
                    f"nesting is deeper than {MAX_DEPTH} levels",
                    Span(file, m.line + 1, m.column + 1),
                    hint="a spec never needs this much nesting",
                )
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    loader = loader_cls(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def _offset_span(file: str, text: str, offset: int) -> Span:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(file, line, col, col + 1)


def _fail_yaml(file: str, text: str, e: yaml.MarkedYAMLError) -> None:
    mark = e.problem_mark or e.context_mark
    span = Span(file, mark.line + 1, mark.column + 1) if mark else None
    problem = e.problem or e.context or "unreadable"
    hint = "check the indentation and quoting around this position"
    lines = text.splitlines()
    if "'\\t'" in problem or (
        span and 0 < span.line <= len(lines) and "\t" in lines[span.line - 1][: span.col]
    ):
        problem, hint = "a tab character", "YAML indentation must use spaces, not tabs"
    _fail(file, text, "E001", f"invalid YAML: {problem}", span, hint)


def _fail_unmarked(file: str, text: str, e: yaml.YAMLError) -> None:
    if isinstance(e, yaml.reader.ReaderError):
        span = _offset_span(file, text, e.position) if isinstance(e.position, int) else None
        ch = ord(e.character) if isinstance(e.character, str) else e.character
        what = f"character #x{ch:04x} is not allowed" if isinstance(ch, int) else str(e.reason)
        _fail(
            file,
            text,
            "E001",
            f"invalid YAML: {what}",
            span,
            hint="a spec is plain text; remove the character or escape it inside a double-quoted string",
        )
    _fail(file, text, "E001", f"invalid YAML: {str(e).splitlines()[0]}")


_STANDARD_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")
}
_RETYPED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


def _build(
    node: yaml.Node,
    path: Path_,
    out: Loaded,
    loader: Any,
    budget: list[int],
    seen: set[int] | None = None,
    alias: yaml.Node | None = None,
) -> Any:
    """Build the plain tree. ``seen`` holds collections built once: meeting one again means an alias."""
    seen = set() if seen is None else seen
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in seen and alias is None:
            alias = node
        seen.add(id(node))
    budget[0] -= 1
    if budget[0] < 0:
        _fail(
            out.file,
            out.text,
            "E006",
            f"the document expands to more than {MAX_NODES:,} nodes",
            _span(out.file, alias or node),
            hint="YAML aliases (*name) of this anchor expand exponentially; write the values out",
        )
    out.value_spans.setdefault(path, _span(out.file, node))
    if node.tag not in _STANDARD_TAGS:
        _fail(
            out.file,
            out.text,
            "E001",
            f"YAML tag {node.tag!r} is not allowed in a spec",
            _span(out.file, node),
            hint="remove the tag; a spec holds plain mappings, lists, strings, numbers and booleans",
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for k_node, v_node in node.value:
            if k_node.tag == "tag:yaml.org,2002:merge":
                _fail(
                    out.file,
                    out.text,
                    "E001",
                    "YAML merge keys (<<) are not supported in a spec",
                    _span(out.file, k_node),
                    hint="write the keys out; environments already overlay the base",
                )
            if not isinstance(k_node, yaml.ScalarNode):
                _fail(
                    out.file,
                    out.text,
                    "E001",
                    "a mapping key must be a plain scalar",
                    _span(out.file, k_node),
                )
            key = k_node.value  # keys stay strings: `on:`/`yes:` must not become booleans
            if key in result:
                first = out.key_spans.get(path + (key,))
                where = f" (first defined on line {first.line})" if first else ""
                _fail(
                    out.file,
                    out.text,
                    "E002",
                    f"duplicate key '{key}'{where}",
                    _span(out.file, k_node),
                    hint="YAML keeps only the last value; remove one of them",
                )
            out.key_spans[path + (key,)] = _span(out.file, k_node)
            result[key] = _build(v_node, path + (key,), out, loader, budget, seen, alias)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), out, loader, budget, seen, alias) for i, v in enumerate(node.value)]
    try:
        value = loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as e:  # e.g. a timestamp like 2024-13-45
        problem = getattr(e, "problem", None) or str(e)
        _fail(
            out.file,
            out.text,
            "E001",
            f"invalid YAML value: {problem}",
            _span(out.file, node),
            hint="quote the value if it is meant as text",
        )
    if node.style in (None, ""):  # plain (unquoted): None from PyYAML, "" from libyaml
        if node.tag in _RETYPED:
            out.raw_scalars[path] = node.value
        v12 = yaml12_value(node.value)
        if not (type(v12) is type(value) and v12 == value) and node.value not in (".nan", ".NaN", ".NAN"):
            out.ambiguous[path] = (node.value, value, v12)
    return value


_INT12 = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT12 = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL12 = {
    "null": None,
    "Null": None,
    "NULL": None,
    "~": None,
    "": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}


def yaml12_value(raw: str) -> Any:
    """What the YAML 1.2 core schema makes of a plain scalar (the schema editors and most tools use)."""
    if raw in _SPECIAL12:
        return _SPECIAL12[raw]
    if _INT12.match(raw):
        if raw.startswith("0o"):
            return int(raw[2:], 8)
        return int(raw, 16) if raw.startswith("0x") else int(raw)
    if _FLOAT12.match(raw):
        return float(raw)
    low = raw.lower()
    if low in (".inf", "+.inf", "-.inf") and raw[-3:] in ("inf", "Inf", "INF"):
        return float(low.replace(".", ""))
    return raw
