"""Observed state: what the engine has, parsed from Engine API JSON into typed values.

The executor fetches the JSON (one list per kind, an inspect per relevant object); everything here is a
pure function of that JSON, so drift rules are tested with recorded engine output (tests/fixtures/engine,
made by scripts/record-fixtures.py) and never need an engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import naming
from .resources import Kind


@dataclass(frozen=True)
class ObservedMount:
    target: str
    source: str  # host path for binds, volume name for volumes
    type: str
    read_only: bool


@dataclass(frozen=True)
class ObservedEndpoint:
    network: str
    aliases: tuple[str, ...]
    links: tuple[str, ...]
    ipv4_address: str | None
    ipv6_address: str | None


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    image_id: str
    image_ref: str
    labels: Mapping[str, str]
    status: str  # created | running | paused | restarting | removing | exited | dead
    exit_code: int
    oom_killed: bool
    health: str | None  # starting | healthy | unhealthy, or None without a healthcheck
    started_at: str
    finished_at: str
    restart_count: int
    hostname: str
    domainname: str
    env: Mapping[str, str]
    cmd: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    user: str
    exposed_ports: frozenset[str]
    port_bindings: Mapping[str, tuple[tuple[str, str], ...]]  # "80/tcp" → ((host ip, host port), …)
    mounts: tuple[ObservedMount, ...]
    volumes_from: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (linked container name, alias)
    network_mode: str
    networks: Mapping[str, ObservedEndpoint]
    healthcheck: Mapping[str, Any] | None
    stop_signal: str | None
    stop_timeout: int | None
    restart_policy: Mapping[str, Any]
    host_config: Mapping[str, Any]
    processes: tuple[str, ...] | None = None  # command lines, fetched only when exec commands matter
    execs: tuple[tuple[str, ...], ...] | None = None  # argv of its running exec instances (likewise)

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting", "paused")

    @property
    def managed(self) -> bool:
        return naming.owned(self.labels)

    @property
    def kind(self) -> str | None:
        return self.labels.get(naming.LABEL_KIND)

    @property
    def is_self(self) -> bool:
        """reconciler's own container (label `io.reconciler.self`): never managed, whatever else it says."""
        return naming.is_self(self.labels)

    @property
    def spec_hash(self) -> str | None:
        return self.labels.get(naming.LABEL_SPEC_HASH)


@dataclass(frozen=True)
class ObservedImage:
    id: str
    tags: tuple[str, ...]
    env: Mapping[str, str]
    cmd: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    user: str
    exposed_ports: frozenset[str]
    healthcheck: Mapping[str, Any] | None
    volumes: frozenset[str]
    labels: Mapping[str, str]
    digests: frozenset[str] = frozenset()  # manifest digests the image was pulled by (RepoDigests' `@…` part)


@dataclass(frozen=True)
class ObservedVolume:
    name: str
    labels: Mapping[str, str]
    driver: str
    options: Mapping[str, str]
    created_at: str

    @property
    def managed(self) -> bool:
        return naming.owned(self.labels)

    @property
    def identity(self) -> str:
        return naming.volume_identity(self.labels, self.created_at)


@dataclass(frozen=True)
class ObservedNetwork:
    id: str
    name: str
    labels: Mapping[str, str]
    driver: str
    internal: bool
    options: Mapping[str, str]
    containers: tuple[str, ...]  # container ids attached

    @property
    def managed(self) -> bool:
        return naming.owned(self.labels)


@dataclass(frozen=True)
class ObservedState:
    """A snapshot of the engine as far as the maps care. `images` maps references and ids to images."""

    containers: Mapping[str, ObservedContainer] = field(default_factory=dict)  # by name
    images: Mapping[str, ObservedImage] = field(default_factory=dict)  # by reference and by id
    volumes: Mapping[str, ObservedVolume] = field(default_factory=dict)
    networks: Mapping[str, ObservedNetwork] = field(default_factory=dict)
    # Containers outside the maps that a map names (`network_mode: container:vpn`): name → id.
    peers: Mapping[str, str] = field(default_factory=dict)
    # Host ports published by running containers, ours or not: (host ip, host port, protocol) → name.
    published: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def container_id(self, name: str) -> str | None:
        """The id of a container the maps name: ours, or a peer outside the maps."""
        found = self.containers.get(name)
        return found.id if found is not None else self.peers.get(name)

    def container_by_id(self, ident: str) -> ObservedContainer | None:
        for container in self.containers.values():
            if container.id == ident or (len(ident) >= 12 and container.id.startswith(ident)):
                return container
        return None

    def owned(self, kind: Kind, name: str) -> bool:
        table: Mapping[str, Any] = {
            Kind.CONTAINER: self.containers,
            Kind.VOLUME_INIT: self.containers,
            Kind.VOLUME: self.volumes,
            Kind.NETWORK: self.networks,
        }.get(kind, {})
        obj = table.get(name)
        return obj is not None and bool(obj.managed)


def _pairs(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in env or []:
        key, _, value = entry.partition("=")
        out[key] = value
    return out


def _tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _mounts(data: Mapping[str, Any]) -> tuple[ObservedMount, ...]:
    """`Mounts`: a named volume by its name, a bind or an anonymous volume by its source."""
    return tuple(
        ObservedMount(
            target=m.get("Destination", ""),
            source=m.get("Name") if m.get("Type") == "volume" else m.get("Source", ""),
            type=m.get("Type", ""),
            read_only=not m.get("RW", True),
        )
        for m in data.get("Mounts") or []
    )


def _links(host: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Legacy links as (target container, alias): "/rec.dep:/rec.main/db" → ("rec.dep", "db")."""
    links = []
    for link in host.get("Links") or []:
        source, _, target = link.partition(":")
        links.append((source.lstrip("/"), target.rsplit("/", 1)[-1]))
    return tuple(links)


def _endpoints(data: Mapping[str, Any]) -> dict[str, ObservedEndpoint]:
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    return {
        name: ObservedEndpoint(
            network=name,
            aliases=tuple(ep.get("Aliases") or ()),
            links=tuple(ep.get("Links") or ()),
            ipv4_address=(ep.get("IPAMConfig") or {}).get("IPv4Address") or None,
            ipv6_address=(ep.get("IPAMConfig") or {}).get("IPv6Address") or None,
        )
        for name, ep in networks.items()
    }


def _port_bindings(host: Mapping[str, Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        port: tuple((b.get("HostIp", ""), b.get("HostPort", "")) for b in (binds or []))
        for port, binds in (host.get("PortBindings") or {}).items()
    }


def parse_container(
    data: Mapping[str, Any],
    processes: tuple[str, ...] | None = None,
    execs: tuple[tuple[str, ...], ...] | None = None,
) -> ObservedContainer:
    """One `GET /containers/{id}/json` answer (with `top` command lines and running exec argvs if fetched)."""
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    state = data.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return ObservedContainer(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image_id=data.get("Image", ""),
        image_ref=config.get("Image", ""),
        labels=dict(config.get("Labels") or {}),
        status=state.get("Status", "unknown"),
        exit_code=int(state.get("ExitCode", 0) or 0),
        oom_killed=bool(state.get("OOMKilled", False)),
        health=health,
        started_at=state.get("StartedAt", ""),
        finished_at=state.get("FinishedAt", ""),
        restart_count=int(data.get("RestartCount", 0) or 0),
        hostname=config.get("Hostname", ""),
        domainname=config.get("Domainname", ""),
        env=_pairs(config.get("Env")),
        cmd=_tuple(config.get("Cmd")),
        entrypoint=_tuple(config.get("Entrypoint")),
        user=config.get("User", "") or "",
        exposed_ports=frozenset((config.get("ExposedPorts") or {}).keys()),
        port_bindings=_port_bindings(host),
        mounts=_mounts(data),
        volumes_from=tuple(host.get("VolumesFrom") or ()),
        links=_links(host),
        network_mode=host.get("NetworkMode", "") or "",
        networks=_endpoints(data),
        healthcheck=config.get("Healthcheck"),
        stop_signal=config.get("StopSignal"),
        stop_timeout=config.get("StopTimeout"),
        restart_policy=dict(host.get("RestartPolicy") or {}),
        host_config=dict(host),
        processes=processes,
        execs=execs,
    )


def parse_image(data: Mapping[str, Any]) -> ObservedImage:
    """One `GET /images/{name}/json` answer."""
    config = data.get("Config") or {}
    return ObservedImage(
        id=data["Id"],
        tags=tuple(data.get("RepoTags") or ()),
        env=_pairs(config.get("Env")),
        cmd=_tuple(config.get("Cmd")),
        entrypoint=_tuple(config.get("Entrypoint")),
        user=config.get("User", "") or "",
        exposed_ports=frozenset((config.get("ExposedPorts") or {}).keys()),
        healthcheck=config.get("Healthcheck"),
        volumes=frozenset((config.get("Volumes") or {}).keys()),
        labels=dict(config.get("Labels") or {}),
        digests=frozenset(str(d).rpartition("@")[2] for d in data.get("RepoDigests") or () if "@" in str(d)),
    )


def parse_volume(data: Mapping[str, Any]) -> ObservedVolume:
    return ObservedVolume(
        name=data["Name"],
        labels=dict(data.get("Labels") or {}),
        driver=data.get("Driver", "local"),
        options=dict(data.get("Options") or {}),
        created_at=data.get("CreatedAt", ""),
    )


def parse_network(data: Mapping[str, Any]) -> ObservedNetwork:
    return ObservedNetwork(
        id=data["Id"],
        name=data["Name"],
        labels=dict(data.get("Labels") or {}),
        driver=data.get("Driver", ""),
        internal=bool(data.get("Internal", False)),
        options=dict(data.get("Options") or {}),
        containers=tuple((data.get("Containers") or {}).keys()),
    )


def parse_processes(top: Mapping[str, Any]) -> tuple[str, ...]:
    """`GET /containers/{id}/top`: the command line column of each process."""
    titles = list(top.get("Titles") or [])
    column = titles.index("CMD") if "CMD" in titles else (titles.index("COMMAND") if "COMMAND" in titles else -1)
    return tuple(str(p[column]) for p in top.get("Processes") or [] if column >= 0 and len(p) > column)


def parse_exec(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """`GET /exec/{id}/json`: the argv of a running exec instance, None when it has ended."""
    if not data.get("Running"):
        return None
    process = data.get("ProcessConfig") or {}
    return (str(process.get("entrypoint", "")), *(str(a) for a in process.get("arguments") or ()))


def observed_state(
    containers: list[Mapping[str, Any]],
    images: Mapping[str, Mapping[str, Any]],
    volumes: list[Mapping[str, Any]],
    networks: list[Mapping[str, Any]],
    processes: Mapping[str, tuple[str, ...]] | None = None,
    execs: Mapping[str, tuple[tuple[str, ...], ...]] | None = None,
    peers: Mapping[str, str] | None = None,
    summaries: Sequence[Mapping[str, Any]] | None = None,
) -> ObservedState:
    """Assemble a snapshot from inspect answers; `images` maps each looked-up reference to its inspect;
    `processes` and `execs` are keyed by container id, `peers` maps outside containers' names to ids;
    `summaries` is the engine's container list (for the host ports every running container holds)."""
    parsed_images: dict[str, ObservedImage] = {}
    for ref, data in images.items():
        image = parse_image(data)
        parsed_images[ref] = image
        parsed_images[image.id] = image
    parsed = [parse_container(c, (processes or {}).get(c["Id"]), (execs or {}).get(c["Id"])) for c in containers]
    return ObservedState(
        containers={c.name: c for c in parsed},
        images=parsed_images,
        volumes={v["Name"]: parse_volume(v) for v in volumes},
        networks={n["Name"]: parse_network(n) for n in networks},
        peers=dict(peers or {}),
        published=parse_published(summaries or []),
    )


def parse_published(summaries: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], str]:
    """`Ports` of the container list (`{IP, PrivatePort, PublicPort, Type}`, running containers only)."""
    published: dict[tuple[str, str, str], str] = {}
    for summary in summaries:
        name = str((summary.get("Names") or ["/"])[0]).lstrip("/")
        for port in summary.get("Ports") or []:
            if port.get("PublicPort"):
                key = (str(port.get("IP") or ""), str(port["PublicPort"]), str(port.get("Type") or "tcp"))
                published[key] = name
    return published
