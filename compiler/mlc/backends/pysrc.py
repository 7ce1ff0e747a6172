"""Python source for generated files, already in the shape `ruff format` gives it (a test holds us to it).

Expressions are small trees (Call, List, Dict, Raw); ``render`` writes one on a single line when it fits the
line length, and otherwise one element per line with a trailing comma, which `ruff format` keeps as it is (its
"magic trailing comma"). Strings are written the way ruff writes them: double quotes unless the text holds more
double than single quotes, and only ASCII (anything else as an escape), so the bytes never depend on a locale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LINE_LENGTH = 88  # ruff's default; the generated files are checked with `ruff format --isolated`
INDENT = "    "


@dataclass(frozen=True)
class Raw:
    """Python source written as is: a name, a number, an operator expression."""

    text: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[tuple[str | None, Any], ...] = ()  # (keyword or None, value)


@dataclass(frozen=True)
class List:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Dict:
    items: tuple[tuple[Any, Any], ...]  # a key of None writes ``**value``


def call(func: str, *args: Any, **kwargs: Any) -> Call:
    return Call(func, tuple((None, a) for a in args) + tuple((k, v) for k, v in kwargs.items()))


def lit(s: str) -> str:
    """A string literal as ruff formats it."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) > 0x7E:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _value(v: Any) -> Any:
    if isinstance(v, (Raw, Call, List, Dict)):
        return v
    if isinstance(v, bool) or v is None:
        return Raw(repr(v))
    if isinstance(v, (int, float)):
        return Raw(repr(v))
    if isinstance(v, str):
        return Raw(lit(v))
    if isinstance(v, (list, tuple)):
        return List(tuple(_value(x) for x in v))
    if isinstance(v, dict):
        return Dict(tuple((_value(k), _value(x)) for k, x in v.items()))
    raise TypeError(f"cannot write {type(v).__name__} as Python source")


def _parts(node: Any) -> tuple[str, str, list[tuple[str, Any]]]:
    """(opening, closing, [(prefix, value)]) of a bracketed node."""
    if isinstance(node, Call):
        return f"{node.func}(", ")", [(f"{k}=" if k else "", _value(v)) for k, v in node.args]
    if isinstance(node, List):
        return "[", "]", [("", v) for v in node.items]
    assert isinstance(node, Dict)
    return "{", "}", [(f"{flat(k)}: " if k is not None else "**", v) for k, v in node.items]  # None: a spread


def flat(node: Any) -> str:
    node = _value(node)
    if isinstance(node, Raw):
        return node.text
    opening, closing, items = _parts(node)
    return opening + ", ".join(p + flat(v) for p, v in items) + closing


def render(node: Any, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """``prefix + node + suffix`` at ``indent`` levels, split over lines where it does not fit."""
    node = _value(node)
    pad = INDENT * indent
    one = pad + prefix + flat(node) + suffix
    if len(one) <= LINE_LENGTH or isinstance(node, Raw):
        return one
    opening, closing, items = _parts(node)
    if not items:
        return one
    lines = [pad + prefix + opening]
    lines += [render(v, indent + 1, p, ",") for p, v in items]
    lines.append(pad + closing + suffix)
    return "\n".join(lines)
