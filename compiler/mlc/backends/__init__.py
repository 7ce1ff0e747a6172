"""Stage 3: Plan -> target objects. One module per target; each reads only the Plan.

Every backend exposes ``build(plan) -> list[Output]``. emit.py gathers them, adds the kustomization, and
writes the tree. Output paths are relative to ``<out>/<project>/<env>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Output:
    path: str  # e.g. "argo/workflowtemplate-churn-train.yaml"
    obj: dict[str, Any] | None = None  # a Kubernetes object, serialised canonically by emit.py
    text: str | None = None  # pre-rendered text (KFP IR, promtool tests); not a Kubernetes resource
    resource: bool = True  # listed in kustomization.yaml
