"""deploy/reconciler.service under a real systemd: PID 1 of a privileged container booted from the project's
own image (scripts/build-image.sh: the Debian base made with debootstrap, reconciler installed from its
wheels) with Debian's systemd added (scripts/systemd-image.sh), the host's Docker socket mounted.

The unit and its environment file are installed as the unit file's header says, with one stand-in and one
test setting: a `docker.service` that only stands for the host's engine (its socket is mounted; the unit
`Requires=` it), and a drop-in that shortens `WatchdogSec` to 5 s so that the watchdog is seen to act
within the test. Everything else — Type=notify, the hardening, the dynamic user in the docker group — is
the shipped unit as it is.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUILT_IMAGES, SESSION, TEST_LABEL
from tests.integration.engine_helpers import ROOT, map_text, unique_map_name, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

APP = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""
DOCKER_STANDIN = """\
[Unit]
Description=stand-in for the host's Docker engine (its socket is mounted into this container)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
"""
WATCHDOG_DROPIN = "[Service]\nWatchdogSec=5s\nTimeoutAbortSec=5s\n"


class Box:
    """The container systemd runs in; `sh` runs a command in it."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def sh(self, command: str, *, check: bool = True) -> str:
        code, output = self.container.exec_run(["sh", "-c", command])
        text = str(output.decode(errors="replace"))
        if check:
            assert code == 0, f"{command}: exit {code}: {text}"
        return text.strip()

    def put(self, path: str, text: str, mode: int = 0o644) -> None:
        data = text.encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(Path(path).name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        self.sh(f"mkdir -p {Path(path).parent}")
        assert self.container.put_archive(str(Path(path).parent), buffer.getvalue())

    def show(self, prop: str) -> str:
        return self.sh(f"systemctl show reconciler -p {prop} --value")

    def journal(self) -> str:
        return self.sh("journalctl -u reconciler --no-pager -o cat", check=False)


@pytest.fixture
def box(docker_client: Any, image: str) -> Iterator[Box]:
    tag = f"{SESSION}-systemd:test"
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "systemd-image.sh"), image, tag],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    derived = str(docker_client.images.get(tag).id)
    BUILT_IMAGES.add(derived)
    container = docker_client.containers.run(
        tag,
        name=f"{SESSION}-systemd",
        detach=True,
        privileged=True,
        tmpfs={"/run": "", "/run/lock": ""},
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
        labels={TEST_LABEL: SESSION},
    )
    try:
        b = Box(container)
        wait_for(lambda: b.sh("systemctl is-system-running", check=False) in ("running", "degraded"), 60, 0.5)
        yield b
    finally:
        container.remove(force=True, v=True)
        # Now, not with the session's images: a parent image with a child left cannot be removed.
        docker_client.images.remove(derived, force=True)


def install(box: Box, map_name: str) -> None:
    """The unit file's install steps (reconciler itself is in the image, installed from its wheels)."""
    socket_gid = box.sh("stat -c %g /var/run/docker.sock")
    box.sh(f"getent group docker || groupadd -g {socket_gid} docker")
    box.put("/etc/systemd/system/docker.service", DOCKER_STANDIN)
    box.put("/tmp/reconciler.service", (ROOT / "deploy" / "reconciler.service").read_text())
    box.put("/tmp/reconciler.env", (ROOT / "deploy" / "reconciler.env").read_text())
    box.sh("install -m 644 /tmp/reconciler.service /etc/systemd/system/")
    box.sh("install -m 644 /tmp/reconciler.env /etc/default/reconciler")
    box.put("/etc/reconciler/maps/site.yaml", map_text(map_name, APP))
    box.put("/etc/systemd/system/reconciler.service.d/test.conf", WATCHDOG_DROPIN)
    box.sh("test -x /usr/local/bin/reconciler")
    box.sh("systemctl daemon-reload && systemctl enable reconciler")


def running(client: Any, name: str) -> bool:
    try:
        return bool(client.api.inspect_container(name)["State"]["Running"])
    except Exception:
        return False


def test_the_unit_under_a_real_systemd(box: Box, docker_client: Any) -> None:
    name = unique_map_name("systemd")
    app = f"{name}.app"
    try:
        install(box, name)

        # Type=notify: `start` returns once the daemon said READY=1, and it is active at that moment.
        started = time.monotonic()
        box.sh("systemctl start reconciler")
        assert time.monotonic() - started < 30
        assert box.show("ActiveState") == "active"
        assert box.show("StatusText") == "managing 1 containers"
        assert box.sh("systemctl is-active reconciler") == "active"
        assert box.show("DynamicUser") == "yes"
        wait_for(lambda: running(docker_client, app), 30, 0.2)
        wait_for(lambda: box.sh("reconciler healthcheck", check=False) == "ok", 30, 0.5)

        # Reload: SIGHUP re-reads the maps, the same process carries on.
        pid = box.show("MainPID")
        box.sh("systemctl reload reconciler")
        assert box.show("MainPID") == pid
        wait_for(lambda: "reloading maps (SIGHUP)" in box.journal(), 10, 0.2)
        assert box.sh("systemctl is-active reconciler") == "active"

        # Watchdog: a frozen daemon stops pinging; systemd kills and restarts it after WatchdogSec.
        box.sh(f"kill -STOP {pid}")
        frozen = time.monotonic()
        wait_for(lambda: box.show("MainPID") not in ("0", pid) and box.show("ActiveState") == "active", 60, 0.5)
        assert time.monotonic() - frozen >= 4.5  # not before WatchdogSec
        assert "Watchdog timeout" in box.sh("journalctl -u reconciler --no-pager", check=False)
        assert box.show("NRestarts") == "1"
        docker_client.api.kill(app)  # and the restarted daemon heals as before
        wait_for(lambda: running(docker_client, app), 30, 0.2)

        # Stop: clean (exit 0, result success), within TimeoutStopSec; the managed container stays.
        box.sh("systemctl stop reconciler")
        assert box.show("ActiveState") == "inactive"
        assert box.show("Result") == "success"
        assert box.show("ExecMainStatus") == "0"
        assert running(docker_client, app)

        # The journal holds the daemon's JSON log lines.
        events = []
        for line in box.journal().splitlines():
            try:
                events.append(json.loads(line)["event"])
            except (ValueError, KeyError, TypeError):
                continue
        for wanted in ("ready", "action done", "reloading maps (SIGHUP)", "stopping", "stopped"):
            assert wanted in events, (wanted, events)
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": name}):
            if container.name.startswith(f"{name}."):
                container.remove(force=True, v=True)
