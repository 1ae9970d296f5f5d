"""What the commands share: reading `MAP… [TARGET…]`, the clients file and each client's share, running
one piece of work per engine, and the few output helpers every command prints through.

Every failure here ends the command with its contract's exit code and one line on stderr: 1 for an invalid
map or clients file (nothing is done), 2 for a usage error (an unknown target or `--client`). Commands get
their maps through `prepare` so that they all read arguments, report problems and place containers on
clients the same way.

Only typer and the standard library are imported at module level; the model, the planner and the engine
come in inside the functions that use them (see the package's docstring).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import ClientOutcome, Converged
    from reconciler.executor.engine import DockerEngine
    from reconciler.model import MapProblem, MapSet
    from reconciler.model.clients import ClientConfig
    from reconciler.model.limits import Limits
    from reconciler.plan.resources import DesiredState, ResourceId


# --- maps and targets ----------------------------------------------------------------------------------


def expand_map_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders contribute their `*.yml` / `*.yaml` files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            files.append(path)
    return files


def _map_limits() -> Limits:
    """The bounds on map files, from `RECONCILER_MAP_MAX_*` (the daemon's settings of the same names)."""
    from reconciler.model.limits import limits_from

    values = {name.removeprefix("RECONCILER_").lower(): v for name, v in os.environ.items()}
    try:
        return limits_from({k: v for k, v in values.items() if k.startswith("map_max_")})
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def load_maps(paths: list[Path], *, as_json: bool = False) -> MapSet:
    """Load the maps or exit 1 with every problem on stderr (or as JSON on stdout)."""
    from reconciler.model import MapError, load_map_files

    files = expand_map_paths(paths)
    try:
        if not files:
            raise MapError([])
        maps = load_map_files(files, limits=_map_limits())
    except MapError as exc:
        if as_json:
            print_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]})
        elif not files:
            typer.echo("error: no map files found in " + ", ".join(map(str, paths)), err=True)
        else:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    if not as_json:
        for warning in maps.warnings:
            typer.echo(str(warning), err=True)
    from reconciler import _startup

    _startup.done()  # the command's imports and its maps are built: the collector may look from here on
    return maps


def split_args(args: list[Path]) -> tuple[list[Path], list[str]]:
    """`MAP… [TARGET…]`: the first argument is always a map (a typo in it is reported as a missing file, not
    taken for a target); after it, arguments that exist on disk or end in .yml/.yaml are maps, the rest
    targets."""
    if args and not args[0].exists():
        typer.echo(f"error: {args[0]}: no such map file or folder", err=True)
        raise typer.Exit(1)
    maps = [a for a in args if a.exists() or a.suffix in (".yml", ".yaml")]
    targets = [str(a) for a in args if a not in maps]
    return maps, targets


def no_targets(command: str, args: list[Path]) -> None:
    """Commands that take only maps reject anything else (instead of silently ignoring it)."""
    _maps, targets = split_args(args)
    if targets:
        typer.echo(f"error: `{command}` takes map files or folders only, not {', '.join(targets)}", err=True)
        raise typer.Exit(2)


def resolve_targets(maps: MapSet, targets: list[str]) -> frozenset[ResourceId] | None:
    if not targets:
        return None
    from reconciler.plan.graph import TargetError, select_targets

    try:
        return frozenset(select_targets(maps, targets))
    except TargetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def in_scope(desired: DesiredState, selected: frozenset[ResourceId] | None) -> list[str]:
    """The containers of the maps that the targets name (all of them without targets), sorted."""
    from reconciler.plan.resources import Kind, ResourceId

    return sorted(n for n in desired.containers if selected is None or ResourceId(Kind.CONTAINER, n) in selected)


# --- clients: which engine runs which share of the maps ---------------------------------------------


def load_clients(file: Path | None) -> dict[str, ClientConfig] | None:
    """The clients file (exit 1 with its problem), or None: one engine."""
    from reconciler.model.clients import ClientsError, load_clients_file

    if file is None:
        return None
    try:
        return load_clients_file(file)
    except ClientsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def placed(maps: MapSet, clients: dict[str, ClientConfig] | None, only: list[str] | None) -> list[Deployment]:
    """Each client's share (exit 1 when the maps name unknown clients or split dependencies, 2 for an
    unknown `--client`)."""
    from reconciler.executor.clients import UnknownClient, deployments
    from reconciler.model.clients import placement_problems

    problems = placement_problems(maps, clients)
    if problems:
        raise refuse(problems, False)
    try:
        return deployments(maps, clients, only)
    except UnknownClient as exc:
        typer.echo(f"error: --client: {exc}", err=True)
        raise typer.Exit(2) from None


@dataclass(frozen=True)
class Prepared:
    selected: frozenset[ResourceId] | None
    deployments: list[Deployment]
    grouped: bool  # a clients file was given: output is grouped by client


def prepare(
    args: list[Path], target: list[str] | None, as_json: bool, clients_file: Path | None, only: list[str] | None
) -> Prepared:
    """What plan/apply/down/status share: load the maps (exit 1 if invalid) and the clients file, resolve
    targets (exit 2 if unknown), build each client's desired state."""
    paths, targets = split_args(args)
    maps = load_maps(paths, as_json=as_json)
    clients = load_clients(clients_file)
    selected = resolve_targets(maps, [*targets, *(target or [])])
    return Prepared(selected, placed(maps, clients, only), clients is not None)


def each_client(ready: Prepared, run: Callable[[DockerEngine, Deployment], Converged]) -> list[ClientOutcome]:
    """The one converge per client, engines in parallel; an engine's failure is its client's outcome."""
    from reconciler.executor.clients import connected
    from reconciler.executor.converge import converge_each

    work: dict[str, Callable[[], Converged]] = {
        d.name: functools.partial(connected, d.client, functools.partial(_swap, run, d)) for d in ready.deployments
    }
    return converge_each(work)


def _swap(run: Callable[[DockerEngine, Deployment], Converged], d: Deployment, engine: DockerEngine) -> Converged:
    return run(engine, d)


def report_errors(ready: Prepared, outcomes: list[ClientOutcome]) -> bool:
    """Print each failed client's engine error; True when there was one."""
    for outcome in outcomes:
        if outcome.error is not None:
            where = f"client {outcome.client}: " if ready.grouped else ""
            typer.echo(f"error: {where}{outcome.error}", err=True)
    return any(o.error is not None for o in outcomes)


# --- output ----------------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def refuse(problems: list[MapProblem], as_json: bool) -> typer.Exit:
    """Print map problems (as `validate --json` does with --json) and return the exit 1 to raise."""
    if as_json:
        print_json({"valid": False, "problems": [p.as_dict() for p in problems]})
    else:
        for problem in problems:
            typer.echo(str(problem), err=True)
    return typer.Exit(1)


def grouped(ready: Prepared, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One client without a clients file: its entry as it always was (with `client`); else per client."""
    if not ready.grouped and len(entries) == 1:
        return entries[0]
    return {"clients": entries}


def heading(ready: Prepared, client: str) -> None:
    if ready.grouped:
        typer.echo(f"== client {client}")
