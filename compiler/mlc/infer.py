"""`mlc init --from-csv`: profile a sample of a CSV file and propose a whole spec, each choice with its reason.

Imported only by `mlc init --from-csv`; it needs pandas, which `mlc validate` never imports.

The sample is read with the runtime's own parsing (pandas, every column as text, pandas' default NA tokens,
`pd.to_numeric`, ISO 8601 datetimes), so that what is inferred here is what `mlc run` will see. It is the
head of the file, bounded in rows and cells (SAMPLE_ROWS, SAMPLE_CELLS), so a file of any size is read in
bounded memory. Constraints that the sample proves only for its own rows (ranges, allowed values,
nullability, uniqueness) become hard schema constraints when the sample is the whole file, and warn-level
data checks otherwise.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc.errors import MlcError

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 100_000  # at most this many data rows are profiled ...
SAMPLE_CELLS = 5_000_000  # ... and at most this many cells (a wide file gets fewer rows, never under 1,000)
HEAD_BYTES = 1 << 20  # what the encoding, delimiter and header are sniffed from
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MAX_LISTED = 20  # a category with at most this many values gets `allowed:`
ONEHOT_MAX = 100  # up to this many distinct values: category, one-hot (the most frequent MAX_LISTED kept)
FREE_TEXT_SHARE = 0.5  # more distinct values than this share of the rows: free text, dropped
MIN_ID_ROWS = 20  # fewer rows than this prove nothing about uniqueness
MIN_CLASS_ROWS = 5  # a stratified split needs some rows of each class on both sides
CLASS_WORDS = ("1", "true", "yes", "y", "t", "positive", "pos")  # what a positive class is usually called
_BOOL_WORDS = {"true", "false", "yes", "no", "t", "f", "y", "n"}  # the runtime's boolean words, less 1/0
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_OTHER_DATE = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_LEADING_ZERO = re.compile(r"^[-+]?0\d")
_ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key|code)$|^id[^a-z]", re.IGNORECASE)


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Dialect:
    delimiter: str
    encoding: str  # "utf-8" (a BOM is fine: pandas skips it), "cp1252" or "latin-1"
    bom: bool

    @property
    def readable_as_is(self) -> bool:
        """Whether the runtime's reader (comma-separated UTF-8) reads the file unchanged."""
        return self.delimiter == "," and self.encoding == "utf-8"

    def describe(self) -> str:
        parts = [f"{DELIMITER_NAMES[self.delimiter]}-separated"]
        parts.append(self.encoding.upper() + (" with a BOM" if self.bom else ""))
        return ", ".join(parts)


def sniff(path: Path) -> tuple[Dialect, list[str]]:
    """The file's encoding, delimiter and header; a clear error for what is not CSV text."""
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
            more = bool(fh.read(1))
    except OSError as e:
        raise MlcError(f"{path}: cannot read: {e.strerror or e}") from e
    bom = head.startswith(codecs.BOM_UTF8)
    body = head[3:] if bom else head
    if not body.strip():
        raise MlcError(f"{path}: the file is empty; --from-csv needs a header row and at least one data row")
    for magic, what in ((b"PAR1", "a Parquet file"), (b"PK\x03\x04", "a zip archive (an .xlsx workbook?)"),
                        (b"\x1f\x8b", "gzip-compressed (decompress it first)"), (b"\xd0\xcf\x11\xe0", "an .xls workbook")):
        if body.startswith(magic):
            raise MlcError(f"{path}: this is {what}, not CSV text; --from-csv reads delimited text files")
    if b"\x00" in body[:65536]:
        raise MlcError(f"{path}: this looks like a binary file (it contains NUL bytes), not CSV text")
    encoding = "utf-8"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(body, final=not more)
    except UnicodeDecodeError:
        try:
            text, encoding = body.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = body.decode("latin-1"), "latin-1"
    if more and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # the head may end inside a record
    delimiter, header = _delimiter(text, complete=not more)
    return Dialect(delimiter, encoding, bom), header


def _delimiter(text: str, complete: bool) -> tuple[str, list[str]]:
    """The candidate delimiter that splits the first records into the same number (> 1) of fields most often."""
    csv.field_size_limit(1 << 30)  # a long quoted field is data, not an error (pandas has no such limit)
    best: tuple[float, int, int] | None = None
    choice, header = ",", []
    for rank, d in enumerate(DELIMITERS):
        try:
            records = [r for _, r in zip(range(201), csv.reader(io.StringIO(text), delimiter=d)) if r]
        except csv.Error:
            continue
        if not records:
            continue
        if not complete and len(records) > 2:
            records = records[:-1]  # possibly cut short
        width = len(records[0])
        agree = sum(len(r) == width for r in records) / len(records)
        score = (agree, width, -rank)
        if width > 1 and (best is None or score > best):
            best, choice, header = score, d, records[0]
    if best is None:  # one column: nothing splits it
        header = next(csv.reader(io.StringIO(text)), [])
    return choice, header


def sample_rows(ncols: int) -> int:
    return min(SAMPLE_ROWS, max(1_000, SAMPLE_CELLS // max(ncols, 1)))


@dataclass
class Sample:
    path: Path
    dialect: Dialect
    frame: Any  # pandas.DataFrame of str / NaN, at most `cap` rows
    cap: int
    complete: bool  # the sample is the whole file


def read_sample(path: Path) -> Sample:
    """The head of the file as text columns, exactly as the runtime parses them."""
    import pandas as pd

    dialect, header = sniff(path)
    names = list(header)
    for i, h in enumerate(names):
        if not h.strip():
            raise MlcError(f"{path}: column {i + 1} of the header has no name; name every column")
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        raise MlcError(f"{path}: the header names {', '.join(map(repr, dupes))} more than once; "
                       "column names must be distinct")
    cap = sample_rows(len(names))
    try:
        df = pd.read_csv(path, sep=dialect.delimiter, dtype=str, nrows=cap + 1, encoding=dialect.encoding,
                         keep_default_na=True, on_bad_lines="error")
    except pd.errors.EmptyDataError as e:
        raise MlcError(f"{path}: no columns to read: {e}") from e
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as e:
        raise MlcError(f"{path}: cannot read it as {dialect.describe()} CSV: {str(e).strip()}") from e
    if len(df) == 0:
        raise MlcError(f"{path}: the file has a header but no data rows")
    complete = len(df) <= cap
    return Sample(path, dialect, df.iloc[:cap], cap, complete)


# ----------------------------------------------------------------------------- profiling
@dataclass
class Profile:
    """What one column's sample shows."""

    name: str
    rows: int
    nulls: int
    distinct: int
    kind: str  # empty | boolean | integer | float | datetime | text
    lo: float | None = None
    hi: float | None = None
    skew: float | None = None
    median: float | None = None
    ordered: bool = False  # non-decreasing in file order (datetime and integer columns)
    decimals: bool = False  # whole numbers written as 3.0
    top: list[tuple[str, int]] = field(default_factory=list)  # most frequent values, for text and labels
    values: list[str] = field(default_factory=list)  # every distinct value, when at most MAX_LISTED
    note: str = ""  # why a column that looks like something else is text
    word_like: bool = False  # text without whitespace and at most 64 characters: can be an id

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def nonnull(self) -> int:
        return self.rows - self.nulls


def profile(name: str, s: pd.Series) -> Profile:
    import numpy as np
    import pandas as pd

    v = s.dropna()
    p = Profile(name, len(s), int(len(s) - len(v)), int(v.nunique()), "empty")
    if not len(v):
        return p
    counts = v.value_counts(sort=True)
    ordered_counts = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    p.top = [(str(k), int(c)) for k, c in ordered_counts[:5]]
    if p.distinct <= MAX_LISTED:
        p.values = sorted(str(k) for k in counts.index)
    stripped = v.str.strip()
    low = stripped.str.lower()
    if set(low.unique()) <= _BOOL_WORDS and low.nunique() <= 2:
        p.kind = "boolean"
        return p
    num = pd.to_numeric(v, errors="coerce")
    share = float(num.notna().mean())
    if share == 1.0:
        if stripped.str.match(_LEADING_ZERO).any() and not stripped.str.contains(r"[.eE]").any():
            p.kind, p.note = "text", f"leading zeros ({_example(stripped[stripped.str.match(_LEADING_ZERO)])})"
            return p
        finite = num[np.isfinite(num)]
        whole = bool(len(finite) == len(num) and (finite == np.floor(finite)).all())
        p.kind = "integer" if whole else "float"
        p.decimals = whole and bool(stripped.str.contains(r"[.eE]").any())
        if len(finite) == len(num):
            p.lo, p.hi = float(finite.min()), float(finite.max())
        if len(finite) > 2:
            sk = finite.astype("float64").skew()
            p.skew = None if pd.isna(sk) else float(sk)
            p.median = float(finite.median())
        p.ordered = whole and p.nulls == 0 and bool(num.is_monotonic_increasing)
        return p
    text_only = stripped[num.isna()]
    if len(text_only) and text_only.str.match(_THOUSANDS).all():
        p.kind, p.note = "text", f"numbers with thousands separators ({_example(text_only)})"
        return p
    if len(text_only) and text_only.str.match(_DECIMAL_COMMA).all():
        p.kind, p.note = "text", f"decimal commas ({_example(text_only)})"
        return p
    if share >= 0.8:
        p.kind = "text"
        p.note = f"{share:.0%} numbers, the rest text ({_example(text_only)})"
        return p
    if stripped.str.match(_ISO).all():
        try:
            ts = pd.to_datetime(v, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):  # e.g. mixed time zones
            ts = None
        if ts is not None and ts.notna().all():
            p.kind = "datetime"
            p.ordered = p.nulls == 0 and bool(ts.is_monotonic_increasing)
            return p
    p.kind = "text"
    p.word_like = bool(v.str.len().max() <= 64 and not v.str.contains(r"\s").any())
    if stripped.str.match(_OTHER_DATE).mean() > 0.9:
        p.note = f"dates, but not ISO 8601 ({_example(stripped)}); mlc reads datetimes as ISO 8601 only"
    return p


def _example(s: pd.Series, n: int = 2) -> str:
    vals: list[str] = []
    for x in s:
        if x not in vals:
            vals.append(str(x))
        if len(vals) == n:
            break
    return ", ".join(repr(x) for x in vals)


# ----------------------------------------------------------------------------- proposal
@dataclass
class ColumnChoice:
    """One column of the proposed schema and what the features do with it."""

    name: str
    type: str
    why: str
    nullable: bool = True
    lo: float | None = None
    hi: float | None = None
    allowed: list[str] | None = None
    unique: bool = False
    role: str = "drop"  # label | entity | time | numeric | log | boolean | onehot | ordinal | drop
    feature_why: str = ""


@dataclass
class Proposal:
    sample: Sample
    columns: list[ColumnChoice]
    profiles: dict[str, Profile]
    label: str
    task: str
    task_why: str
    positive: Any = None
    positive_why: str = ""
    entity: str | None = None
    split: str = "stratified"
    time_column: str | None = None
    split_why: str = ""
    checks: list[tuple[str, str]] = field(default_factory=list)  # (flow mapping, why)

    @property
    def rows(self) -> int:
        return len(self.sample.frame)

    def features(self, role: str) -> list[ColumnChoice]:
        return [c for c in self.columns if c.role == role]


def propose(sample: Sample, target: str, task: str | None) -> Proposal:
    df = sample.frame
    cols = [str(c) for c in df.columns]
    if target not in cols:
        close = difflib.get_close_matches(target, cols, n=1, cutoff=0.6) or [
            c for c in cols if c.lower() == target.lower()]
        hint = f"; did you mean '{close[0]}'?" if close else f"; the columns are: {', '.join(cols[:30])}"
        raise MlcError(f"--target '{target}' is not a column of {sample.path}{hint}")
    if len(cols) < 2:
        raise MlcError(f"{sample.path}: only one column ('{cols[0]}'); a model needs at least one feature column "
                       "besides the target (is the delimiter one of , ; tab |?)")
    profiles = {c: profile(c, df[c]) for c in cols}
    n = len(df)
    prop = Proposal(sample, [], profiles, target, "", "")
    _label(prop, profiles[target], task)
    exact = sample.complete
    for c in cols:
        if c == target:
            continue
        prop.columns.append(_column(profiles[c], n, exact))
    _roles(prop)
    _split(prop)
    label_col = _label_column(prop, profiles[target], exact)
    prop.columns.insert(cols.index(target), label_col)
    if not [c for c in prop.columns if c.role not in ("drop", "label", "entity", "time")]:
        reasons = "; ".join(f"{c.name}: " + ("the id" if c.role == "entity" else c.feature_why or c.why)
                            for c in prop.columns if c.role != "label")
        raise MlcError(f"{sample.path}: no column is usable as a feature ({reasons}); the spec would train on "
                       "nothing")
    _checks(prop)
    return prop


def _label(prop: Proposal, p: Profile, task: str | None) -> None:
    where = f"--target '{p.name}'"
    if p.kind == "empty":
        raise MlcError(f"{where}: the column has no values in the {p.rows} rows read")
    if p.distinct == 1:
        raise MlcError(f"{where}: the column has one value ({p.top[0][0]!r}) in every row; there is nothing to "
                       "predict")
    classes = ", ".join(repr(k) for k, _ in p.top) + (", ..." if p.distinct > len(p.top) else "")
    numeric = p.kind in ("integer", "float")
    if task is None:
        if p.distinct == 2:
            task, why = "classification", f"two values ({classes}) → binary classification"
        elif numeric and not (p.kind == "integer" and p.distinct <= 10):
            task, why = "regression", f"{p.kind}, {p.distinct} distinct values → regression"
        elif numeric:
            raise MlcError(f"{where}: {p.distinct} distinct whole numbers ({classes}) look like classes, and mlc "
                           "supports binary classification only; pass --task regression if the values are an "
                           "ordered quantity")
        else:
            raise MlcError(f"{where}: {p.distinct} classes ({classes}); mlc supports binary classification only "
                           "(two classes) and regression on numbers; pick a binary target, or derive one "
                           "(e.g. one class against the rest) in the file")
    else:
        why = f"--task {task}"
    if task == "classification" and p.distinct != 2:
        raise MlcError(f"{where}: {p.distinct} classes ({classes}); mlc supports binary classification only (two "
                       "classes)" + ("; did you mean --task regression?" if numeric else ""))
    if task == "regression" and not numeric:
        raise MlcError(f"{where}: regression needs a numeric target, but the column is {p.kind} "
                       f"(e.g. {p.top[0][0]!r})" + ("; did you mean --task classification?" if p.distinct == 2
                                                  else ""))
    prop.task, prop.task_why = task, why
    if task == "classification":
        values = [k for k, _ in sorted(p.top, key=lambda kv: kv[0])]
        named = [v for w in CLASS_WORDS for v in values
                 if v.strip().lower() == w or (numeric and w == "1" and float(v) == 1.0)]
        counts = dict(p.top)
        if named:
            pos, pwhy = named[0], f"'{named[0]}' names the event"
        else:
            pos = min(values, key=lambda v: (counts[v], [-ord(ch) for ch in v]))
            pwhy = "the rarer class; change it if the other one is the event you care about"
        rarest = min(counts.values())
        if rarest < MIN_CLASS_ROWS:
            rare = min(values, key=lambda v: counts[v])
            raise MlcError(f"{where}: the class {rare!r} has only {rarest} row(s); training and testing a binary "
                           f"classifier needs at least {MIN_CLASS_ROWS} of each class")
        share = counts[pos] / p.nonnull
        prop.positive = pos  # the label is a category, so the class is its text ("1", not 1)
        prop.positive_why = f"{pwhy} ({share:.1%} of labelled rows)"


def _label_column(prop: Proposal, p: Profile, exact: bool) -> ColumnChoice:
    nulls = f"{p.null_share:.1%} unlabelled rows (dropped before training)" if p.nulls else "no nulls"
    if prop.task == "regression":
        c = ColumnChoice(p.name, "float" if p.kind == "float" else "integer", f"the target: {p.kind}, {nulls}",
                         role="label")
        _bounds(c, p, exact)
    else:
        # a category even for 0/1: the runtime compares the label's text with the positive class's
        c = ColumnChoice(p.name, "category", f"the target: two classes, {nulls}", role="label",
                         allowed=p.values if exact else None)
    c.nullable = not (exact and p.nulls == 0)
    return c


def _pct(p: Profile) -> str:
    return f"{p.null_share:.1%} null" if p.nulls else "no nulls"


def _bounds(c: ColumnChoice, p: Profile, exact: bool) -> None:
    if exact and p.lo is not None:
        c.lo, c.hi = p.lo, p.hi


def _column(p: Profile, n: int, exact: bool) -> ColumnChoice:
    """Type, constraints and the feature role of one non-target column (ids and time are settled later)."""
    nulls = _pct(p)
    nullable = not (exact and p.nulls == 0)
    if p.kind == "empty":
        return ColumnChoice(p.name, "string", f"no values in {n} rows", feature_why="empty → drop")
    if p.distinct == 1:
        kind = "category" if p.kind in ("text", "boolean") else p.kind
        extra = f", {nulls}" if p.nulls else ""
        c = ColumnChoice(p.name, "string" if kind == "datetime" else kind,
                         f"one value ({p.top[0][0]!r}) in every row{extra}", nullable=nullable,
                         feature_why="constant → drop: it carries no signal")
        return c
    if p.kind in ("integer", "float"):
        what = f"{p.kind}, {_num(p.lo)}..{_num(p.hi)}" if p.lo is not None else f"{p.kind}, with infinities"
        if p.decimals:
            what += " (whole numbers written as decimals)"
        c = ColumnChoice(p.name, p.kind, f"{what}, {nulls}", nullable=nullable)
        _bounds(c, p, exact)
        if p.lo is None:
            c.feature_why = "drop: the scalers cannot take inf; replace the infinities to use it"
            return c
        # heavy right tail: skewed, non-negative, and the largest value an order of magnitude above the median
        skewed = (p.skew is not None and p.skew > 2.0 and p.lo is not None and p.lo >= 0 and p.distinct > 10
                  and p.median is not None and p.hi is not None and p.hi > 10 * max(p.median, 1e-12))
        if skewed:
            c.role = "log"
            c.feature_why = (f"skewness {p.skew:.1f}, max {_num(p.hi)} vs median {_num(p.median)}, all >= 0 "
                             "→ log1p")
        else:
            c.role = "numeric"
            c.feature_why = f"{p.null_share:.1%} null → impute median" if p.nulls else ""
        return c
    if p.kind == "boolean":
        c = ColumnChoice(p.name, "boolean", f"boolean ({', '.join(p.values)}), {nulls}", nullable=nullable,
                         role="boolean", feature_why="boolean → 0/1")
        return c
    if p.kind == "datetime":
        what = "ISO 8601 datetime" + (", in file order" if p.ordered else "")
        return ColumnChoice(p.name, "datetime", f"{what}, {nulls}", nullable=nullable,
                            feature_why="datetime: no datetime transform; derive features from it upstream")
    # text
    note = f"{p.note} → text; " if p.note else ""
    if p.note and not p.note.startswith("leading zeros"):  # numbers or dates the runtime cannot parse
        return ColumnChoice(p.name, "string", f"{note}{p.distinct} distinct values, {nulls}", nullable=nullable,
                            feature_why="drop: " + _FIX.get(p.note.split(" ")[0], _FIX_MIXED))
    if p.distinct == p.nonnull and p.nonnull >= MIN_ID_ROWS:
        if p.word_like:
            return ColumnChoice(p.name, "string", f"{note}unique per row, {nulls}", nullable=nullable,
                                unique=exact and p.nulls == 0, role="id")
        return ColumnChoice(p.name, "string", f"{note}unique per row, with spaces or long values (free text), "
                            f"{nulls}", nullable=nullable, feature_why="free text → drop")
    if p.distinct <= ONEHOT_MAX:
        allowed = p.values if exact and p.values else None
        c = ColumnChoice(p.name, "category", f"{note}{p.distinct} values, {nulls}", nullable=nullable,
                         allowed=allowed, role="onehot")
        c.feature_why = (f"{p.distinct} values → one-hot" if p.distinct <= MAX_LISTED else
                         f"{p.distinct} values → one-hot of the {MAX_LISTED} most frequent")
        if p.nulls:
            c.feature_why += ", nulls as their own category"
        return c
    if p.distinct > FREE_TEXT_SHARE * p.nonnull:
        return ColumnChoice(p.name, "string", f"{note}{p.distinct} distinct values in {p.nonnull} rows, {nulls}",
                            nullable=nullable, feature_why="mostly distinct values: too many categories to learn from → drop")
    return ColumnChoice(p.name, "string", f"{note}{p.distinct} distinct values, {nulls}", nullable=nullable,
                        role="ordinal",
                        feature_why=f"{p.distinct} values: too many for one-hot → ordinal codes (trees can use "
                                    "them; the order is arbitrary)")


_FIX = {
    "numbers": "write the numbers without thousands separators (1234) to use it as a numeric feature",
    "decimal": "write decimals with a point (1.5) to use it as a numeric feature",
    "dates,": "write the dates as ISO 8601 (2024-01-31) to use it as a datetime",
}
_FIX_MIXED = "clean or blank out the text values to use it as a numeric feature"


def _roles(prop: Proposal) -> None:
    """The entity: the first unique-per-row text column, or an integer one whose name or values say id."""
    for c in prop.columns:
        p = prop.profiles[c.name]
        id_like = c.role == "id" or (
            p.kind == "integer" and p.nulls == 0 and p.distinct == p.rows >= MIN_ID_ROWS
            and (bool(_ID_NAME.search(p.name)) or (p.ordered and (p.hi or 0) - (p.lo or 0) < 2 * p.rows)))
        if not id_like:
            if c.role == "id":
                c.role = "drop"
            continue
        c.unique = prop.sample.complete
        if prop.entity is None and p.nulls == 0:
            prop.entity = c.name
            c.role = "entity"
            c.why += " → the id (data.entity): kept in predictions, never a feature"
        else:
            c.role = "drop"
            c.feature_why = ("another unique-per-row id → drop" if p.nulls == 0
                             else "unique per row but with nulls: not the entity → drop")


def _split(prop: Proposal) -> None:
    label = prop.profiles[prop.label]
    times = [c for c in prop.columns if c.type == "datetime" and c.role == "drop"]
    for c in times:
        p = prop.profiles[c.name]
        if prop.time_column is None and p.ordered:
            if prop.task == "classification" and not _tail_has_both(prop, label):
                c.feature_why = "in file order, but the newest 20% of rows hold one class: not a time split"
                continue
            prop.split, prop.time_column = "time", c.name
            prop.split_why = f"{c.name} is in file order: the newest 20% of rows are the test set"
            c.role, c.feature_why = "time", "the split's time column; not a feature"
            c.why += " → data.split.time_column"
    if prop.time_column is None:
        prop.split = "stratified" if prop.task == "classification" else "random"
        reason = "no datetime column in file order"
        prop.split_why = reason + (": stratified on the label" if prop.task == "classification"
                                   else ": a random split")
        for c in times:
            if not c.feature_why.startswith("in file order"):
                c.feature_why = "not in file order: no time split; mlc has no datetime transform → drop"


def _tail_has_both(prop: Proposal, label: Profile) -> bool:
    df = prop.sample.frame
    tail = df[prop.label].iloc[len(df) - max(1, math.ceil(0.2 * len(df))):].dropna()
    return int(tail.nunique()) >= 2


def _checks(prop: Proposal) -> None:
    n, exact = prop.rows, prop.sample.complete
    floor = _round_down(max(1, n // 2))
    seen = f"{n:,} rows" if exact else f"the first {n:,} rows were sampled (the file has more)"
    prop.checks.append((f"{{check: row_count, min: {floor}}}", f"{seen}; fail if a new file has under half"))
    df = prop.sample.frame
    dup = float(df.duplicated().mean()) if n else 0.0
    share = 0.01 if dup == 0 else min(1.0, math.ceil((dup + 0.01) * 100) / 100)
    prop.checks.append((f"{{check: duplicate_rows, max_share: {_num(share)}}}",
                        f"{dup:.2%} of the rows read are exact duplicates"))
    for c in prop.columns:
        p = prop.profiles[c.name]
        if c.role in ("numeric", "log", "boolean", "onehot", "ordinal") and 0 < p.null_share <= 0.5:
            rate = max(0.0, math.floor((1 - p.null_share - 0.05) * 20) / 20)
            prop.checks.append((f"{{check: not_null, column: {yaml_str(c.name)}, min_rate: {_num(rate)}}}",
                                f"{1 - p.null_share:.1%} non-null now; fail if it falls below {rate:.0%}"))
    if exact:
        return
    # constraints that hold for the sample only: reported on the whole file, without failing the run
    for c in prop.columns:
        p = prop.profiles[c.name]
        if c.role in ("numeric", "log") and p.lo is not None:
            check = (f"{{check: range, column: {yaml_str(c.name)}, min: {_num(p.lo)}, "
                     f"max: {_num(p.hi)}, severity: warn}}")
            prop.checks.append((check, "the sample's range"))
        elif c.type == "category" and p.values and c.role in ("onehot", "label"):
            vals = ", ".join(yaml_str(v) for v in p.values)
            check = f"{{check: allowed_values, column: {yaml_str(c.name)}, values: [{vals}], severity: warn}}"
            prop.checks.append((check, "the sample's values"))
        elif c.role == "entity":
            prop.checks.append((f"{{check: unique, column: {yaml_str(c.name)}, severity: warn}}",
                                "unique in the sample"))


def _round_down(x: int) -> int:
    """One significant digit, rounded down: 3,000 rows → 3000, 2,345 → 2000."""
    mag = 10 ** (len(str(x)) - 1)
    return max(1, (x // mag) * mag)


# ----------------------------------------------------------------------------- YAML text
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_KEYWORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}


def comment(text: object) -> str:
    """Text that stays on one comment line whatever a column name or value holds."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))


def yaml_str(s: str) -> str:
    """A string as a YAML scalar that YAML 1.1 and 1.2 both read as this exact string."""
    if _PLAIN.match(s) and s.lower() not in _KEYWORDS and not s.endswith((".", "-", "/")):
        return s
    import json

    return json.dumps(s, ensure_ascii=False)


def _num(x: float | None) -> str:
    """A number as YAML that both YAML versions read as the same number (no exponent: PyYAML reads 1e-05
    as a string)."""
    if x is None:
        return "null"
    if float(x).is_integer() and abs(x) < 2**53:
        return str(int(x))
    import numpy as np

    return str(np.format_float_positional(float(x), trim="-"))


def column_yaml(c: ColumnChoice) -> str:
    parts = [f"type: {c.type}"]
    if not c.nullable:
        parts.append("nullable: false")
    if c.lo is not None:
        parts.append(f"min: {_num(c.lo)}")
    if c.hi is not None:
        parts.append(f"max: {_num(c.hi)}")
    if c.allowed is not None:
        parts.append("allowed: [" + ", ".join(yaml_str(v) for v in c.allowed) + "]")
    if c.unique:
        parts.append("unique: true")
    return f"{yaml_str(c.name)}: {{{', '.join(parts)}}}"


def positive_yaml(v: Any) -> str:
    """Always quoted: `yes` or `1` unquoted would be a boolean or a number."""
    import json

    return json.dumps(str(v), ensure_ascii=False)


# ----------------------------------------------------------------------------- template context
def feature_groups(prop: Proposal) -> list[dict]:
    """The proposed feature groups, in a fixed order, each with its settings and a reason per column."""
    groups = []

    def add(role: str, type_: str, why: str, settings: list[str]) -> None:
        cols = prop.features(role)
        if cols:
            groups.append({"type": type_, "why": why, "settings": settings,
                           "columns": [(yaml_str(c.name), c.feature_why) for c in cols]})

    add("numeric", "numeric", "numbers: missing values become the median, then standardised",
        ["impute: median", "scale: standard"])
    add("log", "numeric", "heavily right-skewed, non-negative numbers: log1p first, so a few large values "
        "do not dominate", ["impute: median", "clip: {min: 0}   # log1p needs values > -1", "log: true",
                            "scale: standard"])
    add("boolean", "numeric", "booleans: true = 1, false = 0, missing = the median",
        ["impute: median", "scale: none"])
    add("onehot", "categorical", "few distinct values: one column per value, missing as its own category",
        ["encode: onehot", f"max_categories: {MAX_LISTED}   # the rest share one 'infrequent' column"])
    add("ordinal", "categorical", "many distinct values: one integer code per value instead of a column each",
        ["encode: ordinal"])
    drops = [c for c in prop.columns if c.role in ("drop", "time")]
    if drops:
        groups.append({"type": "drop", "why": "never given to the model", "settings": [],
                       "columns": [(yaml_str(c.name), c.feature_why) for c in drops]})
    return groups


def context(prop: Proposal) -> dict:
    """Everything the template needs, as YAML-ready text."""
    s = prop.sample
    n = prop.rows
    if s.complete:
        read = f"All {n:,} data rows were read: ranges, allowed values and nullability are exact for this file."
    else:
        read = (f"Inferred from the first {n:,} data rows only (the sample is capped at {s.cap:,} rows, "
                f"{SAMPLE_CELLS:,} cells, to keep memory bounded): the constraints seen in the sample are "
                "warn-level checks, and the schema allows nulls everywhere.")
    numeric = [c.name for c in prop.columns if c.role in ("numeric", "log")][:3]
    import textwrap

    return {
        "header_notes": textwrap.wrap(read, 108),
        "columns": [{"why": c.why, "yaml": column_yaml(c)} for c in prop.columns],
        "checks": prop.checks,
        "label": yaml_str(prop.label),
        "task": prop.task,
        "task_why": prop.task_why,
        "positive": positive_yaml(prop.positive) if prop.positive is not None else None,
        "positive_why": prop.positive_why,
        "entity": yaml_str(prop.entity) if prop.entity else None,
        "split": prop.split,
        "split_why": prop.split_why,
        "time_column": yaml_str(prop.time_column) if prop.time_column else None,
        "groups": feature_groups(prop),
        "drift_example": ", ".join(yaml_str(c) for c in numeric) or "your_feature",
    }
