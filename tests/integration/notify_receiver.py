"""A local HTTP receiver for Apprise's `json://` notifications, started by a test (no network beyond 127.0.0.1).

`Receiver()` records every POSTed JSON body; `Receiver(hang=True)` accepts connections and never answers
(a dead target that keeps the sender waiting). Stop it with `close()` (or use it as a context manager).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, *, hang: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.hang = hang
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if receiver.hang:
                    receiver._release.wait(60)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.messages.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def bodies(self) -> list[str]:
        return [str(m.get("title", "")) + "\n" + str(m.get("message", "")) for m in self.messages]

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
