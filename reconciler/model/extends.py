"""`extends`: docker-map's inheritance between container configs (`ContainerMap.get_extended`).

A config is its bases merged in order (each base itself extended first), then its own values merged on top,
as docker-map's `ConfigurationObject.merge_from_obj` does:
- scalars (`image`, `user`, `healthcheck`, …): the later one wins when it is set;
- `binds`, `attaches`, `uses`, `exposes`, `networks` (docker-map's `_merge_first`): keyed by their first
  element — the bind's path or alias, the attached or used name, the exposed port as written, the network
  name. A later entry with a key already present *replaces* that entry in its place (so a child can turn
  a base's `ro` bind into `rw`); entries with new keys are appended in order;
- other lists (`instances`, `links`, `shares`, `clients`, `exec_commands`): unioned in order, duplicates of
  what is already there dropped (docker-map's `merge_list`);
- `create_options` / `host_config` / `depends_on`: dict-updated (shallow);
- `abstract` and `extends` are never inherited.
Where the list merged into is still empty, docker-map copies the newcomer as it is, duplicates included;
so do we, so that a map means here exactly what it meant there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .schema import ContainerConfig

_FIRST_ELEMENT_KEY: dict[str, Callable[[Any], object]] = {
    "binds": lambda b: b.path,
    "attaches": lambda a: a.alias,
    "uses": lambda u: u.name,
    "exposes": lambda p: p.exposed_port,  # as written: docker-map tells 80 and "80" apart
    "networks": lambda n: n.network_name,
}
_UNION = ("instances", "clients", "shares", "links", "exec_commands")
_DICTS = ("create_options", "host_config", "depends_on")
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
            values[name] = _merge_first(old, new, _FIRST_ELEMENT_KEY[name])
        elif name in _UNION:
            values[name] = _merge_list(old, new)
        elif name in _DICTS:
            values[name] = {**old, **new}
        else:
            values[name] = new if name in child.model_fields_set and new is not None else old
    return ContainerConfig.model_construct(_fields_set=base.model_fields_set | child.model_fields_set, **values)


def _merge_first(old: list[Any], new: list[Any], key: Callable[[Any], object]) -> list[Any]:
    """docker-map's `_merge_first`: a newcomer replaces the entry with its key in place (the last newcomer
    with a key wins), newcomers with new keys are appended in the order they first appear."""
    if not old:
        return list(new)
    pending: dict[object, Any] = {}
    for item in new:
        pending[key(item)] = item  # a repeated key keeps its first position and takes the last value
    merged = [pending.pop(key(item)) if key(item) in pending else item for item in old]
    return [*merged, *pending.values()]


def _merge_list(old: list[Any], new: list[Any]) -> list[Any]:
    """docker-map's `merge_list`: append what is not there yet (items need not be hashable)."""
    if not old:
        return list(new)
    merged = list(old)
    for item in new:
        if item not in merged:
            merged.append(item)
    return merged


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
