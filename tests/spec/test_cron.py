"""mlc's own cron arithmetic agrees with croniter (a test-only dependency) on the longest gap between runs, and
rejects expressions that are malformed or can never run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlc.spec import cron

EXPRESSIONS = ["0 * * * *", "0 6 * * *", "0 4 1 * *", "0 3 * * 1", "*/15 * * * *", "5/20 1-3 * * *",
               "0 0 29 2 *", "30 8 * * mon-fri", "0 0 1,15 * 5", "0 12 * jan,jul *", "@weekly", "@hourly",
               "7 */6 * * *", "0 0 */10 * *", "0 9-17/2 * * 1-5", "0 0 * * 7", "59 23 31 12 *", "0 0 1 */3 *"]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_max_gap_matches_croniter(expr: str) -> None:
    from croniter import croniter

    it = croniter(expr, datetime(2024, 1, 1, tzinfo=UTC))
    end = datetime(2031, 12, 31, tzinfo=UTC).timestamp()
    prev, gap = it.get_next(float), 0.0
    while (nxt := it.get_next(float)) <= end:
        gap, prev = max(gap, nxt - prev), nxt
    assert cron.max_gap_seconds(expr) == int(gap)


@pytest.mark.parametrize(("expr", "why"), [
    ("0 25 * * *", "hour must be within 0..23, got '25'"),
    ("0 0 31 2 *", "it never runs (no such date)"),
    ("* * *", "a cron expression has 5 fields (minute hour day month weekday), got 3"),
    ("0 0 * * mon-xyz", "bad day of week 'xyz'"),
    ("*/0 * * * *", "bad step '0' in the minute field"),
    ("0 5-2 * * *", "the hour range '5-2' runs backwards"),
    ("@fortnightly", "unknown macro '@fortnightly'"),
])
def test_problems_are_named(expr: str, why: str) -> None:
    assert cron.problem(expr) == why
    assert cron.problem("0 4 1 * *") is None
