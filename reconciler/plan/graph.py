"""The dependency graph over resources, target selection, and waves.

Edges come from the desired state: a container depends on its image, its networks, the volumes it mounts
(and their inits), the containers it links to, takes volumes from or shares a network stack with. Targets
(`config`, `config.instance`, `map.config`, `map.config.instance`, groups) select containers; their
dependencies come along, as with docker-map's startup/update. Waves are levels of the graph restricted to
resources that have work: every member of a wave depends only on earlier waves, so a wave runs in parallel.
`precedence` says the same per resource (what must be done before it), so the executor starts each action
as soon as its own predecessors are done rather than when the whole wave before it is.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from reconciler.model import MapSet

from . import naming
from .resources import Kind, ResourceId


class TargetError(ValueError):
    """A target that names nothing in the maps."""


def select_targets(maps: MapSet, targets: Iterable[str]) -> set[ResourceId]:
    """Container resources named by targets (no dependencies yet); raises `TargetError` for unknown ones."""
    selected: set[ResourceId] = set()
    for target in targets:
        found = _resolve_target(maps, target)
        if not found:
            raise TargetError(f"unknown target '{target}': not a config, instance, map.config or group")
        selected |= found
    return selected


def _resolve_target(maps: MapSet, target: str) -> set[ResourceId]:
    parts = target.split(".")
    if parts[0] in maps.maps and len(parts) > 1:
        found = _in_map(maps, parts[0], parts[1:])
        if found:
            return found
    matches = {m.name: _in_map(maps, m.name, parts) for m in maps}
    matches = {name: found for name, found in matches.items() if found}
    if len(matches) > 1:
        raise TargetError(
            f"ambiguous target '{target}': it is in maps {', '.join(sorted(matches))} (write map.{target})"
        )
    return next(iter(matches.values()), set())


def _in_map(maps: MapSet, map_name: str, rest: list[str]) -> set[ResourceId]:
    """`config`, `config.instance` or a group of one map."""
    m = maps.maps[map_name]
    if len(rest) > 2:
        return set()
    config, instance = rest[0], (rest[1] if len(rest) > 1 else None)
    if config in m.model.groups and instance is None:
        out: set[ResourceId] = set()
        for member in m.model.groups[config]:
            out |= _in_map(maps, map_name, member.split("."))
        return out
    if config not in m.configs:
        return set()
    instances = m.instances(config)
    if instance is not None:
        if instance not in instances:
            return set()
        instances = [instance]
    return {ResourceId(Kind.CONTAINER, naming.container_name(map_name, config, i)) for i in instances}


def closure(edges: Mapping[ResourceId, Iterable[ResourceId]], start: Iterable[ResourceId]) -> set[ResourceId]:
    """`start` and everything it depends on, transitively."""
    seen: set[ResourceId] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(edges.get(node, ()))
    return seen


def dependents(edges: Mapping[ResourceId, Iterable[ResourceId]]) -> dict[ResourceId, set[ResourceId]]:
    """The reverse graph: who depends on each resource."""
    reverse: dict[ResourceId, set[ResourceId]] = {}
    for node, deps in edges.items():
        for dep in deps:
            reverse.setdefault(dep, set()).add(node)
    return reverse


def _oriented(
    edges: Mapping[ResourceId, Iterable[ResourceId]], work: set[ResourceId], reverse: bool
) -> dict[ResourceId, set[ResourceId]]:
    """node → what must come before it: its dependencies, or (teardown, `reverse`) its dependents."""
    graph: dict[ResourceId, set[ResourceId]] = {node: set(deps) for node, deps in edges.items()}
    if reverse:
        graph = {node: set() for node in graph} | dependents(graph)
    for node in work:
        graph.setdefault(node, set())
    return graph


def waves(
    edges: Mapping[ResourceId, Iterable[ResourceId]], work: Iterable[ResourceId], *, reverse: bool = False
) -> list[list[ResourceId]]:
    """Group resources with work into waves: a resource's wave is after every wave holding a dependency
    (a dependent, with `reverse`, for teardown), even through resources without work. Sorted, deterministic."""
    work_set = set(work)
    graph = _oriented(edges, work_set, reverse)
    wave_of: dict[ResourceId, int] = {}
    floor: dict[ResourceId, int] = {}  # the earliest wave a dependent of this node may be in
    for node in graphlib.TopologicalSorter(graph).static_order():
        level = max((floor[d] for d in graph.get(node, set()) if d in floor), default=0)
        if node in work_set:
            wave_of[node] = level
            floor[node] = level + 1
        else:
            floor[node] = level
    result: list[list[ResourceId]] = []
    for node, level in wave_of.items():
        while len(result) <= level:
            result.append([])
        result[level].append(node)
    return [sorted(w) for w in result if w]


def precedence(
    edges: Mapping[ResourceId, Iterable[ResourceId]], work: Iterable[ResourceId], *, reverse: bool = False
) -> dict[ResourceId, frozenset[ResourceId]]:
    """For each resource with work, the nearest resources with work that must be done before it (through
    resources without work). What the waves say as levels, said per resource: a resource may start as soon
    as these are done, without waiting for the slowest member of the wave before its own."""
    work_set = set(work)
    graph = _oriented(edges, work_set, reverse)
    nearest: dict[ResourceId, frozenset[ResourceId]] = {}  # node → the nearest work at or before it
    before: dict[ResourceId, frozenset[ResourceId]] = {}
    for node in graphlib.TopologicalSorter(graph).static_order():
        found = frozenset().union(*(nearest.get(d, frozenset()) for d in graph.get(node, set())))
        if node in work_set:
            before[node] = found
            nearest[node] = frozenset({node})
        else:
            nearest[node] = found
    return before
