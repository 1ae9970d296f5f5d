"""`FakeEngine`: reconciler's `Engine` port over an in-memory engine, recording every call.

It holds an `EngineSnapshot` (the inspect answers of an engine; empty, or `synthesize`d from a desired
state) and behaves as the engine does for the calls the executor makes:
- `create_container` stores what the engine would answer for what it was sent (`containers.engine_container`:
  the image's defaults merged in, paths cleaned, links and `container:<name>` stored as the engine stores
  them), so after an apply the plan is in sync — and a fake that disagreed with the engine would show up as
  a false drift; creating from an image or on a network the engine does not have is `NotFound`, as on the
  engine;
- names are unique (a second create or a rename onto a taken name is a `Conflict`), a running container
  cannot be removed without `force` (`Conflict`), an unknown object is `NotFound` (removing one is
  idempotent, as the real port makes it); `stop` leaves a container exited, `wait` runs it to its exit code;
- a container with a healthcheck (the map's or its image's) starts `healthy`; a volume init (a one-shot
  `chown`) exits as soon as it starts, and the executor polls for that as on the engine;
- an exec'd command runs until its container stops (`top` and the exec inspects show it);
- `pull` of an image the engine lacks fetches it from `registry` (images declared with `add_image(…,
  registry=True)`), or else a busybox-like image (`images.image_json`'s defaults).

Images the engine has are declared up front — `FakeEngine(images={"nginx:1.27": {"env": ["NGINX_VERSION=1.27"],
"cmd": ["nginx", "-g", "daemon off;"]}})` — or with `add_image(ref, env=…, cmd=…, healthcheck=…)`.

Tests assert on `calls`: what the engine was asked to do, to which object (by the *name it had when asked*,
so `("stop", "m.app")` means the container then called m.app), in which order; `ops()` keeps the mutating
ones. Knobs, by container name at the time of the call: `health` (the `State.Health.Status` a container gets
when it starts: "starting", "healthy", "unhealthy"), `exit_codes` (what `wait` returns; default 0),
`fail_start` (start raises a permanent engine error), `fail_create` (create does), `fail_remove` (removing
raises a retryable one), `fail_wait` (wait raises a retryable one, the container still running),
`keeps_running` (a volume init that has not ended yet), `exits_after` (a volume init that ends after that
many more inspects), `exit_on_start` (the container dies right after it started, with that code),
`after_start` (a hook called after each start); `fail_pull` by reference; and `fail_next`, by method name
(`{"start": [error, …]}`): the next calls of that method raise those errors, one each.
Recorded besides `calls`: `stop_timeouts`, `wait_timeouts` and `configs` (create arguments).

`FakeEngine` is checked against the `Engine` protocol (as a `CountingEngine`, which the daemon takes) by mypy
(see `_: type[CountingEngine]` below).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import shlex
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from reconciler.executor.engine import PULL_IDLE_TIMEOUT, PULL_TIMEOUT, CountingEngine, EventStream, Json
from reconciler.executor.errors import Conflict, NotFound, PermanentEngineError, RetryableEngineError
from reconciler.plan import naming

from .containers import engine_container
from .images import DEFAULT_PATH, image_json, normal_reference
from .resources import created_network_json, created_volume_json
from .snapshot import EngineSnapshot
from .states import exec_json, state_json, top_json, top_lines

Call = tuple[str, ...]

MUTATING = frozenset(
    {
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
)


BUILTIN_NETWORKS = frozenset({"bridge", "host", "none"})


class _NoEvents:
    def __iter__(self) -> Iterator[Json]:
        return iter(())

    def close(self) -> None:
        return None


class FakeEngine:
    """The `Engine` port over an in-memory snapshot; every call is appended to `calls`."""

    def __init__(
        self, snapshot: EngineSnapshot | None = None, *, images: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """`images`: reference → the keyword arguments of `add_image` (an empty dict: busybox's defaults)."""
        self.snapshot = snapshot.copy() if snapshot is not None else EngineSnapshot()
        self.registry: dict[str, Json] = {}  # what `pull` fetches for a reference the engine lacks
        self.calls: list[Call] = []
        self.health: dict[str, str] = {}
        self.exit_codes: dict[str, int] = {}
        self.fail_start: set[str] = set()
        self.fail_create: set[str] = set()
        self.fail_pull: set[str] = set()  # references whose pull fails (the registry does not know them)
        self.exit_on_start: dict[str, int] = {}  # name → exit code: the container dies right after starting
        self.after_start: Callable[[str], None] | None = None  # called with the name after each start
        self.stop_timeouts: dict[str, int | None] = {}  # name → the grace period of its last stop
        self.configs: dict[str, Json] = {}  # name → the config it was created with
        self.fail_wait: set[str] = set()  # wait raises a retryable error (a read timeout), leaving it running
        self.keeps_running: set[str] = set()  # a volume init that does not end (a long `chown -R`)
        self.exits_after: dict[str, int] = {}  # name → inspects a running volume init still answers running
        self.fail_next: dict[str, list[Exception]] = {}  # method name → errors its next calls raise, one each
        self.fail_remove: set[str] = set()  # removing it raises a retryable error (the engine went away)
        self.wait_timeouts: dict[str, float] = {}  # name → the timeout of its last wait
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.request_count = 0
        for ref, defaults in (images or {}).items():
            self.add_image(ref, **defaults)

    # --- set-up ----------------------------------------------------------------------------------------

    def add_image(
        self,
        ref: str,
        *,
        env: Iterable[str] = (DEFAULT_PATH,),
        cmd: Iterable[str] | None = ("/bin/sh",),
        entrypoint: Iterable[str] | None = None,
        user: str = "",
        exposed: Iterable[str] = (),
        volumes: Iterable[str] = (),
        healthcheck: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        stop_signal: str | None = None,
        ident: str | None = None,
        registry: bool = False,
    ) -> Json:
        """Give the engine an image (`registry=True`: only the registry, for a later pull to fetch). Its
        defaults are what the engine merges into every container made from it; `healthcheck` is in Engine
        API terms (`{"Test": ["CMD", "true"], "Interval": 1_000_000_000}`). A second image under the same
        reference moves the tag (give it another `ident`)."""
        ref = normal_reference(ref)
        image = image_json(
            ref,
            ident=ident,
            env=env,
            cmd=cmd,
            entrypoint=entrypoint,
            user=user,
            exposed=exposed,
            volumes=volumes,
            healthcheck=healthcheck,
            labels=labels,
            stop_signal=stop_signal,
        )
        with self.lock:
            (self.registry if registry else self.snapshot.images)[ref] = image
        return copy.deepcopy(image)

    # --- what tests look at ----------------------------------------------------------------------------

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
        """Like `find`, for a container the test knows is there (`LookupError` otherwise)."""
        found = self.find(ident)
        if found is None:
            raise LookupError(f"no container {ident} on the fake engine")
        return found

    def names(self) -> set[str]:
        """The names of the containers the engine has now."""
        with self.lock:
            return {str(c["Name"]).lstrip("/") for c in self.snapshot.containers}

    def running(self) -> set[str]:
        """The names of the running containers."""
        with self.lock:
            return {str(c["Name"]).lstrip("/") for c in self.snapshot.containers if c["State"]["Running"]}

    def ops(self, *kinds: str) -> list[Call]:
        """The recorded calls of these kinds (all mutating calls when none are given)."""
        wanted = set(kinds) or MUTATING
        return [c for c in self.calls if c[0] in wanted]

    def _fail_next(self, method: str) -> None:
        with self.lock:
            errors = self.fail_next.get(method)
            error = errors.pop(0) if errors else None
        if error is not None:
            raise error

    def _name(self, ident: str) -> str:
        found = self.find(ident)
        return ident if found is None else str(found["Name"]).lstrip("/")

    def _need(self, ident: str) -> Json:
        found = self.find(ident)
        if found is None:
            raise NotFound(f"No such container: {ident}", 404)
        return found

    def _image(self, ref: str) -> Json | None:
        """By reference (`nginx` is `nginx:latest`, as on the engine) or id."""
        wanted = normal_reference(ref)
        return next(
            (i for r, i in self.snapshot.images.items() if ref == i["Id"] or wanted == normal_reference(r)), None
        )

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
        with self.lock:
            found = self.find(ident)
            if found is None:
                return None
            self._count_down(found)
            data = copy.deepcopy(found)
            execs = self.snapshot.execs.get(found["Id"])
            if execs:
                data["ExecIDs"] = [_exec_id(found["Id"], i) for i in range(len(execs))]
            return data

    def top(self, ident: str) -> Json | None:
        self._record("top", self._name(ident))
        with self.lock:
            found = self.find(ident)
            if found is None or not found["State"]["Running"]:
                return None
            return top_json(self.snapshot.processes.get(found["Id"], ()))

    def inspect_exec(self, exec_id: str) -> Json | None:
        self._record("inspect_exec", exec_id)
        container, _, index = exec_id.rpartition("-")
        with self.lock:
            execs = self.snapshot.execs.get(container, ())
            if not index.isdigit() or int(index) >= len(execs):
                return None
            return exec_json(exec_id, container, execs[int(index)])

    def list_images(self) -> list[Json]:
        self._record("list_images")
        with self.lock:
            return [{"Id": i["Id"], "RepoTags": [ref]} for ref, i in self.snapshot.images.items()]

    def inspect_image(self, ref: str) -> Json | None:
        self._record("inspect_image", ref)
        with self.lock:
            found = self._image(ref)
            return None if found is None else copy.deepcopy(found)

    def list_volumes(self) -> list[Json]:
        self._record("list_volumes")
        with self.lock:
            return copy.deepcopy(self.snapshot.volumes)

    def inspect_volume(self, name: str) -> Json | None:
        self._record("inspect_volume", name)
        with self.lock:
            found = next((v for v in self.snapshot.volumes if v["Name"] == name), None)
            return None if found is None else copy.deepcopy(found)

    def list_networks(self) -> list[Json]:
        self._record("list_networks")
        with self.lock:
            return [{**copy.deepcopy(n), "Containers": {}} for n in self.snapshot.networks]

    def inspect_network(self, ident: str) -> Json | None:
        self._record("inspect_network", ident)
        with self.lock:
            found = next((n for n in self.snapshot.networks if ident in (n["Id"], n["Name"])), None)
            if found is None:
                return None
            data = copy.deepcopy(found)
            attached = {
                c["Id"]: {"Name": c["Name"].lstrip("/")}
                for c in self.snapshot.containers
                if c["State"]["Running"] and found["Name"] in ((c.get("NetworkSettings") or {}).get("Networks") or {})
            }
            data["Containers"] = {**(found.get("Containers") or {}), **attached}
            return data

    def logs(self, ident: str, tail: int = 20) -> str:
        self._record("logs", self._name(ident))
        return "chown: /data: Operation not permitted\n"

    # --- containers ------------------------------------------------------------------------------------

    def create_container(self, name: str, config: Json) -> str:
        self._record("create", name)
        self._fail_next("create_container")
        if name in self.fail_create:
            raise PermanentEngineError(f"refused to create {name}", 400)
        with self.lock:
            if self.find(name) is not None:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
            ref = str(config.get("image"))
            image = self._image(ref)
            if image is None:
                raise NotFound(f"No such image: {ref}", 404)
            known = {n["Name"] for n in self.snapshot.networks} | BUILTIN_NETWORKS
            for network in config.get("networking") or {}:
                if network not in known:
                    raise NotFound(f"network {network} not found", 404)
            self.configs[name] = copy.deepcopy(config)
            ident = hashlib.sha256(f"fake-{next(self._ids)}-{name}".encode()).hexdigest()
            host = config.get("host_config") or {}
            providers = {
                provider: copy.deepcopy(found["Mounts"])
                for entry in host.get("volumes_from") or ()
                if (found := self.find(provider := str(entry).partition(":")[0])) is not None
            }
            peer = str(host.get("network_mode") or "").removeprefix("container:")
            found_peer = self.find(peer) if str(host.get("network_mode") or "").startswith("container:") else None
            peers = {peer: found_peer["Id"]} if found_peer is not None else {}
            self.snapshot.containers.append(
                engine_container(
                    name,
                    config,
                    image=image,
                    status="created",
                    provider_mounts=providers,
                    ident=ident,
                    container_ids=peers,
                )
            )
            return ident

    def start(self, ident: str) -> None:
        name = self._name(ident)
        self._record("start", name)
        self._fail_next("start")
        if name in self.fail_start:
            raise PermanentEngineError(f"cannot start {name}: port is already allocated", 500)
        with self.lock:
            found = self._need(ident)
            self._forget_processes(found)
            found["State"] = state_json("running", health=self.health.get(name) or _health_at_start(found))
            if name in self.exit_on_start:
                found["State"] = state_json("exited", self.exit_on_start[name])
            elif _one_shot(found) and name not in self.fail_wait | self.keeps_running | set(self.exits_after):
                # A volume init runs `chown`/`chmod` and ends: the executor polls for it, as on the engine.
                found["State"] = state_json("exited", self.exit_codes.get(name, 0))
            if found["State"]["Running"]:
                self.snapshot.processes[found["Id"]] = (_main_process(found),)
        if self.after_start is not None:
            self.after_start(name)

    def stop(self, ident: str, timeout: int | None) -> None:
        self._record("stop", self._name(ident))
        self._fail_next("stop")
        self.stop_timeouts[self._name(ident)] = timeout
        with self.lock:
            found = self._need(ident)
            if found["State"]["Running"]:
                found["State"] = state_json("exited", 0)
                self._forget_processes(found)

    def restart(self, ident: str, timeout: int | None) -> None:
        name = self._name(ident)
        self._record("restart", name)
        self._fail_next("restart")
        with self.lock:
            found = self._need(ident)
            self._forget_processes(found)
            found["State"] = state_json("running", health=self.health.get(name) or _health_at_start(found))
            self.snapshot.processes[found["Id"]] = (_main_process(found),)

    def kill(self, ident: str, signal: str | None = None) -> None:
        self._record("kill", self._name(ident), signal or "KILL")
        self._fail_next("kill")
        with self.lock:
            found = self._need(ident)
            if signal in (None, "KILL", "SIGKILL", "9"):
                found["State"] = state_json("exited", 137)
                self._forget_processes(found)

    def remove_container(self, ident: str, *, force: bool = False, volumes: bool = False) -> None:
        name = self._name(ident)
        self._record("remove", name, *(("volumes",) if volumes else ()))
        self._fail_next("remove_container")
        if name in self.fail_remove:
            raise RetryableEngineError(f"cannot remove {name}: engine unreachable", None)
        with self.lock:
            found = self.find(ident)
            if found is None:
                return  # the port makes removal idempotent
            if found["State"]["Running"] and not force:
                raise Conflict("You cannot remove a running container: stop it first", 409)
            self._forget_processes(found)
            self.snapshot.containers.remove(found)

    def rename(self, ident: str, name: str) -> None:
        self._record("rename", self._name(ident), name)
        self._fail_next("rename")
        with self.lock:
            found = self._need(ident)
            if self.find(name) is not None:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
            found["Name"] = f"/{name}"

    def wait(self, ident: str, timeout: float) -> int:
        name = self._name(ident)
        self._record("wait", name)
        self._fail_next("wait")
        self.wait_timeouts[name] = timeout
        if name in self.fail_wait:
            raise RetryableEngineError(f"read timeout waiting for {name}", None)
        code = self.exit_codes.get(name, 0)
        with self.lock:
            found = self._need(ident)
            found["State"] = state_json("exited", code)
            self._forget_processes(found)
        return code

    def update_container(self, ident: str, settings: Json) -> None:
        self._record("update", self._name(ident))
        self._fail_next("update_container")
        with self.lock:
            host = self._need(ident).setdefault("HostConfig", {})
            for key, value in settings.items():
                if key != "RestartPolicy" or value:
                    host[key] = copy.deepcopy(value)

    def exec_run(self, ident: str, cmd: list[str] | str, user: str | None) -> int:
        self._record("exec", self._name(ident), cmd if isinstance(cmd, str) else " ".join(cmd))
        self._fail_next("exec_run")
        with self.lock:
            found = self._need(ident)
            if not found["State"]["Running"]:
                raise Conflict(f"Container {found['Id']} is not running", 409)
            argv = tuple(shlex.split(cmd)) if isinstance(cmd, str) else tuple(cmd)
            self.snapshot.execs[found["Id"]] = (*self.snapshot.execs.get(found["Id"], ()), argv)
            self.snapshot.processes[found["Id"]] = (*self.snapshot.processes.get(found["Id"], ()), *top_lines(cmd))
        return 0

    def _count_down(self, found: Json) -> None:
        """A volume init in `exits_after` runs for that many more looks, then exits."""
        name = str(found["Name"]).lstrip("/")
        if name in self.exits_after and found["State"]["Running"]:
            self.exits_after[name] -= 1
            if self.exits_after[name] <= 0:
                del self.exits_after[name]
                found["State"] = state_json("exited", self.exit_codes.get(name, 0))
                self._forget_processes(found)

    def _forget_processes(self, found: Json) -> None:
        """A container that stops (or starts again) has none of its old processes or exec instances."""
        self.snapshot.processes.pop(found["Id"], None)
        self.snapshot.execs.pop(found["Id"], None)

    # --- volumes, networks, images ---------------------------------------------------------------------

    def create_volume(self, name: str, driver: str, options: Mapping[str, str], labels: Mapping[str, str]) -> Json:
        self._record("create_volume", name)
        self._fail_next("create_volume")
        with self.lock:
            existing = next((v for v in self.snapshot.volumes if v["Name"] == name), None)
            if existing is not None:
                return copy.deepcopy(existing)  # the engine answers an existing volume, as docker-py asks it
            volume = created_volume_json(name, driver, options, labels, f"2026-11-28T01:00:{next(self._ids) % 60:02d}Z")
            self.snapshot.volumes.append(volume)
            return copy.deepcopy(volume)

    def remove_volume(self, name: str) -> None:
        self._record("remove_volume", name)
        self._fail_next("remove_volume")
        with self.lock:
            self.snapshot.volumes = [v for v in self.snapshot.volumes if v["Name"] != name]

    def create_network(self, name: str, config: Json) -> str:
        self._record("create_network", name)
        self._fail_next("create_network")
        with self.lock:
            if any(n["Name"] == name for n in self.snapshot.networks):
                raise Conflict(f"network with name {name} already exists", 409)
            ident = hashlib.sha256(f"net-{name}-{next(self._ids)}".encode()).hexdigest()
            self.snapshot.networks.append(created_network_json(name, config, ident))
            return ident

    def remove_network(self, ident: str) -> None:
        self._record("remove_network", ident)
        self._fail_next("remove_network")
        with self.lock:
            self.snapshot.networks = [n for n in self.snapshot.networks if ident not in (n["Id"], n["Name"])]

    def disconnect(self, network: str, container: str) -> None:
        self._record("disconnect", network, container)
        with self.lock:
            found = self.find(container)
            if found is not None:
                ((found.get("NetworkSettings") or {}).get("Networks") or {}).pop(network, None)

    def pull(
        self,
        ref: str,
        progress: Callable[[Json], None] | None = None,
        *,
        idle_timeout: float = PULL_IDLE_TIMEOUT,
        timeout: float = PULL_TIMEOUT,
    ) -> None:
        self._record("pull", ref)
        self._fail_next("pull")
        if ref in self.fail_pull:
            raise PermanentEngineError(f"pull {ref}: manifest unknown", 404)
        with self.lock:
            tag = normal_reference(ref)
            if tag in self.registry:
                self.snapshot.images[tag] = copy.deepcopy(self.registry[tag])
            elif self._image(tag) is None:
                self.snapshot.images[tag] = image_json(tag)

    def registry_digest(self, ref: str) -> str | None:
        self._record("registry_digest", ref)
        return None

    def events(self) -> EventStream:
        self._record("events")
        return _NoEvents()


_: type[CountingEngine] = FakeEngine  # mypy: the fake implements the whole port (and counts its calls)


def _one_shot(found: Json) -> bool:
    labels = (found.get("Config") or {}).get("Labels") or {}
    return bool(labels.get(naming.LABEL_KIND) == "volume-init")


def _health_at_start(found: Json) -> str | None:
    """A container with a healthcheck (its own or its image's) passes it at once; without one: no health."""
    test = ((found.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return "healthy" if test and test[0] != "NONE" else None


def _main_process(found: Json) -> str:
    config = found.get("Config") or {}
    return " ".join([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]) or "/bin/sh"


def _exec_id(container: str, index: int) -> str:
    return f"{container}-{index}"
