"""Artifact and data IO through fsspec, so a local path and ``s3://`` (MinIO with a custom endpoint) share one
code path. Every function takes the storage options from the StepContext; nothing here knows about steps.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError

if TYPE_CHECKING:
    import pandas as pd
    from fsspec import AbstractFileSystem


def filesystem(uri: str, storage_options: dict[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem and the path within it; a clear error when s3 support is not installed."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri, **((storage_options or {}) if "://" in uri else {}))
    except ImportError as e:
        scheme = uri.split("://", 1)[0]
        raise RunError(f"reading {uri} needs the '{scheme}' filesystem, which is not installed\n"
                       f"hint: pip install 'mlc[s3]'  (installs s3fs)") from e
    return fs, path


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def exists(uri: str, opts: dict[str, Any] | None = None) -> bool:
    fs, path = filesystem(uri, opts)
    return bool(fs.exists(path))


def read_bytes(uri: str, opts: dict[str, Any] | None = None) -> bytes:
    fs, path = filesystem(uri, opts)
    try:
        with fs.open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as e:
        raise RunError(f"{uri}: no such file") from e


def write_bytes(uri: str, data: bytes, opts: dict[str, Any] | None = None) -> None:
    fs, path = filesystem(uri, opts)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)


def read_text(uri: str, opts: dict[str, Any] | None = None) -> str:
    return read_bytes(uri, opts).decode("utf-8")


def write_text(uri: str, text: str, opts: dict[str, Any] | None = None) -> None:
    write_bytes(uri, text.encode("utf-8"), opts)


def read_json(uri: str, opts: dict[str, Any] | None = None) -> Any:
    return json.loads(read_bytes(uri, opts))


def write_json(uri: str, obj: Any, opts: dict[str, Any] | None = None) -> None:
    write_text(uri, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", opts)


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def read_pickle(uri: str, opts: dict[str, Any] | None = None) -> Any:
    return pickle.loads(read_bytes(uri, opts))


def write_pickle(uri: str, obj: Any, opts: dict[str, Any] | None = None) -> None:
    write_bytes(uri, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), opts)


def sha256(uri: str, opts: dict[str, Any] | None = None) -> str:
    return hashlib.sha256(read_bytes(uri, opts)).hexdigest()


def md5(uri: str, opts: dict[str, Any] | None = None) -> str:
    return hashlib.md5(read_bytes(uri, opts), usedforsecurity=False).hexdigest()


def read_table(uri: str, fmt: str, opts: dict[str, Any] | None = None) -> pd.DataFrame:
    """Read a csv or parquet file. CSV is read with every column as text so ingest casts it by the schema,
    not by pandas' guesses (a zip code stays '01234')."""
    import pandas as pd

    raw = read_bytes(uri, opts)
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=True)
    except (ValueError, OSError) as e:
        raise RunError(f"{uri}: cannot read as {fmt}: {e}") from e


def write_table(uri: str, df: pd.DataFrame, fmt: str = "parquet", opts: dict[str, Any] | None = None) -> None:
    buf = io.BytesIO()
    if fmt == "parquet":
        df.to_parquet(buf, index=False)
    else:
        df.to_csv(buf, index=False)
    write_bytes(uri, buf.getvalue(), opts)


def read_parquet(uri: str, opts: dict[str, Any] | None = None) -> pd.DataFrame:
    return read_table(uri, "parquet", opts)


def remove(uri: str, opts: dict[str, Any] | None = None) -> None:
    fs, path = filesystem(uri, opts)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def rename(src: str, dst: str, opts: dict[str, Any] | None = None) -> None:
    fs, s = filesystem(src, opts)
    _, d = filesystem(dst, opts)
    fs.mv(s, d, recursive=True)
