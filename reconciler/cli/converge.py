"""The commands that converge the engines on the maps: `plan` (look only), `apply`, `down` and `adopt`.

Each is the same shape: `prepare` the maps and each client's share, then one converge per client, engines
in parallel (`each_client`), then one report. They differ in the planner they hand to the converge
(`update` with their options, or `teardown`) and in what they tell a running daemon first:
- what the daemon holds back (a replacement that failed its health gate) is held here too — `apply
  --force` lets it go — and a rollback here is recorded as a hold for the daemon (`state.hold_rollbacks`);
- `apply` hands paused containers in its scope back to the daemon; `down` pauses what it takes down, so
  that a daemon keeps it down (`state.pausing`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.common import Prepared, each_client, grouped, heading, in_scope, prepare, print_json, report_errors
from reconciler.cli.options import (
    ClientsFile,
    JsonFlag,
    MapsAndTargets,
    OnlyClients,
    Parallel,
    ProgressFlag,
    TakePending,
    Targets,
    UpdatePersistent,
)
from reconciler.cli.report import display_for, report
from reconciler.cli.state import held_options, hold_rollbacks, pausing, resume_in
from reconciler.executor.defaults import DEFAULT_CONCURRENCY, DEFAULT_HEALTH_GATE

if TYPE_CHECKING:
    from reconciler import live
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import ClientOutcome, Converged
    from reconciler.executor.engine import DockerEngine
    from reconciler.plan.planner import Plan, PlanOptions

DetailedExitcode = Annotated[
    bool, typer.Option("--detailed-exitcode", help="Exit 0 when in sync, 2 when there is drift, 1 on error.")
]
ApplyHealthGate = Annotated[
    float,
    typer.Option(
        help="Seconds to wait for a (re)created container with a healthcheck to become healthy before its "
        "dependents; a recreate that fails it is rolled back. 0: do not wait.",
        min=0,
    ),
]
AdoptHealthGate = Annotated[
    float,
    typer.Option(min=0, help="Seconds for each new container to turn healthy; if it does not, theirs runs again."),
]
Force = Annotated[bool, typer.Option("--force", help="Retry what the daemon holds back after a failed health gate.")]


def plan(
    args: MapsAndTargets,
    as_json: JsonFlag = False,
    detailed_exitcode: DetailedExitcode = False,
    target: Targets = None,
    prune: Annotated[bool, typer.Option(help="Plan removing orphans (ours, no longer in any map).")] = False,
    update_persistent: UpdatePersistent = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    take_pending: TakePending = False,
) -> None:
    """Show what `apply` would change on the engines, and why. Changes nothing."""
    from reconciler.plan.planner import PlanOptions

    ready = prepare(args, target, as_json, clients_file, client)
    options = PlanOptions(
        targets=ready.selected, prune=prune, update_persistent=update_persistent, apply_pending=take_pending
    )
    failed, plans = _look(ready, options)
    _show_plans(ready, plans, as_json)
    if failed:
        raise typer.Exit(1)
    if detailed_exitcode and not all(p.in_sync for _, p in plans):
        raise typer.Exit(2)


def _look(ready: Prepared, options: PlanOptions) -> tuple[bool, list[tuple[str, Plan]]]:
    """Each client's plan under what its daemon holds back, executing nothing; (an engine failed, plans)."""
    from reconciler.executor.converge import converge, update

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        held = dataclasses.replace(options, **held_options(False, [], d.name))
        return converge(engine, d.desired, update(held), execute=False)

    outcomes = each_client(ready, one)
    failed = report_errors(ready, outcomes)
    return failed, [(o.client, o.converged.plan) for o in outcomes if o.converged is not None]


def _show_plans(ready: Prepared, plans: list[tuple[str, Plan]], as_json: bool) -> None:
    from reconciler.plan.render import render_plan

    if as_json:
        print_json(grouped(ready, [{"client": c, **p.as_dict()} for c, p in plans]))
        return
    for name, shown in plans:
        heading(ready, name)
        typer.echo(render_plan(shown))


def apply(
    args: MapsAndTargets,
    target: Targets = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `plan`).")] = False,
    pull: Annotated[bool, typer.Option(help="Pull newer versions of the images in use.")] = False,
    prune: Annotated[bool, typer.Option(help="Remove orphans (ours, no longer in any map).")] = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="With --prune: orphaned volumes too.")] = False,
    update_persistent: UpdatePersistent = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    health_gate: ApplyHealthGate = DEFAULT_HEALTH_GATE,
    force: Force = False,
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    progress: ProgressFlag = None,
    take_pending: TakePending = False,
) -> None:
    """Make the engines match the maps: plan, then execute in dependency order (engines in parallel).
    Containers in scope that a person paused are handed back to the daemon; what it holds back stays held
    unless --force."""
    from reconciler.plan.planner import PlanOptions

    if dry_run:
        plan(args, as_json, False, target, prune, update_persistent, clients_file, client, take_pending)
        return
    display = display_for(progress, as_json)
    ready = prepare(args, target, as_json, clients_file, client)
    options = PlanOptions(
        targets=ready.selected,
        prune=prune,
        prune_volumes=volumes,
        update_persistent=update_persistent,
        pull=pull,
        apply_pending=take_pending,
    )
    # A person's apply of a container ends its pause: what they apply is what the daemon keeps from now on.
    scopes = {d.name: in_scope(d.desired, ready.selected) for d in ready.deployments}
    for name, scope in scopes.items():
        resume_in(scope, "apply", name)

    def held(d: Deployment) -> PlanOptions:
        return dataclasses.replace(options, **held_options(force, scopes[d.name], d.name))

    outcomes = _execute(ready, display, held, parallel, health_gate)
    if not report(ready, outcomes, as_json, with_plan=True):
        raise typer.Exit(1)


def _execute(
    ready: Prepared,
    display: live.Progress,
    options_for: Callable[[Deployment], PlanOptions],
    parallel: int,
    health_gate: float,
) -> list[ClientOutcome]:
    """`apply` and `adopt`: plan and execute on each client, health-gated, progress on the display; what a
    health gate rolls back is held for the daemon as well."""
    from reconciler.executor.apply import Executor
    from reconciler.executor.converge import converge, update

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        hooks = display.executor_hooks(d.name, shown=ready.grouped)
        executor = Executor(engine, concurrency=parallel, health_gate=health_gate or None, **hooks)
        done = converge(engine, d.desired, update(options_for(d)), executor=executor)
        hold_rollbacks(d, done)
        return done

    with display.showing():
        return each_client(ready, one)


def down(
    args: MapsAndTargets,
    target: Targets = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove attached volumes (their data!).")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    progress: ProgressFlag = None,
) -> None:
    """Stop and remove what the maps own, dependents first. Volumes stay unless --volumes."""
    from reconciler.executor.apply import Executor
    from reconciler.executor.converge import converge, teardown

    display = display_for(progress, as_json)
    ready = prepare(args, target, as_json, clients_file, client)

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        executor = Executor(engine, concurrency=parallel, **display.executor_hooks(d.name, shown=ready.grouped))
        planner = pausing(teardown(ready.selected, volumes=volumes), d.name)
        return converge(engine, d.desired, planner, executor=executor, pull=False)

    with display.showing():
        outcomes = each_client(ready, one)
    if not report(ready, outcomes, as_json, with_plan=False):
        raise typer.Exit(1)


def adopt(
    args: MapsAndTargets,
    target: Targets = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    health_gate: AdoptHealthGate = DEFAULT_HEALTH_GATE,
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """Take over running containers that provide what the maps describe but are not ours — docker-map's
    (under the map's names, without labels) and, for maps imported from compose, the project's — by the
    same create-first recreate as updates. Prints the plan, then executes it in dependency order."""
    from reconciler.plan.planner import PlanOptions

    ready = prepare(args, target, as_json, clients_file, client)
    options = PlanOptions(targets=ready.selected, adopt=True)
    # The plan is shown before anything is done; with --json only a dry run prints it (the run's report
    # carries the plan otherwise, and stdout holds one JSON document).
    failed, plans = _look(ready, options)
    if dry_run or not as_json:
        _show_plans(ready, plans, as_json)
    if failed:
        raise typer.Exit(1)
    if dry_run:
        return

    def held(d: Deployment) -> PlanOptions:
        return dataclasses.replace(options, **held_options(False, [], d.name))

    outcomes = _execute(ready, display_for(None, as_json), held, parallel, health_gate)
    if not report(ready, outcomes, as_json, with_plan=True):
        raise typer.Exit(1)
