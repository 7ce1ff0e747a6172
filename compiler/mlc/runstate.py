"""What the local executor knows about one step of a run while it schedules it.

Its own module because two sides share it: ``mlc.local`` (scheduling and caching) writes it and
``mlc.progress`` (the live table and the summary) reads it. Neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlc.plan import Step
from mlc.runtime.context import StepResult

STATUSES = ("pending", "running", "ok", "cached", "failed", "skipped")


@dataclass
class StepState:
    step: Step
    status: str = "pending"  # one of STATUSES
    seconds: float = 0.0
    started: float = 0.0
    key: str = ""
    source_run: str | None = None  # the run a cached step came from
    result: StepResult = field(default_factory=StepResult)
    error: str = ""
