"""Day-two commands: a person's hands on containers the maps own — `pause`/`resume` (tell the daemon to
leave them alone), `release` (let a hold go), `stop`/`start`/`restart` (act on the engine directly, only
on our containers) and `logs`.

A running daemon would undo a person's action (start what a person stopped, bring back what they took
down), so each command first tells it, through the state directory (`cli.state`): `stop` pauses what it
stops, `start` and `resume` hand containers back. Pauses are per client and record each container's spec
hash, so a map change of the container ends its pause. None of these commands needs a daemon: without one
they act, and a daemon started later obeys the pauses.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.common import Prepared, heading, in_scope, prepare
from reconciler.cli.options import ClientsFile, MapsAndTargets, OnlyClients, Targets
from reconciler.cli.state import daemon_line, record_pause, resume_in, specs_of, state_directory

if TYPE_CHECKING:
    from reconciler.executor.clients import Deployment
    from reconciler.executor.engine import DockerEngine
    from reconciler.plan.resources import ResourceId


DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h`, `1h30m`, `1d` → seconds (BadParameter otherwise)."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise typer.BadParameter(f"{text!r}: write e.g. 90s, 30m, 2h or 1h30m", param_hint="--for")
    seconds = sum(float(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r}: a pause needs a duration above zero", param_hint="--for")
    return seconds


def _scopes_of(
    args: list[Path], target: list[str] | None, clients_file: Path | None, only: list[str] | None
) -> dict[str, dict[str, str]]:
    """client → the containers `MAP… [TARGET…]` names there, with their spec hashes (no engine needed)."""
    ready = prepare(args, target, False, clients_file, only)
    return {d.name: specs_of(d.desired, in_scope(d.desired, ready.selected)) for d in ready.deployments}


def _where(client: str, scopes: Mapping[str, Any]) -> str:
    """` on client X` when the command spans clients (a clients file), else nothing."""
    from reconciler.plan.naming import DEFAULT_CLIENT

    return "" if set(scopes) <= {DEFAULT_CLIENT} else f" on client {client}"


def pause(
    args: MapsAndTargets,
    target: Targets = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Resume by itself after this long: 90s, 30m, 2h, 1h30m.")
    ] = None,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """Maintenance: tell the daemon to leave these containers alone — no healing, no updates — until
    `resume` (or --for runs out, or `apply` of them). Containers are not stopped: do that yourself.
    A pause is per client: with a clients file, only the clients `--client` names (all by default)."""
    scopes = _scopes_of(args, target, clients_file, client)
    if not any(scopes.values()):
        typer.echo("nothing to pause: no container of the maps is in scope")
        return
    until = time.time() + parse_duration(for_) if for_ else None
    for name, scope in scopes.items():
        if scope:
            names = record_pause(scope, "by `reconciler pause`", until, name)
            typer.echo(f"paused{_where(name, scopes)}: {', '.join(names)}" + (f" for {for_}" if for_ else ""))
    daemon = daemon_line()
    typer.echo(f"{daemon}: it leaves them alone" if daemon else "no daemon is running: a daemon started later obeys")


def resume(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """End a pause (or the pause `down` left while a daemon ran): the daemon manages them again at once."""
    scopes = _scopes_of(args, target, clients_file, client)
    resumed = [n for name, scope in scopes.items() for n in resume_in(list(scope), "resume", name)]
    if not resumed:
        typer.echo("nothing was paused")
        return
    daemon = daemon_line()
    typer.echo(f"{daemon}: it converges them now" if daemon else "no daemon is running: `reconciler apply` acts")


def release(
    containers: Annotated[
        list[str], typer.Argument(help="Container names, as `status` shows them.", metavar="CONTAINER")
    ],
) -> None:
    """Let a daemon's hold go on purpose: the replacement that failed its health gate is tried again."""
    from reconciler.daemon.holds import HoldStore

    released = HoldStore(state_directory()).release(containers)
    for name in sorted(set(containers) - set(released)):
        typer.echo(f"{name}: not held back", err=True)
    if released:
        typer.echo(f"released: {', '.join(released)} (a running daemon tries them again on its next reconcile)")
    else:
        raise typer.Exit(1)  # nothing of what was named was held: a typo, or already released


def _verb(
    verb: str, args: list[Path], target: list[str] | None, clients_file: Path | None, only: list[str] | None
) -> None:
    """stop/start/restart: tell a running daemon (stop pauses, start resumes), then act directly on each
    client's engine."""

    ready = prepare(args, target, False, clients_file, only)
    names = sorted({n for d in ready.deployments for n in in_scope(d.desired, ready.selected)})
    daemon = daemon_line()
    if verb == "stop" and daemon is not None and names:
        for d in ready.deployments:
            record_pause(
                specs_of(d.desired, in_scope(d.desired, ready.selected)), "stopped by `reconciler stop`", None, d.name
            )
        typer.echo(f"note: {daemon}: paused {', '.join(names)} so it keeps them stopped;", err=True)
        typer.echo("      `reconciler start` (or `resume`, `apply`) hands them back to it", err=True)
    if verb == "start":
        for d in ready.deployments:
            resume_in(in_scope(d.desired, ready.selected), "start", d.name)
    failed = False
    for d in ready.deployments:
        heading(ready, d.name)
        failed |= _verb_on(verb, d, ready)
    if failed:
        raise typer.Exit(1)


def _verb_on(verb: str, d: Deployment, ready: Prepared) -> bool:
    """One client's share of stop/start/restart, its lines and its summary; True when something failed."""
    from reconciler.executor.clients import connected
    from reconciler.executor.errors import EngineError

    counts = {"ok": 0, "failed": 0, "skipped": 0}
    try:
        results = connected(d.client, functools.partial(_act, verb, d, ready.selected))
    except EngineError as exc:
        typer.echo(f"error: {'client ' + d.name + ': ' if ready.grouped else ''}{exc}", err=True)
        return True
    for done in results:
        seconds = f" ({done.seconds:.1f}s)" if done.outcome != "skipped" else ""
        detail = f": {done.detail}" if done.detail else ""
        typer.echo(f"  {done.outcome:<8} {verb:<9} {done.container}{seconds}{detail}")
        counts[done.outcome] = counts.get(done.outcome, 0) + 1
    typer.echo(f"summary: {counts['ok']} done, {counts['failed']} failed, {counts['skipped']} skipped")
    return counts["failed"] > 0


def _act(verb: str, d: Deployment, selected: frozenset[ResourceId] | None, engine: DockerEngine) -> list[Any]:
    from reconciler.executor.direct import act
    from reconciler.executor.observe import observe

    observed = observe(engine, d.desired)
    return list(act(engine, d.desired, observed, verb, in_scope(d.desired, selected)))


def stop(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Stop containers of the maps (only ours, each with its stop_timeout); a running daemon is told to
    keep them stopped until `start`, `resume` or `apply`."""
    _verb("stop", args, target, clients_file, client)


def start(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Start stopped containers of the maps (dependencies first), and hand them back to a running daemon."""
    _verb("start", args, target, clients_file, client)


def restart(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Restart containers of the maps (each with its stop_timeout). A daemon does not count it as a crash."""
    _verb("restart", args, target, clients_file, client)


def show_logs(
    args: MapsAndTargets,
    target: Targets = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines of each.")] = None,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """The logs of containers of the maps (stdout and stderr), each line prefixed with its container's name
    when there are several (and its client's, with a clients file); --follow with several follows them all."""
    from reconciler.executor.clients import connected
    from reconciler.executor.direct import follow_logs
    from reconciler.executor.errors import EngineError

    ready = prepare(args, target, False, clients_file, client)
    shown = [(d, n) for d in ready.deployments for n in in_scope(d.desired, ready.selected)]
    labels = {(d.name, n): f"{d.name}/{n}" if ready.grouped else n for d, n in shown}
    width = max(map(len, labels.values()), default=0)
    lock = threading.Lock()

    def show(d: Deployment, name: str) -> None:
        prefix = f"{labels[d.name, name]:<{width}} | " if len(shown) > 1 else ""

        def lines(engine: DockerEngine) -> None:
            for line in follow_logs(engine, name, follow=follow, tail=tail):
                with lock:
                    typer.echo(prefix + line)

        try:
            connected(d.client, lines)
        except EngineError as exc:
            typer.echo(f"error: {labels[d.name, name]}: {exc}", err=True)

    threads = [threading.Thread(target=show, args=one, daemon=True) for one in shown]
    for thread in threads:
        thread.start()
        if not follow:
            thread.join()  # one container after the other, whole
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
