"""Observing the engine: the read-only calls that fetch the observed state for a desired state.

Cheap by construction: one list per kind (containers, images, volumes, networks), then one inspect per
container that matters (ours by label, or holding one of our names), one inspect per distinct image in use,
and `top` plus an inspect of each exec instance only for running containers that have exec commands; one
inspect per network of ours (the engine's network list leaves `Containers` empty, and the planner must
know who is attached before it recreates a network); an inspect by name of each container outside the
maps that a map names in `network_mode` (the engine stores its id). Parsing is
`reconciler.plan.observed`'s job.

The container inspects — the bulk of a no-op `apply` — run on a few threads at once (`INSPECT_THREADS`):
each is a round trip that waits on the engine, and the engine answers them in parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from reconciler.plan import naming
from reconciler.plan.observed import ObservedState, observed_state, parse_exec, parse_processes
from reconciler.plan.resources import DesiredState

from .engine import Json

INSPECT_THREADS = 8  # below the engine client's connection pool (10), so no request waits for a connection


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
    def inspect_exec(self, exec_id: str) -> Json | None: ...


def observe(
    engine: EngineReader,
    desired: DesiredState,
    *,
    all_maps: bool = False,
    look_at: Collection[str] | None = None,
) -> ObservedState:
    """Fetch what the engine has that the desired state cares about (`all_maps`: every object we own).
    `look_at`: inspect only these containers (with their replacements and whatever holds their names) —
    what a plan of a few targets reads (`plan.planner.observed_scope`); None: all that matter."""
    summaries = engine.list_containers()
    looked = summaries if look_at is None else [s for s in summaries if _named(s, look_at)]
    containers = _containers(engine, looked, desired, all_maps)
    processes: dict[str, tuple[str, ...]] = {}
    execs: dict[str, tuple[tuple[str, ...], ...]] = {}
    for container in containers:
        spec = desired.containers.get(str(container.get("Name", "")).lstrip("/"))
        if spec is not None and spec.exec_commands and (container.get("State") or {}).get("Running"):
            top = engine.top(container["Id"])
            if top is not None:
                processes[container["Id"]] = parse_processes(top)
            execs[container["Id"]] = _running_execs(engine, container)
    volumes: list[Mapping[str, Any]] = [
        v for v in engine.list_volumes() if _relevant(v.get("Labels"), v["Name"], desired, all_maps)
    ]
    networks: list[Mapping[str, Any]] = [
        _with_endpoints(engine, n)
        for n in engine.list_networks()
        if _relevant(n.get("Labels"), n["Name"], desired, all_maps)
    ]
    images = _images(engine, desired, containers)
    peers = _peers(engine, desired)
    return observed_state(containers, images, volumes, networks, processes, execs, peers, summaries)


def _containers(
    engine: EngineReader, summaries: Sequence[Mapping[str, Any]], desired: DesiredState, all_maps: bool
) -> list[Mapping[str, Any]]:
    """Inspects of our containers, of any container holding one of our names (a stranger), and of the
    containers of the compose projects that imported maps came from (`adopt` takes them over)."""
    wanted_names = set(desired.containers) | set(desired.inits)
    projects = {s.compose_service[0] for s in desired.containers.values() if s.compose_service is not None}
    ids = []
    for summary in summaries:
        names = [n.lstrip("/") for n in summary.get("Names") or []]
        labels = summary.get("Labels") or {}
        ours = _ours(labels, desired, all_maps)
        compose = naming.compose_service(labels)
        if ours or any(n in wanted_names for n in names) or (compose is not None and compose[0] in projects):
            ids.append(str(summary["Id"]))
    # None: removed between list and inspect, so it is simply not there
    return [data for data in fetch_all(engine.inspect_container, ids) if data is not None]


def _named(summary: Mapping[str, Any], names: Collection[str]) -> bool:
    """The listed container has one of `names`, or is the replacement of one."""
    return any(
        n.lstrip("/") in names or n.lstrip("/").removesuffix(naming.REPLACEMENT_SUFFIX) in names
        for n in summary.get("Names") or []
    )


def fetch_all(fetch: Callable[[str], Json | None], idents: Sequence[str]) -> list[Json | None]:
    """`fetch` of each ident, in order, up to `INSPECT_THREADS` at once; the first error is raised."""
    if len(idents) < 2:
        return [fetch(i) for i in idents]
    with ThreadPoolExecutor(min(INSPECT_THREADS, len(idents)), thread_name_prefix="observe") as pool:
        return list(pool.map(fetch, idents))


def _images(
    engine: EngineReader, desired: DesiredState, containers: list[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Inspects of the images the maps name (by reference) and of those the containers run (by id)."""
    tags: dict[str, str] = {}
    for image in engine.list_images():
        for tag in image.get("RepoTags") or []:
            tags[tag] = image["Id"]
    needed = {ref: tags.get(ref) for ref in desired.images}
    for ref, image_id in needed.items():
        if image_id is None:
            # Written in full (docker.io/library/…) or by digest: the engine normalises what its tag list does not.
            data = engine.inspect_image(ref)
            if data is not None:
                needed[ref] = str(data["Id"])
    needed_ids = {i for i in needed.values() if i} | {c["Image"] for c in containers if c.get("Image")}
    by_id: dict[str, dict[str, Any]] = {}
    for image_id in sorted(needed_ids):
        data = engine.inspect_image(image_id)
        if data is not None:
            by_id[image_id] = data
    images = {ref: by_id[i] for ref, i in needed.items() if i is not None and i in by_id}
    for image_id, data in by_id.items():
        images.setdefault(image_id, data)
    return images


def _running_execs(engine: EngineReader, container: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    running = []
    for exec_id in container.get("ExecIDs") or ():
        data = engine.inspect_exec(exec_id)
        argv = parse_exec(data) if data is not None else None
        if argv is not None:
            running.append(argv)
    return tuple(running)


def _peers(engine: EngineReader, desired: DesiredState) -> dict[str, str]:
    """Containers outside the maps named by `network_mode: container:<name>`, by name → id."""
    names = {
        mode.removeprefix("container:")
        for spec in desired.containers.values()
        if (mode := spec.network_mode or "").startswith("container:")
    }
    peers = {}
    for name in sorted(names - set(desired.containers)):
        data = engine.inspect_container(name)
        if data is not None:
            peers[name] = str(data["Id"])
    return peers


def _relevant(labels: Mapping[str, str] | None, name: str, desired: DesiredState, all_maps: bool) -> bool:
    labels = labels or {}
    if _ours(labels, desired, all_maps):
        return True
    return name in desired.volumes or name in desired.networks or name in desired.external_volumes


def _with_endpoints(engine: EngineReader, network: Json) -> Json:
    """The network as inspect answers it (with `Containers`) when it is ours; a stranger is never changed,
    so its list entry is enough."""
    if not naming.owned(network.get("Labels")):
        return network
    return engine.inspect_network(network["Id"]) or network


def _ours(labels: Mapping[str, str] | None, desired: DesiredState, all_maps: bool) -> bool:
    """Ours for this desired state's client: of its maps, or (`all_maps`) of any map."""
    if naming.client_of(labels) != desired.client:
        return False
    return naming.owned(labels) if all_maps else naming.owned_by(labels, desired.maps)
