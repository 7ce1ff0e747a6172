"""Faults a real API server cannot produce on demand, injected in front of a real one (tests only).

``FaultProxy`` is a plain-HTTP reverse proxy to the test kube-apiserver (tests/kubeenv): every request goes through
unchanged unless ``fault(method, path, query)`` names a fault for it:

- ``"500"``: answer ``500 Internal Server Error`` with a Kubernetes ``Status`` body, without forwarding;
- ``"hang"``: forward nothing and answer nothing for ``hang_s`` seconds (a server that stopped answering);
- ``"drop"``: close the connection without an answer (a connection lost mid-apply).

Everything else, including the state mlc sees before and after a fault, is the real server's.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml

Fault = Callable[[str, str, dict[str, list[str]]], str | None]


class FaultProxy:
    def __init__(self, upstream: str, ca: Path, fault: Fault, hang_s: float = 5.0) -> None:
        self.upstream = httpx.Client(base_url=upstream, verify=ssl.create_default_context(cafile=str(ca)), timeout=60, trust_env=False)
        self.fault = fault
        self.hang_s = hang_s
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.injected: list[tuple[str, str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.upstream.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path: Path, token: str) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "proxy",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "admin"}}]}))
        return path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _do(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                proxy.requests.append((self.command, parts.path, query))
                what = proxy.fault(self.command, parts.path, query)
                if what:
                    proxy.injected.append((what, self.command, parts.path))
                if what == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if what == "hang":
                    time.sleep(proxy.hang_s)
                    self.close_connection = True
                    return
                if what == "500":
                    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}
                    self._send(500, json.dumps(status).encode(), "application/json")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept", "user-agent")}
                r = proxy.upstream.request(self.command, self.path, content=body or None, headers=headers)
                self._send(r.status_code, r.content, r.headers.get("content-type", "application/json"))

            def _send(self, code: int, data: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

        return Handler
