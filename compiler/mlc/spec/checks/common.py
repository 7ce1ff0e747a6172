"""What every check module shares: the check signature, and diagnostics placed on the spec's source."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mlc.errors import Diagnostic
from mlc.plan.names import is_dns_label
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec

Check = Callable[[Spec, Loaded], Iterable[Diagnostic]]
RawCheck = Callable[[Loaded], Iterable[Diagnostic]]

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def diag(
    loaded: Loaded, code: str, path: tuple, message: str, hint: str | None = None, *, key: bool = False
) -> Diagnostic:
    from mlc.spec.validate import dotted

    return Diagnostic(code, message, dotted(path), loaded.span(path, key=key), hint)


def closest(word: str, options: Iterable[str]) -> str | None:
    from mlc.spec.validate import suggest

    return suggest(word, sorted(options))


def walk(node: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def dns_hint(value: str) -> str:
    from mlc.plan.names import dns_label

    fixed = dns_label(value)
    tip = f"; e.g. '{fixed}'" if fixed and fixed != value and is_dns_label(fixed) else ""
    return "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63" + tip
