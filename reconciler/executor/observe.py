"""Observing the engine: the read-only calls that fetch the observed state for a desired state.

Cheap by construction: one list per kind (containers, images, volumes, networks), then one inspect per
container that matters (ours by label, or holding one of our names), one inspect per distinct image in use,
`top` only for running containers that have exec commands, and one inspect per network of ours (the
engine's network list leaves `Containers` empty, and the planner must know who is attached before it
recreates a network). Parsing is `reconciler.plan.observed`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.plan import naming
from reconciler.plan.observed import ObservedState, observed_state, parse_processes
from reconciler.plan.resources import DesiredState

from .engine import Json


class EngineReader(Protocol):
    """The read calls observation needs (the engine itself, or the daemon's cached view of it)."""

    def list_containers(self) -> list[Json]: ...
    def inspect_container(self, ident: str) -> Json | None: ...
    def list_images(self) -> list[Json]: ...
    def inspect_image(self, ref: str) -> Json | None: ...
    def list_volumes(self) -> list[Json]: ...
    def list_networks(self) -> list[Json]: ...
    def inspect_network(self, ident: str) -> Json | None: ...
    def top(self, ident: str) -> Json | None: ...


def observe(engine: EngineReader, desired: DesiredState, *, all_maps: bool = False) -> ObservedState:
    """Fetch what the engine has that the desired state cares about (`all_maps`: every object we own)."""
    wanted_names = set(desired.containers) | set(desired.inits)
    containers: list[Mapping[str, Any]] = []
    for summary in engine.list_containers():
        names = [n.lstrip("/") for n in summary.get("Names") or []]
        labels = summary.get("Labels") or {}
        ours = labels.get(naming.LABEL_MANAGED) == "true" and (all_maps or labels.get(naming.LABEL_MAP) in desired.maps)
        if ours or any(n in wanted_names for n in names):
            data = engine.inspect_container(summary["Id"])
            if data is not None:  # removed between list and inspect: it is simply not there
                containers.append(data)

    images: dict[str, dict[str, Any]] = {}
    tags: dict[str, str] = {}
    for image in engine.list_images():
        for tag in image.get("RepoTags") or []:
            tags[tag] = image["Id"]
    by_id: dict[str, dict[str, Any]] = {}
    needed = {ref: tags.get(ref) for ref in desired.images}
    for ref, image_id in needed.items():
        if image_id is None:
            # Written in full (docker.io/library/…) or by digest: the engine normalises what its tag list does not.
            data = engine.inspect_image(ref)
            if data is not None:
                needed[ref] = str(data["Id"])
    needed_ids = {i for i in needed.values() if i} | {c["Image"] for c in containers if c.get("Image")}
    for image_id in sorted(needed_ids):
        data = engine.inspect_image(image_id)
        if data is not None:
            by_id[image_id] = data
    for ref, tagged_id in needed.items():
        if tagged_id is not None and tagged_id in by_id:
            images[ref] = by_id[tagged_id]
    for image_id, data in by_id.items():
        images.setdefault(image_id, data)

    processes: dict[str, tuple[str, ...]] = {}
    for container in containers:
        spec = desired.containers.get(str(container.get("Name", "")).lstrip("/"))
        if spec is not None and spec.exec_commands and (container.get("State") or {}).get("Running"):
            top = engine.top(container["Id"])
            if top is not None:
                processes[container["Id"]] = parse_processes(top)

    volumes: list[Mapping[str, Any]] = [
        v for v in engine.list_volumes() if _relevant(v.get("Labels"), v["Name"], desired, all_maps)
    ]
    networks: list[Mapping[str, Any]] = [
        _with_endpoints(engine, n)
        for n in engine.list_networks()
        if _relevant(n.get("Labels"), n["Name"], desired, all_maps)
    ]
    return observed_state(containers, images, volumes, networks, processes)


def _relevant(labels: Mapping[str, str] | None, name: str, desired: DesiredState, all_maps: bool) -> bool:
    labels = labels or {}
    if labels.get(naming.LABEL_MANAGED) == "true" and (all_maps or labels.get(naming.LABEL_MAP) in desired.maps):
        return True
    return name in desired.volumes or name in desired.networks


def _with_endpoints(engine: EngineReader, network: Json) -> Json:
    """The network as inspect answers it (with `Containers`) when it is ours; a stranger is never changed,
    so its list entry is enough."""
    if (network.get("Labels") or {}).get(naming.LABEL_MANAGED) != "true":
        return network
    return engine.inspect_network(network["Id"]) or network
