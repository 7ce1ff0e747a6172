"""The spec against its data files: every local file the pipeline reads exists, and its header (CSV: the
first record; Parquet: the footer's schema) has the columns the step that reads it needs.

Cheap and bounded on purpose: at most _HEAD_BYTES of a CSV are read, never pandas; pyarrow is imported only
when a local Parquet source exists. Remote URIs (anything with ``://``) are not touched.

    E300 a local data file that does not exist (did-you-mean on the names beside it)
    E301 a column the step needs is not in the file's header (did-you-mean on the header)
    E302 a data file that cannot be read as its format (empty, not UTF-8, not Parquet, a directory)
    W300 training data columns that are not in data.schema (ingest ignores them)
    W301 a file that is only a pointer (not pulled from DVC or Git LFS yet): its columns are not checked
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from mlc.errors import Diagnostic
from mlc.spec.checks.common import closest, diag
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec

_HEAD_BYTES = 1 << 20  # a header row longer than 1 MiB is not a header
_LFS = b"version https://git-lfs.github.com/spec/"
_SHOWN = 12  # header names listed in a hint


@dataclass(frozen=True)
class _Read:
    """A data file that the pipeline reads: where the spec names it, and what the reading step needs."""

    path: tuple  # of the uri node in the spec
    uri: str
    format: str
    needs: tuple[str, ...]  # columns the step reads, in schema order
    what: str  # for messages: "data.schema", "the model's inputs", ...
    training: bool  # training data: columns beyond the schema are worth a warning
    dvc: str | None = None  # a DVC pointer the file is pinned by


class _Unreadable(Exception):
    pass


class _Pointer(Exception):
    pass


def _reads(spec: Spec) -> list[_Read]:
    schema = list(spec.data.schema_)
    used = {c for f in spec.features if f.type != "drop" for c in f.columns}
    inputs = tuple(c for c in schema if c in used)
    out = [
        _Read(
            ("data", "sources", i, "uri"),
            s.uri,
            s.format,
            tuple(schema),
            "data.schema",
            True,
            s.pin.dvc if s.pin else None,
        )
        for i, s in enumerate(spec.data.sources)
    ]
    batch = spec.deployment.batch
    if batch is not None:
        out.append(
            _Read(("deployment", "batch", "input", "uri"), batch.input.uri, batch.input.format, inputs,
                  "the model's inputs", False)
        )  # fmt: skip
    drift = spec.monitoring.drift
    if drift is not None:
        feats = tuple(c for c in schema if c in drift.features)
        out.append(
            _Read(("monitoring", "drift", "current", "uri"), drift.current.uri, drift.current.format, feats,
                  "monitoring.drift.features", False)
        )  # fmt: skip
    quality = spec.monitoring.quality
    if quality is not None and quality.feedback is not None:
        label = spec.data.label.column
        needs = tuple(c for c in schema if c in used or c == label)
        out.append(
            _Read(("monitoring", "quality", "feedback", "uri"), quality.feedback.uri, quality.feedback.format,
                  needs, "the model's inputs and the label", False)
        )  # fmt: skip
    return out


def check_data_files(spec: Spec, loaded: Loaded, root: Path) -> list[Diagnostic]:
    """Diagnostics (errors and warnings) for every local data file ``spec`` reads; ``root`` is the spec's
    directory, which relative URIs resolve against (as `mlc run` resolves them)."""
    out: list[Diagnostic] = []
    headers: dict[tuple[Path, str], list[str] | BaseException] = {}
    for r in _reads(spec):
        if "://" in r.uri:
            continue
        file = Path(r.uri) if Path(r.uri).is_absolute() else root / r.uri
        if not file.exists():
            out.append(_missing(loaded, r, file, root))
            continue
        key = (file, r.format)
        if key not in headers:
            try:
                headers[key] = _parquet_columns(file) if r.format == "parquet" else _csv_columns(file)
            except (_Unreadable, _Pointer) as e:
                headers[key] = e
        got = headers[key]
        if isinstance(got, _Pointer):
            what, command = got.args
            out.append(
                _diag_warning(
                    loaded,
                    "W301",
                    r.path,
                    f"{r.uri} is {what}; its columns are not checked",
                    f"run `{command}` before `mlc run`",
                )
            )
            continue
        if isinstance(got, BaseException):
            out.append(
                diag(
                    loaded,
                    "E302",
                    r.path,
                    f"cannot read {r.uri} as {r.format}: {got}",
                    _format_hint(r.format),
                )
            )
            continue
        out.extend(_columns(loaded, r, got))
    return out


# ----------------------------------------------------------------------------- a missing file
def _missing(loaded: Loaded, r: _Read, file: Path, root: Path) -> Diagnostic:
    parent = file.parent
    shown = r.uri.rsplit("/", 1)[0] if "/" in r.uri else "."
    if not parent.is_dir():
        hint = f"the directory '{shown}' does not exist either (relative paths start at the spec's directory)"
    else:
        try:
            siblings = sorted(p.name for p in parent.iterdir() if p.is_file() and not p.name.startswith("."))
        except OSError:
            siblings = []
        close = closest(file.name, siblings) or _same_ignoring_case(file.name, siblings)
        if close:
            hint = f"did you mean '{r.uri[: len(r.uri) - len(file.name)]}{close}'?"
        elif siblings:
            listed = ", ".join(siblings[:_SHOWN]) + (", ..." if len(siblings) > _SHOWN else "")
            hint = f"'{shown}' holds: {listed}"
        else:
            hint = f"'{shown}' is empty"
    pointer = r.dvc or (r.uri + ".dvc" if Path(str(file) + ".dvc").is_file() else None)
    if pointer is not None and (root / pointer).is_file():
        return _diag_warning(
            loaded,
            "W301",
            r.path,
            f"{r.uri} is not there yet (DVC pointer {pointer}); its columns are not checked",
            "run `dvc pull` before `mlc run`",
        )
    return diag(loaded, "E300", r.path, f"data file '{r.uri}' does not exist", hint)


def _same_ignoring_case(name: str, options: list[str]) -> str | None:
    return next((o for o in options if o.lower() == name.lower()), None)


# ----------------------------------------------------------------------------- headers
def _csv_columns(file: Path) -> list[str]:
    """The first non-blank CSV record, as pandas.read_csv(dtype=str) names the columns (BOM dropped, empty
    names become 'Unnamed: <i>'), from at most _HEAD_BYTES of the file."""
    try:
        with file.open("rb") as f:
            head = f.read(_HEAD_BYTES)
            more = bool(f.read(1))
    except IsADirectoryError as e:
        raise _Unreadable("it is a directory") from e
    except OSError as e:
        raise _Unreadable(e.strerror or str(e)) from e
    if head.startswith(_LFS):
        raise _Pointer("a Git LFS pointer, not the data", "git lfs pull")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=not more)
    except UnicodeDecodeError as e:
        raise _Unreadable(f"not UTF-8 text (byte {e.start})") from e
    complete = text if not more else text[: max(text.rfind("\n"), text.rfind("\r")) + 1]
    for row in csv.reader(io.StringIO(complete, newline="")):
        if row and any(c.strip() for c in row):
            return [c if c != "" else f"Unnamed: {i}" for i, c in enumerate(row)]
    if more:
        raise _Unreadable(f"no header line ends within the first {_HEAD_BYTES >> 20} MiB")
    raise _Unreadable("the file is empty" if not text.strip() else "no header row")


def _parquet_columns(file: Path) -> list[str]:
    """Column names from the Parquet footer, without the pandas index columns read_parquet restores."""
    try:
        with file.open("rb") as f:
            if f.read(len(_LFS)) == _LFS:
                raise _Pointer("a Git LFS pointer, not the data", "git lfs pull")
    except IsADirectoryError as e:
        raise _Unreadable("it is a directory") from e
    except OSError as e:
        raise _Unreadable(e.strerror or str(e)) from e
    import pyarrow.parquet as pq  # only here: the CSV path stays fast

    try:
        schema = pq.read_schema(file)
    except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
        raise _Unreadable(str(e).splitlines()[0] if str(e) else type(e).__name__) from e
    index = set()
    meta = schema.pandas_metadata or {}
    for c in meta.get("index_columns", []):
        if isinstance(c, str):
            index.add(c)
    return [n for n in schema.names if n not in index]


def _format_hint(fmt: str) -> str:
    if fmt == "parquet":
        return "is it a Parquet file? set `format: csv` for CSV"
    return "mlc reads CSV as UTF-8 with a header row; set `format: parquet` for Parquet"


# ----------------------------------------------------------------------------- columns
def _columns(loaded: Loaded, r: _Read, header: list[str]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    have = set(header)
    missing = [c for c in r.needs if c not in have]
    claimed: set[str] = set()
    unmatched: list[str] = []
    for col in missing:
        close = _same_ignoring_case(col, [h for h in header if h not in claimed]) or closest(
            col, [h for h in header if h not in claimed]
        )
        if close is not None:
            claimed.add(close)
            out.append(
                diag(
                    loaded,
                    "E301",
                    r.path,
                    f"column '{col}' of {r.what} is not in {r.uri}",
                    f"did you mean '{close}'? (the file's header has it)",
                )
            )
        else:
            unmatched.append(col)
    if unmatched:
        names = ", ".join(f"'{c}'" for c in unmatched)
        one = len(unmatched) == 1
        out.append(
            diag(
                loaded,
                "E301",
                r.path,
                f"column{'' if one else 's'} {names} of {r.what} {'is' if one else 'are'} not in {r.uri}",
                _header_hint(header),
            )
        )
    if r.training:
        extra = [h for h in header if h not in r.needs and h not in claimed]
        if extra:
            names = ", ".join(f"'{c}'" for c in extra)
            one = len(extra) == 1
            out.append(
                _diag_warning(
                    loaded,
                    "W300",
                    r.path,
                    f"{r.uri} has column{'' if one else 's'} {names} that data.schema does not declare",
                    "ingest ignores undeclared columns; declare them under data.schema (and `type: drop` "
                    "them in features to keep them out of the model) or remove them from the file",
                )
            )
    return out


def _header_hint(header: list[str]) -> str:
    if len(header) == 1 and any(s in header[0] for s in ";\t|"):
        sep = next(s for s in ";\t|" if s in header[0])
        return f"the header is one column, {header[0][:60]!r}: mlc reads CSV separated by ',', not {sep!r}"
    shown = ", ".join(header[:_SHOWN]) + (", ..." if len(header) > _SHOWN else "")
    return f"the file's columns: {shown}"


def _diag_warning(
    loaded: Loaded, code: str, path: tuple, message: str, hint: str | None = None
) -> Diagnostic:
    d = diag(loaded, code, path, message, hint)
    d.severity = "warning"
    return d
