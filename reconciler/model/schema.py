"""The map format as pydantic models: the single source of truth for loading, validation and JSON Schema.

Each model accepts docker-map's short forms on input (`shortforms.py` turns them into the canonical shape
before validation) and exposes only the canonical, typed form to the rest of the program. Unknown keys are
errors (`extra="forbid"`); the loader turns pydantic's complaints into `MapProblem`s with file and line.

The JSON Schema generated from these models (`reconciler schema`) describes what a user may *write*: the
short forms are declared as the input types of the fields that accept them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from . import shortforms
from .window import WindowError, parse_window

PRESET_NETWORKS = frozenset({"bridge", "host", "none"})

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_CHMOD_SYMBOLIC = re.compile(r"^[ugoa]*([-+=]([rwxXst]*|[ugo]))+$")
_CHMOD_OCTAL = re.compile(r"^[0-7]{1,4}$")
_DURATION = re.compile(r"^\s*(\d+)\s*(ns|us|ms|s|m|h)?\s*$")
_DURATION_UNITS = {
    None: 1,
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _names(value: object) -> object:
    """Instance names and similar lists: a single name or a list; numbers become strings."""
    return shortforms.string_list(value, "name") if value is not None else []


AnyShortForm = Any  # documented input type of short-form fields in the JSON Schema

NameList = Annotated[list[str], BeforeValidator(_names, json_schema_input_type=str | list[str | int] | None)]


def _short(func: Any) -> Any:
    return BeforeValidator(func, json_schema_input_type=AnyShortForm)


def validate_permissions(value: str) -> str:
    """chmod notation: octal (`750`) or symbolic clauses (`u=rwX,g=rX,o=`)."""
    if _CHMOD_OCTAL.match(value) or all(_CHMOD_SYMBOLIC.match(clause) for clause in value.split(",")):
        return value
    raise ValueError(f"{value!r} is not chmod notation (e.g. '750' or 'u=rwX,g=rX,o=')")


def _permissions(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value


Permissions = Annotated[str, BeforeValidator(_permissions, json_schema_input_type=str | int)]


def _user(value: object) -> object:
    """`user`: an int uid, a name, `uid:gid` or `name:group`, or docker-map's `[user, group]`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (str, int)) for v in value):
        return f"{value[0]}:{value[1]}"
    return value


def validate_user(value: str) -> str:
    parts = value.split(":")
    if len(parts) > 2 or not all(re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$", p) for p in parts):
        raise ValueError(f"{value!r} is not a user: use a uid, a name, 'uid:gid' or 'name:group'")
    return value


User = Annotated[str, BeforeValidator(_user, json_schema_input_type=int | str | list[int | str])]


def duration_ns(value: object) -> int | None:
    """docker-map's durations: nanoseconds as a number, or a string `30s`, `1m`, `500ms`."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a duration must be a number or a string like '30s'")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration (e.g. '30s', '1m', '500ms')")
        return int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError("a duration must be a number or a string like '30s'")


Duration = Annotated[int | None, BeforeValidator(duration_ns, json_schema_input_type=int | str | None)]


class Bind(_Strict):
    """A host bind: `path` is a volume alias (host path from the map's `host`) or a container path."""

    path: str
    host_path: str | None = None
    readonly: bool = False

    @property
    def is_alias(self) -> bool:
        return not shortforms.is_path(self.path)


class Attach(_Strict):
    """An attached volume: a named volume owned by this config, shareable with others via `uses`."""

    alias: str
    path: str | None = None


class Use(_Strict):
    """A used volume: an attached alias (`[config.]alias`) or a container config (`volumes_from`)."""

    name: str
    path: str | None = None
    readonly: bool = False


class Link(_Strict):
    container: str
    alias: str | None = None

    @property
    def known_as(self) -> str:
        """The name the linked container is known by: the alias, else the reference in hostname form
        (`app_server.one` → `app-server-one`: docker-map's `get_hostname`, as `plan.naming.hostname`)."""
        return self.alias or self.container.replace(".", "-").replace("_", "-")


class PortBinding(_Strict):
    exposed_port: int | str
    host_port: int | str | None = None
    interface: str | None = None
    ipv6: bool = False

    @field_validator("exposed_port", "host_port")
    @classmethod
    def _port(cls, value: int | str | None) -> int | str | None:
        if value is None:
            return None
        text = str(value)
        if not re.match(r"^\d{1,5}(/(tcp|udp|sctp))?$", text):
            raise ValueError(f"{value!r} is not a port (e.g. 80, '53/udp'; ranges: list each port)")
        number = int(re.split(r"[-/]", text)[0])
        if not 0 <= number <= 65535:
            raise ValueError(f"port {number} is out of range")
        return value


def _link_list(value: object) -> object:
    return shortforms.links(value)


def _opt_names(value: object) -> object:
    return None if value is None else shortforms.string_list(value, "name")


class NetworkEndpoint(_Strict):
    network_name: str
    aliases: Annotated[list[str] | None, BeforeValidator(_opt_names)] = None
    links: Annotated[list[Link], _short(_link_list)] = Field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: Annotated[list[str] | None, BeforeValidator(_opt_names)] = None


class ExecPolicy(StrEnum):
    RESTART = "restart"
    INITIAL = "initial"


class ExecCommand(_Strict):
    cmd: str | list[str]
    user: User | None = None
    policy: ExecPolicy = ExecPolicy.RESTART


class HealthCheck(_Strict):
    """Docker's healthcheck; a list `test` without `CMD`/`CMD-SHELL` gets `CMD` prepended (docker-map). No
    `test` (or an empty one) keeps the image's test, as the engine does with the fields it is not sent;
    `NONE` switches the image's check off."""

    test: str | list[str] | None = None
    interval: Duration = None
    timeout: Duration = None
    retries: int | None = Field(default=None, ge=0)
    start_period: Duration = None

    @field_validator("test")
    @classmethod
    def _test(cls, value: str | list[str] | None) -> str | list[str] | None:
        if not value:
            return None
        if value in ("NONE", ["NONE"]):
            return ["NONE"]
        if isinstance(value, list) and value[0] not in ("CMD", "CMD-SHELL", "NONE"):
            return ["CMD", *value]
        return value


class NetworkModeKind(StrEnum):
    PRESET = "preset"  # bridge, host, none
    CONTAINER = "container"  # another config of this map: (config, instance)
    EXTERNAL = "external"  # `container:<name>` or `/<name>`: a container not managed by this map


class NetworkMode(_Strict):
    kind: NetworkModeKind
    value: str
    instance: str | None = None


def parse_network_mode(value: object) -> object:
    """docker-map's `get_network_mode`: presets, `disabled`, `container:x`, `/x`, `config[.instance]`.

    Called only for a key that is present: `network_mode:` left empty (null, `''`, `false`) means `none`, as
    in docker-map (`if not value or value == 'disabled'`); leaving the key out keeps the engine's default.
    """
    if isinstance(value, NetworkMode):
        return value
    if not value or value == "disabled":
        return {"kind": NetworkModeKind.PRESET, "value": "none"}
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError("a network_mode list is [config, instance]")
        return {"kind": NetworkModeKind.CONTAINER, "value": value[0], "instance": value[1]}
    if not isinstance(value, str):
        raise ValueError("network_mode must be a string")
    if value in PRESET_NETWORKS:
        return {"kind": NetworkModeKind.PRESET, "value": value}
    if value.startswith("container:"):
        return {"kind": NetworkModeKind.EXTERNAL, "value": value.removeprefix("container:")}
    if value.startswith("/"):
        return {"kind": NetworkModeKind.EXTERNAL, "value": value[1:]}
    config, _, instance = value.partition(".")
    return {"kind": NetworkModeKind.CONTAINER, "value": config, "instance": instance or None}


def _extends(value: object) -> object:
    return shortforms.string_list(value, "extends") if value is not None else []


class UpdatePolicy(StrEnum):
    """What a newer image for a container's tag does (a reconciler extension, DESIGN §2)."""

    AUTO = "auto"  # the container follows the tag (within the update window)
    NOTIFY = "notify"  # reported as pending; `apply --update` acts on it
    PINNED = "pinned"  # stays on the image id in use until the map changes its spec; never polled


def _window(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_window(value)
    except WindowError as exc:
        raise ValueError(str(exc)) from None
    return value


class StartCondition(StrEnum):
    """What a container waits for before it starts (the `depends_on` extension): the dependency has been
    started, or it is healthy (its healthcheck passed: compose's `service_healthy`)."""

    STARTED = "started"
    HEALTHY = "healthy"


def _depends_on(value: object) -> object:
    """`depends_on`: a mapping of config → `started` | `healthy`, or a list (or one name) meaning `started`."""
    if value is None:
        return {}
    if isinstance(value, (str, list)):
        return dict.fromkeys(shortforms.string_list(value, "config name"), StartCondition.STARTED)
    return value


DependsOn = Annotated[
    dict[str, StartCondition],
    BeforeValidator(_depends_on, json_schema_input_type=str | list[str] | dict[str, StartCondition] | None),
]


class ContainerConfig(_Strict):
    """One container configuration of a map (docker-map's `ContainerConfiguration`)."""

    abstract: bool = False
    extends: Annotated[list[str], BeforeValidator(_extends, json_schema_input_type=str | list[str] | None)] = Field(
        default_factory=list
    )
    image: str | None = None
    instances: NameList = Field(default_factory=list)
    clients: NameList = Field(default_factory=list)
    shares: NameList = Field(default_factory=list)
    binds: Annotated[list[Bind], _short(shortforms.binds)] = Field(default_factory=list)
    attaches: Annotated[list[Attach], _short(shortforms.attaches)] = Field(default_factory=list)
    uses: Annotated[list[Use], _short(shortforms.uses)] = Field(default_factory=list)
    links: Annotated[list[Link], _short(shortforms.links)] = Field(default_factory=list)
    exposes: Annotated[list[PortBinding], _short(shortforms.ports)] = Field(default_factory=list)
    user: User | None = None
    permissions: Permissions | None = None
    stop_timeout: int | None = Field(default=None, ge=0)
    stop_signal: str | int | None = None
    start_delay: float | None = Field(default=None, ge=0)
    network_mode: Annotated[NetworkMode | None, _short(parse_network_mode)] = None
    networks: Annotated[list[NetworkEndpoint], _short(shortforms.endpoints)] = Field(default_factory=list)
    exec_commands: Annotated[list[ExecCommand], _short(shortforms.exec_commands)] = Field(default_factory=list)
    healthcheck: Annotated[HealthCheck | None, _short(shortforms.healthcheck)] = None
    # Extension: pure start ordering (compose's `depends_on`); `healthy` waits for the dependency's health.
    depends_on: DependsOn = Field(default_factory=dict)
    persistent: bool | None = None
    update: UpdatePolicy | None = Field(
        default=None, description="auto (default): follow the tag; notify: report a newer image; pinned: stay."
    )
    update_window: str | None = Field(
        default=None, description="When auto updates may run: 'Sat 02:00-05:00' or cron and duration '0 2 * * 6 3h'."
    )
    create_options: dict[str, Any] = Field(default_factory=dict)
    host_config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("update_window")
    @classmethod
    def _update_window(cls, value: str | None) -> str | None:
        return _window(value)

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: str | None) -> str | None:
        return None if value is None else validate_permissions(value)

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else validate_user(value)

    @property
    def run_user(self) -> str | None:
        """The user the container (and its exec commands) run as: `user`'s user part only — the group of
        `uid:gid` is for chowning attached volumes (docker-map's `extract_user`)."""
        return None if self.user is None else self.user.partition(":")[0]

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and value.split() != [value]:  # empty, or with whitespace anywhere
            raise ValueError(f"{value!r} is not an image name")
        return value

    @field_validator("instances")
    @classmethod
    def _instances(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME_RE.match(name) or "." in name:
                raise ValueError(f"{name!r} is not a valid instance name (letters, digits, '_' and '-')")
        if len(set(value)) != len(value):
            raise ValueError("instance names must be unique")
        return value


def _volume(value: object) -> object:
    if isinstance(value, str):
        return {"default_path": value}
    return value


class VolumeConfig(_Strict):
    """A volume alias: its default path inside containers, and for attached volumes driver and owner."""

    default_path: str | None = None
    driver: str = "local"
    driver_options: dict[str, Any] = Field(default_factory=dict)
    user: User | None = None
    permissions: Permissions | None = None
    # Extension: a volume that already exists under this engine name (e.g. compose's `<project>_<volume>`):
    # containers `uses` it; it is never created, labelled, prepared or removed (not even by `down --volumes`).
    external: str | None = None

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: str | None) -> str | None:
        return None if value is None else validate_permissions(value)

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else validate_user(value)

    @field_validator("external")
    @classmethod
    def _external(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a volume name")
        return value


VolumeEntry = Annotated[VolumeConfig, BeforeValidator(_volume, json_schema_input_type=str | VolumeConfig)]


def _host(value: object) -> object:
    if isinstance(value, str):
        return {"default": value}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class HostPath(_Strict):
    """A host path for an alias: one for every instance (`default`) and/or one per instance name."""

    model_config = ConfigDict(extra="allow", frozen=True)
    default: str | None = None

    @model_validator(mode="after")
    def _strings(self) -> HostPath:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str):
                raise ValueError(f"host path for instance {key!r} must be a string")
        return self

    def for_instance(self, instance: str | None) -> str | None:
        if instance is not None and self.model_extra and instance in self.model_extra:
            return str(self.model_extra[instance])
        return self.default

    @property
    def per_instance(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.model_extra or {}).items()}


HostEntry = Annotated[HostPath, BeforeValidator(_host, json_schema_input_type=str | dict[str, str])]


def _network(value: object) -> object:
    return {} if value is None else value


class NetworkConfig(_Strict):
    driver: str = "bridge"
    driver_options: dict[str, Any] = Field(default_factory=dict)
    internal: bool = False
    create_options: dict[str, Any] = Field(default_factory=dict)


NetworkEntry = Annotated[NetworkConfig, BeforeValidator(_network, json_schema_input_type=dict[str, Any] | None)]


class InitSettings(_Strict):
    """How attached volumes are prepared (a reconciler extension; docker-map used the attaching image)."""

    image: str | None = None


MAP_KEYS = (
    "name",
    "repository",
    "default_tag",
    "host_root",
    "containers",
    "volumes",
    "host",
    "networks",
    "groups",
    "clients",
    "default_domain",
    "set_hostname",
    "use_attached_parent_name",
    "volume_init",
    "update",
    "update_window",
    "compose_project",
)
# Map keys docker-map did not know: a top-level mapping under one of these names stays a container config.
EXTENSION_MAP_KEYS = frozenset({"update", "update_window"})


class ContainerMapModel(_Strict):
    """One container map, as written (before `extends` is resolved)."""

    name: str
    repository: str | None = None
    default_tag: str = "latest"
    host_root: str | None = None
    containers: dict[str, ContainerConfig] = Field(default_factory=dict)
    volumes: dict[str, VolumeEntry] = Field(default_factory=dict)
    host: dict[str, HostEntry] = Field(default_factory=dict)
    networks: dict[str, NetworkEntry] = Field(default_factory=dict)
    groups: dict[str, NameList] = Field(default_factory=dict)
    clients: NameList = Field(default_factory=list)
    default_domain: str | None = None
    set_hostname: bool = True
    use_attached_parent_name: bool = False
    volume_init: InitSettings = Field(default_factory=InitSettings)
    # Extension: the docker compose project this map was imported from (`reconciler import compose`):
    # `reconciler adopt` takes over that project's containers, found by their compose labels.
    compose_project: str | None = None
    update: UpdatePolicy | None = Field(default=None, description="The containers' update policy (default auto).")
    update_window: str | None = Field(default=None, description="The containers' update window (see containers).")

    @field_validator("update_window")
    @classmethod
    def _update_window(cls, value: str | None) -> str | None:
        return _window(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value) or "." in value:
            raise ValueError(f"{value!r} is not a valid map name (letters, digits, '_' and '-')")
        return value

    @field_validator("containers")
    @classmethod
    def _container_names(cls, value: dict[str, ContainerConfig]) -> dict[str, ContainerConfig]:
        for name in value:
            if not _NAME_RE.match(name) or "." in name:
                raise ValueError(f"{name!r} is not a valid container config name (letters, digits, '_', '-')")
        return value

    @field_validator("default_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", value):
            raise ValueError(f"{value!r} is not an image tag")
        return value
