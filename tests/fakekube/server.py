"""A fake Kubernetes API server speaking the real REST protocol over HTTP, for tests only.

It implements what mlc's cluster commands use, the way kube-apiserver does it: discovery, GET/LIST with label
selectors, server-side apply (``application/apply-patch+yaml``) with managedFields per field manager and 409
conflicts, JSON merge patch (another manager's edit), POST with generateName, DELETE, ``dryRun=All``,
``fieldValidation=Strict`` and ``namespaces "x" not found``. Lists are atomic (the default for CRD lists).
It keeps every request in ``requests`` so tests can assert that nothing was written.
"""

from __future__ import annotations

import copy
import json
import random
import string
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import yaml

from .schemas import problems

TOKEN = "fake-token"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


@dataclass(frozen=True)
class RType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


DEFAULT_TYPES = (
    RType("v1", "Namespace", "namespaces", False),
    RType("v1", "ConfigMap", "configmaps", True),
    RType("v1", "Secret", "secrets", True),
    RType("v1", "ServiceAccount", "serviceaccounts", True),
    RType("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
    RType("rbac.authorization.k8s.io/v1", "Role", "roles", True),
    RType("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    RType("argoproj.io/v1alpha1", "WorkflowTemplate", "workflowtemplates", True),
    RType("argoproj.io/v1alpha1", "CronWorkflow", "cronworkflows", True),
    RType("argoproj.io/v1alpha1", "Workflow", "workflows", True),
    RType("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices", True),
    RType("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules", True),
)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}
        if details:
            self.status["details"] = details
        self.code = code


Path_ = tuple[str, ...]


def leaves(obj: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    """Field paths a manager owns when it applies ``obj``: map keys down to scalars, lists and empty maps."""
    if isinstance(obj, dict) and obj:
        out: dict[Path_, Any] = {}
        for k, v in obj.items():
            out.update(leaves(v, prefix + (k,)))
        return out
    return {prefix: obj}


def get_path(obj: Any, path: Path_) -> Any:
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return _MISSING
        obj = obj[k]
    return obj


_MISSING = object()


def set_path(obj: dict[str, Any], path: Path_, value: Any) -> None:
    for k in path[:-1]:
        if not isinstance(obj.get(k), dict):
            obj[k] = {}
        obj = obj[k]
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: Path_) -> None:
    parents = []
    cur: Any = obj
    for k in path[:-1]:
        if not isinstance(cur, dict) or k not in cur:
            return
        parents.append((cur, k))
        cur = cur[k]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, k in reversed(parents):  # drop maps the removal emptied
        if parent[k] == {}:
            del parent[k]
        else:
            break


def overlaps(a: Path_, b: Path_) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def fields_v1(paths: set[Path_]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(paths):
        cur = out
        for k in p:
            cur = cur.setdefault(f"f:{k}", {})
    return out


class FakeKube:
    """Start with ``with FakeKube() as k:``; ``k.kubeconfig(path)`` writes a kubeconfig that points at it."""

    def __init__(self, argo: str = "3.7.18") -> None:
        self.argo = argo
        self.types = list(DEFAULT_TYPES)
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name) -> object
        self.managers: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.forbid: Callable[[str, str, str], bool] | None = None  # (verb, plural, namespace) -> 403?
        self.workflow_phases: list[str] = []  # each GET of a Workflow moves it to the next phase
        self.rv = 100
        self.lock = threading.RLock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path: Path, token: str = TOKEN) -> Path:
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
               "users": [{"name": "alice", "user": {"token": token}}, {"name": "bob", "user": {"token": "expired"}}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "alice"}},
                            {"name": "expired", "context": {"cluster": "fake", "user": "bob"}}]}
        path.write_text(yaml.safe_dump(cfg))
        return path

    # -- helpers for tests -------------------------------------------------------------------------------
    def remove_group(self, api_version: str) -> None:
        self.types = [t for t in self.types if t.api_version != api_version]

    @property
    def writes(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [r for r in self.requests if r[0] in WRITE_METHODS]

    def snapshot(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.store)

    def objects(self, plural: str, namespace: str = "") -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k[2]: copy.deepcopy(v) for k, v in self.store.items() if k[0] == plural and k[1] == namespace}

    # -- protocol ----------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _do(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with fake.lock:
                    fake.requests.append((self.command, parts.path, query))
                try:
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    code, out = fake.handle(self.command, parts.path, query, body,
                                            self.headers.get("Content-Type", ""))
                except ApiError as e:
                    code, out = e.code, e.status
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

        return Handler

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               ctype: str) -> tuple[int, dict[str, Any]]:
        segs = [s for s in path.split("/") if s]
        if segs == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if segs == ["apis"]:
            return 200, self._groups()
        if segs[:2] == ["api", "v1"]:
            gv, rest = "v1", segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            gv, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            raise _not_found_path()
        served = [t for t in self.types if t.api_version == gv]
        if not served:
            raise _not_found_path()
        if not rest:
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                r for t in served for r in _resource(t)]}
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else "")
        rt = next((t for t in served if t.plural == plural), None)
        if rt is None or len(rest) > 2:
            raise _not_found_path()
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch", "PUT": "update",
                "DELETE": "delete"}[method]
        if self.forbid and self.forbid(verb, plural, ns):
            scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            target = f'{plural} "{name}"' if name else plural
            raise ApiError(403, "Forbidden", f'{target} is forbidden: User "alice" cannot {verb} resource '
                                             f'"{plural}" in API group "{rt.group}"{scope}')
        q = {k: v[-1] for k, v in query.items()}
        with self.lock:
            if verb == "get":
                return 200, self._get(rt, ns, name)
            if verb == "list":
                return 200, self._list(rt, ns, q.get("labelSelector", ""))
            if verb == "delete":
                return 200, self._delete(rt, ns, name)
            if verb == "create":
                return 201, self._create(rt, ns, json.loads(body), q)
            if verb == "patch":
                return 200, self._patch(rt, ns, name, body, ctype, q)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _groups(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for t in self.types:
            if t.group:
                groups.setdefault(t.group, []).append(t.api_version)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": v, "version": v.split("/")[1]} for v in sorted(set(vs))],
             "preferredVersion": {"groupVersion": vs[0], "version": vs[0].split("/")[1]}}
            for g, vs in sorted(groups.items())]}

    # -- verbs -------------------------------------------------------------------------------------------
    def _key(self, rt: RType, ns: str, name: str) -> tuple[str, str, str]:
        return rt.plural, ns if rt.namespaced else "", name

    def _render(self, key: tuple[str, str, str], obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["metadata"]["managedFields"] = [
            {"manager": m, "operation": e["operation"], "apiVersion": obj["apiVersion"], "time": e["time"],
             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(e["fields"])}
            for m, e in sorted(self.managers.get(key, {}).items())]
        return out

    def _get(self, rt: RType, ns: str, name: str) -> dict[str, Any]:
        key = self._key(rt, ns, name)
        obj = self.store.get(key)
        if obj is None:
            raise _not_found(rt, name)
        if rt.kind == "Workflow" and self.workflow_phases:
            obj.setdefault("status", {})["phase"] = self.workflow_phases.pop(0)
            self._bump(obj)
        return self._render(key, obj)

    def _list(self, rt: RType, ns: str, selector: str) -> dict[str, Any]:
        items = []
        for key, obj in sorted(self.store.items()):
            if key[0] != rt.plural or (ns and key[1] != ns):
                continue
            if _matches(obj["metadata"].get("labels") or {}, selector):
                item = self._render(key, obj)
                if "." not in rt.api_version.split("/")[0]:  # built-in lists carry no kind/apiVersion per item
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                items.append(item)
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def _delete(self, rt: RType, ns: str, name: str) -> dict[str, Any]:
        key = self._key(rt, ns, name)
        if key not in self.store:
            raise _not_found(rt, name)
        del self.store[key]
        self.managers.pop(key, None)
        if rt.kind == "Namespace":  # the namespace controller removes what was inside
            for k in [k for k in self.store if k[1] == name]:
                del self.store[k]
                self.managers.pop(k, None)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": rt.plural}}

    def _check_namespace(self, rt: RType, ns: str) -> None:
        if rt.namespaced and ("namespaces", "", ns) not in self.store:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})

    def _validate(self, rt: RType, obj: dict[str, Any], strict: bool) -> None:
        unknown, invalid = problems(obj, self.argo)
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
        if unknown and strict:
            raise ApiError(400, "BadRequest", f"failed to create typed patch object ({name}; {rt.api_version}, "
                                              f"Kind={rt.kind}): " + "; ".join(unknown))
        if invalid:
            raise ApiError(422, "Invalid", f'{rt.kind} "{name}" is invalid: ' + "; ".join(invalid))

    def _create(self, rt: RType, ns: str, obj: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            if not md.get("generateName"):
                raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value")
            md["name"] = md.pop("generateName") + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if rt.namespaced:
            md["namespace"] = ns
        self._check_namespace(rt, ns)
        self._validate(rt, obj, q.get("fieldValidation") == "Strict")
        key = self._key(rt, ns, md["name"])
        if key in self.store:
            raise ApiError(409, "AlreadyExists", f'{rt.plural} "{md["name"]}" already exists')
        self._new_server_fields(obj, rt)
        fields = set(leaves(_tracked(obj)))
        mgrs = {q.get("fieldManager", "unknown"): {"operation": "Update", "fields": fields, "time": _now()}}
        if q.get("dryRun") != "All":
            self.store[key] = obj
            self.managers[key] = mgrs
        return self._render(key, obj) if q.get("dryRun") != "All" else obj

    def _patch(self, rt: RType, ns: str, name: str, body: bytes, ctype: str, q: dict[str, str]) -> dict[str, Any]:
        ctype = ctype.split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return self._apply(rt, ns, name, yaml.safe_load(body), q)
        if ctype == "application/merge-patch+json":
            return self._merge(rt, ns, name, json.loads(body), q)
        raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                                    f"accepted media types include: application/apply-patch+yaml, "
                                                    f"application/merge-patch+json (got {ctype})")

    def _apply(self, rt: RType, ns: str, name: str, cfg: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
        manager = q.get("fieldManager")
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH requests with apply content type require fieldManager")
        if cfg.get("apiVersion") != rt.api_version or cfg.get("kind") != rt.kind:
            raise ApiError(400, "BadRequest", f"apply patch {cfg.get('apiVersion')}/{cfg.get('kind')} does not "
                                              f"match the URL's {rt.api_version}/{rt.kind}")
        md = cfg.get("metadata") or {}
        if md.get("name") != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({md.get('name')}) does not match the "
                                              f"name on the URL ({name})")
        if rt.namespaced and md.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                              "namespace sent on the request")
        self._check_namespace(rt, ns)
        self._validate(rt, cfg, q.get("fieldValidation") == "Strict")
        key = self._key(rt, ns, name)
        live = self.store.get(key)
        applied = leaves(_tracked(cfg))
        mgrs = copy.deepcopy(self.managers.get(key, {}))
        if live is None:
            new = copy.deepcopy(cfg)
            if rt.namespaced:
                new["metadata"]["namespace"] = ns
            self._new_server_fields(new, rt)
        else:
            conflicts = []
            for p, value in applied.items():
                if get_path(live, p) == value:
                    continue
                for m, e in mgrs.items():
                    if m == manager and e["operation"] == "Apply":
                        continue
                    if any(overlaps(p, f) for f in e["fields"]):
                        conflicts.append((m, p))
            if conflicts and q.get("force") != "true":
                causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {rt.api_version}',
                           "field": "." + ".".join(p)} for m, p in conflicts]
                raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                               f"{'s' if len(conflicts) != 1 else ''}: " + "; ".join(
                                   f'conflict with "{m}" using {rt.api_version}: .{".".join(p)}' for m, p in conflicts),
                               {"causes": causes})
            for m, p in conflicts:  # forced: ownership moves to the applier
                mgrs[m]["fields"] = {f for f in mgrs[m]["fields"] if not overlaps(f, p)}
            new = copy.deepcopy(live)
            before = mgrs.get(manager, {}).get("fields", set()) if mgrs.get(manager, {}).get("operation") == "Apply" \
                else set()
            for p in before - set(applied):
                if not any(p in e["fields"] for m, e in mgrs.items() if m != manager):
                    del_path(new, p)
            for p, value in applied.items():
                set_path(new, p, value)
        old_entry = mgrs.get(manager)
        mgrs[manager] = {"operation": "Apply", "fields": set(applied),
                         "time": old_entry["time"] if old_entry and old_entry["fields"] == set(applied) else _now()}
        mgrs = {m: e for m, e in mgrs.items() if e["fields"]}
        return self._commit(rt, key, live, new, mgrs, q)

    def _merge(self, rt: RType, ns: str, name: str, patch: dict[str, Any], q: dict[str, str]) -> dict[str, Any]:
        key = self._key(rt, ns, name)
        live = self.store.get(key)
        if live is None:
            raise _not_found(rt, name)
        new = _merge_patch(copy.deepcopy(live), patch)
        self._validate(rt, new, q.get("fieldValidation") == "Strict")
        manager = q.get("fieldManager", "unknown")
        changed = {p for p, v in leaves(_tracked(new)).items() if get_path(live, p) != v}
        mgrs = copy.deepcopy(self.managers.get(key, {}))
        for e in mgrs.values():  # an update takes the fields it changes away from their owners
            e["fields"] = {f for f in e["fields"] if not any(overlaps(f, c) for c in changed)}
        entry = mgrs.setdefault(manager, {"operation": "Update", "fields": set(), "time": _now()})
        entry["fields"] |= changed
        mgrs = {m: e for m, e in mgrs.items() if e["fields"]}
        return self._commit(rt, key, live, new, mgrs, q)

    def _commit(self, rt: RType, key: tuple[str, str, str], live: dict[str, Any] | None, new: dict[str, Any],
                mgrs: dict[str, dict[str, Any]], q: dict[str, str]) -> dict[str, Any]:
        old_mgrs = self.managers.get(key, {})
        if live is not None:
            same_fields = {m: e["fields"] for m, e in mgrs.items()} == {m: e["fields"] for m, e in old_mgrs.items()}
            if new == live and same_fields:  # a no-op write stores nothing and keeps the resourceVersion
                return self._render(key, live)
            if _spec_of(new) != _spec_of(live):
                new["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
        if q.get("dryRun") == "All":
            saved = self.managers.get(key)
            self.managers[key] = mgrs
            out = self._render(key, new)
            if saved is None:
                self.managers.pop(key)
            else:
                self.managers[key] = saved
            return out
        if live is not None:
            self._bump(new)
        self.store[key] = new
        self.managers[key] = mgrs
        return self._render(key, new)

    def _new_server_fields(self, obj: dict[str, Any], rt: RType) -> None:
        md = obj["metadata"]
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = _now()
        md["generation"] = 1
        self.rv += 1
        md["resourceVersion"] = str(self.rv)
        if rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)


def _tracked(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object whose fields managers own: not identity, not server-set metadata, not status."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("name", "namespace", *SERVER_META)}
    out["metadata"] = md
    if not md:
        del out["metadata"]
    return out


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge_patch(target.get(k), v)
    return target


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _resource(t: RType) -> list[dict[str, Any]]:
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    r = {"name": t.plural, "singularName": t.kind.lower(), "namespaced": t.namespaced, "kind": t.kind,
         "verbs": verbs}
    return [r, {"name": f"{t.plural}/status", "singularName": "", "namespaced": t.namespaced, "kind": t.kind,
                "verbs": ["get", "patch", "update"]}]


def _not_found(rt: RType, name: str) -> ApiError:
    group = f".{rt.group}" if rt.group else ""
    return ApiError(404, "NotFound", f'{rt.plural}{group} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
