"""Checks of deployment and environments, where the spec meets Kubernetes: canary steps, replicas, resource
quantities, URLs, and every name that ends up on a Kubernetes object.

    E207 canary steps (rollout.py: the rest of the rollout)   E209 replicas min > max   E213 Kubernetes quantity
    E214 not a DNS-1123 name   E215 duplicate name    E216 not a URL
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.plan.names import is_dns_label
from mlc.spec.checks.common import diag, dns_hint
from mlc.spec.loader import Loaded
from mlc.spec.models import Resources, Spec


def online_bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    online = spec.deployment.online
    if online is None:
        return
    steps = online.canary
    for i, s in enumerate(steps):
        if not 1 <= s <= 100:
            yield diag(
                loaded,
                "E207",
                ("deployment", "online", "canary", i),
                f"canary step {s} is outside 1..100",
                "steps are traffic percentages",
            )
        elif i and s <= steps[i - 1]:
            yield diag(
                loaded,
                "E207",
                ("deployment", "online", "canary", i),
                f"canary step {s} does not increase on {steps[i - 1]}",
                "list the traffic percentages in ascending order, e.g. [10, 50, 100]",
            )
    r = online.replicas
    if r.min > r.max:
        yield diag(
            loaded,
            "E209",
            ("deployment", "online", "replicas", "min"),
            f"min replicas {r.min} is above max {r.max}",
            "raise max or lower min",
        )


_CPU = re.compile(r"^(\d+(\.\d+)?|\.\d+)m?$")
_MEMORY = re.compile(r"^(\d+(\.\d+)?|\.\d+)([eE]\d+|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def _resources(spec: Spec) -> Iterator[tuple[tuple, Resources]]:
    yield ("training", "resources"), spec.training.resources
    for i, c in enumerate(spec.training.candidates):
        if c.resources:
            yield ("training", "candidates", i, "resources"), c.resources
    if spec.deployment.online:
        yield ("deployment", "online", "resources"), spec.deployment.online.resources
    for env, e in spec.environments.items():
        if e.resources:
            for cls in ("default", "train", "serve"):
                r = getattr(e.resources, cls)
                if r is not None:
                    yield ("environments", env, "resources", cls), r


def quantities(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for path, r in _resources(spec):
        if r.cpu is not None and not _CPU.match(r.cpu):
            hint = "use cores ('2', '0.5') or millicores ('500m')"
            if r.cpu.lower().endswith(("cores", "core")):
                hint = f"write {r.cpu.split()[0].lower().rstrip('cores').strip()!r}"
            yield diag(loaded, "E213", path + ("cpu",), f"invalid CPU quantity {r.cpu!r}", hint)
        if r.memory is not None and not _MEMORY.match(r.memory):
            m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtpe])i?b?", r.memory.strip(), re.IGNORECASE)
            hint = (
                f"did you mean '{m.group(1)}{m.group(2).upper()}i'?"
                if m
                else "use a Kubernetes quantity such as '512Mi', '2Gi' or '1G'"
            )
            yield diag(loaded, "E213", path + ("memory",), f"invalid memory quantity {r.memory!r}", hint)


def _is_url(v: str) -> bool:
    return bool(re.fullmatch(r"https?://[A-Za-z0-9.\-_]+(:\d{1,5})?(/\S*)?", v))


def urls(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for env, e in spec.environments.items():
        if e.storage and e.storage.endpoint is not None and not _is_url(e.storage.endpoint):
            yield diag(
                loaded,
                "E216",
                ("environments", env, "storage", "endpoint"),
                f"storage endpoint {e.storage.endpoint!r} is not an http(s) URL",
                "for MinIO, e.g. http://minio.minio.svc:9000",
            )
        if e.storage and e.storage.endpoint is not None and not e.storage.root.startswith("s3://"):
            yield diag(
                loaded,
                "E216",
                ("environments", env, "storage", "endpoint"),
                "an S3 endpoint is set but the storage root is not s3://",
                "use `root: s3://bucket/prefix` or remove the endpoint",
            )
        uri = e.tracking_uri
        if uri is not None and not (
            _is_url(uri)
            or re.match(r"^(sqlite|postgresql|mysql|file|databricks)[:+]", uri)
            or uri.startswith("/")
        ):
            yield diag(
                loaded,
                "E216",
                ("environments", env, "tracking_uri"),
                f"tracking URI {uri!r} is not a URL",
                "e.g. http://mlflow.mlflow.svc:5000",
            )


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def names(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    n = spec.metadata.name
    if not is_dns_label(n):
        yield diag(
            loaded, "E214", ("metadata", "name"), f"project name {n!r} is not a DNS-1123 label", dns_hint(n)
        )
    elif len(n) > 40:
        yield diag(
            loaded,
            "E214",
            ("metadata", "name"),
            f"project name is {len(n)} characters; at most 40",
            "derived names such as <name>-artifacts must fit in 63 characters",
        )
    seen: dict[str, int] = {}
    for i, c in enumerate(spec.training.candidates):
        path = ("training", "candidates", i, "name")
        if c.name in seen:
            yield diag(
                loaded,
                "E215",
                path,
                f"duplicate candidate name '{c.name}'",
                f"training.candidates[{seen[c.name]}] already uses it",
            )
        seen.setdefault(c.name, i)
        if not is_dns_label(c.name) or len(c.name) > 57:
            yield diag(
                loaded,
                "E214",
                path,
                f"candidate name {c.name!r} does not make a valid step name 'train-{c.name}'",
                dns_hint(c.name).replace("at most 63", "at most 57"),
            )
    sources: set[str] = set()
    for i, s in enumerate(spec.data.sources):
        if s.name in sources:
            yield diag(
                loaded,
                "E215",
                ("data", "sources", i, "name"),
                f"duplicate source name '{s.name}'",
                "give each source its own `name:`",
            )
        sources.add(s.name)
    for env, e in spec.environments.items():
        if not is_dns_label(env):
            yield diag(
                loaded,
                "E214",
                ("environments", env),
                f"environment name {env!r} is not a DNS-1123 label",
                dns_hint(env),
                key=True,
            )
        if e.namespace is not None and not is_dns_label(e.namespace):
            yield diag(
                loaded,
                "E214",
                ("environments", env, "namespace"),
                f"namespace {e.namespace!r} is not a DNS-1123 label",
                dns_hint(e.namespace),
            )
        subs = [(("environments", env, "service_account"), e.service_account, "service account")]
        if e.storage and e.storage.credentials:
            subs.append(
                (
                    ("environments", env, "storage", "credentials", "secret"),
                    e.storage.credentials.secret,
                    "secret",
                )
            )
        subs += [
            (("environments", env, "secrets", i, "secret"), s.secret, "secret")
            for i, s in enumerate(e.secrets)
        ]
        for path, v, what in subs:
            if v is not None and (len(v) > 253 or not _SUBDOMAIN.match(v)):
                yield diag(
                    loaded,
                    "E214",
                    path,
                    f"{what} name {v!r} is not a valid Kubernetes name",
                    "lower-case letters, digits, '-' and '.'",
                )
