"""An engine's inspect answers as plain data (`EngineSnapshot`), and `synthesize`: the engine that did
exactly what a desired state says.

The planner's contract is "a host that matches the maps gives an empty plan". `synthesize(desired)` plays
that host — every image, network, volume, prepared volume init and container, all running — so a test can
change one thing in it (the dicts are fresh copies) and see the plan the change makes: `snapshot.observed()`
parses it as the executor's observation would. `FakeEngine` starts from a snapshot and keeps it current.
Everything is deterministic (ids are hashes of names): two syntheses give equal JSON.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.executor.engine import Json
from reconciler.plan.observed import ObservedState, observed_state
from reconciler.plan.resources import DesiredState

from .containers import container_json
from .ids import container_id
from .images import image_json
from .resources import init_json, network_json, volume_json
from .states import top_lines


@dataclass
class EngineSnapshot:
    """The inspect answers `observed_state` takes; tests change them, then call `observed()`."""

    containers: list[Json] = field(default_factory=list)
    images: dict[str, Json] = field(default_factory=dict)
    volumes: list[Json] = field(default_factory=list)
    networks: list[Json] = field(default_factory=list)
    processes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Running exec instances by container id, argv as sent (the engine's `ExecIDs` + `GET /exec/{id}/json`).
    execs: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # Containers outside the maps that a map names (`network_mode: container:vpn`), by name → id.
    peers: dict[str, str] = field(default_factory=dict)

    def observed(self) -> ObservedState:
        containers: list[Mapping[str, Any]] = list(self.containers)
        volumes: list[Mapping[str, Any]] = list(self.volumes)
        networks: list[Mapping[str, Any]] = list(self.networks)
        return observed_state(containers, self.images, volumes, networks, self.processes, self.execs, self.peers)

    def container(self, name: str) -> Json:
        """The inspect of the container named `name` (to change it in place)."""
        return next(c for c in self.containers if c["Name"] == f"/{name}")

    def drop_container(self, name: str) -> None:
        self.containers = [c for c in self.containers if c["Name"] != f"/{name}"]

    def copy(self) -> EngineSnapshot:
        return copy.deepcopy(self)


def synthesize(
    desired: DesiredState,
    *,
    images: Mapping[str, Json] | None = None,
    containers: Iterable[str] | None = None,
) -> EngineSnapshot:
    """An engine holding exactly what `desired` says: every image, network, volume, prepared init and container
    (only those named in `containers`, if given), all running. `images` overrides the default image per ref."""
    images = dict(images or {})
    for ref in desired.images:
        images.setdefault(ref, image_json(ref))
    for spec in desired.containers.values():
        images.setdefault(spec.image, image_json(spec.image))
    snapshot = EngineSnapshot(images=images)
    wanted = set(desired.containers) if containers is None else set(containers)
    for name, spec in sorted(desired.containers.items()):
        if name not in wanted:
            continue
        snapshot.containers.append(container_json(spec, image=images[spec.image], providers=desired.containers))
        running = [line for c in spec.exec_commands if c.policy == "restart" for line in top_lines(c.cmd)]
        if running:
            snapshot.execs[container_id(name)] = tuple(
                tuple(shlex.split(c.cmd)) if isinstance(c.cmd, str) else tuple(c.cmd)
                for c in spec.exec_commands
                if c.policy == "restart"
            )
            snapshot.processes[container_id(name)] = (
                " ".join(spec.command or ()) or "/bin/sh",
                *running,
            )
    for spec in desired.containers.values():
        peer = (spec.network_mode or "").removeprefix("container:")
        if spec.network_mode != peer and peer not in desired.containers:
            snapshot.peers[peer] = container_id(peer)  # running outside the maps, as the map expects
    for init in desired.inits.values():
        snapshot.containers.append(init_json(init))
    for volume in desired.volumes.values():
        snapshot.volumes.append(volume_json(volume))
    for network in desired.networks.values():
        attached = [
            container_id(c.name)
            for c in desired.containers.values()
            if c.name in wanted and any(e.network == network.name for e in c.endpoints)
        ]
        snapshot.networks.append(network_json(network, containers=attached))
    return snapshot
