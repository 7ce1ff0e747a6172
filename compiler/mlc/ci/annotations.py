"""`mlc validate --format github|sarif`: the same diagnostics as the text output, for CI.

``github``: one workflow command per diagnostic, ``::error file=F,line=L,col=C,endColumn=E,title=E102::message``,
which GitHub Actions turns into an annotation on that line of the pull request's diff. ``sarif``: one SARIF 2.1.0
log (one run, tool ``mlc``), what code-scanning uploads (github/codeql-action/upload-sarif) read.

File paths are written as given on the command line (relative paths stay relative, with ``/``), since both
GitHub and code scanning resolve them against the repository root the job runs in.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from mlc import __version__
from mlc.errors import Diagnostic

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _escape_data(s: str) -> str:
    """The message part of a workflow command (actions/toolkit's escapeData)."""
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    """A property value (actions/toolkit's escapeProperty): also ``:`` and ``,``, which separate properties."""
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _uri(file: str) -> str:
    return PurePath(file).as_posix()


def _text(d: Diagnostic) -> str:
    out = f"{d.path}: {d.message}" if d.path else d.message
    return out + (f"\nhint: {d.hint}" if d.hint else "")


def github_command(d: Diagnostic, file: str) -> str:
    """One ``::error``/``::warning`` line. Without a span (an unreadable file) only ``file`` is given."""
    props = {"file": _uri(d.span.file if d.span else file)}
    if d.span:
        props.update(line=str(d.span.line), col=str(d.span.col))
        if d.span.end_col is not None:
            props["endColumn"] = str(d.span.end_col)
    props["title"] = d.code
    level = "error" if d.severity == "error" else "warning"
    return f"::{level} " + ",".join(f"{k}={_escape_property(v)}" for k, v in props.items()) + \
        f"::{_escape_data(_text(d))}"


def github(results: list[tuple[str, list[Diagnostic]]]) -> str:
    """Every diagnostic of every file as workflow commands, then one plain summary line per file."""
    lines = [github_command(d, file) for file, diags in results for d in diags]
    for file, diags in results:
        n = sum(d.severity == "error" for d in diags)
        lines.append(f"{_uri(file)}: " + (f"{n} error{'s' if n != 1 else ''}" if n else "ok"))
    return "\n".join(lines) + "\n"


def sarif(results: list[tuple[str, list[Diagnostic]]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log: every file is an artifact (so a clean file is reported as scanned), every diagnostic
    a result whose ruleId is its code (E102, W300...)."""
    rules: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    artifacts = [{"location": {"uri": _uri(file)}} for file, _ in results]
    for i, (file, diags) in enumerate(results):
        for d in diags:
            rules.setdefault(d.code, {"id": d.code, "name": d.code,
                                      "shortDescription": {"text": f"mlc spec check {d.code}"}})
            loc: dict[str, Any] = {"artifactLocation": {"uri": _uri(d.span.file if d.span else file),
                                                        "index": i}}
            if d.span:
                region: dict[str, Any] = {"startLine": d.span.line, "startColumn": d.span.col}
                if d.span.end_col is not None and d.span.end_col > d.span.col:
                    region["endColumn"] = d.span.end_col
                loc["region"] = region
            result: dict[str, Any] = {"ruleId": d.code, "level": "error" if d.severity == "error" else "warning",
                                      "message": {"text": _text(d)}, "locations": [{"physicalLocation": loc}]}
            if d.path:
                result["locations"][0]["logicalLocations"] = [{"fullyQualifiedName": d.path, "kind": "member"}]
            out.append(result)
    ids = sorted(rules)
    for r in out:
        r["ruleIndex"] = ids.index(r["ruleId"])
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mlc", "version": __version__, "semanticVersion": __version__,
                                "rules": [rules[k] for k in ids]}},
            "artifacts": artifacts,
            "columnKind": "unicodeCodePoints",
            "results": out,
        }],
    }


def sarif_text(results: list[tuple[str, list[Diagnostic]]]) -> str:
    return json.dumps(sarif(results), indent=2) + "\n"
