"""Keys: what the work queue holds, and the pure mapping from an engine event to the keys it concerns.

A key names work, never the work itself (controller-runtime's request): the reconcile re-reads the world,
so a lost or duplicated key is harmless. Three kinds, all frozen values:
- `ContainerKey(name)`: one container of the maps (its closure is planned: dependencies come along);
- `ALL`: everything in the maps (a map changed, a resync, an image tag moved, the engine came back);
- `PruneKey(map)`: tear down what a deleted map's file left behind (only with `--prune-deleted-maps`).

`keys_for(event, desired, name_of)` is pure: it reads the event and the desired state (and a lookup of a
container's name by id, for network events, which name only the id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.plan import naming
from reconciler.plan.naming import REPLACEMENT_SUFFIX
from reconciler.plan.resources import DesiredState


@dataclass(frozen=True)
class ContainerKey:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class AllKey:
    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True)
class PruneKey:
    map: str

    def __str__(self) -> str:
        return f"prune:{self.map}"


Key = ContainerKey | AllKey | PruneKey
ALL = AllKey()

CONTAINER_ACTIONS = frozenset(
    {"create", "destroy", "die", "stop", "kill", "oom", "start", "rename", "update", "restart", "pause", "unpause"}
)
# Container events our own actions cause (a recreate's stop/start/rename, a rollback's destroy/start).
OWN_ACTION_EVENTS = frozenset({"create", "start", "stop", "kill", "die", "destroy", "rename", "restart"})
IMAGE_ACTIONS = frozenset({"pull", "tag", "untag", "delete", "load", "import"})
STOP_ACTIONS = frozenset({"kill", "stop"})  # a person asked: the death that follows is not a crash


def action_of(event: Mapping[str, Any]) -> str:
    """`health_status: healthy` → `health_status`, `exec_start: sh` → `exec_start`."""
    return str(event.get("Action") or "").split(":")[0]


def keys_for(event: Mapping[str, Any], desired: DesiredState, name_of: Callable[[str], str]) -> list[Key]:
    """The keys an engine event concerns (none for what the maps do not own or care about)."""
    kind = event.get("Type")
    if kind == "container":
        return _container_keys(event, desired)
    if kind == "image" and action_of(event) in IMAGE_ACTIONS:
        return _image_keys(event, desired)
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    if kind == "network" and action_of(event) in ("connect", "disconnect"):
        # Someone (or a start) changed a container's endpoints: look at that container.
        name = name_of(str(attributes.get("container", "")))
        return [ContainerKey(name)] if name in desired.containers else []
    if kind in ("volume", "network") and action_of(event) in ("create", "destroy", "remove"):
        name = str(attributes.get("name") or (event.get("Actor") or {}).get("ID") or "")
        if name in desired.volumes or name in desired.networks:
            return [ALL]
    return []


def _container_keys(event: Mapping[str, Any], desired: DesiredState) -> list[Key]:
    action = action_of(event)
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    name = str(attributes.get("name", ""))
    if action not in CONTAINER_ACTIONS or name.endswith(REPLACEMENT_SUFFIX) or naming.is_self(attributes):
        return []
    if action == "rename":
        # `docker rename ours other`: the event carries the new name; the old one is what went missing.
        old = str(attributes.get("oldName", "")).lstrip("/")
        return [ContainerKey(n) for n in (old, name) if n in desired.containers]
    if name in desired.containers:
        return [ContainerKey(name)]
    if name in desired.inits and action == "destroy":
        return [ALL]
    return []


def _image_keys(event: Mapping[str, Any], desired: DesiredState) -> list[Key]:
    # `tag` names the reference in Attributes.name (the actor is the image id); `pull` names it in the
    # actor's ID (Attributes.name is the repository without the tag). Either may be ours.
    # A tag that moved concerns the containers that run it (a recreate takes its dependents along: their
    # keys' plans cascade), not everything: at 500 containers one look at all of them is most of an update's
    # time. Many containers on one image are a burst, which the queue turns into one ALL anyway.
    if action_of(event) == "delete":
        return [ALL]
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    refs = [r for r in (str(attributes.get("name") or ""), str((event.get("Actor") or {}).get("ID") or "")) if r]
    return [
        ContainerKey(name)
        for name, spec in sorted(desired.containers.items())
        if any(same_ref(r, spec.image) for r in refs)
    ]


def same_ref(event_ref: str, wanted: str) -> bool:
    """`nginx` in an event matches `docker.io/library/nginx:latest` in a map, and the other way round."""

    def norm(ref: str) -> str:
        ref = ref.removeprefix("docker.io/").removeprefix("library/")
        return ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else f"{ref}:latest"

    return norm(event_ref) == norm(wanted)
