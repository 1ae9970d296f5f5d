"""Running unattended (issue #14) against the real engine and the local registry (127.0.0.1:5000): update
policies, registry polling by digest, notifications to a local receiver.

Daemons run in subprocesses (the `Daemon` of test_daemon); waits are deadlines, never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE
from tests.integration import test_daemon
from tests.integration.engine_helpers import build_image, map_text, run_cli, unique_map_name, wait_for
from tests.integration.notify_receiver import Receiver
from tests.integration.test_daemon import running, state, wait_idle

maps_dir = test_daemon.maps_dir  # the daemon tests' fixtures: a maps folder, daemons stopped afterwards
daemon_factory = test_daemon.daemon_factory

SECRET = "hunter2-not-for-your-eyes"
POLICIES = """\
update: notify
frozen:
  abstract: true
  update: pinned
auto:
  image: TAG
  update: auto
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {DB_PASSWORD: SECRET}
notify:
  image: TAG
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
pinned:
  extends: frozen
  image: TAG
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""
FAST_NOTIFY = {**os.environ, "RECONCILER_NOTIFY_INTERVAL": "0.5"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _remove(client: Any, *names: str) -> None:
    for name in names:
        if state(client, name):
            client.api.remove_container(name, force=True, v=True)


def _push(client: Any, ref: str) -> None:
    for line in client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line


def _events(client: Any, since: float, refs: set[str], action: str = "pull") -> list[str]:
    """The engine's image events of `action` for these refs since `since` (until now)."""
    found = client.events(since=since, until=time.time(), filters={"type": "image", "event": action}, decode=True)
    return [str(e.get("id")) for e in found if str(e.get("id")) in refs]


def _lines(receiver: Receiver) -> list[str]:
    """Every line of every message received."""
    return [line for m in receiver.messages for line in str(m.get("message", "")).splitlines()]


def _logged(daemon: Any, event: str, **fields: str) -> list[dict[str, Any]]:
    return [e for e in daemon.logs() if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]


@pytest.mark.timeout(240)
def test_notify_and_pinned_stay_when_the_tag_moves_auto_follows(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, prefix: str, receiver: Receiver
) -> None:
    tag = f"{prefix}-policy:live"
    v1 = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=1\n")
    name = unique_map_name("policy")
    site = maps_dir / "site.yaml"
    site.write_text(map_text(name, POLICIES.replace("TAG", tag).replace("SECRET", SECRET)))
    auto, notify, pinned = f"{name}.auto", f"{name}.notify", f"{name}.pinned"
    daemon = daemon_factory("--notify", receiver.url, env=FAST_NOTIFY)
    try:
        daemon.wait_ready(60)
        wait_for(lambda: all(running(docker_client, c) for c in (auto, notify, pinned)), 30)
        before = {c: state(docker_client, c)["Id"] for c in (notify, pinned)}

        v2 = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=2\n")  # the tag moves (image events)
        wait_for(lambda: state(docker_client, auto).get("Image") == v2 and running(docker_client, auto), 40)
        # The reconcile that renamed `auto` into place tells of the pending update once it is over.
        wait_for(lambda: bool(_logged(daemon, "update pending", container=notify)), 20)
        wait_idle(daemon)
        for container in (notify, pinned):
            assert state(docker_client, container)["Id"] == before[container], container  # not recreated
            assert state(docker_client, container)["Image"] == v1
        assert not _logged(daemon, "update pending", container=pinned)

        # Each news once (the reconciles of `auto` and `notify` end apart: one message, or two when they
        # end further apart than the gather time); nothing about `pinned`, no secret.
        short1, short2 = v1.removeprefix("sha256:")[:12], v2.removeprefix("sha256:")[:12]
        news = [
            f"[pending] {notify}: {tag}: {short1} → {short2}",
            f"[update] {auto}: updated: {tag} {short1} → {short2}",
        ]

        def told() -> list[str]:  # the news each line tells, in order of the lines
            return sorted(n for line in _lines(receiver) for n in news if line.startswith(n))

        wait_for(lambda: told() == news, 20)
        time.sleep(1.5)  # three notify intervals: nothing else is sent
        assert len(_lines(receiver)) == len(news), receiver.bodies()
        assert told() == news, receiver.bodies()
        assert 1 <= len(receiver.messages) <= 2, receiver.bodies()
        assert SECRET not in "\n".join(receiver.bodies())
        assert daemon.stop() == 0

        # The CLI: `plan` shows the pending update (in sync otherwise); `apply --update` takes it.
        shown = run_cli("plan", str(site), "--detailed-exitcode")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "pending updates" in shown.stdout
        assert notify in shown.stdout
        assert pinned not in shown.stdout
        as_json = run_cli("plan", str(site), "--json")
        assert as_json.returncode == 0, as_json.stderr
        pending = json.loads(as_json.stdout)["pending"]
        assert [(p["name"], p["image"], p["found"], p["wanted"]) for p in pending] == [(notify, tag, short1, short2)]
        status = run_cli("status", str(site))
        lines = [line for line in status.stdout.splitlines() if line.startswith("pending update:")]
        assert len(lines) == 1, status.stdout
        assert notify in lines[0]
        assert f"{short1} → {short2}" in lines[0]
        plain = run_cli("apply", str(site))
        assert plain.returncode == 0, plain.stderr
        assert state(docker_client, notify)["Id"] == before[notify]
        taken = run_cli("apply", str(site), "--update")
        assert taken.returncode == 0, taken.stderr
        assert state(docker_client, notify)["Image"] == v2
        assert state(docker_client, pinned)["Image"] == v1  # pinned: until the map changes
        assert state(docker_client, pinned)["Id"] == before[pinned]
    finally:
        _remove(docker_client, auto, notify, pinned)
        docker_client.images.remove(tag, force=True)


@pytest.mark.timeout(240)
def test_polling_pulls_only_a_changed_digest_and_never_a_pinned_tag(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, prefix: str, receiver: Receiver
) -> None:
    notify_ref, pinned_ref = f"127.0.0.1:5000/{prefix}/notify:live", f"127.0.0.1:5000/{prefix}/pinned:live"
    v1 = {
        ref: build_image(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL ref={ref} v=1\n")
        for ref in (notify_ref, pinned_ref)
    }
    for ref in v1:
        _push(docker_client, ref)
    name = unique_map_name("pollpolicy")
    body = f"""\
    notify:
      image: /{notify_ref}
      update: notify
      stop_timeout: 1
      create_options: {{command: [sh, -c, "TRAP"]}}
    pinned:
      image: /{pinned_ref}
      update: pinned
      stop_timeout: 1
      create_options: {{command: [sh, -c, "TRAP"]}}
    """
    (maps_dir / "site.yaml").write_text(map_text(name, body))
    notify, pinned = f"{name}.notify", f"{name}.pinned"
    since = time.time()
    daemon = daemon_factory("--poll-images", "0.5", "--notify", receiver.url, env=FAST_NOTIFY)
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, notify) and running(docker_client, pinned), 30)
        # Polled several times, the digest unchanged: no pull at all.
        wait_for(lambda: len(_logged(daemon, "registry digest unchanged: not pulled", image=notify_ref)) >= 3, 30)
        assert _events(docker_client, since, set(v1)) == []
        notify_id = state(docker_client, notify)["Id"]

        # New images pushed under both tags; the local tags stay on the old images.
        daemon.proc.send_signal(signal.SIGSTOP)
        try:
            for ref, old in v1.items():
                build_image(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL ref={ref} v=2\n")
                _push(docker_client, ref)
                docker_client.images.get(old).tag(ref)
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: _events(docker_client, since, {notify_ref}) == [notify_ref], 30)
        wait_for(lambda: bool(_logged(daemon, "update pending", container=notify)), 30)
        wait_for(lambda: any(f"[pending] {notify}" in b for b in receiver.bodies()), 20)
        wait_idle(daemon)
        assert state(docker_client, notify)["Id"] == notify_id  # reported, not recreated
        assert state(docker_client, notify)["Image"] == v1[notify_ref]
        assert _events(docker_client, since, {pinned_ref}) == []  # a pinned tag is never polled…
        assert not [e for e in daemon.logs() if e.get("image") == pinned_ref]  # …not even asked about
        assert state(docker_client, pinned)["Image"] == v1[pinned_ref]
        assert daemon.stop() == 0
    finally:
        _remove(docker_client, notify, pinned)
        for ref in v1:
            docker_client.images.remove(ref, force=True)


@pytest.mark.timeout(180)
def test_map_errors_are_notified_and_a_dead_receiver_does_not_slow_healing(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("deadnotify")
    body = """\
    app:
      image: IMAGE
      stop_timeout: 1
      create_options: {command: [sh, -c, "TRAP"], environment: {API_TOKEN: SECRET}}
    """
    (maps_dir / "site.yaml").write_text(map_text(name, body.replace("SECRET", SECRET)))
    app = f"{name}.app"
    with Receiver() as live, Receiver(hang=True) as dead:
        refused = Receiver()
        refused.close()  # its port now refuses connections: a failing target
        daemon = daemon_factory("--notify", live.url, "--notify", dead.url, "--notify", refused.url, env=FAST_NOTIFY)
        try:
            daemon.wait_ready(60)
            wait_for(lambda: running(docker_client, app), 30)
            # A broken map: reported with file and line to every target; the live one gets it, the dead one
            # keeps the sender waiting.
            (maps_dir / "broken.yaml").write_text(f"name: {name}-b\napp:\n  image: [not, an, image]\n")
            wait_for(lambda: any("[map-error]" in b for b in live.bodies()), 30)
            line = next(b for b in live.bodies() if "[map-error]" in b)
            assert "broken.yaml:3" in line, line
            # Healing goes on at once while the sender hangs on the dead target.
            docker_client.api.remove_container(app, force=True, v=True)
            removed = time.monotonic()
            wait_for(lambda: running(docker_client, app), 10)
            assert time.monotonic() - removed < 5
            # The refused target is counted as failed (after the dead one timed out), never fatal.
            dead.close()
            wait_for(
                lambda: (
                    'reconciler_notifications_total{outcome="failed"}' in daemon.get("/metrics")[1]
                    and 'reconciler_notifications_total{outcome="failed"} 0.0' not in daemon.get("/metrics")[1]
                ),
                60,
            )
            assert daemon.proc.poll() is None
            assert all(SECRET not in b for b in live.bodies())
            assert daemon.stop() == 0
        finally:
            _remove(docker_client, app)


@pytest.mark.timeout(180)
def test_the_update_window_flag_holds_an_update_and_healing_goes_on(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, prefix: str, receiver: Receiver
) -> None:
    from datetime import datetime, timedelta

    tag = f"{prefix}-closed:live"
    v1 = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=1\n")
    name = unique_map_name("closed")
    body = """\
    app:
      image: TAG
      stop_timeout: 1
      create_options: {command: [sh, -c, "TRAP"]}
    """
    (maps_dir / "site.yaml").write_text(map_text(name, body.replace("TAG", tag)))
    app = f"{name}.app"
    opens = datetime.now() + timedelta(hours=2)  # the daemon's time zone is this process's
    window = f"{opens:%H:%M}-{opens + timedelta(minutes=30):%H:%M}"
    daemon = daemon_factory("--update-window", window, "--notify", receiver.url, env=FAST_NOTIFY)
    try:
        daemon.wait_ready(60)
        wait_for(lambda: running(docker_client, app), 30)
        container = state(docker_client, app)["Id"]
        build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL v=2\n")
        wait_for(lambda: bool(_logged(daemon, "update pending", container=app)), 30)
        wait_for(lambda: any(f"[pending] {app}" in b and "update window" in b for b in receiver.bodies()), 20)
        assert state(docker_client, app)["Id"] == container  # held outside the window
        assert state(docker_client, app)["Image"] == v1
        docker_client.api.remove_container(app, force=True, v=True)  # healing is not held
        wait_for(lambda: running(docker_client, app), 10)
        assert daemon.stop() == 0
    finally:
        _remove(docker_client, app)
        docker_client.images.remove(tag, force=True)


@pytest.mark.timeout(120)
def test_a_crash_loop_is_notified_once(
    docker_client: Any, maps_dir: Path, daemon_factory: Any, receiver: Receiver
) -> None:
    name = unique_map_name("crashnotify")
    body = """\
    app:
      image: IMAGE
      stop_timeout: 1
      create_options: {command: [sh, -c, "sleep 0.2; exit 3"]}
    """
    (maps_dir / "site.yaml").write_text(map_text(name, body))
    app = f"{name}.app"
    daemon = daemon_factory("--notify", receiver.url, env=FAST_NOTIFY)
    try:
        daemon.wait_ready(60)
        wait_for(lambda: any(f"[crash-loop] {app}: crash loop" in b for b in receiver.bodies()), 40)
        # Restarted with growing delays meanwhile; told once.
        wait_for(lambda: len(_logged(daemon, "crash loop: restart held back", container=app)) >= 2, 40)
        time.sleep(1)
        assert sum(b.count(f"[crash-loop] {app}") for b in receiver.bodies()) == 1, receiver.bodies()
        assert daemon.stop() == 0
    finally:
        _remove(docker_client, app)
