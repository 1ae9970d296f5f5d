"""What a test session leaves on an engine: found, removed, and checked at the session's end.

A session owns what carries its name prefix (`SESSION`) or its test label (`TEST_LABEL=SESSION`) — and the
anonymous volumes the engine made for such containers (image `VOLUME`s, `shares`). Those have no name or
label of the session, and a container removed without `v` (`docker rm -f`, or reconciler itself, which
keeps anonymous volumes for the replacement it hands them to) leaves them dangling for good. So
`SessionObjects` follows the engine's event stream from the session's start: the ids of the session's
containers (`container create` names them) and every anonymous volume mounted into one of them
(`volume mount` names the container). Nothing else on the engine is ever touched: other sessions, other
engineers' tests and anonymous volumes of containers this session did not create are not ours.

`sweep` removes what the session left (containers with their anonymous volumes, `rm -fv`) and says what
that was; `remaining` says what is still there after it — the session-end check in conftest fails on that.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import BUILT_IMAGES, SESSION, TEST_LABEL

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


class SessionObjects:
    """Follows an engine's events (on a client of its own) to learn the session's containers and the
    anonymous volumes mounted into them. `close()` ends the stream."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.containers: set[str] = set()  # ids
        self.anonymous: set[str] = set()  # volume names
        self._lock = threading.Lock()
        self._client = connect()
        self._stream = self._client.events(decode=True, filters={"type": ["container", "volume"]})
        self._thread = threading.Thread(target=self._follow, name="session-objects", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when closed (or the engine goes): we stop
            for event in self._stream:
                self._note(event)

    def _note(self, event: dict[str, Any]) -> None:
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        with self._lock:
            if event.get("Type") == "container" and event.get("Action") in ("create", "rename"):
                if _ours(str(attributes.get("name", "")), attributes):
                    self.containers.add(str(actor.get("ID")))
            elif event.get("Type") == "volume" and event.get("Action") == "mount":
                volume = str(actor.get("ID", ""))
                if attributes.get("container") in self.containers and _ANONYMOUS.match(volume):
                    self.anonymous.add(volume)

    def anonymous_volumes(self) -> set[str]:
        with self._lock:
            return set(self.anonymous)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._client.close()


def _ours(name: str, labels: dict[str, Any]) -> bool:
    return name.lstrip("/").startswith(SESSION) or labels.get(TEST_LABEL) == SESSION


@dataclass
class Leftovers:
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    anonymous_volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.containers or self.volumes or self.anonymous_volumes or self.networks)

    def describe(self) -> str:
        parts = [
            f"{len(items)} {what} ({', '.join(sorted(items)[:8])}{', …' if len(items) > 8 else ''})"
            for what, items in (
                ("containers", self.containers),
                ("volumes", self.volumes),
                ("anonymous volumes", [v[:12] for v in self.anonymous_volumes]),
                ("networks", self.networks),
            )
            if items
        ]
        return "; ".join(parts)


def remaining(client: Any, tracked: SessionObjects | None, *, dangling_only: bool = False) -> Leftovers:
    """What of this session is on the engine now (`dangling_only`: only anonymous volumes no container holds
    — those of containers still there go with them)."""
    found = Leftovers()
    label = f"{TEST_LABEL}={SESSION}"
    names = {c.name for c in client.containers.list(all=True, filters={"label": label})}
    names |= {c.name for c in client.containers.list(all=True, filters={"name": SESSION}) if c.name.startswith(SESSION)}
    found.containers = sorted(names)
    anonymous = tracked.anonymous_volumes() if tracked is not None else set()
    if dangling_only:
        anonymous &= {v.name for v in client.volumes.list(filters={"dangling": True})}
    for volume in client.volumes.list():
        if volume.name.startswith(SESSION) or (volume.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            found.volumes.append(volume.name)
        elif volume.name in anonymous:
            found.anonymous_volumes.append(volume.name)
    for network in client.networks.list():
        if network.name.startswith(SESSION) or (network.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            found.networks.append(network.name)
    return found


def new_since(before: Leftovers, now: Leftovers) -> Leftovers:
    """What is in `now` and was not in `before`."""
    return Leftovers(
        containers=sorted(set(now.containers) - set(before.containers)),
        volumes=sorted(set(now.volumes) - set(before.volumes)),
        anonymous_volumes=sorted(set(now.anonymous_volumes) - set(before.anonymous_volumes)),
        networks=sorted(set(now.networks) - set(before.networks)),
    )


def remove(client: Any, objects: Leftovers) -> None:
    """Remove these objects (containers with their anonymous volumes first, then volumes and networks);
    what is gone meanwhile, or still in use by something not ours, is left alone."""
    for name in objects.containers:
        with contextlib.suppress(Exception):
            client.api.remove_container(name, v=True, force=True)
    for volume in [*objects.volumes, *objects.anonymous_volumes]:
        with contextlib.suppress(Exception):
            client.api.remove_volume(volume)
    for network in objects.networks:
        with contextlib.suppress(Exception):
            client.api.remove_network(network)


def sweep(client: Any, tracked: SessionObjects | None = None) -> Leftovers:
    """Remove everything this session left on the engine (containers with their anonymous volumes, then
    volumes, the images the tests built, networks); what was there, for the report."""
    left = remaining(client, tracked, dangling_only=True)
    label = f"{TEST_LABEL}={SESSION}"
    containers = client.containers.list(all=True, filters={"label": label})
    containers += [c for c in client.containers.list(all=True, filters={"name": SESSION}) if c.name.startswith(SESSION)]
    for container in {c.id: c for c in containers}.values():
        with contextlib.suppress(Exception):  # gone meanwhile
            container.remove(v=True, force=True)
    anonymous = tracked.anonymous_volumes() if tracked is not None else set()
    for volume in client.volumes.list():
        ours = volume.name.startswith(SESSION) or (volume.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION
        if ours or volume.name in anonymous:
            with contextlib.suppress(Exception):  # in use by a container that is not ours: it stays, reported
                volume.remove()
    for image_id in BUILT_IMAGES:
        with contextlib.suppress(Exception):  # already removed by the test itself
            client.images.remove(image_id, force=True)
    for network in client.networks.list():
        if network.name.startswith(SESSION) or (network.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            with contextlib.suppress(Exception):
                network.remove()
    return left
