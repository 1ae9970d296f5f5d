"""Desired state: what the loaded maps say should exist on the engine, in engine terms.

`desired_state(maps)` turns every resolved map into networks, attached volumes, volume inits, images and one
`ContainerSpec` per instance, with the dependency edges between them. docker-map's `create_options` and
`host_config` are docker-py keyword arguments; here they are split into what we compare field by field
(command, entrypoint, environment, user, labels, healthcheck), what is updated in place (limits, restart
policy, in the engine's own HostConfig names) and what is passed through untouched (everything else, still
covered by the spec hash). Pure: no engine calls.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import MapSet, NetworkModeKind, ResolvedMap, StartCondition, resolve_image
from reconciler.model.clients import DEFAULT_CLIENT, ClientConfig, placed_on
from reconciler.model.collector import collector_paused
from reconciler.model.errors import KeyPath
from reconciler.model.schema import HealthCheck

from . import naming, options
from .options import clean_path
from .resources import (
    ContainerSpec,
    DesiredState,
    EndpointSpec,
    ExecSpec,
    ImageSpec,
    Kind,
    Mount,
    NetworkSpec,
    PortSpec,
    ResourceId,
    VolumeInitSpec,
    VolumeSpec,
)

# docker-py `update_container` / HostConfig options that the engine can change on a running container.
LIMIT_OPTIONS: dict[str, str] = {
    "mem_limit": "Memory",
    "memswap_limit": "MemorySwap",
    "mem_reservation": "MemoryReservation",
    "kernel_memory": "KernelMemory",
    "cpu_shares": "CpuShares",
    "cpu_period": "CpuPeriod",
    "cpu_quota": "CpuQuota",
    "cpuset_cpus": "CpusetCpus",
    "cpuset_mems": "CpusetMems",
    "blkio_weight": "BlkioWeight",
    "nano_cpus": "NanoCpus",
    "pids_limit": "PidsLimit",
}
_BYTE_LIMITS = {"Memory", "MemorySwap", "MemoryReservation", "KernelMemory"}
# create_options keys we model ourselves (everything else passes through to create_container).
_MODELLED_CREATE = {"command", "entrypoint", "environment", "user", "labels", "hostname", "domainname"}
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclass(frozen=True)
class Source:
    """Where a desired-state problem comes from, for `validate`: the map, the config and the key path
    inside that config (after `extends`: `ResolvedMap.source_path` finds where it was written)."""

    map: str
    config: str
    key: KeyPath = ()


class KeyedError(ValueError):
    """A ValueError that knows the config key at fault (`("host_config", "mem_limit")`)."""

    def __init__(self, message: str, key: KeyPath) -> None:
        super().__init__(message)
        self.key = key


def _keyed(key: KeyPath, func: Callable[[Any], Any], value: Any) -> Any:
    try:
        return func(value)
    except KeyedError:
        raise
    except ValueError as exc:
        raise KeyedError(str(exc), key) from None


def parse_bytes(value: object) -> int:
    """docker-py's byte sizes: `64m`, `1g`, `512k`, `1024` (bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt])?b?\s*", str(value).lower())
    if not match:
        raise ValueError(f"{value!r} is not a size (e.g. 64m, 1g)")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"])


def split_command(value: object) -> tuple[str, ...] | None:
    """docker-py splits a string command with shlex; a list is taken as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise ValueError(f"a command must be a string or a list, got {type(value).__name__}")


def environment(value: object) -> tuple[tuple[str, str], ...]:
    """`environment` as a dict or a list of `KEY=value`; sorted, values as strings."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = {str(k): "" if v is None else _env_text(v) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        items = {}
        for entry in value:
            key, _, val = str(entry).partition("=")
            items[key] = val
    else:
        raise ValueError("environment must be a mapping or a list of KEY=value")
    return tuple(sorted(items.items()))


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(sorted((str(k), "") for k in value))
    raise ValueError("labels must be a mapping or a list")


def user_owner(user: str | None) -> str | None:
    """docker-map: a bare uid means `uid:uid` for chown."""
    if user is None:
        return None
    return f"{user}:{user}" if user.isdigit() else user


def healthcheck_fields(check: HealthCheck | None) -> tuple[tuple[str, Any], ...] | None:
    """The engine's Healthcheck fields the map sets. Without `test` none is sent, as docker-map does: the
    engine then keeps the image's test (and every field left out comes from the image)."""
    if check is None:
        return None
    fields: dict[str, Any] = {}
    if check.test is not None:
        test = ["CMD-SHELL", check.test] if isinstance(check.test, str) else list(check.test)
        fields["Test"] = tuple(test)  # a tuple: specs are hashable values
    for key, value in (
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("Retries", check.retries),
        ("StartPeriod", check.start_period),
    ):
        if value:
            fields[key] = value
    return tuple(sorted(fields.items()))


def port_key(port: int | str) -> str:
    text = str(port)
    return text if "/" in text else f"{text}/tcp"


def _interface_ip(interface: str | None, client: ClientConfig | None = None) -> str | None:
    """An address as written, or an interface alias resolved from the client's `interfaces` (docker-map)."""
    if interface is None:
        return None
    try:
        return str(ipaddress.ip_address(interface))
    except ValueError:
        pass
    address = client.interface(interface) if client is not None else None
    if address is None:
        where = f"client '{client.name}'" if client is not None else "any client (no clients file given)"
        raise ValueError(f"interface '{interface}' is not an IP address nor an interface alias of {where}")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(
            f"interface '{interface}' of client '{client and client.name}' is {address!r}, not an IP address"
        ) from None


def _frozen(items: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(items))


def _freeze(value: Any) -> Any:
    """Lists and dicts of create/host options as hashable, canonical tuples (for frozen specs)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of `_freeze` for pass-through options: tuples of pairs back to dicts."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value):
            return {k: thaw(v) for k, v in value}
        return [thaw(v) for v in value]
    return value


class _Builder:
    def __init__(
        self, maps: MapSet, client: ClientConfig | None = None, clients: Mapping[str, ClientConfig] | None = None
    ) -> None:
        self.maps = maps
        self.client, self.clients = client, clients
        self.client_name = client.name if client is not None else DEFAULT_CLIENT
        self.containers: dict[str, ContainerSpec] = {}
        self.volumes: dict[str, VolumeSpec] = {}
        self.inits: dict[str, VolumeInitSpec] = {}
        self.networks: dict[str, NetworkSpec] = {}
        self.images: dict[str, ImageSpec] = {}
        self.edges: dict[ResourceId, set[ResourceId]] = {}
        self.problems: list[tuple[ResourceId, str]] = []
        self.external_volumes: set[str] = set()
        self.sources: dict[ResourceId, Source] = {}
        # Every container the maps imply, so that options naming one (host_config.links, volumes_from)
        # depend on it whichever is built first.
        self.all_containers = {
            naming.container_name(m.name, config, instance)
            for m in maps
            for config in self.placed(m)
            for instance in m.instances(config)
        }

    def placed(self, m: ResolvedMap) -> list[str]:
        """The configs of `m` that run on this builder's client (all of them without a clients file)."""
        return [c for c in m.configs if placed_on(m, c, self.client_name, self.clients)]

    def edge(self, rid: ResourceId, dep: ResourceId) -> None:
        self.edges.setdefault(rid, set()).add(dep)

    def image(self, ref: str) -> ResourceId:
        spec = self.images.setdefault(ref, ImageSpec(ref))
        self.edges.setdefault(spec.id, set())
        return spec.id

    def build(self) -> DesiredState:
        for m in self.maps:
            self.map_resources(m)
        for m in self.maps:
            for config in self.placed(m):
                for instance in m.instances(config):
                    name = naming.container_name(m.name, config, instance)
                    try:
                        self.container(m, config, instance)
                    except ValueError as exc:
                        rid = ResourceId(Kind.CONTAINER, name)
                        self.problems.append((rid, str(exc)))
                        self.sources[rid] = Source(m.name, config, getattr(exc, "key", ()))
        return DesiredState(
            containers=self.containers,
            volumes=self.volumes,
            inits=self.inits,
            networks=self.networks,
            images=self.images,
            depends_on={rid: frozenset(deps) for rid, deps in self.edges.items()},
            maps=frozenset(m.name for m in self.maps),
            problems=tuple(self.problems),
            external_volumes=frozenset(self.external_volumes),
            client=self.client_name,
        )

    def map_resources(self, m: ResolvedMap) -> None:
        placed = self.placed(m)
        if not placed:
            return
        for net in m.network_names():
            net_cfg = m.model.networks[net]
            spec = NetworkSpec(
                name=naming.network_name(m.name, net),
                map=m.name,
                driver=net_cfg.driver,
                driver_options=_frozen((str(k), str(v)) for k, v in net_cfg.driver_options.items()),
                internal=net_cfg.internal,
                create_extra=_freeze(net_cfg.create_options),
            )
            self.networks[spec.name] = spec
            self.edges.setdefault(spec.id, set())
        for config in placed:
            cfg = m.configs[config]
            for attach in cfg.attaches:
                vol_name = naming.attached_volume_name(m.name, config, attach.alias, m.model.use_attached_parent_name)
                vol_cfg = m.model.volumes.get(attach.alias)
                volume = VolumeSpec(
                    name=vol_name,
                    map=m.name,
                    config=config,
                    alias=attach.alias,
                    driver=vol_cfg.driver if vol_cfg else "local",
                    driver_options=_frozen(
                        (str(k), str(v)) for k, v in (vol_cfg.driver_options if vol_cfg else {}).items()
                    ),
                )
                self.volumes[vol_name] = volume
                self.edges.setdefault(volume.id, set())
                owner = user_owner((vol_cfg.user if vol_cfg and vol_cfg.user else None) or cfg.user)
                permissions = (vol_cfg.permissions if vol_cfg and vol_cfg.permissions else None) or cfg.permissions
                if owner or permissions:
                    own = m.model.volume_init.image
                    # A tool image named as written (no repository prefix), but always with a tag.
                    init_image = resolve_image(own, None, "latest") if own else m.image(config)
                    init = VolumeInitSpec(
                        name=naming.volume_init_name(vol_name),
                        map=m.name,
                        config=config,
                        alias=attach.alias,
                        volume=vol_name,
                        image=init_image,
                        owner=owner,
                        permissions=permissions,
                    )
                    self.inits[init.name] = init
                    self.edge(init.id, volume.id)
                    self.edge(init.id, self.image(init_image))

    def volume_deps(self, volume: str) -> list[ResourceId]:
        deps = [ResourceId(Kind.VOLUME, volume)]
        init = naming.volume_init_name(volume)
        if init in self.inits:
            deps.append(ResourceId(Kind.VOLUME_INIT, init))
        return deps

    def container(self, m: ResolvedMap, config: str, instance: str | None) -> None:
        one = _Instance(self, m, config, instance)
        spec = one.spec()
        self.containers[spec.name] = spec
        one.deps.discard(spec.id)
        self.edges[spec.id] = one.deps


class _Instance:
    """One container instance of one config: its spec, built aspect by aspect, and its dependencies."""

    def __init__(self, builder: _Builder, m: ResolvedMap, config: str, instance: str | None) -> None:
        self.builder, self.m, self.config, self.instance = builder, m, config, instance
        self.cfg = m.configs[config]
        self.name = naming.container_name(m.name, config, instance)
        self.deps: set[ResourceId] = set()
        self.create = dict(self.cfg.create_options)
        self.host = dict(self.cfg.host_config)

    def spec(self) -> ContainerSpec:
        cfg, create = self.cfg, self.create
        image = self.m.image(self.config)
        self.deps.add(self.builder.image(image))
        limits, restart_policy = self.limits()  # popped first: the rest of host_config is options
        folded = _keyed(("host_config",), lambda _: options.fold(create, self.host), None)
        mounts = self.binds() + self.attaches()
        used, volumes_from = self.uses()
        mounts += used
        mounts += [f for f in folded.mounts if f.target not in {have.target for have in mounts}]
        volumes_from += folded.volumes_from
        self.depend_on_named([n for n, _ in folded.links] + [v.split(":")[0] for v in folded.volumes_from])
        network_mode, endpoints = self.network()
        targets = {mount.target for mount in mounts}
        return ContainerSpec(
            name=self.name,
            map=self.m.name,
            config=self.config,
            instance=self.instance,
            image=image,
            hostname=_opt_str(create.pop("hostname", None))
            or (naming.hostname(self.name) if self.m.model.set_hostname else None),
            domainname=_opt_str(create.pop("domainname", None)) or self.m.model.default_domain,
            command=_keyed(("create_options", "command"), split_command, create.pop("command", None)),
            entrypoint=_keyed(("create_options", "entrypoint"), split_command, create.pop("entrypoint", None)),
            environment=_keyed(("create_options", "environment"), environment, create.pop("environment", None)),
            user=cfg.run_user if cfg.user is not None else _opt_str(create.pop("user", None)),
            labels=_keyed(("create_options", "labels"), _labels, create.pop("labels", None)),
            mounts=tuple(mounts),
            anonymous_volumes=_unique(
                p for p in (*(clean_path(s) for s in cfg.shares), *folded.anonymous) if p not in targets
            ),
            volumes_from=_unique(volumes_from),
            ports=_unique(self.ports() + folded.ports),
            links=_unique(self.links(cfg.links) + folded.links),
            # docker-map: create/host options win over its own arguments.
            network_mode=folded.network_mode or network_mode,
            endpoints=tuple(endpoints),
            healthcheck=folded.healthcheck or healthcheck_fields(cfg.healthcheck),
            stop_signal=None if cfg.stop_signal is None else str(cfg.stop_signal),
            stop_timeout=cfg.stop_timeout,
            create_extra=_freeze({k: v for k, v in create.items() if k not in _MODELLED_CREATE}),
            host_extra=_freeze(self.host),
            limits=_frozen(limits.items()),
            restart_policy=None if restart_policy is None else _frozen((str(k), v) for k, v in restart_policy.items()),
            exec_commands=self.execs(),
            persistent=bool(cfg.persistent),
            start_delay=cfg.start_delay,
            update=str(cfg.update or self.m.model.update or "auto"),
            update_window=cfg.update_window or self.m.model.update_window,
            wait_healthy=self.start_order(),
            compose_service=self.compose_service(),
        )

    def start_order(self) -> tuple[str, ...]:
        """`depends_on`: every instance of each config comes first; those that must be healthy, by name."""
        healthy: list[str] = []
        for config, condition in sorted(self.cfg.depends_on.items()):
            names = self.depend_on(config, *self.m.instances(config))
            if condition is StartCondition.HEALTHY:
                healthy += names
        return tuple(healthy)

    def compose_service(self) -> tuple[str, str, int] | None:
        """For a map imported from compose: the compose container this one replaces on `adopt` (the config
        is named after the service, a numbered instance after the container number)."""
        project = self.m.model.compose_project
        if project is None:
            return None
        number = int(self.instance) if self.instance is not None and self.instance.isdigit() else 1
        return project, self.config, number

    def limits(self) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
        """Limits and the restart policy, popped from the options. Limits may be written in create_options
        (older docker-map maps do): they are host settings all the same."""
        limits: dict[str, Any] = {}
        restart_policy = None
        policy_key: KeyPath = ()
        for where, source in (("create_options", self.create), ("host_config", self.host)):
            for key in list(source):
                if key in LIMIT_OPTIONS:
                    engine_key = LIMIT_OPTIONS[key]
                    value = source.pop(key)
                    limits[engine_key] = (
                        _keyed((where, key), parse_bytes, value) if engine_key in _BYTE_LIMITS else value
                    )
                elif key == "restart_policy":
                    restart_policy, policy_key = source.pop(key), (where, key)
        if restart_policy is not None and not isinstance(restart_policy, Mapping):
            raise KeyedError("host_config.restart_policy must be a mapping like {Name: always}", policy_key)
        return limits, restart_policy

    def binds(self) -> list[Mount]:
        mounts = []
        for index, bind in enumerate(self.cfg.binds):
            if bind.is_alias:
                target = self.m.volume_path(bind.path)
                source = self.m.host_path(bind.path, self.instance)
                if source is None or target is None:
                    where = f"instance '{self.instance}'" if self.instance else "this container"
                    raise KeyedError(f"no host path for volume alias '{bind.path}' for {where}", ("binds", index))
            else:
                target, source = bind.path, self.m.absolute_host_path(bind.host_path or "")
            mounts.append(Mount(clean_path(target), clean_path(source), "bind", bind.readonly))
        return mounts

    def attaches(self) -> list[Mount]:
        mounts = []
        for attach in self.cfg.attaches:
            volume = self.volume_name(self.config, attach.alias)
            path = self.m.attach_path(self.config, attach.alias)
            assert path is not None  # guaranteed by the integrity check
            mounts.append(Mount(target=clean_path(path), source=volume, type="volume"))
            self.deps.update(self.builder.volume_deps(volume))
        return mounts

    def uses(self) -> tuple[list[Mount], list[str]]:
        """`uses`: an attached volume (a mount of it) or a container config (`volumes_from`)."""
        mounts: list[Mount] = []
        volumes_from: list[str] = []
        for index, use in enumerate(self.cfg.uses):
            source = self.m.use_source(use)
            if source is None:
                raise KeyedError(f"uses '{use.name}' does not resolve", ("uses", index))
            if source.external is not None:
                path = self.m.use_path(use)
                assert path is not None  # guaranteed by the integrity check
                mounts.append(Mount(clean_path(path), source.external, "volume", use.readonly))
                self.builder.external_volumes.add(source.external)
            elif source.alias is not None:
                volume = self.volume_name(source.config, source.alias)
                path = self.m.use_path(use)
                assert path is not None
                mounts.append(Mount(target=clean_path(path), source=volume, type="volume", read_only=use.readonly))
                self.deps.update(self.builder.volume_deps(volume))
                # docker-map starts the config that attaches a volume before those that use it.
                self.depend_on(source.config, *self.m.instances(source.config))
            else:
                instances = [source.instance] if source.instance else self.m.instances(source.config)
                for other in self.depend_on(source.config, *instances):
                    volumes_from.append(f"{other}:ro" if use.readonly else other)
        return mounts, volumes_from

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(
                port_key(port.exposed_port),
                None if port.host_port is None else str(port.host_port),
                _keyed(
                    ("exposes", index, "interface"),
                    lambda alias: _interface_ip(alias, self.builder.client),
                    port.interface,
                ),
            )
            for index, port in enumerate(self.cfg.exposes)
        ]

    def links(self, links: Iterable[Any]) -> list[tuple[str, str]]:
        """Legacy or endpoint links; `known_as` is the alias, else the reference in hostname form (docker-map)."""
        pairs = []
        for link in links:
            (target,) = self.depend_on(*_config_instance(link.container))
            pairs.append((target, link.known_as))
        return pairs

    def network(self) -> tuple[str | None, list[EndpointSpec]]:
        """`network_mode` in engine terms, and the endpoints; a container on networks runs on the first."""
        network_mode: str | None = None
        mode = self.cfg.network_mode
        if mode is not None:
            if mode.kind is NetworkModeKind.PRESET:
                network_mode = mode.value
            elif mode.kind is NetworkModeKind.EXTERNAL:
                network_mode = f"container:{mode.value}"
            else:
                (other,) = self.depend_on(mode.value, mode.instance)
                network_mode = f"container:{other}"
        endpoints = []
        for endpoint in self.cfg.networks:
            net = naming.network_name(self.m.name, endpoint.network_name)
            if net in self.builder.networks:
                self.deps.add(ResourceId(Kind.NETWORK, net))
            endpoints.append(
                EndpointSpec(
                    network=net,
                    aliases=_unique(endpoint.aliases or ()),
                    links=_unique(self.links(endpoint.links)),
                    ipv4_address=endpoint.ipv4_address,
                    ipv6_address=endpoint.ipv6_address,
                )
            )
        if network_mode is None and endpoints:
            network_mode = endpoints[0].network
        return network_mode, endpoints

    def execs(self) -> tuple[ExecSpec, ...]:
        return tuple(
            ExecSpec(
                cmd=c.cmd if isinstance(c.cmd, str) else tuple(c.cmd),
                user=c.user or self.cfg.run_user,
                policy=c.policy.value,
            )
            for c in self.cfg.exec_commands
        )

    def volume_name(self, config: str, alias: str) -> str:
        return naming.attached_volume_name(self.m.name, config, alias, self.m.model.use_attached_parent_name)

    def depend_on(self, config: str, *instances: str | None) -> list[str]:
        """Containers of this map this one depends on (by config and instance); their engine names."""
        names = [naming.container_name(self.m.name, config, inst) for inst in instances]
        self.deps.update(ResourceId(Kind.CONTAINER, n) for n in names)
        return names

    def depend_on_named(self, names: Iterable[str]) -> None:
        """Options name containers by engine name; those the maps imply are created first."""
        self.deps.update(ResourceId(Kind.CONTAINER, n) for n in names if n in self.builder.all_containers)


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """In order, each once: the engine keeps one copy of a repeated link, port, path or provider."""
    return tuple(dict.fromkeys(items))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _config_instance(ref: str) -> tuple[str, str | None]:
    config, _, instance = ref.partition(".")
    return config, instance or None


def desired_state(
    maps: MapSet, client: ClientConfig | None = None, clients: Mapping[str, ClientConfig] | None = None
) -> DesiredState:
    """Every resource the maps imply on `client` (with `clients`, the clients file: only what is placed
    there; without, everything), with dependency edges; unbuildable containers are listed in `problems`."""
    with collector_paused():
        return _Builder(maps, client, clients).build()


def desired_state_with_sources(
    maps: MapSet, client: ClientConfig | None = None, clients: Mapping[str, ClientConfig] | None = None
) -> tuple[DesiredState, dict[ResourceId, Source]]:
    """`desired_state`, and for each of its problems the config key at fault (what `validate` shows, so that
    `validate` and `plan` judge a map by the same build)."""
    builder = _Builder(maps, client, clients)
    with collector_paused():
        return builder.build(), builder.sources
