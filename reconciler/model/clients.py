"""Client configurations (docker-map's `clients`): which engines exist, and which engine runs which container.

A clients file is docker-map's client YAML, `{name: {base_url, version, timeout, tls, interfaces,
interfaces_ipv6, stop_timeout, …}}`, read by `load_clients_file` / `load_clients` into `ClientConfig`s.
The local engine (found as docker-py finds it) is the client `__default__` unless the file defines it.

Placement (`placement`): a container config runs on its own `clients`, else its map's, else `__default__`;
each instance on each of its clients. Without a clients file there is one engine and every config runs on
`__default__`, whatever the map names (docker-map maps that name clients keep working on one host).
`placement_problems` checks that every named client exists (with a did-you-mean) and that a config's
dependencies are deployed on each of its clients. Pure: no engine, no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MapError, MapProblem, did_you_mean
from .loader import MapSet, read_map_file
from .resolved import ResolvedMap
from .yamlfile import read_yaml

DEFAULT_CLIENT = "__default__"
# docker-map client keys reconciler uses; the others docker-map (or docker-fabric) knew are accepted.
_USED = {"base_url", "version", "timeout", "tls", "interfaces", "interfaces_ipv6", "stop_timeout"}
_KNOWN = _USED | {"domainname", "use_host_config", "client_class", "wait_timeout", "auth_configs", "features"}


@dataclass(frozen=True)
class TlsConfig:
    """docker-py's TLS settings: `tls: true`, or `{ca_cert, client_cert: [cert, key], verify, assert_hostname}`."""

    ca_cert: str | None = None
    client_cert: tuple[str, str] | None = None
    verify: bool = True


@dataclass(frozen=True)
class ClientConfig:
    """One engine: where it is and how its interface aliases resolve."""

    name: str
    base_url: str | None = None  # None: found as docker-py finds it (DOCKER_HOST or the default socket)
    version: str | None = None
    timeout: float | None = None
    tls: TlsConfig | None = None
    interfaces: Mapping[str, str] = field(default_factory=dict)
    interfaces_ipv6: Mapping[str, str] = field(default_factory=dict)
    stop_timeout: int | None = None

    def interface(self, alias: str) -> str | None:
        """The address of an interface alias on this client (IPv4 first, as docker-map)."""
        return self.interfaces.get(alias) or self.interfaces_ipv6.get(alias)


class ClientsError(ValueError):
    """A clients file that cannot be used; the message names the file, the line and the key."""


def default_clients() -> dict[str, ClientConfig]:
    return {DEFAULT_CLIENT: ClientConfig(DEFAULT_CLIENT)}


def load_clients_file(path: str | Path) -> dict[str, ClientConfig]:
    """docker-map's `load_clients_file`: the clients of a YAML file, plus `__default__` unless it defines it."""
    file = str(path)
    try:
        text = read_map_file(file)
        data, positions = read_yaml(text, file)
    except MapError as exc:
        raise ClientsError("; ".join(str(p) for p in exc.problems)) from None
    except OSError as exc:
        raise ClientsError(f"{file}: cannot read the clients file: {exc.strerror or exc}") from None

    def where(*path: str | int) -> str:
        line, column = positions.locate(tuple(path))
        return f"{file}:{line}:{column}" if line is not None else file

    return load_clients(data, where=where)


def load_clients(data: Any, *, where: Any = None) -> dict[str, ClientConfig]:
    """docker-map's `load_clients`: client configurations from a mapping `{name: {base_url, …}}`."""
    at = where or (lambda *path: "<clients>")
    if not isinstance(data, Mapping):
        raise ClientsError(f"{at()}: a clients file is a mapping of client names to settings")
    clients = default_clients()
    for name, settings in data.items():
        clients[str(name)] = _client(str(name), {} if settings is None else settings, at)
    return clients


def _client(name: str, settings: Any, at: Any) -> ClientConfig:
    if not isinstance(settings, Mapping):
        raise ClientsError(f"{at(name)}: {name}: the settings of a client are a mapping (base_url, tls, …)")
    for key in settings:
        if key not in _KNOWN:
            raise ClientsError(f"{at(name, key)}: {name}.{key}: unknown client setting{did_you_mean(key, _KNOWN)}")
    try:
        return ClientConfig(
            name=name,
            base_url=_opt(settings, "base_url", str),
            version=_opt(settings, "version", str),
            timeout=_opt(settings, "timeout", float),
            tls=_tls(settings.get("tls")),
            interfaces=_addresses(settings.get("interfaces")),
            interfaces_ipv6=_addresses(settings.get("interfaces_ipv6")),
            stop_timeout=_opt(settings, "stop_timeout", int),
        )
    except (TypeError, ValueError) as exc:
        raise ClientsError(f"{at(name)}: {name}: {exc}") from None


def _opt(settings: Mapping[str, Any], key: str, kind: Any) -> Any:
    value = settings.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)):
        raise ValueError(f"{key} must be a {kind.__name__}, got {value!r}")
    return kind(value)


def _addresses(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("interfaces must be a mapping of alias to address")
    return {str(k): str(v) for k, v in value.items()}


def _tls(value: Any) -> TlsConfig | None:
    if value in (None, False):
        return None
    if value is True:
        return TlsConfig()
    if not isinstance(value, Mapping):
        raise ValueError("tls must be true or a mapping {ca_cert, client_cert: [cert, key], verify}")
    cert = value.get("client_cert")
    if cert is not None and not (isinstance(cert, (list, tuple)) and len(cert) == 2):
        raise ValueError("tls.client_cert must be [cert file, key file]")
    return TlsConfig(
        ca_cert=None if value.get("ca_cert") is None else str(value["ca_cert"]),
        client_cert=None if cert is None else (str(cert[0]), str(cert[1])),
        verify=bool(value.get("verify", True)),
    )


# --- placement ----------------------------------------------------------------------------------------


def config_clients(m: ResolvedMap, config: str, clients: Mapping[str, ClientConfig] | None) -> tuple[str, ...]:
    """The clients a config runs on: its own, else its map's, else `__default__` (always that one without a
    clients file)."""
    if clients is None:
        return (DEFAULT_CLIENT,)
    return tuple(m.configs[config].clients or m.model.clients or [DEFAULT_CLIENT])


def placed_on(m: ResolvedMap, config: str, client: str, clients: Mapping[str, ClientConfig] | None) -> bool:
    return client in config_clients(m, config, clients)


def clients_in_use(maps: MapSet, clients: Mapping[str, ClientConfig] | None) -> list[str]:
    """Every client some container of the maps runs on, sorted."""
    names = {c for m in maps for config in m.configs for c in config_clients(m, config, clients)}
    return sorted(names)


def placement_problems(maps: MapSet, clients: Mapping[str, ClientConfig] | None) -> list[MapProblem]:
    """Unknown client names (at the key that names them) and dependencies not deployed on the same client."""
    if clients is None:
        return []
    problems: list[MapProblem] = []
    for m in maps:
        for index, message in _unknown(m.model.clients, clients):
            problems.append(m.positions.problem(("clients", index), message))
        for config in m.configs:
            for index, message in _unknown(m.configs[config].clients, clients):
                problems.append(m.problem_at(config, ("clients", index), message))
            problems += _split_dependencies(m, config, clients)
    return problems


def _unknown(names: Iterable[str], clients: Mapping[str, ClientConfig]) -> list[tuple[int, str]]:
    return [
        (index, f"unknown client '{name}'{did_you_mean(name, clients)}")
        for index, name in enumerate(names)
        if name not in clients
    ]


def _split_dependencies(m: ResolvedMap, config: str, clients: Mapping[str, ClientConfig]) -> list[MapProblem]:
    problems = []
    for dep in sorted(m.dependencies(config)):
        missing = [c for c in config_clients(m, config, clients) if not placed_on(m, dep, c, clients)]
        if missing:
            message = (
                f"'{config}' runs on client {', '.join(repr(c) for c in missing)} but its dependency '{dep}' "
                f"does not (dependencies resolve within one client)"
            )
            problems.append(m.problem_at(config, ("clients",), message))
    return problems
