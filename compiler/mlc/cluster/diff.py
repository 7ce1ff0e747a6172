"""Field-level differences between a live object and what it would become (a server dry-run apply result).

Diffing the server's own dry-run answer, not our manifest, means defaults, admission mutations and fields other
managers own show up exactly as the server will store them; fields the server fills in itself are ignored.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

IGNORED_METADATA = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds")


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    o = {k: v for k, v in obj.items() if k != "status"}
    if "metadata" in o:
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k not in IGNORED_METADATA}
    return o


def changes(live: dict[str, Any], desired: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(op, dotted path, old, new) with op one of + - ~, in path order."""
    out: list[tuple[str, str, Any, Any]] = []
    _walk(comparable(live), comparable(desired), "", out)
    return out


def _walk(a: Any, b: Any, path: str, out: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(("+", p, None, b[k]))
            elif k not in b:
                out.append(("-", p, a[k], None))
            else:
                _walk(a[k], b[k], p, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(("~", path, a, b))


def render(chg: list[tuple[str, str, Any, Any]], indent: str = "      ") -> list[str]:
    lines: list[str] = []
    for op, path, old, new in chg:
        if op == "~" and isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
            lines.append(f"{indent}~ {path}:")
            ud = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
            lines.extend(f"{indent}    {line}" for line in list(ud)[2:])
        elif op == "~":
            lines.append(f"{indent}~ {path}: {_short(old)} -> {_short(new)}")
        elif op == "+":
            lines.append(f"{indent}+ {path}: {_short(new)}")
        else:
            lines.append(f"{indent}- {path}: {_short(old)}")
    return lines


def _short(v: Any, limit: int = 120) -> str:
    s = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."
