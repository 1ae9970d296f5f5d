"""A read-through cache of the engine, kept current by events: an idle daemon makes no API requests.

`CachedEngine` wraps an `Engine`: its read calls (container / image / volume / network lists and inspects)
answer from memory once fetched; `invalidate` drops exactly what an engine event may have changed, so the
next read refetches only that. Writes are never cached — the executor always talks to the real engine and
re-checks what it is about to change. `relist()` forgets everything (after an events reconnect, and on the
periodic resync, since events can be missed).
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.plan.naming import REPLACEMENT_SUFFIX

from .engine import Engine, Json


class CachedEngine:
    """The read half of `Engine`, cached; pass it to `observe`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.RLock()
        self._containers: list[Json] | None = None
        self._inspects: dict[str, Json | None] = {}
        self._images: list[Json] | None = None
        self._image_inspects: dict[str, Json | None] = {}
        self._volumes: list[Json] | None = None
        self._networks: list[Json] | None = None
        self._network_inspects: dict[str, Json | None] = {}  # endpoints change with container events too

    def relist(self) -> None:
        with self._lock:
            self._containers = None
            self._inspects.clear()
            self._images = None
            self._image_inspects.clear()
            self._volumes = None
            self._networks = None
            self._network_inspects.clear()

    def invalidate(self, event: Json) -> None:
        """Forget what an engine event may have changed."""
        kind = event.get("Type")
        actor = (event.get("Actor") or {}).get("ID", "")
        with self._lock:
            if kind == "container":
                self._containers = None  # names, labels and membership may change
                self._network_inspects.clear()  # a start or destroy changes a network's endpoints
                self._forget_inspect(actor)
            elif kind == "image":
                self._images = None
                self._image_inspects.clear()  # tags moved: inspects by reference are stale
            elif kind == "volume":
                self._volumes = None
            elif kind == "network":
                self._networks = None
                self._network_inspects.clear()
                # A connect or disconnect changes the endpoints of the one container it names (they live in
                # its inspect); create and destroy change none. Forgetting every inspect here made each
                # container start on the host (ours or not) cost a re-inspect of all of ours.
                member = str(((event.get("Actor") or {}).get("Attributes") or {}).get("container", ""))
                if member:
                    self._forget_inspect(member)

    def _forget_inspect(self, ident: str) -> None:
        """Forget the inspect of one container, cached by id or by name (the lock is held)."""
        self._inspects.pop(ident, None)
        for key in [k for k, v in self._inspects.items() if v is not None and v.get("Id") == ident]:
            self._inspects.pop(key, None)

    def relist_names(self, names: set[str]) -> None:
        """Forget what an executor just changed: the lists, and the inspects of those names."""
        with self._lock:
            self._containers = None
            self._volumes = None
            self._networks = None
            self._network_inspects.clear()
            self._images = None
            for key, value in list(self._inspects.items()):
                if value is None or str(value.get("Name", "")).lstrip("/").removesuffix(REPLACEMENT_SUFFIX) in names:
                    self._inspects.pop(key, None)

    # --- the read calls of Engine -------------------------------------------------------------------

    def list_containers(self) -> list[Json]:
        with self._lock:
            if self._containers is None:
                self._containers = self.engine.list_containers()
            return list(self._containers)

    def inspect_container(self, ident: str) -> Json | None:
        with self._lock:
            if ident not in self._inspects:
                self._inspects[ident] = self.engine.inspect_container(ident)
            return self._inspects[ident]

    def list_images(self) -> list[Json]:
        with self._lock:
            if self._images is None:
                self._images = self.engine.list_images()
            return list(self._images)

    def inspect_image(self, ref: str) -> Json | None:
        with self._lock:
            if ref not in self._image_inspects:
                self._image_inspects[ref] = self.engine.inspect_image(ref)
            return self._image_inspects[ref]

    def list_volumes(self) -> list[Json]:
        with self._lock:
            if self._volumes is None:
                self._volumes = self.engine.list_volumes()
            return list(self._volumes)

    def list_networks(self) -> list[Json]:
        with self._lock:
            if self._networks is None:
                self._networks = self.engine.list_networks()
            return list(self._networks)

    def top(self, ident: str) -> Json | None:
        return self.engine.top(ident)

    def inspect_network(self, ident: str) -> Json | None:
        with self._lock:
            if ident not in self._network_inspects:
                self._network_inspects[ident] = self.engine.inspect_network(ident)
            return self._network_inspects[ident]

    def inspect_exec(self, exec_id: str) -> Json | None:
        return self.engine.inspect_exec(exec_id)  # live state: never cached

    def __getattr__(self, name: str) -> Any:
        # Everything else (writes, pulls, events) goes to the real engine.
        return getattr(self.engine, name)
