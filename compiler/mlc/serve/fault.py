"""A test hook: make a served version fail or slow down on purpose, to test what watches it (the rollout
analysis, alerts) against a real server. Off unless ``MLC_SERVE_FAULT`` is set; parsed once at startup.

    MLC_SERVE_FAULT="role=canary,error=1.0,delay=0.3"

``error``: the probability (0..1) that an inference request answers 500; ``delay``: seconds to wait before
answering; ``role``: only the version serving that role (stable | canary; default: every version). The request
is still counted, timed and labelled like any other, which is the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlc.errors import MlcError
from mlc.plan import metrics as m

FAULT_ENV = "MLC_SERVE_FAULT"
ROLES = (m.ROLE_STABLE, m.ROLE_CANARY)


class FaultError(MlcError):
    """MLC_SERVE_FAULT does not parse."""


@dataclass(frozen=True)
class Fault:
    role: str | None = None
    error: float = 0.0
    delay: float = 0.0

    def applies(self, role: str) -> bool:
        return self.role is None or self.role == role


def parse_fault(value: str | None) -> Fault | None:
    """``role=R,error=P,delay=S`` (any subset, any order) -> Fault; None or blank -> None."""
    if value is None or not value.strip():
        return None
    fields: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = (s.strip() for s in part.partition("="))
        if not sep or not key or not val:
            raise FaultError(f"{FAULT_ENV}={value!r}: expected comma-separated key=value pairs "
                             f"(role=stable|canary, error=0..1, delay=seconds), got {part.strip()!r}")
        if key not in ("role", "error", "delay"):
            raise FaultError(f"{FAULT_ENV}={value!r}: unknown key {key!r}; the keys are role, error and delay")
        if key in fields:
            raise FaultError(f"{FAULT_ENV}={value!r}: {key!r} is given twice")
        fields[key] = val
    role = fields.get("role")
    if role is not None and role not in ROLES:
        raise FaultError(f"{FAULT_ENV}={value!r}: role must be stable or canary, got {role!r}")
    error = _number(fields, "error", value)
    delay = _number(fields, "delay", value)
    if not 0.0 <= error <= 1.0:
        raise FaultError(f"{FAULT_ENV}={value!r}: error is a probability from 0 to 1, got {fields['error']}")
    if not 0.0 <= delay <= 600.0:
        raise FaultError(f"{FAULT_ENV}={value!r}: delay is seconds from 0 to 600, got {fields['delay']}")
    if error == 0.0 and delay == 0.0:
        raise FaultError(f"{FAULT_ENV}={value!r}: sets no fault; give error=P (0..1) and/or delay=SECONDS, or "
                         f"unset it")
    return Fault(role=role, error=error, delay=delay)


def _number(fields: dict[str, str], key: str, value: str) -> float:
    try:
        x = float(fields.get(key, "0"))
    except ValueError:
        raise FaultError(f"{FAULT_ENV}={value!r}: {key} must be a number, got {fields[key]!r}") from None
    if math.isnan(x):
        raise FaultError(f"{FAULT_ENV}={value!r}: {key} must be a number, got {fields[key]!r}")
    return x
