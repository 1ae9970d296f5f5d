"""Executing plans: idempotent actions, in waves, in parallel, with failures contained.

Each wave runs its actions on a bounded thread pool; a failed resource fails everything that depends on it
(transitively) while independent resources carry on; the result lists what happened to every resource.

Every action is idempotent and re-checks what it is about to change, so a crash between any two steps
followed by a new run converges:
- create: a container that already exists with our labels and the same spec hash is left alone; a leftover
  replacement from an interrupted recreate is removed first;
- recreate: the replacement is created first under a temporary name (`<name>..next`); the old container is
  stopped only once it exists, and removed only once the replacement runs (then it takes the name). If
  creating or starting the replacement fails, the old container keeps (or is again) running and the error
  is reported;
- volumes are never removed except by an explicit `down --volumes` / `--prune --volumes`;
- a volume init runs as a labelled one-shot container that stays behind as the record of the preparation.

Fault injection for crash-safety tests: with `RECONCILER_FAULT_CRASH_AFTER=N` in the environment the
process exits abruptly (no cleanup) after the N-th step boundary.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reconciler.logs import get_logger
from reconciler.plan import naming
from reconciler.plan.drift import Reason
from reconciler.plan.naming import replacement_name
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_update
from reconciler.plan.resources import (
    ContainerSpec,
    DesiredState,
    Kind,
    ResourceId,
)

from . import translate
from .engine import Engine
from .errors import Conflict, EngineError
from .observe import observe

DEFAULT_CONCURRENCY = 4
DEFAULT_HEALTH_GATE = 60.0
INIT_TIMEOUT = 300.0

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


@dataclass
class RunResult:
    results: list[ActionResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ActionResult]:
        return [r for r in self.results if r.outcome is not Outcome.DONE]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        done = sum(r.outcome is Outcome.DONE for r in self.results)
        failed = sum(r.outcome is Outcome.FAILED for r in self.results)
        skipped = sum(r.outcome is Outcome.SKIPPED for r in self.results)
        return f"{done} done, {failed} failed, {skipped} skipped"


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


class _Crash:
    """Step counter for fault injection (see module docstring)."""

    def __init__(self) -> None:
        raw = os.environ.get("RECONCILER_FAULT_CRASH_AFTER")
        self.limit = int(raw) if raw and raw.isdigit() else None
        self.count = 0
        self.lock = threading.Lock()

    def step(self) -> None:
        if self.limit is None:
            return
        with self.lock:
            self.count += 1
            if self.count >= self.limit:
                os._exit(137)


class Executor:
    def __init__(
        self,
        engine: Engine,
        desired: DesiredState,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_event: Callable[[str, Action, str | None], None] | None = None,
        health_gate: float | None = None,
    ) -> None:
        """`health_gate`: after creating or recreating a container with a healthcheck, wait up to this
        many seconds for it to become healthy before its dependents are touched; a recreate that turns
        unhealthy or exits meanwhile is rolled back to the previous container. None: no gate."""
        self.engine = engine
        self.desired = desired
        self.health_gate = health_gate
        self.concurrency = max(1, concurrency)
        self.on_event = on_event or (lambda _event, _action, _error: None)
        self.crash = _Crash()
        self._stop: threading.Event | None = None

    # --- running plans -------------------------------------------------------------------------------

    def run(self, plan: Plan, stop: threading.Event | None = None) -> RunResult:
        """Execute the plan's waves in order; with `stop` set, waves not yet begun are skipped."""
        result = RunResult()
        failed: set[ResourceId] = set()
        self._stop = stop  # a health gate in progress gives up (and rolls back) once it is set
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="reconcile") as pool:
            for wave in plan.waves:
                futures: list[tuple[Action, Future[ActionResult]]] = []
                if stop is not None and stop.is_set():
                    result.results.extend(ActionResult(a, Outcome.SKIPPED, "shutting down") for a in wave)
                    continue
                for action in wave:
                    blocker = self._failed_dependency(action.resource, failed)
                    if blocker is not None:
                        result.results.append(ActionResult(action, Outcome.SKIPPED, f"dependency {blocker} failed"))
                        failed.add(action.resource)
                        self.on_event("skipped", action, f"dependency {blocker} failed")
                        continue
                    futures.append((action, pool.submit(self._run_one, action)))
                for action, future in futures:
                    outcome = future.result()
                    result.results.append(outcome)
                    if outcome.outcome is not Outcome.DONE:
                        failed.add(action.resource)
        return result

    def _failed_dependency(self, rid: ResourceId, failed: set[ResourceId]) -> ResourceId | None:
        seen: set[ResourceId] = set()
        stack = list(self.desired.depends_on.get(rid, ()))
        while stack:
            dep = stack.pop()
            if dep in failed:
                return dep
            if dep not in seen:
                seen.add(dep)
                stack.extend(self.desired.depends_on.get(dep, ()))
        return None

    def _run_one(self, action: Action) -> ActionResult:
        started = time.monotonic()
        self.on_event("start", action, None)
        try:
            self.perform(action)
        except RolledBack as exc:
            seconds = time.monotonic() - started
            log.warning("update rolled back", resource=str(action.resource), image=exc.image, error=str(exc))
            self.on_event("failed", action, str(exc))
            return ActionResult(action, Outcome.FAILED, str(exc), seconds, (exc.image, exc.image_id))
        except (EngineError, ActionError) as exc:
            seconds = time.monotonic() - started
            log.error("action failed", resource=str(action.resource), action=action.op.value, error=str(exc))
            self.on_event("failed", action, str(exc))
            return ActionResult(action, Outcome.FAILED, str(exc), seconds)
        seconds = time.monotonic() - started
        log.info("action done", resource=str(action.resource), action=action.op.value, seconds=round(seconds, 3))
        self.on_event("done", action, None)
        return ActionResult(action, Outcome.DONE, None, seconds)

    # --- actions -------------------------------------------------------------------------------------

    def perform(self, action: Action) -> None:
        rid = action.resource
        if action.op is Op.REMOVE:
            self._remove(rid, action.observed_id)
        elif rid.kind is Kind.IMAGE:
            self.engine.pull(rid.name, progress=self._pull_progress(rid.name))
        elif rid.kind is Kind.NETWORK:
            self._network(action)
        elif rid.kind is Kind.VOLUME:
            self._create_volume(rid.name)
        elif rid.kind is Kind.VOLUME_INIT:
            self._run_init(rid.name, action.observed_id)
        elif rid.kind is Kind.CONTAINER:
            spec = self.desired.containers[rid.name]
            for step in action.steps:
                self._container_step(step, spec, action)
        self.crash.step()

    def _pull_progress(self, ref: str) -> Callable[[dict[str, Any]], None]:
        last = [0.0]

        def progress(event: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] > 2 or "Status:" in str(event.get("status", "")):
                last[0] = now
                log.info("pulling", image=ref, status=event.get("status"), progress=event.get("progress"))

        return progress

    def _remove(self, rid: ResourceId, ident: str | None) -> None:
        if rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT):
            target = ident or rid.name
            found = self.engine.inspect_container(target)
            if found is None:
                return
            if not _managed(found.get("Config", {}).get("Labels")):
                raise ActionError(f"{rid.name} is not ours (no reconciler labels): not removed")
            if found.get("State", {}).get("Running"):
                self.engine.stop(target, found.get("Config", {}).get("StopTimeout"))
                self.crash.step()
            self.engine.remove_container(target, force=True)
        elif rid.kind is Kind.VOLUME:
            found = self.engine.inspect_volume(rid.name)
            if found is None:
                return
            if not _managed(found.get("Labels")):
                raise ActionError(f"volume {rid.name} is not ours: not removed")
            self.engine.remove_volume(rid.name)
        elif rid.kind is Kind.NETWORK:
            self.engine.remove_network(ident or rid.name)

    def _network(self, action: Action) -> None:
        spec = self.desired.networks[action.resource.name]
        if action.op is Op.RECREATE and action.observed_id:
            # Attached containers are recreated by the cascade in later waves; detach them first, or the
            # engine refuses to remove a network with active endpoints.
            for container in (self.engine.inspect_network(action.observed_id) or {}).get("Containers") or {}:
                self.engine.disconnect(action.observed_id, container)
            self.engine.remove_network(action.observed_id)
            self.crash.step()
        try:
            self.engine.create_network(spec.name, translate.network_config(spec))
        except Conflict:
            existing = [n for n in self.engine.list_networks() if n["Name"] == spec.name]
            if not existing or not _managed(existing[0].get("Labels")):
                raise
            # Created meanwhile (or by a crashed earlier run): ours, so fine.

    def _create_volume(self, name: str) -> None:
        spec = self.desired.volumes[name]
        existing = self.engine.inspect_volume(name)
        if existing is not None:
            if not _managed(existing.get("Labels")):
                raise ActionError(f"volume {name} exists without reconciler's labels: not touched")
            return
        self.engine.create_volume(name, spec.driver, dict(spec.driver_options), translate.volume_labels(spec))

    def _run_init(self, name: str, old_id: str | None) -> None:
        spec = self.desired.inits[name]
        volume = self.engine.inspect_volume(spec.volume)
        if volume is None:
            raise ActionError(f"volume {spec.volume} does not exist")
        existing = self.engine.inspect_container(name)
        if existing is not None:
            if not _managed(existing.get("Config", {}).get("Labels")):
                raise ActionError(f"{name} exists without reconciler's labels: not touched")
            self.engine.remove_container(existing["Id"], force=True)
            self.crash.step()
        ident = self.engine.create_container(name, translate.init_config(spec, volume.get("CreatedAt", "")))
        try:
            self.engine.start(ident)
            code = self.engine.wait(ident, timeout=INIT_TIMEOUT)
        except EngineError:
            # A half-done preparation must not look like a finished one.
            self.engine.remove_container(ident, force=True)
            raise
        if code != 0:
            output = self.engine.logs(ident).strip()
            raise ActionError(f"preparing volume {spec.volume} failed (exit {code}): {output[-400:]}")

    # --- container steps -----------------------------------------------------------------------------

    def _container_step(self, step: Op, spec: ContainerSpec, action: Action) -> None:
        if step is Op.CREATE:
            self._create(spec)
        elif step is Op.START:
            self._start(spec, fresh=Op.CREATE in action.steps)
        elif step is Op.RECREATE:
            self._recreate(spec, action.observed_id)
        elif step is Op.RESTART:
            self.engine.restart(spec.name, spec.stop_timeout)
            self._exec(spec, policies=("restart",))
        elif step is Op.UPDATE:
            self.engine.update_container(spec.name, translate.update_settings(spec))
        elif step is Op.EXEC:
            # Only the commands found missing: the others are running and must not be started twice.
            missing = {d.field for d in action.reasons if d.reason is Reason.EXEC}
            self._exec(spec, policies=("restart",), only=missing)
        self.crash.step()

    def _create(self, spec: ContainerSpec) -> None:
        temp = self.engine.inspect_container(replacement_name(spec.name))
        if temp is not None and _managed(temp.get("Config", {}).get("Labels")):
            self.engine.remove_container(temp["Id"], force=True)  # left by an interrupted recreate
        try:
            self.engine.create_container(spec.name, translate.container_config(spec))
        except Conflict:
            existing = self.engine.inspect_container(spec.name)
            labels = (existing or {}).get("Config", {}).get("Labels") or {}
            if existing is None or not _managed(labels):
                raise ActionError(f"a container named {spec.name} exists without reconciler's labels") from None
            if labels.get(naming.LABEL_SPEC_HASH) != spec.spec_hash:
                raise ActionError(f"{spec.name} was created meanwhile with another spec; run again") from None

    def _start(self, spec: ContainerSpec, *, fresh: bool) -> None:
        found = self.engine.inspect_container(spec.name)
        if found is None:
            raise ActionError(f"{spec.name} disappeared before it could be started")
        if not found.get("State", {}).get("Running"):
            self.engine.start(found["Id"])
            if fresh:
                problem = self._gate(spec, found["Id"])
                if problem:
                    raise HealthGateFailed(f"{spec.name} {problem}")
        self._exec(spec, policies=("restart", "initial") if fresh else ("restart",))
        if fresh and spec.start_delay:
            time.sleep(spec.start_delay)

    def _recreate(self, spec: ContainerSpec, old_id: str | None) -> None:
        """Replace a container without ever losing it: the new one must exist and start before the old one
        goes. Order: create the replacement under a temporary name → stop the old one → start the
        replacement (on failure: remove it, start the old one again, report) → remove the old one → rename."""
        temp_name = replacement_name(spec.name)
        stale = self.engine.inspect_container(temp_name)
        if stale is not None and _managed(stale.get("Config", {}).get("Labels")):
            self.engine.remove_container(stale["Id"], force=True)
        try:
            new_id = self.engine.create_container(temp_name, translate.container_config(spec, temporary=True))
        except EngineError as exc:
            raise ActionError(f"creating the replacement failed; the old container keeps running: {exc}") from exc
        self.crash.step()
        old = self.engine.inspect_container(old_id or spec.name)
        was_running = bool(old and old.get("State", {}).get("Running"))
        if old is not None and was_running:
            timeout = spec.stop_timeout if spec.stop_timeout is not None else old.get("Config", {}).get("StopTimeout")
            self.engine.stop(old["Id"], timeout)
            self.crash.step()
        try:
            self.engine.start(new_id)
        except EngineError as exc:
            self._restore(new_id, old, was_running)
            raise ActionError(f"the replacement failed to start; the old container keeps running: {exc}") from exc
        problem = self._gate(spec, new_id)
        if problem:
            self._restore(new_id, old, was_running)
            new_image = (self.engine.inspect_container(new_id) or {}).get("Image", "")
            created = self.engine.inspect_image(spec.image) or {}
            raise RolledBack(
                f"the replacement {problem}; rolled back to the previous container",
                spec.image,
                str(created.get("Id") or new_image),
            )
        self.crash.step()
        if old is not None:
            self.engine.remove_container(old["Id"], force=True)
            self.crash.step()
        self.engine.rename(new_id, spec.name)
        self._exec(spec, policies=("restart", "initial"))

    def _restore(self, new_id: str, old: dict[str, Any] | None, was_running: bool) -> None:
        self.engine.remove_container(new_id, force=True)
        if old is not None and was_running:
            self.engine.start(old["Id"])

    def _gate(self, spec: ContainerSpec, ident: str) -> str | None:
        """Wait for a container with a healthcheck to become healthy; what went wrong, or None. Whether it has
        one is the engine's answer (`State.Health`), since the image's check counts as much as the map's."""
        if self.health_gate is None:
            return None
        deadline = time.monotonic() + self.health_gate
        while True:
            found = self.engine.inspect_container(ident)
            if found is None:
                return "disappeared"
            state = found.get("State", {})
            if not state.get("Running"):
                return f"exited with code {state.get('ExitCode')}"
            if not state.get("Health"):
                return None  # no healthcheck (none in the map or the image, or switched off with NONE)
            health = state["Health"].get("Status")
            if health == "healthy":
                return None
            if health == "unhealthy":
                return "became unhealthy"
            if self._stop is not None and self._stop.is_set():
                return "was not healthy yet when we were asked to stop"
            if time.monotonic() >= deadline:
                return f"was not healthy within {self.health_gate:g}s"
            time.sleep(0.2)

    def _exec(self, spec: ContainerSpec, policies: Iterable[str], only: set[str] | None = None) -> None:
        wanted = tuple(policies)
        for command in spec.exec_commands:
            text = command.cmd if isinstance(command.cmd, str) else " ".join(command.cmd)
            if command.policy in wanted and (only is None or text in only):
                cmd = command.cmd if isinstance(command.cmd, str) else list(command.cmd)
                self.engine.exec_run(spec.name, cmd, command.user)


def _managed(labels: Any) -> bool:
    return isinstance(labels, dict) and labels.get(naming.LABEL_MANAGED) == "true"


@dataclass
class Converged:
    """What one `converge` did: the plan it executed and what happened to each action."""

    plan: Plan
    result: RunResult
    pulled: RunResult | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok and (self.pulled is None or self.pulled.ok) and not self.plan.blocked


def converge(
    engine: Engine,
    desired: DesiredState,
    options: PlanOptions | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_event: Callable[[str, Action, str | None], None] | None = None,
    health_gate: float | None = None,
) -> Converged:
    """Observe, plan, execute. Images are pulled first, then the world is observed again, so containers
    are compared with the images that are really there (a pull may move a tag)."""
    options = options or PlanOptions()
    executor = Executor(engine, desired, concurrency=concurrency, on_event=on_event, health_gate=health_gate)
    plan = plan_update(desired, observe(engine, desired), options)
    pulls = [a for a in plan.actions if a.op is Op.PULL]
    pulled = None
    if pulls:
        pulled = executor.run(Plan(waves=(tuple(pulls),)))
        # Pulls move tags: look again, and compare containers with the images that are really there now.
        plan = plan_update(desired, observe(engine, desired), replace(options, pull=False)).keep(not_a_pull)
    return Converged(plan, executor.run(plan), pulled)


def not_a_pull(action: Action) -> bool:
    return action.op is not Op.PULL
