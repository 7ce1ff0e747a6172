"""Test helpers that derive Plan variants the same way lower() does."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

from mlc.plan import Plan, container_env, lower
from mlc.spec.validate import SpecFile, load_spec


def with_secrets(plan: Plan, secrets: tuple[tuple[str, str | None], ...]) -> Plan:
    """The plan as if its environment listed ``secrets`` (secret, key-or-None)."""
    env, whole = container_env(plan.tracking_uri, plan.storage, secrets)
    return dataclasses.replace(plan, pod_env=env, pod_env_secrets=whole)


REPO = Path(__file__).resolve().parents[1]
EXAMPLE_ENVS = [("churn", "local"), ("churn", "staging"), ("churn", "prod"), ("delivery-eta", "local"),
                ("delivery-eta", "prod")]


@lru_cache
def example_spec(name: str) -> SpecFile:
    return load_spec(REPO / "specs" / name)


def example_plan(name: str, env: str, argo_version: str | None = None) -> Plan:
    """The plan of an example project under specs/, for one environment."""
    from mlc.image.refs import resolve

    sf = example_spec(name)
    return lower(sf.spec, sf.text, env, argo_version, image=resolve(sf.spec, env, sf.path)[0])  # as compile does
