"""Semantic checks that need the whole spec: columns exist, metrics fit the task, names, crons, secrets.

Each check is a function ``(spec, loaded) -> Iterable[Diagnostic]`` registered in CHECKS by ``@check``;
they are independent, so every problem is reported in one run. RAW_CHECKS work on the plain YAML tree and
also run when the typed models reject the spec (a literal password is worth reporting either way).

Codes (stable; the golden tests in tests/golden/errors/ pin each one):
    E200 unknown column              E201 column in two feature groups   E202 label/entity used as a feature
    E203 metric not computed         E204 metric does not fit the task   E205 bad positive class
    E206 split does not fit          E207 canary steps                   E208 canary needs Knative
    E209 replicas min > max          E210 gate/quality bounds            E211 version pin
    E212 cron expression             E213 Kubernetes quantity            E214 not a DNS-1123 name
    E215 duplicate name              E216 not a URL                      E217 Prometheus duration
    E218 unknown estimator           E219 framework mismatch             E220 literal secret
    E221 column bounds               E222 transform does not fit the column type
    E223 same alias twice
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mlc.errors import Diagnostic
from mlc.plan.names import is_dns_label
from mlc.spec import cron
from mlc.spec.loader import Loaded
from mlc.spec.models import BUILTIN_ESTIMATORS, CLASSIFICATION_METRICS, REGRESSION_METRICS, Resources, Spec

Check = Callable[[Spec, Loaded], Iterable[Diagnostic]]
CHECKS: list[Check] = []
RAW_CHECKS: list[Callable[[Loaded], Iterable[Diagnostic]]] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def run_checks(spec: Spec, loaded: Loaded, *, best_effort: bool = False) -> list[Diagnostic]:
    """Run every check. ``best_effort``: the spec is partial (sections missing), so a check that trips over
    a missing section is skipped rather than treated as a bug in mlc."""
    out: list[Diagnostic] = []
    for fn in CHECKS:
        if not best_effort:
            out.extend(fn(spec, loaded))
            continue
        try:
            for d in fn(spec, loaded):  # keep what a check found before it reached a missing section
                out.append(d)
        except (AttributeError, KeyError, TypeError):
            continue
    return out


def run_raw_checks(loaded: Loaded) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for fn in RAW_CHECKS:
        out.extend(fn(loaded))
    return out


def _diag(
    loaded: Loaded, code: str, path: tuple, message: str, hint: str | None = None, *, key: bool = False
) -> Diagnostic:
    from mlc.spec.validate import dotted

    return Diagnostic(code, message, dotted(path), loaded.span(path, key=key), hint)


def _closest(word: str, options: Iterable[str]) -> str | None:
    from mlc.spec.validate import suggest

    return suggest(word, sorted(options))


# ----------------------------------------------------------------------------- columns
def _column_refs(spec: Spec) -> Iterator[tuple[tuple, str]]:
    """Every place a spec names a column, as (path, column)."""
    d = spec.data
    yield ("data", "label", "column"), d.label.column
    if d.entity is not None:
        yield ("data", "entity"), d.entity
    if d.split.time_column is not None:
        yield ("data", "split", "time_column"), d.split.time_column
    for i, c in enumerate(d.checks):
        col = getattr(c, "column", None)
        if col is not None:
            yield ("data", "checks", i, "column"), col
    for i, f in enumerate(spec.features):
        for j, col in enumerate(f.columns):
            yield ("features", i, "columns", j), col
    for i, g in enumerate(spec.gates.slices):
        yield ("gates", "slices", i, "column"), g.column
    if spec.monitoring.drift:
        for j, col in enumerate(spec.monitoring.drift.features):
            yield ("monitoring", "drift", "features", j), col


@check
def columns_exist(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    schema = spec.data.schema_
    for path, col in _column_refs(spec):
        if col not in schema:
            close = _closest(col, schema)
            hint = f"did you mean '{close}'?" if close else "declare it under data.schema"
            yield _diag(loaded, "E200", path, f"column '{col}' is not in data.schema", hint)


@check
def feature_columns(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    first: dict[str, int] = {}
    label, entity = spec.data.label.column, spec.data.entity
    numeric_types = {"integer", "float", "boolean"}
    for i, f in enumerate(spec.features):
        for j, col in enumerate(f.columns):
            path = ("features", i, "columns", j)
            if col in first and first[col] != i:
                yield _diag(
                    loaded,
                    "E201",
                    path,
                    f"column '{col}' is already in features[{first[col]}]",
                    "each column belongs to exactly one feature group",
                )
            first.setdefault(col, i)
            if f.type == "drop":
                continue
            if col == label:
                yield _diag(
                    loaded,
                    "E202",
                    path,
                    f"the label '{col}' is used as a feature",
                    "remove it from the features: the model would see the answer",
                )
            elif col == entity:
                yield _diag(
                    loaded,
                    "E202",
                    path,
                    f"the entity column '{col}' is used as a feature",
                    "an id never generalises; remove it or put it in a `type: drop` group",
                )
            ctype = spec.data.schema_[col].type if col in spec.data.schema_ else None
            if f.type == "numeric" and ctype is not None and ctype not in numeric_types:
                yield _diag(
                    loaded,
                    "E222",
                    path,
                    f"numeric transform on column '{col}' of type {ctype}",
                    "use `type: categorical` for category and string columns",
                )


@check
def column_bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for name, c in spec.data.schema_.items():
        if c.min is not None and c.max is not None and c.min > c.max:
            yield _diag(
                loaded,
                "E221",
                ("data", "schema", name, "min"),
                f"min {c.min:g} is above max {c.max:g}",
                "swap the bounds",
            )
        if (c.min is not None or c.max is not None) and c.type not in ("integer", "float"):
            yield _diag(
                loaded,
                "E221",
                ("data", "schema", name),
                f"min/max on a {c.type} column",
                "bounds apply to integer and float columns; use `allowed` for the others",
            )
    for i, chk in enumerate(spec.data.checks):
        lo, hi = getattr(chk, "min", None), getattr(chk, "max", None)
        if chk.check == "range":
            if lo is None and hi is None:
                yield _diag(loaded, "E221", ("data", "checks", i), "a range check needs min, max or both")
            elif lo is not None and hi is not None and lo > hi:
                yield _diag(
                    loaded,
                    "E221",
                    ("data", "checks", i, "min"),
                    f"min {lo:g} is above max {hi:g}",
                    "swap the bounds",
                )


# ----------------------------------------------------------------------------- label, split, metrics
@check
def label_and_split(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    label, split = spec.data.label, spec.data.split
    col = spec.data.schema_.get(label.column)
    if label.task == "regression":
        if label.positive is not None:
            yield _diag(
                loaded,
                "E205",
                ("data", "label", "positive"),
                "a regression label has no positive class",
                "remove `positive:` or use `task: classification`",
            )
        if col is not None and col.type not in ("integer", "float"):
            yield _diag(
                loaded,
                "E205",
                ("data", "label", "task"),
                f"regression on column '{label.column}' of type {col.type}",
                "regression needs an integer or float label; did you mean `task: classification`?",
            )
    elif label.positive is not None and col is not None and col.allowed is not None:
        allowed = [str(v).lower() if isinstance(v, bool) else str(v) for v in col.allowed]
        pos = str(label.positive).lower() if isinstance(label.positive, bool) else str(label.positive)
        if pos not in allowed:
            yield _diag(
                loaded,
                "E205",
                ("data", "label", "positive"),
                f"positive class {label.positive!r} is not one of the label's allowed values",
                f"expected one of: {', '.join(allowed)}",
            )
    if split.strategy == "stratified" and label.task != "classification":
        yield _diag(
            loaded,
            "E206",
            ("data", "split", "strategy"),
            "a stratified split needs a classification label",
            "use `strategy: random` or `strategy: time` for regression",
        )
    if split.strategy == "time" and split.time_column is None:
        yield _diag(
            loaded,
            "E206",
            ("data", "split", "strategy"),
            "a time split needs `time_column`",
            "add `time_column:` naming a datetime column",
        )
    if split.strategy != "time" and split.time_column is not None:
        yield _diag(
            loaded,
            "E206",
            ("data", "split", "time_column"),
            f"time_column is only used with `strategy: time`, not {split.strategy}",
            "set `strategy: time` or remove time_column",
        )


def _metric_refs(spec: Spec) -> Iterator[tuple[tuple, str]]:
    yield ("training", "select_by"), spec.training.select_by
    for i, g in enumerate(spec.gates.metrics):
        yield ("gates", "metrics", i, "metric"), g.metric
    for i, g in enumerate(spec.gates.champion):
        yield ("gates", "champion", i, "metric"), g.metric
    for i, g in enumerate(spec.gates.slices):
        yield ("gates", "slices", i, "metric"), g.metric
    if spec.monitoring.quality:
        yield ("monitoring", "quality", "metric"), spec.monitoring.quality.metric


@check
def metrics_fit(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    task = spec.data.label.task
    fits = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for i, m in enumerate(spec.training.metrics):
        if m not in fits:
            yield _diag(
                loaded,
                "E204",
                ("training", "metrics", i),
                f"metric '{m}' does not fit a {task} task",
                f"{task} metrics: {', '.join(fits)}",
            )
    computed = set(spec.training.metrics)
    for path, m in _metric_refs(spec):
        if m not in fits:
            yield _diag(
                loaded,
                "E204",
                path,
                f"metric '{m}' does not fit a {task} task",
                f"{task} metrics: {', '.join(fits)}",
            )
        elif m not in computed:
            yield _diag(
                loaded,
                "E203",
                path,
                f"metric '{m}' is not computed by training",
                f"add '{m}' to training.metrics",
            )


# ----------------------------------------------------------------------------- gates, deployment bounds
@check
def bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for i, g in enumerate(spec.gates.metrics):
        p = ("gates", "metrics", i)
        if g.min is None and g.max is None:
            yield _diag(
                loaded,
                "E210",
                p,
                "a metric gate needs `min`, `max` or both",
                f"for example `{{metric: {g.metric}, min: 0.8}}`",
            )
        elif g.min is not None and g.max is not None and g.min > g.max:
            yield _diag(
                loaded, "E210", p + ("min",), f"min {g.min:g} is above max {g.max:g}", "no model can pass"
            )
    for i, c in enumerate(spec.gates.champion):
        if (c.max_drop is None) == (c.max_relative_drop is None):
            yield _diag(
                loaded,
                "E210",
                ("gates", "champion", i),
                "a champion gate needs exactly one of `max_drop` and `max_relative_drop`",
                "max_drop is absolute (0.01), max_relative_drop a share of the champion's value (0.01 = 1%)",
            )
    q = spec.monitoring.quality
    if q is not None and q.min is None and q.min_ratio is None:
        yield _diag(
            loaded,
            "E210",
            ("monitoring", "quality"),
            "a quality floor needs `min` or `min_ratio`",
            "min is absolute; min_ratio is a share of the training baseline, e.g. 0.95",
        )
    online = spec.deployment.online
    if online is None:
        return
    steps = online.canary
    for i, s in enumerate(steps):
        if not 1 <= s <= 100:
            yield _diag(
                loaded,
                "E207",
                ("deployment", "online", "canary", i),
                f"canary step {s} is outside 1..100",
                "steps are traffic percentages",
            )
        elif i and s <= steps[i - 1]:
            yield _diag(
                loaded,
                "E207",
                ("deployment", "online", "canary", i),
                f"canary step {s} does not increase on {steps[i - 1]}",
                "list the traffic percentages in ascending order, e.g. [10, 50, 100]",
            )
    if steps and online.mode != "Knative":
        yield _diag(
            loaded,
            "E208",
            ("deployment", "online", "canary"),
            f"canary rollout needs `mode: Knative`, not {online.mode}",
            "KServe splits traffic between revisions only in Knative mode; remove canary or the mode",
        )
    r = online.replicas
    if r.min > r.max:
        yield _diag(
            loaded,
            "E209",
            ("deployment", "online", "replicas", "min"),
            f"min replicas {r.min} is above max {r.max}",
            "raise max or lower min",
        )


@check
def pins(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for i, s in enumerate(spec.data.sources):
        if s.pin is None:
            continue
        p = ("data", "sources", i, "pin")
        if (s.pin.sha256 is None) == (s.pin.dvc is None):
            yield _diag(
                loaded,
                "E211",
                p,
                "a pin needs exactly one of `sha256` and `dvc`",
                "sha256: the file's hash (`sha256sum FILE`); dvc: the path of its .dvc pointer file",
            )
        if s.pin.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", s.pin.sha256):
            yield _diag(
                loaded,
                "E211",
                p + ("sha256",),
                "sha256 must be 64 hexadecimal characters",
                "compute it with `sha256sum FILE`",
            )
        if s.pin.dvc is not None and not s.pin.dvc.endswith(".dvc"):
            yield _diag(
                loaded,
                "E211",
                p + ("dvc",),
                f"a DVC pointer file ends with .dvc, got {s.pin.dvc!r}",
                f"did you mean '{s.pin.dvc}.dvc'?",
            )


# ------------------------------------------------------------------------- cron, quantities, durations, URLs
def _crons(spec: Spec) -> Iterator[tuple[tuple, str]]:
    if spec.deployment.batch:
        yield ("deployment", "batch", "schedule"), spec.deployment.batch.schedule
    if spec.monitoring.drift:
        yield ("monitoring", "drift", "schedule"), spec.monitoring.drift.schedule
    if spec.monitoring.retraining and spec.monitoring.retraining.schedule is not None:
        yield ("monitoring", "retraining", "schedule"), spec.monitoring.retraining.schedule


@check
def crons(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for path, expr in _crons(spec):
        why = cron.problem(expr)
        if why:
            yield _diag(
                loaded,
                "E212",
                path,
                f"invalid cron expression {expr!r}: {why}",
                '5 fields in UTC, e.g. "0 4 1 * *" (04:00 on the 1st of each month) or @daily',
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


@check
def quantities(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for path, r in _resources(spec):
        if r.cpu is not None and not _CPU.match(r.cpu):
            hint = "use cores ('2', '0.5') or millicores ('500m')"
            if r.cpu.lower().endswith(("cores", "core")):
                hint = f"write {r.cpu.split()[0].lower().rstrip('cores').strip()!r}"
            yield _diag(loaded, "E213", path + ("cpu",), f"invalid CPU quantity {r.cpu!r}", hint)
        if r.memory is not None and not _MEMORY.match(r.memory):
            m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtpe])i?b?", r.memory.strip(), re.I)
            hint = (
                f"did you mean '{m.group(1)}{m.group(2).upper()}i'?"
                if m
                else "use a Kubernetes quantity such as '512Mi', '2Gi' or '1G'"
            )
            yield _diag(loaded, "E213", path + ("memory",), f"invalid memory quantity {r.memory!r}", hint)


_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


@check
def durations(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    slo = spec.monitoring.slo
    if slo is None:
        return
    for key in ("window", "latency_window"):
        v = getattr(slo, key)
        if not _DURATION.match(v):
            yield _diag(
                loaded,
                "E217",
                ("monitoring", "slo", key),
                f"invalid Prometheus duration {v!r}",
                "a number and a unit (ms, s, m, h, d, w, y), e.g. 5m, 1h or 30d",
            )


def _is_url(v: str) -> bool:
    return bool(re.fullmatch(r"https?://[A-Za-z0-9.\-_]+(:\d{1,5})?(/\S*)?", v))


@check
def urls(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for env, e in spec.environments.items():
        if e.storage and e.storage.endpoint is not None and not _is_url(e.storage.endpoint):
            yield _diag(
                loaded,
                "E216",
                ("environments", env, "storage", "endpoint"),
                f"storage endpoint {e.storage.endpoint!r} is not an http(s) URL",
                "for MinIO, e.g. http://minio.minio.svc:9000",
            )
        if e.storage and e.storage.endpoint is not None and not e.storage.root.startswith("s3://"):
            yield _diag(
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
            yield _diag(
                loaded,
                "E216",
                ("environments", env, "tracking_uri"),
                f"tracking URI {uri!r} is not a URL",
                "e.g. http://mlflow.mlflow.svc:5000",
            )


# ----------------------------------------------------------------------------- names
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _dns_hint(value: str) -> str:
    from mlc.plan.names import dns_label

    fixed = dns_label(value)
    tip = f"; e.g. '{fixed}'" if fixed and fixed != value and is_dns_label(fixed) else ""
    return "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63" + tip


@check
def names(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    n = spec.metadata.name
    if not is_dns_label(n):
        yield _diag(
            loaded, "E214", ("metadata", "name"), f"project name {n!r} is not a DNS-1123 label", _dns_hint(n)
        )
    elif len(n) > 40:
        yield _diag(
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
            yield _diag(
                loaded,
                "E215",
                path,
                f"duplicate candidate name '{c.name}'",
                f"training.candidates[{seen[c.name]}] already uses it",
            )
        seen.setdefault(c.name, i)
        if not is_dns_label(c.name) or len(c.name) > 57:
            yield _diag(
                loaded,
                "E214",
                path,
                f"candidate name {c.name!r} does not make a valid step name 'train-{c.name}'",
                _dns_hint(c.name).replace("at most 63", "at most 57"),
            )
    sources: set[str] = set()
    for i, s in enumerate(spec.data.sources):
        if s.name in sources:
            yield _diag(
                loaded,
                "E215",
                ("data", "sources", i, "name"),
                f"duplicate source name '{s.name}'",
                "give each source its own `name:`",
            )
        sources.add(s.name)
    for env, e in spec.environments.items():
        if not is_dns_label(env):
            yield _diag(
                loaded,
                "E214",
                ("environments", env),
                f"environment name {env!r} is not a DNS-1123 label",
                _dns_hint(env),
                key=True,
            )
        if e.namespace is not None and not is_dns_label(e.namespace):
            yield _diag(
                loaded,
                "E214",
                ("environments", env, "namespace"),
                f"namespace {e.namespace!r} is not a DNS-1123 label",
                _dns_hint(e.namespace),
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
                yield _diag(
                    loaded,
                    "E214",
                    path,
                    f"{what} name {v!r} is not a valid Kubernetes name",
                    "lower-case letters, digits, '-' and '.'",
                )


@check
def aliases(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    r = spec.registry
    if r.candidate_alias == r.production_alias:
        written = ("registry", "production_alias") in loaded.value_spans
        yield _diag(
            loaded,
            "E223",
            ("registry", "production_alias" if written else "candidate_alias"),
            f"candidate and production alias are both '{r.production_alias}'",
            "a new version would go straight to production; use e.g. challenger and champion",
        )
    for key in ("candidate_alias", "production_alias"):
        v = getattr(r, key)
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", v) or v == "latest" or re.fullmatch(r"[vV]\d+", v):
            yield _diag(
                loaded,
                "E214",
                ("registry", key),
                f"{v!r} is not a valid MLflow alias",
                "letters, digits, '_' and '-'; not 'latest' and not v<number>",
            )


# ----------------------------------------------------------------------------- estimators
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@check
def estimators(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    every = {n: fw for fw, names_ in BUILTIN_ESTIMATORS.items() for n in names_}
    for i, c in enumerate(spec.training.candidates):
        path = ("training", "candidates", i, "estimator")
        own = BUILTIN_ESTIMATORS.get(c.framework, ())
        if c.estimator in own:
            continue
        if c.estimator in every:
            fw = every[c.estimator]
            yield _diag(
                loaded,
                "E219",
                path,
                f"'{c.estimator}' is a {fw} estimator, but the framework is {c.framework}",
                f"set `framework: {fw}`, or use one of: {', '.join(own)}",
            )
        elif ":" in c.estimator:
            if not _IMPORT_PATH.match(c.estimator):
                yield _diag(
                    loaded,
                    "E218",
                    path,
                    f"invalid import path {c.estimator!r}",
                    "write it as 'package.module:ClassName'",
                )
        else:
            close = _closest(c.estimator, own)
            hint = (
                f"did you mean '{close}'?"
                if close
                else f"built-in {c.framework} estimators: {', '.join(own)}; "
                "or an import path 'package.module:ClassName'"
            )
            yield _diag(loaded, "E218", path, f"unknown {c.framework} estimator '{c.estimator}'", hint)
    for i, f in enumerate(spec.features):
        t = getattr(f, "transformer", None)
        if t is not None and not _IMPORT_PATH.match(t):
            yield _diag(
                loaded,
                "E218",
                ("features", i, "transformer"),
                f"invalid import path {t!r}",
                "write it as 'package.module:ClassName'",
            )


# ----------------------------------------------------------------------------- secrets (raw tree)
_SECRET_KEY = re.compile(
    r"(^|[_\-.])(password|passwd|pwd|secret[_\-]?key|secret[_\-]?access[_\-]?key|access[_\-]?key([_\-]?id)?|"
    r"token|auth[_\-]?token|api[_\-]?key|apikey|credentials?|private[_\-]?key)$",
    re.I,
)
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_URI_PASSWORD = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@", re.I)


def _walk(node: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def secrets(loaded: Loaded) -> Iterator[Diagnostic]:
    hint = "reference a Kubernetes Secret instead, e.g. `{secret: NAME, key: KEY}`"
    for path, v in _walk(loaded.data, ()):
        if not isinstance(v, str) or not v:
            continue
        if path and isinstance(path[-1], str) and _SECRET_KEY.search(path[-1]):
            yield _diag(loaded, "E220", path, f"literal credential in '{path[-1]}'", hint)
        elif _AWS_KEY.search(v):
            yield _diag(loaded, "E220", path, "this looks like an AWS access key id", hint)
        elif _URI_PASSWORD.match(v):
            yield _diag(
                loaded,
                "E220",
                path,
                "this URI embeds a password",
                "remove `user:password@`; pass credentials through a Secret (environments.*.secrets)",
            )


RAW_CHECKS.append(secrets)
