"""The `run` daemon in a subprocess against the real engine: it keeps the host matching its maps.

Polling with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import (
    ROOT,
    build_image,
    engine_start_seconds,
    engine_time,
    interpreter_start_seconds,
    map_text,
    unique_map_name,
    wait_for,
)
from tests.integration.notify_receiver import Receiver
from tests.integration.private_engine import private_engine

APP = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(
        self,
        maps: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        paths: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log or maps / "daemon.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "--log-level",
                "debug",
                "run",
                *([str(maps)] if paths is None else paths),
                "--http",
                f"127.0.0.1:{self.port}",
                "--resync",
                "600",
                "--health-gate",
                "20",
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            # Held-back state in the test's own folder, never in the machine's /var/lib/reconciler.
            env={**(env or os.environ), "RECONCILER_STATE_DIR": str(maps.parent / "state")},
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def maps_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "maps"
    folder.mkdir()
    return folder


@pytest.fixture
def daemon_factory(maps_dir: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(*extra: str, env: dict[str, str] | None = None, paths: list[str] | None = None) -> Daemon:
        d = Daemon(maps_dir, *extra, env=env, paths=paths)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def write_atomically(path: Path, text: str) -> None:
    """Write a temporary file and rename it over the map, as editors do."""
    tmp = path.parent / f".{path.name}.swp"
    tmp.write_text(text)
    tmp.rename(path)


def state(client: Any, name: str) -> dict[str, Any]:
    try:
        return dict(client.api.inspect_container(name))
    except Exception:
        return {}


def running(client: Any, name: str) -> bool:
    return bool(state(client, name).get("State", {}).get("Running"))


@pytest.mark.timeout(300)  # the sum of its waits' deadlines, so a slow step fails with its own message
def test_self_healing_edits_and_clean_shutdown(docker_client: Any, maps_dir: Path, daemon_factory: Any) -> None:
    name = unique_map_name("daemon")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    # Baselines measured here and now: the promises are about reconciler, not about a loaded machine.
    interpreter = interpreter_start_seconds()
    create, start = engine_start_seconds(docker_client)
    started = time.monotonic()
    daemon = daemon_factory()
    wait_for(lambda: daemon.get("/healthz")[0] == 200, 30)
    ready_in = time.monotonic() - started
    # "Ready within a second": one second after what Python and the imports took just now (doubled for noise).
    assert ready_in < 1.0 + 2 * interpreter, f"answered after {ready_in:.2f}s (interpreter: {interpreter:.2f}s)"
    daemon.wait_ready()
    app = f"{name}.app"
    wait_for(lambda: running(docker_client, app))

    # docker kill, docker stop, docker rm -f: each undone "within about a second" — measured on the engine's
    # own clock (died → started again), against a second plus three times the engine's own start time.
    heal_bound = 1.0 + 3 * start

    def downtime() -> float:
        found = state(docker_client, app)["State"]
        return engine_time(found["StartedAt"]) - engine_time(found["FinishedAt"])

    first_id = state(docker_client, app)["Id"]
    docker_client.api.kill(app)
    wait_for(lambda: running(docker_client, app), 10)
    assert state(docker_client, app)["Id"] == first_id  # started again, not recreated
    assert downtime() < heal_bound, f"healed a kill after {downtime():.2f}s (engine start: {start:.2f}s)"
    docker_client.api.stop(app, timeout=1)
    wait_for(lambda: running(docker_client, app), 10)
    assert downtime() < heal_bound, f"healed a stop after {downtime():.2f}s (engine start: {start:.2f}s)"
    docker_client.api.remove_container(app, force=True, v=True)
    removed = time.monotonic()
    wait_for(lambda: running(docker_client, app), 10)
    recreated_in = time.monotonic() - removed
    assert recreated_in < 1.0 + 3 * (create + start), f"recreated after {recreated_in:.2f}s"

    # Editing the map (written by rename, as editors do) applies the change.
    write_atomically(maps_dir / "site.yaml", map_text(name, APP.replace("MODE: one", "MODE: two")))
    wait_for(lambda: "MODE=two" in (state(docker_client, app).get("Config", {}).get("Env") or []), 15)
    wait_for(lambda: running(docker_client, app), 10)

    # A broken map file is reported and ignored: the container stays as it is.
    before = state(docker_client, app)["Id"]
    write_atomically(
        maps_dir / "site.yaml", map_text(name, APP.replace("MODE: one", "MODE: three")) + "  bogus_key: 1\n"
    )
    wait_for(lambda: any(e.get("event", "").startswith("map error") for e in daemon.logs()), 15)
    assert state(docker_client, app)["Id"] == before
    assert daemon.get("/healthz")[0] == 200
    # Fixing it resumes normal work.
    write_atomically(maps_dir / "site.yaml", map_text(name, APP.replace("MODE: one", "MODE: three")))
    wait_for(lambda: "MODE=three" in (state(docker_client, app).get("Config", {}).get("Env") or []), 15)

    status, metrics = daemon.get("/metrics")
    assert status == 200
    assert 'reconciler_reconciles_total{client="__default__",result="ok"}' in metrics
    assert 'reconciler_map_errors_total{client="__default__"} 1.0' in metrics

    assert daemon.stop() == 0  # SIGTERM: clean exit
    assert any(e.get("event") == "stopped" for e in daemon.logs())


def test_a_stranger_is_never_touched(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, test_labels: dict[str, str]
) -> None:
    name = unique_map_name("strangerd")
    stranger = docker_client.containers.create(TEST_IMAGE, ["sleep", "1"], name=f"{name}.app", labels=test_labels)
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    daemon = daemon_factory()
    daemon.wait_ready()
    wait_for(lambda: any(e.get("event") == "blocked" for e in daemon.logs()), 10)
    stranger.reload()
    assert stranger.status == "created"
    assert stranger.attrs["Config"]["Cmd"] == ["sleep", "1"]
    assert daemon.stop() == 0


_build = build_image


HEALTHY = """\
app:
  image: TAG
  stop_timeout: 1
  healthcheck: {test: [CMD, test, -f, /ok], interval: 1s, timeout: 1s, retries: 1}
  create_options:
    command: [sh, -c, "TRAP"]
front:
  image: IMAGE
  links: app
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""


@pytest.mark.timeout(360)  # the sum of its waits' deadlines, so a slow step fails with its own message
def test_auto_update_on_tag_move_and_rollback_of_an_unhealthy_image(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, prefix: str
) -> None:
    tag = f"{prefix}-upd:live"
    good1 = _build(docker_client, tag, f"FROM {TEST_IMAGE}\nRUN touch /ok\nLABEL v=1\n")
    name = unique_map_name("update")
    (maps_dir / "site.yaml").write_text(map_text(name, HEALTHY.replace("TAG", tag)))
    app, front = f"{name}.app", f"{name}.front"
    receiver = Receiver()  # the update and the rollback are notified
    daemon = daemon_factory("--notify", receiver.url, env={**os.environ, "RECONCILER_NOTIFY_INTERVAL": "0.2"})
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, front), 30)
        assert state(docker_client, app)["Image"] == good1

        # The tag moves to a new, healthy image: the container is recreated (and its linked dependent too).
        front_id = state(docker_client, front)["Id"]
        good2 = _build(docker_client, tag, f"FROM {TEST_IMAGE}\nRUN touch /ok\nLABEL v=2\n")
        wait_for(lambda: state(docker_client, app).get("Image") == good2 and running(docker_client, app), 30)
        wait_for(lambda: state(docker_client, front).get("Id") not in (None, front_id), 30)
        wait_for(lambda: running(docker_client, front), 30)
        links = state(docker_client, front)["HostConfig"]["Links"] or []
        assert any(link.startswith(f"/{app}:") for link in links), links  # linked to the new app

        # The tag moves to an image whose healthcheck fails: rolled back to the previous image id.
        app_id = state(docker_client, app)["Id"]
        bad = _build(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=3\n")
        wait_for(lambda: any(e.get("event") == "update rolled back" for e in daemon.logs()), 40)
        wait_for(lambda: running(docker_client, app), 20)
        current = state(docker_client, app)
        assert current["Image"] == good2
        assert current["Id"] == app_id  # the previous container itself runs again
        assert not docker_client.containers.list(all=True, filters={"name": f"{app}..next"})
        # …and the bad image id is not tried again (until the tag moves once more).
        attempts = sum(1 for e in daemon.logs() if e.get("event") == "update rolled back")
        # Even a reload does not retry it: wait until the daemon is idle, reload, and wait for the full
        # reconcile the reload queues to be over (the count of reconciles grows and the queue is empty).
        wait_idle(daemon)
        before = reconciles(daemon)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any(e.get("event") == "reloading maps (SIGHUP)" for e in daemon.logs()), 10)
        wait_for(lambda: reconciles(daemon) > before, 30)
        wait_idle(daemon)
        assert sum(1 for e in daemon.logs() if e.get("event") == "update rolled back") == attempts
        assert 'reconciler_rollbacks_total{client="__default__"} 1.0' in daemon.get("/metrics")[1]
        assert state(docker_client, app)["Id"] == app_id  # not even a replacement was tried
        assert state(docker_client, app)["Image"] == good2
        assert bad != good2
        lines = [line for body in receiver.bodies() for line in body.splitlines()]
        short = {k: v.removeprefix("sha256:")[:12] for k, v in {"good1": good1, "good2": good2, "bad": bad}.items()}
        assert f"[update] {app}: updated: {tag} {short['good1']} → {short['good2']}" in lines
        rollback = (
            f"[rollback] {app}: rolled back the update to {tag} {short['bad']}, the previous container runs again"
        )
        assert any(line.startswith(rollback) for line in lines), lines
        assert daemon.stop() == 0
    finally:
        receiver.close()
        for container in (front, app):
            if state(docker_client, container):
                docker_client.api.remove_container(container, force=True, v=True)
        docker_client.images.remove(tag, force=True)


@pytest.mark.timeout(300)
def test_engine_restart_is_survived(docker_client: Any, maps_dir: Path, daemon_factory: Any) -> None:
    """The engine goes away (SIGTERM, no live-restore: its containers stop) and comes back: the daemon
    reconnects, relists and converges, and tells (Apprise, to a local receiver) that the engine was lost
    once it stayed away past the grace time, and that it is back. Against a private dockerd: stopping the
    main one would stop every container on the host."""
    name = unique_map_name("restart")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    with private_engine(docker_client) as engine, Receiver() as receiver:
        client = engine.client()
        try:
            env = {**engine.env, "RECONCILER_NOTIFY_INTERVAL": "0.5", "RECONCILER_ENGINE_GRACE": "2"}
            daemon = daemon_factory("--notify", receiver.url, env=env)
            daemon.wait_ready()
            app = f"{name}.app"
            wait_for(lambda: running(client, app), 30)
            assert not state(docker_client, app), "the daemon must work on the private engine only"
            engine.stop(signal.SIGTERM)
            wait_for(lambda: any(e.get("event") == "engine events disconnected" for e in daemon.logs()), 30)
            wait_for(lambda: any(b.startswith("[engine-lost] engine: unreachable for") for b in told(receiver)), 30)
            engine.start()
            # Without live-restore the engine stopped the container; the daemon reconnects, relists, converges.
            wait_for(lambda: running(client, app), 60)
            wait_for(
                lambda: any(b.startswith("[engine-back] engine: reachable again after") for b in told(receiver)), 30
            )
            assert sum(b.startswith("[engine-lost]") for b in told(receiver)) == 1, receiver.bodies()  # once
            assert daemon.proc.poll() is None
            assert daemon.stop() == 0
        finally:
            client.close()


def told(receiver: Receiver) -> list[str]:
    """Every line of every notification received."""
    return [line for m in receiver.messages for line in str(m.get("message", "")).splitlines()]


def reconciles(daemon: Daemon) -> float:
    """Reconciles finished so far, whatever their result (from /metrics)."""
    total = 0.0
    for line in daemon.get("/metrics")[1].splitlines():
        if line.startswith("reconciler_reconciles_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_idle(daemon: Daemon, timeout: float = 30) -> None:
    """Until the queue is empty and no reconcile finished for half a second."""

    def idle() -> bool:
        first = reconciles(daemon)
        time.sleep(0.5)
        empty = 'reconciler_queue_depth{client="__default__"} 0.0' in daemon.get("/metrics")[1]
        return empty and reconciles(daemon) == first

    wait_for(idle, timeout)


@pytest.mark.timeout(180)  # the sum of its waits' deadlines, so a slow step fails with its own message
def test_a_crash_looping_container_is_restarted_with_backoff(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("crashloop")
    (maps_dir / "site.yaml").write_text(
        map_text(name, "app:\n  image: IMAGE\n  create_options: {command: [sh, -c, 'sleep 0.2; exit 3']}\n")
    )
    daemon = daemon_factory()
    daemon.wait_ready()

    def delays() -> list[float]:
        return [e["restart_in"] for e in daemon.logs() if e.get("event") == "crash loop: restart held back"]

    wait_for(lambda: len({round(d) for d in delays()}) >= 3, 40)
    seen = delays()
    # Exponential: the waits grow (1, 2, 4 … seconds), they do not hammer the engine.
    assert max(seen) >= 3.5
    starts = sum(1 for e in daemon.logs() if e.get("event") == "action done" and e.get("action") == "start")
    assert starts <= 6
    assert daemon.stop() == 0


@pytest.mark.timeout(240)  # the sum of its waits' deadlines, so a slow step fails with its own message
def test_registry_polling_catches_a_push(docker_client: Any, maps_dir: Path, daemon_factory: Any, prefix: str) -> None:
    """--poll-images pulls the tags in use, so an image pushed to a registry (Debian's docker-registry on
    127.0.0.1:5000) updates the containers that use its tag."""
    ref = f"127.0.0.1:5000/{prefix}/app:live"
    v1 = _build(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL gen=1\n")
    for line in docker_client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    name = unique_map_name("poll")
    (maps_dir / "site.yaml").write_text(map_text(name, APP.replace("image: IMAGE", f"image: {ref}")))
    app = f"{name}.app"
    daemon = daemon_factory("--poll-images", "1")
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app), 20)
        assert state(docker_client, app)["Image"] == v1
        # Push a new image under the same tag while the daemon is paused, and put the local tag back on the
        # old image: only the registry knows about the new one.
        daemon.proc.send_signal(signal.SIGSTOP)
        try:
            v2 = _build(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL gen=2\n")
            for line in docker_client.images.push(ref, stream=True, decode=True):
                assert "error" not in line, line
            docker_client.images.get(v1).tag(ref)
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: state(docker_client, app).get("Image") == v2 and running(docker_client, app), 40)
        assert daemon.stop() == 0
    finally:
        if state(docker_client, app):
            docker_client.api.remove_container(app, force=True, v=True)
        docker_client.images.remove(ref, force=True)


@pytest.mark.parametrize("prune", [False, True])
def test_a_deleted_map_stops_being_managed(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, prune: bool
) -> None:
    name, kept_name = unique_map_name("deleted"), unique_map_name("kept")
    (maps_dir / "site.yaml").write_text(map_text(name, APP))
    (maps_dir / "kept.yaml").write_text(map_text(kept_name, APP))  # the control: still managed
    app, control = f"{name}.app", f"{kept_name}.app"
    daemon = daemon_factory(*(["--prune-deleted-maps"] if prune else []))
    daemon.wait_ready()
    wait_for(lambda: running(docker_client, app) and running(docker_client, control), 20)
    (maps_dir / "site.yaml").unlink()
    wait_for(lambda: any(e.get("event") == "map no longer present: not managed any more" for e in daemon.logs()), 15)
    if prune:
        wait_for(lambda: not state(docker_client, app), 20)  # --prune-deleted-maps: its containers go
        assert running(docker_client, control)
    else:
        assert running(docker_client, app)  # kept…
        # …and no longer healed: both are stopped at once; once the daemon has healed the control (so it has
        # seen the events of both), the deleted map's container is given twice that time more, and stays down.
        stopped_at = time.monotonic()
        docker_client.api.stop(app, timeout=1)
        docker_client.api.stop(control, timeout=1)
        wait_for(lambda: running(docker_client, control), 20)
        healed_in = time.monotonic() - stopped_at
        deadline = time.monotonic() + 2 * healed_in + 0.5
        while time.monotonic() < deadline:
            assert not running(docker_client, app), "the container of a deleted map was healed"
            time.sleep(0.05)
    assert daemon.stop() == 0


def test_a_second_sigterm_exits_at_once(docker_client: Any, maps_dir: Path, daemon_factory: Any) -> None:
    """The first SIGTERM lets in-flight work finish; a second one does not wait."""
    name = unique_map_name("sigterm")
    slow = (
        "app:\n  image: IMAGE\n  stop_timeout: 30\n  create_options: {command: [sleep, '600'], environment: {V: '1'}}\n"
    )
    (maps_dir / "site.yaml").write_text(map_text(name, slow))  # `sleep` as PID 1 ignores SIGTERM: stops take 30 s
    daemon = daemon_factory()
    daemon.wait_ready()
    wait_for(lambda: running(docker_client, f"{name}.app"), 20)
    write_atomically(maps_dir / "site.yaml", map_text(name, slow.replace("V: '1'", "V: '2'")))
    wait_for(lambda: any(e.get("event") == "drift" and e.get("action") == "recreate" for e in daemon.logs()), 15)
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: any(e.get("event") == "stopping" for e in daemon.logs()), 10)
    assert daemon.proc.poll() is None  # still finishing the recreate (the old container takes 30 s to stop)
    interpreter = interpreter_start_seconds()  # the exit must take far less than a fresh start takes
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=30) == 1
    exited_in = time.monotonic() - started
    assert exited_in < 0.5 + interpreter, f"a second SIGTERM took {exited_in:.2f}s (interpreter: {interpreter:.2f}s)"
