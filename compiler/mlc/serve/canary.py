"""The local rollout state that `mlc serve --canary` splits traffic by, and the split itself.

The state file ``<project>/.mlc/rollout/state.json`` is the local twin of the InferenceService's
``canaryTrafficPercent``: `mlc rollout start --env local` writes it (``write_state``), the server reads its
integer ``weight`` (0..100, the canary's share of inference requests). Other keys belong to the writer.

Why a polled file and not a control endpoint: the rollout and the server are separate processes that may start in
any order or restart; a file survives both, and an atomic replace means a reader never sees half of it. The server
looks at the file's identity (inode, mtime, size) at most every ``POLL_S`` seconds, so the hot path pays one clock
read per request and a ``stat`` four times a second at most.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlc.errors import MlcError

log = logging.getLogger("mlc.serve")

POLL_S = 0.25
ROUTE_HEADER = "x-mlc-route"  # request header: stable | canary forces the route (tests, debugging)
VERSION_HEADER = "x-mlc-version"  # response headers: which version and role answered
ROLE_HEADER = "x-mlc-role"


class RolloutStateError(MlcError):
    """The local rollout state file is not what `mlc rollout` writes."""


def state_path(project_dir: Path) -> Path:
    """Where the local rollout state of the project in ``project_dir`` lives (the spec's directory)."""
    return Path(project_dir) / ".mlc" / "rollout" / "state.json"


def read_weight(path: Path) -> int | None:
    """The canary weight in the state file: None when there is no file (no rollout: weight 0 for the server).

    Raises RolloutStateError when the file is not a JSON object with an integer ``weight`` in 0..100.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RolloutStateError(f"{path}: cannot read the rollout state: {e.strerror or e}") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as e:
        raise RolloutStateError(f"{path}:{e.lineno}:{e.colno}: the rollout state is not JSON: {e.msg}") from None
    if not isinstance(state, dict):
        raise RolloutStateError(f"{path}: the rollout state must be a JSON object with an integer 'weight'")
    return _weight(state.get("weight"), path)


def _weight(w: Any, path: Path | str) -> int:
    if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
        raise RolloutStateError(f"{path}: 'weight' must be an integer from 0 to 100 (the canary's percent of "
                                f"requests), got {json.dumps(w)}")
    return w


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write the rollout state atomically (temp file in the same directory + os.replace): a server polling the
    file sees the old state or the new one, never a torn write. ``weight``, when present, is checked."""
    path = Path(path)
    if "weight" in state:
        _weight(state["weight"], path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Weight:
    """The current canary weight: fixed (``--canary-weight``), or followed from the state file.

    ``current()`` is called per request: it reads the clock, and only when ``POLL_S`` has passed does it ``stat``
    the file, and only when the file changed does it read it. A malformed file keeps the last good weight and
    logs one warning per change of the file.
    """

    def __init__(self, path: Path | None = None, fixed: int | None = None, *, poll_s: float = POLL_S) -> None:
        self.path = path
        self.fixed = fixed
        self.poll_s = poll_s
        self.value = fixed if fixed is not None else 0
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file last read
        self._next = 0.0
        if fixed is None and path is not None:
            self.refresh()

    def current(self) -> int:
        if self.fixed is None and (now := time.monotonic()) >= self._next:
            self._next = now + self.poll_s
            self.refresh()
        return self.value

    def refresh(self) -> None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None or self.value:
                log.info("rollout state %s is gone: canary weight 0", self.path)
            self._seen, self.value = None, 0
            return
        except OSError:
            return
        ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        if ident == self._seen:
            return
        self._seen = ident
        try:
            w = read_weight(self.path)
        except RolloutStateError as e:
            log.warning("%s; keeping the canary weight at %d", e, self.value)
            return
        w = 0 if w is None else w
        if w != self.value:
            log.info("canary weight %d -> %d (from %s)", self.value, w, self.path)
        self.value = w

    def describe(self) -> str:
        return f"fixed at {self.fixed} (--canary-weight)" if self.fixed is not None else f"from {self.path}"
