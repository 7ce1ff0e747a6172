"""Kubernetes-safe names, derived in one place. Never truncated without a stable hash suffix."""

from __future__ import annotations

import hashlib
import re

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS_LABEL.match(s))


def dns_label(*parts: str, limit: int = 63) -> str:
    """Join parts with '-', lower-cased, invalid characters replaced; over ``limit`` gets a hash suffix."""
    raw = "-".join(p for p in parts if p)
    s = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)
    if len(s) <= limit:
        return s
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return s[: limit - 9].rstrip("-") + "-" + digest


def env_var(key: str) -> str:
    """A Secret key as an environment variable name (upper case, digits, underscore), the same on every target."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    return f"_{name}" if name[:1].isdigit() else name
