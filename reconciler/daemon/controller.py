"""The controller: keys in, converged engine out.

Sources of change (the map watcher, the engine's event stream, the resync timer, SIGHUP) only ever add keys
to the work queue — a container name, or `ALL`. Workers take keys and `reconcile(key) -> Result`: observe
(from the cached view, so an idle daemon makes no API requests), plan (pure), take the locks of what the plan
touches, plan again under them, execute (on the real engine, which re-checks what it changes). The worker
loop, not the reconcile, decides from the `Result` when a key runs again. Lost or duplicated events are
harmless, because every reconcile re-reads the world.

Concurrency (`workers`): keys run side by side unless their plans touch a common resource (see `locks`):
then the later one looks again shortly, never waiting with a worker. A full reconcile frees each resource as
soon as its action is over, so healing an unrelated container never waits for a slow recreate elsewhere.
`progress` tells the watchdog busy (actions advancing) from stuck.

Self-healing is the plan's own work: a container that died is started, one that was removed is created, one
that was changed by hand is recreated. A container that keeps crashing (it ran for less than
`crash_threshold` seconds) is restarted with exponential backoff and reported, not hammered.

Auto-update: a pull or tag that moves an image tag in use invalidates the cache and reconciles everything;
the plan sees the image drift and recreates the containers in dependency order, health-gated.

Several engines (docker-map's clients): one controller per client — its own engine, cached view, event
stream (started by `run`), queue, workers, holds and metrics view — so one engine that hangs or goes away
never delays healing on another. The maps are shared; each controller's desired state is its client's
share of them (`desired_state(maps, client, clients)`).

Do no harm: a replacement that fails its health gate is rolled back, and that (container, spec, image) is
held (see `holds`, persisted) — whatever drifted — until the map changes the spec or the tag moves; events
our own actions cause (the rollback's stop and start) do not re-queue the key past its backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.executor.apply import ActionResult, Executor, Outcome, RunResult
from reconciler.executor.cache import CachedEngine
from reconciler.executor.converge import Planner, converge, teardown
from reconciler.executor.engine import CountingEngine
from reconciler.executor.errors import EngineError
from reconciler.executor.observe import observe
from reconciler.logs import get_logger
from reconciler.model import MapSet, Severity
from reconciler.model.clients import ClientConfig
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Reason
from reconciler.plan.naming import DEFAULT_CLIENT, REPLACEMENT_SUFFIX
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Plan, PlanOptions, held_key, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.watch.maps import MapSource, ReloadResult

from .alerts import Alerts
from .board import Board, View, status
from .crashloop import CrashLoops
from .holds import HoldStore, client_dir, hold_rollback, state_dir
from .intents import Pause, PauseFile, leave_paused
from .keys import ALL, OWN_ACTION_EVENTS, STOP_ACTIONS, AllKey, ContainerKey, Key, PruneKey, action_of, keys_for
from .locks import ResourceLocks
from .metrics import ClientMetrics, Metrics
from .notify import Notifier
from .polling import poll, polled_images
from .progress import Progress
from .queue import WorkQueue
from .settings import Settings
from .windows import UpdateWindows

log = get_logger(__name__)
LEASE_RECHECK = 5.0  # seconds before a key whose recreate another reconciler holds (a lease) looks again
LOCK_RETRY = 0.25  # seconds before a key whose resources another key is changing looks again


@dataclass(frozen=True)
class Result:
    """What a reconcile asks of the worker loop (controller-runtime's Result and error)."""

    failed: bool = False  # back off (per key, exponentially), then try again
    requeue_after: float | None = None  # not a failure: look again after this long
    wake_after: float | None = None  # a success that wants another look later (an update window opening)


def _lock_name(rid: ResourceId) -> str:
    """One lock per resource; a container's temporary `..next` shares the container's."""
    if rid.kind is Kind.CONTAINER:
        return f"container:{rid.name.removesuffix(REPLACEMENT_SUFFIX)}"
    return f"{rid.kind.value}:{rid.name}"


def _touched(plan: Plan) -> frozenset[str]:
    """The resources a plan changes: what its reconcile must hold."""
    return frozenset(_lock_name(a.resource) for a in plan.actions)


def holds_dir(settings: Settings, client: str = DEFAULT_CLIENT) -> Path | None:
    """Where a client's holds live: the state directory itself for `__default__` (as with one engine),
    `clients/<name>/` in it for the others."""
    return client_dir(None if settings.state_dir == "off" else state_dir(settings.state_dir), client)


class Controller:
    def __init__(
        self,
        settings: Settings,
        engine: CountingEngine,
        source: MapSource,
        *,
        metrics: ClientMetrics | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        alerts: Alerts | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        client: ClientConfig | None = None,
        clients: Mapping[str, ClientConfig] | None = None,
    ) -> None:
        """`client`/`clients`: the client this controller keeps (and the clients file); None: one engine."""
        self.settings = settings
        self.engine = engine
        self.cache = CachedEngine(engine)
        self.source = source
        self.client, self.clients = client, clients
        self.name = client.name if client is not None else DEFAULT_CLIENT
        self.log = log.bind(client=self.name) if client is not None else log
        self._engine_name = f"engine {self.name}" if client is not None else "engine"
        self.metrics = metrics or Metrics().client(self.name)
        self.metrics.engine_requests.set_function(lambda: float(engine.request_count))
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.alerts = alerts or Alerts()  # none: nobody to tell
        self.windows = UpdateWindows(settings.update_window, wall_clock)
        self._wakes: dict[Key, float] = {}  # key → when a wake-up (an update window opening) is due
        self.queue: WorkQueue[Key] = WorkQueue(rate=settings.rate, max_delay=settings.crash_backoff_max)
        self.maps = MapSet()
        self.desired = DesiredState()
        self.holds = HoldStore(holds_dir(settings, self.name))
        self.pauses = PauseFile(holds_dir(settings, self.name))  # a person's pauses, of this client's containers
        self._paused_seen: frozenset[str] = frozenset()
        self._broken: set[str] = set()  # map files that fail to load now
        self._said: dict[str, str] = {}  # container → the hold last logged for it
        self.map_files: list[str] = []
        self.locks = ResourceLocks()
        self.progress = Progress(clock)
        self.board = Board()  # what the status page shows of recent work
        self._suppressed: dict[Key, set[Key]] = {}  # key → containers whose events arrived while it acted on them
        self.crash_loops = CrashLoops(settings.crash_threshold, settings.crash_backoff_max)
        self.stopping = threading.Event()
        self.first_reconcile_done = threading.Event()
        self.last_progress = clock()
        self.engine_down_since: float | None = None
        self._last_watchdog = 0.0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._timers: list[threading.Thread] = []

    # --- maps ----------------------------------------------------------------------------------------

    def load_maps(self) -> bool:
        """Reload the map files; broken ones keep their last good version. True if anything changed."""
        result = self.source.reload()
        self.board.map_errors(result.problems)
        self._map_health(result)
        problems = {str(p) for p in result.problems if p.severity is Severity.ERROR}
        for problem in sorted(problems):
            where, _, what = problem.partition(": ")
            self.alerts.tell_once("map-error", where, what, detail=problem)
        self.alerts.forget("map-error", lambda told: told in problems)  # fixed and made again: news again
        removed_maps = [name for name in self.maps.maps if name not in result.maps.maps]
        with self._lock:
            self.maps = result.maps
            self.desired = desired_state(result.maps, self.client, self.clients)
        self.metrics.managed.set(len(self.desired.containers))
        for name in removed_maps:
            self.log.warning(
                "map no longer present: not managed any more", map=name, prune=self.settings.prune_deleted_maps
            )
            if self.settings.prune_deleted_maps:
                self.queue.add(PruneKey(name))  # work for the workers, retried on engine errors
        for resource, message in self.desired.problems:
            self.log.error("cannot build resource", resource=str(resource), error=message)
        return result.changed or bool(removed_maps)

    def _map_health(self, result: ReloadResult) -> None:
        """Say what each broken file means — its last good version stays, or nothing of it is managed —
        keep `reconciler_maps_broken{file}` current, and say when a broken file is good again."""
        self.map_files = [str(p) for p in self.source.files()]
        broken = {p.file for p in result.problems if p.severity is Severity.ERROR}
        kept = {str(p) for p in self.source.good}
        for problem in result.problems:
            self.metrics.map_errors.inc()
            if problem.file in kept:
                self.log.error("map error: keeping the last good version", problem=str(problem))
            else:
                self.log.error("map error: not managed (no good version of this file yet)", problem=str(problem))
        for file in sorted(self._broken - broken):
            self.metrics.maps_broken.labels(file).set(0)
            self.log.info("map OK again", file=file)
        for file in broken:
            self.metrics.maps_broken.labels(file).set(1)
        self._broken = broken

    @property
    def broken_maps(self) -> list[str]:
        return sorted(self._broken)

    def maps_changed(self) -> None:
        if self.load_maps():
            self.log.info("maps changed", maps=sorted(self.maps.maps))
        self.queue.add(ALL)

    def _prune(self, key: PruneKey) -> Result:
        name = key.map
        if name in self.maps.maps:
            return Result()  # the map came back meanwhile
        gone = DesiredState(maps=frozenset({name}), client=self.name)
        try:
            done = converge(
                self.engine,
                gone,
                teardown(),
                executor=self._executor(key, gone),
                admit=lambda plan, _replan: plan if self.locks.try_acquire(key, _touched(plan)) is not None else None,
                pull=False,
            )
        except EngineError as exc:
            self.log.warning("pruning a deleted map failed, retrying", map=name, error=str(exc))
            return Result(failed=True)
        if not done.admitted:
            return self._busy_elsewhere(key, done.plan)
        self._results(gone, done.result)
        self.log.info("pruned a deleted map", map=name, result=done.result.summary())
        return Result(failed=not done.result.ok)

    # --- events --------------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        self.cache.invalidate(event)
        for key in self.keys_for(event):
            if isinstance(key, ContainerKey) and action_of(event) in STOP_ACTIONS:
                self.crash_loops.stop_requested(key.name)
            owner = self._acting_on(key, event)
            if owner is None:
                self.queue.add(key)
                continue
            # Our own stop/start/rename of a container we are changing: not a reason to look again now (a
            # rollback's events would otherwise cut the failed key's backoff short). Noted, and looked at once
            # after a successful reconcile.
            with self._lock:
                self._suppressed.setdefault(owner, set()).add(key)
        self.metrics.queue_depth.set(self.queue.depth)

    def _acting_on(self, key: Key, event: dict[str, Any]) -> Key | None:
        """The key whose reconcile is changing the container this event is about, if any."""
        if not isinstance(key, ContainerKey) or event.get("Type") != "container":
            return None
        if action_of(event) not in OWN_ACTION_EVENTS:
            return None
        holder = self.locks.holder_of({_lock_name(ResourceId(Kind.CONTAINER, key.name))})
        return holder if isinstance(holder, (ContainerKey, AllKey, PruneKey)) else None

    def keys_for(self, event: dict[str, Any]) -> list[Key]:
        return keys_for(event, self.desired, self._container_name)

    def _container_name(self, ident: str) -> str:
        for summary in self.cache.list_containers():
            if summary.get("Id") == ident:
                return str((summary.get("Names") or ["/"])[0]).lstrip("/")
        return ""

    def on_connect(self) -> None:
        if self.engine_down_since is not None:
            down_for = round(self.clock() - self.engine_down_since, 1)
            self.log.info("engine is back", down_for=down_for)
            if self.alerts.untell("engine-lost", self._engine_name):
                self.alerts.add("engine-back", self._engine_name, f"reachable again after {down_for:.0f}s")
        self.engine_down_since = None
        self.metrics.engine_up.set(1)
        self.cache.relist()
        self.queue.add(ALL)

    def on_disconnect(self, reason: str) -> None:
        if self.engine_down_since is None:
            self.engine_down_since = self.clock()
        self.metrics.engine_up.set(0)
        self.metrics.engine_errors.inc()
        self.cache.relist()

    # --- reconciling ---------------------------------------------------------------------------------

    def work(self) -> None:
        """A worker: take keys until the queue shuts down; the reconcile's `Result` says what comes next."""
        while not self.stopping.is_set():
            key = self.queue.get(timeout=0.5)
            self.heartbeat()
            if key is None:
                continue
            self.progress.begin(key)
            self.alerts.begin()  # one message for whatever this reconcile has to tell
            try:
                result = self.reconcile(key)
            except Exception as exc:  # one bad key must never kill the worker
                self.log.exception("reconcile crashed", key=key, error=str(exc))
                self.metrics.reconciles.labels("failed").inc()
                result = Result(failed=True)
            finally:
                self.alerts.end()
                self.locks.release_all(key)
                self.progress.end(key)
                self.queue.done(key)
            self._follow_up(key, result)
            self.metrics.queue_depth.set(self.queue.depth)
            self.heartbeat()

    def _follow_up(self, key: Key, result: Result) -> None:
        """The worker loop, not the reconcile, decides when a key runs again."""
        with self._lock:
            suppressed = self._suppressed.pop(key, set())
        if result.failed:
            delay = self.queue.retry(key)  # our own actions' events do not cut this backoff short
            self.log.warning("reconcile failed, retrying", key=key, retry_in=delay)
            return
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)  # not a success either: the backoff count stays
        else:
            self.queue.forget(key)
            if result.wake_after is not None:
                self._wake(key, result.wake_after)
        for name in sorted(suppressed, key=str):
            # Events arrived while we were changing these containers: look once more (cheap, from the cache).
            # A failed reconcile skips this — its backoff decides.
            self.queue.add(name)

    def _wake(self, key: Key, after: float) -> None:
        """Look at `key` again after `after` seconds — once: a wake already due by then is enough (every
        reconcile during a closed window asks for the same opening)."""
        now = self.clock()
        due = now + after
        with self._lock:
            known = self._wakes.get(key)
            if known is not None and now < known <= due + 1.0:
                return
            self._wakes[key] = due
        self.queue.add_after(key, after)

    def reconcile(self, key: Key) -> Result:
        """Observe → plan → lock what the plan touches → plan again under the locks → execute."""
        if isinstance(key, PruneKey):
            return self._prune(key)
        started = self.clock()
        with self._lock:
            desired = self.desired
        if isinstance(key, ContainerKey) and key.name not in desired.containers:
            return Result()  # no longer in any map
        try:
            done = converge(
                self.engine,
                desired,
                self._planner(key),
                executor=self._executor(key, desired),
                reader=self.cache,
                refresh=self.cache.relist,
                admit=lambda plan, replan: self._admit(key, plan, replan),
                stop=self.stopping,
            )
        except EngineError as exc:
            self.metrics.engine_errors.inc()
            self.metrics.reconciles.labels("failed").inc()
            self.log.warning("engine error while observing", key=key, error=str(exc))
            return Result(failed=True)
        if not done.admitted:
            return self._busy_elsewhere(key, done.plan)
        plan, result = done.plan, done.result
        self._results(desired, RunResult([*(done.pulled.results if done.pulled else []), *result.results]))
        self._touch(plan)
        self.metrics.reconcile_seconds.observe(self.clock() - started)
        if key == ALL:
            self.first_reconcile_done.set()
        self._pending(plan)
        if not result.ok:
            self.metrics.reconciles.labels("failed").inc()
            return self._failed(key, result)
        self.metrics.reconciles.labels("blocked" if plan.blocked else "ok").inc()
        if any(r.left_to_another for r in result.results):
            return Result(requeue_after=LEASE_RECHECK)  # another reconciler's recreate: see how it ended
        # An update waiting for its window: look again when the window opens (a resync would, but later).
        wait = self.windows.next_opening(desired, {p.resource.name for p in plan.pending})
        return Result(wake_after=wait)

    def _failed(self, key: Key, result: RunResult) -> Result:
        """A failure is retried with backoff — unless every failure is a rollback that is now held: trying
        again would only meet the hold, so no retry is promised (the hold's own log line says what next)."""
        retried = [r for r in result.failed if r.rolled_back is None or self.stopping.is_set()]
        if not retried:
            return Result()
        self.log.warning("reconcile failed", key=key, failed=[str(r.action.resource) for r in retried])
        return Result(failed=True)

    def _busy_elsewhere(self, key: Key, plan: Plan) -> Result:
        """Another key is changing a resource this plan touches: look again shortly (never wait holding a
        worker, and never hold a lock while waiting — that is what keeps unrelated healing fast)."""
        self.locks.release_all(key)
        holder = self.locks.holder_of(_touched(plan))
        self.log.debug("overlapping work in progress: later", key=key, busy_with=holder)
        return Result(requeue_after=LOCK_RETRY)

    def _pending(self, plan: Plan) -> None:
        """Newer images not taken (policy `notify`, or waiting for the window): told once per image id."""
        for pending in plan.pending:
            name = pending.resource.name
            if self.alerts.tell_once("pending", name, pending.describe(), detail=f"{name}@{pending.wanted}"):
                self.log.warning("update pending", container=name, image=pending.image, why=pending.why)

    def _options(self, key: ContainerKey | AllKey) -> PlanOptions:
        targets = None if isinstance(key, AllKey) else frozenset({ResourceId(Kind.CONTAINER, key.name)})
        with self._lock:
            desired = self.desired
        return PlanOptions(
            waiting=self.windows.waiting(desired),
            targets=targets,
            rejected_images=self.holds.rejected_images,
            held=self.holds.holds,
            update_persistent=self.settings.update_persistent,
            prune=self.settings.prune,
            prune_volumes=self.settings.prune and self.settings.prune_volumes,
        )

    def _planner(self, key: ContainerKey | AllKey) -> Planner:
        """The key's plan: an update within its scope, minus what is held back (failed health gates, crash
        loops); the holds that no longer match the maps or the tags are let go on the way."""

        def plan(desired: DesiredState, observed: ObservedState) -> Plan:
            current = (held_key(s, observed) for s in desired.containers.values() if s.image in observed.images)
            self.holds.keep_only(current)
            # The holds as they are now: the look under the locks must see a rollback another key just held.
            options = self._options(key)
            return self._leave_paused(self._hold_crash_loops(plan_update(desired, observed, options), observed))

        return plan

    def _admit(self, key: Key, plan: Plan, replan: Callable[[], Plan]) -> Plan | None:
        """Lock what the plan touches, then look once more: nobody else changes these now. None: another
        key is busy with one of them (the caller requeues; no worker ever waits holding a lock)."""
        if self.locks.try_acquire(key, _touched(plan)) is None:
            return None
        fresh = replan()
        if not _touched(fresh) <= self.locks.held_by(key):
            return None
        self.locks.release(key, self.locks.held_by(key) - _touched(fresh))
        self._report(fresh)
        return fresh

    def _report(self, plan: Plan) -> None:
        for blocked in plan.blocked:
            self.log.warning("blocked", resource=str(blocked.resource), reason=blocked.message)
        for note in plan.notes:
            said = self._said.get(note.resource.name)
            if note.held and said != note.message:
                self._said[note.resource.name] = note.message  # once per hold, not on every reconcile
                self.log.warning("held back", resource=str(note.resource), note=note.message)
        for action in plan.actions:
            for reason in action.reasons:
                self.metrics.drift.labels(reason.reason.value).inc()
            self.log.info(
                "drift",
                resource=str(action.resource),
                action=action.op.value,
                reasons=[r.describe() for r in action.reasons],
            )

    def _executor(self, key: Key, desired: DesiredState) -> Executor:
        return Executor(
            self.engine,
            concurrency=self.settings.concurrency,
            health_gate=self.settings.health_gate or None,
            on_event=lambda event, action, error: self._on_action(key, desired, event, action, error),
            on_phase=self.board.phase,  # the status page shows what a running action is doing
        )

    def _results(self, desired: DesiredState, result: RunResult) -> None:
        """Metrics for every action; a rollback becomes a hold."""
        for r in result.results:
            self.metrics.actions.labels(r.action.op.value, r.outcome.value).inc()
            if r.rolled_back is not None:
                self._rolled_back(desired, r)
            elif r.outcome is Outcome.DONE and any(d.reason is Reason.IMAGE for d in r.action.reasons):
                self.metrics.updates.inc()
                image = next(d for d in r.action.reasons if d.reason is Reason.IMAGE)
                text = f"updated: {image.field} {image.found} → {image.wanted}"
                self.alerts.add("update", r.action.resource.name, text)

    def _on_action(self, key: Key, desired: DesiredState, event: str, action: Action, error: str | None) -> None:
        """Executor progress: feeds the watchdog and the status board, and frees each resource as soon as its
        action is over."""
        self.board.action(event, action, error)
        name = _lock_name(action.resource)
        if event == "start":
            self.progress.action_started(key, name, self._budget(desired, action))
            return
        # Forget what the cache knows of it before anyone else may plan it (its events may still be queued).
        self.cache.relist_names({action.resource.name.removesuffix(REPLACEMENT_SUFFIX)})
        self.progress.action_finished(key, name)
        self.locks.release(key, {name})

    def _budget(self, desired: DesiredState, action: Action) -> float:
        """How long an action may legitimately take beyond `stuck_after`: stopping the old container and
        waiting for the new one's health gate."""
        spec = desired.containers.get(action.resource.name)
        if spec is None or action.resource.kind is not Kind.CONTAINER:
            return 0.0
        stop = float(spec.stop_timeout if spec.stop_timeout is not None else 10)
        gate = self.settings.health_gate if spec.healthcheck is not None else 0.0
        return stop + gate + float(spec.start_delay or 0)

    def _rolled_back(self, desired: DesiredState, r: ActionResult) -> None:
        """A replacement failed its health gate and the previous container runs again: hold that
        (container, spec, image) so the same failing replacement is not tried again."""
        assert r.rolled_back is not None
        self.metrics.rollbacks.inc()
        self.board.rolled_back(r.action, r.error)
        name = r.action.resource.name
        spec = desired.containers.get(name)
        if self.stopping.is_set() or spec is None:
            return  # interrupted by our own shutdown: nothing failed, the next start tries again
        image_ref, image_id = r.rolled_back
        image_changed = hold_rollback(self.holds, spec.spec_hash, r)
        tried = f"the update to {image_ref} {image_id.removeprefix('sha256:')[:12]}" if image_changed else "a recreate"
        self.alerts.add("rollback", name, f"rolled back {tried}, the previous container runs again: {r.error}")
        if image_changed:
            self.log.warning(
                "image update rolled back; not retried until the tag moves",
                container=name,
                image=image_ref,
                image_id=image_id[:19],
            )
        else:
            self.log.warning(
                "recreate rolled back; held back until the map changes its spec",
                container=name,
                reasons=[d.describe() for d in r.action.reasons],
            )

    def _touch(self, plan: Plan) -> None:
        """Forget cached state of what we just changed (its events may still be on their way)."""
        if plan.actions:
            self.cache.relist_names({a.resource.name for a in plan.actions})

    def _leave_paused(self, plan: Plan) -> Plan:
        """A person paused these containers (`reconciler pause`, or `down`/`stop` beside the daemon): no
        action on them — not even healing — until they are resumed (see `intents.leave_paused`)."""
        with self._lock:
            desired = self.desired
        return leave_paused(plan, desired, self._paused())

    def _paused(self) -> dict[str, Pause]:
        """The pauses in force: not expired, and the map has not changed the container since (a person who
        edits a paused container's config wants the edit applied), of containers this client keeps."""
        with self._lock:
            specs = {name: spec.spec_hash for name, spec in self.desired.containers.items()}
        return {n: p for n, p in self.pauses.active().items() if n in specs and p.matches(specs[n])}

    def watch_pauses(self) -> None:
        """Called every second by the daemon's loop: log what a person paused or resumed (or what expired),
        keep the gauge current, and reconcile everything once something is no longer paused."""
        now = frozenset(self._paused())
        if now == self._paused_seen:
            return
        paused, resumed = sorted(now - self._paused_seen), sorted(self._paused_seen - now)
        self._paused_seen = now
        self.metrics.paused.set(len(now))
        if paused:
            self.log.info("paused by a person: not healed until resumed", containers=paused)
        if resumed:
            self.log.info("resumed: managed again", containers=resumed)
            self.queue.add(ALL)

    def _hold_crash_loops(self, plan: Plan, observed: ObservedState) -> Plan:
        held, waits = self.crash_loops.hold(plan, observed)
        for name, wait in waits.items():
            self.queue.add_after(ContainerKey(name), wait)
            crashes = self.crash_loops.crashes.get(name, (0, ""))[0]
            text = f"crash loop: restart held back ({crashes} crashes in a row)"
            self.alerts.tell_once("crash-loop", name, text, detail=name)
        # A container of ours that ran long enough again: its next crash loop is news again.
        ours = self.desired.containers
        self.alerts.forget("crash-loop", lambda told: told in self.crash_loops.crashes or told not in ours)
        return held

    # --- the status page -----------------------------------------------------------------------------

    def view(self) -> View:
        """The current picture for the status page: a look through the cache (no requests when it is warm)
        and a plan made from it, with the holds — pure, nothing executed, counted or held."""
        with self._lock:
            desired = self.desired
        observed: ObservedState | None = None
        plan: Plan | None = None
        error = None
        try:
            observed = observe(self.cache, desired)
            plan = plan_update(desired, observed, self._options(ALL))
        except EngineError as exc:
            error = str(exc)
        engine = {"name": self.name, "up": self.engine_down_since is None and error is None}
        crash_loops = {name: count for name, (count, _finished) in self.crash_loops.crashes.items()}
        return View(desired, observed, plan, error, crash_loops, self.health(), self.ready(), [engine])

    def status(self) -> dict[str, Any]:
        """`/api/status`: see `board`."""
        return status(self.view(), self.board)

    # --- liveness ------------------------------------------------------------------------------------

    def stuck_for(self) -> float:
        """How long a reconcile in flight has gone without progress (beyond what its running actions may
        legitimately take); 0 when every one is advancing — busy is not stuck."""
        return self.progress.stalled_for()

    def heartbeat(self) -> None:
        """Called by the loops; pings systemd's watchdog only while no reconcile is stuck."""
        now = self.clock()
        self.last_progress = now
        down = self.engine_down_since
        if down is not None and now - down > self.settings.engine_grace:
            text = f"unreachable for {now - down:.0f}s"
            self.alerts.tell_once("engine-lost", self._engine_name, text, detail=self._engine_name)
        interval = self.notifier.watchdog_interval
        if interval and now - self._last_watchdog >= interval / 3 and self.stuck_for() <= self.settings.stuck_after:
            self._last_watchdog = now
            self.notifier.watchdog()

    def health(self) -> tuple[bool, str]:
        now = self.clock()
        stuck = self.stuck_for()
        if stuck > self.settings.stuck_after:
            return False, f"a reconcile has made no progress for {stuck:.0f}s"
        if now - self.last_progress > self.settings.stuck_after:
            return False, f"loop stuck for {now - self.last_progress:.0f}s"
        if self.engine_down_since is not None and now - self.engine_down_since > self.settings.engine_grace:
            return False, f"engine unreachable for {now - self.engine_down_since:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """Ready once something is managed and reconciled: no map file, or none that ever loaded, is not
        ready (a wrong path or a broken map at boot must not look green)."""
        if not self.map_files:
            return False, f"no map files found in {', '.join(self.settings.paths)}"
        if not self.maps.maps:
            return False, f"no valid map loaded (broken: {', '.join(sorted(self._broken))})"
        if not self.first_reconcile_done.is_set():
            return False, "first reconcile pending"
        paused = len(self._paused_seen)
        return True, "ready" + (
            f"; {paused} container{'s' if paused != 1 else ''} paused by a person" if paused else ""
        )

    # --- threads -------------------------------------------------------------------------------------

    def start_workers(self) -> None:
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self.work, name=f"reconcile-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)
        self._timer("resync", self.settings.resync, self._resync)
        if self.settings.poll_images:
            self._timer("poll-images", self.settings.poll_images, self._poll_images)

    def _timer(self, name: str, every: float, func: Callable[[], None]) -> None:
        def loop() -> None:
            while not self.stopping.wait(every):
                try:
                    func()
                except Exception as exc:
                    self.log.warning(f"{name} failed", error=str(exc))

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._timers.append(thread)

    def _resync(self) -> None:
        self.cache.relist()
        self.queue.add(ALL)

    def _poll_images(self) -> None:
        with self._lock:
            containers = list(self.desired.containers.values())
        poll(self.engine, polled_images(containers))

    def stop(self, timeout: float) -> bool:
        """Stop taking keys; wait up to `timeout` for in-flight work. True if everything finished."""
        self.stopping.set()
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._workers)
