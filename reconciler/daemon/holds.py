"""What the daemon holds back after a failed health gate, kept across restarts.

Two kinds of hold, both written by the controller when a recreate is rolled back and read by every plan:
- a *hold* on (container, desired spec hash, desired image id) — whatever drifted, image or not: that
  replacement is not tried again until the map changes the container's spec or its tag moves to another id
  (the planner turns a matching recreate into a "held back: …" note);
- a *rejected image* (reference, image id): an image update that failed, for every container using the tag.

Both live in memory and in one small JSON file, `held.json`, in the state directory (the setting
`state_dir`, else systemd's `$STATE_DIRECTORY`, else /var/lib/reconciler), so a restart of the daemon does
not retry what failed. A state directory that cannot be written is reported once and the holds are kept in
memory only: the daemon never stops working because of its state file.

The command line reads the same file (`plan`/`status`/`apply` show "held back" instead of proposing the
known-bad replacement) and writes it to let a hold go on purpose (`apply --force`, `reconciler release`):
the store re-reads the file whenever it changed on disk, before reading or writing, so the daemon sees a
release and never writes back a hold a person removed.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.logs import get_logger
from reconciler.plan.drift import Reason
from reconciler.plan.naming import DEFAULT_CLIENT
from reconciler.plan.planner import HeldBack

if TYPE_CHECKING:  # the CLI reads holds without the executor (and docker) being imported
    from reconciler.executor.apply import ActionResult

log = get_logger(__name__)
DEFAULT_STATE_DIR = "/var/lib/reconciler"
STATE_FILE = "held.json"


def state_dir(configured: str | None) -> Path:
    """The setting, else systemd's StateDirectory= (the first, if it lists several), else the default."""
    if configured:
        return Path(configured)
    from_systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_systemd or DEFAULT_STATE_DIR)


def client_dir(base: Path | None, client: str | None) -> Path | None:
    """Where one client's holds and pauses live: the state directory itself for `__default__` (as with one
    engine), `clients/<name>/` in it for the others; None when there is no state directory."""
    if base is None or client is None or client == DEFAULT_CLIENT:
        return base
    return base / "clients" / client


class HoldStore:
    def __init__(self, directory: Path | None) -> None:
        self.path = directory / STATE_FILE if directory is not None else None
        self._lock = threading.Lock()
        self._holds: dict[str, HeldBack] = {}  # container name → its hold (one per container is enough)
        self._rejected: set[tuple[str, str]] = set()
        self._warned = False
        self._seen: tuple[int, int] | None = None
        self._load()

    # --- reading -------------------------------------------------------------------------------------

    @property
    def holds(self) -> frozenset[HeldBack]:
        self._load()
        with self._lock:
            return frozenset(self._holds.values())

    @property
    def rejected_images(self) -> frozenset[tuple[str, str]]:
        self._load()
        with self._lock:
            return frozenset(self._rejected)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat() if self.path is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    # --- writing -------------------------------------------------------------------------------------

    def hold(self, hold: HeldBack, image: tuple[str, str] | None = None) -> None:
        """Remember a failed replacement (and, for an image update, the image it failed with)."""
        self._load()
        with self._lock:
            self._holds[hold.container] = hold
            if image is not None:
                self._rejected.add(image)
        self._save()

    def keep_only(self, current: Iterable[tuple[str, str, str]]) -> None:
        """Forget holds that no longer match what the maps and tags ask for (the map or the tag moved on).
        `current`: (container, spec hash, image id) of every container whose image is known."""
        wanted = {key[0]: key for key in current}
        with self._lock:
            stale = [
                name
                for name, h in self._holds.items()
                if name in wanted and wanted[name] != (h.container, h.spec_hash, h.image_id)
            ]
            for name in stale:
                log.info("hold released: the map or the image changed", container=name)
                del self._holds[name]
        if stale:
            self._save()

    def release(self, containers: Iterable[str]) -> list[str]:
        """Let the holds of these containers go on purpose (and the images they rejected, so a forced
        apply may try them): the next plan replaces them again. Returns those that were held."""
        self._load()
        names = set(containers)
        with self._lock:
            gone = sorted(n for n in self._holds if n in names)
            images = {h.image_id for n, h in self._holds.items() if n in gone}
            for name in gone:
                del self._holds[name]
            self._rejected = {r for r in self._rejected if r[1] not in images}
        if gone:
            self._save()
        return gone

    # --- the file ------------------------------------------------------------------------------------

    def _load(self) -> None:
        """(Re-)read the file if it changed since we last read or wrote it."""
        stamp = self._stamp()
        if self.path is None or stamp is None or stamp == self._seen:
            return
        first, self._seen = self._seen is None, stamp
        try:
            data = json.loads(self.path.read_text())
            holds = [HeldBack(**h) for h in data.get("holds", [])]
            rejected = {(str(ref), str(ident)) for ref, ident in data.get("rejected_images", [])}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("state file unreadable: starting without holds", path=str(self.path), error=str(exc))
            return
        with self._lock:
            self._holds = {h.container: h for h in holds}
            self._rejected = rejected
        if first and (holds or rejected):
            log.info("held back state loaded", path=str(self.path), holds=len(holds), rejected_images=len(rejected))

    def _save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data: dict[str, Any] = {
                "holds": [vars(h) for h in sorted(self._holds.values(), key=lambda h: h.container)],
                "rejected_images": sorted([list(r) for r in self._rejected]),
            }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Write and rename: a crash mid-write leaves the previous file, never half of one.
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as tmp:
                json.dump(data, tmp, indent=1)
            Path(tmp.name).replace(self.path)
            self._seen = self._stamp()
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "state directory not writable: holds are kept in memory only (a restart retries them)",
                    path=str(self.path),
                    error=str(exc),
                )


def hold_rollback(store: HoldStore, spec_hash: str, rolled: ActionResult) -> bool:
    """Hold what a rollback proved bad — (container, spec, image), and for an image update the image
    itself — so the same failing replacement is not tried again, by the daemon or by a person's `apply`
    (both record it here). True when it was an image update."""
    assert rolled.rolled_back is not None
    name = rolled.action.resource.name
    image_ref, image_id = rolled.rolled_back
    image_changed = any(d.reason is Reason.IMAGE for d in rolled.action.reasons)
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    why = f"its replacement failed the health gate at {at} ({rolled.error}); tried again once the map changes"
    why += f" its spec or its image tag moves, or on purpose: `reconciler release {name}` or `apply --force`"
    store.hold(HeldBack(name, spec_hash, image_id, why), (image_ref, image_id) if image_changed else None)
    return image_changed
