"""The local MLflow store (``<project>/.mlc/mlflow.db``) moves with its project.

MLflow records absolute artifact locations in the store: an experiment's artifact root, each run's artifact
URI, each logged model's and model version's storage location, all under ``<project>/.mlc/mlruns``. A project
copied or moved with its ``.mlc`` would go on reading (and writing) the original's ``mlruns``, or fail once the
original is gone. So the store remembers the state directory it belongs to (``.mlc/store.json``), and when the
project is opened from another place, every location under the old state directory is rewritten to the new one
before MLflow opens the store. Only sqlite and the standard library are used: this runs on every local
``mlc run``, and the all-cached path must not import MLflow.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

STAMP = "store.json"
DB = "mlflow.db"


def _recorded(state_dir: Path, db: Path) -> str | None:
    """The state directory the store was last used in: from the stamp, or, for a store older than stamps,
    from the artifact root mlc gives its experiments (``<state dir>/mlruns``)."""
    try:
        return str(json.loads((state_dir / STAMP).read_text())["state_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT artifact_location FROM experiments ORDER BY experiment_id").fetchall()
    except sqlite3.Error:
        return None
    for (loc,) in rows:
        if isinstance(loc, str) and loc.startswith("file://") and loc.rstrip("/").endswith("/mlruns"):
            path = Path(unquote(urlparse(loc).path)).parent
            if path.name == db.parent.name:
                return str(path)
    return None


def _stamp(state_dir: Path, here: str) -> None:
    tmp = state_dir / f".{STAMP}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"state_dir": here}) + "\n")
    os.replace(tmp, state_dir / STAMP)


def _rewrite(db: Path, old: str, new: str) -> int:
    """Rewrite every text value that starts with the old state directory (as a path or a file URI)."""
    pairs = [(Path(old).as_uri() + "/", Path(new).as_uri() + "/"), (old.rstrip("/") + "/", new.rstrip("/") + "/")]
    changed = 0
    with sqlite3.connect(db) as con:  # one transaction: all rewritten or none
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for _, column, decl, *_ in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                if not any(t in (decl or "").upper() for t in ("CHAR", "TEXT", "CLOB")):
                    continue
                for before, after in pairs:
                    cur = con.execute(
                        f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '
                        f'WHERE substr("{column}", 1, ?) = ?', (after, len(before) + 1, len(before), before))
                    changed += cur.rowcount
    return changed


def follow_project(state_dir: Path) -> str | None:
    """Make the store in ``state_dir`` name its own artifacts; returns the old state directory when the store
    was moved here (and rewritten), else None."""
    db = state_dir / DB
    here = str(state_dir.resolve())
    if not db.exists():
        return None
    old = _recorded(state_dir, db)
    if old == here:
        if not (state_dir / STAMP).exists():
            _stamp(state_dir, here)
        return None
    if old is not None:
        _rewrite(db, old, here)
    _stamp(state_dir, here)
    return old
