"""Names and labels of everything reconciler creates (DESIGN §3) — a contract users and other tools rely on.

- containers: `<map>.<config>` or `<map>.<config>.<instance>`;
- attached volumes: `<map>.<alias>`, or `<map>.<config>.<alias>` with `use_attached_parent_name`;
- volume inits (the one-shot container that prepares an attached volume): `<volume name>.init`;
- networks: `<map>.<name>`, except the presets bridge / host / none, which keep their names;
- hostnames as docker-map: the container name with `.` and `_` replaced by `-`.

Every object carries labels under `LABEL_PREFIX`; ownership is by label, never by name. With several
engines (docker-map's clients) an object also names its client (`LABEL_CLIENT`); no such label means
`__default__`, so what a single-engine reconciler created keeps matching. The client is never part of a
spec hash (naming a client must not recreate anything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.model import PRESET_NETWORKS

LABEL_PREFIX = "io.reconciler"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"  # "true" on everything we own
LABEL_MAP = f"{LABEL_PREFIX}.map"
LABEL_CONFIG = f"{LABEL_PREFIX}.config"
LABEL_INSTANCE = f"{LABEL_PREFIX}.instance"
LABEL_KIND = f"{LABEL_PREFIX}.kind"  # container | volume | volume-init | network
LABEL_ALIAS = f"{LABEL_PREFIX}.alias"  # attached volume alias (volumes and volume inits)
LABEL_SPEC_HASH = f"{LABEL_PREFIX}.spec-hash"
LABEL_IMAGE = f"{LABEL_PREFIX}.image"  # the image reference the container was created from
LABEL_SELF = f"{LABEL_PREFIX}.self"  # on the daemon's own container: never manage it
LABEL_VOLUME_CREATED = f"{LABEL_PREFIX}.volume-created"  # on a volume init: the volume it prepared
LABEL_LEASE_OWNER = f"{LABEL_PREFIX}.lease-owner"  # on a replacement: the reconciler working on it
LABEL_LEASE_EXPIRES = f"{LABEL_PREFIX}.lease-expires"  # … and until when (unix time)
# On a volume: a random id written at create — its identity for the volume-init record. Engine 20.10
# reports a local volume's CreatedAt as its folder's mtime, which moves when the volume is written to.
LABEL_VOLUME_ID = f"{LABEL_PREFIX}.volume-id"
LABEL_CLIENT = f"{LABEL_PREFIX}.client"  # the client (engine) it was created for; absent: __default__
DEFAULT_CLIENT = "__default__"


def is_self(labels: Mapping[str, str] | None) -> bool:
    """reconciler's own container: never managed, whatever else its labels say."""
    return str((labels or {}).get(LABEL_SELF, "")).lower() in ("true", "1", "yes")


def owned(labels: Mapping[str, str] | None) -> bool:
    """The one ownership rule: an object is ours when it carries `managed=true` and is not our own
    container. Nothing without it is ever stopped, removed, recreated or disconnected."""
    return (labels or {}).get(LABEL_MANAGED) == "true" and not is_self(labels)


def volume_identity(labels: Mapping[str, str] | None, created_at: str) -> str:
    """What a volume init records as "the volume I prepared": the volume's id label, else (volumes created
    before it existed) its CreatedAt."""
    return (labels or {}).get(LABEL_VOLUME_ID) or created_at


def client_of(labels: Mapping[str, str] | None) -> str:
    """The client an object was created for (`__default__` when unlabelled)."""
    return (labels or {}).get(LABEL_CLIENT) or DEFAULT_CLIENT


def owned_by(labels: Mapping[str, str] | None, maps: Iterable[str], client: str | None = None) -> bool:
    """Ours, created for one of these maps (and, given a client, for that client)."""
    if client is not None and client_of(labels) != client:
        return False
    return owned(labels) and (labels or {}).get(LABEL_MAP) in set(maps)


COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"


def compose_service(labels: Mapping[str, str] | None) -> tuple[str, str, int] | None:
    """(project, service, container number) of a container docker compose runs for a service; None for
    anything else, including `docker compose run`'s one-off containers and anything of ours."""
    labels = labels or {}
    project, service = labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)
    if project is None or service is None or owned(labels) or labels.get(COMPOSE_ONEOFF, "False") == "True":
        return None
    number = labels.get(COMPOSE_NUMBER, "1")
    return project, service, int(number) if number.isdigit() else 1


@dataclass(frozen=True, order=True)
class ContainerKey:
    """Identity of one container instance in one map."""

    map: str
    config: str
    instance: str | None = None

    def __str__(self) -> str:
        return container_name(self.map, self.config, self.instance)


def container_name(map_name: str, config: str, instance: str | None = None) -> str:
    return f"{map_name}.{config}.{instance}" if instance else f"{map_name}.{config}"


def hostname(name: str) -> str:
    return name.replace(".", "-").replace("_", "-")


def attached_volume_name(map_name: str, config: str, alias: str, use_parent_name: bool) -> str:
    return f"{map_name}.{config}.{alias}" if use_parent_name else f"{map_name}.{alias}"


def volume_init_name(volume: str) -> str:
    return f"{volume}.init"


REPLACEMENT_SUFFIX = "..next"


def replacement_name(name: str) -> str:
    """The temporary name of a recreate's replacement; `..` never occurs in a map's names."""
    return f"{name}{REPLACEMENT_SUFFIX}"


def network_name(map_name: str, network: str) -> str:
    return network if network in PRESET_NETWORKS else f"{map_name}.{network}"


def base_labels(
    kind: str,
    map_name: str,
    config: str | None = None,
    instance: str | None = None,
    *,
    client: str = DEFAULT_CLIENT,
) -> dict[str, str]:
    labels = {LABEL_MANAGED: "true", LABEL_KIND: kind, LABEL_MAP: map_name}
    if client != DEFAULT_CLIENT:
        labels[LABEL_CLIENT] = client
    if config is not None:
        labels[LABEL_CONFIG] = config
    if instance is not None:
        labels[LABEL_INSTANCE] = instance
    return labels
