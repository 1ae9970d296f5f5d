"""Day two (issue 18) against the real engine: a person and the daemon on the same host.

`down` beside a running daemon keeps the containers down, `resume` hands them back; a daemon without a
valid map is not ready; what the daemon holds back is shown by `status`/`plan` and kept by `apply`.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

from reconciler.plan.desired import desired_state
from tests.integration.engine_helpers import build_image, load, map_text, run_cli, unique_map_name, wait_for
from tests.integration.test_daemon import APP, daemon_factory, maps_dir, running, state

__all__ = ["daemon_factory", "maps_dir"]  # fixtures shared with the daemon's own tests

TWO = APP + 'web:\n  image: IMAGE\n  stop_timeout: 1\n  links: app\n  create_options: {command: [sh, -c, "TRAP"]}\n'


def _cleanup(client: Any, *names: str) -> None:
    for name in names:
        if state(client, name):
            client.api.remove_container(name, force=True, v=True)


def test_down_beside_a_running_daemon_stays_down_until_resume(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("daytwo")
    site = maps_dir / "site.yaml"
    site.write_text(map_text(name, TWO))
    app, web = f"{name}.app", f"{name}.web"
    env = {"RECONCILER_STATE_DIR": str(maps_dir.parent / "state")}
    daemon = daemon_factory()
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app) and running(docker_client, web), 30)
        wait_for((maps_dir.parent / "state" / "daemon.json").exists, 10)

        down = run_cli("down", str(site), env=env)
        assert down.returncode == 0, down.stderr
        assert "daemon" in down.stderr
        assert "paused" in down.stderr
        # Kept down: the daemon logs the pause and does not bring them back.
        wait_for(lambda: any(e.get("event", "").startswith("paused by a person") for e in daemon.logs()), 10)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert not state(docker_client, app)
            assert not state(docker_client, web)
            time.sleep(0.2)
        assert not [e for e in daemon.logs() if e.get("level") == "error"]
        status = run_cli("status", str(site), env=env)
        assert "paused" in status.stdout, status.stdout
        assert "a reconciler daemon (pid" in status.stdout  # the CLI says a daemon manages these maps
        assert "run `reconciler apply`" not in status.stdout
        assert 'reconciler_paused_containers{client="__default__"} 2.0' in daemon.get("/metrics")[1]
        assert "paused" in daemon.get("/readyz")[1]

        resumed = run_cli("resume", str(site), env=env)
        told = time.monotonic()
        assert resumed.returncode == 0, resumed.stderr
        assert "resumed" in resumed.stderr
        # "at once": the watcher sees the pause file change (a second's step), the idle loop has no timer for it
        wait_for(lambda: any(e.get("event") == "resumed: managed again" for e in daemon.logs()), 10)
        assert time.monotonic() - told <= 3.5
        wait_for(lambda: running(docker_client, app) and running(docker_client, web), 20)
        assert daemon.stop() == 0
        assert not (maps_dir.parent / "state" / "daemon.json").exists()  # no daemon any more: the CLI knows
    finally:
        _cleanup(docker_client, web, app)


def test_pause_for_a_while_then_the_daemon_heals_again(docker_client: Any, maps_dir: Path, daemon_factory: Any) -> None:
    name = unique_map_name("pausefor")
    site = maps_dir / "site.yaml"
    site.write_text(map_text(name, APP))
    app = f"{name}.app"
    env = {"RECONCILER_STATE_DIR": str(maps_dir.parent / "state")}
    daemon = daemon_factory()
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app), 30)
        paused = run_cli("pause", str(site), "app", "--for", "3s", env=env)
        assert paused.returncode == 0, paused.stderr
        assert "paused: " + app in paused.stdout
        wait_for(lambda: any(e.get("event", "").startswith("paused by a person") for e in daemon.logs()), 10)
        docker_client.api.stop(app, timeout=1)  # maintenance: stopped by hand, and left stopped
        time.sleep(1)
        assert not running(docker_client, app)
        wait_for(lambda: running(docker_client, app), 15)  # the pause ran out: healed
        assert daemon.stop() == 0
    finally:
        _cleanup(docker_client, app)


def test_a_daemon_without_a_valid_map_is_not_ready(maps_dir: Path, daemon_factory: Any) -> None:
    daemon = daemon_factory()  # an empty folder
    wait_for(lambda: daemon.get("/healthz")[0] == 200, 15)
    wait_for(lambda: daemon.get("/readyz")[0] == 503 and "no map files" in daemon.get("/readyz")[1], 15)
    assert "managing nothing" in daemon.get("/healthz")[1]
    assert daemon.stop() == 0

    (maps_dir / "broken.yaml").write_text(f"name: {unique_map_name('broken')}\napp: {{image: x, bogus: 1}}\n")
    daemon = daemon_factory()
    wait_for(lambda: "no valid map" in daemon.get("/readyz")[1], 15)
    assert daemon.get("/readyz")[0] == 503
    events = [e.get("event", "") for e in daemon.logs()]
    assert not any("keeping the last good version" in e for e in events)  # there is none
    assert any("no good version of this file yet" in e for e in events)
    metrics = daemon.get("/metrics")[1]
    assert f'reconciler_maps_broken{{client="__default__",file="{maps_dir / "broken.yaml"}"}} 1.0' in metrics
    # Fixed: ready, the gauge drops to 0, and the log says so.
    fixed = 'app: {image: IMAGE, create_options: {command: [sh, -c, "TRAP"]}}\n'
    (maps_dir / "broken.yaml").write_text(map_text(unique_map_name("broken"), fixed))
    wait_for(lambda: daemon.get("/readyz")[0] == 200, 20)
    assert any(e.get("event") == "map OK again" for e in daemon.logs())
    good_again = f'reconciler_maps_broken{{client="__default__",file="{maps_dir / "broken.yaml"}"}} 0.0'
    assert good_again in daemon.get("/metrics")[1]
    daemon.proc.send_signal(signal.SIGHUP)  # a reload says it happened
    wait_for(lambda: any(e.get("event") == "maps reloaded" for e in daemon.logs()), 10)
    assert daemon.stop() == 0


def test_status_plan_and_apply_respect_a_hold_until_forced(docker_client: Any, tmp_path: Path, prefix: str) -> None:
    tag = f"{prefix}-held:live"
    first = build_image(docker_client, tag, "FROM " + _test_image() + "\nLABEL v=1\n")
    name = unique_map_name("held")
    site = tmp_path / "site.yaml"
    text = map_text(name, APP.replace("IMAGE", tag))
    site.write_text(text)
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    app = f"{name}.app"
    try:
        applied = run_cli("apply", str(site), env=env)
        assert applied.returncode == 0
        # Off a terminal: one plain line per action (outcome, what, which, seconds), then the summary.
        assert re.search(rf"^  ok +create +container +{re.escape(app)} \(\d+\.\ds\)$", applied.stdout, re.M), (
            applied.stdout
        )
        assert applied.stdout.splitlines()[-1].startswith("summary: ")
        second = build_image(docker_client, tag, "FROM " + _test_image() + "\nLABEL v=2\n")
        # As the daemon records a rolled-back update of `app` to the second image:
        spec = desired_state(load(text, tmp_path)).containers[app]
        hold = {"container": app, "spec_hash": spec.spec_hash, "image_id": second, "why": "failed its health gate"}
        (tmp_path / "state").mkdir()
        held = {"holds": [hold], "rejected_images": [[tag, second]]}  # as the daemon writes an image rollback
        (tmp_path / "state" / "held.json").write_text(json.dumps(held))

        status = run_cli("status", str(site), env=env)
        assert f"held back: image {tag} ({second.removeprefix('sha256:')[:12]}) failed its health gate" in (
            status.stdout
        ), status.stdout
        assert "run `reconciler apply`" not in status.stdout
        plan = run_cli("plan", str(site), "--detailed-exitcode", env=env)
        assert plan.returncode == 2, plan.stdout  # a change the map asks for is not made: not in sync
        assert "held back" in plan.stdout
        assert "not in sync: 1 held back" in status.stdout
        assert run_cli("apply", str(site), env=env).returncode == 0
        assert state(docker_client, app)["Image"] == first  # the known-bad image was not deployed
        forced = run_cli("apply", str(site), "--force", env=env)
        assert forced.returncode == 0, forced.stderr
        assert "released the hold" in forced.stderr
        assert state(docker_client, app)["Image"] == second
        assert json.loads((tmp_path / "state" / "held.json").read_text()) == {"holds": [], "rejected_images": []}
    finally:
        _cleanup(docker_client, app)
        docker_client.images.remove(tag, force=True)


def _test_image() -> str:
    from tests.conftest import TEST_IMAGE

    return TEST_IMAGE


LOGGING = """\
app:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "echo hello-from-app; TRAP"]
"""


def test_stop_beside_a_daemon_stays_stopped_until_start_and_logs_show(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    name = unique_map_name("stopd")
    site = maps_dir / "site.yaml"
    site.write_text(map_text(name, LOGGING))
    app = f"{name}.app"
    env = {"RECONCILER_STATE_DIR": str(maps_dir.parent / "state")}
    daemon = daemon_factory()
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app), 30)
        stopped = run_cli("stop", str(site), "app", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert f"ok       stop      {app}" in stopped.stdout
        assert "paused" in stopped.stderr
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert not running(docker_client, app)  # not started again behind the person's back
            time.sleep(0.2)
        logs = run_cli("logs", str(site), "--tail", "5", env=env)
        assert logs.returncode == 0, logs.stderr
        assert "hello-from-app" in logs.stdout
        started = run_cli("start", str(site), "app", env=env)
        assert started.returncode == 0, started.stderr
        assert running(docker_client, app)
        wait_for(lambda: any(e.get("event") == "resumed: managed again" for e in daemon.logs()), 10)
        docker_client.api.kill(app)  # managed again: healed
        wait_for(lambda: running(docker_client, app), 15)
        assert daemon.stop() == 0
    finally:
        _cleanup(docker_client, app)


def test_stop_start_restart_without_a_daemon_act_directly(docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("verbs")
    site = tmp_path / "site.yaml"
    site.write_text(map_text(name, LOGGING))
    app = f"{name}.app"
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    try:
        missing = run_cli("start", str(site), env=env)
        assert "missing: `reconciler apply` creates it" in missing.stdout
        assert run_cli("apply", str(site), env=env).returncode == 0
        first_start = state(docker_client, app)["State"]["StartedAt"]
        restarted = run_cli("restart", str(site), env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert state(docker_client, app)["State"]["StartedAt"] != first_start
        stopped = run_cli("stop", str(site), env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert "daemon" not in stopped.stderr
        assert not running(docker_client, app)
        assert not (tmp_path / "state" / "paused.json").exists()  # no daemon: nothing to tell
        assert run_cli("start", str(site), env=env).returncode == 0
        assert running(docker_client, app)
    finally:
        _cleanup(docker_client, app)


def test_status_shows_host_ports(docker_client: Any, tmp_path: Path) -> None:
    from tests.integration.test_daemon import free_port

    port = free_port()
    name = unique_map_name("ports")
    site = tmp_path / "site.yaml"
    site.write_text(map_text(name, LOGGING + f"  exposes: {{8080: [{port}, 127.0.0.1]}}\n"))
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    app = f"{name}.app"
    try:
        assert run_cli("apply", str(site), env=env).returncode == 0
        shown = run_cli("status", str(site), env=env)
        assert f"[127.0.0.1:{port}->8080/tcp]" in shown.stdout, shown.stdout
        rows = json.loads(run_cli("status", str(site), "--json", env=env).stdout)["resources"]
        assert next(r for r in rows if r["name"] == app)["ports"] == [f"127.0.0.1:{port}->8080/tcp"]
    finally:
        _cleanup(docker_client, app)


def test_run_prune_removes_containers_of_configs_removed_from_a_map(
    docker_client: Any, maps_dir: Path, daemon_factory: Any
) -> None:
    from tests.integration.test_daemon import write_atomically

    name = unique_map_name("pruned")
    site = maps_dir / "site.yaml"
    both = APP + 'other:\n  image: IMAGE\n  stop_timeout: 1\n  create_options: {command: [sh, -c, "TRAP"]}\n'
    site.write_text(map_text(name, both))
    app, other = f"{name}.app", f"{name}.other"
    daemon = daemon_factory("--prune")
    try:
        daemon.wait_ready()
        wait_for(lambda: running(docker_client, app) and running(docker_client, other), 30)
        write_atomically(site, map_text(name, APP))  # `other` removed from the map: an orphan
        wait_for(lambda: not state(docker_client, other), 20)
        assert running(docker_client, app)
        assert daemon.stop() == 0
    finally:
        _cleanup(docker_client, other, app)


def test_plan_reports_a_host_port_a_stranger_holds_and_apply_leaves_nothing_created(
    docker_client: Any, tmp_path: Path, test_labels: dict[str, str]
) -> None:
    from tests.conftest import TEST_IMAGE
    from tests.integration.test_daemon import free_port

    port = free_port()
    name = unique_map_name("portclash")
    stranger = docker_client.containers.run(
        TEST_IMAGE,
        ["sleep", "60"],
        name=f"{name}-stranger",
        labels=test_labels,
        detach=True,
        ports={"80/tcp": ("127.0.0.1", port)},
    )
    site = tmp_path / "site.yaml"
    site.write_text(map_text(name, LOGGING + f"  exposes: {{8080: [{port}, 127.0.0.1]}}\n"))
    env = {"RECONCILER_STATE_DIR": str(tmp_path / "state")}
    try:
        plan = run_cli("plan", str(site), env=env)
        assert f"host port 127.0.0.1:{port}/tcp is already published by '{name}-stranger'" in plan.stdout, plan.stdout
        applied = run_cli("apply", str(site), env=env)
        assert applied.returncode == 1
        assert not state(docker_client, f"{name}.app")  # no `Created` container left behind
        stranger.reload()
        assert stranger.status == "running"  # and the stranger untouched
    finally:
        stranger.remove(v=True, force=True)
        _cleanup(docker_client, f"{name}.app")
