"""Do no harm, under the daemon on the real engine: a failing health gate is tried once, not forever; SIGTERM
in the middle of a recreate leaves the service running; healing never waits for unrelated long work.

The daemon runs this checkout's code (`python -m reconciler` from the repository root, see test_daemon.py).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import engine_start_seconds, engine_time, map_text, unique_map_name, wait_for
from tests.integration.test_daemon import daemon_factory, maps_dir, running, state, write_atomically

__all__ = ["daemon_factory", "maps_dir"]  # fixtures, shared with test_daemon.py

# The healthcheck depends on the environment, so an env edit alone can fail the health gate.
GATED = """\
app:
  image: IMAGE
  stop_timeout: 1
  healthcheck: {test: [CMD, sh, -c, 'test "$MODE" != bad'], interval: 1s, timeout: 1s, retries: 1}
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one}
"""


class StopCounter:
    """Counts the engine's `stop` events for one container name (the docker events stream, filtered)."""

    def __init__(self, client: Any, name: str) -> None:
        self.count = 0
        self._stream = client.api.events(decode=True, filters={"container": name, "event": "stop"})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                if event.get("Action") == "stop":
                    self.count += 1
        except Exception:  # closed
            return

    def close(self) -> None:
        self._stream.close()


def env(client: Any, name: str) -> list[str]:
    return list(state(client, name).get("Config", {}).get("Env") or [])


def events(daemon: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.logs() if e.get("event") == name]


@pytest.mark.timeout(240)
def test_a_failed_health_gate_on_an_env_edit_is_tried_once_until_the_map_changes(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("hold")
    app = f"{name}.app"
    (maps_dir / "site.yaml").write_text(map_text(name, GATED))
    daemon = daemon_factory()
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, app), 30)
        first_id = state(docker_client, app)["Id"]
        stops = StopCounter(docker_client, app)
        write_atomically(maps_dir / "site.yaml", map_text(name, GATED.replace("MODE: one", "MODE: bad")))
        wait_for(lambda: bool(events(daemon, "recreate rolled back; held back until the map changes its spec")), 40)
        wait_for(lambda: running(docker_client, app), 10)
        assert state(docker_client, app)["Id"] == first_id  # the old container runs again
        # A daemon restart does not retry it either (the hold is in the state dir).
        time.sleep(20)
        assert daemon.stop() == 0
        daemon = daemon_factory()
        daemon.wait_ready(60)
        wait_for(lambda: bool(events(daemon, "held back")), 20)
        time.sleep(40)  # ~60 s in all: today's daemon stopped the service every ~3 s
        assert stops.count == 1, f"{stops.count} stops of {app}: the failing spec was tried again"
        assert running(docker_client, app)
        assert state(docker_client, app)["Id"] == first_id
        assert "MODE=one" in env(docker_client, app)
        note = events(daemon, "held back")[0]
        assert note["note"].startswith("held back: its replacement failed the health gate")
        assert not events(daemon, "image update rolled back; not retried until the tag moves")
        # Fixing the map proceeds at once.
        write_atomically(maps_dir / "site.yaml", map_text(name, GATED.replace("MODE: one", "MODE: two")))
        wait_for(lambda: "MODE=two" in env(docker_client, app) and running(docker_client, app), 30)
        stops.close()
        assert daemon.stop() == 0
    finally:
        if state(docker_client, app):
            docker_client.api.remove_container(app, force=True, v=True)


SLOW_GATE = """\
app:
  image: IMAGE
  stop_timeout: 1
  healthcheck: {test: [CMD, sh, -c, 'test "$MODE" = one || sleep 25'], interval: 1s, timeout: 30s, retries: 1}
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one}
"""


@pytest.mark.timeout(180)
def test_sigterm_during_a_health_gated_recreate_leaves_the_service_running(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("termgate")
    app, replacement = f"{name}.app", f"{name}.app..next"
    (maps_dir / "site.yaml").write_text(map_text(name, SLOW_GATE))
    daemon = daemon_factory("--stop-timeout", "8")
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, app), 30)
        # The new container's first probe takes 25 s: its gate is still waiting when SIGTERM comes.
        write_atomically(maps_dir / "site.yaml", map_text(name, SLOW_GATE.replace("MODE: one", "MODE: two")))
        wait_for(lambda: running(docker_client, replacement) and not running(docker_client, app), 30)
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 8 + 5  # within its stop timeout
        assert running(docker_client, app), "after SIGTERM the service must run under its real name"
        assert not running(docker_client, replacement), "a ..next is left running without the original"
        assert "MODE=one" in env(docker_client, app)  # rolled back: the previous container
        assert not events(daemon, "recreate rolled back; held back until the map changes its spec")  # not a failure
    finally:
        for container in (replacement, app):
            if state(docker_client, container):
                docker_client.api.remove_container(container, force=True, v=True)


SLOW_AND_OTHER = """\
slow:
  image: IMAGE
  stop_timeout: 20
  create_options: {command: [sleep, '600'], environment: {V: '1'}}
other:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""


@pytest.mark.timeout(180)
def test_healing_does_not_wait_for_an_unrelated_slow_recreate(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("lanes")
    slow, other = f"{name}.slow", f"{name}.other"
    _, start = engine_start_seconds(docker_client)
    (maps_dir / "site.yaml").write_text(map_text(name, SLOW_AND_OTHER))
    daemon = daemon_factory()  # default workers
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, slow) and running(docker_client, other), 30)
        # `sleep` as PID 1 ignores SIGTERM: stopping the old `slow` takes its full 20 s.
        write_atomically(maps_dir / "site.yaml", map_text(name, SLOW_AND_OTHER.replace("V: '1'", "V: '2'")))
        wait_for(lambda: bool(state(docker_client, f"{slow}..next")), 20)
        time.sleep(1)  # well inside the 20 s stop
        docker_client.api.kill(other)
        wait_for(lambda: running(docker_client, other), 15)
        # On the engine's own clock (died → started again), against the healing promise ("about a second")
        # plus three times the engine's own start time measured now: not held up by the slow recreate.
        found = state(docker_client, other)["State"]
        healed_in = engine_time(found["StartedAt"]) - engine_time(found["FinishedAt"])
        bound = 1.0 + 3 * start
        assert healed_in < bound, f"healing took {healed_in:.1f}s (> {bound:.1f}s) beside an unrelated recreate"
        assert state(docker_client, f"{slow}..next"), "the slow recreate is still in progress"
        # …and the slow recreate completes.
        wait_for(lambda: "V=2" in env(docker_client, slow) and running(docker_client, slow), 60)
        assert daemon.stop() == 0
    finally:
        for container in (f"{slow}..next", slow, other):
            if state(docker_client, container):
                docker_client.api.remove_container(container, force=True, v=True)
