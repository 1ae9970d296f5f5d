"""How a run that changed the engines is shown: the progress display while it runs, then per client its
blocked resources, notes and pending updates, each failed action, and a summary line — or all of it as
one JSON document with --json (which owns stdout, so the progress display is quiet then).

`apply`, `down` and `adopt` report through here, so they print alike; `plan` and `status` change nothing
and print their own shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from reconciler.cli.common import Prepared, grouped, heading, print_json, report_errors

if TYPE_CHECKING:
    from reconciler import live
    from reconciler.executor.apply import RunResult
    from reconciler.executor.converge import ClientOutcome, Converged


def display_for(mode: str | None, as_json: bool) -> live.Progress:
    """The progress display (`reconciler.live`); `--json` owns stdout, so it goes with `quiet` only."""
    from reconciler import live

    if mode is not None and mode not in live.MODES:
        raise typer.BadParameter(f"{mode!r}: one of {', '.join(live.MODES)}", param_hint="--progress")
    if as_json:
        if mode not in (None, "quiet"):
            typer.echo("error: --progress cannot be combined with --json (both write to stdout)", err=True)
            raise typer.Exit(2)
        mode = "quiet"
    return live.progress_for(mode, typer.echo)


def report(ready: Prepared, outcomes: list[ClientOutcome], as_json: bool, with_plan: bool) -> bool:
    """Print what each client's run did; True when everything went well."""
    failed = report_errors(ready, outcomes)
    done = [(o.client, o.converged) for o in outcomes if o.converged is not None]
    if as_json:
        entries = [_json_run(c, one, with_plan) for c, one in done]
        print_json({"ok": not failed and all(one.ok for _, one in done), **grouped(ready, entries)})
        return not failed and all(one.ok for _, one in done)
    for client, one in done:
        heading(ready, client)
        for blocked in one.plan.blocked:
            typer.echo(f"blocked: {blocked.resource}: {blocked.message}", err=True)
        if with_plan:
            for note in one.plan.notes:
                typer.echo(f"note: {note.resource}: {note.message}", err=True)
            for pending in one.plan.pending:
                typer.echo(f"pending: {pending.resource}: {pending.describe()}", err=True)
        merged = _merged(one)
        for r in merged.failed:
            typer.echo(f"error: {r.action.op.value} {r.action.resource}: {r.error}", err=True)
        blocked_count = len(one.plan.blocked)
        typer.echo(f"summary: {merged.summary()}" + (f", {blocked_count} blocked" if blocked_count else ""))
    return not failed and all(one.ok for _, one in done)


def _merged(one: Converged) -> RunResult:
    """The pulls and the actions of one client's run as one result (a pull is an action to the reader)."""
    from reconciler.executor.apply import RunResult

    return RunResult([*(one.pulled.results if one.pulled else []), *one.result.results])


def _json_run(client: str, one: Converged, with_plan: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"client": client, "ok": one.ok}
    if with_plan:
        entry["plan"] = one.plan.as_dict()
    entry["results"] = _results(_merged(one), client)
    return entry


def _results(result: RunResult, client: str) -> list[dict[str, Any]]:
    return [
        {
            "client": client,
            "kind": r.action.resource.kind.value,
            "name": r.action.resource.name,
            "action": r.action.op.value,
            "outcome": r.outcome.value,
            "error": r.error,
            "seconds": round(r.seconds, 3),
        }
        for r in result.results
    ]
