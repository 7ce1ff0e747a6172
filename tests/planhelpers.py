"""Test helpers that derive Plan variants the same way lower() does."""

from __future__ import annotations

import dataclasses

from mlc.plan import Plan, container_env


def with_secrets(plan: Plan, secrets: tuple[tuple[str, str | None], ...]) -> Plan:
    """The plan as if its environment listed ``secrets`` (secret, key-or-None)."""
    env, whole = container_env(plan.tracking_uri, plan.storage, secrets)
    return dataclasses.replace(plan, pod_env=env, pod_env_secrets=whole)
