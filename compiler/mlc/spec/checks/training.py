"""Checks of training, gates and the registry: metrics fit the task and are computed, gates have bounds,
estimators exist for their framework, aliases differ.

    E203 metric not computed     E204 metric does not fit the task   E210 gate bounds
    E214 not a valid MLflow alias  E218 unknown estimator          E219 framework mismatch
    E223 same alias twice
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlc.errors import Diagnostic
from mlc.spec.checks.common import IMPORT_PATH, closest, diag
from mlc.spec.loader import Loaded
from mlc.spec.models import BUILTIN_ESTIMATORS, CLASSIFICATION_METRICS, REGRESSION_METRICS, Spec


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


def metrics_fit(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    task = spec.data.label.task
    fits = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for i, m in enumerate(spec.training.metrics):
        if m not in fits:
            yield diag(
                loaded,
                "E204",
                ("training", "metrics", i),
                f"metric '{m}' does not fit a {task} task",
                f"{task} metrics: {', '.join(fits)}",
            )
    computed = set(spec.training.metrics)
    for path, m in _metric_refs(spec):
        if m not in fits:
            yield diag(
                loaded,
                "E204",
                path,
                f"metric '{m}' does not fit a {task} task",
                f"{task} metrics: {', '.join(fits)}",
            )
        elif m not in computed:
            yield diag(
                loaded,
                "E203",
                path,
                f"metric '{m}' is not computed by training",
                f"add '{m}' to training.metrics",
            )


def gate_bounds(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    for i, g in enumerate(spec.gates.metrics):
        p = ("gates", "metrics", i)
        if g.min is None and g.max is None:
            yield diag(
                loaded,
                "E210",
                p,
                "a metric gate needs `min`, `max` or both",
                f"for example `{{metric: {g.metric}, min: 0.8}}`",
            )
        elif g.min is not None and g.max is not None and g.min > g.max:
            yield diag(
                loaded, "E210", p + ("min",), f"min {g.min:g} is above max {g.max:g}", "no model can pass"
            )
    for i, c in enumerate(spec.gates.champion):
        if (c.max_drop is None) == (c.max_relative_drop is None):
            yield diag(
                loaded,
                "E210",
                ("gates", "champion", i),
                "a champion gate needs exactly one of `max_drop` and `max_relative_drop`",
                "max_drop is absolute (0.01), max_relative_drop a share of the champion's value (0.01 = 1%)",
            )


def aliases(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    r = spec.registry
    if r.candidate_alias == r.production_alias:
        written = ("registry", "production_alias") in loaded.value_spans
        yield diag(
            loaded,
            "E223",
            ("registry", "production_alias" if written else "candidate_alias"),
            f"candidate and production alias are both '{r.production_alias}'",
            "a new version would go straight to production; use e.g. challenger and champion",
        )
    for key in ("candidate_alias", "production_alias"):
        v = getattr(r, key)
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", v) or v == "latest" or re.fullmatch(r"[vV]\d+", v):
            yield diag(
                loaded,
                "E214",
                ("registry", key),
                f"{v!r} is not a valid MLflow alias",
                "letters, digits, '_' and '-'; not 'latest' and not v<number>",
            )


def estimators(spec: Spec, loaded: Loaded) -> Iterator[Diagnostic]:
    every = {n: fw for fw, names_ in BUILTIN_ESTIMATORS.items() for n in names_}
    for i, c in enumerate(spec.training.candidates):
        path = ("training", "candidates", i, "estimator")
        own = BUILTIN_ESTIMATORS.get(c.framework, ())
        if c.estimator in own:
            continue
        if c.estimator in every:
            fw = every[c.estimator]
            yield diag(
                loaded,
                "E219",
                path,
                f"'{c.estimator}' is a {fw} estimator, but the framework is {c.framework}",
                f"set `framework: {fw}`, or use one of: {', '.join(own)}",
            )
        elif ":" in c.estimator:
            if not IMPORT_PATH.match(c.estimator):
                yield diag(
                    loaded,
                    "E218",
                    path,
                    f"invalid import path {c.estimator!r}",
                    "write it as 'package.module:ClassName'",
                )
        else:
            close = closest(c.estimator, own)
            hint = (
                f"did you mean '{close}'?"
                if close
                else f"built-in {c.framework} estimators: {', '.join(own)}; "
                "or an import path 'package.module:ClassName'"
            )
            yield diag(loaded, "E218", path, f"unknown {c.framework} estimator '{c.estimator}'", hint)
    for i, f in enumerate(spec.features):
        t = getattr(f, "transformer", None)
        if t is not None and not IMPORT_PATH.match(t):
            yield diag(
                loaded,
                "E218",
                ("features", i, "transformer"),
                f"invalid import path {t!r}",
                "write it as 'package.module:ClassName'",
            )
