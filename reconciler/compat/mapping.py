"""docker-map's `ContainerMap` and `MappingDockerClient`, on reconciler's model, planner and executor.

`ContainerMap(name, dict_or_kwargs)` is the same map the YAML loader builds (and runs the same integrity
check at construction). `MappingDockerClient(maps, client)` offers docker-map's verbs — `startup`, `update`,
`create`, `start`, `restart`, `stop`, `remove`, `shutdown`, `signal`, `pull_images`, `run_script` — each taking
a config name, `config.instance`, `map.config` or a group, and each going through the planner and executor
of the command line, so scripts get the better update rules, the cascade and attached-volume preparation.
Every verb returns a `MapResult` that says what was done; `plan` (not in docker-map) says what `update`
would do, doing nothing. `MappingDockerClient(maps, engine=…)` takes the engine port itself instead of a
client: `reconciler.testing.FakeEngine` tests maps without an engine.

Several engines: `MappingDockerClient(maps, clients=…)` (docker-map's client configurations, from
`load_clients_file` / `load_clients`) keeps one single-engine `MappingDockerClient` per client the maps run
on, each with its share of the maps (placement as on the command line); every verb runs on each of them at
once and their `MapResult`s are merged (`MapResult.clients` keeps each). Targets resolve per client: a
config that does not run on a client is simply not there.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from reconciler.executor.apply import ActionResult, Executor, Outcome, RunResult
from reconciler.executor.clients import connect_client, deployments
from reconciler.executor.converge import Planner, converge, teardown, update
from reconciler.executor.defaults import DEFAULT_CONCURRENCY, DEFAULT_HEALTH_GATE
from reconciler.executor.engine import DockerEngine, Engine
from reconciler.executor.translate import container_config
from reconciler.model import MapError, MapSet, ResolvedMap, combine_maps, load_map_dict, load_map_text
from reconciler.model import clients as client_model
from reconciler.model.clients import ClientConfig, placement_problems
from reconciler.model.integrity import check_integrity as check
from reconciler.model.schema import ContainerConfig
from reconciler.plan import naming
from reconciler.plan.desired import desired_state
from reconciler.plan.graph import closure, dependents, select_targets, waves
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId


class MapIntegrityError(MapError):
    """docker-map's name for a map that fails its integrity check (a `MapError`, with positions)."""


def _plain(value: Any) -> Any:
    """Tuples (docker-map's Python maps use them) become lists, as YAML would give them."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class ContainerMap:
    """A container map (docker-map API), validated and integrity-checked at construction."""

    def __init__(
        self,
        name: str,
        initial: Mapping[str, Any] | None = None,
        check_integrity: bool = True,
        check_duplicates: bool = True,
        **kwargs: Any,
    ) -> None:
        data = {**_plain(dict(initial or {})), **_plain(kwargs), "name": name}
        try:
            self.resolved: ResolvedMap = load_map_dict(data, file=f"<map {name}>", check=check_integrity)
        except MapError as exc:
            raise MapIntegrityError(exc.problems) from None

    @classmethod
    def from_resolved(cls, resolved: ResolvedMap) -> ContainerMap:
        obj = cls.__new__(cls)
        obj.resolved = resolved
        return obj

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def containers(self) -> dict[str, ContainerConfig]:
        """Every config with `extends` merged in (abstract ones included)."""
        return dict(self.resolved.extended)

    @property
    def volumes(self) -> dict[str, Any]:
        return {k: v.default_path for k, v in self.resolved.model.volumes.items()}

    @property
    def host(self) -> dict[str, Any]:
        return {
            k: v.default if not v.per_instance else {**v.per_instance, **({"default": v.default} if v.default else {})}
            for k, v in self.resolved.model.host.items()
        }

    @property
    def groups(self) -> dict[str, list[str]]:
        return dict(self.resolved.model.groups)

    @property
    def repository(self) -> str | None:
        return self.resolved.model.repository

    @property
    def default_tag(self) -> str:
        return self.resolved.model.default_tag

    def __iter__(self) -> Iterator[tuple[str, ContainerConfig]]:
        return iter(self.resolved)

    def get_existing(self, name: str) -> ContainerConfig | None:
        return self.resolved.extended.get(name)

    def get_image(self, config: str) -> str:
        return self.resolved.image(config)

    def dependency_items(self) -> Iterator[tuple[str, set[str]]]:
        for config in self.resolved.configs:
            yield config, self.resolved.dependencies(config)

    def check_integrity(self) -> None:
        """Run the integrity check (again); raises `MapIntegrityError`."""
        problems = [p for p in check(self.resolved, lambda c: (c,)) if p.severity.value == "error"]
        if problems:
            raise MapIntegrityError(problems)


def load_map(stream: str | Any, name: str | None = None, check_integrity: bool = True) -> ContainerMap:
    """A map from YAML text or a stream (docker-map's `dockermap.map.yaml.load_map`)."""
    text = stream if isinstance(stream, str) else stream.read()
    try:
        resolved = load_map_text(text, getattr(stream, "name", "<map>"), default_name=name, check=check_integrity)
    except MapError as exc:
        raise MapIntegrityError(exc.problems) from None
    return ContainerMap.from_resolved(resolved)


def load_map_file(
    filename: str | os.PathLike[str], name: str | None = None, check_integrity: bool = True
) -> ContainerMap:
    path = Path(filename)
    try:
        resolved = load_map_text(path.read_text(), str(path), default_name=name or path.stem, check=check_integrity)
    except MapError as exc:
        raise MapIntegrityError(exc.problems) from None
    return ContainerMap.from_resolved(resolved)


def load_clients(stream: str | Any) -> dict[str, ClientConfig]:
    """docker-map client configurations (name → base_url, tls, interfaces, …) from YAML text or a stream,
    plus `__default__` (the local engine) unless defined."""
    data = yaml.safe_load(stream if isinstance(stream, str) else stream.read()) or {}
    return client_model.load_clients(data)


def load_clients_file(filename: str | os.PathLike[str]) -> dict[str, ClientConfig]:
    """docker-map's `load_clients_file` (errors name the file, line and key)."""
    return client_model.load_clients_file(Path(filename))


def _client_configs(clients: Mapping[str, Any]) -> dict[str, ClientConfig]:
    """`ClientConfig`s as given, or docker-map's plain settings dicts read as a clients file would be."""
    if all(isinstance(c, ClientConfig) for c in clients.values()):
        return {**client_model.default_clients(), **clients}
    return client_model.load_clients(dict(clients))


def _each_client(verb: Callable[..., MapResult]) -> Callable[..., MapResult]:
    """A verb of a several-engine client runs on every client's share at once; the results are merged."""

    @functools.wraps(verb)
    def run(self: MappingDockerClient, *args: Any, **kwargs: Any) -> MapResult:
        if not self.children:
            return verb(self, *args, **kwargs)
        with ThreadPoolExecutor(max_workers=len(self.children), thread_name_prefix="client") as pool:
            futures = {name: pool.submit(verb, child, *args, **kwargs) for name, child in self.children.items()}
            return MapResult.merged({name: future.result() for name, future in futures.items()})

    return run


@dataclass
class MapResult:
    """What a `MappingDockerClient` call did: the plan it executed and each action's outcome."""

    plan: Plan
    run: RunResult = field(default_factory=RunResult)
    clients: dict[str, MapResult] = field(default_factory=dict)  # several engines: each client's result

    @classmethod
    def merged(cls, results: Mapping[str, MapResult]) -> MapResult:
        plan = Plan(
            waves=tuple(w for r in results.values() for w in r.plan.waves),
            blocked=tuple(b for r in results.values() for b in r.plan.blocked),
        )
        run = RunResult([x for r in results.values() for x in r.run.results])
        return cls(plan, run, dict(results))

    @property
    def ok(self) -> bool:
        if self.clients:
            return all(r.ok for r in self.clients.values())
        return self.run.ok and not self.plan.blocked

    @property
    def actions(self) -> list[tuple[str, str, str]]:
        """(resource name, action, outcome) for every action."""
        return [(r.action.resource.name, r.action.op.value, r.outcome.value) for r in self.run.results]

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self.actions)

    def __bool__(self) -> bool:
        return self.ok


class MappingDockerClient:
    """Runs docker-map's verbs for one or more maps against one engine — or, given `clients`, against each
    client's engine (see the module docstring). The engine is found from `docker_client` (a client, a base
    URL, or the environment), or given as the engine port itself: `engine=` (e.g. a
    `reconciler.testing.FakeEngine`, to test maps without an engine)."""

    def __init__(
        self,
        container_maps: ContainerMap | Iterable[ContainerMap] | None = None,
        docker_client: Any = None,
        clients: Mapping[str, Any] | None = None,
        *,
        engine: Engine | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        health_gate: float | None = DEFAULT_HEALTH_GATE,
        raise_on_error: bool = False,
    ) -> None:
        if engine is not None and (docker_client is not None or clients is not None):
            raise ValueError("give an engine, or a docker_client or clients: not both")
        maps = [container_maps] if isinstance(container_maps, ContainerMap) else list(container_maps or [])
        self.maps: MapSet = combine_maps([m.resolved for m in maps])
        self.desired: DesiredState = desired_state(self.maps)
        self.concurrency = concurrency
        self.health_gate = health_gate
        self.raise_on_error = raise_on_error
        self.clients = None if clients is None else _client_configs(clients)
        self.children: dict[str, MappingDockerClient] = {}
        if self.clients is not None:
            self._split(self.clients)
        # Several engines: the verbs run on the children; `engine` is the first one's (run_script's default).
        first = next(iter(self.children.values()), None)
        self.engine: Engine = (
            first.engine if first is not None else (engine if engine is not None else _engine(docker_client))
        )

    def _split(self, clients: dict[str, ClientConfig]) -> None:
        problems = placement_problems(self.maps, clients)
        if problems:
            raise MapIntegrityError(problems)
        for share in deployments(self.maps, clients):
            child = MappingDockerClient.__new__(MappingDockerClient)
            child.__dict__.update(self.__dict__)
            child.desired, child.children, child.clients = share.desired, {}, None
            child.engine = connect_client(share.client)
            self.children[share.name] = child

    def on_client(self, name: str) -> MappingDockerClient:
        """The single-engine client of one client's share (e.g. for `run_script` on that engine)."""
        return self.children[name] if self.children else self

    # --- helpers -------------------------------------------------------------------------------------

    def _targets(
        self, container: str | Iterable[str], instances: Iterable[str] | None = None, map_name: str | None = None
    ) -> frozenset[ResourceId]:
        names = [container] if isinstance(container, str) else list(container)
        if map_name:
            names = [f"{map_name}.{n}" for n in names]
        if instances:
            names = [f"{n}.{i}" for n in names for i in instances]
        selected = select_targets(self.maps, names)
        # One client's share: what runs elsewhere is not this engine's (without clients nothing is left out).
        return frozenset(r for r in selected if self.desired.find(r) is not None or r.name in _problems(self.desired))

    def _finish(self, plan: Plan, run: RunResult) -> MapResult:
        result = MapResult(plan, run)
        if self.raise_on_error and not result.ok:
            problems = [r.error for r in run.failed] + [b.message for b in plan.blocked]
            raise RuntimeError("; ".join(str(p) for p in problems))
        return result

    def _executor(self) -> Executor:
        return Executor(self.engine, concurrency=self.concurrency, health_gate=self.health_gate)

    def _converge(self, planner: Planner, *, pull: bool = True) -> MapResult:
        """docker-map's verbs all run the one loop; they differ in what they plan."""
        done = converge(self.engine, self.desired, planner, executor=self._executor(), pull=pull)
        run = RunResult([*(done.pulled.results if done.pulled else []), *done.result.results])
        return self._finish(done.plan, run)

    def _run(self, plan: Plan) -> MapResult:
        """A plan made by hand from the verb's arguments (restart, pull): nothing to observe first."""
        return self._finish(plan, self._executor().run(plan))

    def _names(self, targets: frozenset[ResourceId], *, with_dependents: bool = False) -> list[str]:
        scope = set(targets)
        if with_dependents:
            scope = closure(dependents(self.desired.depends_on), targets)
        return [r.name for r in sorted(scope) if r.kind is Kind.CONTAINER]

    # --- docker-map's verbs --------------------------------------------------------------------------

    @_each_client
    def plan(
        self,
        container: str | Iterable[str] | None = None,
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        update_persistent: bool = False,
        **kwargs: Any,
    ) -> MapResult:
        """What `update` would do (of everything in the maps without `container`), without doing it: the
        result's `plan` (`.in_sync`, `.actions`, `.blocked`), nothing run. Not in docker-map: `reconciler plan`."""
        targets = None if container is None else self._targets(container, instances, map_name)
        options = PlanOptions(targets=targets, update_persistent=update_persistent)
        done = converge(self.engine, self.desired, update(options), executor=self._executor(), execute=False)
        return MapResult(done.plan)  # a blocked action is an answer here, not an error to raise

    @_each_client
    def startup(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Create and start the container and everything it depends on, preparing attached volumes."""
        return self.update(container, instances, map_name, **kwargs)

    @_each_client
    def update(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        pull: bool = False,
        update_persistent: bool = False,
        **kwargs: Any,
    ) -> MapResult:
        """Bring the container and its dependencies up to date with their map (recreate what drifted)."""
        options = PlanOptions(
            targets=self._targets(container, instances, map_name), pull=pull, update_persistent=update_persistent
        )
        return self._converge(update(options))

    @_each_client
    def create(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Create what is missing (volumes prepared, containers created) without starting containers."""
        options = PlanOptions(targets=self._targets(container, instances, map_name))
        return self._converge(lambda desired, observed: _unstarted(plan_update(desired, observed, options)))

    @_each_client
    def start(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Start existing containers that are not running (and their dependencies)."""
        options = PlanOptions(targets=self._targets(container, instances, map_name))
        return self._converge(
            lambda desired, observed: plan_update(desired, observed, options).keep(lambda a: a.op is Op.START),
            pull=False,
        )

    @_each_client
    def restart(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        targets = self._targets(container, instances, map_name)
        names = [n for n in self._names(targets) if self._ours_running(n)]
        actions = tuple(
            Action(ResourceId(Kind.CONTAINER, n), Op.RESTART, (Op.RESTART,), spec=self.desired.containers[n])
            for n in names
        )
        return self._run(Plan(waves=(actions,) if actions else ()))

    def _ours_running(self, name: str) -> bool:
        """Only containers with our labels are ever stopped, signalled or restarted — and only running ones."""
        found = self.engine.inspect_container(name)
        if found is None:
            return False
        labels = found.get("Config", {}).get("Labels") or {}
        if not naming.owned(labels):
            return False
        return bool(found.get("State", {}).get("Running"))

    @_each_client
    def stop(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        timeout: int | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Stop the containers and those depending on them (dependents first)."""
        targets = self._targets(container, instances, map_name)
        names = self._names(targets, with_dependents=True)
        stopped: list[ActionOutcome] = []
        for name in reversed(self._order(names)):
            spec = self.desired.containers[name]
            if self._ours_running(name):
                self.engine.stop(name, timeout if timeout is not None else spec.stop_timeout)
                stopped.append(ActionOutcome(name))
        return _manual(stopped, Op.STOP)

    @_each_client
    def remove(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Remove the (stopped) containers and those depending on them; attached volumes stay."""
        return self.shutdown(container, instances, map_name)

    @_each_client
    def shutdown(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        volumes: bool = False,
        **kwargs: Any,
    ) -> MapResult:
        """Stop and remove the containers and those depending on them (dependents first)."""
        targets = self._targets(container, instances, map_name)
        return self._converge(teardown(targets, volumes=volumes), pull=False)

    @_each_client
    def signal(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        signal: str = "SIGKILL",
        **kwargs: Any,
    ) -> MapResult:
        targets = self._targets(container, instances, map_name)
        sent = []
        for name in self._names(targets):
            if self._ours_running(name):
                self.engine.kill(name, signal)
                sent.append(ActionOutcome(name))
        return _manual(sent, Op.SIGNAL)

    @_each_client
    def pull_images(
        self,
        container: str | Iterable[str],
        instances: Iterable[str] | None = None,
        map_name: str | None = None,
        **kwargs: Any,
    ) -> MapResult:
        """Pull the images of the containers and their dependencies (newer versions too)."""
        targets = self._targets(container, instances, map_name)
        scope = closure(self.desired.depends_on, targets)
        pulls = tuple(
            Action(r, Op.PULL, (Op.PULL,), spec=self.desired.images[r.name])
            for r in sorted(scope)
            if r.kind is Kind.IMAGE
        )
        return self._run(Plan(waves=(pulls,) if pulls else ()))

    def run_script(
        self,
        container: str,
        instance: str | None = None,
        map_name: str | None = None,
        script: str | os.PathLike[str] | None = None,
        entrypoint: str | list[str] | None = None,
        command: str | list[str] | None = None,
        wait_timeout: float = 300.0,
        container_script_dir: str = "/tmp/script_run",
        remove_created_after: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run a script (or command) once in a new container made from a config — with its volumes, user and
        environment — and return {'exit_code', 'log', 'container'}."""
        [rid] = sorted(self._targets(container, [instance] if instance else None, map_name))
        spec = self.desired.containers[rid.name]
        config = container_config(spec)
        config["labels"] = {k: v for k, v in config["labels"].items() if not k.startswith(naming.LABEL_PREFIX + ".")}
        host = config["host_config"]
        host.pop("port_bindings", None)
        host.pop("restart_policy", None)
        config.pop("ports", None)
        config.pop("networking", None)
        config.pop("hostname", None)
        if script is not None:
            script_path = Path(script).resolve()
            folder = script_path.parent if script_path.is_file() else script_path
            host.setdefault("binds", []).append(f"{folder}:{container_script_dir}:ro")
            run = f"{container_script_dir}/{script_path.name}" if script_path.is_file() else container_script_dir
            config["command"] = [run] if command is None else command
            config["entrypoint"] = entrypoint if entrypoint is not None else ["sh"]
        else:
            if command is not None:
                config["command"] = command if isinstance(command, list) else ["sh", "-c", command]
            if entrypoint is not None:
                config["entrypoint"] = entrypoint
        name = f"{spec.name}..script-{int(time.time() * 1000)}"
        ident = self.engine.create_container(name, config)
        try:
            self.engine.start(ident)
            code = self.engine.wait(ident, timeout=wait_timeout)
            output = self.engine.logs(ident, tail=10_000)
        finally:
            if remove_created_after:
                self.engine.remove_container(ident, force=True)
        return {"exit_code": code, "log": output, "container": None if remove_created_after else name}

    def _order(self, names: list[str]) -> list[str]:
        """Names in dependency order (dependencies first)."""
        edges = {r: set(d) for r, d in self.desired.depends_on.items()}
        return [r.name for wave in waves(edges, [ResourceId(Kind.CONTAINER, n) for n in names]) for r in wave]


@dataclass(frozen=True)
class ActionOutcome:
    name: str


def _problems(desired: DesiredState) -> set[str]:
    return {rid.name for rid, _message in desired.problems}


def _manual(done: list[ActionOutcome], op: Op) -> MapResult:
    results = [ActionResult(Action(ResourceId(Kind.CONTAINER, d.name), op, (op,)), Outcome.DONE) for d in done]
    return MapResult(Plan(), RunResult(results))


def _engine(client: Any) -> DockerEngine:
    """The engine port for what the caller passed (see `DockerEngine.for_client`)."""
    return DockerEngine.for_client(client)


def _unstarted(plan: Plan) -> Plan:
    """docker-map's `create`: what is missing is created (volumes prepared), nothing is started."""
    created = plan.keep(lambda a: a.op in (Op.CREATE, Op.RUN, Op.PULL))
    waves = tuple(
        tuple(replace(a, steps=tuple(s for s in a.steps if s is not Op.START)) for a in wave) for wave in created.waves
    )
    return replace(created, waves=waves)
