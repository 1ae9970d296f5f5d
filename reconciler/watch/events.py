"""The Docker events stream, survived: reconnect with backoff, and a full relist after every (re)connect.

The docker SDK ends the iteration on an HTTP error, a cut connection or an engine shutdown alike, so *any*
end of the stream is treated as a disconnect. Events are not replayed across an engine restart, so every
(re)connect calls `on_connect` (the daemon relists and reconciles everything). Health probes emit
`exec_create` / `exec_start` / `exec_die` every interval; those are dropped here. The stream is injected
(`open_stream`), so this module needs no engine client of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from reconciler.backoff import Backoff
from reconciler.logs import get_logger

log = get_logger(__name__)
Event = dict[str, Any]
_IGNORED_ACTIONS = (
    "exec_create",
    "exec_start",
    "exec_die",
    "exec_detach",
    "top",
    "attach",
    "resize",
    "export",
    "copy",
    "archive-path",
    "extract-to-dir",
    "commit",
)


class Stream(Protocol):
    def __iter__(self) -> Any: ...
    def close(self) -> None: ...


def interesting(event: Event) -> bool:
    action = str(event.get("Action") or event.get("status") or "")
    return not action.startswith(_IGNORED_ACTIONS)


RECONNECT_BACKOFF = Backoff(0.2, 5.0)  # 0.2, 0.4, 0.8 … 5 s between tries to open the stream


class EventWatcher:
    def __init__(
        self,
        open_stream: Callable[[], Stream],
        on_event: Callable[[Event], None],
        on_connect: Callable[[], None],
        on_disconnect: Callable[[str], None] | None = None,
        *,
        backoff: Backoff = RECONNECT_BACKOFF,
        client: str | None = None,
    ) -> None:
        """`client`: the engine's client name, in every log line (several engines)."""
        self.open_stream = open_stream
        self.log = log.bind(client=client) if client is not None else log
        self.on_event = on_event
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect or (lambda _reason: None)
        self.backoff = backoff
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._stream: Stream | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"engine-events-{client}" if client else "engine-events", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # closing a dead stream can raise anything; we are leaving anyway
                self.log.debug("closing the events stream", error=str(exc))
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._stream = self.open_stream()
            except Exception as exc:
                delay = self.backoff.delay(failures)
                failures += 1
                self.on_disconnect(str(exc))
                self.log.warning("engine events unavailable, retrying", error=str(exc), retry_in=delay)
                self._stop.wait(delay)
                continue
            failures = 0
            self.connected.set()
            self.log.info("engine events connected")
            started = time.monotonic()
            try:
                self.on_connect()  # relist: whatever happened while we were not listening
                for event in self._stream:
                    if self._stop.is_set():
                        break
                    if isinstance(event, dict) and interesting(event):
                        self.on_event(event)
                reason = "stream ended"
            except Exception as exc:
                reason = str(exc)
            self.connected.clear()
            if self._stop.is_set():
                break
            self.on_disconnect(reason)
            self.log.warning("engine events disconnected", reason=reason)
            if time.monotonic() - started < 1:
                self._stop.wait(self.backoff.initial)
