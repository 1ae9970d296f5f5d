"""Executing plans: idempotent actions, in dependency order, in parallel, with failures contained.

Actions run on a bounded thread pool, each as soon as the actions it comes after are done (the plan's
`predecessors`: what its waves say, per action — a slow member of one wave holds back only its own
dependents); a failed resource fails everything that depends on it (transitively) while independent
resources carry on; the result lists what happened to every resource, in plan order.

Every action is idempotent and re-checks what it is about to change, so a crash between any two steps
followed by a new run converges:
- create: a container that already exists with our labels and the same spec hash is left alone; a leftover
  replacement from an interrupted recreate is removed first;
- recreate (`_recreate`): the replacement is created under a temporary name (`<name>..next`), leased to
  this process (`lease`) and given the old container's anonymous volumes (image VOLUMEs, `shares`), so no
  data is left behind; the old container is stopped only once the replacement exists, and removed only
  once the replacement runs and passed its health gate (then it takes the name). On any failure the
  replacement goes and the old container runs again — also when an interrupted earlier run had stopped
  it — and the message names every error (`_restore`);
- take over (`reconciler adopt`): the same recreate, with a container that is not ours as the old one
  (docker-map's under our name, compose's for the service, chosen by the planner by id): created first,
  theirs stopped, ours started and health-gated, theirs removed (its anonymous volumes carried over,
  never deleted) — and if ours fails, theirs runs again;
- start ordering (`depends_on: {x: healthy}`): a container starts only once those dependencies are healthy
  (waiting up to the health gate, or `DEFAULT_HEALTH_GATE` without one);
- adopt: a replacement that is complete (spec hash as wanted, running, healthy) is renamed into place
  instead of thrown away, whether the old container is gone (planned as `adopt`) or still there;
- a replacement leased by another live reconciler is never removed or adopted: that action fails with
  "another reconcile is in progress";
- volumes are never removed except by an explicit `down --volumes` / `--prune --volumes`;
- a volume init runs as a labelled one-shot container that stays behind as the record of the preparation;
  it is waited for by polling, so no client timeout kills a long `chown -R`.

Fault injection for crash-safety tests: `on_step` is called at every step boundary (the tests' hook kills
the process there, see tests/integration/crashing_cli.py).

Progress for people (`reconciler apply/down --progress`, `reconciler.live`): `on_run` is told each plan
before its first wave, `on_event` each action's start and outcome, and `on_phase` what a running action
is doing now (creating, starting, waiting for health, healthy, stopping, removing, …) — all from this one
loop, so a display never re-implements it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.logs import get_logger
from reconciler.plan import naming
from reconciler.plan.drift import Reason
from reconciler.plan.naming import REPLACEMENT_SUFFIX, replacement_name
from reconciler.plan.observed import (
    ObservedContainer,
    parse_container,
    parse_image,
    parse_network,
    parse_volume,
)
from reconciler.plan.options import clean_path
from reconciler.plan.planner import Action, Op, Plan, adoptable
from reconciler.plan.resources import (
    ContainerSpec,
    Kind,
    NetworkSpec,
    ResourceId,
    VolumeInitSpec,
    VolumeSpec,
)

from . import lease, translate
from .defaults import DEFAULT_CONCURRENCY, DEFAULT_HEALTH_GATE
from .engine import PULL_IDLE_TIMEOUT, PULL_TIMEOUT, Engine
from .errors import Conflict, EngineError, NotFound

POLL_INTERVAL = 0.5  # how often a running volume init is looked at
# A take-over removes a container that is not ours for good: without a healthcheck, ours must first stay
# up (not exited, not restarting) this many seconds.
TAKE_OVER_SETTLE = 1.0

log = get_logger(__name__)


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed


@dataclass(frozen=True)
class ActionResult:
    action: Action
    outcome: Outcome
    error: str | None = None
    seconds: float = 0.0
    rolled_back: tuple[str, str] | None = None  # (image reference, image id) that failed its health gate

    @property
    def left_to_another(self) -> bool:
        """Skipped because another reconciler holds the lease of this work (or of a dependency's): theirs,
        not a failure of ours."""
        return self.outcome is Outcome.SKIPPED and (self.error or "").startswith(lease.IN_PROGRESS)


@dataclass
class RunResult:
    results: list[ActionResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if r.outcome is not Outcome.DONE and not r.left_to_another]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        done = sum(r.outcome is Outcome.DONE for r in self.results)
        failed = sum(r.outcome is Outcome.FAILED for r in self.results)
        skipped = sum(r.outcome is Outcome.SKIPPED for r in self.results)
        return f"{done} done, {failed} failed, {skipped} skipped"


class _Run:
    """The bookkeeping of one plan's execution: what still waits, what is done, what failed."""

    def __init__(self, plan: Plan, failed: set[ResourceId]) -> None:
        self.order = plan.actions  # the waves in order: topological
        self.before = plan.predecessors()
        self.waiting = list(self.order)
        self.done: dict[ResourceId, ActionResult] = {}
        self.failed = failed  # not done (failed, skipped), and what failed in an earlier run
        self.elsewhere: set[ResourceId] = set()  # of `failed`: left to another reconciler (not failures)

    def ready(self) -> list[Action]:
        """The waiting actions whose predecessors are all finished, in plan order; no longer waiting."""
        ready = [a for a in self.waiting if self.before.get(a.resource, frozenset()) <= self.done.keys()]
        self.waiting = [a for a in self.waiting if a not in ready]
        return ready

    def finish(self, result: ActionResult) -> None:
        rid = result.action.resource
        self.done[rid] = result
        if result.outcome is not Outcome.DONE:
            self.failed.add(rid)
        if result.left_to_another:
            self.elsewhere.add(rid)

    def result(self) -> RunResult:
        """Every action's result in plan order; one that could never start (a plan whose order is not a
        graph: a bug) is reported as skipped rather than lost."""
        never = [ActionResult(a, Outcome.SKIPPED, "never ready: its predecessors did not finish") for a in self.waiting]
        return RunResult([self.done[a.resource] for a in self.order if a.resource in self.done] + never)


class ActionError(Exception):
    """An action that could not be completed (the message says why)."""


class RolledBack(ActionError):
    """A replacement failed its health gate; the previous container runs again."""

    def __init__(self, message: str, image: str, image_id: str) -> None:
        super().__init__(message)
        self.image = image
        self.image_id = image_id


class HealthGateFailed(ActionError):
    pass


class InProgress(ActionError):
    """Another reconciler holds the lease on the replacement: its work is not undone."""


class Executor:
    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_event: Callable[[str, Action, str | None], None] | None = None,
        health_gate: float | None = None,
        owner: str = lease.OWNER,
        init_timeout: float | None = None,
        pull_idle_timeout: float = PULL_IDLE_TIMEOUT,
        pull_timeout: float = PULL_TIMEOUT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = POLL_INTERVAL,
        on_step: Callable[[], None] | None = None,
        on_run: Callable[[Plan], None] | None = None,
        on_phase: Callable[[Action, str], None] | None = None,
    ) -> None:
        """`health_gate`: after creating or recreating a container with a healthcheck, wait up to this
        many seconds for it to become healthy before its dependents are touched; a recreate that turns
        unhealthy or exits meanwhile is rolled back to the previous container. None: no gate.
        `owner`: the lease owner written on replacements (one id per process by default).
        `init_timeout`: how long a volume init may run (None: as long as it takes).
        `on_step`: called at every step boundary (fault injection in crash-safety tests).
        `on_run`, `on_phase`: progress for displays (see the module docstring)."""
        self.engine = engine
        self.health_gate = health_gate
        self.concurrency = max(1, concurrency)
        self.on_event = on_event or (lambda _event, _action, _error: None)
        self.owner = owner
        self.init_timeout = init_timeout
        self.pull_idle_timeout = pull_idle_timeout
        self.pull_timeout = pull_timeout
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.step = on_step or (lambda: None)
        self.on_run = on_run or (lambda _plan: None)
        self.on_phase = on_phase
        self._current = threading.local()  # the action this worker thread runs (for `_phase`)
        self._stop: threading.Event | None = None
        self._graph: Mapping[ResourceId, frozenset[ResourceId]] = {}
        self.client = naming.DEFAULT_CLIENT  # the client whose labels what this run creates carries
        self.log: Any = log

    # --- running plans -------------------------------------------------------------------------------

    def run(
        self,
        plan: Plan,
        stop: threading.Event | None = None,
        *,
        failed_before: Iterable[ResourceId] = (),
        client: str = naming.DEFAULT_CLIENT,
    ) -> RunResult:
        """Execute the plan: each action starts as soon as the actions it comes after are done (its
        predecessors, `Plan.predecessors`), never waiting for the slowest member of a wave it is not after;
        at most `concurrency` at once. With `stop` set, actions not yet begun are skipped.
        `failed_before`: resources that failed in an earlier run (a pull): their dependents are skipped.
        `client`: the client the plan is for (what is created is labelled with it)."""
        self.client = client
        # With several engines every line says which one (a person reads one log for them all).
        self.log = log if client == naming.DEFAULT_CLIENT else log.bind(client=client)
        self._graph = plan.depends_on
        self._stop = stop  # a health gate in progress gives up (and rolls back) once it is set
        self.on_run(plan)
        run = _Run(plan, set(failed_before))
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="reconcile") as pool:
            running: set[Future[ActionResult]] = set()
            while True:
                while ready := run.ready():  # a skip can make its dependents ready (to be skipped too)
                    for action in ready:
                        skipped = self._skip_reason(action, run, stop)
                        if skipped is None:
                            running.add(pool.submit(self._run_one, action))
                        else:
                            run.finish(skipped)
                if not running:
                    return run.result()
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    run.finish(future.result())

    def _skip_reason(self, action: Action, run: _Run, stop: threading.Event | None) -> ActionResult | None:
        """Why `action` is not run (shutting down, a dependency failed), as its result; None: run it."""
        if stop is not None and stop.is_set():
            return ActionResult(action, Outcome.SKIPPED, "shutting down")
        blocker = self._failed_dependency(action.resource, run.failed)
        if blocker is None:
            return None
        why = f"dependency {blocker} failed"
        if blocker in run.elsewhere:
            why = f"{lease.IN_PROGRESS}: dependency {blocker} is another reconciler's work now"
        self.on_event("skipped", action, why)
        return ActionResult(action, Outcome.SKIPPED, why)

    def _failed_dependency(self, rid: ResourceId, failed: set[ResourceId]) -> ResourceId | None:
        """The nearest resource `rid` depends on (transitively) that failed, if any."""
        seen: set[ResourceId] = set()
        level = set(self._graph.get(rid, ()))
        while level and failed:
            hit = sorted(level & failed)
            if hit:
                return hit[0]
            seen |= level
            level = {d for node in level for d in self._graph.get(node, ())} - seen
        return None

    def _phase(self, phase: str) -> None:
        """Tell the display what the action of this thread is doing now."""
        action = getattr(self._current, "action", None)
        if self.on_phase is not None and action is not None:
            self.on_phase(action, phase)

    def _run_one(self, action: Action) -> ActionResult:
        started = time.monotonic()
        self._current.action = action
        self.on_event("start", action, None)
        try:
            self.perform(action)
        except InProgress as exc:
            # Another reconciler (the daemon beside a person's apply, or the other way round) holds the lease
            # of this recreate: its work, not a failure of ours. Skipped; the caller may look again later.
            self.log.info("left to the reconciler at work on it", resource=str(action.resource), detail=str(exc))
            self.on_event("skipped", action, str(exc))
            return ActionResult(action, Outcome.SKIPPED, str(exc), time.monotonic() - started)
        except RolledBack as exc:
            seconds = time.monotonic() - started
            # Debug: the caller says it once, with what follows (the daemon's hold, the CLI's error line).
            self.log.debug("update rolled back", resource=str(action.resource), image=exc.image, error=str(exc))
            self.on_event("failed", action, str(exc))
            return ActionResult(action, Outcome.FAILED, str(exc), seconds, (exc.image, exc.image_id))
        except (EngineError, ActionError) as exc:
            seconds = time.monotonic() - started
            # A container removed or changed under us (NotFound, Conflict) is a race the next plan sorts out:
            # a warning; anything else may need a person.
            level = self.log.warning if isinstance(exc, (NotFound, Conflict)) else self.log.error
            level("action failed", resource=str(action.resource), action=action.op.value, error=str(exc))
            self.on_event("failed", action, str(exc))
            return ActionResult(action, Outcome.FAILED, str(exc), seconds)
        seconds = time.monotonic() - started
        self.log.info("action done", resource=str(action.resource), action=action.op.value, seconds=round(seconds, 3))
        self.on_event("done", action, None)
        return ActionResult(action, Outcome.DONE, None, seconds)

    # --- actions -------------------------------------------------------------------------------------

    def perform(self, action: Action) -> None:
        rid = action.resource
        if action.op is Op.REMOVE:
            self._remove(rid, action.observed_id, volumes=action.anonymous_volumes)
        elif rid.kind is Kind.IMAGE:
            self._phase("pulling")
            self.engine.pull(
                rid.name,
                progress=self._pull_progress(rid.name),
                idle_timeout=self.pull_idle_timeout,
                timeout=self.pull_timeout,
            )
        elif rid.kind is Kind.NETWORK:
            self._phase("creating")
            self._network(action)
        elif rid.kind is Kind.VOLUME:
            self._phase("creating")
            self._create_volume(action.spec_as(VolumeSpec))
        elif rid.kind is Kind.VOLUME_INIT:
            self._phase("preparing")
            self._run_init(action.spec_as(VolumeInitSpec))
        elif rid.kind is Kind.CONTAINER:
            spec = action.spec_as(ContainerSpec)
            created: str | None = None
            for step in action.steps:
                created = self._container_step(step, spec, action, created)
        self.step()

    def _pull_progress(self, ref: str) -> Callable[[dict[str, Any]], None]:
        last = [0.0]

        def progress(event: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] > 2 or "Status:" in str(event.get("status", "")):
                last[0] = now
                log.info("pulling", image=ref, status=event.get("status"), progress=event.get("progress"))

        return progress

    def _remove(self, rid: ResourceId, ident: str | None, *, volumes: bool = False) -> None:
        if rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT):
            target = ident or rid.name
            found = self._look(target)
            if found is None:
                return
            if not found.managed:
                raise ActionError(f"{rid.name} is not ours (no reconciler labels): not removed")
            if rid.name.endswith(REPLACEMENT_SUFFIX):
                self._check_lease(found, rid.name)
            if found.running:
                self._phase("stopping")
                self.engine.stop(target, found.stop_timeout)
                self.step()
            self._phase("removing")
            self.engine.remove_container(target, force=True, volumes=volumes)
        elif rid.kind is Kind.VOLUME:
            volume = self.engine.inspect_volume(rid.name)
            if volume is None:
                return
            if not parse_volume(volume).managed:
                raise ActionError(f"volume {rid.name} is not ours: not removed")
            self._phase("removing")
            self.engine.remove_volume(rid.name)
        elif rid.kind is Kind.NETWORK:
            self._phase("removing")
            self.engine.remove_network(ident or rid.name)

    def _look(self, ident: str) -> ObservedContainer | None:
        """A container as typed observed values (the one parser of engine JSON), or None when it is gone."""
        data = self.engine.inspect_container(ident)
        return None if data is None else parse_container(data)

    def _check_lease(self, replacement: ObservedContainer, name: str) -> None:
        """Refuse to touch a replacement another live reconciler is working with."""
        holder = lease.foreign_holder(dict(replacement.labels), self.owner, self.clock())
        if holder is not None:
            raise InProgress(f"{lease.IN_PROGRESS}: {name} is leased by {holder}; not touched")

    def _network(self, action: Action) -> None:
        spec = action.spec_as(NetworkSpec)
        if action.op is Op.RECREATE and action.observed_id:
            found = self.engine.inspect_network(action.observed_id)
            endpoints = parse_network(found).containers if found is not None else ()
            self._refuse_strangers(spec.name, list(endpoints))
            # Attached containers are recreated by the cascade in later waves; detach them first, or the
            # engine refuses to remove a network with active endpoints.
            for container in endpoints:
                self.engine.disconnect(action.observed_id, container)
            self.engine.remove_network(action.observed_id)
            self.step()
        try:
            self.engine.create_network(spec.name, translate.network_config(spec, self.client))
        except Conflict:
            existing = [parse_network(n) for n in self.engine.list_networks() if n["Name"] == spec.name]
            if not existing or not existing[0].managed:
                raise
            # Created meanwhile (or by a crashed earlier run): ours, so fine.

    def _refuse_strangers(self, network: str, containers: list[str]) -> None:
        """The planner blocks such a recreate; this re-check covers strangers that connected since."""
        strangers = [c[:12] for c in containers if not _owned(self._look(c))]
        if strangers:
            raise ActionError(
                f"network {network}: containers without reconciler's labels are attached ({', '.join(strangers)}): "
                "not recreated"
            )

    def _create_volume(self, spec: VolumeSpec) -> None:
        name = spec.name
        existing = self.engine.inspect_volume(name)
        if existing is not None:
            if not parse_volume(existing).managed:
                raise ActionError(f"volume {name} exists without reconciler's labels: not touched")
            return
        labels = {**translate.volume_labels(spec, self.client), naming.LABEL_VOLUME_ID: uuid.uuid4().hex}
        self.engine.create_volume(name, spec.driver, dict(spec.driver_options), labels)

    def _run_init(self, spec: VolumeInitSpec) -> None:
        """Prepare a volume with a one-shot container, waited for by polling (a long `chown -R` of a big
        volume must finish, whatever the client timeout); an init of this very preparation that is still
        running (an earlier run was interrupted) is waited for, not killed and started over."""
        name = spec.name
        volume = self.engine.inspect_volume(spec.volume)
        if volume is None:
            raise ActionError(f"volume {spec.volume} does not exist")
        identity = parse_volume(volume).identity
        config = translate.init_config(spec, identity, self.client)
        existing = self._look(name)
        if existing is not None and not existing.managed:
            raise ActionError(f"{name} exists without reconciler's labels: not touched")
        if existing is not None and existing.running and dict(existing.labels) == config["labels"]:
            ident = existing.id
        else:
            if existing is not None:
                self.engine.remove_container(existing.id, force=True)
                self.step()
            ident = self._start_init(name, config)
        code = self._wait_exit(ident, f"preparing volume {spec.volume}")
        if code != 0:
            output = self.engine.logs(ident).strip()
            raise ActionError(f"preparing volume {spec.volume} failed (exit {code}): {output[-400:]}")

    def _start_init(self, name: str, config: dict[str, Any]) -> str:
        ident = self.engine.create_container(name, config)
        try:
            self.engine.start(ident)
        except EngineError:
            # A preparation that never ran must not look like a finished one.
            self.engine.remove_container(ident, force=True)
            raise
        return ident

    def _wait_exit(self, ident: str, what: str) -> int:
        """Poll until the container exited; its exit code. Each look is a short request, so no client
        timeout cuts a long run short; an engine error leaves the container running for the next run."""
        deadline = None if self.init_timeout is None else time.monotonic() + self.init_timeout
        while True:
            found = self._look(ident)
            if found is None:
                raise ActionError(f"{what}: the container disappeared while running")
            if not found.running and found.status in ("exited", "dead"):
                return found.exit_code
            if deadline is not None and time.monotonic() >= deadline:
                raise ActionError(f"{what}: still running after {self.init_timeout:g}s (left running)")
            self.sleep(self.poll_interval)

    # --- container steps -----------------------------------------------------------------------------

    def _container_step(self, step: Op, spec: ContainerSpec, action: Action, created: str | None) -> str | None:
        """One step of a container's action; the id of the container a CREATE step made, for its START."""
        self._phase(_PHASES.get(step, step.value))
        if step is Op.CREATE:
            created = self._create(spec)
        elif step is Op.START:
            self._start(spec, fresh=Op.CREATE in action.steps, created=created)
        elif step is Op.RECREATE:
            self._recreate(spec, action.observed_id)
        elif step is Op.TAKE_OVER:
            self._recreate(spec, action.observed_id, take_over=True)
        elif step is Op.ADOPT:
            self._adopt(spec)
        elif step is Op.RESTART:
            self.engine.restart(spec.name, spec.stop_timeout)
            self._exec(spec, policies=("restart",))
        elif step is Op.UPDATE:
            self.engine.update_container(spec.name, translate.update_settings(spec))
        elif step is Op.EXEC:
            # Only the commands found missing: the others are running and must not be started twice.
            missing = {d.field for d in action.reasons if d.reason is Reason.EXEC}
            self._exec(spec, policies=("restart",), only=missing)
        self.step()
        return created

    def _create(self, spec: ContainerSpec) -> str | None:
        """Create the container; its id, or None when someone created it meanwhile with the map's spec."""
        temp = self._look(replacement_name(spec.name))
        if temp is not None and temp.managed:
            self._check_lease(temp, replacement_name(spec.name))
            self.engine.remove_container(temp.id, force=True)  # left by an interrupted recreate
        try:
            return self.engine.create_container(spec.name, translate.container_config(spec, client=self.client))
        except Conflict:
            existing = self._look(spec.name)
            if existing is None or not existing.managed:
                raise ActionError(f"a container named {spec.name} exists without reconciler's labels") from None
            if existing.spec_hash not in spec.spec_hashes:
                raise ActionError(f"{spec.name} was created meanwhile with another spec; run again") from None
            return None

    def _start(self, spec: ContainerSpec, *, fresh: bool, created: str | None = None) -> None:
        """Start it unless it runs. `created`: the id this very action just created — ours and not running,
        so no look is needed first (a look per container was 40 of a cold apply's 182 requests)."""
        ident = created
        if ident is None:
            found = self._look(spec.name)
            if found is None:
                raise ActionError(f"{spec.name} disappeared before it could be started")
            ident = None if found.running else found.id
        if ident is not None:
            problem = self._dependencies_ready(spec)
            if problem:
                raise ActionError(f"{spec.name} not started: {problem}")
            self._start_or_discard(spec.name, ident, fresh=fresh)
            if fresh:
                problem = self._gate(spec, ident)
                if problem:
                    raise HealthGateFailed(f"{spec.name} {problem}")
        self._exec(spec, policies=("restart", "initial") if fresh else ("restart",))
        if fresh and spec.start_delay:
            time.sleep(spec.start_delay)

    def _start_or_discard(self, name: str, ident: str, *, fresh: bool) -> None:
        """Start; a container created by this very action that cannot start (its host port taken, a bad
        mount…) is removed again, so no `Created` container is left behind — it never ran, holds nothing."""
        try:
            self.engine.start(ident)
        except EngineError as exc:
            if not fresh:
                raise
            self.engine.remove_container(ident, force=True)
            raise ActionError(f"{name} could not start, and the container just created was removed: {exc}") from exc

    def _recreate(self, spec: ContainerSpec, old_id: str | None, *, take_over: bool = False) -> None:
        """Replace a container without ever losing it or its data: create the replacement under a temporary
        name (leased to us, with the old container's anonymous volumes) → stop the old one → start the
        replacement and pass its health gate → remove the old one → rename. On any failure the old
        container runs again (see `_restore`). A finished replacement left by an interrupted run is
        adopted instead of built again. `take_over`: the old one is the foreign container `old_id` (asked
        for by `adopt`), the only case where a container without our labels is stopped and removed."""
        old = self._foreign(spec, old_id) if take_over else self._look(spec.name)
        if old is not None and not old.managed and not take_over:
            raise ActionError(f"a container named {spec.name} exists without reconciler's labels: not touched")
        if old is not None and old.id != old_id and old.spec_hash in spec.spec_hashes:
            return  # another reconcile replaced it meanwhile with what the map wants
        ready = self._leftover_replacement(spec)
        if ready is not None:
            self._retire(spec, old, ready.id)
            return
        new_id = self._create_replacement(spec, old)
        self.step()
        self._switch(spec, old, new_id, settle=TAKE_OVER_SETTLE if take_over else 0.0)

    def _foreign(self, spec: ContainerSpec, old_id: str | None) -> ObservedContainer | None:
        """The container to take over, looked at again: still foreign, and nothing else holds our name."""
        old = self._look(old_id) if old_id else None
        if old is not None and old.managed:
            raise ActionError(f"{old.name} carries reconciler's labels now: not taken over; run again")
        holder = self._look(spec.name)
        if holder is not None and (old is None or holder.id != old.id):
            raise ActionError(f"{spec.name} is held by another container ({holder.id[:12]}): not taken over")
        return old

    def _leftover_replacement(self, spec: ContainerSpec) -> ObservedContainer | None:
        """A replacement left by an interrupted recreate: returned if it can take over as it is, removed
        otherwise; a live lease of another reconciler stops us (`InProgress`)."""
        temp_name = replacement_name(spec.name)
        stale = self._look(temp_name)
        if stale is None or not stale.managed:
            return None
        self._check_lease(stale, temp_name)
        if adoptable(spec, stale):
            return stale
        self.engine.remove_container(stale.id, force=True)
        return None

    def _create_replacement(self, spec: ContainerSpec, old: ObservedContainer | None) -> str:
        config = translate.container_config(spec, client=self.client)
        config["labels"].update(lease.lease_labels(self.owner, self.clock() + self._lease_seconds(spec, old)))
        carried = carried_volumes(old, self._declared_volumes(spec))
        if carried:
            host = config.setdefault("host_config", {})
            host["binds"] = [*host.get("binds", []), *carried]
        temp_name = replacement_name(spec.name)
        try:
            return self.engine.create_container(temp_name, config)
        except Conflict as exc:
            # Another reconciler created it a moment ago: its lease says whether it is still at work.
            self._check_lease(self._being_created(temp_name), temp_name)
            raise ActionError(f"creating the replacement failed; the old container keeps running: {exc}") from exc
        except EngineError as exc:
            raise ActionError(f"creating the replacement failed; the old container keeps running: {exc}") from exc

    def _being_created(self, name: str) -> ObservedContainer:
        """The container that holds `name`. The engine reserves a name before the container can be
        inspected, so for a moment a name is taken by nothing: then someone is creating it right now."""
        for _ in range(20):
            found = self._look(name)
            if found is not None:
                return found
            self.sleep(0.1)
        raise InProgress(f"{lease.IN_PROGRESS}: {name} is being created by someone else; not touched")

    def _lease_seconds(self, spec: ContainerSpec, old: ObservedContainer | None) -> float:
        stop = spec.stop_timeout if spec.stop_timeout is not None else (old.stop_timeout if old else None)
        return float(stop if stop is not None else 10) + (self.health_gate or 0.0) + lease.LEASE_MARGIN

    def _declared_volumes(self, spec: ContainerSpec) -> set[str]:
        """Targets the replacement gets anonymous volumes at: the map's `shares` and the image's VOLUMEs,
        less what the map mounts there itself."""
        data = self.engine.inspect_image(spec.image)
        image_volumes = parse_image(data).volumes if data is not None else frozenset()
        declared = set(spec.anonymous_volumes) | set(image_volumes)
        return {clean_path(t) for t in declared} - {clean_path(m.target) for m in spec.mounts}

    def _switch(self, spec: ContainerSpec, old: ObservedContainer | None, new_id: str, settle: float = 0.0) -> None:
        """Stop the old container, start the replacement, pass the gate; restore the old one on failure."""
        was_running = bool(old is not None and old.running)
        waiting = self._dependencies_ready(spec)
        if waiting:
            # Before the old container is stopped: it keeps serving while a dependency is not ready.
            raise ActionError(self._restore(spec, new_id, old, was_running, f"not started: {waiting}", None))
        try:
            if old is not None and was_running:
                timeout = spec.stop_timeout if spec.stop_timeout is not None else old.stop_timeout
                self._phase("stopping the old one")
                self.engine.stop(old.id, timeout)
                self.step()
            self._phase("starting")
            self.engine.start(new_id)
            problem = self._gate(spec, new_id, settle)
        except EngineError as exc:
            what = "stopping the old container or starting the replacement failed"
            raise ActionError(self._restore(spec, new_id, old, was_running, what, exc)) from exc
        if problem:
            # The image that failed is the replacement's own: read it before `_restore` removes it. The tag may
            # have moved on (or gone) during the gate, and its new image has not been tried yet.
            new = self._look(new_id)
            failed_image = new.image_id if new is not None else ""
            message = self._restore(spec, new_id, old, was_running, f"the replacement {problem}", None)
            if not failed_image:  # the replacement vanished: the tag's image is the best guess left
                created = self.engine.inspect_image(spec.image)
                failed_image = parse_image(created).id if created is not None else ""
            raise RolledBack(message, spec.image, failed_image)
        self.step()
        self._retire(spec, old, new_id)

    def _retire(self, spec: ContainerSpec, old: ObservedContainer | None, new_id: str) -> None:
        """The replacement runs (and is healthy): the old container goes and the replacement takes its name."""
        if old is not None:
            current = self._look(old.id)
            if current is not None and current.running:
                self.engine.stop(old.id, spec.stop_timeout)  # only when adopting: the old one was started again
            self.engine.remove_container(old.id, force=True)
            self.step()
        self.engine.rename(new_id, spec.name)
        self._exec(spec, policies=("restart", "initial"))

    def _restore(
        self,
        spec: ContainerSpec,
        new_id: str,
        old: ObservedContainer | None,
        was_running: bool,
        what: str,
        cause: Exception | None,
    ) -> str:
        """Best effort back to what the map wants while its change failed: the replacement goes and the old
        container runs — also when it was stopped by an interrupted earlier run (only a `persistent`
        helper that had finished stays exited). Every step is tried; the message names every error."""
        errors: list[str] = []
        try:
            self.engine.remove_container(new_id, force=True)
        except EngineError as exc:
            errors.append(f"removing the replacement failed: {exc}")
        if old is not None and (was_running or not spec.persistent):
            try:
                current = self._look(old.id)
                if current is None:
                    # Removed meanwhile (by a person, or a crash-looping --rm): the next plan creates it anew.
                    errors.append("the old container is gone (removed meanwhile)")
                elif not current.running:
                    self.engine.start(old.id)
            except EngineError as exc:
                errors.append(f"starting the old container again failed: {exc}")
        reason = f"{what}: {cause}" if cause is not None else what
        if errors:
            return f"{reason}; restoring failed too: {'; '.join(errors)}"
        if old is None:
            return reason
        return f"{reason}; rolled back, the old container {'keeps running' if was_running else 'runs again'}"

    def _adopt(self, spec: ContainerSpec) -> None:
        """An interrupted recreate left a finished replacement and no container under the name: rename it."""
        temp_name = replacement_name(spec.name)
        temp = self._look(temp_name)
        if temp is None or not temp.managed:
            raise ActionError(f"{temp_name} is gone before it could take the name; run again")
        self._check_lease(temp, temp_name)
        if not adoptable(spec, temp):
            raise ActionError(f"{temp_name} changed before it could take the name; run again")
        if self._look(spec.name) is not None:
            raise ActionError(f"{spec.name} exists again; run again")
        self.engine.rename(temp.id, spec.name)
        self._exec(spec, policies=("restart", "initial"))

    def _dependencies_ready(self, spec: ContainerSpec) -> str | None:
        """Wait until every `depends_on: healthy` dependency is healthy; what is wrong, or None. A dependency
        without a healthcheck counts as ready once it runs (there is nothing else to wait for)."""
        deadline = time.monotonic() + (self.health_gate or DEFAULT_HEALTH_GATE)
        for name in spec.wait_healthy:
            while True:
                found = self._look(name)
                if found is not None and found.running and found.health in (None, "healthy"):
                    break
                state = "missing" if found is None else (found.health or found.status)
                if (found is not None and found.health == "unhealthy") or time.monotonic() >= deadline:
                    return f"dependency {name} is not healthy ({state})"
                if self._stop is not None and self._stop.is_set():
                    return f"dependency {name} was not healthy yet when we were asked to stop"
                time.sleep(0.2)
        return None

    def _gate(self, spec: ContainerSpec, ident: str, settle: float = 0.0) -> str | None:
        """Wait for a container with a healthcheck to become healthy; what went wrong, or None. Whether it has
        one is the engine's answer (`State.Health`), since the image's check counts as much as the map's.
        `settle`: one without a healthcheck must stay up (not exited, not restarting) this long — what a
        take-over asks before the foreign container goes for good."""
        if self.health_gate is None:
            return None
        started = time.monotonic()
        deadline = started + max(self.health_gate, settle)
        while True:
            found = self._look(ident)
            if _finished_job(spec, found):
                return None  # a persistent one-shot (a job, a data container): done is its healthy
            problem = _gate_problem(found)
            if problem is not None or found is None:
                return problem or "disappeared"
            if found.health == "healthy" or (found.health is None and time.monotonic() - started >= settle):
                if found.health == "healthy":
                    self._phase("healthy")
                return None  # healthy, or no healthcheck (none in the map or the image, or switched off)
            if self._stop is not None and self._stop.is_set():
                return "was not healthy yet when we were asked to stop"
            if time.monotonic() >= deadline:
                return f"was not healthy within {self.health_gate:g}s"
            self._phase("waiting for health")
            time.sleep(0.2 if found.health is not None else 0.1)

    def _exec(self, spec: ContainerSpec, policies: Iterable[str], only: set[str] | None = None) -> None:
        wanted = tuple(policies)
        for command in spec.exec_commands:
            text = command.cmd if isinstance(command.cmd, str) else " ".join(command.cmd)
            if command.policy in wanted and (only is None or text in only):
                cmd = command.cmd if isinstance(command.cmd, str) else list(command.cmd)
                self.engine.exec_run(spec.name, cmd, command.user)


def _finished_job(spec: ContainerSpec, found: ObservedContainer | None) -> bool:
    """A `persistent` one-shot that ran to exit 0 (once: a restart policy restarting it is no job done)."""
    return bool(spec.persistent and found is not None and not found.running and found.exit_code == 0)


def _gate_problem(found: ObservedContainer | None) -> str | None:
    """What rules a just-started container out at once: gone, exited, restarting (a restart policy hides
    an exit: the engine reports such a container as running between its restarts), or unhealthy."""
    if found is None:
        return "disappeared"
    if found.status == "restarting" or found.restart_count > 0:
        return f"is restarting (exit code {found.exit_code})"
    if not found.running:
        return f"exited with code {found.exit_code}"
    return "became unhealthy" if found.health == "unhealthy" else None


def carried_volumes(old: ObservedContainer | None, targets: set[str]) -> list[str]:
    """Binds that hand the old container's anonymous volumes to its replacement (as compose does): for
    each target in `targets` where the old container has an anonymous volume (named by the engine with 64
    hex digits), `<volume>:<target>:rw`. Named volumes and binds come from the map and are not carried."""
    binds = []
    for mount in old.mounts if old is not None else ():
        target = clean_path(mount.target)
        if mount.type == "volume" and _ANONYMOUS.match(mount.source or "") and target in targets:
            binds.append(f"{mount.source}:{target}:rw")
    return sorted(binds)


_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
# What a container step is called while it runs (`on_phase`).
_PHASES = {
    Op.CREATE: "creating",
    Op.START: "starting",
    Op.RECREATE: "recreating",
    Op.ADOPT: "adopting",
    Op.RESTART: "restarting",
    Op.UPDATE: "updating",
    Op.EXEC: "running exec commands",
}


def _owned(found: ObservedContainer | None) -> bool:
    return found is not None and found.managed
