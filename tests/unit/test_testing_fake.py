"""`reconciler.testing` as a user meets it: maps applied through the Python API to the shipped `FakeEngine`.

What a user would write to test their maps without an engine — load a map, apply it, assert the plan is in
sync, assert which containers exist and what a change would recreate — and the engine's refusals the fake
must share (a taken name, removing a running container). The images are declared with defaults of their own
(environment, command, healthcheck, exposed ports, volumes, user): a fake that did not merge them into what
it stores, as the engine does, would show drift right after the apply. The README's example
("Testing your maps without an engine") is run here too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.api import ContainerMap, MappingDockerClient, load_map, load_map_file
from reconciler.executor.errors import Conflict, NotFound
from reconciler.testing import FakeEngine

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"
EXAMPLE_IMAGE = "reconciler-example/busybox:latest"
# An image with defaults in every field the engine merges into a container made from it.
RICH: dict[str, Any] = {
    "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "APP_MODE=image-default"],
    "cmd": ["sh", "-c", "sleep infinity"],
    "user": "nobody",
    "exposed": ["8080/tcp"],
    "volumes": ["/cache"],
    "healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3},
    "stop_signal": "SIGQUIT",
}
DEPLOYABLE = [
    EXAMPLE,
    *sorted((ROOT / "config" / "site").glob("*.yaml")),
    ROOT / "tests" / "maps" / "every_key.yaml",
    ROOT / "tests" / "maps" / "graph_site.yaml",
    *sorted((ROOT / "tests" / "maps" / "wild").glob("*.yaml")),
]


def configs(container_map: ContainerMap) -> list[str]:
    return [name for name, config in container_map.containers.items() if not config.abstract]


def deployed(container_map: ContainerMap, **images: dict[str, Any]) -> tuple[FakeEngine, MappingDockerClient]:
    """The map started on a fake engine holding its images (each with `RICH`'s defaults unless given)."""
    engine = FakeEngine(images={container_map.get_image(c): images.get(c, RICH) for c in configs(container_map)})
    client = MappingDockerClient(container_map, engine=engine, health_gate=5)
    result = client.startup(configs(container_map))
    assert result.ok, result.actions
    return engine, client


def changes(plan_result: Any) -> list[tuple[str, str]]:
    return [(a.resource.name, a.op.value) for a in plan_result.plan.actions]


def test_a_map_applied_to_the_fake_is_in_sync_and_its_containers_run() -> None:
    engine, client = deployed(load_map_file(EXAMPLE))
    assert client.plan().plan.in_sync
    assert engine.running() == {"example.web", "example.app"}
    # The attached volumes were prepared by their one-shot inits, which ran and exited.
    assert engine.names() - engine.running() == {"example.app_log.init", "example.app_socket.init"}
    app = engine.container("example.app")["Config"]
    assert "LANG=C.UTF-8" in app["Env"]  # the image's environment merged in…
    assert "APP_MODE=example" in app["Env"]  # …with the map's value winning
    assert engine.container("example.app")["State"]["Health"]["Status"] == "healthy"  # the image's healthcheck
    assert client.update(configs(load_map_file(EXAMPLE))).actions == []  # a second apply does nothing


@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_deployable_map_of_the_project_is_in_sync_once_applied(path: Path) -> None:
    _engine, client = deployed(load_map_file(path))
    plan = client.plan().plan
    assert plan.in_sync, [(a.resource.name, a.op.value, a.reasons) for a in plan.actions]


def test_a_change_to_the_map_recreates_exactly_that_container() -> None:
    engine, _client = deployed(load_map_file(EXAMPLE))
    before = {name: engine.container(name)["Id"] for name in ("example.web", "example.app")}
    changed = load_map(EXAMPLE.read_text().replace("APP_MODE: example", "APP_MODE: staging"))
    client = MappingDockerClient(changed, engine=engine, health_gate=5)
    plan = client.plan()
    assert changes(plan) == [("example.app", "recreate")]
    [action] = plan.plan.actions
    assert (action.reasons[0].field, action.reasons[0].wanted, action.reasons[0].found) == (
        "APP_MODE",
        "staging",
        "example",
    )

    assert client.update(["web", "app"]).actions == [("example.app", "recreate", "done")]
    assert engine.container("example.web")["Id"] == before["example.web"]  # untouched
    assert engine.container("example.app")["Id"] != before["example.app"]
    assert "APP_MODE=staging" in engine.container("example.app")["Config"]["Env"]
    assert client.plan().plan.in_sync


def test_a_newer_image_under_the_same_tag_recreates_its_containers_on_update_with_pull() -> None:
    engine, client = deployed(load_map_file(EXAMPLE))
    engine.add_image(EXAMPLE_IMAGE, **RICH, ident="sha256:" + "e" * 64, registry=True)  # pushed, not pulled yet
    assert client.plan().plan.in_sync  # the engine still has the old image under the tag
    result = client.update(["web", "app"], pull=True)
    assert set(result.actions) == {
        ("reconciler-example/busybox:latest", "pull", "done"),
        ("example.app", "recreate", "done"),
        ("example.web", "recreate", "done"),
    }
    assert engine.container("example.web")["Image"] == "sha256:" + "e" * 64


def test_an_image_is_found_as_the_engine_finds_it_nginx_is_nginx_latest() -> None:
    engine = FakeEngine(images={"nginx": {"env": ["NGINX_VERSION=1.27.3"], "cmd": ["nginx", "-g", "daemon off;"]}})
    client = MappingDockerClient(
        load_map("name: m\nweb: {image: nginx}\nold: {image: docker.io/library/nginx}\n"), engine=engine
    )
    assert client.startup(["web", "old"]).ok
    assert engine.ops("pull") == []  # the engine has it: nothing pulled
    assert "NGINX_VERSION=1.27.3" in engine.container("m.web")["Config"]["Env"]
    assert engine.container("m.old")["Config"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert client.plan().plan.in_sync


def test_the_fake_refuses_a_taken_name_and_what_it_does_not_have_like_the_engine() -> None:
    engine, _client = deployed(load_map_file(EXAMPLE))
    with pytest.raises(Conflict, match=r'name "/example.web" is already in use'):
        engine.create_container("example.web", {"image": EXAMPLE_IMAGE})
    with pytest.raises(Conflict):
        engine.rename(engine.container("example.app")["Id"], "example.web")
    with pytest.raises(NotFound, match="No such image"):
        engine.create_container("example.other", {"image": "not-pulled:1"})
    with pytest.raises(NotFound, match="network nowhere not found"):
        engine.create_container("example.other", {"image": EXAMPLE_IMAGE, "networking": {"nowhere": {}}})
    assert "example.other" not in engine.names()


def test_the_fake_refuses_to_remove_a_running_container_without_force() -> None:
    engine, _client = deployed(load_map_file(EXAMPLE))
    with pytest.raises(Conflict, match="cannot remove a running container"):
        engine.remove_container("example.web")
    assert "example.web" in engine.running()
    engine.stop("example.web", timeout=1)
    engine.remove_container("example.web")  # stopped: it goes
    engine.remove_container("example.app", force=True)  # running, forced: it goes
    engine.remove_container("example.app")  # gone already: removing is idempotent, as the port makes it
    assert engine.names() == {"example.app_log.init", "example.app_socket.init"}


def test_shutdown_removes_the_maps_containers_and_the_plan_then_creates_them_again() -> None:
    engine, client = deployed(load_map_file(EXAMPLE))
    assert client.shutdown(["web", "app"]).ok
    assert {"example.web", "example.app"}.isdisjoint(engine.names())
    planned = changes(client.plan())
    assert ("example.app", "create") in planned
    assert ("example.web", "create") in planned


def test_an_engine_is_given_either_as_the_port_or_as_a_client_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        MappingDockerClient(load_map_file(EXAMPLE), "unix:///nowhere.sock", engine=FakeEngine())


def readme_example() -> str:
    """The Python block of the README's "Testing your maps without an engine"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing your maps without an engine", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "the README section has no python example"
    return found.group(1)


def test_the_readmes_example_runs_and_its_tests_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the example names config/example.yaml as a user's tests name their map
    namespace: dict[str, Any] = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test()
