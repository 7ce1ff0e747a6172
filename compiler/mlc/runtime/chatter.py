"""What libraries say while a step runs: one place that decides what of it the user sees.

MLflow prints ("Successfully registered model ...", "Created version '1' ...") and logs through its own
stderr handler, alembic and SQLAlchemy log migrations, Lightning logs "GPU available: ...", torch and sklearn
raise warnings (ConvergenceWarning, UserWarning). None of it is mlc's output, and on a terminal it tears the live
table. While a step runs (``capture``):

- log records of every library reach one handler: MLflow's, alembic's and Lightning's own handlers are taken
  over (``adopt``) and given back afterwards, everything else propagates to the root logger as usual;
- Python warnings become records named after the package that defines the category (``sklearn.ConvergenceWarning``);
- lines printed to sys.stdout or sys.stderr become INFO records of the package that printed them.

Verbosity 0 (the default) shows only library errors; ``-v`` shows INFO and warnings; ``-vv`` DEBUG as well.
Whatever reached the handler (INFO and up, DEBUG with ``-vv``), shown or not, is kept, and ``execute`` publishes it with the step as
``library.log``, so a hidden warning can still be read afterwards.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

LOG = "library.log"
# Libraries that install handlers of their own (MLflow for itself, alembic, sqlalchemy.engine and huey;
# Lightning when the root logger has none): their records are routed through ours while a step runs.
ADOPTED = ("mlflow", "alembic", "sqlalchemy", "huey", "lightning", "lightning.pytorch", "lightning_fabric",
           "pytorch_lightning", "torch")
SHOWN = {0: logging.ERROR, 1: logging.INFO}  # verbosity -> the lowest level printed (2 and more: DEBUG)
ROOT = {0: logging.INFO, 1: logging.INFO}  # verbosity -> the root logger's level while a step runs
MAX_KEPT = 5000  # lines kept for library.log; a runaway DEBUG log must not fill memory


class _Handler(logging.Handler):
    def __init__(self, out: TextIO, shown: int) -> None:
        super().__init__(logging.DEBUG)
        self.out, self.shown = out, shown
        self.lines: list[str] = []
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        except Exception:  # noqa: BLE001 - a library's broken format string must not fail the step
            text = f"{record.levelname.lower()} {record.name}: {record.msg!r}"
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + "".join(logging.Formatter().formatException(record.exc_info)).rstrip()
        if len(self.lines) < MAX_KEPT:
            self.lines.append(text)
        if record.levelno >= self.shown and text not in self.seen:  # a warning raised per CV fold: shown once
            self.seen.add(text)
            self.out.write("".join(f"  {line}\n" for line in text.splitlines()))
            self.out.flush()


_PLUMBING = frozenset({"logging", "io", "_io", "codecs", "contextlib", "warnings", "builtins"})


def _package_of_caller() -> str:
    """The top-level package of the code that wrote to the stream (print and logging frames skipped)."""
    f: Any = sys._getframe(2)
    while f is not None:
        name = str(f.f_globals.get("__name__", ""))
        if name and name != __name__ and name.split(".")[0] not in _PLUMBING:
            return name.split(".")[0]
        f = f.f_back
    return "stdout"


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr during a step: every complete line becomes an INFO record of its writer."""

    def __init__(self, handler: _Handler, real: TextIO) -> None:
        self.handler, self.real, self.partial = handler, real, ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # code that writes to the descriptor itself bypasses the capture, but works
        return self.real.fileno()

    def write(self, s: str) -> int:
        self.partial += s
        if "\n" not in self.partial:
            return len(s)
        *lines, self.partial = self.partial.split("\n")
        who = _package_of_caller()
        for line in lines:
            line = line.rsplit("\r", 1)[-1].rstrip()  # a progress bar's last state only
            if line:
                self.handler.handle(logging.LogRecord(who, logging.INFO, "", 0, line, None, None))
        return len(s)

    def flush(self) -> None:
        pass


_active: list[tuple[_Handler, int, dict[str, tuple[list, bool, int]]]] = []


def adopt() -> None:
    """Route the records of ADOPTED loggers that have handlers of their own through the active capture (a no-op
    outside one). Called at the start of a capture, and by tracking after MLflow is imported, since MLflow
    installs its handlers at import time."""
    if not _active:
        return
    _, verbosity, saved = _active[-1]
    known = logging.root.manager.loggerDict
    for name in ADOPTED:
        logger = known.get(name)
        if not isinstance(logger, logging.Logger) or name in saved:
            continue
        if logger.handlers or verbosity >= 2:
            saved[name] = (list(logger.handlers), logger.propagate, logger.level)
            logger.handlers = []
            logger.propagate = True
            if verbosity >= 2:
                logger.setLevel(logging.DEBUG)


@contextlib.contextmanager
def capture(verbosity: int = 0) -> Iterator[list[str]]:
    """Route library logging, warnings and prints as described above; yields the kept lines."""
    out = sys.stderr
    handler = _Handler(out, SHOWN.get(verbosity, logging.DEBUG))
    root = logging.getLogger()
    root_level = root.level
    saved: dict[str, tuple[list, bool, int]] = {}
    _active.append((handler, verbosity, saved))
    root.addHandler(handler)
    root.setLevel(ROOT.get(verbosity, logging.DEBUG))
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Stream(handler, old_out), _Stream(handler, old_err)  # type: ignore[assignment]

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        pkg = category.__module__.split(".")[0]
        name = category.__name__ if pkg == "builtins" else f"{pkg}.{category.__name__}"
        text = f"{message} ({filename}:{lineno})" if verbosity >= 2 else str(message)
        handler.handle(logging.LogRecord(name, logging.WARNING, filename, lineno, text, None, None))

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            adopt()
            yield handler.lines
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _Stream) and stream.partial.strip():
                stream.write("\n")
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
        root.setLevel(root_level)
        _active.pop()
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
