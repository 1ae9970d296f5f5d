"""docker-py options that overlap modelled fields, folded into them.

docker-map passes `create_options` and `host_config` to docker-py after its own arguments, extending lists
and letting scalars win. Passing them through untouched beside our own `binds`, `port_bindings`, `links`, …
would either overwrite what the map says (one dict key wins) or reach the engine in a form the drift rules
never expect (a recreate loop). So the overlapping keys are read here, in every form docker-py accepts, and
become mounts, ports, links, `volumes_from`, anonymous volumes, a network mode and a healthcheck like the
map's own; what is left passes through, still covered by the spec hash. Pure.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .resources import Mount, PortSpec

# Keys read here, wherever they are written (older maps put host settings into create_options).
HOST_KEYS = ("binds", "mounts", "port_bindings", "links", "volumes_from", "network_mode")
CREATE_KEYS = ("ports", "volumes", "healthcheck")
_HEALTH_FIELDS = {
    "test": "Test",
    "interval": "Interval",
    "timeout": "Timeout",
    "retries": "Retries",
    "start_period": "StartPeriod",
}


@dataclass
class Folded:
    """What the pass-through options add to the modelled fields."""

    mounts: list[Mount] = field(default_factory=list)
    ports: list[PortSpec] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    anonymous: list[str] = field(default_factory=list)
    network_mode: str | None = None
    healthcheck: tuple[tuple[str, Any], ...] | None = None
    other_mounts: list[Any] = field(default_factory=list)  # tmpfs and other mount types: passed through


def clean_path(path: str) -> str:
    """A container path as the engine stores it: `/etc/app/` and `/etc//app` are `/etc/app`."""
    if not path:
        return path
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def fold(create: dict[str, Any], host: dict[str, Any]) -> Folded:
    """Pop every overlapping key from `create` and `host` (both modified) and return what they say."""
    out = Folded()
    for source in (host, create):
        if "binds" in source:
            out.mounts += _binds(source.pop("binds"))
        if "mounts" in source:
            _mounts(source.pop("mounts"), out)
        if "port_bindings" in source:
            out.ports += _port_bindings(source.pop("port_bindings"))
        if "links" in source:
            out.links += _links(source.pop("links"))
        if "volumes_from" in source:
            value = source.pop("volumes_from")
            out.volumes_from += [value] if isinstance(value, str) else [str(v) for v in value or ()]
        if "network_mode" in source:
            value = source.pop("network_mode")
            out.network_mode = None if value in (None, "") else str(value)
    if "ports" in create:
        out.ports += [PortSpec(port_name(p)) for p in _as_list(create.pop("ports"))]
    if "volumes" in create:
        out.anonymous += [clean_path(str(v)) for v in _volume_targets(create.pop("volumes"))]
    if "healthcheck" in create:
        out.healthcheck = _healthcheck(create.pop("healthcheck"))
    if out.other_mounts:
        host["mounts"] = out.other_mounts
    return out


def port_name(port: Any) -> str:
    """`80`, `"80"`, `"80/udp"`, `(80, "udp")` → the engine's `80/tcp` / `80/udp`."""
    if isinstance(port, (list, tuple)):
        number, proto = port[0], port[1] if len(port) > 1 else "tcp"
        return f"{number}/{proto}"
    text = str(port)
    return text if "/" in text else f"{text}/tcp"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _volume_targets(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, Mapping)) else _as_list(value)


def _binds(value: Any) -> list[Mount]:
    """docker-py's `binds`: `["src:dst[:mode]", …]` or `{src: {"bind": dst, "mode": "ro"}}` / `{src: dst}`."""
    entries: list[tuple[str, str, str]] = []
    if isinstance(value, Mapping):
        for src, spec in value.items():
            if isinstance(spec, Mapping):
                entries.append((str(src), str(spec.get("bind", "")), str(spec.get("mode", "rw"))))
            else:
                entries.append((str(src), str(spec), "rw"))
    else:
        for text in _as_list(value):
            parts = str(text).split(":")
            if len(parts) < 2:
                raise ValueError(f"host_config.binds entry '{text}' must be 'source:target[:mode]'")
            entries.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return [_mount(src, dst, "ro" in mode.split(",")) for src, dst, mode in entries]


def _mount(source: str, target: str, read_only: bool) -> Mount:
    kind = "bind" if source.startswith("/") else "volume"
    return Mount(
        target=clean_path(target),
        source=clean_path(source) if kind == "bind" else source,
        type=kind,
        read_only=read_only,
    )


def _mounts(value: Any, out: Folded) -> None:
    """docker-py `Mount`s written as dicts: bind and volume mounts are modelled, others pass through."""
    for entry in _as_list(value):
        if not isinstance(entry, Mapping):
            raise ValueError("host_config.mounts entries must be mappings (target, source, type, read_only)")
        kind = str(entry.get("type") or entry.get("Type") or "volume")
        target = entry.get("target") or entry.get("Target")
        source = entry.get("source") or entry.get("Source")
        if kind in ("bind", "volume") and target and source:
            read_only = bool(entry.get("read_only") or entry.get("ReadOnly"))
            mount = _mount(str(source), str(target), read_only)
            out.mounts.append(Mount(mount.target, mount.source, kind, read_only))
        else:
            out.other_mounts.append(dict(entry))


def _port_bindings(value: Any) -> list[PortSpec]:
    """`{80: 8080}`, `{80: ("127.0.0.1", 8080)}`, `{"53/udp": [53, ("::1", 53)]}`, `{80: None}` (random),
    `{80: {HostIp: …, HostPort: …}}`."""
    if not isinstance(value, Mapping):
        raise ValueError("host_config.port_bindings must be a mapping of container port to host port")
    ports = []
    for container_port, binding in value.items():
        name = port_name(container_port)
        bindings = binding if isinstance(binding, list) and not _is_address_pair(binding) else [binding]
        for one in bindings:
            if isinstance(one, Mapping):  # the engine's own form, which docker-py passes on
                ip = one.get("HostIp") or None
                ports.append(PortSpec(name, str(one.get("HostPort") or ""), None if ip is None else str(ip)))
            elif isinstance(one, tuple | list):
                ip = str(one[0]) if one and one[0] else None
                host_port = str(one[1]) if len(one) > 1 and one[1] is not None else ""
                ports.append(PortSpec(name, host_port, ip))
            else:
                ports.append(PortSpec(name, "" if one is None else str(one)))
    return ports


def _is_address_pair(value: list[Any]) -> bool:
    """YAML has no tuples: `[127.0.0.1, 8080]` is docker-py's `("127.0.0.1", 8080)`, not two bindings."""
    if len(value) not in (1, 2) or not isinstance(value[0], str):
        return False
    try:
        ipaddress.ip_address(value[0])
    except ValueError:
        return False
    return True


def _links(value: Any) -> list[tuple[str, str]]:
    """`{name: alias}`, `[(name, alias)]` or `["name:alias", "name"]`; the alias defaults to the name."""
    pairs: list[tuple[str, str]] = []
    items = value.items() if isinstance(value, Mapping) else _as_list(value)
    for item in items:
        if isinstance(item, (list, tuple)):
            name, alias = str(item[0]), str(item[1]) if len(item) > 1 and item[1] else ""
        else:
            name, _, alias = str(item).partition(":")
        name = name.lstrip("/")
        pairs.append((name, alias or name))
    return pairs


def _healthcheck(value: Any) -> tuple[tuple[str, Any], ...] | None:
    """docker-py's healthcheck dict (lower-case or engine keys, durations in nanoseconds)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("create_options.healthcheck must be a mapping")
    fields: dict[str, Any] = {}
    for key, item in value.items():
        engine_key = _HEALTH_FIELDS.get(str(key).lower().replace("-", "_"), str(key))
        if engine_key == "Test":
            fields[engine_key] = ("CMD-SHELL", item) if isinstance(item, str) else tuple(str(v) for v in item or ())
        elif item:
            fields[engine_key] = item
    if not fields.get("Test", True):
        del fields["Test"]
    return tuple(sorted(fields.items()))
