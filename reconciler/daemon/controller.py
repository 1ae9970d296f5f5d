"""The controller: keys in, converged engine out.

Sources of change (the map watcher, the engine's event stream, the resync timer, SIGHUP) only ever add keys
to the work queue — a container name, or `ALL`. Workers take keys and reconcile: observe (from the cached
view, so an idle daemon makes no API requests), plan (pure), execute (on the real engine, which re-checks
what it changes). Lost or duplicated events are harmless, because every reconcile re-reads the world.

Self-healing is the plan's own work: a container that died is started, one that was removed is created, one
that was changed by hand is recreated. A container that keeps crashing (it ran for less than
`crash_threshold` seconds) is restarted with exponential backoff and reported, not hammered.

Auto-update: a pull or tag that moves an image tag in use invalidates the cache and reconciles everything;
the plan sees the image drift and recreates the containers in dependency order, health-gated; an update
that fails its gate is rolled back and that image id is not tried again until the tag moves once more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler.executor.apply import Executor, Outcome, RunResult, not_a_pull
from reconciler.executor.cache import CachedEngine
from reconciler.executor.engine import DockerEngine
from reconciler.executor.errors import EngineError
from reconciler.executor.observe import observe
from reconciler.logs import get_logger
from reconciler.model import MapSet
from reconciler.plan.desired import desired_state
from reconciler.plan.drift import Reason
from reconciler.plan.naming import LABEL_SELF, REPLACEMENT_SUFFIX
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_down, plan_update
from reconciler.plan.resources import DesiredState, Kind, ResourceId
from reconciler.watch.maps import MapSource

from .metrics import Metrics
from .notify import Notifier
from .queue import ALL, WorkQueue
from .settings import Settings

log = get_logger(__name__)
PRUNE = "prune:"  # key prefix: tear down the objects of a map whose file was deleted
_CONTAINER_ACTIONS = {
    "create",
    "destroy",
    "die",
    "stop",
    "kill",
    "oom",
    "start",
    "rename",
    "update",
    "restart",
    "pause",
    "unpause",
}
_IMAGE_ACTIONS = {"pull", "tag", "untag", "delete", "load", "import"}


def _parse_time(text: str) -> datetime | None:
    """Docker's RFC 3339 with nanoseconds ("2026-11-28T00:29:02.6554356Z"); None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    frac = (frac[:6]).ljust(6, "0") if frac else "000000"
    try:
        return datetime.fromisoformat(f"{head}.{frac}+00:00")
    except ValueError:
        return None


class Controller:
    def __init__(
        self,
        settings: Settings,
        engine: DockerEngine,
        source: MapSource,
        *,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = CachedEngine(engine)
        self.source = source
        self.metrics = metrics or Metrics()
        self.metrics.engine_requests.set_function(lambda: float(engine.request_count))
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.queue = WorkQueue(rate=settings.rate, max_delay=settings.crash_backoff_max)
        self.maps = MapSet()
        self.desired = DesiredState()
        self.rejected: set[tuple[str, str]] = set()
        self.crashes: dict[str, tuple[int, str]] = {}  # name → (consecutive quick deaths, last FinishedAt)
        self.stop_requests: dict[str, float] = {}  # name → when a kill/stop was asked (not a crash, then)
        self.stopping = threading.Event()
        self.first_reconcile_done = threading.Event()
        self.last_progress = clock()
        self.engine_down_since: float | None = None
        self._last_watchdog = 0.0
        self._busy: dict[str, float] = {}  # worker thread name → when its current reconcile began
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._timers: list[threading.Thread] = []

    # --- maps ----------------------------------------------------------------------------------------

    def load_maps(self) -> bool:
        """Reload the map files; broken ones keep their last good version. True if anything changed."""
        result = self.source.reload()
        for problem in result.problems:
            self.metrics.map_errors.inc()
            log.error("map error: keeping the last good version", problem=str(problem))
        removed_maps = [name for name in self.maps.maps if name not in result.maps.maps]
        with self._lock:
            self.maps = result.maps
            self.desired = desired_state(result.maps)
        self.metrics.managed.set(len(self.desired.containers))
        for name in removed_maps:
            log.warning("map no longer present: not managed any more", map=name, prune=self.settings.prune_deleted_maps)
            if self.settings.prune_deleted_maps:
                self.queue.add(f"{PRUNE}{name}")  # work for the workers, retried on engine errors
        for resource, message in self.desired.problems:
            log.error("cannot build resource", resource=str(resource), error=message)
        return result.changed or bool(removed_maps)

    def maps_changed(self) -> None:
        if self.load_maps():
            log.info("maps changed", maps=sorted(self.maps.maps))
        self.queue.add(ALL)

    def _prune(self, key: str) -> None:
        name = key.removeprefix(PRUNE)
        if name in self.maps.maps:
            return  # the map came back meanwhile
        gone = DesiredState(maps=frozenset({name}))
        try:
            teardown = plan_down(gone, observe(self.engine, gone))
            result = Executor(self.engine, gone, concurrency=self.settings.concurrency).run(
                teardown, stop=self.stopping
            )
        except EngineError as exc:
            log.warning("pruning a deleted map failed, retrying", map=name, error=str(exc))
            self.queue.retry(key)
            return
        if not result.ok:
            self.queue.retry(key)
        log.info("pruned a deleted map", map=name, result=result.summary())

    # --- events --------------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        self.cache.invalidate(event)
        for key in self.keys_for(event):
            self.queue.add(key)
        self.metrics.queue_depth.set(self.queue.depth)

    def keys_for(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("Type")
        action = str(event.get("Action") or "").split(":")[0]
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        desired = self.desired
        if kind == "container":
            name = str(attributes.get("name", ""))
            if action not in _CONTAINER_ACTIONS or name.endswith(REPLACEMENT_SUFFIX) or attributes.get(LABEL_SELF):
                return []
            if action == "rename":
                # `docker rename ours other`: the event carries the new name; the old one is what went missing.
                old = str(attributes.get("oldName", "")).lstrip("/")
                return [n for n in (old, name) if n in desired.containers]
            if name in desired.containers:
                if action in ("kill", "stop"):
                    self.stop_requests[name] = time.time()
                return [name]
            if name in desired.inits and action == "destroy":
                return [ALL]
            return []
        if kind == "image" and action in _IMAGE_ACTIONS:
            # `tag` names the reference in Attributes.name (the actor is the image id); `pull` names it in the
            # actor's ID (Attributes.name is the repository without the tag). Either may be ours.
            refs = [str(attributes.get("name") or ""), str((event.get("Actor") or {}).get("ID") or "")]
            used = {spec.image for spec in desired.containers.values()}
            if action == "delete" or any(_same_ref(r, u) for r in refs if r for u in used):
                return [ALL]
            return []
        if kind == "network" and action in ("connect", "disconnect"):
            # Someone (or a start) changed a container's endpoints: look at that container.
            name = self._container_name(str(attributes.get("container", "")))
            return [name] if name in desired.containers else []
        if kind in ("volume", "network") and action in ("create", "destroy", "remove"):
            name = str(attributes.get("name") or (event.get("Actor") or {}).get("ID") or "")
            if name in desired.volumes or name in desired.networks:
                return [ALL]
        return []

    def _container_name(self, ident: str) -> str:
        for summary in self.cache.list_containers():
            if summary.get("Id") == ident:
                return str((summary.get("Names") or ["/"])[0]).lstrip("/")
        return ""

    def on_connect(self) -> None:
        if self.engine_down_since is not None:
            log.info("engine is back", down_for=round(self.clock() - self.engine_down_since, 1))
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
        """A worker: take keys until the queue shuts down."""
        while not self.stopping.is_set():
            key = self.queue.get(timeout=0.5)
            self.heartbeat()
            if key is None:
                continue
            worker = threading.current_thread().name
            self._busy[worker] = self.clock()
            try:
                self.reconcile(key)
            except Exception as exc:  # one bad key must never kill the worker
                log.exception("reconcile crashed", key=key, error=str(exc))
                self.metrics.reconciles.labels("failed").inc()
                self.queue.retry(key)
            finally:
                self._busy.pop(worker, None)
                self.queue.done(key)
                self.metrics.queue_depth.set(self.queue.depth)
                self.heartbeat()

    def reconcile(self, key: str) -> None:
        if key.startswith(PRUNE):
            self._prune(key)
            return
        started = self.clock()
        with self._lock:
            desired = self.desired
        if key != ALL and key not in desired.containers:
            return  # no longer in any map
        targets = None if key == ALL else frozenset({ResourceId(Kind.CONTAINER, key)})
        with self._lock:
            rejected = frozenset(self.rejected)
        options = PlanOptions(
            targets=targets, rejected_images=rejected, update_persistent=self.settings.update_persistent
        )
        try:
            observed = observe(self.cache, desired)
            plan = plan_update(desired, observed, options)
            pulls = [a for a in plan.actions if a.op is Op.PULL]
            if pulls:
                self._execute(desired, Plan(waves=(tuple(pulls),)))
                self.cache.relist()
                observed = observe(self.cache, desired)
                plan = plan_update(desired, observed, replace(options, pull=False)).keep(not_a_pull)
            plan = self._hold_crash_loops(plan, observed, key)
        except EngineError as exc:
            self.metrics.engine_errors.inc()
            self.metrics.reconciles.labels("failed").inc()
            delay = self.queue.retry(key)
            log.warning("engine error while observing", key=key, error=str(exc), retry_in=delay)
            return
        for blocked in plan.blocked:
            log.warning("blocked", resource=str(blocked.resource), reason=blocked.message)
        for action in plan.actions:
            for reason in action.reasons:
                self.metrics.drift.labels(reason.reason.value).inc()
            log.info(
                "drift",
                resource=str(action.resource),
                action=action.op.value,
                reasons=[r.describe() for r in action.reasons],
            )
        result = self._execute(desired, plan) if plan.actions else RunResult()
        self._touch(plan)
        self.metrics.reconcile_seconds.observe(self.clock() - started)
        if result.ok:
            self.queue.forget(key)
            self.metrics.reconciles.labels("blocked" if plan.blocked else "ok").inc()
        else:
            self.metrics.reconciles.labels("failed").inc()
            delay = self.queue.retry(key)
            log.warning("reconcile failed, retrying", key=key, failed=len(result.failed), retry_in=delay)
        if key == ALL:
            self.first_reconcile_done.set()

    def _execute(self, desired: DesiredState, plan: Plan) -> RunResult:
        executor = Executor(
            self.engine,
            desired,
            concurrency=self.settings.concurrency,
            health_gate=self.settings.health_gate or None,
        )
        result = executor.run(plan, stop=self.stopping)
        for r in result.results:
            self.metrics.actions.labels(r.action.op.value, r.outcome.value).inc()
            if r.rolled_back is not None:
                with self._lock:
                    self.rejected.add(r.rolled_back)
                self.metrics.rollbacks.inc()
                log.warning(
                    "image update rolled back; not retried until the tag moves",
                    image=r.rolled_back[0],
                    image_id=r.rolled_back[1][:19],
                )
            elif r.outcome is Outcome.DONE and any(d.reason is Reason.IMAGE for d in r.action.reasons):
                self.metrics.updates.inc()
        return result

    def _touch(self, plan: Plan) -> None:
        """Forget cached state of what we just changed (its events may still be on their way)."""
        if plan.actions:
            self.cache.relist_names({a.resource.name for a in plan.actions})

    def _hold_crash_loops(self, plan: Plan, observed: ObservedState, key: str) -> Plan:
        now = datetime.now(UTC)
        held: list[Action] = []
        for action in plan.actions:
            if action.op is not Op.START or action.resource.kind is not Kind.CONTAINER:
                continue
            found = observed.containers.get(action.resource.name)
            if found is None:
                continue
            started, finished = _parse_time(found.started_at), _parse_time(found.finished_at)
            if started is None or finished is None:
                continue
            name = action.resource.name
            ran = (finished - started).total_seconds()
            asked = self.stop_requests.get(name)
            stopped_on_request = asked is not None and asked >= started.timestamp() - 1
            if ran >= self.settings.crash_threshold or stopped_on_request:
                self.crashes.pop(name, None)
                continue
            count, last_finish = self.crashes.get(name, (0, ""))
            if last_finish != found.finished_at:
                count += 1
                self.crashes[name] = (count, found.finished_at)
            delay = min(2.0 ** min(count - 1, 30), self.settings.crash_backoff_max)
            waited = (now - finished).total_seconds()
            if waited < delay:
                held.append(action)
                self.queue.add_after(name, delay - waited)
                log.warning(
                    "crash loop: restart held back",
                    container=name,
                    crashes=count,
                    exit_code=found.exit_code,
                    restart_in=round(delay - waited, 1),
                )
        return plan.keep(lambda a: a not in held) if held else plan

    # --- liveness ------------------------------------------------------------------------------------

    def stuck_for(self) -> float:
        """How long the oldest reconcile in flight has been running (0 when none is)."""
        started = list(self._busy.values())
        return self.clock() - min(started) if started else 0.0

    def heartbeat(self) -> None:
        """Called by the loops; pings systemd's watchdog only while no reconcile is stuck."""
        now = self.clock()
        self.last_progress = now
        interval = self.notifier.watchdog_interval
        if interval and now - self._last_watchdog >= interval / 3 and self.stuck_for() <= self.settings.stuck_after:
            self._last_watchdog = now
            self.notifier.watchdog()

    def health(self) -> tuple[bool, str]:
        now = self.clock()
        stuck = self.stuck_for()
        if stuck > self.settings.stuck_after:
            return False, f"a reconcile has been stuck for {stuck:.0f}s"
        if now - self.last_progress > self.settings.stuck_after:
            return False, f"loop stuck for {now - self.last_progress:.0f}s"
        if self.engine_down_since is not None and now - self.engine_down_since > self.settings.engine_grace:
            return False, f"engine unreachable for {now - self.engine_down_since:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if not self.first_reconcile_done.is_set():
            return False, "first reconcile pending"
        return True, "ready"

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
                    log.warning(f"{name} failed", error=str(exc))

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._timers.append(thread)

    def _resync(self) -> None:
        self.cache.relist()
        self.queue.add(ALL)

    def _poll_images(self) -> None:
        for ref in sorted(self.desired.images):
            try:
                self.engine.pull(ref)  # a moved tag shows up as image events, which do the rest
            except EngineError as exc:
                log.warning("polling an image failed", image=ref, error=str(exc))

    def stop(self, timeout: float) -> bool:
        """Stop taking keys; wait up to `timeout` for in-flight work. True if everything finished."""
        self.stopping.set()
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._workers)


def _same_ref(event_ref: str, wanted: str) -> bool:
    def norm(ref: str) -> str:
        ref = ref.removeprefix("docker.io/").removeprefix("library/")
        return ref if ":" in ref.rsplit("/", 1)[-1] or "@" in ref else f"{ref}:latest"

    return norm(event_ref) == norm(wanted)
