"""What the engine does to what it is sent: the normalisations the fake models (recorded by
`scripts/record-fixtures.py --normalisations`, and checked against that recording by
`tests/unit/test_testing_normalisations.py`).

- environment: the image's variables in their order, replaced by the container's, then the new ones;
- healthcheck: merged with the image's field by field (an empty or zero field comes from the image);
- container paths are stored cleaned (Go's `filepath.Clean`: `/etc/app/` is `/etc/app`);
- a bind or named volume becomes a `Mounts` entry; a legacy link is stored as `/<target>:/<name>/<alias>`;
- limits in `HostConfig` carry the engine's zero defaults.

`containers.engine_container` applies them; nothing here knows about reconciler's specs.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.executor.engine import Json

from .ids import hex_id

HOST_LIMIT_DEFAULTS: dict[str, Any] = {
    "BlkioWeight": 0,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuShares": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Memory": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "NanoCpus": 0,
    "PidsLimit": None,
}


def env_list(image_env: Iterable[str], spec_env: Mapping[str, str]) -> list[str]:
    """The engine's merge: image variables in their order (replaced by the container's), then the new ones."""
    merged: dict[str, str] = {}
    for entry in image_env:
        key, _, value = entry.partition("=")
        merged[key] = value
    merged.update(spec_env)
    return [f"{k}={v}" for k, v in merged.items()]


def mount_json(target: str, source: str, kind: str, read_only: bool) -> Json:
    if kind == "bind":
        return {
            "Destination": target,
            "Mode": "ro" if read_only else "rw",
            "Propagation": "rprivate",
            "RW": not read_only,
            "Source": source,
            "Type": "bind",
        }
    return {
        "Destination": target,
        "Driver": "local",
        "Mode": "ro" if read_only else "rw",
        "Name": source,
        "Propagation": "",
        "RW": not read_only,
        "Source": f"/var/lib/docker/volumes/{source}/_data",
        "Type": "volume",
    }


def endpoint_json(
    network: str, aliases: Iterable[str] = (), links: Iterable[str] = (), ipv4: str | None = None
) -> Json:
    alias_list = list(aliases)
    link_list = list(links)
    return {
        "Aliases": alias_list or None,
        "DNSNames": None,
        "DriverOpts": None,
        "EndpointID": hex_id("endpoint", network),
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAMConfig": {"IPv4Address": ipv4} if ipv4 else None,
        "IPAddress": ipv4 or "",
        "IPPrefixLen": 16,
        "IPv6Gateway": "",
        "Links": link_list or None,
        "MacAddress": "",
        "NetworkID": hex_id("network", network),
    }


def clean_path(path: str) -> str:
    """The engine stores container paths cleaned (Go's `filepath.Clean`): `/etc/app/` is `/etc/app`."""
    return posixpath.normpath(path) if path else path


_HEALTH_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def merged_healthcheck(sent: Mapping[str, Any] | None, image: Mapping[str, Any] | None) -> Json | None:
    """The engine's merge with the image's HEALTHCHECK: no healthcheck takes the image's; otherwise every field
    left empty or zero (the test included — also beside `Test: ["NONE"]`) comes from the image."""
    if not sent:
        return dict(image) if image else None
    merged = {k: v for k, v in sent.items() if v}
    for key in _HEALTH_FIELDS:
        if not merged.get(key) and image and image.get(key):
            merged[key] = image[key]
    return merged


def bind_parts(entry: str) -> tuple[str, str, bool]:
    """A `Binds` entry `source:target[:mode]` (as sent, and as the engine keeps it in HostConfig.Binds)."""
    parts = entry.split(":")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) > 2 else []
    return source, target, "ro" in modes


def stored_link(link: str, name: str) -> str:
    """docker-py sends `target:alias` (or `target`); the engine stores `/target:/name/alias`."""
    target, _, alias = link.partition(":")
    return f"/{target.lstrip('/')}:/{name}/{alias or target.lstrip('/')}"


def as_json(data: Json) -> Json:
    """What the engine would send: JSON only (tuples of frozen specs become lists)."""
    result: Json = json.loads(json.dumps(data))
    return result
