"""Notifications to people (`--notify URL`, Apprise URLs): what the daemon did or could not do unattended.

What is sent (DESIGN §7): an update done (container, tag, old → new image id), an update rolled back (why),
a newer image pending (policy `notify`, or waiting for the update window), a crash loop held back, a map
rejected (file:line: message), the engine unreachable longer than the grace period, and its recovery.

- **Batched**: the events of one reconcile make one message (`begin()` … `end()` around it, per worker
  thread); an event outside a reconcile (engine lost, a map error) is a message of its own.
- **Gathered and rate-limited**: the first alert after a quiet spell waits `gather` seconds (at most
  `interval`, 3 by default) for its neighbours — one tag move is a reconcile per container, ending a little
  apart — and then at most one message goes per `interval` seconds; what comes meanwhile is merged into
  the next one, so a burst of reconciles is one message or two, never one each.
- **Never blocking**: messages go through a bounded queue to one sender thread; when the queue is full
  the oldest waiting message is dropped (counted). A slow or dead target delays only that thread.
- **Never fatal**: a target that fails is logged (by its scheme only — Apprise URLs carry tokens) and
  counted (`reconciler_notifications_total{outcome}`).
- **No secrets**: messages are built from names, image references, ids and the masked texts of drift and
  map problems; environment values never reach them.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler.logs import get_logger
from reconciler.model.errors import looks_secret

from .metrics import Metrics

log = get_logger(__name__)
_ASSIGNED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_.-]*)(=|': '|\": \")([^\s'\",;)=]+)")
Send = Callable[[str, str], bool]  # (title, body) → delivered


@dataclass(frozen=True)
class Alert:
    kind: str  # update | rollback | pending | crash-loop | map-error | engine-lost | engine-back
    subject: str  # the container, map file or engine it is about
    text: str  # one line for people; no secret values

    def line(self) -> str:
        return f"[{self.kind}] {self.subject}: {self.text}"


@dataclass
class _Batch:
    alerts: list[Alert] = field(default_factory=list)
    depth: int = 0


class Alerts:
    """Collects alerts per reconcile and hands whole batches to a background sender."""

    def __init__(
        self,
        urls: Sequence[str] = (),
        *,
        metrics: Metrics | None = None,
        interval: float = 10.0,
        gather: float = 3.0,
        queue_size: int = 100,
        targets: Sequence[Send] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.urls = list(urls)  # made into targets by the sender thread: Apprise is slow to import
        self.targets: list[tuple[str, Send]] = [(f"target {i}", t) for i, t in enumerate(targets or ())]
        self.interval = interval
        self.gather = min(gather, interval)
        self.clock = clock
        self.sleep = sleep
        self.host = socket.gethostname()
        self._queue: queue.Queue[list[Alert]] = queue.Queue(maxsize=queue_size)
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_sent: float | None = None
        # (kind, detail) already told, daemon-wide: a broken map is one message, not one per client.
        self._told: set[tuple[str, str]] = set()
        self._told_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.targets or self.urls)

    # --- collecting ----------------------------------------------------------------------------------

    def _batch(self) -> _Batch:
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is None:
            batch = self._local.batch = _Batch()
        return batch

    def begin(self) -> None:
        """Start collecting this thread's alerts into one message (nested calls join the outer batch)."""
        self._batch().depth += 1

    def end(self) -> None:
        """Hand this thread's batch to the sender (one message), if it holds anything."""
        batch = self._batch()
        batch.depth = max(0, batch.depth - 1)
        if batch.depth == 0 and batch.alerts:
            alerts, batch.alerts = batch.alerts, []
            self._enqueue(alerts)

    def add(self, kind: str, subject: str, text: str) -> None:
        alert = Alert(kind, subject, scrub(text))
        if not self.enabled:
            return
        log.debug("notification", kind=kind, subject=subject, text=text)
        batch = self._batch()
        if batch.depth:
            if alert not in batch.alerts:
                batch.alerts.append(alert)
        else:
            self._enqueue([alert])

    def tell_once(self, kind: str, subject: str, text: str, *, detail: str | None = None) -> bool:
        """`add` unless this very thing (`detail`, else the text) was told already; True if told now."""
        key = (kind, detail if detail is not None else text)
        with self._told_lock:
            if key in self._told:
                return False
            self._told.add(key)
        self.add(kind, subject, text)
        return True

    def untell(self, kind: str, detail: str) -> bool:
        """Forget one thing told (it is over: the next time is news again); True if it had been told."""
        with self._told_lock:
            told = (kind, detail) in self._told
            self._told.discard((kind, detail))
        return told

    def forget(self, kind: str, keep: Callable[[str], bool]) -> None:
        """Forget the things of `kind` told whose detail `keep` no longer accepts."""
        with self._told_lock:
            self._told = {t for t in self._told if t[0] != kind or keep(t[1])}

    def _enqueue(self, alerts: list[Alert]) -> None:
        while True:
            try:
                self._queue.put_nowait(alerts)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # the oldest waiting message goes; the newest news stays
                    self.metrics.notifications.labels("dropped").inc()
                except queue.Empty:
                    continue

    # --- sending -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is waiting (within `timeout`), then stop the sender."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _connect(self) -> None:
        for url in self.urls:
            scheme = url.partition("://")[0] or "?"
            try:
                self.targets.append((scheme, apprise_target(url)))
            except Exception as exc:  # a bad URL is reported, and the others still work
                log.error("not a usable notification URL: ignored", target=scheme, error=str(exc))
        self.urls = []

    def _run(self) -> None:
        self._connect()
        while True:
            try:
                alerts = self._queue.get(timeout=1.0)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            self._wait_turn()
            alerts += self._drain()  # what came while waiting for our turn joins this message
            self._deliver(alerts)

    def _wait_turn(self) -> None:
        """Wait for the neighbours of a first alert (`gather`), or for the interval since the last message."""
        if self._stopping.is_set():
            return
        turn = 0.0 if self._last_sent is None else self._last_sent + self.interval - self.clock()
        wait = max(self.gather, turn)
        if wait > 0:
            self.sleep(wait)

    def _drain(self) -> list[Alert]:
        more: list[Alert] = []
        while True:
            try:
                more += self._queue.get_nowait()
            except queue.Empty:
                return more

    def _deliver(self, alerts: list[Alert]) -> None:
        unique = list(dict.fromkeys(alerts))
        title, body = message(self.host, unique)
        self._last_sent = self.clock()
        for name, send in self.targets:
            try:
                ok = send(title, body)
            except Exception as exc:  # a target must never take the sender down
                log.warning("notification target failed", target=name, error=type(exc).__name__)
                ok = False
            else:
                if not ok:
                    log.warning("notification target failed", target=name)
            self.metrics.notifications.labels("sent" if ok else "failed").inc()


def scrub(text: str) -> str:
    """The last line of defence: a `NAME=value` (or `'NAME': 'value'`) under a secret-looking name, as an
    engine error might quote it, is shown as `NAME=***`."""
    return _ASSIGNED.sub(lambda m: f"{m[1]}{m[2]}***" if looks_secret(m[1]) else m[0], text)


def message(host: str, alerts: Sequence[Alert]) -> tuple[str, str]:
    """One message's title and body: a summary of the kinds, then one line per alert."""
    kinds = list(dict.fromkeys(a.kind for a in alerts))
    title = f"reconciler on {host}: " + ", ".join(f"{sum(a.kind == k for a in alerts)} {k}" for k in kinds)
    return title, "\n".join(a.line() for a in alerts)


def apprise_target(url: str) -> Send:
    """One Apprise URL as a target (Apprise imported here only: it is slow to import)."""
    import apprise  # noqa: PLC0415 -- slow to import; only a daemon with --notify needs it

    # Apprise's own log lines may show a target's host and path, where some services keep their tokens:
    # silenced; our log says which target (by scheme) failed.
    logging.getLogger("apprise").disabled = True
    target = apprise.Apprise()
    if not target.add(url):
        raise ValueError(f"not a notification URL Apprise knows ({url.partition('://')[0]}://…)")

    def send(title: str, body: str) -> bool:
        return bool(target.notify(title=title, body=body))

    return send
