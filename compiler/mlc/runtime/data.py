"""ingest and validate-data: read the sources, pin and fingerprint them, cast them to the spec's types, and
check the schema and quality rules before anything is trained on them."""

from __future__ import annotations

import hashlib
import io
import math
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime.context import StepContext, StepResult
from mlc.spec.models import Column, Source

if TYPE_CHECKING:
    import pandas as pd

DATA = "data.parquet"
MANIFEST = "manifest.json"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# ----------------------------------------------------------------------------- casting
def cast_column(s: pd.Series, col: Column) -> tuple[pd.Series, int]:
    """Cast one column to its logical type; returns the cast column and how many non-null values could not be
    parsed (they become null here and are reported by validate-data as type errors)."""
    import numpy as np
    import pandas as pd

    present = s.notna()
    if col.type in ("integer", "float"):
        out = pd.to_numeric(s, errors="coerce").astype("float64")
        bad = int((present & out.isna()).sum())
        if col.type == "integer":
            frac = out.notna() & (out != np.floor(out))
            bad += int(frac.sum())
            out = out.where(~frac)
            # Non-nullable integers stay int64; nullable ones are float64 so NaN needs no special dtype.
            if not col.nullable and not out.isna().any():
                out = out.astype("int64")
        return out, bad
    if col.type in ("string", "category"):
        return s.astype("str"), 0
    if col.type == "boolean":
        text = s.astype("str").str.strip().str.lower()
        out = pd.Series(pd.NA, index=s.index, dtype="boolean")
        out[text.isin(_TRUE)] = True
        out[text.isin(_FALSE)] = False
        return out, int((present & out.isna()).sum())
    if col.type == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s):
            return s, 0
        out = pd.to_datetime(s, errors="coerce", format="ISO8601")
        return out, int((present & out.isna()).sum())
    raise AssertionError(col.type)


def cast_frame(df: pd.DataFrame, schema: dict[str, Column]) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """The schema's columns in schema order, cast; also type-error counts and the columns that were missing."""
    import pandas as pd

    cols: dict[str, pd.Series] = {}
    errors: dict[str, int] = {}
    missing = [c for c in schema if c not in df.columns]
    for name, col in schema.items():
        s = df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype="object")
        cols[name], errors[name] = cast_column(s, col)
    return pd.DataFrame(cols, index=df.index), errors, missing


def _parse(raw: bytes, fmt: str, uri: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(io.BytesIO(raw), dtype=str)
    except (ValueError, OSError) as e:
        raise RunError(f"{uri}: cannot read as {fmt}: {e}") from e


def read_source(ctx: StepContext, uri: str, fmt: str) -> pd.DataFrame:
    """Read a data file named in the spec (batch input, drift window, feedback) and cast it by the schema,
    keeping only schema columns that are present."""
    resolved = ctx.data_uri(uri)
    df = _parse(A.read_bytes(resolved, ctx.storage_options), fmt, resolved)
    schema = {k: v for k, v in ctx.plan.spec.data.schema_.items() if k in df.columns}
    out, _, _ = cast_frame(df, schema)
    return out


# ----------------------------------------------------------------------------- ingest
def _check_pin(ctx: StepContext, src: Source, uri: str, raw: bytes, digest: str) -> None:
    if src.pin is None:
        return
    if src.pin.sha256 and src.pin.sha256.lower() != digest:
        raise RunError(f"data pin mismatch for source '{src.name}' ({uri}):\n"
                       f"  expected sha256 {src.pin.sha256}\n  found    sha256 {digest}\n"
                       "hint: the file changed since it was pinned; update data.sources[].pin.sha256 "
                       "if the change is intended")
    if src.pin.dvc:
        import yaml

        pointer = ctx.data_uri(src.pin.dvc)
        try:
            meta = yaml.safe_load(A.read_text(pointer, ctx.storage_options)) or {}
            expected = str(meta["outs"][0]["md5"])
        except (KeyError, IndexError, TypeError, yaml.YAMLError) as e:
            raise RunError(f"{pointer}: not a DVC pointer file (expected outs[0].md5)") from e
        found = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if expected != found:
            raise RunError(f"data pin mismatch for source '{src.name}' ({uri}):\n"
                           f"  expected md5 {expected} (from {src.pin.dvc})\n  found    md5 {found}\n"
                           "hint: run `dvc pull` to fetch the pinned version, or `dvc add` to pin this one")


def ingest(ctx: StepContext, step: Step) -> StepResult:
    import pandas as pd

    spec = ctx.plan.spec
    out = ctx.out_dir(step.name)
    frames, files = [], []
    for src in spec.data.sources:
        uri = ctx.data_uri(src.uri)
        raw = A.read_bytes(uri, ctx.storage_options)
        digest = hashlib.sha256(raw).hexdigest()
        _check_pin(ctx, src, uri, raw, digest)
        df = _parse(raw, src.format, uri)
        files.append({"name": src.name, "uri": src.uri, "format": src.format, "sha256": digest,
                      "bytes": len(raw), "rows": len(df),
                      "inferred_schema": {c: str(t) for c, t in df.dtypes.items()}})
        frames.append(df)
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    fingerprint = hashlib.sha256("".join(f"{f['name']}:{f['sha256']}\n" for f in files).encode()).hexdigest()
    cast, type_errors, missing = cast_frame(data, spec.data.schema_)
    extra = [c for c in data.columns if c not in spec.data.schema_]
    A.write_table(f"{out}/{DATA}", cast, "parquet", ctx.storage_options)
    manifest = {
        "fingerprint": fingerprint, "rows": len(cast), "files": files,
        "schema": {c: {"type": spec.data.schema_[c].type, "dtype": str(t)} for c, t in cast.dtypes.items()},
        "type_errors": {k: v for k, v in type_errors.items() if v}, "missing_columns": missing,
        "extra_columns": extra,
    }
    A.write_json(f"{out}/{MANIFEST}", manifest, ctx.storage_options)
    from mlc.runtime import tracking

    tracking.parent_run(ctx)  # created here, by the first step, so parallel train steps find one run
    return StepResult(outputs={"fingerprint": fingerprint, "rows": str(len(cast))},
                      metrics={"rows": len(cast)},
                      message=f"{len(cast)} rows from {len(files)} source(s), fingerprint {fingerprint[:12]}")


# ----------------------------------------------------------------------------- validate-data
def _result(name: str, severity: str, passed: bool, observed: Any, expected: str,
            column: str | None = None) -> dict:
    return {"check": name, "column": column, "severity": severity, "passed": bool(passed),
            "observed": observed, "expected": expected}


def _num(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return x.item() if hasattr(x, "item") else x


def _allowed_ok(s: pd.Series, values: list) -> tuple[bool, list]:
    allowed = {str(v) for v in values}
    vals = s.dropna()
    bad = sorted({str(v) for v in vals.astype("str").unique()} - allowed)
    return not bad, bad[:10]


def schema_checks(df: pd.DataFrame, manifest: dict, schema: dict[str, Column]) -> list[dict]:
    out = []
    for name in manifest.get("missing_columns", []):
        out.append(_result("present", "error", False, "missing", "column in the data", name))
    for name, col in schema.items():
        if name in manifest.get("missing_columns", []):
            continue
        s = df[name]
        bad = manifest.get("type_errors", {}).get(name, 0)
        out.append(_result("type", "error", bad == 0, f"{bad} value(s) not {col.type}", f"every value {col.type}",
                           name))
        if not col.nullable:
            n = int(s.isna().sum())
            out.append(_result("nullable", "error", n == 0, f"{n} null(s)", "no nulls", name))
        if col.min is not None or col.max is not None:
            out.append(_range(name, s, col.min, col.max, "error", "schema range"))
        if col.allowed is not None:
            ok, bad_vals = _allowed_ok(s, col.allowed)
            out.append(_result("allowed", "error", ok, f"unexpected {bad_vals}" if bad_vals else "ok",
                               f"one of {[str(v) for v in col.allowed]}", name))
        if col.unique:
            d = int(s.dropna().duplicated().sum())
            out.append(_result("unique", "error", d == 0, f"{d} duplicate value(s)", "distinct values", name))
    return out


def _range(column: str, s: pd.Series, lo: float | None, hi: float | None, severity: str, name: str) -> dict:
    import pandas as pd

    v = pd.to_numeric(s, errors="coerce").dropna()
    below = int((v < lo).sum()) if lo is not None else 0
    above = int((v > hi).sum()) if hi is not None else 0
    observed = f"min {_num(v.min()) if len(v) else None}, max {_num(v.max()) if len(v) else None}"
    if below or above:
        observed += f" ({below} below, {above} above)"
    expected = " and ".join(p for p in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "")
                            if p)
    return _result(name, severity, not below and not above, observed, expected, column)


def quality_checks(df: pd.DataFrame, checks: list) -> list[dict]:
    out = []
    for c in checks:
        sev = c.severity
        if c.check == "row_count":
            out.append(_result("row_count", sev, len(df) >= c.min, f"{len(df)} rows", f">= {c.min} rows"))
        elif c.check == "duplicate_rows":
            share = float(df.duplicated().mean()) if len(df) else 0.0
            out.append(_result("duplicate_rows", sev, share <= c.max_share, f"{share:.4f} duplicated",
                               f"<= {c.max_share}"))
        elif c.column not in df.columns:
            out.append(_result(c.check, sev, False, "column missing", "column in the data", c.column))
        elif c.check == "not_null":
            rate = float(df[c.column].notna().mean()) if len(df) else 1.0
            out.append(_result("not_null", sev, rate >= c.min_rate, f"{rate:.4f} non-null", f">= {c.min_rate}",
                               c.column))
        elif c.check == "range":
            out.append(_range(c.column, df[c.column], c.min, c.max, sev, "range"))
        elif c.check == "allowed_values":
            ok, bad = _allowed_ok(df[c.column], c.values)
            out.append(_result("allowed_values", sev, ok, f"unexpected {bad}" if bad else "ok",
                               f"one of {[str(v) for v in c.values]}", c.column))
        elif c.check == "unique":
            d = int(df[c.column].dropna().duplicated().sum())
            out.append(_result("unique", sev, d == 0, f"{d} duplicate value(s)", "distinct values", c.column))
    return out


def _markdown(results: list[dict], rows: int) -> str:
    failed = [r for r in results if not r["passed"] and r["severity"] == "error"]
    lines = [f"# Data validation: {'FAILED' if failed else 'passed'}", "", f"{rows} rows, {len(results)} checks.",
             "", "| result | severity | check | column | observed | expected |", "|---|---|---|---|---|---|"]
    for r in results:
        mark = "pass" if r["passed"] else ("FAIL" if r["severity"] == "error" else "warn")
        lines.append(f"| {mark} | {r['severity']} | {r['check']} | {r['column'] or ''} | {r['observed']} | "
                     f"{r['expected']} |")
    return "\n".join(lines) + "\n"


def describe(r: dict) -> str:
    col = f" {r['column']}" if r["column"] else ""
    return f"  - {r['check']}{col}: observed {r['observed']}, expected {r['expected']}"


def validate_data(ctx: StepContext, step: Step) -> StepResult:
    spec = ctx.plan.spec
    src = ctx.step_dir("ingest")
    df = A.read_parquet(f"{src}/{DATA}", ctx.storage_options)
    manifest = A.read_json(f"{src}/{MANIFEST}", ctx.storage_options)
    results = schema_checks(df, manifest, spec.data.schema_) + quality_checks(df, spec.data.checks)
    failed = [r for r in results if not r["passed"] and r["severity"] == "error"]
    warned = [r for r in results if not r["passed"] and r["severity"] == "warn"]
    report = {"passed": not failed, "rows": len(df), "checks": results}
    out = ctx.out_dir(step.name)
    A.write_json(f"{out}/report.json", report, ctx.storage_options)
    A.write_text(f"{out}/report.md", _markdown(results, len(df)), ctx.storage_options)
    if failed:
        body = "\n".join(describe(r) for r in failed)
        raise RunError(f"data validation failed: {len(failed)} of {len(results)} checks failed\n{body}\n"
                       f"report: {out}/report.md")
    msg = f"{len(results)} checks passed" + (f", {len(warned)} warning(s)" if warned else "")
    return StepResult(metrics={"checks": len(results), "warnings": len(warned)}, message=msg)
