"""Cascades, teardown, failed recreates and crash-safety on the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.executor.converge import converge
from reconciler.executor.engine import DockerEngine
from reconciler.plan.desired import desired_state
from tests.integration.engine_helpers import (
    apply,
    container_id,
    load,
    map_text,
    ops,
    plan_for,
    run_cli,
    unique_map_name,
)

CASCADE = """\
db:
  image: IMAGE
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], environment: {V: "1"}}
sidecar:
  image: IMAGE
  network_mode: db
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
web:
  image: IMAGE
  links: [[db, database]]
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
"""


def test_recreating_a_dependency_cascades_to_its_dependents(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("cascade")
    text = map_text(name, CASCADE)
    apply(engine, load(text))
    web_id = container_id(docker_client, f"{name}.web")
    sidecar_id = container_id(docker_client, f"{name}.sidecar")
    changed = text.replace('V: "1"', 'V: "2"')
    plan = plan_for(engine, load(changed))
    assert ops(plan) == {f"{name}.db": "recreate", f"{name}.sidecar": "recreate", f"{name}.web": "recreate"}
    assert [len(w) for w in plan.waves] == [1, 2]  # db first, then its dependents together
    apply(engine, load(changed))
    assert plan_for(engine, load(changed)).in_sync
    # The sidecar shares the *new* db's network stack; web was recreated and its link resolves the new db.
    db_id = container_id(docker_client, f"{name}.db")
    sidecar = docker_client.api.inspect_container(f"{name}.sidecar")
    assert sidecar["Id"] != sidecar_id
    assert sidecar["HostConfig"]["NetworkMode"] == f"container:{db_id}"
    web = docker_client.api.inspect_container(f"{name}.web")
    assert web["State"]["Running"]
    assert web["Id"] != web_id
    hosts = docker_client.containers.get(f"{name}.web").exec_run(["cat", "/etc/hosts"]).output.decode()
    db_ip = docker_client.api.inspect_container(f"{name}.db")["NetworkSettings"]["IPAddress"]
    assert f"{db_ip}\tdatabase" in hosts


VOLUME_MAP = """\
app:
  image: IMAGE
  attaches: data
  user: 2000
  permissions: "750"
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], environment: {GEN: "1"}}
volumes:
  data: /data
"""


def test_down_keeps_volumes_and_their_data_unless_asked(
    engine: DockerEngine, docker_client: Any, tmp_path: Path
) -> None:
    name = unique_map_name("down")
    map_file = tmp_path / "down.yaml"
    map_file.write_text(map_text(name, VOLUME_MAP))
    assert run_cli("apply", str(map_file)).returncode == 0
    docker_client.containers.get(f"{name}.app").exec_run(["sh", "-c", "echo precious > /data/file"], user="2000")
    result = run_cli("down", str(map_file))
    assert result.returncode == 0, result.stderr
    assert not docker_client.containers.list(all=True, filters={"name": f"{name}.app"})
    assert docker_client.volumes.get(f"{name}.data")  # the volume stays
    assert docker_client.containers.get(f"{name}.data.init")  # and the record that it is prepared
    # Bring it back: the data is still there, and the volume is not prepared again.
    init_id = container_id(docker_client, f"{name}.data.init")
    assert run_cli("apply", str(map_file)).returncode == 0
    out = docker_client.containers.get(f"{name}.app").exec_run(["cat", "/data/file"])
    assert out.output == b"precious\n"
    assert container_id(docker_client, f"{name}.data.init") == init_id
    # --volumes removes the data too.
    assert run_cli("down", "--volumes", str(map_file)).returncode == 0
    assert not [v for v in docker_client.volumes.list() if v.name == f"{name}.data"]
    assert not docker_client.containers.list(all=True, filters={"name": name})


SHARES_MAP = """\
app:
  image: IMAGE
  shares: /cache
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"]}
"""


def _anonymous_volume(docker_client: Any, container: str, path: str) -> str:
    mounts = docker_client.api.inspect_container(container)["Mounts"]
    (mount,) = [m for m in mounts if m["Destination"] == path]
    return str(mount["Name"])


def test_down_removes_anonymous_volumes_only_with_volumes(
    engine: DockerEngine, docker_client: Any, tmp_path: Path
) -> None:
    """A container's anonymous volumes (`shares`, an image's VOLUME) can never be mounted again once the
    container is gone: `down --volumes` removes them with it, `down` leaves them (as docker compose)."""
    name = unique_map_name("anon")
    map_file = tmp_path / "anon.yaml"
    map_file.write_text(map_text(name, SHARES_MAP))
    assert run_cli("apply", str(map_file)).returncode == 0
    kept = _anonymous_volume(docker_client, f"{name}.app", "/cache")
    result = run_cli("down", str(map_file))
    assert result.returncode == 0, result.stderr
    assert docker_client.volumes.get(kept)  # plain down: the data is still on the engine
    docker_client.volumes.get(kept).remove()  # (this test's own volume)
    assert run_cli("apply", str(map_file)).returncode == 0
    gone = _anonymous_volume(docker_client, f"{name}.app", "/cache")
    result = run_cli("down", "--volumes", "--json", str(map_file))
    assert result.returncode == 0, result.stderr
    assert not [v for v in docker_client.volumes.list() if v.name == gone]


def test_changing_owner_or_mode_prepares_the_volume_again(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("owner")
    text = map_text(name, VOLUME_MAP)
    apply(engine, load(text))
    changed = text.replace("user: 2000", "user: 3000").replace('permissions: "750"', "permissions: u=rwx,g=,o=")
    plan = plan_for(engine, load(changed))
    assert ops(plan) == {f"{name}.data.init": "run", f"{name}.app": "recreate"}
    apply(engine, load(changed))
    out = docker_client.containers.get(f"{name}.app").exec_run(["stat", "-c", "%u:%g %A", "/data"])
    assert out.output.decode().strip() == "3000:3000 drwx------"
    assert plan_for(engine, load(changed)).in_sync


def test_a_failed_recreate_leaves_the_old_container_running(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("failrec")
    text = map_text(name, 'app:\n  image: IMAGE\n  stop_timeout: 1\n  create_options: {command: [sh, -c, "TRAP"]}\n')
    apply(engine, load(text))
    old_id = container_id(docker_client, f"{name}.app")
    # The engine refuses to create a container sharing the network stack of a container that does not exist.
    broken = text.replace("stop_timeout: 1", "stop_timeout: 1\n  network_mode: /no-such-container-anywhere")
    done = converge(engine, desired_state(load(broken)))
    assert not done.ok
    [failure] = done.result.failed
    assert "the old container keeps running" in (failure.error or "")
    old = docker_client.api.inspect_container(f"{name}.app")
    assert old["Id"] == old_id
    assert old["State"]["Running"]
    assert not docker_client.containers.list(all=True, filters={"name": f"{name}.app..next"})


CRASH_MAP = """\
base:
  image: IMAGE
  attaches: data
  user: 2000
  permissions: u=rwX,g=rX,o=
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], environment: {V: "1"}}
front:
  image: IMAGE
  links: base
  uses: data
  stop_timeout: 1
  create_options: {command: [sh, -c, "TRAP"], environment: {V: "1"}}
volumes:
  data: /data
"""


@pytest.mark.timeout(900)
def test_a_crash_at_any_step_converges_on_the_next_run(docker_client: Any, tmp_path: Path) -> None:
    """Kill the executor after each step boundary — of a cold apply, and of an update that recreates both
    containers — then run apply again: it must converge with no duplicate containers, no leftover
    temporary names and no lost volume data."""
    name = unique_map_name("crash")
    map_file = tmp_path / "crash.yaml"
    original = map_text(name, CRASH_MAP)
    updated = original.replace('V: "1"', 'V: "2"')
    expected = sorted([f"{name}.base", f"{name}.front", f"{name}.data.init"])

    def check_converged(text: str) -> None:
        map_file.write_text(text)
        healed = run_cli("apply", str(map_file))
        assert healed.returncode == 0, healed.stderr
        assert run_cli("plan", "--detailed-exitcode", str(map_file)).returncode == 0
        # The plain list (no inspects: others' containers come and go); link aliases are names too.
        listed = docker_client.api.containers(all=True, filters={"name": name})
        names = sorted(n[1:] for c in listed for n in c["Names"] if n.count("/") == 1 and n[1:].startswith(name))
        assert names == expected

    crashes = {"cold": 0, "update": 0}
    for scenario, before, after in (("cold", None, original), ("update", original, updated)):
        for crash_after in range(1, 60):
            if before is None:
                map_file.write_text(original)
                run_cli("down", "--volumes", str(map_file))
            else:
                check_converged(before)
                base = docker_client.containers.get(f"{name}.base")
                base.exec_run(["sh", "-c", "echo kept > /data/mark"], user="2000")
            map_file.write_text(after)
            crashed = run_cli("apply", str(map_file), crash_after=crash_after)
            if crashed.returncode == 0:
                break  # the change has fewer step boundaries than this: all of them were covered
            assert crashed.returncode == 137, crashed.stderr
            crashes[scenario] += 1
            check_converged(after)
            if before is not None:
                out = docker_client.containers.get(f"{name}.front").exec_run(["cat", "/data/mark"])
                assert out.output == b"kept\n"  # the attached volume survived every crash
    # A cold apply has at least: volume, init, 2 containers (create + start each); an update recreates both
    # containers in several steps each.
    assert crashes["cold"] >= 6, crashes
    assert crashes["update"] >= 8, crashes
