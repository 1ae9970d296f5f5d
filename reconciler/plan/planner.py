"""The planner: drift → ordered actions in parallel waves. Pure and deterministic.

`plan_update` compares the desired state with an observed snapshot and returns a `Plan`: for every resource
that differs, one `Action` (an op such as create / recreate / start / update plus the steps it takes and the
drift reasons behind it), grouped into waves that respect every dependency. It also reports what it will not
touch: strangers holding one of our names (conflicts, never touched), resources that cannot be built,
orphans (ours, but no longer in any map: removed only on request) and drift that needs a human.

Cascade: when a container is created anew or recreated, its dependents follow — containers sharing its
network stack, taking its volumes or holding a legacy link to it are recreated (the engine binds those to
the old container), containers linking to it on a user network are restarted — so no dependent is left
with a dead link (docker-map 1.1.1 leaves it broken).

`plan_down` is the teardown: everything the maps own, dependents first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from . import naming
from .drift import (
    ContainerContext,
    Drift,
    Fix,
    Reason,
    container_drift,
    init_drift,
    network_drift,
    strongest,
    volume_drift,
)
from .graph import closure, dependents, precedence, waves
from .observed import ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume
from .resources import ContainerSpec, DesiredState, Kind, ResourceId, ResourceSpec

_S = TypeVar("_S")


class Op(StrEnum):
    PULL = "pull"
    CREATE = "create"
    START = "start"
    RESTART = "restart"
    RECREATE = "recreate"
    UPDATE = "update"
    EXEC = "exec"
    RUN = "run"  # a volume init: (re)create, run to completion
    ADOPT = "adopt"  # rename a finished replacement (`<name>..next`) into place: an interrupted recreate
    # Replace a container that is not ours but runs what the map describes (docker-map's under our name,
    # compose's for the service) by the same create-first recreate: only with `PlanOptions.adopt`.
    TAKE_OVER = "take-over"
    REMOVE = "remove"
    STOP = "stop"  # only asked for explicitly (the Python API's stop)
    SIGNAL = "signal"  # likewise (the Python API's signal)


@dataclass(frozen=True)
class Action:
    resource: ResourceId
    op: Op
    steps: tuple[Op, ...]
    reasons: tuple[Drift, ...] = ()
    observed_id: str | None = None
    # What the executor builds from (the desired spec): a plan is a self-contained instruction.
    spec: ResourceSpec | None = field(default=None, compare=False, repr=False)
    # A container removed for good (`down --volumes`, pruned with volumes): its anonymous volumes too, which
    # nothing could ever mount again. Never on a recreate: those volumes are carried to the replacement.
    anonymous_volumes: bool = False

    def spec_as(self, kind: type[_S]) -> _S:
        """The action's spec, which must be of this type (the executor's one check that a plan is whole)."""
        if not isinstance(self.spec, kind):
            raise TypeError(f"{self.resource}: the plan carries no {kind.__name__} for this action")
        return self.spec

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.resource.kind.value,
            "name": self.resource.name,
            "action": self.op.value,
            "steps": [s.value for s in self.steps],
            "reasons": [r.as_dict() for r in self.reasons],
            **({"anonymous_volumes": True} if self.anonymous_volumes else {}),
        }


@dataclass(frozen=True)
class Blocked:
    """A resource that will not be changed, and why (a stranger holds its name, it cannot be built, …)."""

    resource: ResourceId
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.resource.kind.value, "name": self.resource.name, "message": self.message}


@dataclass(frozen=True)
class Note:
    """Drift that is reported but not acted on (it needs a human, or an explicit option)."""

    resource: ResourceId
    message: str
    held: bool = False  # a change the map asks for, held back after a failed health gate: not in sync

    def as_dict(self) -> dict[str, Any]:
        entry = {"kind": self.resource.kind.value, "name": self.resource.name, "message": self.message}
        return {**entry, "held": True} if self.held else entry


@dataclass(frozen=True)
class Pending:
    """A newer image for a container's tag, reported and not acted on: `update: notify` (until `apply
    --update`), or an `auto` update waiting for its update window. Not drift: `plan` stays in sync."""

    resource: ResourceId
    image: str  # the tag
    wanted: str  # the (short) id the tag resolves to now
    found: str  # the (short) id the container runs
    why: str

    def describe(self) -> str:
        return f"{self.image}: {self.found} → {self.wanted} ({self.why})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.resource.name,
            "image": self.image,
            "wanted": self.wanted,
            "found": self.found,
            "why": self.why,
        }


@dataclass(frozen=True)
class Plan:
    waves: tuple[tuple[Action, ...], ...] = ()
    blocked: tuple[Blocked, ...] = ()
    notes: tuple[Note, ...] = ()
    pending: tuple[Pending, ...] = ()  # newer images waiting (policy `notify`, or the update window)
    # The dependency graph the plan was made from: a failed action fails what depends on it.
    depends_on: Mapping[ResourceId, frozenset[ResourceId]] = field(default_factory=dict, compare=False, repr=False)
    # Each action's nearest predecessors with work (`graph.precedence`): what the waves say per action, so an
    # action may start as soon as its own are done. Empty for a plan written by hand: then the waves order it.
    after: Mapping[ResourceId, frozenset[ResourceId]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def actions(self) -> list[Action]:
        return [a for wave in self.waves for a in wave]

    @property
    def in_sync(self) -> bool:
        """Nothing to do, nothing blocked and nothing held back. Other notes (orphans kept, volume options)
        are reported, but an `apply` would not change them, so they do not count as drift; a held-back change
        is a change the map asks for that is not made (scripts must not read it as done)."""
        return not self.waves and not self.blocked and not any(n.held for n in self.notes)

    def keep(self, wanted: Callable[[Action], bool]) -> Plan:
        """The same plan with only the actions `wanted` accepts (waves left empty are dropped)."""
        waves = tuple(w for w in (tuple(a for a in wave if wanted(a)) for wave in self.waves) if w)
        return replace(self, waves=waves)

    def predecessors(self) -> dict[ResourceId, frozenset[ResourceId]]:
        """Each action's actions that must be done before it starts: its nearest predecessors in this plan
        (through those `keep` dropped), or, for a plan written by hand, the whole wave before its own."""
        if not self.after:
            previous: frozenset[ResourceId] = frozenset()
            order: dict[ResourceId, frozenset[ResourceId]] = {}
            for wave in self.waves:
                for action in wave:
                    order[action.resource] = previous
                previous = frozenset(a.resource for a in wave)
            return order
        present = {a.resource for a in self.actions}
        return {rid: self._nearest(rid, present) for rid in present}

    def _nearest(self, rid: ResourceId, present: set[ResourceId]) -> frozenset[ResourceId]:
        found: set[ResourceId] = set()
        stack, seen = list(self.after.get(rid, ())), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in present:
                found.add(node)
            else:
                stack.extend(self.after.get(node, ()))  # dropped from this plan: its own predecessors count
        return frozenset(found)

    def action_for(self, resource: ResourceId) -> Action | None:
        return next((a for a in self.actions if a.resource == resource), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "waves": [[a.as_dict() for a in wave] for wave in self.waves],
            "blocked": [b.as_dict() for b in self.blocked],
            "notes": [n.as_dict() for n in self.notes],
            "pending": [p.as_dict() for p in self.pending],
        }


@dataclass(frozen=True)
class HeldBack:
    """A container whose replacement failed its health gate: that spec on that image is not tried again.

    It matches while the map asks for the same spec (`spec_hash`) and the image tag still resolves to the same
    id; changing either retries. Only replacing the container is held — starting, updating in place or
    creating a missing one still happen, so healing goes on."""

    container: str
    spec_hash: str
    image_id: str
    why: str = ""


@dataclass(frozen=True)
class PlanOptions:
    targets: frozenset[ResourceId] | None = None  # containers; None: everything in the maps
    prune: bool = False  # remove orphans (containers and networks; volumes only with prune_volumes)
    prune_volumes: bool = False
    update_persistent: bool = False
    pull: bool = False  # pull every image in scope, not only missing ones
    apply_pending: bool = False  # `apply --update`: also move `notify` containers to their newer images
    waiting: frozenset[str] = frozenset()  # containers whose `auto` updates wait for their update window
    rejected_images: frozenset[tuple[str, str]] = frozenset()  # (reference, image id) rolled back before
    cascade: bool = True
    held: frozenset[HeldBack] = frozenset()  # (container, spec, image) that failed a health gate before
    adopt: bool = False  # take over foreign containers that run what the map describes (`reconciler adopt`)


@dataclass
class _Work:
    ops: dict[ResourceId, tuple[Op, tuple[Op, ...], list[Drift], str | None]] = field(default_factory=dict)
    blocked: dict[ResourceId, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    def set(self, rid: ResourceId, op: Op, steps: Sequence[Op], reasons: list[Drift], observed_id: str | None) -> None:
        self.ops[rid] = (op, tuple(steps), reasons, observed_id)


_CONTAINER_OP = {
    Fix.CREATE: (Op.CREATE, (Op.CREATE, Op.START)),
    Fix.RECREATE: (Op.RECREATE, (Op.RECREATE,)),
    Fix.RESTART: (Op.RESTART, (Op.RESTART,)),
    Fix.START: (Op.START, (Op.START,)),
    Fix.UPDATE: (Op.UPDATE, (Op.UPDATE,)),
    Fix.EXEC: (Op.EXEC, (Op.EXEC,)),
}


def _container_steps(drifts: list[Drift]) -> tuple[Op, tuple[Op, ...]]:
    fix = strongest(drifts)
    op, steps = _CONTAINER_OP[fix]
    fixes = {d.fix for d in drifts}
    if fix in (Fix.START, Fix.RESTART) and Fix.UPDATE in fixes:
        steps = (Op.UPDATE, *steps)
    if fix is Fix.UPDATE and Fix.EXEC in fixes:
        steps = (*steps, Op.EXEC)  # starting, restarting and recreating run the exec commands themselves
    return op, steps


def observed_scope(desired: DesiredState, targets: Iterable[ResourceId]) -> frozenset[str]:
    """The containers (by name, volume inits included) whose observed state a plan of these `targets` reads:
    the targets with everything they depend on, and every container that depends on those — a recreate
    cascades to them. The daemon's reconcile of one container looks at these only (`observe(look_at=…)`),
    not at every container of the maps; planning from that look (and from a full one when the plan
    `reaches_beyond` it) gives the same plan as from a full look (tests/unit/test_planner_properties.py)."""
    scope = closure(desired.depends_on, targets)
    # A renewed container's dependents follow it; a renewed network's too, but the containers on a network
    # are often all of them: a plan that renews one is made again from a full look (`reaches_beyond`).
    follow = {rid: deps for rid, deps in dependents(desired.depends_on).items() if rid.kind is Kind.CONTAINER}
    reach = closure(follow, scope)
    return frozenset(r.name for r in reach if r.kind in (Kind.CONTAINER, Kind.VOLUME_INIT))


def reaches_beyond(plan: Plan) -> bool:
    """A plan made from the look of `observed_scope` that may reach further than that look: it renews a
    network, and every container on the network follows."""
    return any(a.resource.kind is Kind.NETWORK for a in plan.actions)


def plan_update(desired: DesiredState, observed: ObservedState, options: PlanOptions | None = None) -> Plan:
    """What to do so that the engine matches the desired state (within the targets, if any)."""
    options = options or PlanOptions()
    scope = closure(desired.depends_on, options.targets) if options.targets is not None else set(desired.all_ids())
    work = _Work()
    unbuildable = dict(desired.problems)
    work.blocked.update((rid, msg) for rid, msg in unbuildable.items() if rid in scope or options.targets is None)
    ctx = ContainerContext(
        observed,
        update_persistent=options.update_persistent,
        rejected_images=options.rejected_images,
        apply_pending=options.apply_pending,
        waiting=options.waiting,
    )
    for rid in sorted(scope):
        if rid in unbuildable:
            continue
        if rid.kind is Kind.IMAGE:
            _image(rid, observed, options.pull, work)
        elif rid.kind is Kind.NETWORK:
            _network(desired, observed, rid, work)
        elif rid.kind is Kind.VOLUME:
            _volume(desired, observed, rid, work)
        elif rid.kind is Kind.CONTAINER:
            spec = desired.containers[rid.name]
            _container(spec, observed, ctx, work, adopt=options.adopt, externals=desired.external_volumes)
    # Inits last: they depend on whether their volume is being created in this very plan.
    for rid in sorted(scope):
        if rid.kind is Kind.VOLUME_INIT:
            _init(desired, observed, rid, work)
    _hold_back(desired, observed, options.held, work)
    _rejected(desired, observed, options.rejected_images, scope, work)
    if options.cascade:
        _cascade(desired, observed, work)
        _hold_back(desired, observed, options.held, work)  # a cascade must not replace a held one either
    _port_clashes(desired, observed, work)
    _block_dependents(desired, work)
    if options.targets is None:
        _orphans(desired, observed, options, work)
    return _assemble(desired, work)


_STARTS = frozenset({Op.CREATE, Op.RECREATE, Op.START, Op.TAKE_OVER})
_ANY_IP = frozenset({"", "0.0.0.0", "::"})  # every address: clashes with any


def _port_clashes(desired: DesiredState, observed: ObservedState, work: _Work) -> None:
    """A container about to start whose host port another running container already publishes (ours or
    a stranger's) is blocked, naming it — instead of failing at start and leaving a `Created` container."""
    for rid, (op, _steps, _reasons, observed_id) in sorted(work.ops.items()):
        spec = desired.containers.get(rid.name) if rid.kind is Kind.CONTAINER else None
        if spec is None or op not in _STARTS:
            continue
        # A take-over stops the foreign container before ours starts: its ports do not count either.
        replaced = observed.container_by_id(observed_id) if op is Op.TAKE_OVER and observed_id else None
        clash = _port_holder(spec, observed, replaced.name if replaced is not None else None)
        if clash is not None:
            del work.ops[rid]
            work.blocked[rid] = clash


def _port_holder(spec: ContainerSpec, observed: ObservedState, replaced: str | None = None) -> str | None:
    """Why the spec cannot publish its host ports now (another container holds one), or None. The
    container itself, its replacement and the container it takes over do not count: they stop first."""
    own = {spec.name, naming.replacement_name(spec.name), replaced}
    for port in spec.ports:
        if port.host_port is None:
            continue
        proto = port.container_port.partition("/")[2] or "tcp"
        wanted_ip = port.host_ip or ""
        for (ip, host_port, held_proto), holder in sorted(observed.published.items()):
            same_ip = wanted_ip in _ANY_IP or ip in _ANY_IP or ip == wanted_ip
            if holder in own or host_port != str(port.host_port) or held_proto != proto or not same_ip:
                continue
            return f"host port {wanted_ip or '0.0.0.0'}:{port.host_port}/{proto} is already published by '{holder}'"
    return None


def _image(rid: ResourceId, observed: ObservedState, pull: bool, work: _Work) -> None:
    """Missing images are pulled; present ones only on request (`--pull`)."""
    if rid.name not in observed.images:
        work.set(rid, Op.PULL, (Op.PULL,), [Drift(Reason.MISSING, "image", rid.name, None, Fix.CREATE)], None)
    elif pull:
        work.set(rid, Op.PULL, (Op.PULL,), [Drift(Reason.IMAGE, "pull", "newest", "local", Fix.UPDATE)], None)


def _create(spec: ContainerSpec, work: _Work) -> None:
    """A container the engine does not have: create it and start it."""
    work.set(
        spec.id,
        Op.CREATE,
        (Op.CREATE, Op.START),
        [Drift(Reason.MISSING, "container", spec.name, None, Fix.CREATE)],
        None,
    )


def _stranger(rid: ResourceId) -> str:
    return f"a {rid.kind.value} named '{rid.name}' exists without reconciler's labels: not touched"


def _created_or_foreign(rid: ResourceId, found: ObservedNetwork | ObservedVolume | None, work: _Work) -> bool:
    """A network or volume that is missing is created; one under its name that is not ours is left alone
    (blocked). True when either was decided, so that only one of ours is compared with its map."""
    if found is None:
        drift = Drift(Reason.MISSING, rid.kind.value, rid.name, None, Fix.CREATE)
        work.set(rid, Op.CREATE, (Op.CREATE,), [drift], None)
    elif not found.managed:
        work.blocked[rid] = _stranger(rid)
    return found is None or not found.managed


def _network(desired: DesiredState, observed: ObservedState, rid: ResourceId, work: _Work) -> None:
    found = observed.networks.get(rid.name)
    if not _created_or_foreign(rid, found, work):
        assert found is not None
        drifts = network_drift(desired.networks[rid.name], found)
        strangers = _strangers_on(found, observed)
        if drifts and strangers:
            # Recreating disconnects every endpoint: never do that to containers that are not ours.
            shown = ", ".join(s[:12] for s in strangers)
            work.blocked[rid] = (
                f"network '{rid.name}' differs from its map ({drifts[0].describe()}) but containers without "
                f"reconciler's labels are attached ({shown}): not recreated; disconnect them to let it be"
            )
        elif drifts:
            work.set(rid, Op.RECREATE, (Op.RECREATE,), drifts, found.id)


def _strangers_on(network: ObservedNetwork, observed: ObservedState) -> list[str]:
    """Ids of containers attached to `network` that are not ours (observation only inspects ours and those
    holding our names, so an unknown id is a stranger too)."""
    strangers = []
    for ident in network.containers:
        container = observed.container_by_id(ident)
        if container is None or not container.managed:
            strangers.append(ident)
    return sorted(strangers)


def _volume(desired: DesiredState, observed: ObservedState, rid: ResourceId, work: _Work) -> None:
    found = observed.volumes.get(rid.name)
    if not _created_or_foreign(rid, found, work):
        assert found is not None
        for drift in volume_drift(desired.volumes[rid.name], found):
            work.notes.append(Note(rid, f"{drift.describe()} (volumes are data: recreate it yourself if you mean it)"))


def _init(desired: DesiredState, observed: ObservedState, rid: ResourceId, work: _Work) -> None:
    spec = desired.inits[rid.name]
    found = observed.containers.get(rid.name)
    volume_rid = ResourceId(Kind.VOLUME, spec.volume)
    if volume_rid in work.blocked:
        return
    if found is None:
        work.set(rid, Op.RUN, (Op.RUN,), [Drift(Reason.MISSING, "init", "ran", None, Fix.CREATE)], None)
        return
    if not found.managed:
        work.blocked[rid] = _stranger(rid)
        return
    drifts = init_drift(spec, found, observed.volumes.get(spec.volume))
    volume_op = work.ops.get(volume_rid)
    if volume_op is not None and volume_op[0] is Op.CREATE:
        drifts.append(Drift(Reason.INIT, "volume", "prepared", "volume is new", Fix.RECREATE))
    if drifts:
        work.set(rid, Op.RUN, (Op.RUN,), drifts, found.id)


def _container(
    spec: ContainerSpec,
    observed: ObservedState,
    ctx: ContainerContext,
    work: _Work,
    *,
    adopt: bool = False,
    externals: frozenset[str] = frozenset(),
) -> None:
    found = observed.containers.get(spec.name)
    missing = _missing_external(spec, observed, externals)
    if missing:
        work.blocked[spec.id] = (
            f"external volume '{missing}' does not exist (external volumes are used, never created: "
            f"`docker volume create {missing}` or correct the name)"
        )
        return
    foreign = _foreign(spec, observed, found)
    if foreign is not None:
        _take_over(spec, foreign, adopt, work)
        return
    replacement = observed.containers.get(naming.replacement_name(spec.name))
    if found is None and replacement is not None and adoptable(spec, replacement):
        # A recreate was interrupted after the old container went and before the rename: the replacement
        # is complete and runs, so it takes the name (a new container would be a second outage).
        drift = Drift(Reason.MISSING, "container", spec.name, "replacement ready under a temporary name", Fix.CREATE)
        work.set(spec.id, Op.ADOPT, (Op.ADOPT,), [drift], replacement.id)
        return
    if found is None:
        _create(spec, work)
        return
    if found.is_self:
        work.blocked[spec.id] = f"'{spec.name}' is reconciler's own container: never managed"
        return
    if not found.managed:
        work.blocked[spec.id] = _stranger(spec.id)
        return
    drifts = container_drift(spec, found, ctx)
    for drift in (d for d in drifts if d.reason is Reason.IMAGE and d.fix is Fix.NONE):
        why = "waiting for the update window" if spec.name in ctx.waiting else "update: notify; apply --update takes it"
        work.pending.append(Pending(spec.id, spec.image, str(drift.wanted), str(drift.found), why))
    drifts = [d for d in drifts if d.fix is not Fix.NONE]
    if drifts:
        op, steps = _container_steps(drifts)
        work.set(spec.id, op, steps, drifts, found.id)


def _missing_external(spec: ContainerSpec, observed: ObservedState, externals: frozenset[str]) -> str | None:
    """An external volume the container mounts that the engine does not have (the engine would silently
    create an empty one, and the data elsewhere would look lost)."""
    return next(
        (m.source for m in spec.mounts if m.source in externals and m.source not in observed.volumes),
        None,
    )


def _foreign(spec: ContainerSpec, observed: ObservedState, found: ObservedContainer | None) -> ObservedContainer | None:
    """A container that is not ours but runs what `spec` describes: a stranger holding its name (never our
    own container), or — when nothing holds the name — compose's container for the service."""
    if found is not None:
        return None if found.managed or found.is_self else found
    if spec.compose_service is None:
        return None
    matches = [c for c in observed.containers.values() if naming.compose_service(c.labels) == spec.compose_service]
    return min(matches, key=lambda c: (not c.running, c.name)) if matches else None


def _take_over(spec: ContainerSpec, foreign: ObservedContainer, adopt: bool, work: _Work) -> None:
    """Only `adopt` replaces a foreign container; otherwise it blocks its name (docker-map's) or, while it
    runs, the service it provides (compose's: two of them would share ports and data)."""
    under_our_name = foreign.name == spec.name
    if adopt:
        drift = Drift(Reason.FOREIGN, "owner", "reconciler", foreign.name, Fix.RECREATE)
        work.set(spec.id, Op.TAKE_OVER, (Op.TAKE_OVER,), [drift], foreign.id)
    elif under_our_name:
        work.blocked[spec.id] = _stranger(spec.id) + " (`reconciler adopt` takes it over)"
    elif foreign.running:
        project, service, _number = spec.compose_service or ("", "", 0)
        work.blocked[spec.id] = (
            f"compose container '{foreign.name}' (project {project}, service {service}) runs this service: "
            "`reconciler adopt` takes it over"
        )
    else:
        _create(spec, work)


# --- held back (a failed health gate) -----------------------------------------------------------------


def held_key(spec: ContainerSpec, observed: ObservedState) -> tuple[str, str, str]:
    """What a hold is about: the container, its desired spec, and the id its image tag resolves to now."""
    image = observed.images.get(spec.image)
    return spec.name, spec.spec_hash, image.id if image is not None else ""


def _hold_back(desired: DesiredState, observed: ObservedState, held: frozenset[HeldBack], work: _Work) -> None:
    """Drop the replacement of held containers; what else drifted (stopped, limits) is still fixed."""
    if not held:
        return
    by_key = {(h.container, h.spec_hash, h.image_id): h for h in held}
    for rid, (op, _steps, reasons, observed_id) in sorted(work.ops.items()):
        spec = desired.containers.get(rid.name) if rid.kind is Kind.CONTAINER else None
        if spec is None or op is not Op.RECREATE:
            continue
        hold = by_key.get(held_key(spec, observed))
        if hold is None:
            continue
        note = Note(rid, f"held back: {hold.why or 'its replacement failed a health gate'}", held=True)
        if note not in work.notes:
            work.notes.append(note)
        rest = [d for d in reasons if Fix.NONE < d.fix < Fix.RECREATE]
        if rest:
            work.set(rid, *_container_steps(rest), rest, observed_id)
        else:
            del work.ops[rid]


def _rejected(
    desired: DesiredState,
    observed: ObservedState,
    rejected: frozenset[tuple[str, str]],
    scope: set[ResourceId],
    work: _Work,
) -> None:
    """An image update rolled back before is not drift (the rule leaves it out), but it must not be
    invisible either: a "held back" note says which image waits, and how to move on."""
    for rid in sorted(r for r in scope if r.kind is Kind.CONTAINER and rejected):
        spec, found = desired.containers[rid.name], observed.containers.get(rid.name)
        wanted = observed.images.get(spec.image)
        if found is None or wanted is None or wanted.id == found.image_id or (spec.image, wanted.id) not in rejected:
            continue
        short = wanted.id.removeprefix("sha256:")[:12]
        message = (
            f"held back: image {spec.image} ({short}) failed its health gate; not deployed until the tag moves"
            f" (or `reconciler release {rid.name}`, `apply --force`)"
        )
        if not any(n.resource == rid and n.message.startswith("held back") for n in work.notes):
            work.notes.append(Note(rid, message, held=True))


def adoptable(spec: ContainerSpec, replacement: ObservedContainer) -> bool:
    """A replacement left by an interrupted recreate can take the name: ours, built from the spec the map
    wants now, running, and healthy if it has a healthcheck."""
    return (
        replacement.managed
        and replacement.spec_hash in spec.spec_hashes
        and replacement.status == "running"
        and replacement.health in (None, "healthy")
    )


def _relation(spec: ContainerSpec, dependency: str) -> Fix:
    """How a dependent must follow when `dependency` is created anew: recreate, restart or nothing."""
    if spec.network_mode == f"container:{dependency}":
        return Fix.RECREATE
    if any(v.split(":")[0] == dependency for v in spec.volumes_from):
        return Fix.RECREATE
    if any(name == dependency for name, _ in spec.links):
        # The engine binds a legacy link to the container object, not the name: a restart still points at
        # the removed container ("Cannot link to a non running container"), so only a new container works.
        return Fix.RECREATE
    if any(name == dependency for e in spec.endpoints for name, _ in e.links):
        return Fix.RESTART
    return Fix.NONE


def _cascade(desired: DesiredState, observed: ObservedState, work: _Work) -> None:
    reverse = dependents(desired.depends_on)
    renewed = (Op.CREATE, Op.RECREATE, Op.ADOPT, Op.TAKE_OVER)
    pending = sorted(rid for rid, (op, *_rest) in work.ops.items() if op in renewed)
    while pending:
        rid = pending.pop(0)
        for dependent in sorted(reverse.get(rid, ())):
            if dependent.kind is not Kind.CONTAINER or dependent in work.blocked:
                continue
            found = observed.containers.get(dependent.name)
            if found is None or not found.managed:
                continue  # created fresh anyway, or a stranger
            if rid.kind is Kind.NETWORK:
                fix = Fix.RECREATE
            elif rid.kind is Kind.CONTAINER:
                fix = _relation(desired.containers[dependent.name], rid.name)
            else:
                continue
            if fix is Fix.NONE or (fix is Fix.RESTART and not found.running):
                continue
            current = work.ops.get(dependent)
            reason = Drift(Reason.DEPENDENCY, rid.name, "follows its recreation", "stale", fix)
            reasons = [*(current[2] if current else []), reason]
            op, steps = _container_steps(reasons)
            if current is not None and current[0] is op:
                work.set(dependent, op, current[1], reasons, found.id)
                continue
            work.set(dependent, op, steps, reasons, found.id)
            if op is Op.RECREATE:
                pending.append(dependent)


def _block_dependents(desired: DesiredState, work: _Work) -> None:
    """Work that depends on a blocked resource cannot happen either."""
    changed = True
    while changed:
        changed = False
        for rid in sorted(work.ops):
            blocked_dep = next((d for d in sorted(desired.depends_on.get(rid, ())) if d in work.blocked), None)
            if blocked_dep is not None:
                work.blocked[rid] = f"depends on {blocked_dep}, which is blocked"
                del work.ops[rid]
                changed = True


def _orphans(desired: DesiredState, observed: ObservedState, options: PlanOptions, work: _Work) -> None:
    # Containers that cannot be built right now are still in their map: blocked, never orphans.
    wanted_containers = set(desired.containers) | set(desired.inits) | {rid.name for rid, _ in desired.problems}
    for name, container in sorted(observed.containers.items()):
        base = name.removesuffix(naming.REPLACEMENT_SUFFIX)
        if base != name and base in desired.containers and container.managed:
            planned = work.ops.get(ResourceId(Kind.CONTAINER, base))
            if planned is not None and planned[0] is Op.ADOPT:
                continue  # it takes the name
            # A replacement left behind by an interrupted recreate: cleaned up (unless another reconcile
            # holds its lease: the executor checks, the planner has no clock).
            drift = Drift(Reason.MISSING, "temporary", "absent", "left by an interrupted recreate", Fix.CREATE)
            work.set(ResourceId(Kind.CONTAINER, name), Op.REMOVE, (Op.REMOVE,), [drift], container.id)
            continue
        if container.managed and _ours(container.labels, desired) and name not in wanted_containers:
            rid = ResourceId(Kind.VOLUME_INIT if container.kind == Kind.VOLUME_INIT.value else Kind.CONTAINER, name)
            _orphan(rid, container.id, options.prune, work)
    for name, volume in sorted(observed.volumes.items()):
        if _ours(volume.labels, desired) and name not in desired.volumes:
            _orphan(ResourceId(Kind.VOLUME, name), name, options.prune and options.prune_volumes, work)
    for name, network in sorted(observed.networks.items()):
        if _ours(network.labels, desired) and name not in desired.networks:
            _orphan(ResourceId(Kind.NETWORK, name), network.id, options.prune, work)


def _ours(labels: Any, desired: DesiredState) -> bool:
    return naming.owned_by(labels, desired.maps, desired.client)


def _orphan(rid: ResourceId, ident: str, remove: bool, work: _Work) -> None:
    drift = Drift(Reason.MISSING, "map", "absent", "present", Fix.CREATE)
    if remove:
        work.set(rid, Op.REMOVE, (Op.REMOVE,), [drift], ident)
    else:
        hint = "--prune --volumes" if rid.kind is Kind.VOLUME else "--prune"
        work.notes.append(Note(rid, f"orphan: no longer in any map (remove it with {hint})"))


def _assemble(desired: DesiredState, work: _Work) -> Plan:
    edges: dict[ResourceId, set[ResourceId]] = {rid: set(deps) for rid, deps in desired.depends_on.items()}
    removals = [rid for rid, (op, *_rest) in work.ops.items() if op is Op.REMOVE]
    # Orphans go first for containers (they may hold ports or names the map needs now) and last for
    # networks and volumes (containers may still be attached until the main waves replaced them).
    others = [rid for rid in work.ops if rid not in removals]
    for rid in others:
        edges.setdefault(rid, set()).update(r for r in removals if r.kind in (Kind.CONTAINER, Kind.VOLUME_INIT))
    for rid in removals:
        if rid.kind in (Kind.NETWORK, Kind.VOLUME):
            edges.setdefault(rid, set()).update(others)
            edges[rid].update(r for r in removals if r.kind in (Kind.CONTAINER, Kind.VOLUME_INIT))
    # Only what leads from the work matters to its order (a resource's wave comes from its dependencies,
    # transitively); the rest of the maps' graph is left out, so a plan of one container costs as much at
    # 500 containers as at 5.
    reached = closure(edges, work.ops)
    edges = {rid: deps for rid, deps in edges.items() if rid in reached}
    grouped = waves(edges, work.ops)
    plan_waves = tuple(
        tuple(
            Action(rid, op, steps, tuple(reasons), observed_id, desired.find(rid))
            for rid in wave
            for op, steps, reasons, observed_id in [work.ops[rid]]
        )
        for wave in grouped
    )
    return Plan(
        waves=plan_waves,
        blocked=tuple(Blocked(rid, msg) for rid, msg in sorted(work.blocked.items())),
        notes=tuple(sorted(work.notes, key=lambda n: (n.resource, n.message))),
        pending=tuple(sorted(work.pending, key=lambda p: p.resource)),
        depends_on=desired.depends_on,
        after=precedence(edges, work.ops),
    )


# --- teardown ----------------------------------------------------------------------------------------


def plan_down(
    desired: DesiredState,
    observed: ObservedState,
    targets: frozenset[ResourceId] | None = None,
    *,
    volumes: bool = False,
) -> Plan:
    """Remove what the maps own, dependents first. With targets: those containers and every container that
    depends on them; their dependencies stay. Volumes (and the inits that record their preparation) only with
    `volumes`. Objects without our labels are reported, never touched."""
    work = _Work()
    if targets is None:
        for name in sorted(desired.containers):
            found = observed.containers.get(name)
            if found is not None and not found.managed:
                work.blocked[ResourceId(Kind.CONTAINER, name)] = _stranger(ResourceId(Kind.CONTAINER, name))
        scope = _everything_owned(desired, observed, volumes=volumes)
    else:
        # The targets and every container that depends on them (it would be left broken otherwise);
        # their own dependencies stay up.
        scope = {r for r in closure(dependents(desired.depends_on), targets) if r.kind is Kind.CONTAINER}
    for rid in sorted(scope):
        if rid.kind is Kind.VOLUME_INIT and not volumes:
            continue
        if rid.kind is Kind.VOLUME and not volumes:
            continue
        obj = _observed_object(observed, rid)
        if obj is None:
            continue
        if not obj[1]:
            work.blocked[rid] = _stranger(rid)
            continue
        work.set(rid, Op.REMOVE, (Op.REMOVE,), [], obj[0])
    edges: dict[ResourceId, set[ResourceId]] = {rid: set(deps) for rid, deps in desired.depends_on.items()}
    # Networks and volumes go after every container (orphans included), whatever the graph says.
    containers = [r for r in work.ops if r.kind in (Kind.CONTAINER, Kind.VOLUME_INIT)]
    for rid in work.ops:
        if rid.kind in (Kind.NETWORK, Kind.VOLUME):
            for c in containers:
                edges.setdefault(c, set()).add(rid)
    grouped = waves(edges, work.ops, reverse=True)
    return Plan(
        waves=tuple(
            tuple(_removal(rid, work.ops[rid][3], desired, volumes=volumes) for rid in wave) for wave in grouped
        ),
        blocked=tuple(Blocked(rid, msg) for rid, msg in sorted(work.blocked.items())),
        depends_on=desired.depends_on,
        after=precedence(edges, work.ops, reverse=True),
    )


def _removal(rid: ResourceId, ident: str | None, desired: DesiredState, *, volumes: bool) -> Action:
    with_volumes = volumes and rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT)
    return Action(rid, Op.REMOVE, (Op.REMOVE,), (), ident, desired.find(rid), anonymous_volumes=with_volumes)


def _everything_owned(desired: DesiredState, observed: ObservedState, *, volumes: bool) -> set[ResourceId]:
    names = {n for n, c in observed.containers.items() if c.managed and _ours(c.labels, desired)}
    scope = {ResourceId(_container_kind(observed.containers[n]), n) for n in names}
    scope |= {ResourceId(Kind.NETWORK, n) for n, net in observed.networks.items() if _ours(net.labels, desired)}
    if volumes:
        scope |= {ResourceId(Kind.VOLUME, n) for n, v in observed.volumes.items() if _ours(v.labels, desired)}
    return scope


def _container_kind(container: ObservedContainer) -> Kind:
    return Kind.VOLUME_INIT if container.kind == Kind.VOLUME_INIT.value else Kind.CONTAINER


def _observed_object(observed: ObservedState, rid: ResourceId) -> tuple[str, bool] | None:
    if rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT):
        c = observed.containers.get(rid.name)
        return None if c is None else (c.id, c.managed)
    if rid.kind is Kind.VOLUME:
        v = observed.volumes.get(rid.name)
        return None if v is None else (v.name, v.managed)
    if rid.kind is Kind.NETWORK:
        n = observed.networks.get(rid.name)
        return None if n is None else (n.id, n.managed)
    return None
