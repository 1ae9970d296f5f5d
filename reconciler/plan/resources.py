"""Resources and their desired specs: plain frozen data between the map and the engine.

A map implies four kinds of resources (DESIGN §4): networks, attached volumes, volume inits (the one-shot
container that chowns/chmods an attached volume) and containers. Each has a `ResourceId` and a desired spec
holding everything needed to create it — and a stable hash of that spec, stored as a label, so that any
change to the desired spec is noticed even when no field-by-field rule explains it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any


class Kind(StrEnum):
    NETWORK = "network"
    VOLUME = "volume"
    VOLUME_INIT = "volume-init"
    CONTAINER = "container"
    IMAGE = "image"


@dataclass(frozen=True, order=True)
class ResourceId:
    """`kind` + engine name: unique across everything one run manages."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True)
class Mount:
    """A mount of a container: a host bind (`source` is a host path) or a named volume (`source` is its name)."""

    target: str
    source: str
    type: str  # "bind" | "volume"
    read_only: bool = False


@dataclass(frozen=True)
class PortSpec:
    """One exposed port (`container_port` like `80/tcp`), published when `host_port` is set."""

    container_port: str
    host_port: str | None = None
    host_ip: str | None = None


@dataclass(frozen=True)
class EndpointSpec:
    network: str  # engine name of the network
    aliases: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (container name, alias)
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass(frozen=True)
class ExecSpec:
    cmd: tuple[str, ...] | str
    user: str | None
    policy: str  # "restart" | "initial"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create and run one container instance, in engine terms."""

    name: str
    map: str
    config: str
    instance: str | None
    image: str  # reference (repository:tag)
    hostname: str | None = None
    domainname: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # user labels from create_options (ours are added on create)
    mounts: tuple[Mount, ...] = ()
    anonymous_volumes: tuple[str, ...] = ()  # `shares`
    volumes_from: tuple[str, ...] = ()  # container names
    ports: tuple[PortSpec, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # legacy links: (container name, alias)
    network_mode: str | None = None  # bridge / host / none / container:<name> / a network name
    endpoints: tuple[EndpointSpec, ...] = ()
    healthcheck: tuple[tuple[str, Any], ...] | None = None  # engine Healthcheck fields
    stop_signal: str | None = None
    stop_timeout: int | None = None
    create_extra: tuple[tuple[str, Any], ...] = ()  # other create_options, passed through
    host_extra: tuple[tuple[str, Any], ...] = ()  # other host_config options, passed through
    # Updated in place (no recreate), so not part of the spec hash:
    limits: tuple[tuple[str, Any], ...] = ()  # engine HostConfig names: Memory, CpuShares, …
    restart_policy: tuple[tuple[str, Any], ...] | None = None
    exec_commands: tuple[ExecSpec, ...] = ()
    persistent: bool = False
    start_delay: float | None = None
    # How a newer image for its tag is taken (DESIGN §2): auto / notify / pinned, and when (a window text).
    update: str = "auto"
    update_window: str | None = None
    # Start ordering (`depends_on: {x: healthy}`): containers that must be healthy before this one starts.
    wait_healthy: tuple[str, ...] = ()
    # (compose project, service, container number) this container takes over on `adopt`, for imported maps.
    compose_service: tuple[str, str, int] | None = None

    @property
    def id(self) -> ResourceId:
        return ResourceId(Kind.CONTAINER, self.name)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @cached_property
    def spec_hash(self) -> str:
        """The hash new containers are labelled with: order-free collections sorted, empty values left out
        at every depth (so reordering `binds` or adding a defaulted field to `Mount` changes nothing)."""
        return stable_hash(canonical(self._hashed()))

    @property
    def legacy_spec_hash(self) -> str:
        """The hash reconciler ≤ 0.1 labelled containers with (map order kept, only top-level empties left
        out): still accepted, so upgrading does not recreate containers whose spec did not change."""
        return stable_hash(self._hashed())

    @property
    def spec_hashes(self) -> frozenset[str]:
        """Every label value that means "created from this very spec"."""
        return frozenset((self.spec_hash, self.legacy_spec_hash))

    def _hashed(self) -> dict[str, Any]:
        data = asdict(self)
        # How to run or find it, not what it is: changing these never recreates a container.
        not_hashed = (
            "limits",
            "restart_policy",
            "exec_commands",
            "persistent",
            "start_delay",
            "update",
            "update_window",
            "wait_healthy",
            "compose_service",
        )
        for runtime_only in not_hashed:
            data.pop(runtime_only)
        return data


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    map: str
    config: str  # the config that attaches it
    alias: str
    driver: str = "local"
    driver_options: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> ResourceId:
        return ResourceId(Kind.VOLUME, self.name)

    @cached_property
    def spec_hash(self) -> str:
        return stable_hash(asdict(self))


@dataclass(frozen=True)
class VolumeInitSpec:
    """The one-shot container that prepares an attached volume: `chown -R` and `chmod -R` as root."""

    name: str
    map: str
    config: str
    alias: str
    volume: str
    image: str
    owner: str | None  # `uid:gid` or `name:group` for chown
    permissions: str | None  # chmod notation
    mount_path: str = "/volume"

    @property
    def id(self) -> ResourceId:
        return ResourceId(Kind.VOLUME_INIT, self.name)

    @property
    def command(self) -> tuple[str, ...]:
        steps = []
        if self.owner:
            steps.append(f"chown -R {self.owner} {self.mount_path}")
        if self.permissions:
            steps.append(f"chmod -R {self.permissions} {self.mount_path}")
        return ("sh", "-c", " && ".join(steps))

    @cached_property
    def spec_hash(self) -> str:
        # The image is only a tool to run chown/chmod: a newer one does not make the volume unprepared.
        data = asdict(self)
        data.pop("image")
        return stable_hash(data)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    map: str
    driver: str = "bridge"
    driver_options: tuple[tuple[str, str], ...] = ()
    internal: bool = False
    create_extra: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> ResourceId:
        return ResourceId(Kind.NETWORK, self.name)

    @cached_property
    def spec_hash(self) -> str:
        return stable_hash(asdict(self))


@dataclass(frozen=True)
class ImageSpec:
    """An image reference the desired state needs; pulled when missing (or on request)."""

    ref: str

    @property
    def id(self) -> ResourceId:
        return ResourceId(Kind.IMAGE, self.ref)


ResourceSpec = ContainerSpec | VolumeSpec | VolumeInitSpec | NetworkSpec | ImageSpec


@dataclass(frozen=True)
class DesiredState:
    """All resources the loaded maps imply, with the dependency edges between them."""

    containers: dict[str, ContainerSpec] = field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = field(default_factory=dict)
    inits: dict[str, VolumeInitSpec] = field(default_factory=dict)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    images: dict[str, ImageSpec] = field(default_factory=dict)
    depends_on: dict[ResourceId, frozenset[ResourceId]] = field(default_factory=dict)
    maps: frozenset[str] = frozenset()
    problems: tuple[tuple[ResourceId, str], ...] = ()  # resources that cannot be built (e.g. no host path)
    external_volumes: frozenset[str] = frozenset()  # used by containers, never created or removed (`external`)
    client: str = "__default__"  # the engine these resources are for (labelled on create, never hashed)

    def spec(self, rid: ResourceId) -> ResourceSpec:
        table: dict[Kind, dict[str, Any]] = {
            Kind.CONTAINER: self.containers,
            Kind.VOLUME: self.volumes,
            Kind.VOLUME_INIT: self.inits,
            Kind.NETWORK: self.networks,
            Kind.IMAGE: self.images,
        }
        spec: ResourceSpec = table[rid.kind][rid.name]
        return spec

    def find(self, rid: ResourceId) -> ResourceSpec | None:
        """The spec of `rid`, or None for what the maps do not declare (an orphan, a leftover replacement)."""
        try:
            return self.spec(rid)
        except KeyError:
            return None

    def all_ids(self) -> list[ResourceId]:
        return sorted(
            [s.id for s in self.images.values()]
            + [s.id for s in self.networks.values()]
            + [s.id for s in self.volumes.values()]
            + [s.id for s in self.inits.values()]
            + [s.id for s in self.containers.values()]
        )


# Collections whose order the engine does not keep or does not care about: sorted before hashing.
_ORDER_FREE = frozenset({"mounts", "anonymous_volumes", "volumes_from", "ports", "links", "endpoints", "aliases"})
_EMPTY: tuple[Any, ...] = (None, "", (), [], {}, False)


def canonical(data: Any, key: str | None = None) -> Any:
    """`data` (from `asdict`) with empty values dropped at every depth and order-free lists sorted."""
    if isinstance(data, dict):
        return {k: canonical(v, k) for k, v in data.items() if not _is_empty(v)}
    if isinstance(data, (list, tuple)):
        items = [canonical(v) for v in data]
        if key in _ORDER_FREE:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return items
    return data


def _is_empty(value: Any) -> bool:
    return any(value is e or (type(value) is type(e) and value == e) for e in _EMPTY)


def stable_hash(data: Any) -> str:
    """sha256 of canonical JSON (sorted keys): the same spec always hashes the same, across runs and hosts.
    Empty values (None, "", (), {}, False) are left out, so a field added to a spec in a later version of
    reconciler does not change the hash of every existing container (which would recreate them all on
    upgrade)."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if v not in (None, "", (), [], {}, False)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
