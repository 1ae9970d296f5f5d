"""Bounds on what one map file may cost to load (issue 19): size, nesting, values, containers.

Maps will arrive from git pushes and from colleagues' editors, so a map must never be able to take the
host's memory or the daemon's time: a YAML alias bomb (aliases of aliases, expanded exponentially), merge
keys of merge keys, 5,000 levels of `[[[…]]]` or a multi-megabyte file of containers are refused with a
message naming the file and the limit, before they cost more than the bound the README states.

The defaults are far above any real map (the largest map in docker-map's docs has 7 configs) and far below
what hurts: see README "Limits and hardening". `Limits` is plain data so that callers (the command line, the
daemon's settings) can pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The bounds; every one is checked before the work it bounds is done."""

    max_bytes: int = MIB  # the file's size on disk (read at most this plus one byte)
    max_depth: int = 64  # nesting of mappings and lists, counted while composing (before any recursion)
    max_values: int = 100_000  # YAML nodes composed, and values built with aliases and merge keys expanded
    max_containers: int = 2_000  # containers (configs times instances) of one map

    def setting(self, name: str) -> str:
        """How the limit is named in messages: the setting to raise, with its value."""
        value = getattr(self, name)
        shown = f"{value // MIB} MiB" if name == "max_bytes" and value % MIB == 0 else str(value)
        return f"{shown} (setting map_{name})"


DEFAULT_LIMITS = Limits()
SETTINGS = ("max_bytes", "max_depth", "max_values", "max_containers")  # each is the setting `map_<name>`


def limits_from(values: dict[str, object]) -> Limits:
    """`Limits` from settings named `map_<name>` (as the command line's environment and the daemon's settings
    give them); a value that is not a positive whole number is refused with the setting's name."""
    chosen: dict[str, int] = {}
    for name in SETTINGS:
        raw = values.get(f"map_{name}")
        if raw is None:
            continue
        try:
            number = int(str(raw))
        except ValueError:
            raise ValueError(f"setting map_{name}: {raw!r} is not a whole number") from None
        if number <= 0:
            raise ValueError(f"setting map_{name}: must be positive, got {number}")
        chosen[name] = number
    return Limits(**chosen)
