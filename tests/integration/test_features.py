"""Map features on the real engine, by what they do (test_every_map_round_trip.py proves each key reads back
in sync; these prove the containers then behave as the map says): networks and their aliases, `shares`
seen through `uses` of a container (volumes_from), `instances`, `exec_commands`, `persistent` containers
and image updates, `extends`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.executor.engine import DockerEngine
from reconciler.plan.planner import PlanOptions
from tests.conftest import TEST_IMAGE
from tests.integration.engine_helpers import (
    apply,
    build_image,
    load,
    map_text,
    ops,
    plan_for,
    unique_map_name,
    wait_for,
)


def sh(client: Any, name: str, script: str) -> tuple[int, str]:
    result = client.containers.get(name).exec_run(["sh", "-c", script])
    return int(result.exit_code), result.output.decode()


def test_a_network_connects_its_containers_under_their_aliases(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("net")
    maps = load(
        map_text(
            name,
            """\
            networks: {back: {driver: bridge}}
            db:
              image: IMAGE
              stop_timeout: 1
              networks: {back: {aliases: [database]}}
              create_options: {command: [sh, -c, "TRAP"]}
            web:
              image: IMAGE
              stop_timeout: 1
              networks: back
              create_options: {command: [sh, -c, "TRAP"]}
            lone:
              image: IMAGE
              stop_timeout: 1
              create_options: {command: [sh, -c, "TRAP"]}
            """,
        )
    )
    apply(engine, maps)
    network = docker_client.networks.get(f"{name}.back")
    assert {c.name for c in network.containers} == {f"{name}.db", f"{name}.web"}
    assert sh(docker_client, f"{name}.web", "nslookup database 127.0.0.11")[0] == 0  # the alias resolves…
    assert sh(docker_client, f"{name}.lone", "nslookup database 127.0.0.11")[0] != 0  # …only on that network
    assert plan_for(engine, maps).in_sync


def test_shares_reach_a_consumer_through_uses_of_the_container(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("share")
    maps = load(
        map_text(
            name,
            """\
            provider:
              image: IMAGE
              stop_timeout: 1
              shares: [/shared]
              create_options: {command: [sh, -c, "echo from-provider > /shared/note; TRAP"]}
            consumer:
              image: IMAGE
              stop_timeout: 1
              uses: provider
              create_options: {command: [sh, -c, "TRAP"]}
            """,
        )
    )
    done = apply(engine, maps)
    order = [r.action.resource.name for r in done.result.results if r.action.resource.kind.value == "container"]
    assert order.index(f"{name}.provider") < order.index(f"{name}.consumer")
    wait_for(lambda: sh(docker_client, f"{name}.consumer", "cat /shared/note")[1] == "from-provider\n", 10)
    consumer = docker_client.api.inspect_container(f"{name}.consumer")
    provider_id = docker_client.api.inspect_container(f"{name}.provider")["Id"]
    assert consumer["HostConfig"]["VolumesFrom"] in ([provider_id], [f"{name}.provider"])
    # Writes go both ways: it is the same anonymous volume.
    sh(docker_client, f"{name}.consumer", "echo back > /shared/reply")
    assert sh(docker_client, f"{name}.provider", "cat /shared/reply")[1] == "back\n"
    assert plan_for(engine, maps).in_sync


def test_instances_are_containers_of_their_own(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("inst")
    maps = load(
        map_text(
            name,
            """\
            cache:
              image: IMAGE
              stop_timeout: 1
              instances: [a, b]
              create_options: {command: [sh, -c, "TRAP"]}
            """,
        )
    )
    apply(engine, maps)
    for instance in ("a", "b"):
        found = docker_client.api.inspect_container(f"{name}.cache.{instance}")
        assert found["State"]["Running"]
        assert found["Config"]["Labels"]["io.reconciler.instance"] == instance
    assert not docker_client.containers.list(all=True, filters={"name": f"^/{name}.cache$"})
    docker_client.api.remove_container(f"{name}.cache.b", force=True, v=True)
    assert ops(plan_for(engine, maps)) == {f"{name}.cache.b": "create"}  # one instance, on its own
    apply(engine, maps)
    assert plan_for(engine, maps).in_sync


def test_exec_commands_run_in_the_container_by_their_policy(engine: DockerEngine, docker_client: Any) -> None:
    name = unique_map_name("exec")
    maps = load(
        map_text(
            name,
            """\
            app:
              image: IMAGE
              stop_timeout: 1
              create_options: {command: [sh, -c, "TRAP"]}
              exec_commands:
                - [sh -c 'echo $(id -u) >> /tmp/initial', "2000", initial]
                - [sh -c 'echo ran >> /tmp/restart; exec sleep 3600', null, restart]
            """,
        )
    )
    apply(engine, maps)
    app = f"{name}.app"
    wait_for(lambda: sh(docker_client, app, "cat /tmp/initial")[1] == "2000\n", 10)  # as the given user
    wait_for(lambda: sh(docker_client, app, "cat /tmp/restart")[1] == "ran\n", 10)
    assert plan_for(engine, maps).in_sync  # the restart command runs: nothing to do
    # After a restart of the container, only the `restart` command runs again.
    docker_client.api.restart(app, timeout=1)
    plan = plan_for(engine, maps)
    assert ops(plan) == {app: "exec"}
    apply(engine, maps)
    # /tmp is in the container's own layer, kept across the restart: the restart command ran twice, the
    # initial one once.
    wait_for(lambda: sh(docker_client, app, "cat /tmp/restart")[1] == "ran\nran\n", 10)
    assert sh(docker_client, app, "cat /tmp/initial")[1] == "2000\n"
    assert plan_for(engine, maps).in_sync


def test_a_persistent_container_keeps_its_image_until_asked(
    engine: DockerEngine, docker_client: Any, prefix: str
) -> None:
    tag = f"{prefix}-persist:live"
    first = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL gen=1\n")
    name = unique_map_name("persist")
    body = """\
        db:
          image: TAG
          persistent: true
          stop_timeout: 1
          create_options: {command: [sh, -c, "TRAP"]}
        app:
          image: TAG
          stop_timeout: 1
          create_options: {command: [sh, -c, "TRAP"]}
        """.replace("TAG", tag)
    maps = load(map_text(name, body))
    try:
        apply(engine, maps)
        db_id = docker_client.api.inspect_container(f"{name}.db")["Id"]
        second = build_image(docker_client, tag, f"FROM {TEST_IMAGE}\nLABEL gen=2\n")
        assert second != first
        assert ops(plan_for(engine, maps)) == {f"{name}.app": "recreate"}  # the persistent one is left alone
        apply(engine, maps)
        assert docker_client.api.inspect_container(f"{name}.db")["Id"] == db_id
        assert docker_client.api.inspect_container(f"{name}.db")["Image"] == first
        assert docker_client.api.inspect_container(f"{name}.app")["Image"] == second
        options = PlanOptions(update_persistent=True)
        assert ops(plan_for(engine, maps, options)) == {f"{name}.db": "recreate"}
        apply(engine, maps, options)
        assert docker_client.api.inspect_container(f"{name}.db")["Image"] == second
    finally:
        for config in ("db", "app"):
            docker_client.api.remove_container(f"{name}.{config}", force=True, v=True)
        docker_client.images.remove(tag, force=True)


def test_extends_merges_the_parents_settings(engine: DockerEngine, docker_client: Any, tmp_path: Path) -> None:
    """As docker-map merges: scalars of the base unless the child sets them, lists like `shares` unioned,
    `create_options` dict-updated (shallow: a child's `environment` replaces the base's as a whole)."""
    name = unique_map_name("extends")
    maps = load(
        map_text(
            name,
            """\
            base:
              abstract: true
              image: IMAGE
              stop_timeout: 1
              shares: [/from-base]
              create_options:
                command: [sh, -c, "TRAP"]
                working_dir: /tmp
                environment: {TIER: base, ONLY_IN_BASE: "1"}
            child:
              extends: base
              shares: [/from-child]
              create_options:
                environment: {TIER: child}
            """,
        )
    )
    apply(engine, maps)
    child = docker_client.api.inspect_container(f"{name}.child")
    assert child["State"]["Running"]  # the base's image and command
    assert child["Config"]["WorkingDir"] == "/tmp"  # a create option only the base sets
    assert "TIER=child" in child["Config"]["Env"]
    assert not any(e.startswith("ONLY_IN_BASE=") for e in child["Config"]["Env"])  # shallow update
    assert {m["Destination"] for m in child["Mounts"]} >= {"/from-base", "/from-child"}
    assert not docker_client.containers.list(all=True, filters={"name": f"^/{name}.base$"})  # abstract: none
    assert plan_for(engine, maps).in_sync
