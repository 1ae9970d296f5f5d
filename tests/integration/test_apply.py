"""apply / plan on the real engine: the seed guide's map end to end, idempotence, and every drift rule.

For each rule: apply → change the map or meddle with the engine → plan names the reason → apply fixes it →
plan is empty, and containers that had no reason to change keep their ids.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from reconciler.executor.engine import DockerEngine
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import PlanOptions
from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import (
    apply,
    build_image,
    container_id,
    load,
    map_text,
    ops,
    plan_for,
    reasons,
    unique_map_name,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SEED = """\
nginx:
  image: IMAGE
  binds: {nginx_config: ro}
  uses: uwsgi_socket
  attaches: nginx_log
  exposes: {80: [PORT, 127.0.0.1]}
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
uwsgi:
  image: IMAGE
  binds:
    - uwsgi_config: ro
    - app_config: ro
    - app_data
  attaches: [uwsgi_log, app_log, uwsgi_socket]
  user: 2000
  permissions: u=rwX,g=rX,o=
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
volumes:
  nginx_config: /etc/nginx
  nginx_log: /var/log/nginx
  uwsgi_config: /etc/uwsgi
  uwsgi_socket: /var/lib/uwsgi/socket
  uwsgi_log: /var/log/uwsgi
  app_config: /var/lib/app/config
  app_log: /var/lib/app/log
  app_data: /var/lib/app/data
host:
  nginx_config: config/nginx
  uwsgi_config: config/uwsgi
  app_config: config/app
  app_data: data/app
"""


def seed_map(tmp_path: Path, name: str, port: int) -> str:
    return map_text(name, f"host_root: {tmp_path}\n" + SEED.replace("PORT", str(port)))


def test_seed_map_end_to_end(engine: DockerEngine, docker_client: Any, tmp_path: Path) -> None:
    name = unique_map_name("seed")
    maps = load(seed_map(tmp_path, name, free_port()))
    first = plan_for(engine, maps)
    order = [a.resource.name for a in first.actions if a.resource.kind.value == "container"]
    assert order == [f"{name}.uwsgi", f"{name}.nginx"]  # uwsgi first: nginx uses its socket volume
    apply(engine, maps)

    uwsgi, nginx = f"{name}.uwsgi", f"{name}.nginx"
    # The attached volumes are owned by 2000:2000 with mode u=rwX,g=rX,o= (drwxr-x---).
    out = docker_client.containers.get(uwsgi).exec_run(
        ["stat", "-c", "%u:%g %A", "/var/lib/uwsgi/socket", "/var/log/uwsgi", "/var/lib/app/log"]
    )
    assert out.output.decode().split("\n")[:3] == ["2000:2000 drwxr-x---"] * 3
    assert docker_client.containers.get(uwsgi).exec_run(["id", "-u"]).output.strip() == b"2000"
    # nginx sees the socket volume and none of uwsgi's other volumes.
    mounts = {m["Destination"]: m for m in docker_client.api.inspect_container(nginx)["Mounts"]}
    assert set(mounts) == {"/etc/nginx", "/var/lib/uwsgi/socket", "/var/log/nginx"}
    assert mounts["/var/lib/uwsgi/socket"]["Name"] == f"{name}.uwsgi_socket"
    assert mounts["/etc/nginx"]["RW"] is False
    assert mounts["/etc/nginx"]["Source"] == str(tmp_path / "config" / "nginx")
    # Data written through the shared socket volume is visible on the other side.
    docker_client.containers.get(uwsgi).exec_run(["sh", "-c", "echo up > /var/lib/uwsgi/socket/state"])
    assert docker_client.containers.get(nginx).exec_run(["cat", "/var/lib/uwsgi/socket/state"]).output == b"up\n"

    ids = {n: container_id(docker_client, n) for n in (uwsgi, nginx)}
    assert plan_for(engine, maps).in_sync
    second = apply(engine, maps)  # a second apply changes nothing
    assert second.plan.in_sync
    assert not second.result.results
    assert {n: container_id(docker_client, n) for n in ids} == ids


DRIFT_MAP = """\
app:
  image: IMAGE
  user: 2000
  exposes: {8080: [PORT, 127.0.0.1]}
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
    environment: {MODE: one, KEEP: same}
other:
  image: IMAGE
  stop_timeout: 1
  create_options:
    command: [sh, -c, "TRAP"]
"""


@pytest.fixture
def drift_setup(engine: DockerEngine, docker_client: Any) -> tuple[str, str, Any]:
    name = unique_map_name("drift")
    text = map_text(name, DRIFT_MAP.replace("PORT", str(free_port())))
    apply(engine, load(text))
    return name, text, docker_client


def _fix_and_check(engine: DockerEngine, client: Any, text: str, name: str, untouched_id: str) -> None:
    apply(engine, load(text))
    assert plan_for(engine, load(text)).in_sync
    assert container_id(client, f"{name}.other") == untouched_id


@pytest.mark.parametrize(
    ("edit", "expected_op", "expected_reason"),
    [
        (("MODE: one", "MODE: two"), "recreate", "env MODE: 'one' → 'two'"),
        (("MODE: one, KEEP: same", "MODE: one"), "recreate", "env KEEP: 'same' → (none)"),
        (("MODE: one,", "MODE: one, NEW: x,"), "recreate", "env NEW: (none) → 'x'"),
        (("user: 2000", "user: 1000"), "recreate", "user: '2000' → '1000'"),
        (("while :", "while true"), "recreate", "command: "),
        (("exposes: {8080:", "exposes: {8081:"), "recreate", "ports 8081/tcp: (none) → "),
        (
            (
                'stop_timeout: 1\n  create_options:\n    command: [sh, -c, "trap',
                'stop_timeout: 1\n  host_config: {mem_limit: 64m}\n  create_options:\n    command: [sh, -c, "trap',
            ),
            "update",
            "limits Memory: 0 → 67108864",
        ),
    ],
)
def test_map_edits_are_planned_and_fixed(
    engine: DockerEngine,
    drift_setup: tuple[str, str, Any],
    edit: tuple[str, str],
    expected_op: str,
    expected_reason: str,
) -> None:
    name, text, client = drift_setup
    old, new = edit
    assert old in text
    changed = text.replace(old, new, 1)
    other_id = container_id(client, f"{name}.other")
    app_id = container_id(client, f"{name}.app")
    plan = plan_for(engine, load(changed))
    assert ops(plan) == {f"{name}.app": expected_op}
    assert any(r.startswith(expected_reason) for r in reasons(plan, f"{name}.app")), reasons(plan, f"{name}.app")
    _fix_and_check(engine, client, changed, name, other_id)
    if expected_op == "update":
        assert container_id(client, f"{name}.app") == app_id  # updated in place, not recreated
        assert client.api.inspect_container(f"{name}.app")["HostConfig"]["Memory"] == 64 * 1024 * 1024


def test_stopped_and_removed_containers_come_back(engine: DockerEngine, drift_setup: tuple[str, str, Any]) -> None:
    name, text, client = drift_setup
    other_id = container_id(client, f"{name}.other")
    client.api.stop(f"{name}.app", timeout=1)
    plan = plan_for(engine, load(text))
    assert ops(plan) == {f"{name}.app": "start"}
    assert reasons(plan, f"{name}.app") == ["stopped state: 'exited (0)' → 'running'"]
    app_id = container_id(client, f"{name}.app")
    _fix_and_check(engine, client, text, name, other_id)
    assert container_id(client, f"{name}.app") == app_id  # started, not recreated

    client.api.remove_container(f"{name}.app", force=True, v=True)
    plan = plan_for(engine, load(text))
    assert ops(plan) == {f"{name}.app": "create"}
    _fix_and_check(engine, client, text, name, other_id)


def test_a_tag_moved_to_another_image_recreates_its_containers(
    engine: DockerEngine, docker_client: Any, prefix: str
) -> None:
    tag = f"{prefix}-img:v1"
    docker_client.images.get(TEST_IMAGE).tag(tag)
    name = unique_map_name("tag")
    text = map_text(name, f'app:\n  image: {tag}\n  stop_timeout: 1\n  create_options: {{command: [sh, -c, "TRAP"]}}\n')
    try:
        apply(engine, load(text))
        old_id = container_id(docker_client, f"{name}.app")
        # Build a different image and move the tag to it.
        image_id = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL moved=yes\n")
        plan = plan_for(engine, load(text))
        assert ops(plan) == {f"{name}.app": "recreate"}
        [reason] = reasons(plan, f"{name}.app")
        assert reason.startswith(f"image {tag}: '")
        apply(engine, load(text))
        assert docker_client.api.inspect_container(f"{name}.app")["Image"] == image_id
        assert container_id(docker_client, f"{name}.app") != old_id
        assert plan_for(engine, load(text)).in_sync
    finally:
        docker_client.api.remove_container(f"{name}.app", force=True, v=True)
        docker_client.images.remove(tag, force=True)


def test_a_stranger_holding_our_name_is_reported_and_left_alone(
    engine: DockerEngine, docker_client: Any, test_labels: dict[str, str]
) -> None:
    name = unique_map_name("stranger")
    stranger = docker_client.containers.create(TEST_IMAGE, ["sleep", "1"], name=f"{name}.app", labels=test_labels)
    text = map_text(name, 'app:\n  image: IMAGE\n  create_options: {command: [sh, -c, "TRAP"]}\n')
    plan = plan_for(engine, load(text))
    assert not plan.actions
    [blocked] = plan.blocked
    assert blocked.resource.name == f"{name}.app"
    assert "without reconciler's labels" in blocked.message
    from reconciler.executor.converge import converge
    from reconciler.plan.desired import desired_state

    done = converge(engine, desired_state(load(text)))
    assert not done.ok
    stranger.reload()
    assert stranger.status == "created"  # untouched
    assert stranger.attrs["Config"]["Cmd"] == ["sleep", "1"]


def test_missing_images_are_pulled_and_present_ones_only_on_request(
    engine: DockerEngine, docker_client: Any, prefix: str
) -> None:
    """A missing image is pulled (from Debian's docker-registry on 127.0.0.1:5000); an image that is present
    is never pulled by apply — unless `pull` asks for newer ones."""
    ref = f"127.0.0.1:5000/{prefix}/pulled:1"
    image_id = build_image(docker_client, ref, f"FROM {TEST_IMAGE}\nLABEL pulled=yes\n")
    for line in docker_client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(ref, force=True)  # now only the registry has it
    name = unique_map_name("pull")
    text = map_text(name, f'app:\n  image: {ref}\n  stop_timeout: 1\n  create_options: {{command: [sh, -c, "TRAP"]}}\n')
    try:
        plan = plan_for(engine, load(text))
        assert ops(plan) == {ref: "pull", f"{name}.app": "create"}
        done = apply(engine, load(text))
        assert done.pulled is not None
        assert [r.action.resource.name for r in done.pulled.results] == [ref]
        assert docker_client.api.inspect_container(f"{name}.app")["Image"] == image_id
        again = apply(engine, load(text))
        assert again.pulled is None  # present: not pulled again
        forced = apply(engine, load(text), PlanOptions(pull=True))
        assert forced.pulled is not None  # asked for: pulled, and nothing else changes (same image)
        assert not forced.result.results
    finally:
        docker_client.api.remove_container(f"{name}.app", force=True, v=True)
        docker_client.images.remove(ref, force=True)


def test_objects_created_by_hand_with_our_labels_are_in_sync(engine: DockerEngine, docker_client: Any) -> None:
    """The plan judges by what the engine has, not by who created it: a container made by hand with the
    expected labels and arguments is in sync."""
    name = unique_map_name("byhand")
    text = map_text(name, "app:\n  image: IMAGE\n  create_options: {command: [sleep, '600'], environment: {A: b}}\n")
    maps = load(text)
    spec = desired_state(maps).containers[f"{name}.app"]
    container = docker_client.containers.create(
        TEST_IMAGE,
        ["sleep", "600"],
        name=f"{name}.app",
        hostname=f"{name}-app",
        environment={"A": "b"},
        labels={
            "io.reconciler.managed": "true",
            "io.reconciler.map": name,
            "io.reconciler.config": "app",
            "io.reconciler.kind": "container",
            "io.reconciler.spec-hash": spec.spec_hash,
        },
    )
    try:
        container.start()
        assert plan_for(engine, maps).in_sync
    finally:
        container.remove(v=True, force=True)
