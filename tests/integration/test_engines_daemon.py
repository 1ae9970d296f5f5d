"""One daemon over two real engines (the main one and scripts/engine2.sh's 20.10.24): a container killed on
either engine is healed, /healthz and /readyz answer for both clients, metrics are labelled `client`, the
second engine frozen (SIGSTOP) does not delay healing on the first, and a restart of the second engine is
survived. `--client` gives the per-host mode: a daemon keeps only its own client's share.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import ROOT, map_text, unique_map_name, wait_for
from tests.integration.test_daemon import Daemon, running
from tests.integration.test_engines import ENGINE2_HOST, MAIN_HOST, engine2  # noqa: F401 - the fixture

SHARED = """\
clients: [main, second]
web:
  image: IMAGE
  clients: [main]
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
app:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
"""
ENGINE2_PIDFILE = Path(os.environ.get("ENGINE2_ROOT", "/opt/reconciler-engine2")) / "dockerd.pid"


@pytest.fixture
def fleet_dir(tmp_path: Path, docker_client: Any, engine2: Any) -> Iterator[tuple[Path, Path, str]]:  # noqa: F811
    maps = tmp_path / "maps"
    maps.mkdir()
    name = unique_map_name("fleetd")
    (maps / "site.yaml").write_text(map_text(name, SHARED))
    clients = tmp_path / "clients.yaml"
    clients.write_text(f"main: {{base_url: '{MAIN_HOST}'}}\nsecond: {{base_url: '{ENGINE2_HOST}', timeout: 10}}\n")
    yield maps, clients, name
    for client in (docker_client, engine2):
        for container in client.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"}):
            container.remove(v=True, force=True)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def test_one_daemon_heals_both_engines(
    fleet_dir: tuple[Path, Path, str],
    daemons: list[Daemon],
    docker_client: Any,
    engine2: Any,  # noqa: F811
) -> None:
    maps, clients, name = fleet_dir
    daemon = Daemon(maps, "--clients", str(clients))
    daemons.append(daemon)
    daemon.wait_ready(60)
    app, web = f"{name}.app", f"{name}.web"
    wait_for(lambda: running(docker_client, app) and running(docker_client, web) and running(engine2, app), 30)
    assert not engine2.containers.list(all=True, filters={"name": web})
    status, body = daemon.get("/readyz")
    assert status == 200
    assert "client main" in body
    assert "client second" in body
    for client in (docker_client, engine2):
        client.api.kill(app)
        wait_for(functools.partial(running, client, app), 20)
    metrics = daemon.get("/metrics")[1]
    assert 'reconciler_engine_up{client="second"} 1.0' in metrics
    assert 'reconciler_engine_up{client="main"} 1.0' in metrics
    assert daemon.stop() == 0


def test_a_frozen_engine_does_not_delay_healing_on_the_other(
    fleet_dir: tuple[Path, Path, str],
    daemons: list[Daemon],
    docker_client: Any,
    engine2: Any,  # noqa: F811
) -> None:
    maps, clients, name = fleet_dir
    daemon = Daemon(maps, "--clients", str(clients))
    daemons.append(daemon)
    daemon.wait_ready(60)
    app = f"{name}.app"
    wait_for(lambda: running(docker_client, app) and running(engine2, app), 30)
    pid = int(ENGINE2_PIDFILE.read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        docker_client.api.kill(app)
        wait_for(lambda: running(docker_client, app), 10)
        healed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert healed < 5, healed
    wait_for(lambda: daemon.get("/healthz")[0] == 200, 30)
    assert daemon.stop() == 0


def test_a_restart_of_the_second_engine_is_survived(
    fleet_dir: tuple[Path, Path, str],
    daemons: list[Daemon],
    docker_client: Any,
    engine2: Any,  # noqa: F811
) -> None:
    maps, clients, name = fleet_dir
    daemon = Daemon(maps, "--clients", str(clients))
    daemons.append(daemon)
    daemon.wait_ready(60)
    app = f"{name}.app"
    wait_for(lambda: running(engine2, app), 30)
    script = str(ROOT / "scripts" / "engine2.sh")
    subprocess.run(["bash", script, "--stop"], check=True, timeout=60)
    docker_client.api.kill(app)  # healing on the main engine goes on meanwhile
    wait_for(lambda: running(docker_client, app), 10)
    subprocess.run(["bash", script], check=True, timeout=120)
    # Without live-restore the engine stopped the container; the daemon reconnects, relists and converges.
    wait_for(lambda: running(engine2, app), 60)
    assert daemon.proc.poll() is None
    assert any(e.get("event") == "engine events disconnected" and e.get("client") == "second" for e in daemon.logs())
    assert daemon.stop() == 0


def test_per_host_mode_keeps_only_its_own_client(
    fleet_dir: tuple[Path, Path, str],
    daemons: list[Daemon],
    docker_client: Any,
    engine2: Any,  # noqa: F811
) -> None:
    maps, clients, name = fleet_dir
    daemon = Daemon(maps, "--clients", str(clients), "--client", "second")
    daemons.append(daemon)
    daemon.wait_ready(60)
    wait_for(lambda: running(engine2, f"{name}.app"), 30)
    assert not docker_client.containers.list(all=True, filters={"label": f"io.reconciler.map={name}"})
    assert "client main" not in daemon.get("/readyz")[1]
    assert daemon.stop() == 0
