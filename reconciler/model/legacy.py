"""Keys of docker-map's older formats that 1.1.1 still loads: read as their successor, or ignored, with a warning.

docker-map 1.1.1's `ConfigurationObject.update_from_dict` passes every key it has no property for to
`update_default_from_dict`, which does nothing for a container config: old keys load there without a word,
and without effect. Here each gets a warning that names the key to write instead:

- `start_options` (docker-map 0.1 to 0.4): its guide (maps.rst, "has the same effect as host_config") documents
  the equivalent, so it is read as `host_config` — what the map's author meant;
- `network` (0.6 and 0.7): renamed `network_mode` in 0.8.0b1 "for disambiguation" (changes.rst): read as that;
- `port_bindings` at the container level: docker-map 0.1.2 to 0.1.4's YAML guide indented it beside an empty
  `start_options:` by mistake, so it never reached the engine; it keeps having no effect.

Keys docker-map never knew stay errors (with a did-you-mean), reported by the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import KeyPath, MapProblem, Severity
from .yamlfile import Positions

RENAMED = {
    "start_options": ("host_config", "docker-map 0.1 to 0.4's key, documented as having the same effect as"),
    "network": ("network_mode", "docker-map 0.7's key, renamed in 0.8 to"),
}
IGNORED = {
    "port_bindings": "docker-map ignores it here (its 0.1 guide indented it by mistake): publish ports with "
    "`exposes: {80: 80}`, or write it under host_config",
}


def legacy_keys(data: dict[str, Any], origin: Callable[[str], KeyPath], positions: Positions) -> list[MapProblem]:
    """Rewrite old keys of every container config in `data` (copies, never in place); return the notes."""
    notes: list[MapProblem] = []
    containers = data.get("containers")
    if not isinstance(containers, dict):
        return notes
    for name, cfg in containers.items():
        if isinstance(cfg, Mapping) and any(key in cfg for key in (*RENAMED, *IGNORED)):
            containers[name] = _config(dict(cfg), origin(name), positions, notes)
    return notes


def _config(cfg: dict[str, Any], path: KeyPath, positions: Positions, notes: list[MapProblem]) -> dict[str, Any]:
    for old, (new, why) in RENAMED.items():
        if old not in cfg:
            continue
        value = cfg.pop(old)
        if new not in cfg:
            cfg[new] = {} if value is None and new == "host_config" else value
        elif isinstance(value, Mapping) and isinstance(cfg[new], Mapping):
            cfg[new] = {**value, **cfg[new]}  # the current key wins, as a later source does in docker-map
        elif value is not None:
            notes.append(positions.problem((*path, old), f"both '{old}' and '{new}' are set: write only '{new}'"))
            continue
        notes.append(_warning(positions, (*path, old), f"'{old}' is {why} '{new}': loaded as '{new}' (write that)"))
    for old, why in IGNORED.items():
        if old in cfg:
            del cfg[old]
            notes.append(_warning(positions, (*path, old), f"'{old}' has no effect: {why}"))
    return cfg


def _warning(positions: Positions, path: KeyPath, message: str) -> MapProblem:
    return positions.problem(path, message, severity=Severity.WARNING)
