"""Semantic checks that need the whole spec: columns exist, metrics fit the task, names, crons, secrets.

Each check is a function ``(spec, loaded) -> Iterable[Diagnostic]`` registered in CHECKS.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlc.errors import Diagnostic
from mlc.spec.loader import Loaded
from mlc.spec.models import Spec


def run_checks(spec: Spec, loaded: Loaded) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for check in CHECKS:
        out.extend(check(spec, loaded))
    return out


CHECKS: list = []
