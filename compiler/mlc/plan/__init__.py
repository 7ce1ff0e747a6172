"""Stage 2 of the compiler: the Plan, the IR that every backend and the runtime read.

    model.py     the IR itself: Plan, Pipeline, Step, Endpoint, ... and the container contract's constants
    lowering.py  Spec -> Plan for one environment (`lower`); every name and default is derived there, once
    names.py     Kubernetes-safe names;  metrics.py  metric names;  rules.py  the monitoring rules of a Plan

This module only hands those names on (`from mlc.plan import Plan, lower`). It loads model.py and lowering.py
on first use rather than at import: `mlc validate` imports mlc.plan.names through the semantic checks, and
should not pay for building the IR's classes it never uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlc.plan.lowering import DEFAULT_STEP_RESOURCES, container_env, input_columns, lower, spec_hash
    from mlc.plan.model import (
        DEFAULT_ARGO_VERSION,
        ENV_LABEL,
        LOCAL_STATE_DIR,
        MANAGED_BY,
        OUTPUTS_DIR,
        PROJECT_LABEL,
        RUN_ID,
        SERVE_PORT,
        SPEC_FILE,
        SPEC_MOUNT,
        SPEC_MOUNT_DIR,
        Endpoint,
        EnvVar,
        InputColumn,
        Pipeline,
        Plan,
        Rollout,
        RolloutStep,
        Schedule,
        Step,
        StepResources,
        Storage,
    )

__all__ = [
    "DEFAULT_ARGO_VERSION", "DEFAULT_STEP_RESOURCES", "ENV_LABEL", "LOCAL_STATE_DIR",
    "MANAGED_BY", "OUTPUTS_DIR", "PROJECT_LABEL", "RUN_ID", "SERVE_PORT", "SPEC_FILE", "SPEC_MOUNT",
    "SPEC_MOUNT_DIR", "Endpoint", "EnvVar", "InputColumn", "Pipeline", "Plan", "Rollout", "RolloutStep",
    "Schedule", "Step",
    "StepResources", "Storage", "container_env", "input_columns", "lower", "spec_hash",
]
_LOWERING = frozenset({"DEFAULT_STEP_RESOURCES", "container_env", "input_columns", "lower", "spec_hash"})


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module 'mlc.plan' has no attribute {name!r}")
    value = getattr(import_module("mlc.plan.lowering" if name in _LOWERING else "mlc.plan.model"), name)
    globals()[name] = value
    return value
