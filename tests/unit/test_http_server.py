"""The status server's ASGI app and connection guard, called directly (no sockets, no threads)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import pytest

from reconciler.daemon.metrics import Metrics
from reconciler.daemon.server import ConnectionGuard, HttpLimits, Message, StatusApp

TOKEN = b"tok-9c2e77aa"
LIMITS = HttpLimits(body_limit=1000, body_timeout=0.2)


def app(token: bytes | None = None) -> StatusApp:
    return StatusApp(
        Metrics(), lambda: (True, "ok"), lambda: (False, "first reconcile pending"), token=token, limits=LIMITS
    )


class Client:
    """Plays uvicorn's part for one request: hands out body messages, collects the response."""

    def __init__(self, bodies: list[bytes] | None = None, *, stall: bool = False) -> None:
        self.bodies = list(bodies or [])
        self.stall = stall
        self.received = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if not self.bodies:
            if self.stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        self.received += 1
        body = self.bodies.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(self.bodies) or self.stall}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def call(application: StatusApp, method: str, path: str, headers: list[tuple[bytes, bytes]], client: Client) -> Client:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(asyncio.wait_for(application(scope, client.receive, client.send), 5))
    return client


def test_probes_and_metrics() -> None:
    a = app()
    assert call(a, "GET", "/healthz", [], Client()).body == b"ok\n"
    ready = call(a, "GET", "/readyz", [], Client())
    assert (ready.status, ready.body) == (503, b"first reconcile pending\n")
    metrics = call(a, "GET", "/metrics", [], Client())
    assert metrics.status == 200
    assert metrics.headers[b"content-type"].startswith(b"text/plain; version=")
    assert call(a, "GET", "/nope", [], Client()).status == 404
    post = call(a, "POST", "/healthz", [], Client())
    assert (post.status, post.headers[b"allow"]) == (405, b"GET, HEAD")


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_read() -> None:
    client = Client([b"x" * 1000] * 100)
    call(app(), "POST", "/hooks/git", [(b"content-length", b"100000")], client)
    assert client.status == 413
    assert client.headers[b"connection"] == b"close"
    assert client.received == 0


def test_a_chunked_body_is_read_only_until_it_passes_the_limit() -> None:
    client = Client([b"x" * 300] * 100)
    call(app(), "POST", "/hooks/git", [(b"transfer-encoding", b"chunked")], client)
    assert client.status == 413
    assert client.received == 4  # 1,200 bytes > 1,000: the other 96 chunks are never asked for
    assert client.headers[b"connection"] == b"close"


def test_a_body_within_the_limit_is_read_and_a_slow_one_cut_off() -> None:
    ok = call(app(), "GET", "/healthz", [(b"content-length", b"10")], Client([b"0123456789"]))
    assert ok.status == 200
    slow = call(app(), "POST", "/hooks/git", [(b"content-length", b"600")], Client([b"x" * 100], stall=True))
    assert slow.status == 408
    assert slow.headers[b"connection"] == b"close"


def test_the_token_guards_everything_but_the_probes() -> None:
    a = app(TOKEN)
    assert call(a, "GET", "/healthz", [], Client()).status == 200
    assert call(a, "GET", "/readyz", [], Client()).status == 503
    denied = call(a, "GET", "/metrics", [], Client())
    assert (denied.status, denied.headers[b"www-authenticate"]) == (401, b"Bearer")
    assert TOKEN not in denied.body
    assert call(a, "GET", "/metrics", [(b"authorization", b"Bearer wrong")], Client()).status == 401
    assert call(a, "GET", "/metrics", [(b"authorization", b"Bearer " + TOKEN)], Client()).status == 200


def test_a_failing_health_callback_is_a_500_not_a_dead_server() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    a = StatusApp(Metrics(), broken, broken, token=None, limits=LIMITS)
    assert call(a, "GET", "/healthz", [], Client()).status == 500


class Conn:
    def __init__(self, name: str, *, busy: bool = False) -> None:
        self.name = name
        self.busy = busy
        self.dropped = False

    def awaiting_request(self) -> bool:
        return not self.busy

    def drop(self) -> None:
        self.dropped = True


def test_the_guard_evicts_the_oldest_connection_without_a_request_and_refuses_when_all_are_busy() -> None:
    guard = ConnectionGuard(3)
    a, b, c = Conn("a", busy=True), Conn("b"), Conn("c")
    for conn in (a, b, c):
        guard.admit(conn)
    d = Conn("d")
    guard.admit(d)
    assert (a.dropped, b.dropped, c.dropped, d.dropped) == (False, True, False, False)
    assert list(guard.open) == [a, c, d]
    c.busy = d.busy = True
    e = Conn("e")
    guard.admit(e)
    assert e.dropped
    assert (guard.evicted, guard.refused) == (1, 1)
    guard.discard(a)
    f = Conn("f")
    guard.admit(f)
    assert not f.dropped
    assert list(guard.open) == [c, d, f]


@pytest.mark.parametrize("limit", [1, 128])
def test_the_guard_never_holds_more_than_its_limit(limit: int) -> None:
    guard = ConnectionGuard(limit)
    conns = [Conn(str(i)) for i in range(2000)]
    for conn in conns:
        guard.admit(conn)
    assert len(guard.open) == limit
    assert sum(not c.dropped for c in conns) == limit
    assert guard.evicted == 2000 - limit


def test_every_answer_carries_the_time_it_was_given() -> None:
    """uvicorn's own Date header is off (its loop would have to tick to refresh it): ours is written per answer."""
    for path in ("/healthz", "/readyz", "/metrics", "/nope"):
        client = call(app(), "GET", path, [], Client())
        sent_at = email.utils.parsedate_to_datetime(client.headers[b"date"].decode()).timestamp()
        assert abs(sent_at - time.time()) <= 2, (path, client.headers)
