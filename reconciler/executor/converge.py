"""The one converge loop: observe → plan (pure) → execute, with the pull pass.

Every caller runs this loop — `reconciler plan/apply/down/status`, the daemon's reconcile and prune, the
Python API — and they differ only in what they pass:
- a `Planner` (what to plan from the desired and the observed state: an update with its options and
  holds, or a teardown), built by `update(...)` / `teardown(...)` or the daemon's own wrapper of them;
- where to look (`reader`: the engine itself, or the daemon's cached view of it), at which containers
  (`look_at`: a targeted plan's `observed_scope`; a plan that renews a network is made again from a full
  look), and how to make it see what a pull changed (`refresh`);
- a gate before executing (`admit`: the daemon takes its resource locks there, and may plan once more
  under them, or decline for now);
- whether to execute at all (`plan` and `status` only look), and the `Executor` that runs the actions.

Images are pulled first and the world is looked at again, so containers are compared with the images
that are really there (a pull may move a tag); what depends on a failed pull is skipped.

Several engines (docker-map's clients): `converge` is for one engine and one client's desired state;
`converge_each` runs it for every client at once, one thread per engine, and an engine that fails (cannot
be reached, hangs until its timeouts) fails only its own client's result — the others carry on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import Action, Op, Plan, PlanOptions, plan_down, plan_update, reaches_beyond
from reconciler.plan.resources import DesiredState, ResourceId

from .apply import Executor, RunResult
from .engine import Engine
from .errors import EngineError
from .observe import EngineReader, observe

Planner = Callable[[DesiredState, ObservedState], Plan]
# Given the plan and a way to plan again (a fresh look), the plan to execute now — or None: not now.
Admit = Callable[[Plan, Callable[[], Plan]], Plan | None]


def update(options: PlanOptions | None = None) -> Planner:
    """Plan what makes the engine match the maps (`plan_update` with these options)."""
    return lambda desired, observed: plan_update(desired, observed, options)


def teardown(targets: frozenset[ResourceId] | None = None, *, volumes: bool = False) -> Planner:
    """Plan removing what the maps own (`plan_down`)."""
    return lambda desired, observed: plan_down(desired, observed, targets, volumes=volumes)


@dataclass
class Converged:
    """What one `converge` did: the plan (executed, or only made) and what happened to each action."""

    plan: Plan
    result: RunResult
    pulled: RunResult | None = None
    admitted: bool = True  # False: `admit` declined (nothing executed)
    observed: ObservedState | None = None  # the last look the plan was made from (for status displays)

    @property
    def ok(self) -> bool:
        return self.result.ok and (self.pulled is None or self.pulled.ok) and not self.plan.blocked


def converge(
    engine: Engine,
    desired: DesiredState,
    planner: Planner | None = None,
    *,
    executor: Executor | None = None,
    reader: EngineReader | None = None,
    refresh: Callable[[], None] | None = None,
    admit: Admit | None = None,
    execute: bool = True,
    pull: bool = True,
    stop: threading.Event | None = None,
    look_at: frozenset[str] | None = None,
) -> Converged:
    """Observe, plan, (pull, observe and plan again,) admit, execute. See the module docstring. `look_at`:
    the containers a targeted planner reads (`observed_scope`); the look inspects only those."""
    planner = planner or update()
    executor = executor or Executor(engine)
    look = reader or engine

    seen: list[ObservedState] = []

    def plan_now() -> Plan:
        seen.append(observe(look, desired, look_at=look_at))
        plan = planner(desired, seen[-1])
        if look_at is not None and reaches_beyond(plan):
            seen.append(observe(look, desired))  # it renews a network: every container on it follows
            plan = planner(desired, seen[-1])
        return plan

    plan = plan_now()
    if not execute:
        # Pulls stay in the plan: they are what `apply` would do first.
        return Converged(plan, RunResult(), observed=seen[-1])
    pulled = None
    pulls = [a for a in plan.actions if a.op is Op.PULL]
    if pulls and pull:
        pulled = executor.run(Plan(waves=(tuple(pulls),), depends_on=plan.depends_on), stop=stop, client=desired.client)
        if refresh is not None:
            refresh()
        plan = plan_now()
    plan = plan.keep(not_a_pull)
    if admit is not None:
        admitted = admit(plan, lambda: plan_now().keep(not_a_pull))
        if admitted is None:
            return Converged(plan, RunResult(), pulled, admitted=False, observed=seen[-1])
        plan = admitted
    failed_pulls = [r.action.resource for r in pulled.failed] if pulled else []
    result = (
        executor.run(plan, stop=stop, failed_before=failed_pulls, client=desired.client) if plan.waves else RunResult()
    )
    return Converged(plan, result, pulled, observed=seen[-1])


def not_a_pull(action: Action) -> bool:
    return action.op is not Op.PULL


@dataclass
class ClientOutcome:
    """One client's `converge`: what it did, or the engine error that stopped it."""

    client: str
    converged: Converged | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.converged is not None and self.converged.ok


def converge_each(work: Mapping[str, Callable[[], Converged]]) -> list[ClientOutcome]:
    """Run each client's converge (a closure over its engine and desired state) in parallel; sorted by
    client. An `EngineError` is that client's outcome; it never stops another client."""
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="client") as pool:
        futures = {client: pool.submit(_one, client, run) for client, run in work.items()}
        return [futures[client].result() for client in sorted(futures)]


def _one(client: str, run: Callable[[], Converged]) -> ClientOutcome:
    try:
        return ClientOutcome(client, run())
    except EngineError as exc:
        return ClientOutcome(client, error=str(exc))
