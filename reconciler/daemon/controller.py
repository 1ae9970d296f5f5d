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

What is here is the loop itself: events to keys, keys to reconciles, results to what runs next. What a
reconcile's plan and results mean to people (logs, metrics, alerts, holds) is `outcomes`; what is held back
from a plan that the planner cannot know (a person's pauses, crash loops) is `guards`; the map files' health
after each reload is `maphealth`; alive or stuck, and the engine lost or back, is `liveness`; which
resources a plan must hold is `locks`, and how long an action may take before it looks stuck is `progress`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.executor.apply import Executor, RunResult
from reconciler.executor.cache import CachedEngine
from reconciler.executor.converge import Planner, converge, teardown
from reconciler.executor.engine import CountingEngine
from reconciler.executor.errors import EngineError
from reconciler.executor.observe import observe
from reconciler.logs import get_logger
from reconciler.model import MapSet
from reconciler.model.clients import ClientConfig
from reconciler.plan.desired import desired_state
from reconciler.plan.naming import DEFAULT_CLIENT, REPLACEMENT_SUFFIX
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Plan, PlanOptions, held_key, observed_scope, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.watch.maps import MapSource

from .alerts import Alerts
from .board import Board, View, status
from .crashloop import CrashLoops
from .guards import Guards
from .holds import HoldStore, client_dir, state_dir
from .intents import PauseFile
from .keys import ALL, OWN_ACTION_EVENTS, STOP_ACTIONS, AllKey, ContainerKey, Key, PruneKey, action_of, keys_for
from .liveness import Liveness
from .locks import ResourceLocks, lock_name, touched
from .maphealth import MapHealth
from .metrics import ClientMetrics, Metrics
from .notify import Notifier
from .outcomes import Outcomes
from .polling import poll, polled_images
from .progress import Progress, action_budget
from .queue import WorkQueue
from .settings import Settings
from .windows import UpdateWindows

log = get_logger(__name__)
LEASE_RECHECK = 5.0  # seconds before a key whose recreate another reconciler holds (a lease) looks again
SUPPRESSED_AS_ALL = 8  # more containers than this to look at once more: one look at everything instead
BURST_AS_ALL = 8  # more container keys than this waiting: one look at everything instead
LOCK_RETRY = 0.25  # seconds before a key whose resources another key is changing looks again


@dataclass(frozen=True)
class Result:
    """What a reconcile asks of the worker loop (controller-runtime's Result and error)."""

    failed: bool = False  # back off (per key, exponentially), then try again
    requeue_after: float | None = None  # not a failure: look again after this long
    wake_after: float | None = None  # a success that wants another look later (an update window opening)


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
        # With a clients file every line and alert names its engine; with one engine (the daemon still
        # passes its `__default__` client) they say "engine", as the connecting client run does.
        several = clients is not None
        self.log = log.bind(client=self.name) if several else log
        engine_name = f"engine {self.name}" if several else "engine"
        self.metrics = metrics or Metrics().client(self.name)
        self.metrics.engine_requests.set_function(lambda: float(engine.request_count))
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.alerts = alerts or Alerts()  # none: nobody to tell
        self.progress = Progress(clock)
        self.liveness = Liveness(settings, self.progress, self.notifier, self.alerts, engine_name, clock, self.log)
        self.windows = UpdateWindows(settings.update_window, wall_clock)
        self._wakes: dict[Key, float] = {}  # key → when a wake-up (an update window opening) is due
        self.queue: WorkQueue[Key] = WorkQueue(rate=settings.rate, max_delay=settings.crash_backoff_max)
        self.maps = MapSet()
        self.desired = DesiredState()
        self.holds = HoldStore(holds_dir(settings, self.name))
        self.locks = ResourceLocks()
        self.board = Board()  # what the status page shows of recent work
        self._suppressed: dict[Key, set[Key]] = {}  # key → containers whose events arrived while it acted on them
        self.crash_loops = CrashLoops(settings.crash_threshold, settings.crash_backoff_max)
        pauses = PauseFile(holds_dir(settings, self.name))  # a person's pauses, of this client's containers
        self.guards = Guards(pauses, self.crash_loops, self.alerts, self.metrics, self.log)
        self.stopping = threading.Event()
        self.outcomes = Outcomes(self.log, self.metrics, self.alerts, self.board, self.holds, self.stopping)
        self.map_health = MapHealth(self.log, self.metrics, self.alerts, self.board)
        self.first_reconcile_done = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._timers: list[threading.Thread] = []

    # --- maps ----------------------------------------------------------------------------------------

    def load_maps(self) -> bool:
        """Reload the map files; broken ones keep their last good version. True if anything changed."""
        result = self.source.reload()
        self.map_health.update(result, self.source)
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

    @property
    def broken_maps(self) -> list[str]:
        return sorted(self.map_health.broken)

    @property
    def map_files(self) -> list[str]:
        return self.map_health.files

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
                admit=lambda plan, _replan: plan if self.locks.try_acquire(key, touched(plan)) is not None else None,
                pull=False,
            )
        except EngineError as exc:
            self.log.warning("pruning a deleted map failed, retrying", map=name, error=str(exc))
            return Result(failed=True)
        if not done.admitted:
            return self._busy_elsewhere(key, done.plan)
        self.outcomes.results(gone, done.result)
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
                # A burst (a cold start, a host reboot, a neighbour's mass restart): one look at everything
                # instead of a key each, every one of which would observe and plan the whole desired state.
                self.queue.collapse(lambda k: isinstance(k, ContainerKey), ALL, above=BURST_AS_ALL)
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
        holder = self.locks.holder_of({lock_name(ResourceId(Kind.CONTAINER, key.name))})
        return holder if isinstance(holder, (ContainerKey, AllKey, PruneKey)) else None

    def keys_for(self, event: dict[str, Any]) -> list[Key]:
        return keys_for(event, self.desired, self._container_name)

    def _container_name(self, ident: str) -> str:
        for summary in self.cache.list_containers():
            if summary.get("Id") == ident:
                return str((summary.get("Names") or ["/"])[0]).lstrip("/")
        return ""

    def on_connect(self) -> None:
        self.liveness.back()
        self.metrics.engine_up.set(1)
        self.cache.relist()
        self.queue.add(ALL)

    def on_disconnect(self, reason: str) -> None:
        self.liveness.lost()
        self.metrics.engine_up.set(0)
        self.metrics.engine_errors.inc()
        self.cache.relist()

    # --- reconciling ---------------------------------------------------------------------------------

    def work(self) -> None:
        """A worker: take keys until the queue shuts down; the reconcile's `Result` says what comes next."""
        while not self.stopping.is_set():
            key = self.queue.get()  # idle, it sleeps until a key is due; a shutdown wakes it at once
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
        # Events arrived while we were changing these containers: look once more (cheap, from the cache). A
        # failed reconcile skips this — its backoff decides. After a look at everything, or many of them, one
        # more look at everything: a key each would plan the whole desired state once per container (a cold
        # start of 500 containers queued 500 keys behind the rate limit).
        if suppressed and (isinstance(key, AllKey) or len(suppressed) > SUPPRESSED_AS_ALL):
            self.queue.add(ALL)
            return
        for name in sorted(suppressed, key=str):
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
        # One container's reconcile looks at what its plan reads, not at every container the maps keep.
        targets = self._targets(key)
        look_at = None if targets is None else observed_scope(desired, targets)
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
                look_at=look_at,
            )
        except EngineError as exc:
            self.metrics.engine_errors.inc()
            self.metrics.reconciles.labels("failed").inc()
            self.log.warning("engine error while observing", key=key, error=str(exc))
            return Result(failed=True)
        if not done.admitted:
            return self._busy_elsewhere(key, done.plan)
        plan, result = done.plan, done.result
        self.outcomes.results(desired, RunResult([*(done.pulled.results if done.pulled else []), *result.results]))
        self._touch(plan)
        self.metrics.reconcile_seconds.observe(self.clock() - started)
        if key == ALL:
            self.first_reconcile_done.set()
        self.outcomes.pending(plan)
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
        holder = self.locks.holder_of(touched(plan))
        self.log.debug("overlapping work in progress: later", key=key, busy_with=holder)
        return Result(requeue_after=LOCK_RETRY)

    @staticmethod
    def _targets(key: ContainerKey | AllKey) -> frozenset[ResourceId] | None:
        return None if isinstance(key, AllKey) else frozenset({ResourceId(Kind.CONTAINER, key.name)})

    def _options(self, key: ContainerKey | AllKey) -> PlanOptions:
        targets = self._targets(key)
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
            held, waits = self.guards.hold(plan_update(desired, observed, self._options(key)), observed, desired)
            for name, wait in waits.items():
                self.queue.add_after(ContainerKey(name), wait)  # the crash loop's next start, when it is due
            return held

        return plan

    def _admit(self, key: Key, plan: Plan, replan: Callable[[], Plan]) -> Plan | None:
        """Lock what the plan touches, then look once more: nobody else changes these now. None: another
        key is busy with one of them (the caller requeues; no worker ever waits holding a lock)."""
        if self.locks.try_acquire(key, touched(plan)) is None:
            return None
        fresh = replan()
        if not touched(fresh) <= self.locks.held_by(key):
            return None
        self.locks.release(key, self.locks.held_by(key) - touched(fresh))
        self.outcomes.report(fresh)
        return fresh

    def _executor(self, key: Key, desired: DesiredState) -> Executor:
        return Executor(
            self.engine,
            concurrency=self.settings.concurrency,
            health_gate=self.settings.health_gate or None,
            on_event=lambda event, action, error: self._on_action(key, desired, event, action, error),
            on_phase=self.board.phase,  # the status page shows what a running action is doing
        )

    def _on_action(self, key: Key, desired: DesiredState, event: str, action: Action, error: str | None) -> None:
        """Executor progress: feeds the watchdog and the status board, and frees each resource as soon as its
        action is over."""
        self.board.action(event, action, error)
        name = lock_name(action.resource)
        if event == "start":
            self.progress.action_started(key, name, action_budget(desired, action, self.settings.health_gate))
            return
        # Forget what the cache knows of it before anyone else may plan it (its events may still be queued).
        self.cache.relist_names({action.resource.name.removesuffix(REPLACEMENT_SUFFIX)})
        self.progress.action_finished(key, name)
        self.locks.release(key, {name})

    def _touch(self, plan: Plan) -> None:
        """Forget cached state of what we just changed (its events may still be on their way)."""
        if plan.actions:
            self.cache.relist_names({a.resource.name for a in plan.actions})

    def watch_pauses(self) -> None:
        """Called every second by the daemon's loop: reconcile everything once something is no longer paused."""
        with self._lock:
            desired = self.desired
        if self.guards.watch(desired):
            self.queue.add(ALL)

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
        engine = {"name": self.name, "up": self.liveness.engine_up and error is None}
        crash_loops = {name: count for name, (count, _finished) in self.crash_loops.crashes.items()}
        return View(desired, observed, plan, error, crash_loops, self.health(), self.ready(), [engine])

    def status(self) -> dict[str, Any]:
        """`/api/status`: see `board`."""
        return status(self.view(), self.board)

    # --- liveness ------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        self.liveness.heartbeat()

    def due_in(self) -> float | None:
        """Seconds until the daemon's loop must look again for this client: a pause's end, the watchdog, the
        engine-lost alert (a pause made or ended is seen by the map watcher, which watches the pause file)."""
        dues = [d for d in (self.liveness.due_in(), self.guards.pauses.next_end()) if d is not None]
        return min(dues) if dues else None

    def health(self) -> tuple[bool, str]:
        return self.liveness.health()

    def ready(self) -> tuple[bool, str]:
        """Ready once something is managed and reconciled: no map file, or none that ever loaded, is not
        ready (a wrong path or a broken map at boot must not look green)."""
        if not self.map_files:
            return False, f"no map files found in {', '.join(self.settings.paths)}"
        if not self.maps.maps:
            return False, f"no valid map loaded (broken: {', '.join(self.broken_maps)})"
        if not self.first_reconcile_done.is_set():
            return False, "first reconcile pending"
        paused = len(self.guards.paused_seen)
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
