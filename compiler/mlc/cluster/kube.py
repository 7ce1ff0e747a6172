"""The HTTP side of talking to a Kubernetes API server: config loading, errors a person can act on, discovery.

The official ``kubernetes`` client only loads the kubeconfig (or the in-cluster service account): host, TLS
files, token, exec plugins. Requests go out through httpx with the same TLS and auth, so every request is
exactly the documented REST call (server-side apply is a PATCH with ``application/apply-patch+yaml``) and
every failure maps to one clear line instead of a client-library traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlc.errors import ApplyError

TIMEOUT_S = 20.0
FIELD_MANAGER = "mlc"


class ClusterError(ApplyError):
    """Anything the cluster refused or could not do; always one line, never a traceback."""


@dataclass
class Conflict:
    field: str
    manager: str  # the message from the server, e.g. 'conflict with "kubectl-edit" using v1'


class ConflictError(ClusterError):
    """Server-side apply found fields that another field manager owns with a different value."""

    def __init__(self, what: str, conflicts: list[Conflict], message: str) -> None:
        self.what = what
        self.conflicts = conflicts
        super().__init__(message)


class NotFoundError(ClusterError):
    pass


class ForbiddenError(ClusterError):
    """403: the credentials lack an RBAC permission."""


@dataclass(frozen=True)
class ResourceType:
    """One kind as the server serves it: the REST path segment and whether it lives in a namespace."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{ns}/{self.plural}" + (f"/{name}" if name else "")


def describe(obj: dict[str, Any]) -> str:
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


class Kube:
    """A thin REST client; one per command."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        cfg = _load_config(kubeconfig, context)
        self.host = cfg.host.rstrip("/")
        self._cfg = cfg
        headers = {"Accept": "application/json", "User-Agent": "mlc"}
        if cfg.username and not cfg.get_api_key_with_prefix("authorization"):
            headers["Authorization"] = cfg.get_basic_auth_token()
        verify: Any = False
        if cfg.verify_ssl:
            verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else True
        if cfg.cert_file and cfg.key_file:
            if verify is True or verify is False:
                ctx = ssl.create_default_context()
                if verify is False:
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                verify = ctx
            verify.load_cert_chain(cfg.cert_file, cfg.key_file)
        self._sni = getattr(cfg, "tls_server_name", None)
        self.http = httpx.Client(base_url=self.host, headers=headers, verify=verify, timeout=TIMEOUT_S,
                                 trust_env=False, proxy=cfg.proxy or None, transport=transport,
                                 follow_redirects=True)  # an OpenAPI URL with a stale hash redirects
        self.last_url = ""
        self.types: dict[tuple[str, str], ResourceType] = {}

    def close(self) -> None:
        self.http.close()

    # -- raw requests --------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None, content_type: str = "application/json",
                what: str = "") -> tuple[int, dict[str, Any]]:
        """Send one request; return (status, json) for 2xx and 404, raise ClusterError for anything else."""
        data = json.dumps(body, sort_keys=True).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        if self._cfg.refresh_api_key_hook is not None:  # exec plugins and service-account tokens expire
            self._cfg.refresh_api_key_hook(self._cfg)
        token = self._cfg.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        extensions = {"sni_hostname": self._sni} if self._sni else None
        try:
            r = self.http.request(method, path, params=params, content=data, headers=headers,
                                  extensions=extensions)
        except httpx.TimeoutException:
            raise ClusterError(f"the Kubernetes API at {self.host} did not answer within {TIMEOUT_S:.0f}s") from None
        except httpx.HTTPError as e:
            raise ClusterError(f"cannot reach the Kubernetes API at {self.host}: {_reason(e)}") from None
        self.last_url = str(r.url)
        payload = _json(r)
        if r.status_code < 300 or r.status_code == 404:
            return r.status_code, payload
        msg = str(payload.get("message") or r.reason_phrase or "").strip()
        if r.status_code == 401:
            raise ClusterError(f"the Kubernetes API at {self.host} rejected the credentials (401 Unauthorized): "
                               "they are missing, wrong or expired; log in again or choose another --context")
        if r.status_code == 403:
            raise ForbiddenError(f"forbidden (403): {msg or method + ' ' + path}; ask a cluster admin for the "
                               "RBAC permission, or choose another --context")
        if r.status_code == 409 and payload.get("reason") == "Conflict":
            causes = (payload.get("details") or {}).get("causes") or []
            conflicts = [Conflict(c.get("field", "?"), c.get("message", "")) for c in causes]
            raise ConflictError(what, conflicts, f"{what}: {msg}")
        if "field not declared in schema" in msg or "unknown field" in msg:
            # strict field validation; a 1.28 server words it as "failed to create typed patch object (...): ..."
            fields = msg.rsplit("): ", 1)[-1] if "failed to create typed patch object" in msg else msg
            raise ClusterError(f"{what or path}: the server rejects fields it does not know (strict field "
                               f"validation): {fields}")
        raise ClusterError(f"{what or method + ' ' + path}: {r.status_code} {payload.get('reason') or r.reason_phrase}"
                           f": {msg}")

    # -- discovery -----------------------------------------------------------------------------------------
    def discover(self, api_versions: set[str]) -> set[str]:
        """Map the kinds of ``api_versions`` to resources; return the group versions the server lacks."""
        missing: set[str] = set()
        _, core = self.request("GET", "/api", what="API discovery")
        _, groups = self.request("GET", "/apis", what="API discovery")
        served = {"v1"} if "v1" in core.get("versions", []) else set()
        for g in groups.get("groups", []):
            served.update(v.get("groupVersion", "") for v in g.get("versions", []))
        for gv in sorted(api_versions):
            if gv not in served:
                missing.add(gv)
                continue
            code, res = self.request("GET", "/api/v1" if gv == "v1" else f"/apis/{gv}", what=f"discovery of {gv}")
            if code == 404:
                missing.add(gv)
                continue
            for r in res.get("resources", []):
                if "/" not in r.get("name", ""):
                    self.types[(gv, r["kind"])] = ResourceType(gv, r["kind"], r["name"], bool(r.get("namespaced")))
        return missing

    def openapi_schemas(self, group_version: str) -> dict[str, dict[str, Any]] | None:
        """``components.schemas`` of one group version's OpenAPI v3 document, or None when the server does not
        publish it or the credentials may not read it (every authenticated user may, by default)."""
        try:
            code, index = self.request("GET", "/openapi/v3", what="OpenAPI discovery")
            prefix = "api/v1" if group_version == "v1" else f"apis/{group_version}"
            url = ((index.get("paths") or {}).get(prefix) or {}).get("serverRelativeURL")
            if code == 404 or not url:
                return None
            cached = _cache_file(self.host, url) if "hash=" in url else None
            if cached is not None and cached.is_file():
                try:
                    return dict(json.loads(cached.read_text()))
                except (OSError, ValueError):
                    pass
            code, doc = self.request("GET", url, what=f"OpenAPI schema of {group_version}")
        except ForbiddenError:
            return None
        if code == 404:
            return None
        schemas = (doc.get("components") or {}).get("schemas") or {}
        if cached is not None and self.last_url.endswith(url):  # a hash URL names its content (unless redirected)
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(schemas, separators=(",", ":")))
                tmp.replace(cached)
            except OSError:
                pass
        return schemas

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self.types[(api_version, kind)]
        except KeyError:
            raise ClusterError(f"the cluster does not serve {kind} in {api_version}") from None

    # -- verbs ---------------------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        code, obj = self.request("GET", rt.path(namespace, name), what=f"get {rt.kind} {name}")
        return None if code == 404 else obj

    def list(self, rt: ResourceType, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        """Items of a label-selector list. Servers omit kind/apiVersion on items of built-in lists; add them."""
        code, body = self.request("GET", rt.path(namespace), params={"labelSelector": selector},
                                  what=f"list {rt.plural}")
        if code == 404:
            return []
        return [{**i, "apiVersion": rt.api_version, "kind": rt.kind} for i in body.get("items", [])]

    def apply(self, rt: ResourceType, obj: dict[str, Any], *, dry_run: bool = False,
              force: bool = False) -> dict[str, Any]:
        md = obj["metadata"]
        params = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        code, out = self.request("PATCH", rt.path(md.get("namespace"), md["name"]), params=params, body=obj,
                                 content_type="application/apply-patch+yaml", what=describe(obj))
        if code == 404:
            raise NotFoundError(f"{describe(obj)}: {out.get('message') or 'not found'}")
        return out

    def create(self, rt: ResourceType, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        code, out = self.request("POST", rt.path(namespace), params={"fieldManager": FIELD_MANAGER}, body=obj,
                                 what=f"create {rt.kind}")
        if code == 404:
            raise NotFoundError(f"create {rt.kind}: {out.get('message') or 'not found'}")
        return out

    def delete(self, rt: ResourceType, namespace: str | None, name: str, propagation: str = "Foreground") -> bool:
        """Return False when the object was already gone."""
        code, _ = self.request("DELETE", rt.path(namespace, name), params={"propagationPolicy": propagation},
                               what=f"delete {rt.kind} {name}")
        return code != 404


def in_pod() -> bool:
    """Inside a pod whose ServiceAccount token is mounted: its credentials are the ones to use there, whatever
    kubeconfig the image or the environment carries."""
    from kubernetes.config import incluster_config

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(
        incluster_config.SERVICE_TOKEN_FILENAME)


def _load_config(kubeconfig: str | None, context: str | None) -> Any:
    from kubernetes import client
    from kubernetes.config import ConfigException, load_incluster_config, load_kube_config

    cfg = client.Configuration()
    if kubeconfig is None and context is None and in_pod():
        try:
            load_incluster_config(client_configuration=cfg)
            return cfg
        except ConfigException as e:
            raise ClusterError(f"cannot use this pod's ServiceAccount credentials: {str(e).strip()}") from None
    try:
        load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False)
        return cfg
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as e:
        first = e
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            load_incluster_config(client_configuration=cfg)
            return cfg
        except ConfigException as e:
            first = e
    where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    why = str(first).strip() or type(first).__name__
    if kubeconfig is None and not os.path.exists(os.path.expanduser(where.split(os.pathsep)[0])):
        from kubernetes.config import incluster_config

        pod = (f"KUBERNETES_SERVICE_HOST is set but no ServiceAccount token is mounted at "
               f"{incluster_config.SERVICE_TOKEN_FILENAME}" if os.environ.get("KUBERNETES_SERVICE_HOST")
               else "KUBERNETES_SERVICE_HOST is not set")
        raise ClusterError(f"no Kubernetes credentials: no kubeconfig at {where}, and not in a pod ({pod}); set "
                           "KUBECONFIG, or run the step in a pod whose ServiceAccount token is mounted")
    raise ClusterError(f"cannot load the Kubernetes config from {where}: {why}")


def _cache_file(host: str, url: str) -> Path | None:
    """Where a content-addressed OpenAPI document is kept (as kubectl keeps discovery in ~/.kube/cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not root or root.startswith("~"):
        return None
    key = hashlib.sha256(f"{host}{url}".encode()).hexdigest()[:32]
    return Path(root) / "mlc" / "openapi" / f"{key}.json"


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        v = r.json()
    except ValueError:
        return {"message": r.text.strip()[:200]}
    return v if isinstance(v, dict) else {}
