"""Zero false drift, one named case each (issue: what `plan` expects must be what the engine stores).

Every case is a map that used to look drifted right after `apply` — a recreate on every reconcile under the
daemon. Each test applies it to the real engine, then asserts that `plan` is empty and that a second apply
keeps every container id. The engine's own normalisations are listed in shared/notes/engine-facts.md.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.executor.engine import DockerEngine
from reconciler.plan.drift import Reason
from reconciler.plan.planner import PlanOptions
from reconciler.plan.render import render_plan
from tests.conftest import SESSION, TEST_IMAGE
from tests.integration.engine_helpers import (
    apply,
    build_image,
    load,
    map_text,
    plan_for,
    unique_map_name,
)

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def health_image(docker_client: Any) -> str:
    """An image with a HEALTHCHECK, an ENV and a VOLUME: the engine merges these into every container."""
    tag = f"{SESSION}-falsedrift-health:1"
    build_image(
        docker_client,
        tag,
        f"FROM {TEST_IMAGE}\nENV FROM_IMAGE=1\nVOLUME /image-data\n"
        "HEALTHCHECK --interval=2s --timeout=3s --retries=2 CMD true\n",
    )
    return tag


def _names(docker_client: Any) -> dict[str, str]:
    return {c["Names"][0].lstrip("/"): c["Id"] for c in docker_client.api.containers(all=True)}


def _ids(docker_client: Any, prefix: str) -> dict[str, str]:
    return {name: ident for name, ident in _names(docker_client).items() if name.startswith(prefix + ".")}


def _round_trip(engine: DockerEngine, docker_client: Any, text: str, tmp_path: Path) -> None:
    """apply → plan is empty → apply again changes no container id."""
    maps = load(text, tmp_path)
    name = next(iter(maps)).name
    apply(engine, maps)
    before = _ids(docker_client, name)
    assert before, "the map created no container"
    plan = plan_for(engine, maps)
    assert plan.in_sync, render_plan(plan)
    apply(engine, maps)
    assert _ids(docker_client, name) == before


@pytest.fixture
def cleanup(engine: DockerEngine, docker_client: Any) -> Iterator[list[str]]:
    """Map names (and outside containers) to remove after the test, volumes included."""
    names: list[str] = []
    yield names
    for name, ident in _names(docker_client).items():
        if any(name == n or name.startswith(n + ".") for n in names):
            docker_client.api.remove_container(ident, force=True, v=True)
    for volume in docker_client.volumes.list():
        if any(volume.name.startswith(n + ".") for n in names):
            volume.remove(force=True)
    for network in docker_client.networks.list():
        if any(network.name.startswith(n + ".") for n in names):
            network.remove()


def _new_map(tag: str, body: str, cleanup: list[str]) -> str:
    name = unique_map_name(tag)
    cleanup.append(name)
    return map_text(name, body)


def test_container_paths_with_trailing_slashes(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    (tmp_path / "cfg").mkdir()
    text = _new_map(
        "slash",
        f"""
        host_root: {tmp_path}/
        volumes: {{cfg: /etc/app/, data: /var//data/}}
        host: {{cfg: cfg/}}
        app:
          image: IMAGE
          binds: {{cfg: ro}}
          attaches: data
          shares: [/var/cache/]
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)


def test_two_links_to_one_container_under_two_aliases(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    """docker-map's MAP_DATA_2 `server` gets `links: [db, [db, database]]` through extends."""
    text = _new_map(
        "twolinks",
        """
        db: {image: IMAGE, stop_timeout: 1, create_options: {command: [sh, -c, "TRAP"]}}
        server:
          image: IMAGE
          links: [db, [db, database]]
          stop_timeout: 1
          create_options: {command: [sh, -c, "TRAP"]}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)
    container = docker_client.api.inspect_container(f"{cleanup[-1]}.server")
    assert len(container["HostConfig"]["Links"]) == 2


def test_partial_healthcheck_on_an_image_with_a_healthcheck(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str], health_image: str
) -> None:
    text = _new_map(
        "health",
        f"""
        interval_only:
          image: /{health_image}
          healthcheck: {{interval: 5s}}
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        no_test:
          image: /{health_image}
          healthcheck: {{retries: 5, timeout: 2s}}
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        switched_off:
          image: /{health_image}
          healthcheck: {{test: NONE}}
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        image_only:
          image: /{health_image}
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)
    kept = docker_client.api.inspect_container(f"{cleanup[-1]}.no_test")["Config"]["Healthcheck"]
    assert kept["Test"] == ["CMD-SHELL", "true"]  # the image's test is kept, as docker-map's maps expect


def test_network_mode_naming_a_container_outside_the_map(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    outside = f"{SESSION}-vpn{_free_port()}"
    cleanup.append(outside)
    docker_client.containers.run(TEST_IMAGE, ["sleep", "3600"], name=outside, detach=True, init=True)
    text = _new_map(
        "netmode",
        f"""
        by_prefix: {{image: IMAGE, network_mode: 'container:{outside}', stop_timeout: 1,
                    create_options: {{command: [sh, -c, "TRAP"]}}}}
        by_slash: {{image: IMAGE, network_mode: '/{outside}', stop_timeout: 1,
                   create_options: {{command: [sh, -c, "TRAP"]}}}}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)


def test_reordering_lists_changes_no_container(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _free_port(), _free_port()
    body = """
        host_root: {root}
        volumes: {{a: /a, b: /b, c: /c, d: /d}}
        host: {{a: a, b: b}}
        one: {{image: IMAGE, stop_timeout: 1, create_options: {{command: [sh, -c, "TRAP"]}}}}
        two: {{image: IMAGE, stop_timeout: 1, create_options: {{command: [sh, -c, "TRAP"]}}}}
        app:
          image: IMAGE
          binds: {binds}
          attaches: {attaches}
          shares: {shares}
          links: {links}
          exposes: {exposes}
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        """
    name = unique_map_name("reorder")
    cleanup.append(name)
    ports = [f"[{first}, {first}, 127.0.0.1]", f"[{second}, {second}, 127.0.0.1]"]
    text = map_text(
        name,
        body.format(
            root=tmp_path,
            binds="[a, b]",
            attaches="[c, d]",
            shares="[/s1, /s2]",
            links="[one, two]",
            exposes=f"[{', '.join(ports)}]",
        ),
    )
    _round_trip(engine, docker_client, text, tmp_path)
    before = _ids(docker_client, name)
    reordered = map_text(
        name,
        body.format(
            root=tmp_path,
            binds="[b, a]",
            attaches="[d, c]",
            shares="[/s2, /s1]",
            links="[two, one]",
            exposes=f"[{', '.join(reversed(ports))}]",
        ),
    )
    plan = plan_for(engine, load(reordered, tmp_path))
    assert plan.in_sync, render_plan(plan)
    assert _ids(docker_client, name) == before


def test_create_and_host_options_that_overlap_modelled_fields(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    """docker-map extends lists given in host_config/create_options; they are neither lost nor a loop."""
    (tmp_path / "extra").mkdir()
    (tmp_path / "cfg").mkdir()
    port, extra_port = _free_port(), _free_port()
    text = _new_map(
        "overlap",
        f"""
        host_root: {tmp_path}
        volumes: {{cfg: /etc/cfg}}
        host: {{cfg: cfg}}
        provider:
          image: IMAGE
          shares: [/provided]
          stop_timeout: 1
          create_options: {{command: [sh, -c, "TRAP"]}}
        app:
          image: IMAGE
          binds: {{cfg: ro}}
          exposes: [[{port}, {port}, 127.0.0.1]]
          stop_timeout: 1
          host_config:
            binds: ["{tmp_path}/extra:/extra:ro"]
            port_bindings: {{{extra_port}: [127.0.0.1, {extra_port}]}}
          create_options:
            command: [sh, -c, "TRAP"]
            ports: [{extra_port}, 9999/udp]
            volumes: [/scratch]
            healthcheck: {{test: [CMD, "true"], interval: 2000000000}}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)
    app = docker_client.api.inspect_container(f"{cleanup[-1]}.app")
    targets = {m["Destination"] for m in app["Mounts"]}
    assert {"/etc/cfg", "/extra", "/scratch"} <= targets  # neither the map's bind nor the option's is lost
    assert set(app["HostConfig"]["PortBindings"]) == {f"{port}/tcp", f"{extra_port}/tcp"}


def test_exec_commands_with_quotes_and_a_shell_exec(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    text = _new_map(
        "exec",
        """
        app:
          image: IMAGE
          stop_timeout: 1
          exec_commands:
            - "sh -c 'exec sleep 3601'"
            - {cmd: [sh, -c, "while :; do sleep 1; done # a 'quoted' comment"]}
          create_options: {command: [sh, -c, "TRAP"]}
        """,
        cleanup,
    )
    _round_trip(engine, docker_client, text, tmp_path)
    plan = plan_for(engine, load(text, tmp_path))
    assert plan.in_sync, render_plan(plan)  # also after the engine has seen the commands run a while


def test_a_consumer_left_with_a_stale_provider_volume_is_recreated(
    engine: DockerEngine, docker_client: Any, tmp_path: Path, cleanup: list[str]
) -> None:
    """`uses: <config>`: after an interrupted cascade the consumer still mounts the old provider's anonymous
    volume; the plan must say so (it used to say "in sync" forever)."""
    text = _new_map(
        "stale",
        """
        provider:
          image: IMAGE
          shares: [/provided]
          stop_timeout: 1
          create_options: {command: [sh, -c, "TRAP"]}
        consumer:
          image: IMAGE
          uses: provider
          stop_timeout: 1
          create_options: {command: [sh, -c, "TRAP"]}
        """,
        cleanup,
    )
    maps = load(text, tmp_path)
    apply(engine, maps)
    name = cleanup[-1]
    docker_client.api.remove_container(f"{name}.provider", force=True, v=True)
    apply(engine, maps, PlanOptions(cascade=False))  # the provider comes back with a new volume; no cascade
    plan = plan_for(engine, maps)
    action = next((a for a in plan.actions if a.resource.name == f"{name}.consumer"), None)
    assert action is not None, render_plan(plan)
    assert Reason.VOLUMES_FROM in {d.reason for d in action.reasons}, render_plan(plan)
    apply(engine, maps)
    assert plan_for(engine, maps).in_sync
