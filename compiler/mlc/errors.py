"""One error family for everything a user can cause.

The CLI is the only place that turns these into exit codes (1 for MlcError, 3 for anything else).
A SpecError carries a source span so it can be rendered like a compiler diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A 1-based line/column range in one file; ``end_col`` is exclusive."""

    file: str
    line: int
    col: int
    end_col: int | None = None


@dataclass
class Diagnostic:
    code: str
    message: str
    path: str = ""
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self, source_lines: list[str] | None = None, file: str | None = None) -> str:
        where = (
            f"{self.span.file}:{self.span.line}:{self.span.col}: "
            if self.span
            else (f"{file}: " if file else "")
        )
        subject = f"{self.path}: " if self.path else ""
        out = [f"{where}{self.severity}[{self.code}] {subject}{self.message}"]
        if self.span and source_lines is not None and 0 < self.span.line <= len(source_lines):
            out.extend(_excerpt(source_lines[self.span.line - 1], self.span))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict:
        d: dict = {"severity": self.severity, "code": self.code, "path": self.path, "message": self.message}
        if self.span:
            d.update(file=self.span.file, line=self.span.line, column=self.span.col)
            if self.span.end_col is not None:
                d["end_column"] = self.span.end_col
        if self.hint:
            d["hint"] = self.hint
        return d


_SHOWN = 100  # longest source excerpt printed; a minified or hostile line is cut around the caret


def _excerpt(line: str, span: Span) -> list[str]:
    """The source line and a caret under the token, printable and at most _SHOWN characters wide."""
    text = "".join(c if c.isprintable() else ("?" if c != "\t" else " ") for c in line.rstrip("\r\n"))
    col = span.col - 1
    width = max(1, (span.end_col or span.col + 1) - span.col)
    width = min(width, max(1, len(text) - col))
    start = 0
    if len(text) > _SHOWN:
        start = max(0, min(col - 20, len(text) - _SHOWN))
        shown = (
            ("..." if start else "")
            + text[start : start + _SHOWN]
            + ("..." if start + _SHOWN < len(text) else "")
        )
        pad = col - start + (3 if start else 0)
        width = min(width, _SHOWN - (col - start))
    else:
        shown, pad = text, col
    gutter = f"{span.line:>5} | "
    return [gutter + shown, " " * (len(gutter) - 2) + "| " + " " * pad + "^" * max(1, width)]


class MlcError(Exception):
    """Base of every error the user can cause; the CLI maps it to exit code 1."""

    exit_code = 1

    def render(self) -> str:
        return f"error: {self}"


class UsageError(MlcError):
    exit_code = 2


@dataclass
class SpecError(MlcError):
    """One or more diagnostics against one spec file."""

    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    def summary(self) -> str:
        n = sum(d.severity == "error" for d in self.diagnostics)
        w = len(self.diagnostics) - n  # warnings ride along when there are errors too
        out = f"{self.file}: {n} error{'s' if n != 1 else ''}"
        return out + (f", {w} warning{'s' if w != 1 else ''}" if w else "")

    def __str__(self) -> str:  # dataclass would otherwise replace Exception.__str__
        return self.summary()

    def render(self) -> str:
        lines = self.source.splitlines() if self.source is not None else _read_lines(self.file)
        body = "\n\n".join(d.render(lines, self.file) for d in self.diagnostics)
        return f"{body}\n\n{self.summary()}"


def _read_lines(file: str) -> list[str] | None:
    try:
        p = Path(file)
        if p.stat().st_size > 5_000_000:
            return None
        return p.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


class CompileError(MlcError):
    pass


class RunError(MlcError):
    """A pipeline step failed for a reason the user can act on (data check, gate, missing model)."""


class ApplyError(MlcError):
    pass


class ServiceError(MlcError):
    """A service of the user's environment (S3, MLflow, the Kubernetes API, Prometheus) could not be reached,
    refused the request or is misconfigured. Not a bug in mlc: one line naming the service, where, what it
    answered and what to check (raised by the adapters in mlc.services)."""

    def __init__(self, service: str, where: str, answered: str, check: str) -> None:
        self.service, self.where, self.answered, self.check = service, where, answered, check
        super().__init__(f"{service} at {where}: {answered}; check {check}")
