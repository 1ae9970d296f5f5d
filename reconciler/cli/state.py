"""The command line's side of the daemon's state directory: holds, a person's pauses, the daemon's presence.

The CLI and a running daemon never talk over a socket; they share a folder (`daemon.holds`,
`daemon.intents`). A person's command writes what the daemon must respect before it acts — a pause
before `stop` or `down`, so that the daemon does not heal what a person takes away; a hold after a rolled
back `apply`, so that the daemon does not retry the same failing replacement — and reads what the daemon
holds back, so that `apply` does not undo it unless --force. With no daemon running the records are still
written: a daemon started later obeys them.

A pause that cannot be written stops the command before it does anything (an unrecorded pause would be
undone silently); a resume or a hold that cannot be written is only a warning (nothing is lost by acting).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import Converged, Planner
    from reconciler.plan.observed import ObservedState
    from reconciler.plan.planner import Plan
    from reconciler.plan.resources import DesiredState


def state_directory() -> Path | None:
    """The daemon's state directory as `run` finds it (`--state-dir`/RECONCILER_STATE_DIR, systemd's, the
    default); None when it is 'off'."""
    from reconciler.daemon.holds import state_dir

    configured = os.environ.get("RECONCILER_STATE_DIR")
    return None if configured == "off" else state_dir(configured)


def client_state_directory(client: str | None) -> Path | None:
    """Where the daemon keeps a client's holds and pauses (the rule of `daemon.holds.client_dir`)."""
    from reconciler.daemon.holds import client_dir

    return client_dir(state_directory(), client)


def daemon_line() -> str | None:
    """'a daemon (pid N, maps …) is running', or None."""
    from reconciler.daemon.intents import running_daemon

    found = running_daemon(state_directory())
    if found is None:
        return None
    git = found.get("git") or {}
    where = (
        f"maps from git {git.get('url')} at {str(git.get('commit') or 'no good commit yet')[:12]}"
        if git
        else f"maps {', '.join(found.get('paths', []))}"
    )
    return f"a reconciler daemon (pid {found.get('pid')}, {where}) is running"


# --- holds: what the daemon keeps back after a failed health gate -----------------------------------


def held_options(force: bool, scope: list[str], client: str | None = None) -> dict[str, Any]:
    """PlanOptions fields for what the daemon holds back on a client (its holds are where the daemon keeps
    them: the state directory for `__default__`, `clients/<name>/` in it for the others); `force` first lets
    the holds in scope go."""
    from reconciler.daemon.holds import HoldStore

    store = HoldStore(client_state_directory(client))
    if force:
        for name in store.release(scope):
            typer.echo(f"note: released the hold on {name}: its replacement is tried again", err=True)
    return {"held": store.holds, "rejected_images": store.rejected_images}


def hold_rollbacks(d: Deployment, done: Converged) -> None:
    """A person's rollback is held as the daemon's are (the same state directory): a daemon beside it must
    not try the same failing replacement again a moment later."""
    from reconciler.daemon.holds import HoldStore, hold_rollback

    rolled = [
        r for r in done.result.results if r.rolled_back is not None and r.action.resource.name in d.desired.containers
    ]
    if not rolled:
        return
    try:
        store = HoldStore(client_state_directory(d.name))
        for r in rolled:
            hold_rollback(store, d.desired.containers[r.action.resource.name].spec_hash, r)
            typer.echo(
                f"note: held back {r.action.resource.name}: `reconciler release` or `apply --force` tries it again",
                err=True,
            )
    except OSError as exc:
        typer.echo(f"warning: cannot record the hold in the daemon's state directory: {exc}", err=True)


# --- pauses: what a person told the daemon to leave alone -------------------------------------------


def specs_of(desired: DesiredState, names: list[str]) -> dict[str, str]:
    """name → spec hash: what a pause records, so that a map change of the container ends it."""
    return {name: desired.containers[name].spec_hash for name in names}


def record_pause(specs: dict[str, str], why: str, until: float | None = None, client: str | None = None) -> list[str]:
    """Write the pause, or exit 1 before anything is done: an unrecorded pause would be undone silently."""
    from reconciler.daemon.intents import PauseFile

    try:
        return PauseFile(client_state_directory(client)).pause(specs, until, why)
    except OSError as exc:
        typer.echo(f"error: cannot tell the daemon (its state directory: {exc}); nothing was done", err=True)
        typer.echo("       run as a user who may write there, or give --state-dir", err=True)
        raise typer.Exit(1) from None


def resume_in(scope: list[str], why: str, client: str | None = None) -> list[str]:
    """Hand paused containers of this scope back to the daemon (a person's `apply`, `resume`)."""
    from reconciler.daemon.intents import PauseFile

    try:
        resumed = PauseFile(client_state_directory(client)).resume(scope)
    except OSError as exc:
        typer.echo(f"warning: cannot read or write the daemon's state directory: {exc}", err=True)
        return []
    if resumed:
        typer.echo(f"note: {why}: resumed {', '.join(resumed)} (the daemon manages them again)", err=True)
    return resumed


def pausing(planner: Planner, client: str | None = None) -> Planner:
    """With a daemon running, `down` first pauses the containers it takes down — before any of them goes —
    so the daemon keeps them down instead of bringing them back; without one, `down` only acts."""
    from reconciler.daemon.intents import PauseFile
    from reconciler.plan.resources import Kind

    daemon = daemon_line()
    if daemon is None:
        return planner

    def plan(desired: DesiredState, observed: ObservedState) -> Plan:
        made = planner(desired, observed)
        names = sorted({a.resource.name for a in made.actions if a.resource.kind is Kind.CONTAINER})
        if names and not PauseFile(client_state_directory(client)).active().keys() >= set(names):
            specs = specs_of(desired, [n for n in names if n in desired.containers])
            record_pause(specs, "taken down by `reconciler down`", None, client)
            typer.echo(f"note: {daemon}: paused {', '.join(specs)} so it keeps them down;", err=True)
            typer.echo("      `reconciler resume MAP…` (or `apply`) hands them back to it", err=True)
        return made

    return plan
