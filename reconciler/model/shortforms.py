"""docker-map's short forms, turned into one canonical shape each.

docker-map accepts many spellings for the same thing: `binds: {app_config: ro}`, `binds: [[app_config, ro]]`,
`binds: {/etc/nginx: [config/nginx, ro]}`, `exposes: {80: 80}`, `exposes: [[8443, 8443, private]]`, ….
Each function here takes whatever the YAML gave and returns a list of plain dicts in the canonical form the
pydantic models in `schema.py` validate; it raises `ValueError` with a readable message for anything docker-map
would not have understood either. The rules follow docker-map 1.x's `dockermap.map.input` exactly, so a map
means the same thing here as there; where docker-map mis-parsed (a bare `- app_data:` bind parses to
`{app_data: None}`), we take the evident meaning (a read-write alias bind).

These functions are pure and total: any input gives a value or a `ValueError`, never another exception.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

Item = dict[str, Any]
_RO_WORDS = ("ro", "rw")
_SCALARS = (str, int, float)


def is_path(value: object) -> bool:
    """A container path rather than an alias: starts with `/` or `./` (docker-map's rule)."""
    return isinstance(value, str) and (value.startswith((posixpath.sep, "./")))


def read_only(value: object) -> bool:
    """docker-map: any true value except the string `rw` means read-only."""
    return bool(value) and value != "rw"


def _is_ro_flag(value: object) -> bool:
    return isinstance(value, bool) or value in _RO_WORDS


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, _SCALARS):
        raise ValueError(f"{what} must be a string, got {_describe(value)}")
    return str(value)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def listed(value: object, convert: Callable[[Any], Item]) -> list[Item]:
    """docker-map's `_get_listed_tuples`: a single item, a list of items, or a dict of `key: value` items."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [convert(_pair(k, v)) for k, v in value.items()]
    if isinstance(value, list):
        return [convert(v) for v in value]
    return [convert(value)]


class _Pair(list[Any]):
    """A `key: value` entry of a dict form; behaves like a two-element list but remembers its origin."""


def _pair(key: object, value: object) -> _Pair:
    pair = _Pair()
    pair.extend([key, value])
    return pair


def string_list(value: object, what: str) -> list[str]:
    """docker-map's `get_list`: None → [], a string → [it], a list of strings → the list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(v, what) for v in value]
    return [_text(value, what)]


# --- binds -------------------------------------------------------------------------------------------


def _bind_from_seq(values: list[Any]) -> Item:
    if len(values) == 3:
        return {
            "path": _text(values[0], "bind path"),
            "host_path": _host(values[1]),
            "readonly": read_only(values[2]),
        }
    if len(values) == 2:
        first, second = values
        if isinstance(second, list):
            if len(second) == 2:
                return {
                    "path": _text(first, "bind path"),
                    "host_path": _host(second[0]),
                    "readonly": read_only(second[1]),
                }
            if len(second) == 1:
                if _is_ro_flag(second[0]):
                    return {"path": _text(first, "volume alias"), "readonly": read_only(second[0])}
                return {"path": _text(first, "bind path"), "host_path": _host(second[0])}
            raise ValueError(f"nested list {second!r} must have one or two entries")
        if _is_ro_flag(second):
            return {"path": _text(first, "volume alias"), "readonly": read_only(second)}
        if second is None and isinstance(values, _Pair):
            # docker-map parses `- app_data:` to HostVolume('app_data', None) and then fails at create time;
            # the evident meaning is a read-write alias bind.
            return {"path": _text(first, "volume alias"), "readonly": False}
        return {"path": _text(first, "bind path"), "host_path": _host(second)}
    if len(values) == 1:
        return {"path": _text(values[0], "volume alias"), "readonly": False}
    raise ValueError(f"a bind needs 1 to 3 entries (path, host path, read-only), got {len(values)}")


def _host(value: object) -> str:
    if value is None:
        raise ValueError("host path is missing")
    return _text(value, "host path")


def bind_item(value: Any) -> Item:
    """One bind: an alias (`app_config`), `[alias, ro]`, `[/path, host]`, `{/path: [host, ro]}`, …"""
    if isinstance(value, str):
        return {"path": value, "readonly": False}
    if isinstance(value, list):
        return _bind_from_seq(list(value) if not isinstance(value, _Pair) else value)
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "name":
                return {"path": _text(inner, "volume alias"), "readonly": False}
            if isinstance(inner, list):
                return _bind_from_seq([key, *inner])
            return _bind_from_seq(_pair(key, inner))
        return _keyword_item(value, {"path", "host_path", "readonly", "name"}, rename={"name": "path"})
    raise ValueError(f"a bind must be an alias, a list or a mapping, got {_describe(value)}")


def binds(value: object) -> list[Item]:
    return listed(value, bind_item)


# --- attaches and uses -------------------------------------------------------------------------------


def attach_item(value: Any) -> Item:
    """One attached volume: `alias` or `[alias, mount path]` / `{alias: mount path}`."""
    if isinstance(value, str):
        return {"alias": value}
    if isinstance(value, list):
        if len(value) == 2:
            alias = _text(value[0], "volume alias")
            return {"alias": alias, "path": _text(value[1], "mount path")} if value[1] else {"alias": alias}
        if len(value) == 1:
            return {"alias": _text(value[0], "volume alias")}
        raise ValueError(f"an attached volume is `alias` or `[alias, path]`, got {len(value)} entries")
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "name":
                return {"alias": _text(inner, "volume alias")}
            return attach_item([key, inner])
        if value.get("readonly"):
            raise ValueError("attached volumes cannot be read-only")
        return _keyword_item(value, {"name", "path", "readonly"}, rename={"name": "alias"}, drop={"readonly"})
    raise ValueError(f"an attached volume must be an alias, a list or a mapping, got {_describe(value)}")


def attaches(value: object) -> list[Item]:
    return listed(value, attach_item)


def _use_from_seq(values: list[Any]) -> Item:
    if len(values) == 3:
        return {
            "name": _text(values[0], "name"),
            "path": _text(values[1], "mount path"),
            "readonly": read_only(values[2]),
        }
    if len(values) == 2:
        first, second = values
        if isinstance(second, list):
            if len(second) == 2:
                return {
                    "name": _text(first, "name"),
                    "path": _text(second[0], "mount path"),
                    "readonly": read_only(second[1]),
                }
            if len(second) == 1:
                if _is_ro_flag(second[0]):
                    return {"name": _text(first, "name"), "readonly": read_only(second[0])}
                return {"name": _text(first, "name"), "path": _text(second[0], "mount path")}
            raise ValueError(f"nested list {second!r} must have one or two entries")
        if _is_ro_flag(second) or second is None:
            return {"name": _text(first, "name"), "readonly": read_only(second)}
        return {"name": _text(first, "name"), "path": _text(second, "mount path")}
    if len(values) == 1:
        return {"name": _text(values[0], "name")}
    raise ValueError(f"a used volume needs 1 to 3 entries (name, path, read-only), got {len(values)}")


def use_item(value: Any) -> Item:
    """One used volume: an attached alias or a container config (`volumes_from`), optionally with path / ro."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, list):
        return _use_from_seq(value)
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "name":
                return {"name": _text(inner, "name")}
            if isinstance(inner, list):
                return _use_from_seq([key, *inner])
            return _use_from_seq([key, inner])
        return _keyword_item(value, {"name", "path", "readonly"})
    raise ValueError(f"a used volume must be a name, a list or a mapping, got {_describe(value)}")


def uses(value: object) -> list[Item]:
    return listed(value, use_item)


# --- links, ports, networks, exec commands, healthcheck ----------------------------------------------


def link_item(value: Any) -> Item:
    """One link: `config[.instance]` or `[config[.instance], alias]`."""
    if isinstance(value, str):
        return {"container": value}
    if isinstance(value, list):
        if len(value) == 1:
            return {"container": _text(value[0], "linked container")}
        if len(value) == 2:
            alias = None if value[1] is None else _text(value[1], "link alias")
            return {"container": _text(value[0], "linked container"), "alias": alias}
        raise ValueError(f"a link is `container` or `[container, alias]`, got {len(value)} entries")
    if isinstance(value, dict):
        return _keyword_item(value, {"container", "alias"})
    raise ValueError(f"a link must be a name, a list or a mapping, got {_describe(value)}")


def links(value: object) -> list[Item]:
    return listed(value, link_item)


def _port(value: object, what: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} must be a port number, got {_describe(value)}")
    return value


def port_item(value: Any) -> Item:
    """One port: `80` (exposed only), `[80, 8080]`, `[80, 8080, iface]`, `{80: [8080, iface]}`, …"""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return {"exposed_port": value}
    if isinstance(value, list):
        if len(value) == 1:
            return {"exposed_port": _port(value[0], "exposed port")}
        if len(value) == 2:
            exposed, host = value
            if isinstance(host, dict):
                return _keyword_item(
                    {"exposed_port": exposed, **host}, {"exposed_port", "host_port", "interface", "ipv6"}
                )
            if host is None or (isinstance(host, (int, str)) and not isinstance(host, bool)):
                return {"exposed_port": _port(exposed, "exposed port"), "host_port": host}
            if isinstance(host, list) and len(host) in (2, 3):
                return port_item([exposed, *host])
            raise ValueError("the host side must be a port, [port, interface] or [port, interface, ipv6]")
        if len(value) in (3, 4):
            item: Item = {
                "exposed_port": _port(value[0], "exposed port"),
                "host_port": value[1],
                "interface": value[2],
            }
            if len(value) == 4:
                item["ipv6"] = bool(value[3])
            return item
        raise ValueError(f"a port binding has 1 to 4 entries, got {len(value)}")
    if isinstance(value, dict):
        return _keyword_item(value, {"exposed_port", "host_port", "interface", "ipv6"})
    raise ValueError(f"a port must be a number, a list or a mapping, got {_describe(value)}")


def ports(value: object) -> list[Item]:
    return listed(value, port_item)


_ENDPOINT_FIELDS = ("network_name", "aliases", "links", "ipv4_address", "ipv6_address", "link_local_ips")


def endpoint_item(value: Any) -> Item:
    """One network endpoint: `name`, `[name, aliases…]`, `{name: {aliases: …, links: …}}`, …"""
    if isinstance(value, str):
        return {"network_name": value}
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[1], dict):
            return _keyword_item({"network_name": value[0], **value[1]}, set(_ENDPOINT_FIELDS))
        if len(value) == 2 and value[1] is None:
            return {"network_name": _text(value[0], "network name")}
        if 1 <= len(value) <= 6:
            return dict(zip(_ENDPOINT_FIELDS, value, strict=False))
        raise ValueError(f"a network endpoint has 1 to 6 entries, got {len(value)}")
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "network_name":
                return {"network_name": inner}
            return endpoint_item([key, inner])
        return _keyword_item(value, set(_ENDPOINT_FIELDS))
    raise ValueError(f"a network endpoint must be a name, a list or a mapping, got {_describe(value)}")


def endpoints(value: object) -> list[Item]:
    return listed(value, endpoint_item)


def exec_item(value: Any) -> Item:
    """One exec command: `cmd`, `[cmd, user]`, `[cmd, user, policy]` or a mapping."""
    if isinstance(value, str):
        return {"cmd": value}
    if isinstance(value, list):
        if 1 <= len(value) <= 3:
            return dict(zip(("cmd", "user", "policy"), value, strict=False))
        raise ValueError(f"an exec command has 1 to 3 entries (cmd, user, policy), got {len(value)}")
    if isinstance(value, dict):
        return _keyword_item(value, {"cmd", "user", "policy"})
    raise ValueError(f"an exec command must be a string, a list or a mapping, got {_describe(value)}")


def exec_commands(value: object) -> list[Item]:
    return listed(value, exec_item)


def healthcheck(value: object) -> Item | None:
    """`healthcheck`: a command string, `[test, interval, timeout, retries, start_period]` or a mapping."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"test": value}
    if isinstance(value, list):
        if not 1 <= len(value) <= 5:
            raise ValueError(f"a healthcheck list has 1 to 5 entries, got {len(value)}")
        return dict(zip(("test", "interval", "timeout", "retries", "start_period"), value, strict=False))
    if isinstance(value, dict):
        return value
    raise ValueError(f"a healthcheck must be a command, a list or a mapping, got {_describe(value)}")


def _keyword_item(
    value: dict[Any, Any],
    allowed: set[str],
    rename: dict[str, str] | None = None,
    drop: set[str] | None = None,
) -> Item:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}; expected some of {sorted(allowed)}")
    rename = rename or {}
    drop = drop or set()
    return {rename.get(k, k): v for k, v in value.items() if k not in drop}
