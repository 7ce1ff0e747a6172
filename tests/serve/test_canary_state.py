"""The pieces of progressive delivery that need no server: the local rollout state file, the weight that follows
it, the MLC_SERVE_FAULT parser, and how the served version and role are resolved from options and environment."""

from __future__ import annotations

import json
import logging
import os

import pytest

from mlc.serve.canary import RolloutStateError, Weight, read_weight, state_path, write_state
from mlc.serve.command import ServeError, pinned_version, serve_role
from mlc.serve.fault import Fault, FaultError, parse_fault


def test_state_path_is_under_the_project_state_dir(tmp_path) -> None:
    assert state_path(tmp_path) == tmp_path / ".mlc" / "rollout" / "state.json"


def test_write_then_read_and_absent(tmp_path) -> None:
    p = state_path(tmp_path)
    assert read_weight(p) is None
    write_state(p, {"weight": 10, "step": 0, "version": "2"})
    assert read_weight(p) == 10
    assert json.loads(p.read_text()) == {"step": 0, "version": "2", "weight": 10}
    write_state(p, {"weight": 100})
    assert read_weight(p) == 100
    assert sorted(os.listdir(p.parent)) == ["state.json"]  # no temp file left behind


@pytest.mark.parametrize(("text", "needle"), [
    ("{", "is not JSON"),
    ("[10]", "must be a JSON object"),
    ('{"weight": "10"}', "'weight' must be an integer from 0 to 100"),
    ('{"weight": 101}', "got 101"),
    ('{"weight": true}', "got true"),
    ('{"weight": 12.5}', "got 12.5"),
    ('{"step": 1}', "got null"),
])
def test_malformed_state_is_a_clear_error(tmp_path, text: str, needle: str) -> None:
    p = tmp_path / "state.json"
    p.write_text(text)
    with pytest.raises(RolloutStateError, match=needle) as e:
        read_weight(p)
    assert str(p) in str(e.value)


def test_write_state_refuses_a_bad_weight_and_writes_nothing(tmp_path) -> None:
    p = state_path(tmp_path)
    with pytest.raises(RolloutStateError, match="got -1"):
        write_state(p, {"weight": -1})
    assert not p.exists()


def test_weight_follows_the_file_keeps_the_last_good_one_and_warns_once(tmp_path, caplog) -> None:
    p = state_path(tmp_path)
    w = Weight(p, poll_s=0.0)
    assert w.current() == 0  # no file: no rollout
    write_state(p, {"weight": 30})
    assert w.current() == 30
    caplog.set_level(logging.WARNING, logger="mlc.serve")
    p.write_text('{"weight": ')  # a writer that does not replace atomically
    assert w.current() == 30
    assert w.current() == 30
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping the canary weight at 30" in warnings[0].getMessage()
    write_state(p, {"weight": 50})
    assert w.current() == 50
    p.unlink()
    assert w.current() == 0


def test_weight_is_checked_at_most_every_poll_interval(tmp_path, monkeypatch) -> None:
    p = state_path(tmp_path)
    write_state(p, {"weight": 5})
    w = Weight(p, poll_s=3600)
    assert w.current() == 5
    calls: list[object] = []
    real = os.stat
    monkeypatch.setattr(os, "stat", lambda *a, **k: calls.append(a) or real(*a, **k))
    write_state(p, {"weight": 90})
    calls.clear()
    assert [w.current() for _ in range(1000)] == [5] * 1000  # not yet looked at again
    assert calls == []
    w._next = 0.0  # the interval has passed
    assert w.current() == 90 and len(calls) == 1


def test_fixed_weight_never_reads_the_file(tmp_path) -> None:
    p = state_path(tmp_path)
    write_state(p, {"weight": 80})
    assert Weight(p, fixed=7).current() == 7


@pytest.mark.parametrize(("value", "fault"), [
    (None, None),
    ("", None),
    ("  ", None),
    ("role=canary,error=1.0,delay=0.3", Fault("canary", 1.0, 0.3)),
    ("error=0.5", Fault(None, 0.5, 0.0)),
    (" delay = 2 , role=stable ", Fault("stable", 0.0, 2.0)),
])
def test_fault_parses(value: str | None, fault: Fault | None) -> None:
    assert parse_fault(value) == fault


@pytest.mark.parametrize(("value", "needle"), [
    ("error", "expected comma-separated key=value pairs"),
    ("error=1,", "got ''"),
    ("rate=1", "unknown key 'rate'"),
    ("role=beta,error=1", "role must be stable or canary"),
    ("error=2", "error is a probability from 0 to 1"),
    ("error=nan", "error must be a number"),
    ("delay=-1", "delay is seconds"),
    ("error=x", "error must be a number, got 'x'"),
    ("error=1,error=0", "'error' is given twice"),
    ("role=canary", "sets no fault"),
])
def test_fault_rejects(value: str, needle: str) -> None:
    with pytest.raises(FaultError, match=needle):
        parse_fault(value)


def test_fault_applies_to_its_role_only() -> None:
    assert Fault("canary", 1.0).applies("canary") and not Fault("canary", 1.0).applies("stable")
    assert Fault(None, 1.0).applies("stable")


def test_version_precedence(monkeypatch) -> None:
    """--model-version beats MLC_MODEL_VERSION, which beats the alias (None: resolve the alias)."""
    monkeypatch.delenv("MLC_MODEL_VERSION", raising=False)
    assert pinned_version(None) is None
    monkeypatch.setenv("MLC_MODEL_VERSION", "")
    assert pinned_version(None) is None
    monkeypatch.setenv("MLC_MODEL_VERSION", " 4 ")
    assert pinned_version(None) == 4
    assert pinned_version(2) == 2
    for bad in ("v4", "0", "-1", "1.5"):
        monkeypatch.setenv("MLC_MODEL_VERSION", bad)
        with pytest.raises(ServeError, match="expected a registered version number"):
            pinned_version(None)
        assert pinned_version(3) == 3  # an explicit option does not read it


def test_role_precedence(monkeypatch) -> None:
    monkeypatch.delenv("MLC_SERVE_ROLE", raising=False)
    assert serve_role(None) == "stable"
    monkeypatch.setenv("MLC_SERVE_ROLE", "canary")
    assert serve_role(None) == "canary"
    assert serve_role("stable") == "stable"
    monkeypatch.setenv("MLC_SERVE_ROLE", "beta")
    with pytest.raises(ServeError, match="expected stable or canary"):
        serve_role(None)


def test_the_kserve_env_names_are_the_ones_serve_reads() -> None:
    from mlc.backends.kserve import MODEL_VERSION_ENV, ROLE_ENV

    assert (MODEL_VERSION_ENV, ROLE_ENV) == ("MLC_MODEL_VERSION", "MLC_SERVE_ROLE")
