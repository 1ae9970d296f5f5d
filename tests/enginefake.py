"""An in-memory engine behind reconciler's `Engine` port that records every call, for the executor's safety tests.

It starts from a `tests.planfakes.EngineSnapshot` (the inspect answers of an engine that did what the maps
say) and then behaves as the engine does for the calls the executor makes: names are unique (a second
create under a taken name is a `Conflict`), a running container cannot be removed without `force`, a
removed or unknown object is `NotFound` (removing one is idempotent, as the real port makes it), `stop`
leaves a container exited, `rename` moves the name, `wait` runs an init to its exit code.

Tests assert on `calls`: what the engine was asked to do, to which object (by the *name it had when asked*,
so `("stop", "m.app")` means the container then called m.app), in which order — never on the executor's
private functions, so they hold across refactors of `reconciler/executor/apply.py`.

Knobs, by container name at the time of the call: `health` (the `State.Health.Status` a container gets
when it starts: "starting", "healthy", "unhealthy"), `exit_codes` (what `wait` returns; default 0),
`fail_start` (start raises a permanent engine error), `fail_create` (create does), `fail_remove`
(removing raises a retryable one), `fail_wait` (wait raises
a retryable one, the container still running), `keeps_running` (a volume init that has not ended yet: a
volume init otherwise exits with its `exit_codes` code as soon as it starts, as a quick `chown` does on the
engine, and the executor polls for that), `exit_on_start` (the container dies right after it started,
with that code), `after_start` (a hook called after each start). Recorded besides `calls`: `stop_timeouts`,
`wait_timeouts` and `configs` (create arguments).

`RecordingEngine` is checked against the `Engine` protocol by mypy (see `_: type[Engine]` below).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping

from reconciler.executor.engine import PULL_IDLE_TIMEOUT, PULL_TIMEOUT, Engine, EventStream, Json
from reconciler.executor.errors import Conflict, NotFound, PermanentEngineError, RetryableEngineError
from reconciler.plan import naming
from tests.planfakes import EngineSnapshot, state_json

Call = tuple[str, ...]


class _NoEvents:
    def __iter__(self) -> Iterator[Json]:
        return iter(())

    def close(self) -> None:
        return None


class RecordingEngine:
    """The `Engine` port over an in-memory snapshot; every call is appended to `calls`."""

    def __init__(self, snapshot: EngineSnapshot | None = None) -> None:
        self.snapshot = snapshot.copy() if snapshot is not None else EngineSnapshot()
        self.calls: list[Call] = []
        self.health: dict[str, str] = {}
        self.exit_codes: dict[str, int] = {}
        self.fail_start: set[str] = set()
        self.fail_create: set[str] = set()
        self.exit_on_start: dict[str, int] = {}  # name → exit code: the container dies right after starting
        self.after_start: Callable[[str], None] | None = None  # called with the name after each start
        self.stop_timeouts: dict[str, int | None] = {}  # name → the grace period of its last stop
        self.configs: dict[str, Json] = {}  # name → the config it was created with
        self.fail_wait: set[str] = set()  # wait raises a retryable error (a read timeout), leaving it running
        self.keeps_running: set[str] = set()  # a volume init that does not end (a long `chown -R`)
        self.fail_remove: set[str] = set()  # removing it raises a retryable error (the engine went away)
        self.wait_timeouts: dict[str, float] = {}  # name → the timeout of its last wait
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.request_count = 0

    # --- helpers ---------------------------------------------------------------------------------------

    def _record(self, *call: str) -> None:
        with self.lock:
            self.calls.append(call)
            self.request_count += 1

    def find(self, ident: str) -> Json | None:
        """The stored inspect of a container by id, id prefix or name (the live dict, to change in place)."""
        with self.lock:
            for container in self.snapshot.containers:
                if ident in (container["Name"].lstrip("/"), container["Id"]) or (
                    len(ident) >= 12 and container["Id"].startswith(ident)
                ):
                    return container
        return None

    def container(self, ident: str) -> Json:
        """Like `find`, for a container the test knows is there."""
        found = self.find(ident)
        assert found is not None, f"no container {ident} on the fake engine"
        return found

    def _name(self, ident: str) -> str:
        found = self.find(ident)
        return ident if found is None else str(found["Name"]).lstrip("/")

    def _need(self, ident: str) -> Json:
        found = self.find(ident)
        if found is None:
            raise NotFound(f"No such container: {ident}", 404)
        return found

    def names(self) -> set[str]:
        return {str(c["Name"]).lstrip("/") for c in self.snapshot.containers}

    def ops(self, *kinds: str) -> list[Call]:
        """The recorded calls of these kinds (all mutating calls when none are given)."""
        wanted = set(kinds) or {
            "create",
            "start",
            "stop",
            "restart",
            "kill",
            "remove",
            "rename",
            "update",
            "exec",
            "create_volume",
            "remove_volume",
            "create_network",
            "remove_network",
            "disconnect",
            "pull",
        }
        return [c for c in self.calls if c[0] in wanted]

    # --- reads -----------------------------------------------------------------------------------------

    def ping(self) -> bool:
        self._record("ping")
        return True

    def version(self) -> Json:
        self._record("version")
        return {"ApiVersion": "1.45", "Version": "26.1.5"}

    def list_containers(self) -> list[Json]:
        self._record("list_containers")
        with self.lock:
            return [
                {
                    "Id": c["Id"],
                    "Names": [c["Name"]],
                    "Labels": copy.deepcopy((c.get("Config") or {}).get("Labels") or {}),
                    "State": c["State"]["Status"],
                }
                for c in self.snapshot.containers
            ]

    def inspect_container(self, ident: str) -> Json | None:
        self._record("inspect_container", self._name(ident))
        found = self.find(ident)
        return None if found is None else copy.deepcopy(found)

    def top(self, ident: str) -> Json | None:
        self._record("top", self._name(ident))
        return None

    def inspect_exec(self, exec_id: str) -> Json | None:
        self._record("inspect_exec", exec_id)
        return None

    def list_images(self) -> list[Json]:
        self._record("list_images")
        return [{"Id": i["Id"], "RepoTags": [ref]} for ref, i in self.snapshot.images.items()]

    def inspect_image(self, ref: str) -> Json | None:
        self._record("inspect_image", ref)
        found = next((i for r, i in self.snapshot.images.items() if ref in (r, i["Id"])), None)
        return None if found is None else copy.deepcopy(found)

    def list_volumes(self) -> list[Json]:
        self._record("list_volumes")
        return copy.deepcopy(self.snapshot.volumes)

    def inspect_volume(self, name: str) -> Json | None:
        self._record("inspect_volume", name)
        found = next((v for v in self.snapshot.volumes if v["Name"] == name), None)
        return None if found is None else copy.deepcopy(found)

    def list_networks(self) -> list[Json]:
        self._record("list_networks")
        return copy.deepcopy(self.snapshot.networks)

    def inspect_network(self, ident: str) -> Json | None:
        self._record("inspect_network", ident)
        found = next((n for n in self.snapshot.networks if ident in (n["Id"], n["Name"])), None)
        return None if found is None else copy.deepcopy(found)

    def logs(self, ident: str, tail: int = 20) -> str:
        self._record("logs", self._name(ident))
        return "chown: /data: Operation not permitted\n"

    # --- containers ------------------------------------------------------------------------------------

    def create_container(self, name: str, config: Json) -> str:
        self._record("create", name)
        if name in self.fail_create:
            raise PermanentEngineError(f"refused to create {name}", 400)
        with self.lock:
            if self.find(name) is not None:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
            self.configs[name] = copy.deepcopy(config)
            image = self.snapshot.images.get(str(config.get("image")))
            ident = hashlib.sha256(f"fake-{next(self._ids)}-{name}".encode()).hexdigest()
            self.snapshot.containers.append(
                {
                    "Id": ident,
                    "Name": f"/{name}",
                    "Image": image["Id"] if image else "",
                    "Config": {
                        "Image": config.get("image"),
                        "Labels": dict(config.get("labels") or {}),
                        "Env": list(config.get("environment") or []),
                        "StopTimeout": config.get("stop_timeout"),
                    },
                    "HostConfig": {},
                    "Mounts": [],
                    "NetworkSettings": {"Networks": {}},
                    "State": state_json("created"),
                }
            )
            return ident

    def start(self, ident: str) -> None:
        name = self._name(ident)
        self._record("start", name)
        if name in self.fail_start:
            raise PermanentEngineError(f"cannot start {name}: port is already allocated", 500)
        with self.lock:
            found = self._need(ident)
            health = self.health.get(name)
            found["State"] = state_json("running", health=health)
            if name in self.exit_on_start:
                found["State"] = state_json("exited", self.exit_on_start[name])
            elif _one_shot(found) and name not in self.fail_wait | self.keeps_running:
                # A volume init runs `chown`/`chmod` and ends: the executor polls for it, as on the engine.
                found["State"] = state_json("exited", self.exit_codes.get(name, 0))
        if self.after_start is not None:
            self.after_start(name)

    def stop(self, ident: str, timeout: int | None) -> None:
        self._record("stop", self._name(ident))
        self.stop_timeouts[self._name(ident)] = timeout
        with self.lock:
            found = self._need(ident)
            if found["State"]["Running"]:
                found["State"] = state_json("exited", 0)

    def restart(self, ident: str, timeout: int | None) -> None:
        name = self._name(ident)
        self._record("restart", name)
        with self.lock:
            self._need(ident)["State"] = state_json("running", health=self.health.get(name))

    def kill(self, ident: str, signal: str | None = None) -> None:
        self._record("kill", self._name(ident), signal or "KILL")
        with self.lock:
            found = self._need(ident)
            if signal in (None, "KILL", "SIGKILL", "9"):
                found["State"] = state_json("exited", 137)

    def remove_container(self, ident: str, *, force: bool = False, volumes: bool = False) -> None:
        name = self._name(ident)
        self._record("remove", name, *(("volumes",) if volumes else ()))
        if name in self.fail_remove:
            raise RetryableEngineError(f"cannot remove {name}: engine unreachable", None)
        with self.lock:
            found = self.find(ident)
            if found is None:
                return  # the port makes removal idempotent
            if found["State"]["Running"] and not force:
                raise Conflict("You cannot remove a running container: stop it first", 409)
            self.snapshot.containers.remove(found)

    def rename(self, ident: str, name: str) -> None:
        self._record("rename", self._name(ident), name)
        with self.lock:
            found = self._need(ident)
            if self.find(name) is not None:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
            found["Name"] = f"/{name}"

    def wait(self, ident: str, timeout: float) -> int:
        name = self._name(ident)
        self._record("wait", name)
        self.wait_timeouts[name] = timeout
        if name in self.fail_wait:
            raise RetryableEngineError(f"read timeout waiting for {name}", None)
        code = self.exit_codes.get(name, 0)
        with self.lock:
            self._need(ident)["State"] = state_json("exited", code)
        return code

    def update_container(self, ident: str, settings: Json) -> None:
        self._record("update", self._name(ident))
        self._need(ident)

    def exec_run(self, ident: str, cmd: list[str] | str, user: str | None) -> int:
        self._record("exec", self._name(ident), cmd if isinstance(cmd, str) else " ".join(cmd))
        return 0

    # --- volumes, networks, images ---------------------------------------------------------------------

    def create_volume(self, name: str, driver: str, options: Mapping[str, str], labels: Mapping[str, str]) -> Json:
        self._record("create_volume", name)
        with self.lock:
            if any(v["Name"] == name for v in self.snapshot.volumes):
                return next(v for v in self.snapshot.volumes if v["Name"] == name)
            volume: Json = {
                "Name": name,
                "Driver": driver,
                "Options": dict(options) or None,
                "Labels": dict(labels),
                "CreatedAt": f"2026-11-28T01:00:{next(self._ids):02d}Z",
                "Scope": "local",
            }
            self.snapshot.volumes.append(volume)
            return copy.deepcopy(volume)

    def remove_volume(self, name: str) -> None:
        self._record("remove_volume", name)
        with self.lock:
            self.snapshot.volumes = [v for v in self.snapshot.volumes if v["Name"] != name]

    def create_network(self, name: str, config: Json) -> str:
        self._record("create_network", name)
        with self.lock:
            if any(n["Name"] == name for n in self.snapshot.networks):
                raise Conflict(f"network with name {name} already exists", 409)
            ident = hashlib.sha256(f"net-{name}".encode()).hexdigest()
            self.snapshot.networks.append(
                {"Id": ident, "Name": name, "Driver": config.get("driver"), "Labels": config.get("labels") or {}}
            )
            return ident

    def remove_network(self, ident: str) -> None:
        self._record("remove_network", ident)
        with self.lock:
            self.snapshot.networks = [n for n in self.snapshot.networks if ident not in (n["Id"], n["Name"])]

    def disconnect(self, network: str, container: str) -> None:
        self._record("disconnect", network, container)

    def pull(
        self,
        ref: str,
        progress: Callable[[Json], None] | None = None,
        *,
        idle_timeout: float = PULL_IDLE_TIMEOUT,
        timeout: float = PULL_TIMEOUT,
    ) -> None:
        self._record("pull", ref)

    def events(self) -> EventStream:
        self._record("events")
        return _NoEvents()


_: type[Engine] = RecordingEngine  # mypy: the fake implements the whole port


def _one_shot(found: Json) -> bool:
    labels = (found.get("Config") or {}).get("Labels") or {}
    return bool(labels.get(naming.LABEL_KIND) == "volume-init")
