"""A check on the raw YAML tree, run even when the typed models reject the spec: a literal credential is
worth reporting either way.

    E220 literal secret
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.spec.checks.common import diag, walk
from mlc.spec.loader import Loaded

_SECRET_KEY = re.compile(
    r"(^|[_\-.])(password|passwd|pwd|secret[_\-]?key|secret[_\-]?access[_\-]?key|access[_\-]?key([_\-]?id)?|"
    r"token|auth[_\-]?token|api[_\-]?key|apikey|credentials?|private[_\-]?key)$",
    re.IGNORECASE,
)
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_URI_PASSWORD = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


def secrets(loaded: Loaded) -> Iterator[Diagnostic]:
    hint = "reference a Kubernetes Secret instead, e.g. `{secret: NAME, key: KEY}`"
    for path, v in walk(loaded.data, ()):
        if not isinstance(v, str) or not v:
            continue
        if path and isinstance(path[-1], str) and _SECRET_KEY.search(path[-1]):
            yield diag(loaded, "E220", path, f"literal credential in '{path[-1]}'", hint)
        elif _AWS_KEY.search(v):
            yield diag(loaded, "E220", path, "this looks like an AWS access key id", hint)
        elif _URI_PASSWORD.match(v):
            yield diag(
                loaded,
                "E220",
                path,
                "this URI embeds a password",
                "remove `user:password@`; pass credentials through a Secret (environments.*.secrets)",
            )
