"""The systemd notify protocol, against a real NOTIFY_SOCKET datagram socket opened by the test:
READY after start, WATCHDOG while healthy, RELOADING/READY around SIGHUP, STOPPING on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.engine_helpers import ROOT, interpreter_start_seconds, map_text, unique_map_name


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, wanted: str, timeout: float = 20.0) -> float:
        """Read datagrams until one contains `wanted`; returns when it came (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(data)
            if wanted in data.split("\n"):
                return time.monotonic()
        raise AssertionError(f"{wanted} not received within {timeout}s; got {self.messages}")


def test_notify_protocol(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("notify")
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "site.yaml").write_text(
        map_text(name, 'app:\n  image: IMAGE\n  stop_timeout: 1\n  create_options: {command: [sh, -c, "TRAP"]}\n')
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    interpreter = interpreter_start_seconds()  # Python and the daemon's imports, here and now
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "run", str(maps), "--http", "off"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
            "WATCHDOG_USEC": "3000000",
            "RECONCILER_STATE_DIR": str(tmp_path / "state"),  # its daemon.json is no other test's business
        },
    )
    try:
        ready = notify.wait_for("READY=1")
        # "Ready within a second": a second after what the interpreter and the imports took just now (doubled).
        assert ready - started < 1.0 + 2 * interpreter, f"READY after {ready - started:.2f}s ({interpreter:.2f}s)"
        first = notify.wait_for("WATCHDOG=1", 5)
        second = notify.wait_for("WATCHDOG=1", 5)
        assert second - first < 3.0  # pinged within WATCHDOG_USEC while the loop makes progress
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        notify.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.sock.close()
