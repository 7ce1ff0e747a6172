"""What the registry knows, to make a sentence concrete: the champion's metrics against a changed gate.

Read-only and cheap, never MLflow's client (importing it alone takes longer than the whole diff):
- the local store `mlc run` writes (``<project>/.mlc/mlflow.db``): a few SELECTs on the sqlite file, read-only;
- an environment's ``tracking_uri`` over http(s): MLflow's REST API (``registered-models/alias``, ``runs/get``)
  with a short timeout.
``MLFLOW_TRACKING_URI``, when set, wins, as it does for `mlc run`. Anything that fails says why, as a sentence;
it never fails the diff.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.diff.semantic import Change, _item, _num, _pattern_of, show

TIMEOUT_S = 3.0


@dataclass
class Champion:
    """The production version's test metrics, or why they are unknown."""

    where: str  # "the local store .mlc/mlflow.db", "MLflow at http://..."
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: str | None = None  # the reason, when there is no champion to compare with


def _local(db: Path, model: str, alias: str) -> Champion:
    where = f"the local store {db}"
    if not db.is_file():
        return Champion(where, unavailable=f"no local run yet ({db} does not exist; `mlc run` writes it)")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as e:
        return Champion(where, unavailable=f"cannot open {db}: {e}")
    try:
        row = con.execute("SELECT v.version, v.run_id FROM registered_model_aliases a JOIN model_versions v "
                          "ON v.name = a.name AND v.version = a.version WHERE a.name = ? AND a.alias = ?",
                          (model, alias)).fetchone()
        if row is None:
            return Champion(where, unavailable=f"no version of {model} holds the alias {alias} yet")
        metrics = {k.removeprefix("test_"): float(v) for k, v in con.execute(
            "SELECT key, value FROM latest_metrics WHERE run_uuid = ? AND key LIKE 'test_%'", (row[1],))}
        return Champion(where, str(row[0]), metrics)
    except sqlite3.Error as e:
        return Champion(where, unavailable=f"cannot read {db}: {e}")
    finally:
        con.close()


def _get(base: str, endpoint: str, params: dict[str, str]) -> Any:
    url = f"{base.rstrip('/')}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
        return json.loads(r.read())


def _rest(uri: str, model: str, alias: str) -> Champion:
    where = f"MLflow at {uri}"
    try:
        mv = _get(uri, "registered-models/alias", {"name": model, "alias": alias}).get("model_version") or {}
        run = _get(uri, "runs/get", {"run_id": mv["run_id"]})
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return Champion(where, unavailable=f"no version of {model} holds the alias {alias} yet")
        return Champion(where, unavailable=f"{where} answered HTTP {e.code}")
    except (OSError, ValueError, KeyError) as e:
        return Champion(where, unavailable=f"{where} is not reachable ({getattr(e, 'reason', None) or e})")
    metrics = {m["key"].removeprefix("test_"): float(m["value"])
               for m in (run.get("run", {}).get("data", {}).get("metrics") or [])
               if str(m.get("key", "")).startswith("test_")}
    return Champion(where, str(mv.get("version")), metrics)


def champion(project_dir: Path, spec: Any, env: str | None) -> Champion:
    model, alias = spec.registry.model, spec.registry.production_alias
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri and env and env in spec.environments:
        uri = spec.environments[env].tracking_uri
    if uri and uri.startswith(("http://", "https://")):
        return _rest(uri, model, alias)
    if uri and uri.startswith("sqlite:///"):
        return _local(Path(uri.removeprefix("sqlite:///")), model, alias)
    if uri:
        return Champion(uri, unavailable=f"tracking URI {uri} is neither http(s) nor sqlite")
    return _local(project_dir / ".mlc" / "mlflow.db", model, alias)


def annotate(changes: list[Change], project_dir: Path, spec: Any, env: str | None,
             cluster: Callable[[], tuple[str | None, str | None]] | None = None) -> list[str]:
    """Add the champion's standing to each changed metric gate; returns the notes on what was not available.
    The registry is asked only when a gate changed."""
    gates = [c for c in changes if _pattern_of(c.path) in ("gates.metrics.min", "gates.metrics.max",
                                                           "gates.metrics") and c.status != "removed"]
    notes: list[str] = []
    if gates:
        ch = champion(project_dir, spec, env)
        if ch.unavailable:
            notes.append(f"champion metrics unavailable: {ch.unavailable}")
        for c in gates:
            metric = _item(c.path)
            if ch.unavailable:
                c.context = "champion unavailable"
                continue
            value = ch.metrics.get(metric)
            if value is None:
                c.context = f"the champion (version {ch.version}) has no logged {metric}"
                continue
            bounds = c.new if isinstance(c.new, dict) else {c.path.rsplit(".", 1)[1]: c.new}
            lo, hi = _num(bounds.get("min")), _num(bounds.get("max"))
            passes = (lo is None or value >= lo) and (hi is None or value <= hi)
            c.context = (f"the current champion's {show(round(value, 4))} "
                         + ("still passes" if passes else "would fail it"))
            c.facts = {"champion_version": ch.version, "champion_value": value, "source": ch.where}
            c.sentence += f"; {c.context}"
    traffic = [c for c in changes if c.impact == "traffic"]
    if traffic:
        if cluster is None:
            notes.append("current traffic split unavailable: mlc diff reads the cluster only when given "
                         "--env ENV with --kubeconfig or --context")
        else:
            live, unavailable = cluster()
            if unavailable:
                notes.append(f"current traffic split unavailable: {unavailable}")
            for c in traffic:
                c.context = live or "traffic split unavailable"
                if live:
                    c.sentence += f"; live now: {live}"
    return notes


def live_traffic(plan: Any, kubeconfig: str | None, context: str | None) -> tuple[str | None, str | None]:
    """The InferenceService's traffic split as KServe reports it (status.components.predictor.traffic):
    (sentence, None), or (None, why not). One GET; any failure is a reason, never an error."""
    if plan.endpoint is None:
        return None, f"environment {plan.env} has no online endpoint"
    name, ns = plan.endpoint.name, plan.namespace
    try:
        from mlc.cluster.kube import Kube

        k = Kube(kubeconfig, context)
        try:
            code, obj = k.request("GET", f"/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}",
                                  what=f"get InferenceService {name}")
        finally:
            k.close()
    except Exception as e:  # noqa: BLE001 - an unreachable cluster, a refused token: context, never a failure
        return None, f"cannot read InferenceService {ns}/{name}: {str(e).strip() or type(e).__name__}"
    if code == 404:
        return None, f"InferenceService {ns}/{name} is not on the cluster yet"
    pred = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    split = [t for t in pred.get("traffic") or [] if isinstance(t, dict) and t.get("percent") is not None]
    if not split:
        return None, f"InferenceService {ns}/{name} reports no traffic split yet (not ready)"
    latest = pred.get("latestReadyRevision")
    parts = [f"{t['percent']}% on {t.get('revisionName', '?')}"
             + (" (latest)" if t.get("latestRevision") or t.get("revisionName") == latest else "")
             for t in split]
    return ", ".join(parts), None
