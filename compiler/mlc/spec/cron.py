"""5-field cron expressions (UTC, Vixie cron semantics), parsed in one place for the two questions mlc asks:
is it valid (spec checks, E212), and what is the longest gap between two runs (the drift check's staleness
limit in plan/rules.py). By hand because croniter costs 45 ms to import and answers neither directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
          ("day of week", 0, 7, _DAYS))
# Long enough to contain every gap a valid expression can have (29 February repeats within 8 years).
_HORIZON_START = date(2024, 1, 1)
_HORIZON_DAYS = 8 * 366


class CronError(ValueError):
    """Why an expression is not a valid cron expression."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # the day-of-month field is exactly * (or ?)
    any_weekday: bool  # the day-of-week field is exactly * (or ?)

    def runs_on(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom, dow = d.day in self.days, (d.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:  # one of them unrestricted: both must match
            return dom and dow
        return dom or dow  # both restricted: either matches (Vixie cron)


def _field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        rng, _, step_text = item.partition("/")
        if step_text and not (step_text.isdigit() and int(step_text) > 0):
            raise CronError(f"bad step {step_text!r} in the {name} field")
        step = int(step_text) if step_text else 1
        if rng == "*" or (rng == "?" and name in ("day of month", "day of week")):
            start, end = lo, hi
        else:
            ends = rng.split("-")
            if len(ends) > 2 or not all(ends):
                raise CronError(f"bad {name} {item!r}")
            vals = []
            for v in (e.lower() for e in ends):
                if v in names:
                    vals.append(names[v])
                elif v.isdigit():
                    vals.append(int(v))
                else:
                    raise CronError(f"bad {name} {v!r}")
            if any(not lo <= v <= hi for v in vals):
                raise CronError(f"{name} must be within {lo}..{hi}, got {item!r}")
            if len(vals) == 2 and vals[0] > vals[1]:
                raise CronError(f"the {name} range {rng!r} runs backwards")
            start = vals[0]
            end = vals[1] if len(vals) == 2 else (hi if step_text else vals[0])  # "5/15" means 5-hi/15
        values.update(range(start, end + 1, step))
    return frozenset(values)


@lru_cache(maxsize=256)
def parse(expr: str) -> Cron:
    e = expr.strip()
    if e.startswith("@"):
        if e not in MACROS:
            raise CronError(f"unknown macro {e!r}")
        e = MACROS[e]
    parts = e.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(parts)}")
    mi, hr, dom, mon, dow = (_field(text, *spec) for text, spec in zip(parts, FIELDS, strict=True))
    cron = Cron(mi, hr, dom, mon, frozenset(d % 7 for d in dow), parts[2] in ("*", "?"), parts[4] in ("*", "?"))
    if not any(cron.runs_on(_HORIZON_START + timedelta(i)) for i in range(_HORIZON_DAYS)):
        raise CronError("it never runs (no such date)")
    return cron


def problem(expr: str) -> str | None:
    """Why ``expr`` is not a valid cron expression, or None."""
    try:
        parse(expr)
    except CronError as e:
        return str(e)
    return None


@lru_cache(maxsize=256)
def max_gap_seconds(expr: str) -> int:
    """The longest time between two consecutive runs of a valid expression."""
    c = parse(expr)
    times = sorted(h * 60 + m for h in c.hours for m in c.minutes)
    gap = max((b - a for a, b in zip(times, times[1:])), default=0)
    previous = None
    for i in range(_HORIZON_DAYS):
        if c.runs_on(_HORIZON_START + timedelta(i)):
            if previous is not None:
                gap = max(gap, (i - previous) * 1440 - times[-1] + times[0])
            previous = i
    return gap * 60
