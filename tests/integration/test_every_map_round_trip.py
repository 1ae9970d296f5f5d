"""Every map the project ships (tests/maps/, config/) plans empty right after `apply` on the real engine.

The maps name images, users, host paths and ports of real sites (nginx, registry.example.com, /var/lib/site,
port 80). To run them here, each map is loaded unchanged under a prefixed name and its desired state is then
sandboxed: every image becomes one local image that stays running, host paths move under the test's
folder, published ports move to free ports on 127.0.0.1, healthchecks and exec commands become ones the
image can run, and user names the image lacks become its `app` user. Everything else — mounts, attached
and shared volumes, `uses`, links, networks and aliases, network modes, hostnames, environment, limits,
restart policies — reaches the engine as the map says, and must read back as in sync.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.executor.converge import converge
from reconciler.executor.engine import DockerEngine
from reconciler.executor.observe import observe
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.planner import plan_update
from reconciler.plan.render import render_plan
from reconciler.plan.resources import ContainerSpec, DesiredState, ExecSpec, ImageSpec, Kind, Mount, PortSpec
from tests.conftest import SESSION, TEST_IMAGE
from tests.integration.engine_helpers import ROOT, TRAP, build_image, unique_map_name

MAPS = sorted(
    p.relative_to(ROOT)
    for pattern in ("tests/maps/**/*.yaml", "tests/maps/**/*.yml", "config/**/*.yaml", "config/**/*.yml")
    for p in ROOT.glob(pattern)
)
# Shipped maps that cannot be deployed, and the message that says why (checked: when one of them becomes
# deployable, its test fails until it is taken off this list).
UNDEPLOYABLE = {
    "tests/maps/compat/dependency_graph.yaml": "provides no volumes to use",  # a graph fixture of docker-map's
    "tests/maps/compat/map_data_2.yaml": "interface 'private' is not an IP address",  # needs clients
}
USERS = {"root", "app", "nobody", "0", "2000", "65534"}  # what the test image's /etc/passwd knows


@pytest.fixture(scope="module")
def running_image(docker_client: Any) -> str:
    tag = f"{SESSION}-everymap:1"
    build_image(docker_client, tag, f'FROM {TEST_IMAGE}\nCMD ["sh", "-c", "{TRAP}"]\n')
    return tag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prefixed(path: Path, prefix: str) -> str:
    """The map's text under a unique name (its own `name:` or, as the loader does, the file name)."""
    text = path.read_text()
    pattern = re.compile(r"^name:\s*(\S+)\s*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda m: f"name: {prefix}-{m.group(1)}", text, count=1)
    return f"name: {prefix}-{path.stem}\n{text}"


def _user(user: str | None) -> str | None:
    if user is None:
        return None
    name, _, group = user.partition(":")
    return user if name in USERS and (not group or group in USERS) else "app"


def _sandboxed(spec: ContainerSpec, image: str, root: Path) -> ContainerSpec:
    def mount(m: Mount) -> Mount:
        if m.type != "bind":
            return m
        source = root / m.source.lstrip("/")
        source.mkdir(parents=True, exist_ok=True)
        return dataclasses.replace(m, source=str(source))

    def port(p: PortSpec) -> PortSpec:
        return p if p.host_port is None else PortSpec(p.container_port, str(_free_port()), "127.0.0.1")

    check = dict(spec.healthcheck or {})
    if check.get("Test") and tuple(check["Test"]) != ("NONE",):
        check["Test"] = ("CMD", "true")
    return dataclasses.replace(
        spec,
        image=image,
        command=None,
        entrypoint=None,
        user=_user(spec.user),
        mounts=tuple(mount(m) for m in spec.mounts),
        ports=tuple(port(p) for p in spec.ports),
        healthcheck=tuple(sorted(check.items())) if spec.healthcheck is not None else None,
        exec_commands=tuple(
            ExecSpec(("sleep", f"36{i:02d}"), None, e.policy) for i, e in enumerate(spec.exec_commands)
        ),
        stop_timeout=1,
    )


def _sandbox(desired: DesiredState, image: str, root: Path) -> DesiredState:
    image_id = ImageSpec(image).id
    deps = {
        rid: frozenset(image_id if d.kind is Kind.IMAGE else d for d in ds)
        for rid, ds in desired.depends_on.items()
        if rid.kind is not Kind.IMAGE
    }
    deps[image_id] = frozenset()
    return dataclasses.replace(
        desired,
        containers={n: _sandboxed(s, image, root) for n, s in desired.containers.items()},
        inits={n: dataclasses.replace(i, image=image, owner=_user(i.owner)) for n, i in desired.inits.items()},
        images={image: ImageSpec(image)},
        depends_on=deps,
    )


def _load_and_resolve(full: Path, prefix: str) -> None:
    problems = desired_state(combine_maps([load_map_text(_prefixed(full, prefix), str(full))])).problems
    if problems:
        raise ValueError(problems[0][1])


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    name = unique_map_name("every")
    yield name
    for c in docker_client.api.containers(all=True):
        if c["Names"][0].lstrip("/").startswith(name + "-"):
            docker_client.api.remove_container(c["Id"], force=True, v=True)
    for v in docker_client.volumes.list():
        if v.name.startswith(name + "-"):
            v.remove(force=True)
    for n in docker_client.networks.list():
        if n.name.startswith(name + "-"):
            n.remove()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", MAPS, ids=[str(p) for p in MAPS])
def test_every_shipped_map_plans_empty_after_apply(
    path: Path, prefix: str, running_image: str, engine: DockerEngine, tmp_path: Path
) -> None:
    full = ROOT / path
    if str(path) in UNDEPLOYABLE:
        with pytest.raises(Exception, match=re.escape(UNDEPLOYABLE[str(path)])):
            _load_and_resolve(full, prefix)
        return
    maps = combine_maps([load_map_text(_prefixed(full, prefix), str(full))])
    desired = _sandbox(desired_state(maps), running_image, tmp_path)
    assert not desired.problems, desired.problems
    done = converge(engine, desired)
    assert done.ok, [r.error for r in done.result.failed] + [b.message for b in done.plan.blocked]
    plan = plan_update(desired, observe(engine, desired))
    assert plan.in_sync, render_plan(plan)
    ids = {c["Id"] for c in engine.list_containers() if c["Names"][0].lstrip("/").startswith(prefix + "-")}
    assert converge(engine, desired).ok
    assert ids == {c["Id"] for c in engine.list_containers() if c["Names"][0].lstrip("/").startswith(prefix + "-")}
