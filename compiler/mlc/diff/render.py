"""The three faces of a diff: text for a terminal, markdown for the pull-request comment, json for tools.

The markdown is one comment: a marker line (``<!-- mlc-diff -->``, which the generated workflow looks for to
update the same comment on every push), per project a table of changes, the generated resources, and a unified
diff per resource in a collapsed ``<details>`` block. GitHub refuses a comment over 65,536 characters, so the
diffs are dropped largest first, each replaced by a line saying so, until the comment fits (``LIMIT``).
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from typing import Any

from mlc.diff.command import ProjectDiff, Resource
from mlc.diff.semantic import CLASSES, show

MARKER = "<!-- mlc-diff -->"
LIMIT = 65_536  # GitHub's largest issue/PR comment, in characters
_MARGIN = 512  # the truncation note itself, and room for a CI step to add a footer


def unified(r: Resource) -> str:
    a = (r.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (r.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, f"a/{r.path}" if r.old is not None else "/dev/null",
                                      f"b/{r.path}" if r.new is not None else "/dev/null"))
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


def _counts(d: ProjectDiff) -> str:
    c = Counter(ch.impact for ch in d.changes)
    return ", ".join(f"{c[k]} {k}" for k in CLASSES if c[k])


def _res_counts(d: ProjectDiff) -> str:
    c = Counter(r.status for r in d.resources)
    return ", ".join(f"{c[k]} {k}" for k in ("added", "changed", "removed") if c[k])


def _values(ch: Any) -> str:
    if ch.status == "added":
        return f"(none) → {show(ch.new)}"
    if ch.status == "removed":
        return f"{show(ch.old)} → (none)"
    return f"{show(ch.old)} → {show(ch.new)}" if ch.path != "(spec text)" else "text only"


# --------------------------------------------------------------------------- text
def text(diffs: list[ProjectDiff]) -> str:
    out: list[str] = []
    for d in diffs:
        head = f"{d.project} ({d.spec}) against {d.base}"
        if not d.changed:
            out.append(f"{head}: no changes\n")
            continue
        n = len(d.changes)
        out.append(f"{head}: {n} change{'s' if n != 1 else ''}" + (f" ({_counts(d)})" if n else ""))
        width = max((len(c.path) for c in d.changes), default=0)
        for c in d.changes:
            out.append(f"  {c.impact:<9} {c.path:<{width}}  {_values(c)}")
            out.append(f"  {'':<9} {c.sentence}")
        out.extend(f"  note: {x}" for x in d.notes)
        if d.resources:
            out.append(f"\ngenerated resources ({_res_counts(d)}):")
            w = max(len(r.path) for r in d.resources)
            out.extend(f"  {r.status:<8} {r.path:<{w}}  {r.what}".rstrip() for r in d.resources)
            out.append("")
            out.extend(unified(r).rstrip("\n") for r in d.resources)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- markdown
def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _code(s: str) -> str:
    s = s.replace("\n", " ")
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}" if s else ""


def _fence(body: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}diff\n{body}{ticks}"


def _project_md(d: ProjectDiff, shown: dict[str, str | None]) -> list[str]:
    lines = [f"### `{d.project}`: " + (f"{len(d.changes)} change{'s' if len(d.changes) != 1 else ''}"
                                        if d.changes else "no spec changes")
             + (f" ({_counts(d)})" if d.changes else ""), "",
             f"Spec `{d.spec}` against {_code(d.base)}.", ""]
    if not d.changed:
        return lines + ["No changes.", ""]
    if d.changes:
        lines += ["| impact | what it does | path | old → new |", "|---|---|---|---|"]
        lines += [f"| **{c.impact}** | {_cell(c.sentence)} | {_code(c.path)} | {_cell(_code(_values(c)))} |"
                  for c in d.changes]
        lines.append("")
    lines += [f"> {n}" for n in d.notes] + ([""] if d.notes else [])
    if d.resources:
        lines += [f"<b>Generated resources</b> ({_res_counts(d)})", "", "| | file | resource |", "|---|---|---|"]
        lines += [f"| {r.status} | {_code(r.path)} | {_cell(r.what)} |" for r in d.resources]
        lines.append("")
        for r in d.resources:
            body = shown.get(r.path)
            if body is None:
                lines += [f"<details><summary><code>{r.path}</code> ({r.status}): diff not shown</summary>", "",
                          ("Left out to keep this comment under GitHub's 65,536-character limit; "
                           "run `mlc diff` locally to see it."), "</details>"]
            else:
                lines += [f"<details><summary><code>{r.path}</code> ({r.status})</summary>", "", _fence(body),
                          "</details>"]
        lines.append("")
    return lines


def markdown(diffs: list[ProjectDiff], limit: int = LIMIT) -> str:
    """The PR comment; never longer than ``limit`` characters."""
    shown: dict[str, str | None] = {r.path: unified(r) for d in diffs for r in d.resources}

    def build(note: str = "") -> str:
        changed = [d for d in diffs if d.changed]
        title = ("## mlc diff: " + (f"{len(changed)} of {len(diffs)} project{'s' if len(diffs) != 1 else ''} "
                                    "changed" if changed else "no changes"))
        lines = [MARKER, title, ""]
        if note:
            lines += [f"> [!NOTE]\n> {note}", ""]
        for d in diffs:
            lines += _project_md(d, shown)
        return "\n".join(lines).rstrip("\n") + "\n"

    out = build()
    for dropped, path in enumerate(sorted(shown, key=lambda p: -len(shown[p] or "")), start=1):
        if len(out) <= limit - _MARGIN:
            break
        shown[path] = None
        out = build(f"{dropped} of {len(shown)} resource diffs left out, largest first, to stay under GitHub's "
                    "65,536-character comment limit.")
    if len(out) > limit:  # the tables alone are too long: cut at a line and say so
        tail = "\n\n… cut here: the full diff is longer than a GitHub comment allows; run `mlc diff` locally.\n"
        out = out[:limit - len(tail)].rsplit("\n", 1)[0] + tail
    return out


# --------------------------------------------------------------------------- json
def json_text(diffs: list[ProjectDiff]) -> str:
    doc = {"changed": any(d.changed for d in diffs), "projects": [{
        "project": d.project, "spec": d.spec, "base": d.base, "changed": d.changed,
        "changes": [c.to_json() for c in d.changes], "notes": d.notes,
        "resources": [{"status": r.status, "path": r.path, "resource": r.what, "diff": unified(r)}
                      for r in d.resources],
    } for d in diffs]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
