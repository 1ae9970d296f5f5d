"""The daemon's promises that need a real engine and a real process: `/healthz` answers 503 and
`reconciler healthcheck` exits 1 when the engine is gone (and both recover with it), SIGHUP really reloads
the maps, and an idle daemon makes no engine requests.

`/healthz` is asked over HTTP only (the server behind it is being replaced; its contract is the answer).
The engine-loss test stops a private dockerd, never the main one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import map_text, run_cli, unique_map_name, wait_for
from tests.integration.private_engine import private_engine
from tests.integration.test_daemon import APP, Daemon, daemon_factory, maps_dir, running, state

__all__ = ["daemon_factory", "maps_dir"]  # fixtures, shared with test_daemon.py


def healthcheck(daemon: Daemon) -> subprocess.CompletedProcess[str]:
    return run_cli("healthcheck", "--url", f"http://127.0.0.1:{daemon.port}/healthz", "--timeout", "5")


def engine_requests(daemon: Daemon) -> float:
    for line in daemon.get("/metrics")[1].splitlines():
        if line.startswith(("reconciler_engine_requests ", "reconciler_engine_requests{")):
            return float(line.split()[1])
    raise AssertionError("no reconciler_engine_requests in /metrics")


def test_healthz_is_503_and_healthcheck_exits_1_while_no_engine_answers(
    maps_dir: Path, daemon_factory: Any, tmp_path: Path
) -> None:
    name = unique_map_name("noengine")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=f"unix://{tmp_path}/nothing-here.sock", RECONCILER_ENGINE_GRACE="1")
    daemon = daemon_factory(env=env)
    wait_for(lambda: daemon.get("/healthz")[0] == 503, 30)
    status, body = daemon.get("/healthz")
    assert status == 503
    assert "engine" in body
    result = healthcheck(daemon)
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
    assert daemon.get("/readyz")[0] == 503
    assert daemon.stop() == 0


def test_healthcheck_exits_1_when_no_daemon_answers() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli("healthcheck", "--url", f"http://127.0.0.1:{port}/healthz", "--timeout", "2")
    assert result.returncode == 1


@pytest.mark.timeout(300)
def test_healthz_fails_once_the_engine_is_gone_and_recovers_with_it(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("lost")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    with private_engine(docker_client) as engine:
        client = engine.client()
        try:
            daemon = daemon_factory(env={**engine.env, "RECONCILER_ENGINE_GRACE": "2"})
            daemon.wait_ready(60)
            wait_for(lambda: running(client, f"{name}.app"), 30)
            assert daemon.get("/healthz")[0] == 200
            assert healthcheck(daemon).returncode == 0
            engine.stop(signal.SIGTERM)
            wait_for(lambda: daemon.get("/healthz")[0] == 503, 30)  # after the 2 s grace
            assert healthcheck(daemon).returncode == 1
            engine.start()
            wait_for(lambda: daemon.get("/healthz")[0] == 200, 60)
            assert healthcheck(daemon).returncode == 0
            wait_for(lambda: running(client, f"{name}.app"), 60)
            assert daemon.stop() == 0
        finally:
            client.close()


def test_sighup_reloads_maps_the_watcher_cannot_see(docker_client: Any, tmp_path: Path, daemon_factory: Any) -> None:
    """Maps behind a symlinked folder that is switched to another folder (as Kubernetes updates a ConfigMap
    volume): no file the watcher watches changes, so only SIGHUP makes the daemon read the new maps."""
    name = unique_map_name("sighup")
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    (v1 / "site.yaml").write_text(map_text(name, APP))
    (v2 / "site.yaml").write_text(map_text(name, APP.replace("MODE: one", "MODE: two")))
    live = tmp_path / "live"
    live.symlink_to(v1)
    app = f"{name}.app"
    daemon = Daemon(live, log=tmp_path / "daemon.log")  # the maps folder is the symlink
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app), 20)
        first = state(docker_client, app)["Id"]
        switched = tmp_path / "live.new"
        switched.symlink_to(v2)
        switched.rename(live)  # atomic, as kubelet does
        time.sleep(2.5)  # debounce 0.15 s plus a step of at most 1 s: it would have acted by now, if it could see this
        assert state(docker_client, app)["Id"] == first, "the watcher saw the switch: this test proves nothing"
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "MODE=two" in (state(docker_client, app).get("Config", {}).get("Env") or []), 30)
        wait_for(lambda: running(docker_client, app), 20)
        assert any(e.get("event") == "reloading maps (SIGHUP)" for e in daemon.logs())
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)


def test_an_idle_daemon_makes_no_engine_requests(docker_client: Any, maps_dir: Path, daemon_factory: Any) -> None:
    """Once converged, with no events and the resync far away, the daemon only listens: no polling."""
    name = unique_map_name("idle")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    daemon = daemon_factory()
    daemon.wait_ready()
    wait_for(lambda: running(docker_client, f"{name}.app"), 20)
    # Settled: the count stops moving (the start-up reconcile and its follow-ups are over).
    previous = [-1.0]

    def settled() -> bool:
        now = engine_requests(daemon)
        same = now == previous[0]
        previous[0] = now
        return same

    wait_for(settled, 30, interval=1.0)
    before = engine_requests(daemon)
    time.sleep(6)  # several of the main loop's 1 s heartbeats
    assert engine_requests(daemon) == before, "an idle daemon polled the engine"
    # …and it is not asleep: a change on the engine is still noticed at once (through the events stream).
    docker_client.api.kill(f"{name}.app")
    wait_for(lambda: engine_requests(daemon) > before, 10)
    wait_for(lambda: running(docker_client, f"{name}.app"), 10)
    assert daemon.stop() == 0
