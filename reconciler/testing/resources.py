"""Volume, volume-init and network inspect JSON: for what the executor created from a desired state
(`volume_json`, `init_json`, `network_json`: `synthesize` uses them), and for what a create call sent
(`created_volume_json`, `created_network_json`: `FakeEngine` stores them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.executor.engine import Json
from reconciler.plan import naming
from reconciler.plan.drift import LABEL_VOLUME_CREATED
from reconciler.plan.resources import Kind, NetworkSpec, VolumeInitSpec, VolumeSpec

from .ids import container_id, hex_id
from .images import DEFAULT_PATH, image_json
from .normalise import endpoint_json, mount_json
from .states import state_json

VOLUME_CREATED_AT = "2026-11-28T00:29:02Z"


def volume_json(spec: VolumeSpec, *, created_at: str = VOLUME_CREATED_AT, labelled: bool = True) -> Json:
    """`GET /volumes/{name}` of an attached volume the executor created (`labelled=False`: a stranger's)."""
    labels: dict[str, str] | None = None
    if labelled:
        labels = naming.base_labels(Kind.VOLUME.value, spec.map, spec.config)
        labels[naming.LABEL_ALIAS] = spec.alias
        labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    return {
        "CreatedAt": created_at,
        "Driver": spec.driver,
        "Labels": labels,
        "Mountpoint": f"/var/lib/docker/volumes/{spec.name}/_data",
        "Name": spec.name,
        "Options": dict(spec.driver_options) or None,
        "Scope": "local",
    }


def init_json(
    spec: VolumeInitSpec, *, volume_created_at: str = VOLUME_CREATED_AT, exit_code: int = 0, status: str = "exited"
) -> Json:
    """The volume init container after it ran (exited 0), labelled with the volume's creation time."""
    labels = naming.base_labels(Kind.VOLUME_INIT.value, spec.map, spec.config)
    labels[naming.LABEL_ALIAS] = spec.alias
    labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    labels[LABEL_VOLUME_CREATED] = volume_created_at
    ident = container_id(spec.name)
    image = image_json(spec.image)
    return {
        "Config": {
            "Cmd": list(spec.command),
            "Entrypoint": None,
            "Env": [DEFAULT_PATH],
            "Hostname": ident[:12],
            "Image": spec.image,
            "Labels": labels,
            "User": "0",
            "Volumes": {spec.mount_path: {}},
        },
        "HostConfig": {
            "Binds": [f"{spec.volume}:{spec.mount_path}:rw"],
            "NetworkMode": "none",
            "RestartPolicy": {"MaximumRetryCount": 0, "Name": "no"},
        },
        "Id": ident,
        "Image": image["Id"],
        "Mounts": [mount_json(spec.mount_path, spec.volume, "volume", False)],
        "Name": f"/{spec.name}",
        "NetworkSettings": {"Networks": {"none": endpoint_json("none")}},
        "State": state_json(status, exit_code),
    }


def network_json(spec: NetworkSpec, *, containers: Iterable[str] = (), labelled: bool = True) -> Json:
    """`GET /networks/{id}` of a network the executor created, with the given container ids attached."""
    labels: dict[str, str] = {}
    if labelled:
        labels = naming.base_labels(Kind.NETWORK.value, spec.map)
        labels[naming.LABEL_SPEC_HASH] = spec.spec_hash
    return {
        "Attachable": False,
        "Containers": {c: {"Name": c} for c in containers},
        "Created": "2026-11-28T00:29:02.237999479Z",
        "Driver": spec.driver,
        "EnableIPv6": False,
        "Id": hex_id("network", spec.name),
        "Internal": spec.internal,
        "Labels": labels,
        "Name": spec.name,
        "Options": dict(spec.driver_options),
        "Scope": "local",
    }


def created_volume_json(
    name: str, driver: str, options: Mapping[str, str], labels: Mapping[str, str], created_at: str
) -> Json:
    """`GET /volumes/{name}` after `POST /volumes/create` with these arguments."""
    return {
        "CreatedAt": created_at,
        "Driver": driver,
        "Labels": dict(labels),
        "Mountpoint": f"/var/lib/docker/volumes/{name}/_data",
        "Name": name,
        "Options": dict(options) or None,
        "Scope": "local",
    }


def created_network_json(name: str, config: Mapping[str, Any], ident: str) -> Json:
    """`GET /networks/{id}` after docker-py's `create_network(name, **config)` (no containers attached yet)."""
    return {
        "Attachable": bool(config.get("attachable")),
        "Containers": {},
        "Created": "2026-11-28T01:00:00.000000000Z",
        "Driver": config.get("driver") or "bridge",
        "EnableIPv6": bool(config.get("enable_ipv6")),
        "Id": ident,
        "Internal": bool(config.get("internal")),
        "Labels": dict(config.get("labels") or {}),
        "Name": name,
        "Options": dict(config.get("options") or {}),
        "Scope": "local",
    }
