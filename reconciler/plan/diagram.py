"""The dependency picture: what depends on what, and why, grouped by wave — as data, Mermaid or Graphviz DOT.

One picture, three readers: `reconciler graph` prints it as Mermaid or DOT, the daemon's status page draws
it from its JSON (`Picture.as_dict`), and both may carry each node's observed state (`state_of`). It is
built from the desired state alone (pure, no engine): the nodes are the containers, the attached volumes
and their inits, and the networks of the maps; images are left out (they are pulled before any wave).

Edges point from a resource to what it needs, labelled with the reason the map gives:
- `attaches`: a container to a volume its own config attaches; `uses`: to a volume another config
  attaches, or to a container whose volumes it takes (`volumes_from`) or that provides a used volume;
- `links`: a legacy link or a link on a network endpoint; `network_mode`: sharing another container's
  network stack; `network`: a user network the container joins; `prepares`: a volume init to its volume.

Waves are the planner's (`graph.waves` over every resource): on a cold `apply`, wave 1 is created first,
and everything in a wave only needs earlier waves. Rendering escapes every name and state for its format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .graph import closure, waves
from .observed import ObservedState
from .resources import ContainerSpec, DesiredState, Kind, ResourceId

DRAWN = (Kind.NETWORK, Kind.VOLUME, Kind.VOLUME_INIT, Kind.CONTAINER)


@dataclass(frozen=True)
class Node:
    resource: ResourceId
    wave: int  # 1-based
    state: str | None = None  # with an observed state: running, exited (1), missing, present, …
    health: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.resource.kind.value,
            "name": self.resource.name,
            "wave": self.wave,
            "state": self.state,
            "health": self.health,
            "class": state_class(self),
        }


@dataclass(frozen=True)
class Edge:
    source: ResourceId  # the resource that needs…
    target: ResourceId  # …this one
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.source.name, "to": self.target.name, "label": self.label}


@dataclass(frozen=True)
class Picture:
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    waves: tuple[tuple[ResourceId, ...], ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"nodes": [n.as_dict() for n in self.nodes], "edges": [e.as_dict() for e in self.edges]}


def state_of(rid: ResourceId, observed: ObservedState) -> tuple[str, str | None]:
    """A resource's state as people read it, and its health (containers with a healthcheck only)."""
    if rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT):
        c = observed.containers.get(rid.name)
        if c is None:
            return "missing", None
        return (c.status if c.status != "exited" else f"exited ({c.exit_code})"), c.health
    present = {
        Kind.IMAGE: observed.images,
        Kind.VOLUME: observed.volumes,
        Kind.NETWORK: observed.networks,
    }[rid.kind]
    return ("present" if rid.name in present else "missing"), None


States = Mapping[ResourceId, tuple[str, str | None]]


def states_from(desired: DesiredState, observed: ObservedState) -> dict[ResourceId, tuple[str, str | None]]:
    """Each drawn resource's state and health in one engine's observed state (see `state_of`)."""
    return {rid: state_of(rid, observed) for rid in desired.all_ids() if rid.kind in DRAWN}


def picture(
    desired: DesiredState, targets: Iterable[ResourceId] | None = None, states: States | None = None
) -> Picture:
    """The picture of the maps, or of `targets` and what they need; with `states` (`states_from`, merged over
    engines), each node's state — a node no engine was asked about is `unknown`."""
    edges = {rid: {d for d in deps if d.kind in DRAWN} for rid, deps in desired.depends_on.items() if rid.kind in DRAWN}
    scope = set(edges) if targets is None else {r for r in closure(edges, targets) if r.kind in DRAWN}
    grouped = waves({rid: edges.get(rid, set()) & scope for rid in scope}, scope)
    nodes = []
    for number, wave in enumerate(grouped, start=1):
        for rid in wave:
            state, health = (None, None) if states is None else states.get(rid, ("unknown", None))
            nodes.append(Node(rid, number, state, health))
    drawn = [
        Edge(rid, dep, label)
        for rid in sorted(scope)
        for dep in sorted(edges.get(rid, set()) & scope)
        if (label := _label(desired, rid, dep)) is not None
    ]
    return Picture(tuple(nodes), tuple(drawn), tuple(tuple(w) for w in grouped))


def _label(desired: DesiredState, rid: ResourceId, dep: ResourceId) -> str | None:
    """Why `rid` needs `dep`, in the map's words; None for an edge the picture leaves implied (a container
    needs the init of a volume it mounts: the init `prepares` that volume)."""
    if rid.kind is Kind.VOLUME_INIT:
        return "prepares" if dep.kind is Kind.VOLUME else None
    spec = desired.containers.get(rid.name)
    if spec is None or dep.kind is Kind.VOLUME_INIT:
        return None
    if dep.kind is Kind.NETWORK:
        return "network"
    if dep.kind is Kind.VOLUME:
        volume = desired.volumes.get(dep.name)
        own = volume is not None and (volume.map, volume.config) == (spec.map, spec.config)
        return "attaches" if own else "uses"
    return ", ".join(_container_reasons(spec, dep.name, desired)) or "depends"


def _container_reasons(spec: ContainerSpec, other: str, desired: DesiredState) -> list[str]:
    reasons = []
    providers = {v.removesuffix(":ro").removesuffix(":rw") for v in spec.volumes_from}
    provider = desired.containers.get(other)
    owner = (provider.map, provider.config) if provider is not None else None
    attached = {v.name for v in desired.volumes.values() if (v.map, v.config) == owner}
    if other in providers or attached & {m.source for m in spec.mounts if m.type == "volume"}:
        reasons.append("uses")
    links = {name for name, _alias in spec.links} | {name for e in spec.endpoints for name, _alias in e.links}
    if other in links:
        reasons.append("links")
    if spec.network_mode == f"container:{other}":
        reasons.append("network_mode")
    return reasons


# --- rendering ---------------------------------------------------------------------------------------

_MERMAID_SHAPES: Mapping[Kind, tuple[str, str]] = {
    Kind.CONTAINER: ('["', '"]'),
    Kind.VOLUME: ('[("', '")]'),
    Kind.VOLUME_INIT: ('[/"', '"/]'),
    Kind.NETWORK: ('{{"', '"}}'),
}
_DOT_SHAPES: Mapping[Kind, str] = {
    Kind.CONTAINER: "box",
    Kind.VOLUME: "cylinder",
    Kind.VOLUME_INIT: "parallelogram",
    Kind.NETWORK: "hexagon",
}
# The state classes nodes are coloured by (`--state`): good, on its way, bad, absent.
_STATE_CLASS = {"running": "ok", "present": "ok", "created": "busy", "restarting": "busy", "paused": "busy"}
_COLOURS = {"ok": "#d8f5d0", "busy": "#fff2c2", "bad": "#f9d0d0", "missing": "#e4e4e4"}


def state_class(node: Node) -> str | None:
    """ok / busy / bad / missing, for colouring; None without a state. An exited init (code 0) is ok: it
    stays behind as the record that its volume is prepared."""
    if node.state is None:
        return None
    if node.health == "unhealthy":
        return "bad"
    if node.resource.kind is Kind.VOLUME_INIT and node.state == "exited (0)":
        return "ok"
    if node.state in ("missing", "unknown"):
        return "missing"
    return _STATE_CLASS.get(node.state, "bad")


def _caption(node: Node) -> str:
    if node.state is None:
        return node.resource.name
    health = f", {node.health}" if node.health else ""
    return f"{node.resource.name}\n{node.state}{health}"


def _mermaid_text(text: str) -> str:
    """Mermaid's entity codes for what would end a quoted label or be read as markup."""
    table = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"}
    return "".join(table.get(ch, ch) for ch in text).replace("\n", "<br/>")


def render_mermaid(pic: Picture) -> str:
    """A Mermaid flowchart: one subgraph per wave (wave 1 on the left), arrows from a resource to what it
    needs, labelled; nodes shaped by kind (box container, cylinder volume, parallelogram init, hexagon
    network) and, with states, coloured by them."""
    ids = {node.resource: f"n{i}" for i, node in enumerate(pic.nodes)}
    lines = ["flowchart RL"]
    for number in sorted({n.wave for n in pic.nodes}):
        lines.append(f'  subgraph wave{number}["wave {number}"]')
        for node in (n for n in pic.nodes if n.wave == number):
            left, right = _MERMAID_SHAPES[node.resource.kind]
            lines.append(f"    {ids[node.resource]}{left}{_mermaid_text(_caption(node))}{right}")
        lines.append("  end")
    lines.extend(f"  {ids[e.source]} -- {_mermaid_text(e.label)} --> {ids[e.target]}" for e in pic.edges)
    classes: dict[str, list[str]] = {}
    for node in pic.nodes:
        cls = state_class(node)
        if cls is not None:
            classes.setdefault(cls, []).append(ids[node.resource])
    for cls, members in sorted(classes.items()):
        lines.append(f"  classDef {cls} fill:{_COLOURS[cls]}")
        lines.append(f"  class {','.join(members)} {cls}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(pic: Picture) -> str:
    """A Graphviz digraph: one cluster per wave, the same shapes, labels and colours as the Mermaid one."""
    ids = {node.resource: f"n{i}" for i, node in enumerate(pic.nodes)}
    lines = ["digraph reconciler {", "  rankdir=RL;", '  node [fontname="sans-serif"];', "  edge [fontsize=10];"]
    for number in sorted({n.wave for n in pic.nodes}):
        lines.append(f"  subgraph cluster_wave{number} {{")
        lines.append(f'    label="wave {number}";')
        for node in (n for n in pic.nodes if n.wave == number):
            attrs = f"label={_dot_text(_caption(node))}, shape={_DOT_SHAPES[node.resource.kind]}"
            cls = state_class(node)
            if cls is not None:
                attrs += f', style=filled, fillcolor="{_COLOURS[cls]}"'
            lines.append(f"    {ids[node.resource]} [{attrs}];")
        lines.append("  }")
    lines.extend(f"  {ids[e.source]} -> {ids[e.target]} [label={_dot_text(e.label)}];" for e in pic.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"
