"""`/healthz`, `/readyz`, `/metrics` and the status page over HTTP: uvicorn (h11, one asyncio thread) and a
small ASGI app.

`/healthz` answers 200 while the loop makes progress and the engine has not been unreachable for too long,
503 otherwise (with the reason); `/readyz` answers 200 once the maps are loaded and the first full reconcile
has run; `/metrics` is Prometheus' text format. Bound to 127.0.0.1 by default; `http_auth` says who may
read what (a bearer token for everything but the probes once a token is set; one is required off loopback).

The status page (`/`, its script and style under `/static/`, shipped in the package beside this module) is
static: it polls `/api/status`, whose JSON `board.status` composes. That document is made on one worker
thread of its own (it may look at the engine when the cache is cold, which must not block the event loop)
and made at most once a second, however many clients poll. The page's answers carry a Content-Security-
Policy that allows only the daemon's own script and style (no inline code, no other origin).

Hardening (issue 19), so that clients that misbehave cannot take the daemon's memory or threads, nor
keep `/healthz` from answering:

- one thread and one event loop whatever the number of clients (the standard library's server spent a
  thread per connection and never timed a read);
- at most `max_connections` open at once: a new one beyond that closes the oldest connection that has not
  yet sent a whole request (a probe's connection sends its request at once, so it is never the oldest);
  only when every connection is busy with a request is the new one refused;
- a request's headers must be complete within `header_timeout` of the connection opening or of the
  previous response (slow-loris clients are cut off), headers are at most `header_limit` bytes, an idle
  keep-alive connection is closed after `idle_timeout`, and a request whose handling goes on for longer
  than `response_timeout` (a client that does not read its answer) is cut off;
- a request body (the future webhook's payload) is refused with 413 as soon as its declared length is over
  `body_limit` — before any of it is read — or as soon as what arrived passes the limit (chunked), and
  with 408 when it does not arrive within `body_timeout`; uvicorn's flow control stops reading a socket
  while 64 KiB of body wait unread.

The deadlines and the limit live in a subclass of uvicorn's `H11Protocol` (uvicorn has no header timeout of
its own, and its `limit_concurrency` answers 503 to everyone, probes included, once slow clients fill it); it
relies on the protocol's `cycle` and `on_response_complete`, which `tests/integration/test_http_hardening.py`
exercises against the pinned major version.

The server binds its socket in `StatusServer.__init__` (an address in use fails there, at start), and
imports uvicorn only in `start()`, so that the command line's other commands do not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reconciler.logs import get_logger

from .http_auth import OPEN_PATHS, bearer_ok
from .metrics import Metrics
from .page import ASSETS, asset

if TYPE_CHECKING:
    import uvicorn

log = get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEXT = b"text/plain; charset=utf-8"
ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/", "/api/status", *ASSETS})
PAGE_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
STATUS_MAX_AGE = 1.0  # seconds an /api/status document is served again before it is made anew
START_TIMEOUT = 5.0  # seconds for the server thread to be listening
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class HttpLimits:
    """The server's bounds; the defaults are the settings' defaults (see README, "Limits and hardening")."""

    max_connections: int = 128
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    body_timeout: float = 10.0
    body_limit: int = 1024 * 1024
    header_limit: int = 16 * 1024
    response_timeout: float = 10.0
    backlog: int = 1024


class BodyTooLarge(Exception):
    """The request body passed the limit; nothing past the limit was read."""


class ClientGone(Exception):
    """The client disconnected while its request body was read."""


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes:
    """A request's body, at most `limit` bytes, all of it within `timeout` seconds.

    Raises BodyTooLarge as soon as what arrived passes `limit`, TimeoutError when the deadline passes,
    ClientGone when the client went away.
    """
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = TEXT,
    *,
    close: bool = False,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"date", formatdate(usegmt=True).encode()),  # uvicorn's own is off (date_header=False): see QuietServer
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


Hook = Callable[[bytes, Mapping[str, str]], tuple[int, str]]  # (body, lower-case headers) → (status, text)


class StatusDocument:
    """`/api/status`'s JSON, made on its own thread and at most once every `max_age` seconds."""

    def __init__(self, make: Callable[[], dict[str, Any]], max_age: float = STATUS_MAX_AGE) -> None:
        self.make = make
        self.max_age = max_age
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="status-page")
        self._lock = threading.Lock()
        self._made: tuple[float, bytes] | None = None

    def _body(self) -> bytes:
        with self._lock:
            now = time.monotonic()
            if self._made is None or now - self._made[0] >= self.max_age:
                self._made = (now, json.dumps(self.make(), separators=(",", ":")).encode())
            return self._made[1]

    async def body(self) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._body)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _no_status() -> dict[str, Any]:
    return {"error": "no status available"}


class StatusApp:
    """The ASGI application: bounded body, then the token check, then the endpoints; `hooks` (POST only,
    e.g. `/hooks/git`) authenticate requests themselves (a signature over the body), not by token."""

    def __init__(
        self,
        metrics: Metrics,
        health: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        *,
        token: bytes | None,
        limits: HttpLimits,
        status: Callable[[], dict[str, Any]] | None = None,
        hooks: Mapping[str, Hook] | None = None,
    ) -> None:
        self.hooks = dict(hooks or {})
        self.metrics = metrics
        self.health = health
        self.ready = ready
        self.token = token
        self.limits = limits
        self.status = StatusDocument(status or _no_status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._handle(scope, receive, send)
        except ClientGone:
            return
        except Exception as exc:  # one request's trouble never reaches the server
            log.exception("status request failed", path=scope.get("path"), error=str(exc))
            await _respond(send, 500, b"internal error\n", close=True)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if length is not None and int(length) > self.limits.body_limit:  # h11 has checked it is a number
            await _respond(send, 413, f"body over {self.limits.body_limit} bytes\n".encode(), close=True)
            return
        body = b""
        if chunked or (length is not None and int(length) > 0):
            try:
                body = await read_body(receive, self.limits.body_limit, self.limits.body_timeout)
            except BodyTooLarge:
                await _respond(send, 413, f"body over {self.limits.body_limit} bytes\n".encode(), close=True)
                return
            except TimeoutError:
                await _respond(send, 408, b"request body too slow\n", close=True)
                return
        path, method = scope["path"], scope["method"]
        if path in self.hooks:
            await self._hook(path, method, body, scope, send)
        elif path not in ROUTES:
            await _respond(send, 404, b"not found\n")
        elif method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", extra=((b"allow", b"GET, HEAD"),))
        elif (
            path not in OPEN_PATHS
            and self.token is not None
            and not bearer_ok(_header(scope, b"authorization"), self.token)
        ):
            await _respond(send, 401, b"unauthorized\n", extra=((b"www-authenticate", b"Bearer"),))
        elif path == "/metrics":
            await _respond(send, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode())
        elif path == "/api/status":
            await _respond(send, 200, await self.status.body(), b"application/json", extra=PAGE_HEADERS)
        elif path == "/" or path in ASSETS:
            body, content_type = asset(path)
            await _respond(send, 200, body, content_type, extra=PAGE_HEADERS)
        else:
            ok, reason = (self.health if path == "/healthz" else self.ready)()
            await _respond(send, 200 if ok else 503, (reason + "\n").encode())

    async def _hook(self, path: str, method: str, body: bytes, scope: Scope, send: Send) -> None:
        if method != "POST":
            await _respond(send, 405, b"method not allowed\n", extra=((b"allow", b"POST"),))
            return
        headers = {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in scope["headers"]}
        status, text = self.hooks[path](body, headers)
        await _respond(send, status, (text + "\n").encode())


class ConnectionGuard:
    """The open connections, oldest first; admits a new one within the limit (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[Any, None] = {}  # the protocol objects, in the order they connected
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def admit(self, conn: Any) -> None:
        if len(self.open) >= self.limit:
            victim = next((c for c in self.open if c.awaiting_request()), None)
            if victim is None:
                self.refused += 1
                conn.drop()
                return
            self.evicted += 1
            self.open.pop(victim, None)
            victim.drop()
        self.open[conn] = None

    def discard(self, conn: Any) -> None:
        self.open.pop(conn, None)


def _protocol_class(guard: ConnectionGuard, limits: HttpLimits) -> type[asyncio.Protocol]:  # noqa: C901 - small methods of one class
    """uvicorn's h11 protocol with the connection limit and the header and response deadlines."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415 - only the daemon pays for uvicorn

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()
            guard.admit(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            guard.discard(self)
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers have `header_timeout` too

        def awaiting_request(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def drop(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.abort()  # not close(): a client that reads nothing would keep it open

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.header_timeout, self._headers_due)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_due(self) -> None:
            self._deadline = None
            if self.awaiting_request():
                guard.timed_out += 1
                self.drop()
            else:  # a request is being handled: it has `response_timeout` more
                self._deadline = self.loop.call_later(limits.response_timeout, self._response_due, self.cycle)

        def _response_due(self, cycle: object) -> None:
            self._deadline = None
            if self.cycle is cycle and not self.cycle.response_complete:
                guard.timed_out += 1
                self.drop()

    return GuardedH11Protocol


class _ToStructlog(logging.Handler):
    """uvicorn logs through the standard library; its errors go to reconciler's log, its chatter nowhere
    (a warning per malformed request would let any client flood the log)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.error("status server: " + record.getMessage())


def _quiet_uvicorn() -> None:
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        logger.addHandler(_ToStructlog(logging.ERROR))
    logger.setLevel(logging.ERROR)
    logger.propagate = False


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.set_inheritable(False)
    return sock


def _quiet_server_class() -> type[uvicorn.Server]:
    """uvicorn's server, ticking once a second instead of ten times (its loop polls `should_exit` every
    0.1 s: ten wake-ups a second of an idle daemon), and woken at once by `wake()` when it should exit."""
    import uvicorn  # noqa: PLC0415

    class QuietServer(uvicorn.Server):
        _wake: asyncio.Event | None = None
        _loop: asyncio.AbstractEventLoop | None = None

        async def main_loop(self) -> None:
            self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
            # uvicorn ticks ten times a second to refresh its Date header and to notice `should_exit`; here
            # `_respond` writes the Date itself and `stop()` wakes the loop, so an idle server sleeps (the
            # minute's tick is a safety net, not a timer anything waits for).
            counter = 0
            while not await self.on_tick(counter):
                counter = (counter + 1) % 864000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 60.0)

        def wake(self) -> None:
            if self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    return QuietServer


class StatusServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        health: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        *,
        token: bytes | None = None,
        limits: HttpLimits | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
        hooks: Mapping[str, Hook] | None = None,
    ) -> None:
        self.limits = limits or HttpLimits()
        self.metrics = metrics
        self.app = StatusApp(metrics, health, ready, token=token, limits=self.limits, status=status, hooks=hooks)
        self.guard = ConnectionGuard(self.limits.max_connections)
        self._socket = _bind(host, port, self.limits.backlog)
        self.address: tuple[str, int] = self._socket.getsockname()[:2]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn  # noqa: PLC0415 - deferred: the other commands never load it

        _quiet_uvicorn()
        config = uvicorn.Config(
            self.app,
            http=_protocol_class(self.guard, self.limits),
            ws="none",
            lifespan="off",
            interface="asgi3",
            loop="asyncio",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=max(1, math.ceil(self.limits.idle_timeout)),
            timeout_graceful_shutdown=1,
            h11_max_incomplete_event_size=self.limits.header_limit,
            backlog=self.limits.backlog,
        )
        server = _quiet_server_class()(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="status-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the status server did not start")

    def stop(self) -> None:
        self.app.status.close()
        if self._server is None or self._thread is None:
            self._socket.close()
            return
        self._server.should_exit = True
        wake = getattr(self._server, "wake", None)
        if wake is not None:
            wake()
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT)
