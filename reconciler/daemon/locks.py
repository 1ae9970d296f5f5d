"""Resource locks: keys whose plans touch the same resource never run at once; all others run side by side.

A reconcile plans first, then takes the set of resources its plan touches — all or nothing, without waiting,
so a worker never sits blocked while unrelated keys wait for it (the key is queued again shortly instead;
never waiting while holding a lock also rules out deadlocks). Each resource is released as soon as the action
on it has finished, so a full reconcile busy with one slow recreate does not hold the containers it already
fixed — or never had to touch — away from healing. A container's temporary `<name>..next` is covered by the
container's own name, so two keys can never fight over one replacement.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable

from reconciler.plan.naming import REPLACEMENT_SUFFIX
from reconciler.plan.planner import Plan
from reconciler.plan.resources import Kind, ResourceId


def lock_name(rid: ResourceId) -> str:
    """One lock per resource; a container's temporary `..next` shares the container's."""
    if rid.kind is Kind.CONTAINER:
        return f"container:{rid.name.removesuffix(REPLACEMENT_SUFFIX)}"
    return f"{rid.kind.value}:{rid.name}"


def touched(plan: Plan) -> frozenset[str]:
    """The resources a plan changes: what its reconcile must hold."""
    return frozenset(lock_name(a.resource) for a in plan.actions)


class ResourceLocks:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owners: dict[str, Hashable] = {}  # resource → the key holding it

    def try_acquire(self, owner: Hashable, resources: Iterable[str]) -> frozenset[str] | None:
        """Take every resource for `owner`, or none: the resources taken, or None if one is held by another
        key (`holder_of` names it)."""
        wanted = frozenset(resources)
        with self._cond:
            if any(self._owners.get(r, owner) != owner for r in wanted):
                return None
            for resource in wanted:
                self._owners[resource] = owner
            return wanted

    def release(self, owner: Hashable, resources: Iterable[str]) -> None:
        with self._cond:
            for resource in resources:
                if self._owners.get(resource) == owner:
                    del self._owners[resource]
            self._cond.notify_all()

    def release_all(self, owner: Hashable) -> None:
        with self._cond:
            for resource in [r for r, o in self._owners.items() if o == owner]:
                del self._owners[resource]
            self._cond.notify_all()

    def holder_of(self, resources: Iterable[str]) -> Hashable | None:
        """Which key holds one of these resources (for logs), or None."""
        with self._cond:
            return next((self._owners[r] for r in sorted(resources) if r in self._owners), None)

    def held_by(self, owner: Hashable) -> frozenset[str]:
        with self._cond:
            return frozenset(r for r, o in self._owners.items() if o == owner)
