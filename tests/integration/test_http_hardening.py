"""The daemon's status server under hostile clients (issue 19): the real `reconciler run` in a subprocess,
measured through /proc against a baseline taken in the same test.

Everything stays on 127.0.0.1; every loop is bounded in count and in time.
"""

from __future__ import annotations

import email.utils
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import ROOT, map_text, unique_map_name

HEADER_TIMEOUT = 2.0
IDLE_TIMEOUT = 1.0
BODY_LIMIT = 64 * 1024
MAX_CONNECTIONS = 128
SLOW_CLIENTS = 2000
TOKEN = "tok-5d1f0b9e-not-in-any-log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


class Daemon:
    def __init__(self, folder: Path, env: dict[str, str], http: str | None = None) -> None:
        self.port = free_port()
        self.log = folder / "daemon.log"
        maps = folder / "maps"
        maps.mkdir(exist_ok=True)
        # A valid map (one idle container): a daemon without a valid map is not ready (issue 18), and a map
        # of no containers is refused.
        idle = 'idle: {image: IMAGE, create_options: {command: [sh, -c, "TRAP"]}}\n'
        (maps / "idle.yaml").write_text(map_text(unique_map_name("hardening"), idle))
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_HTTP")}
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "reconciler", "--log-level", "debug", "--log-json", "run", str(maps)),
                *("--http", http or f"127.0.0.1:{self.port}"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            env={
                **clean,
                "RECONCILER_STATE_DIR": str(folder / "state"),
                "RECONCILER_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                "RECONCILER_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
                "RECONCILER_HTTP_BODY_LIMIT": str(BODY_LIMIT),
                "RECONCILER_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                **env,
            },
        )

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes, float]:
        started = time.monotonic()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, r.read(), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), time.monotonic() - started
        except OSError:
            return 0, b"", time.monotonic() - started

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            if self.get("/readyz", timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError("the daemon did not get ready: " + self.log.read_text()[-2000:])

    def status(self) -> dict[str, int]:
        return proc_status(self.proc.pid)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(env: dict[str, str] | None = None, http: str | None = None) -> Daemon:
        d = Daemon(tmp_path, env or {}, http)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


@pytest.fixture
def many_fds() -> Iterator[int]:
    """Raise this process's open-file limit for the slow clients (within the hard limit); restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = SLOW_CLIENTS + 200
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield max(soft, want) - 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def closed_by_peer(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True
    finally:
        sock.settimeout(timeout)


def wait_closed(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closed `sock`; fails after `timeout`."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        raise AssertionError(f"still open after {timeout}s") from None
    except OSError:
        pass
    return time.monotonic() - started


def healthz_latencies(daemon: Daemon, count: int = 5) -> list[float]:
    out = []
    for _ in range(count):
        code, body, took = daemon.get("/healthz", timeout=5)
        assert code == 200, (code, body)
        out.append(took)
    return out


def test_slow_clients_hold_no_threads_nor_memory_and_healthz_answers(daemon_factory: Any, many_fds: int) -> None:
    daemon = daemon_factory()
    daemon.wait_ready()
    time.sleep(1)  # let start-up settle before the baseline
    base = daemon.status()
    base_latency = statistics.median(healthz_latencies(daemon))

    clients = min(SLOW_CLIENTS, many_fds)
    socks: list[socket.socket] = []
    deadline = time.monotonic() + 60
    try:
        for _ in range(clients):
            assert time.monotonic() < deadline, f"opened only {len(socks)} connections in 60 s"
            s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
            socks.append(s)
        time.sleep(0.5)
        loaded = daemon.status()
        latencies = healthz_latencies(daemon)
        held = sum(not closed_by_peer(s) for s in socks)
        print(
            f"baseline {base}, healthz {base_latency * 1000:.1f} ms; with {clients} slow clients {loaded},"
            f" healthz max {max(latencies) * 1000:.1f} ms, {held} held open"
        )

        assert max(latencies) <= max(0.5, 20 * base_latency)
        assert loaded["threads"] <= base["threads"] + 1  # one event loop, not a thread per client
        assert loaded["fds"] <= base["fds"] + MAX_CONNECTIONS + 8
        assert held <= MAX_CONNECTIONS
        assert loaded["rss_kb"] <= base["rss_kb"] * 1.25  # the standard library's server: +90% for 2,000

        # The header timeout cuts off every one of them.
        cut_by = time.monotonic() + HEADER_TIMEOUT + 5
        while time.monotonic() < cut_by and not all(closed_by_peer(s) for s in socks):
            time.sleep(0.2)
        assert all(closed_by_peer(s) for s in socks)
        after = daemon.status()
        assert after["fds"] <= base["fds"] + 4
        assert after["threads"] <= base["threads"] + 1
        assert healthz_latencies(daemon)
    finally:
        for s in socks:
            s.close()
    assert daemon.stop() == 0


def test_idle_trickling_and_keep_alive_connections_are_dropped_after_their_timeouts(daemon_factory: Any) -> None:
    daemon = daemon_factory()
    daemon.wait_ready()

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as silent:
        took = wait_closed(silent, HEADER_TIMEOUT + 5)
    assert HEADER_TIMEOUT - 0.3 <= took <= HEADER_TIMEOUT + 3

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as trickle:
        started = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        sent = 0
        try:
            for byte in request:  # a byte every 0.1 s: never idle, never done
                trickle.sendall(bytes([byte]))
                sent += 1
                if closed_by_peer(trickle):
                    break
                time.sleep(0.1)
        except OSError:
            pass
        took = time.monotonic() - started
    assert sent < len(request)
    assert took <= HEADER_TIMEOUT + 3

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"\r\n\r\nok\n" not in answer:
            chunk = kept.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        # The server's loop sleeps while idle (no ticks): the Date it sends is still the time of the answer.
        dates = [line for line in answer.split(b"\r\n") if line.lower().startswith(b"date:")]
        assert len(dates) == 1, answer
        sent_at = email.utils.parsedate_to_datetime(dates[0].split(b":", 1)[1].strip().decode()).timestamp()
        assert abs(sent_at - time.time()) <= 2, answer
        took = wait_closed(kept, IDLE_TIMEOUT + 5)
    assert IDLE_TIMEOUT - 0.3 <= took <= IDLE_TIMEOUT + 3
    assert daemon.stop() == 0


def test_a_body_over_the_limit_is_refused_without_being_read_whole(daemon_factory: Any) -> None:
    daemon = daemon_factory()
    daemon.wait_ready()
    base = daemon.status()

    # Declared too large: 413 at once, without waiting for (or reading) any of it.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert time.monotonic() - started < 2
        assert wait_closed(s, 5) < 5

    # Chunked, offered without end: the server stops at the limit and closes.
    offered = 256 * 1024 * 1024
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:

        def read() -> None:
            try:
                answers.append(s.recv(4096))
            except OSError as exc:
                answers.append(repr(exc).encode())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        s.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        deadline = time.monotonic() + 20
        try:
            while sent < offered and time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        reader.join(5)
    print(f"chunked: {sent / 1e6:.1f} MB sent of {offered / 1e6:.0f} MB offered before the server closed")
    assert answers
    assert answers[0].startswith(b"HTTP/1.1 413"), answers
    assert sent < 32 * 1024 * 1024  # the limit plus what the kernel's socket buffers took
    assert daemon.status()["rss_kb"] <= base["rss_kb"] + 16 * 1024
    assert daemon.get("/healthz")[0] == 200
    assert daemon.stop() == 0


def test_a_non_loopback_address_without_a_token_refuses_to_start(daemon_factory: Any) -> None:
    port = free_port()
    daemon = daemon_factory(http=f"0.0.0.0:{port}")
    assert daemon.proc.wait(timeout=20) == 2
    log = daemon.log.read_text()
    assert "non-loopback address '0.0.0.0' without a token" in log
    assert "status server listening" not in log


def test_the_token_guards_metrics_and_is_never_logged(daemon_factory: Any, tmp_path: Path) -> None:
    daemon = daemon_factory({"RECONCILER_HTTP_TOKEN": TOKEN})
    daemon.wait_ready()
    assert daemon.get("/healthz")[0] == 200
    assert daemon.get("/readyz")[0] == 200
    assert daemon.get("/metrics")[0] == 401
    assert daemon.get("/metrics", {"Authorization": "Bearer " + TOKEN[:-1]})[0] == 401
    code, body, _ = daemon.get("/metrics", {"Authorization": "Bearer " + TOKEN})
    assert code == 200
    assert b"# TYPE" in body
    assert daemon.stop() == 0
    assert TOKEN not in daemon.log.read_text()

    credential = tmp_path / "http-token"
    credential.write_text(TOKEN + "\n")
    from_file = daemon_factory({"RECONCILER_HTTP_TOKEN_FILE": str(credential)})
    from_file.wait_ready()
    assert from_file.get("/metrics")[0] == 401
    assert from_file.get("/metrics", {"Authorization": "Bearer " + TOKEN})[0] == 200
    assert from_file.stop() == 0
    assert TOKEN not in from_file.log.read_text()


def test_the_healthcheck_command_asks_the_new_server(daemon_factory: Any) -> None:
    daemon = daemon_factory()
    daemon.wait_ready()
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "healthcheck", "--url", f"http://127.0.0.1:{daemon.port}/healthz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok")
    assert daemon.stop() == 0
    gone = subprocess.run(
        [sys.executable, "-m", "reconciler", "healthcheck", "--url", f"http://127.0.0.1:{daemon.port}/healthz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert gone.returncode == 1
