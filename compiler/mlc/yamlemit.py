"""Block-style YAML for plain data, written directly: the bytes libyaml's emitter writes, several times faster.

Compiling a project writes hundreds of documents, and going through PyYAML (a node per value, two resolver
calls per scalar, then libyaml) was about a quarter of the compile time. This module follows libyaml's emitter
(``emitter.c``: analyze_scalar, select_style, write_plain/write_single_quoted/write_literal, write_indent)
for the subset mlc writes: mappings with short string keys, sequences, ``{}``/``[]``, and scalars that come out
plain, single-quoted or as a literal block. Anything else (a character outside printable ASCII, a scalar
needing double quotes, a tag, a long key, keep-chomping) raises ``Unsupported`` and the caller emits that
document through PyYAML instead, so the output is always what libyaml writes. A property test holds the two to
the same bytes on random trees.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Keys = Callable[[dict, int], list]  # the keys of a mapping in output order, given its depth (0: the document)

STR, INT, FLOAT, BOOL, NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
BEST_INDENT = 2
MAX_SIMPLE_KEY = 128


class Unsupported(Exception):
    """The data needs a construct this writer does not produce; emit it through PyYAML."""


_PLAIN, _SINGLE, _LITERAL = 1, 2, 3
_style_cache: dict[tuple[str, bool], int] = {}
_SPECIAL = re.compile(r"[^ -~\n]")  # outside printable ASCII and the line break
_INDICATOR = re.compile(r":(?=[ \t\n]|\Z)|(?<=[ \t\n])#")  # ": ", a final ":", " #" (from the 2nd character)
_resolver: Any = None


def _plain_tag(value: str) -> str:
    """The tag a plain scalar ``value`` resolves to (PyYAML's implicit resolvers, as the serializer asks)."""
    global _resolver
    if _resolver is None:
        from yaml.nodes import ScalarNode
        from yaml.resolver import Resolver

        r = Resolver()
        _resolver = lambda v: r.resolve(ScalarNode, v, (True, False))
    return _resolver(value)


def _style(value: str, literal: bool) -> int:
    """libyaml's select_style for a str scalar in block context, not a key: plain, single-quoted or literal."""
    key = (value, literal)
    style = _style_cache.get(key)
    if style is None:
        style = _select(value, literal)
        if len(_style_cache) < 100_000:
            _style_cache[key] = style
    return style


def _select(value: str, literal: bool) -> int:
    # analyze_scalar's flags, from whole-string operations rather than a loop per character: the documents
    # carry long literal blocks (the spec, a dashboard, DAG files), and a Python loop over them was the
    # largest single cost of a compile
    if not value:
        return _SINGLE  # resolves to null when plain
    if not value.isascii():
        raise Unsupported("non-ASCII")
    first, last = value[0], value[-1]
    # block context only: flow indicators do not matter
    block_ind = (value.startswith(("---", "...")) or first in "#,[]{}&*!|>'\"%@`"
                 or (first in "?-" and (len(value) == 1 or value[1] in " \t\n"))
                 or _INDICATOR.search(value) is not None)
    line_breaks = "\n" in value
    special = _SPECIAL.search(value) is not None
    leading_space, trailing_space = first == " ", last == " "
    leading_break, trailing_break = first == "\n", last == "\n"
    break_space, space_break = "\n " in value, " \n" in value
    if special or space_break:
        raise Unsupported("needs double quotes")
    block_plain = single = block_allowed = True
    if leading_space or leading_break or trailing_space or trailing_break or line_breaks or block_ind:
        block_plain = False
    if trailing_space:
        block_allowed = False
    if break_space:
        block_plain = single = False
    if literal:
        if not block_allowed:
            raise Unsupported("needs double quotes")
        if value.endswith("\n\n") or value == "\n":
            raise Unsupported("keep chomping")
        return _LITERAL
    if block_plain and _plain_tag(value) == STR:
        return _PLAIN
    if not single or line_breaks:
        raise Unsupported("needs double quotes or a multi-line quoted scalar")
    return _SINGLE


def _scalar_text(obj: Any) -> tuple[str, str]:
    """(tag, text) of a non-str scalar, as emit.py's node builder writes it."""
    if obj is None:
        return NULL, "null"
    if isinstance(obj, bool):
        return BOOL, "true" if obj else "false"
    if isinstance(obj, int):
        return INT, str(obj)
    if isinstance(obj, float):
        if math.isnan(obj):
            return FLOAT, ".nan"
        if obj in (math.inf, -math.inf):
            return FLOAT, ".inf" if obj > 0 else "-.inf"
        value = repr(obj).lower()
        if "." not in value and "e" in value:
            value = value.replace("e", ".0e", 1)
        return FLOAT, value
    raise Unsupported(type(obj).__name__)


_NUMBER = 4  # a plain scalar without spaces: null, booleans, numbers
_KEYS: dict[tuple[type, Any], str] = {}
_VALUES: dict[tuple[type, Any], tuple[str, int]] = {}


def _key_text(k: Any) -> str:
    """A simple key as written (plain or single-quoted); keys never fold."""
    if isinstance(k, str):
        if "\n" in k or len(k) > MAX_SIMPLE_KEY:
            raise Unsupported("a key that is not simple")
        text = k if _style(k, False) == _PLAIN else "'" + k.replace("'", "''") + "'"
    else:
        tag, text = _scalar_text(k)
        if len(text) > MAX_SIMPLE_KEY or _plain_tag(text) != tag:
            raise Unsupported("a key that is not simple")
    if len(_KEYS) < 100_000 and not isinstance(k, float):
        _KEYS[(k.__class__, k)] = text
    return text


def _value_text(obj: Any) -> tuple[str, int]:
    if isinstance(obj, str):
        literal = "\n" in obj and not any(c in obj for c in "\r\t") and obj == obj.rstrip(" ")
        style = _style(obj, literal)
        text = obj if style != _SINGLE else "'" + obj.replace("'", "''") + "'"
    else:
        tag, text = _scalar_text(obj)
        if _plain_tag(text) != tag:
            raise Unsupported("a scalar that needs a tag")
        style = _NUMBER
    if len(_VALUES) < 100_000 and not isinstance(obj, float):  # 0.0 == -0.0, and NaN is never found
        _VALUES[(obj.__class__, obj)] = text, style
    return text, style


class _Writer:
    """The emitter's state that matters in block context: column, indent, whitespace, indention."""

    def __init__(self, keys: Keys, width: int | None) -> None:
        self.keys = keys
        w = 0 if width is None else width
        self.width = 80 if 0 <= w <= 2 * BEST_INDENT else (1 << 30 if w < 0 else w)
        self.out: list[str] = []
        self.col = 0
        self.whitespace = True
        self.indention = True

    def put(self, s: str) -> None:
        self.out.append(s)
        self.col += len(s)

    def indent_to(self, indent: int) -> None:
        """libyaml's write_indent."""
        indent = max(indent, 0)
        if not self.indention or self.col > indent or (self.col == indent and not self.whitespace):
            self.out.append("\n")
            self.col = 0
        if self.col < indent:
            self.out.append(" " * (indent - self.col))
            self.col = indent
        self.whitespace = self.indention = True

    def indicator(self, s: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.put(" ")
        self.put(s)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    # ------------------------------------------------------------------ nodes
    def document(self, obj: Any, first: bool) -> None:
        if not first:
            self.indent_to(-1)
            self.indicator("---", True, False, False)
        if not isinstance(obj, dict) or not obj:
            raise Unsupported("a document that is not a non-empty mapping")
        self.node(obj, -1, depth=0, mapping_context=False)
        self.indent_to(-1)  # document end

    def node(self, obj: Any, indent: int, depth: int, mapping_context: bool) -> None:
        """``indent`` is the emitter's indent where the node starts (-1 at the document's root)."""
        if isinstance(obj, dict):
            if not obj:
                self.indicator("{", True, True, False)
                self.indicator("}", False, False, False)
                return
            inner = indent + BEST_INDENT if indent >= 0 else 0
            out = self.out
            for k in self.keys(obj, depth):
                self.indent_to(inner)
                text = _KEYS.get((k.__class__, k))
                if text is None:
                    text = _key_text(k)
                out.append(text)
                out.append(":")
                self.col += len(text) + 1
                self.whitespace = self.indention = False
                v = obj[k]
                if isinstance(v, (dict, list, tuple)):
                    self.node(v, inner, depth + 1, mapping_context=True)
                else:
                    self.scalar(v, inner + BEST_INDENT)
        elif isinstance(obj, (list, tuple)):
            if not obj:
                self.indicator("[", True, True, False)
                self.indicator("]", False, False, False)
                return
            if indent < 0:
                inner = 0
            elif mapping_context and not self.indention:  # a sequence as a mapping value is not indented
                inner = indent
            else:
                inner = indent + BEST_INDENT
            for item in obj:
                self.indent_to(inner)
                self.out.append("-")
                self.col += 1
                self.whitespace = False
                if isinstance(item, (dict, list, tuple)):
                    self.node(item, inner, depth + 1, mapping_context=False)
                else:
                    self.scalar(item, inner + BEST_INDENT)
        else:
            self.scalar(obj, indent + BEST_INDENT if indent >= 0 else BEST_INDENT)

    def scalar(self, obj: Any, indent: int) -> None:
        """A scalar after ``key:`` or ``-``: a space, then the text (folded past the width, or a block)."""
        try:
            cached = _VALUES.get((obj.__class__, obj))
        except TypeError:  # unhashable: not a scalar PyYAML writes either; let it say so
            raise Unsupported(type(obj).__name__) from None
        if cached is None:
            cached = _value_text(obj)
        text, style = cached
        if style == _LITERAL:
            self._literal(obj, indent)
            return
        if self.col + 1 + len(text) <= self.width + 1 or style == _NUMBER:
            self.out.append(" ")
            self.out.append(text)
            self.col += 1 + len(text)
        elif style == _PLAIN:
            self.put(" ")
            self._folded(obj, indent, quoted=False)
        else:
            self.put(" '")
            self._folded(obj, indent, quoted=True)
            self.put("'")
        self.whitespace = self.indention = False

    def _folded(self, value: str, indent: int, quoted: bool) -> None:
        """write_plain / write_single_quoted: a single space written past the width becomes a line break.
        Goes word by word; a space follows a space exactly when the word before it is empty."""
        last = len(value) - 1
        i = 0
        while True:
            j = value.find(" ", i)
            word = value[i:] if j < 0 else value[i:j]
            if word:
                if quoted:
                    word = word.replace("'", "''")
                self.out.append(word)
                self.col += len(word)
                self.indention = False
            if j < 0:
                return
            after_space = j > 0 and value[j - 1] == " "
            if (not after_space and self.col > self.width and (j == last or value[j + 1] != " ")
                    and (not quoted or 0 < j < last)):
                self.indent_to(indent)
            else:
                self.out.append(" ")
                self.col += 1
            i = j + 1

    def _literal(self, value: str, indent: int) -> None:
        """write_literal with its hints: an indentation digit when the text starts with a space or a break,
        ``-`` when it does not end with a break (keep-chomping is Unsupported)."""
        self.indicator("|", True, False, False)
        if value[0] in " \n":
            self.indicator(str(BEST_INDENT), False, False, False)
        if not value.endswith("\n"):
            self.indicator("-", False, False, False)
        lines = value.split("\n")
        self.out.append("\n")
        self.col = 0
        self.indention = self.whitespace = True
        for j, line in enumerate(lines):
            if line:
                self.indent_to(indent)
                self.put(line)
                self.indention = False
            if j < len(lines) - 1:
                self.out.append("\n")
                self.col = 0
                self.indention = True


def dump(docs: list[Any], keys: Keys, width: int | None = None) -> str:
    """The documents as ``yaml.serialize_all(..., Dumper=CSafeDumper, width=width)`` writes them."""
    w = _Writer(keys, width)
    for i, d in enumerate(docs):
        w.document(d, first=i == 0)
    return "".join(w.out)
