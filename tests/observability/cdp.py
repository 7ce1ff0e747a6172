"""Load a page in real headless Chromium and report what a person would see go wrong: console errors,
uncaught exceptions and failed loads, through the DevTools protocol.

Why the protocol and not ``--enable-logging --v=1``: Chromium's stderr log prints every console message as
``INFO:CONSOLE`` whatever its level, and does not log a resource that failed to load at all, so it cannot
tell an error from a log line. The protocol reports the level (``Runtime.consoleAPICalled``), exceptions
(``Runtime.exceptionThrown``) and the browser's own errors such as a failed load (``Log.entryAdded``). The client
is ``websocket-client``, already installed as a dependency of ``kubernetes``: no new package.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
                None)


@dataclass
class Loaded:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    value: Any = None  # what the probe expression returned
    png: bytes = b""


def load(url: str, probe: str, width: int = 1280, timeout: float = 60.0) -> Loaded:
    """Open ``url``, wait for its load event, evaluate ``probe`` (a JS expression returning JSON) and take a
    full-page PNG at ``width`` CSS pixels."""
    assert CHROMIUM is not None
    # chromium's helper processes may still write to the profile as it exits: cleanup errors are not ours
    with tempfile.TemporaryDirectory(prefix="mlc-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                 "--no-first-run", "--remote-debugging-port=0", "--remote-allow-origins=*",
                                 f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # its own process group: its helpers end with it
        try:
            port = _port(proc, timeout)
            ws_url = _page_socket(port, timeout)
            return _drive(ws_url, url, probe, width, timeout)
        finally:
            _end(proc)


def _end(proc: subprocess.Popen) -> None:
    """Stop the browser and its helper processes (the group it leads), then reap it."""
    import os
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.stderr is not None:
        proc.stderr.close()


def _port(proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before listening")
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            return int(m.group(1))
    raise TimeoutError("chromium did not open its DevTools port")


def _page_socket(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise TimeoutError("chromium opened no page")


def _drive(ws_url: str, url: str, probe: str, width: int, timeout: float) -> Loaded:
    import websocket

    ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
    out = Loaded()
    ids = iter(range(1, 1_000_000))
    replies: dict[int, Any] = {}
    loaded = False

    def on_event(msg: dict[str, Any]) -> None:
        nonlocal loaded
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.errors.append(f"console.{p['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.errors.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
        elif method == "Page.loadEventFired":
            loaded = True

    def call(method: str, **params: Any) -> Any:
        i = next(ids)
        ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while i not in replies:
            msg = json.loads(ws.recv())
            if "id" in msg:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                replies[msg["id"]] = msg.get("result")
            else:
                on_event(msg)
        return replies.pop(i)

    try:
        for domain in ("Runtime", "Log", "Page"):
            call(f"{domain}.enable")
        call("Emulation.setDeviceMetricsOverride", width=width, height=800, deviceScaleFactor=1, mobile=False)
        call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not loaded and time.monotonic() < deadline:
            on_event(json.loads(ws.recv()))
        if not loaded:
            raise TimeoutError(f"{url} did not finish loading")
        res = call("Runtime.evaluate", expression=f"JSON.stringify({probe})", returnByValue=True)
        out.value = json.loads(res["result"]["value"])
        height = call("Runtime.evaluate", expression="document.documentElement.scrollHeight",
                      returnByValue=True)["result"]["value"]
        call("Emulation.setDeviceMetricsOverride", width=width, height=int(height), deviceScaleFactor=1,
             mobile=False)
        shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        out.png = base64.b64decode(shot["data"])
        time.sleep(0.2)  # late console messages (none expected) still arrive before we look
        ws.settimeout(0.3)
        try:
            while True:
                on_event(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
    finally:
        ws.close()
    return out


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
