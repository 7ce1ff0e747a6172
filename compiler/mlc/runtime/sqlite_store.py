"""A new local MLflow store starts as a copy of an already migrated empty database.

MLflow creates a sqlite store by running every alembic migration since its first release (7.4 s on the 2-core
development machine at load average 5, against 0.08 s for the copy): the largest single cost of a first
`mlc run` and of every test that makes a fresh store. The result depends only on the MLflow version, so it is built once per version into the user's
cache directory and copied. The copy holds the tables and the schema version only, no rows: MLflow adds its
Default experiment (whose artifact location names the store's own directory) when it first opens the copy.

Anything that goes wrong here (an unwritable cache, an unexpected MLflow internals change) falls back to
MLflow creating the store itself, which is slower but the same result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "mlc"


def _template() -> Path:
    """The migrated empty database of this MLflow version, built on first use (atomically: tmp + rename)."""
    import mlflow
    from mlflow.store.db import utils as db_utils

    path = _cache_dir() / f"mlflow-{mlflow.__version__}-empty.sqlite"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".building-", suffix=".sqlite")
    os.close(fd)
    try:
        engine = db_utils.create_sqlalchemy_engine(f"sqlite:///{tmp}")
        try:
            db_utils._initialize_tables(engine)
            db_utils._verify_schema(engine)
        finally:
            engine.dispose()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<file>`` MLflow URI; None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def seed(uri: str) -> None:
    """Before MLflow first opens ``sqlite:///<file>``, put a migrated empty database there."""
    target = sqlite_path(uri)
    if target is None or target.exists():
        return
    try:  # tracking.use_store, the only caller, has quieted MLflow's "Creating initial tables..." already
        template = _template()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(template, tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a store on a shared volume is read by other users
            try:
                os.link(tmp, target)  # never replaces a store another step process created meanwhile
            except FileExistsError:
                pass
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception:  # noqa: BLE001 - MLflow builds the store itself; only slower
        return
