"""`extends`: docker-map's inheritance between container configs.

A config is its bases merged in order (each base itself extended first), then its own values merged on top:
- scalars (`image`, `user`, `healthcheck`, …): the later one wins when it is set;
- `binds`, `attaches`, `uses`, `exposes`, `networks`: merged by their first element — an entry whose path /
  alias / port / network already exists is kept as it is and the newcomer dropped (docker-map's `_merge_first`);
- other lists (`instances`, `links`, `shares`, `clients`, `exec_commands`): unioned in order;
- `create_options` / `host_config`: dict-updated (shallow);
- `abstract` and `extends` are never inherited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .schema import ContainerConfig

_FIRST_ELEMENT_KEY: dict[str, Callable[[Any], object]] = {
    "binds": lambda b: b.path,
    "attaches": lambda a: a.alias,
    "uses": lambda u: u.name,
    "exposes": lambda p: str(p.exposed_port),
    "networks": lambda n: n.network_name,
}
_UNION = ("instances", "clients", "shares", "links", "exec_commands")
_DICTS = ("create_options", "host_config")
_NOT_INHERITED = ("abstract", "extends")


class ExtendsError(ValueError):
    """An `extends` that names an unknown config or loops back on itself."""

    def __init__(self, config: str, message: str) -> None:
        super().__init__(message)
        self.config = config


def merge(base: ContainerConfig, child: ContainerConfig) -> ContainerConfig:
    """`child` merged onto `base` with docker-map's rules; `child`'s abstract/extends are kept."""
    values: dict[str, Any] = {}
    for name in ContainerConfig.model_fields:
        if name in _NOT_INHERITED:
            values[name] = getattr(child, name)
            continue
        old, new = getattr(base, name), getattr(child, name)
        if name in _FIRST_ELEMENT_KEY:
            key = _FIRST_ELEMENT_KEY[name]
            seen = {key(item) for item in old}
            values[name] = [*old, *(item for item in new if key(item) not in seen)]
        elif name in _UNION:
            values[name] = [*old, *(item for item in new if item not in old)]
        elif name in _DICTS:
            values[name] = {**old, **new}
        else:
            values[name] = new if name in child.model_fields_set and new is not None else old
    return ContainerConfig.model_construct(_fields_set=base.model_fields_set | child.model_fields_set, **values)


def extend_all(configs: Mapping[str, ContainerConfig]) -> dict[str, ContainerConfig]:
    """Every config with its `extends` chain merged in (abstract ones included, for reference)."""
    done: dict[str, ContainerConfig] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> ContainerConfig:
        if name in done:
            return done[name]
        config = configs[name]
        if not config.extends:
            done[name] = config
            return config
        result = ContainerConfig()
        for base_name in config.extends:
            if base_name in (*chain, name):
                loop = " → ".join((*chain, name, base_name))
                raise ExtendsError(name, f"'extends' loops back on itself: {loop}")
            if base_name not in configs:
                raise ExtendsError(name, f"extends unknown config '{base_name}'")
            result = merge(result, resolve(base_name, (*chain, name)))
        done[name] = merge(result, config)
        return done[name]

    for name in configs:
        resolve(name, ())
    return done
