"""Semantic checks that need the whole spec: columns exist, metrics fit the task, names, crons, secrets.

Each check is a function ``(spec, loaded) -> Iterable[Diagnostic]``, listed in CHECKS; they are independent,
so every problem is reported in one run. RAW_CHECKS work on the plain YAML tree and also run when the typed
models reject the spec (a literal password is worth reporting either way). The list is the registry: its
order is the order of diagnostics that share a source position, so append new checks at the end.

One module per part of the spec (common.py holds what they share):
    data.py        data and features      E200 E201 E202 E205 E206 E211 E221 E222
    training.py    training, gates, registry   E203 E204 E210 E214 (aliases) E218 E219 E223
    deployment.py  deployment, environments, Kubernetes names   E207 E209 E213 E214 E215 E216
    rollout.py     progressive delivery   E207 E208 E216 E217 E227 E228 E229 E230
    monitoring.py  monitoring, schedules  E210 (quality) E212 E217
    params.py      estimator parameters against spec/estimator_params.py   E224 E225 E226
    secrets.py     the raw tree           E220
    datafiles.py   the data files, read by `mlc validate` only (load_spec(data=True))   E300-E302 W300 W301

Codes are stable; the golden tests in tests/golden/errors/ pin each one.
"""

from __future__ import annotations

from mlc.errors import Diagnostic
from mlc.spec.checks import data, deployment, monitoring, params, rollout, secrets, training
from mlc.spec.checks.common import Check, RawCheck
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec

CHECKS: list[Check] = [
    data.columns_exist,
    data.feature_columns,
    data.column_bounds,
    data.label_and_split,
    training.metrics_fit,
    training.gate_bounds,
    monitoring.quality_bounds,
    deployment.online_bounds,
    data.pins,
    monitoring.crons,
    deployment.quantities,
    monitoring.durations,
    deployment.urls,
    deployment.names,
    training.aliases,
    training.estimators,
    params.estimator_params,
    rollout.rollout,
    rollout.prometheus_urls,
]
RAW_CHECKS: list[RawCheck] = [secrets.secrets]


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


__all__ = ["CHECKS", "RAW_CHECKS", "Check", "run_checks", "run_raw_checks"]
