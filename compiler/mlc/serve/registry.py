"""A read-only look into the local registry that `mlc run` writes, so that `mlc serve` starts without MLflow.

Why: through the MLflow client, the server spent about 3 s before it could open its socket (1.5 s importing
mlflow, 1.6 s for the SQLAlchemy store to open and check its schema) and another 0.5 s in
``mlflow.sklearn.load_model`` (resolving ``models:/``, copying the artefacts to a temporary directory). For the
local store (``sqlite:///<project>/.mlc/mlflow.db``, artefacts under ``file://``) the same facts are a few
SELECTs and one ``pickle.load``, as MLflow's own sklearn loader does it.

This is an optimisation only. Whatever it does not recognise (another kind of store, a schema the queries do not
fit, a version that is not READY, an ambiguous answer, a flavor with code paths, pickles disallowed) returns None,
and the caller asks the MLflow client, which stays the reference and gives the error messages.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlc.runtime.sqlite_store import sqlite_path

log = logging.getLogger("mlc.serve")

DELETED_STAGE = "Deleted_Internal"  # mlflow.entities.model_registry.model_version_stages.STAGE_DELETED_INTERNAL
PICKLE_FORMATS = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class LocalVersion:
    version: str
    run_id: str | None
    tags: dict[str, str]
    artifacts: Path  # the model's directory: MLmodel and the pickled pipeline




def find_version(tracking_uri: str, name: str, *, version: int | None, alias: str | None) -> LocalVersion | None:
    """The registered version by number or alias, read from a local sqlite store; None: ask MLflow."""
    db = sqlite_path(tracking_uri)
    if db is None or not db.is_file() or (os.environ.get("MLFLOW_WORKSPACE") or "default").strip() != "default":
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        if version is not None:
            rows = con.execute("SELECT version, run_id, storage_location, status, current_stage FROM model_versions "
                               "WHERE name = ? AND version = ?", (name, version)).fetchall()
        else:
            rows = con.execute("SELECT v.version, v.run_id, v.storage_location, v.status, v.current_stage "
                               "FROM registered_model_aliases a JOIN model_versions v "
                               "ON v.name = a.name AND v.version = a.version "
                               "WHERE a.name = ? AND a.alias = ?", (name, alias)).fetchall()
        if len(rows) != 1:
            return None  # not found (MLflow says so in its words), or one per workspace
        number, run_id, location, status, stage = rows[0]
        if status != "READY" or stage == DELETED_STAGE or not isinstance(location, str):
            return None
        tags = dict(con.execute("SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
                                (name, number)).fetchall())
    except sqlite3.Error:
        return None  # a schema these queries do not fit
    finally:
        con.close()
    artifacts = _local_dir(location)
    if artifacts is None or not (artifacts / "MLmodel").is_file():
        return None
    return LocalVersion(version=str(number), run_id=run_id, tags=tags, artifacts=artifacts)


def run_value(tracking_uri: str, run_id: str, key: str) -> str | None:
    """A run's tag, else its param (the positive class of versions registered without the version tag)."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            for table in ("tags", "params"):
                row = con.execute(f"SELECT value FROM {table} WHERE run_uuid = ? AND key = ?",
                                  (run_id, key)).fetchone()
                if row and row[0] is not None:
                    return str(row[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return None


def sklearn_loader(artifacts: Path) -> Any:
    """A function that unpickles the model's sklearn flavor as ``mlflow.sklearn.load_model`` does, or None when
    the flavor needs more than that (code paths, skops, a missing file) or pickles are disallowed."""
    import yaml

    if os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower() not in ("true", "1"):
        return None  # MLflow's safety switch: let MLflow refuse, with its message
    try:
        conf = (yaml.safe_load((artifacts / "MLmodel").read_text()) or {}).get("flavors", {}).get("sklearn")
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(conf, dict) or conf.get("code") or conf.get("serialization_format", "pickle") not in \
            PICKLE_FORMATS or not isinstance(conf.get("pickled_model"), str):
        return None
    path = artifacts / conf["pickled_model"]
    if not path.is_file():
        return None
    fmt, trained_with = conf.get("serialization_format", "pickle"), conf.get("sklearn_version")

    def load() -> Any:
        import pickle

        with path.open("rb") as f:
            if fmt == "cloudpickle":
                import cloudpickle

                model = cloudpickle.load(f)
            else:
                model = pickle.load(f)  # the project's own registry, as mlflow.sklearn loads it
        import sklearn

        if trained_with and trained_with != sklearn.__version__:
            log.warning("the model was trained with scikit-learn %s and is served with %s", trained_with,
                        sklearn.__version__)
        return model

    return load


def _local_dir(uri: str) -> Path | None:
    p = urlparse(uri)
    if p.scheme == "file" and p.netloc in ("", "localhost"):
        return Path(unquote(p.path))
    if p.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None
