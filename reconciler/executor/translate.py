"""Desired specs → docker-py keyword arguments (and labels). Pure functions, tested without an engine.

This is where the engine-neutral `ContainerSpec` becomes the exact arguments of `create_container` /
`create_host_config` / `create_endpoint_config`, and where reconciler's labels are attached: ownership,
identity and the spec hash that later tells whether the container still matches its map.
"""

from __future__ import annotations

from typing import Any

from reconciler.plan import naming
from reconciler.plan.desired import LIMIT_OPTIONS, thaw
from reconciler.plan.drift import LABEL_VOLUME_CREATED, user_network
from reconciler.plan.resources import ContainerSpec, Kind, NetworkSpec, VolumeInitSpec, VolumeSpec

_LIMIT_KWARGS = {engine: kwarg for kwarg, engine in LIMIT_OPTIONS.items()}


def container_labels(spec: ContainerSpec, client: str = naming.DEFAULT_CLIENT) -> dict[str, str]:
    labels = dict(spec.labels)
    labels.update(naming.base_labels(Kind.CONTAINER.value, spec.map, spec.config, spec.instance, client=client))
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[naming.LABEL_IMAGE] = spec.image
    return labels


def container_config(spec: ContainerSpec, *, client: str = naming.DEFAULT_CLIENT) -> dict[str, Any]:
    """`DockerEngine.create_container` config: create_container kwargs + `host_config` + `networking`.
    A recreate's replacement gets the same config and labels as the container it replaces: it is told
    apart by its `..next` name only (labels cannot change after create, so a "temporary" label would stay
    on the renamed container forever)."""
    labels = container_labels(spec, client)
    config: dict[str, Any] = dict(thaw(spec.create_extra) or {})
    config.update(image=spec.image, labels=labels, host_config=_host_config(spec))
    config.update(_present(_create_kwargs(spec)))
    networking = _networking(spec)
    primary = user_network(spec)
    if primary is not None and spec.links:
        # On a user-defined network the engine drops HostConfig.Links when an endpoint config is sent:
        # legacy links must be that endpoint's links (where the engine stores them anyway).
        endpoint = networking.setdefault(primary, {})
        endpoint["links"] = [*endpoint.get("links", []), *spec.links]
    if networking:
        config["networking"] = networking
    return config


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Only what the spec sets: None and empty lists are left to the engine's (and the image's) defaults."""
    return {k: v for k, v in values.items() if v is not None and v not in ([], {})}


def _create_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    own_uts = not (spec.network_mode or "").startswith("container:") and spec.network_mode != "host"
    return {
        "command": None if spec.command is None else list(spec.command),
        "entrypoint": None if spec.entrypoint is None else list(spec.entrypoint),
        "environment": dict(spec.environment),
        "user": spec.user,
        "hostname": spec.hostname if own_uts else None,
        "domainname": spec.domainname,
        "ports": [_port_arg(p.container_port) for p in spec.ports],
        "volumes": [m.target for m in spec.mounts] + list(spec.anonymous_volumes),
        "healthcheck": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.healthcheck or ()},
        "stop_signal": spec.stop_signal or None,
        "stop_timeout": spec.stop_timeout,
    }


def _host_config(spec: ContainerSpec) -> dict[str, Any]:
    host: dict[str, Any] = dict(thaw(spec.host_extra) or {})
    bindings: dict[str, list[Any]] = {}
    for port in spec.ports:
        if port.host_port is not None:
            bindings.setdefault(port.container_port, []).append(
                (port.host_ip, port.host_port) if port.host_ip else port.host_port
            )
    host.update(
        _present(
            {
                "binds": [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts],
                "volumes_from": list(spec.volumes_from),
                "port_bindings": {p: b[0] if len(b) == 1 else b for p, b in bindings.items()},
                # A list: one container may be linked under two aliases. On a user network: the endpoint's.
                "links": list(spec.links) if user_network(spec) is None else None,
                "network_mode": spec.network_mode or None,
                "restart_policy": None if spec.restart_policy is None else dict(spec.restart_policy),
            }
        )
    )
    for engine_key, value in spec.limits:
        host[_LIMIT_KWARGS[engine_key]] = value
    return host


def _networking(spec: ContainerSpec) -> dict[str, dict[str, Any]]:
    return {
        e.network: {
            k: v
            for k, v in {
                "aliases": list(e.aliases) or None,
                "links": list(e.links) or None,
                "ipv4_address": e.ipv4_address,
                "ipv6_address": e.ipv6_address,
            }.items()
            if v
        }
        for e in spec.endpoints
    }


def _port_arg(port: str) -> Any:
    number, _, proto = port.partition("/")
    return (int(number), proto) if proto and proto != "tcp" else int(number) if number.isdigit() else port


def update_settings(spec: ContainerSpec, current_memory_swap: int | None = None) -> dict[str, Any]:
    """Body of `POST /containers/{id}/update`: limits and restart policy in engine names."""
    settings: dict[str, Any] = dict(spec.limits)
    if "Memory" in settings and "MemorySwap" not in settings and settings["Memory"]:
        # As at create: swap defaults to twice the memory, so raising memory never trips the swap check.
        settings["MemorySwap"] = 2 * int(settings["Memory"])
    policy = dict(spec.restart_policy or {"Name": "no"})
    settings["RestartPolicy"] = {
        "Name": policy.get("Name") or "no",
        "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
    }
    return settings


def volume_labels(spec: VolumeSpec, client: str = naming.DEFAULT_CLIENT) -> dict[str, str]:
    labels = naming.base_labels(Kind.VOLUME.value, spec.map, spec.config, client=client)
    labels[naming.LABEL_ALIAS] = spec.alias
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    return labels


def init_config(spec: VolumeInitSpec, volume_created_at: str, client: str = naming.DEFAULT_CLIENT) -> dict[str, Any]:
    labels = naming.base_labels(Kind.VOLUME_INIT.value, spec.map, spec.config, client=client)
    labels[naming.LABEL_ALIAS] = spec.alias
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[LABEL_VOLUME_CREATED] = volume_created_at
    return {
        "image": spec.image,
        "command": list(spec.command),
        "entrypoint": [],
        "user": "0",
        "labels": labels,
        "volumes": [spec.mount_path],
        "host_config": {"binds": [f"{spec.volume}:{spec.mount_path}:rw"], "network_mode": "none"},
    }


def network_config(spec: NetworkSpec, client: str = naming.DEFAULT_CLIENT) -> dict[str, Any]:
    labels = naming.base_labels(Kind.NETWORK.value, spec.map, client=client)
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    config: dict[str, Any] = dict(thaw(spec.create_extra) or {})
    config.update(driver=spec.driver, labels=labels, internal=spec.internal)
    if spec.driver_options:
        config["options"] = dict(spec.driver_options)
    return config
