"""`reconciler status`: each resource of the maps as its engine has it — state, health, published ports —
and what `apply` would do about it, or why nothing will be done (blocked, held back, paused).

The rows come from one plan-only converge per client (the planner `plan` runs, under the daemon's holds),
so the drift `status` shows is what `plan` would act on. The last line says what to do next, and never
suggests `apply` for what only a hold or a pause keeps as it is (`_status_line`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.common import (
    Prepared,
    each_client,
    grouped,
    heading,
    no_targets,
    prepare,
    print_json,
    report_errors,
)
from reconciler.cli.options import ClientsFile, JsonFlag, OnlyClients
from reconciler.cli.state import client_state_directory, daemon_line, held_options, state_directory

if TYPE_CHECKING:
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import ClientOutcome, Converged
    from reconciler.executor.engine import DockerEngine
    from reconciler.plan.observed import ObservedState
    from reconciler.plan.planner import Action
    from reconciler.plan.resources import DesiredState, ResourceId


def status(
    args: Annotated[list[Path], typer.Argument(help="Map files or folders.", show_default=False, metavar="MAP")],
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """Each resource of the maps: state, health, host ports and a drift summary (per client)."""
    from reconciler.daemon.intents import running_daemon
    from reconciler.executor.converge import converge, update
    from reconciler.plan.planner import PlanOptions

    no_targets("status", args)
    ready = prepare(args, None, as_json, clients_file, client)

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        return converge(engine, d.desired, update(PlanOptions(**held_options(False, [], d.name))), execute=False)

    outcomes = each_client(ready, one)
    failed = report_errors(ready, outcomes)
    desired = {d.name: d.desired for d in ready.deployments}
    looks = [(o.client, o.converged) for o in outcomes if o.converged is not None]
    daemon = running_daemon(state_directory())
    if as_json:
        _print_json_status(ready, outcomes, desired, daemon)
    for c, looked in [] if as_json else looks:
        heading(ready, c)
        _print_status(looked, _status_rows(looked, desired[c]))
    if daemon is not None and not as_json:
        typer.echo(f"{daemon_line()}: it heals what is not paused or held back")
    if failed:
        raise typer.Exit(1)


def _print_json_status(
    ready: Prepared, outcomes: list[ClientOutcome], desired: dict[str, DesiredState], daemon: dict[str, Any] | None
) -> None:
    entries: list[dict[str, Any]] = [
        {
            "client": o.client,
            "in_sync": o.converged.plan.in_sync,
            "resources": _status_rows(o.converged, desired[o.client]),
            "notes": [n.as_dict() for n in o.converged.plan.notes],
            "pending": [p.as_dict() for p in o.converged.plan.pending],
            "daemon": daemon,
        }
        for o in outcomes
        if o.converged is not None
    ]
    # A client whose engine failed is an entry too (with its error), never silently missing.
    entries += [{"client": o.client, "error": o.error} for o in outcomes if o.converged is None]
    print_json(grouped(ready, sorted(entries, key=lambda e: str(e["client"]))))


def _status_rows(looked: Converged, desired: DesiredState) -> list[dict[str, Any]]:
    """The rows of one client: each resource, then what the daemon will not act on and why."""
    from reconciler.daemon.intents import PauseFile

    current, observed = looked.plan, looked.observed
    assert observed is not None  # a plan-only converge always looked
    rows = [{"client": desired.client, **_row(rid, observed, current.action_for(rid))} for rid in desired.all_ids()]
    _mark(rows, {b.resource.name: b.message for b in current.blocked}, "blocked")
    _mark(rows, {n.resource.name: n.message for n in current.notes if n.held}, "held")
    paused = PauseFile(client_state_directory(desired.client)).active()
    _mark(rows, {name: pause.describe() for name, pause in paused.items()}, "paused")
    return rows


def _print_status(one: Converged, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        health = f" ({row['health']})" if row["health"] else ""
        # Held and paused rows carry their own words ("held back: …", "paused (…)"); others say what apply does.
        said = "" if row["action"] in ("held", "paused") else f"{row['action']}: "
        drift = "in sync" if not row["drift"] else said + "; ".join(row["drift"][:3])
        state = f"{row['state']}{health}"
        ports = f"  [{', '.join(row['ports'])}]" if row["ports"] else ""
        typer.echo(f"{row['kind']:<12} {row['name']:<40} {state:<22} {drift}{ports}")
    for note in one.plan.notes:
        if not note.held:
            typer.echo(f"note: {note.resource}: {note.message}")
    for pending in one.plan.pending:
        typer.echo(f"pending update: {pending.resource}: {pending.describe()}")
    typer.echo(_status_line(rows, one.plan.in_sync))


def _row(rid: ResourceId, observed: ObservedState, action: Action | None) -> dict[str, Any]:
    """One resource as `status` shows it: state, health, published ports, drift."""
    from reconciler.plan.resources import Kind

    state, health, ports = "present", None, []
    if rid.kind in (Kind.CONTAINER, Kind.VOLUME_INIT):
        c = observed.containers.get(rid.name)
        state = "missing" if c is None else (c.status if c.status != "exited" else f"exited ({c.exit_code})")
        health = None if c is None else c.health
        ports = [] if c is None else published(c.port_bindings)
    elif rid.kind is Kind.IMAGE:
        state = "present" if observed.images.get(rid.name) else "missing"
    elif rid.kind is Kind.VOLUME:
        state = "present" if rid.name in observed.volumes else "missing"
    else:
        state = "present" if rid.name in observed.networks else "missing"
    return {
        "kind": rid.kind.value,
        "name": rid.name,
        "state": state,
        "health": health,
        "ports": ports,
        "drift": [d.describe() for d in action.reasons] if action else [],
        "action": action.op.value if action else None,
    }


def published(bindings: Any) -> list[str]:
    """`{"80/tcp": (("0.0.0.0", "18080"),)}` → `["0.0.0.0:18080->80/tcp"]`, as `docker ps` shows them."""
    return [f"{ip or '0.0.0.0'}:{port}->{inside}" for inside, hosts in sorted(bindings.items()) for ip, port in hosts]


def _mark(rows: list[dict[str, Any]], why: dict[str, str], action: str) -> None:
    """Rows the daemon will not act on (blocked, held back, paused): that says why, not the drift."""
    for row in rows:
        if row["name"] in why and (row["kind"] == "container" or action == "blocked"):
            row["drift"] = [why[row["name"]]]
            row["action"] = action


def _status_line(rows: list[dict[str, Any]], in_sync: bool) -> str:
    """The last line: in sync, or what to do — never `apply` for what only a hold or a pause keeps."""
    held = [r["name"] for r in rows if r["action"] in ("held", "paused")]
    blocked = [r["name"] for r in rows if r["action"] == "blocked"]
    acting = [r for r in rows if r["action"] not in (None, "held", "paused", "blocked")]
    waiting = [f"{len(held)} held back or paused: `reconciler release` / `reconciler resume` when ready"] * bool(held)
    waiting += [f"{len(blocked)} blocked: apply cannot fix them (see their rows)"] * bool(blocked)
    if acting or (not in_sync and not waiting):
        return "drift: run `reconciler apply` to fix" + (f" ({'; '.join(waiting)})" if waiting else "")
    return f"not in sync: {'; '.join(waiting)}" if waiting else "in sync"
