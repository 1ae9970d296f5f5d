"""The command line (DESIGN §6): `validate`, `schema`, and the commands built on the engine.

Exit codes are a contract: 0 success, 1 failure or invalid map, 2 usage error (click's own code for bad
arguments). Command output goes to stdout; problems and logs go to stderr. No input ever produces a Python
traceback: map problems are `MapError`s, printed one line each.

Start-up is part of the interface: each command imports what it uses inside its own body (the model for
`validate`, the engine for `plan`/`apply`, the daemon for `run`), so `--help` and `validate` never load the
docker SDK, the daemon or its HTTP server. Types for annotations come in under `TYPE_CHECKING`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler import __version__, logs
from reconciler.executor.defaults import DEFAULT_CONCURRENCY, DEFAULT_HEALTH_GATE

if TYPE_CHECKING:
    from reconciler import live
    from reconciler.daemon.settings import Settings
    from reconciler.executor.apply import RunResult
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import ClientOutcome, Converged, Planner
    from reconciler.executor.engine import DockerEngine
    from reconciler.model import MapProblem, MapSet
    from reconciler.model.clients import ClientConfig
    from reconciler.model.limits import Limits
    from reconciler.plan.observed import ObservedState
    from reconciler.plan.planner import Action, Plan
    from reconciler.plan.resources import DesiredState, ResourceId

app = typer.Typer(
    name="reconciler",
    help="Keep the containers on a Docker host exactly as container map files describe them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: it wraps to the terminal (80 columns too) without cutting flag names, and shows
    # no `<bool>` types.
    rich_markup_mode=None,  # and rendering it with rich costs more than the rest of start-up
)

MapsAndTargets = Annotated[
    list[Path],
    typer.Argument(help="Map files or folders, then optional targets.", show_default=False, metavar="MAP|TARGET"),
]


MapPaths = Annotated[
    list[Path],
    typer.Argument(help="Map files, or folders of *.yml / *.yaml map files.", show_default=False, metavar="MAP"),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
TakePending = Annotated[
    bool,
    typer.Option(
        "--update", help="Also move `update: notify` containers to the newer images their tags point at (pending)."
    ),
]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        help="config, config.instance, map.config or a group (repeatable).",
        show_default=False,
        metavar="TARGET",
    ),
]


ClientsFile = Annotated[
    Path | None,
    typer.Option(
        "--clients",
        help="docker-map client configurations (YAML: name → base_url, tls, interfaces and more); without "
        "it, one engine (__default__).",
        show_default=False,
        metavar="FILE",
    ),
]
OnlyClients = Annotated[
    list[str] | None,
    typer.Option(
        "--client", help="Only this client's share of the maps (repeatable).", show_default=False, metavar="NAME"
    ),
]


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
            _print_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]})
        elif not files:
            typer.echo("error: no map files found in " + ", ".join(map(str, paths)), err=True)
        else:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    if not as_json:
        for warning in maps.warnings:
            typer.echo(str(warning), err=True)
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
        raise _refuse(problems, False)
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


# --- the daemon's state directory: holds and a person's pauses (see daemon.holds, daemon.intents) --------


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


def in_scope(desired: DesiredState, selected: frozenset[ResourceId] | None) -> list[str]:
    """The containers of the maps that the targets name (all of them without targets), sorted."""
    from reconciler.plan.resources import Kind, ResourceId

    return sorted(n for n in desired.containers if selected is None or ResourceId(Kind.CONTAINER, n) in selected)


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


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def _summary(maps: MapSet) -> list[dict[str, Any]]:
    from reconciler.plan.naming import attached_volume_name, container_name, network_name

    out = []
    for m in maps:
        containers = []
        for config, cfg in m:
            for instance in m.instances(config):
                containers.append(
                    {
                        "name": container_name(m.name, config, instance),
                        "config": config,
                        "instance": instance,
                        "image": m.image(config),
                        "depends_on": sorted(m.dependencies(config)),
                        "attaches": [
                            attached_volume_name(m.name, config, a.alias, m.model.use_attached_parent_name)
                            for a in cfg.attaches
                        ],
                    }
                )
        out.append(
            {
                "map": m.name,
                "file": m.file,
                "containers": containers,
                "networks": [network_name(m.name, n) for n in m.network_names()],
                "groups": dict(m.model.groups),
            }
        )
    return out


def deploy_problems(maps: MapSet, clients: dict[str, ClientConfig] | None = None) -> list[MapProblem]:
    """What `plan` would block because of the maps themselves: the desired state is built as the planner
    builds it (one code path), on each client, and each problem is shown where its key was written."""
    from reconciler.model.clients import clients_in_use, placement_problems

    problems = placement_problems(maps, clients)
    if problems:
        return problems
    targets = [None] if clients is None else [clients[c] for c in clients_in_use(maps, clients)]
    for client in targets:
        problems += [p for p in _client_problems(maps, client, clients) if p not in problems]
    return problems


def _client_problems(
    maps: MapSet, client: ClientConfig | None, clients: dict[str, ClientConfig] | None
) -> list[MapProblem]:
    from reconciler.model import MapProblem
    from reconciler.plan.desired import desired_state_with_sources

    desired, sources = desired_state_with_sources(maps, client, clients)
    problems = []
    for rid, message in desired.problems:
        source = sources.get(rid)
        if source is None:  # pragma: no cover - every container problem has a source
            problems.append(MapProblem(f"{rid.name} cannot be created: {message}"))
            continue
        resolved = maps[source.map]
        problems.append(resolved.problem_at(source.config, source.key, f"{message} ({rid.name} cannot be created)"))
    return problems


def _refuse(problems: list[MapProblem], as_json: bool) -> typer.Exit:
    if as_json:
        _print_json({"valid": False, "problems": [p.as_dict() for p in problems]})
    else:
        for problem in problems:
            typer.echo(str(problem), err=True)
    return typer.Exit(1)


@app.command()
def validate(paths: MapPaths, as_json: JsonFlag = False, clients_file: ClientsFile = None) -> None:
    """Check map files (schema, integrity, and that every container can be built as `plan` builds it) and
    show the containers they resolve to."""
    maps = load_maps(paths, as_json=as_json)
    problems = deploy_problems(maps, load_clients(clients_file))
    if problems:
        raise _refuse(problems, as_json)
    summary = _summary(maps)
    if as_json:
        _print_json({"valid": True, "maps": summary, "warnings": [w.as_dict() for w in maps.warnings]})
        return
    for entry in summary:
        count = len(entry["containers"])
        typer.echo(f"map {entry['map']} ({entry['file']}): {count} container{'s' if count != 1 else ''}")
        for c in entry["containers"]:
            deps = f"  after {', '.join(c['depends_on'])}" if c["depends_on"] else ""
            vols = f"  attaches {', '.join(c['attaches'])}" if c["attaches"] else ""
            typer.echo(f"  {c['name']:<32} {c['image']}{deps}{vols}")
        for net in entry["networks"]:
            typer.echo(f"  network {net}")
    typer.echo("valid")


@app.command()
def plan(
    args: MapsAndTargets,
    as_json: JsonFlag = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 when in sync, 2 when there is drift, 1 on error.")
    ] = False,
    target: Targets = None,
    prune: Annotated[bool, typer.Option(help="Plan removing orphans (ours, no longer in any map).")] = False,
    update_persistent: Annotated[bool, typer.Option(help="Also update persistent containers' images.")] = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    take_pending: TakePending = False,
) -> None:
    """Show what `apply` would change on the engines, and why. Changes nothing."""
    from reconciler.executor.converge import converge, update
    from reconciler.plan.planner import PlanOptions
    from reconciler.plan.render import render_plan

    ready = prepare(args, target, as_json, clients_file, client)
    options = PlanOptions(
        targets=ready.selected, prune=prune, update_persistent=update_persistent, apply_pending=take_pending
    )

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        held = dataclasses.replace(options, **held_options(False, [], d.name))
        return converge(engine, d.desired, update(held), execute=False)

    outcomes = each_client(ready, one)
    failed = report_errors(ready, outcomes)
    plans = [(o.client, o.converged.plan) for o in outcomes if o.converged is not None]
    if as_json:
        _print_json(_grouped(ready, [{"client": c, **p.as_dict()} for c, p in plans]))
    else:
        for name, shown in plans:
            _heading(ready, name)
            typer.echo(render_plan(shown))
    if failed:
        raise typer.Exit(1)
    if detailed_exitcode and not all(p.in_sync for _, p in plans):
        raise typer.Exit(2)


def _grouped(ready: Prepared, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One client without a clients file: its entry as it always was (with `client`); else per client."""
    if not ready.grouped and len(entries) == 1:
        return entries[0]
    return {"clients": entries}


def _heading(ready: Prepared, client: str) -> None:
    if ready.grouped:
        typer.echo(f"== client {client}")


Parallel = Annotated[int, typer.Option("--parallel", "-j", min=1, max=64, help="Actions run at once within a wave.")]


ProgressFlag = Annotated[
    str | None,
    typer.Option(
        "--progress",
        help="tty: lines updated in place, by wave (default on a terminal); plain: a line per finished action "
        "(default off one); json: a JSON object per state change; quiet: only the summary.",
        show_default=False,
        metavar="plain|tty|json|quiet",
    ),
]


def _display(mode: str | None, as_json: bool) -> live.Progress:
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


def _report(ready: Prepared, outcomes: list[ClientOutcome], as_json: bool, with_plan: bool) -> bool:
    """Print what each client's run did; True when everything went well."""
    failed = report_errors(ready, outcomes)
    done = [(o.client, o.converged) for o in outcomes if o.converged is not None]
    if as_json:
        entries = [_json_run(c, one, with_plan) for c, one in done]
        _print_json({"ok": not failed and all(one.ok for _, one in done), **_grouped(ready, entries)})
        return not failed and all(one.ok for _, one in done)
    for client, one in done:
        _heading(ready, client)
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
    from reconciler.executor.apply import RunResult

    return RunResult([*(one.pulled.results if one.pulled else []), *one.result.results])


def _json_run(client: str, one: Converged, with_plan: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"client": client, "ok": one.ok}
    if with_plan:
        entry["plan"] = one.plan.as_dict()
    entry["results"] = _results(_merged(one), client)
    return entry


@app.command()
def apply(
    args: MapsAndTargets,
    target: Targets = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `plan`).")] = False,
    pull: Annotated[bool, typer.Option(help="Pull newer versions of the images in use.")] = False,
    prune: Annotated[bool, typer.Option(help="Remove orphans (ours, no longer in any map).")] = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="With --prune: orphaned volumes too.")] = False,
    update_persistent: Annotated[bool, typer.Option(help="Also update persistent containers' images.")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    health_gate: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for a (re)created container with a healthcheck to become healthy before its "
            "dependents; a recreate that fails it is rolled back. 0: do not wait.",
            min=0,
        ),
    ] = DEFAULT_HEALTH_GATE,
    force: Annotated[
        bool, typer.Option("--force", help="Retry what the daemon holds back after a failed health gate.")
    ] = False,
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    progress: ProgressFlag = None,
    take_pending: TakePending = False,
) -> None:
    """Make the engines match the maps: plan, then execute in dependency order (engines in parallel).
    Containers in scope that a person paused are handed back to the daemon; what it holds back stays held
    unless --force."""
    from reconciler.executor.apply import Executor
    from reconciler.executor.converge import converge, update
    from reconciler.plan.planner import PlanOptions

    options = PlanOptions(
        prune=prune, prune_volumes=volumes, update_persistent=update_persistent, pull=pull, apply_pending=take_pending
    )
    if dry_run:
        plan(args, as_json, False, target, prune, update_persistent, clients_file, client, take_pending)
        return
    display = _display(progress, as_json)
    ready = prepare(args, target, as_json, clients_file, client)
    options = dataclasses.replace(options, targets=ready.selected)
    scopes = {d.name: in_scope(d.desired, ready.selected) for d in ready.deployments}
    for name, scope in scopes.items():
        _resume_in(scope, "apply", name)

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        hooks = display.executor_hooks(d.name, shown=ready.grouped)
        executor = Executor(engine, concurrency=parallel, health_gate=health_gate or None, **hooks)
        held = dataclasses.replace(options, **held_options(force, scopes[d.name], d.name))
        done = converge(engine, d.desired, update(held), executor=executor)
        _hold_rollbacks(d, done)
        return done

    with display.showing():
        outcomes = each_client(ready, one)
    if not _report(ready, outcomes, as_json, with_plan=True):
        raise typer.Exit(1)


def _hold_rollbacks(d: Deployment, done: Converged) -> None:
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


@app.command()
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

    display = _display(progress, as_json)
    ready = prepare(args, target, as_json, clients_file, client)

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        executor = Executor(engine, concurrency=parallel, **display.executor_hooks(d.name, shown=ready.grouped))
        planner = _pausing(teardown(ready.selected, volumes=volumes), d.name)
        return converge(engine, d.desired, planner, executor=executor, pull=False)

    with display.showing():
        outcomes = each_client(ready, one)
    if not _report(ready, outcomes, as_json, with_plan=False):
        raise typer.Exit(1)


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


def specs_of(desired: DesiredState, names: list[str]) -> dict[str, str]:
    """name → spec hash: what a pause records, so that a map change of the container ends it."""
    return {name: desired.containers[name].spec_hash for name in names}


@app.command()
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


@app.command()
def resume(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """End a pause (or the pause `down` left while a daemon ran): the daemon manages them again at once."""
    scopes = _scopes_of(args, target, clients_file, client)
    resumed = [n for name, scope in scopes.items() for n in _resume_in(list(scope), "resume", name)]
    if not resumed:
        typer.echo("nothing was paused")
        return
    daemon = daemon_line()
    typer.echo(f"{daemon}: it converges them now" if daemon else "no daemon is running: `reconciler apply` acts")


@app.command()
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
            _resume_in(in_scope(d.desired, ready.selected), "start", d.name)
    failed = False
    for d in ready.deployments:
        _heading(ready, d.name)
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


@app.command()
def stop(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Stop containers of the maps (only ours, each with its stop_timeout); a running daemon is told to
    keep them stopped until `start`, `resume` or `apply`."""
    _verb("stop", args, target, clients_file, client)


@app.command()
def start(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Start stopped containers of the maps (dependencies first), and hand them back to a running daemon."""
    _verb("start", args, target, clients_file, client)


@app.command()
def restart(
    args: MapsAndTargets, target: Targets = None, clients_file: ClientsFile = None, client: OnlyClients = None
) -> None:
    """Restart containers of the maps (each with its stop_timeout). A daemon does not count it as a crash."""
    _verb("restart", args, target, clients_file, client)


@app.command("logs")
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


@app.command()
def adopt(
    args: MapsAndTargets,
    target: Targets = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    health_gate: Annotated[
        float,
        typer.Option(min=0, help="Seconds for each new container to turn healthy; if it does not, theirs runs again."),
    ] = DEFAULT_HEALTH_GATE,
    as_json: JsonFlag = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """Take over running containers that provide what the maps describe but are not ours — docker-map's
    (under the map's names, without labels) and, for maps imported from compose, the project's — by the
    same create-first recreate as updates. Prints the plan, then executes it in dependency order."""
    from reconciler.executor.apply import Executor
    from reconciler.executor.converge import converge, update
    from reconciler.plan.planner import PlanOptions
    from reconciler.plan.render import render_plan

    ready = prepare(args, target, as_json, clients_file, client)
    options = PlanOptions(targets=ready.selected, adopt=True)

    def held(d: Deployment) -> PlanOptions:
        return dataclasses.replace(options, **held_options(False, [], d.name))

    def look(engine: DockerEngine, d: Deployment) -> Converged:
        return converge(engine, d.desired, update(held(d)), execute=False)

    looked = each_client(ready, look)
    failed = report_errors(ready, looked)
    plans = [(o.client, o.converged.plan) for o in looked if o.converged is not None]
    if as_json and dry_run:
        _print_json(_grouped(ready, [{"client": c, **p.as_dict()} for c, p in plans]))
    elif not as_json:
        for name, shown in plans:
            _heading(ready, name)
            typer.echo(render_plan(shown))
    if failed:
        raise typer.Exit(1)
    if dry_run:
        return

    display = _display(None, as_json)

    def one(engine: DockerEngine, d: Deployment) -> Converged:
        hooks = display.executor_hooks(d.name, shown=ready.grouped)
        executor = Executor(engine, concurrency=parallel, health_gate=health_gate or None, **hooks)
        done = converge(engine, d.desired, update(held(d)), executor=executor)
        _hold_rollbacks(d, done)
        return done

    with display.showing():
        outcomes = each_client(ready, one)
    if not _report(ready, outcomes, as_json, with_plan=True):
        raise typer.Exit(1)


import_app = typer.Typer(help="Write a map from another tool's description of the containers.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("compose")
def import_compose(
    files: Annotated[list[Path], typer.Argument(help="Compose files (as `docker compose -f`).", show_default=False)],
    project_name: Annotated[str | None, typer.Option("--project-name", "-p", help="The compose project.")] = None,
    profile: Annotated[list[str] | None, typer.Option("--profile", help="Compose profiles to enable.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the map here (else stdout).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Anything not imported is an error.")] = False,
) -> None:
    """Print (or write) a map equivalent to a docker compose project, named after the project. The compose
    files are normalised by `docker compose config`; what a map cannot express is a warning."""
    from reconciler.model import MapError, load_map_text
    from reconciler.model import compose as compose_import

    project = _compose_config(files, project_name, profile or [])
    imported = compose_import.translate(project)
    for warning in imported.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if strict and imported.warnings:
        typer.echo(f"error: {len(imported.warnings)} keys not imported (--strict)", err=True)
        raise typer.Exit(1)
    text = compose_import.render(imported, [str(f) for f in files])
    try:
        load_map_text(text, str(output or "<imported>"), default_name=str(imported.map["name"]))
    except MapError as exc:  # pragma: no cover - a translation bug, reported instead of written
        for problem in exc.problems:
            typer.echo(f"error: the imported map is invalid: {problem}", err=True)
        raise typer.Exit(1) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output} (map {imported.map['name']})", err=True)


def _compose_config(files: list[Path], project_name: str | None, profiles: list[str]) -> dict[str, Any]:
    """`docker compose … config --format json`: compose's own normal form of the project."""
    import subprocess

    argv = ["docker", "compose"]
    for file in files:
        argv += ["-f", str(file)]
    for name in profiles:
        argv += ["--profile", name]
    if project_name:
        argv += ["-p", project_name]
    argv += ["config", "--format", "json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        typer.echo(f"error: running `docker compose config` failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if done.returncode != 0:
        typer.echo(f"error: docker compose config: {done.stderr.strip()}", err=True)
        raise typer.Exit(1)
    project: dict[str, Any] = json.loads(done.stdout)
    return project


def _pausing(planner: Planner, client: str | None = None) -> Planner:
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
            pausing = specs_of(desired, [n for n in names if n in desired.containers])
            record_pause(pausing, "taken down by `reconciler down`", None, client)
            typer.echo(f"note: {daemon}: paused {', '.join(pausing)} so it keeps them down;", err=True)
            typer.echo("      `reconciler resume MAP…` (or `apply`) hands them back to it", err=True)
        return made

    return plan


def record_pause(specs: dict[str, str], why: str, until: float | None = None, client: str | None = None) -> list[str]:
    """Write the pause, or exit 1 before anything is done: an unrecorded pause would be undone silently."""
    from reconciler.daemon.intents import PauseFile

    try:
        return PauseFile(client_state_directory(client)).pause(specs, until, why)
    except OSError as exc:
        typer.echo(f"error: cannot tell the daemon (its state directory: {exc}); nothing was done", err=True)
        typer.echo("       run as a user who may write there, or give --state-dir", err=True)
        raise typer.Exit(1) from None


def _resume_in(scope: list[str], why: str, client: str | None = None) -> list[str]:
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


@app.command()
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
        entries = [
            {
                "client": c,
                "in_sync": looked.plan.in_sync,
                "resources": _status_rows(looked, desired[c]),
                "notes": [n.as_dict() for n in looked.plan.notes],
                "pending": [p.as_dict() for p in looked.plan.pending],
                "daemon": daemon,
            }
            for c, looked in looks
        ]
        # A client whose engine failed is an entry too (with its error), never silently missing.
        entries += [{"client": o.client, "error": o.error} for o in outcomes if o.converged is None]
        _print_json(_grouped(ready, sorted(entries, key=lambda e: str(e["client"]))))
    for c, looked in [] if as_json else looks:
        _heading(ready, c)
        _print_status(looked, _status_rows(looked, desired[c]))
    if daemon is not None and not as_json:
        typer.echo(f"{daemon_line()}: it heals what is not paused or held back")
    if failed:
        raise typer.Exit(1)


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


GRAPH_FORMATS = ("mermaid", "dot")


@app.command()
def graph(
    args: MapsAndTargets,
    target: Targets = None,
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot (Graphviz).", metavar="mermaid|dot")] = "mermaid",
    with_state: Annotated[
        bool, typer.Option("--state", help="Each node's state on its engine (those that answer), coloured.")
    ] = False,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
) -> None:
    """Print the dependency graph (containers, attached volumes and their inits, networks), grouped by the
    waves `apply` creates them in, as Mermaid or Graphviz DOT. Needs no engine unless --state."""
    from reconciler.plan.desired import desired_state
    from reconciler.plan.diagram import picture, render_dot, render_mermaid

    if fmt not in GRAPH_FORMATS:
        raise typer.BadParameter(f"{fmt!r}: mermaid or dot", param_hint="--format")
    paths, targets = split_args(args)
    maps = load_maps(paths)
    clients = load_clients(clients_file)
    selected = resolve_targets(maps, [*targets, *(target or [])])
    states = _graph_states(placed(maps, clients, client), clients is not None) if with_state else None
    pic = picture(desired_state(maps), selected, states)
    typer.echo(render_mermaid(pic) if fmt == "mermaid" else render_dot(pic), nl=False)


def _graph_states(deployments: list[Deployment], grouped: bool) -> dict[ResourceId, tuple[str, str | None]]:
    """What each client's engine says of its share; an engine that does not answer leaves its nodes
    `unknown` (and we say so) — the graph is drawn all the same."""
    from reconciler.executor.clients import connected
    from reconciler.executor.converge import converge, update
    from reconciler.executor.errors import EngineError
    from reconciler.plan.diagram import states_from

    def look(desired: DesiredState, engine: DockerEngine) -> Converged:
        return converge(engine, desired, update(), execute=False)

    states: dict[ResourceId, tuple[str, str | None]] = {}
    for d in deployments:
        try:
            looked = connected(d.client, functools.partial(look, d.desired))
        except EngineError as exc:
            where = f"client {d.name}: " if grouped else ""
            typer.echo(f"warning: {where}{exc}; its nodes are drawn without a state", err=True)
            continue
        assert looked.observed is not None  # a plan-only converge always looked
        states.update(states_from(d.desired, looked.observed))
    return states


def _settings_problem(exc: Exception) -> str:
    """`workers: Input should be greater than or equal to 1` rather than pydantic's whole report."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("_WithFile",))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or str(exc)


def run_daemon(settings: Settings) -> int:
    """The daemon, imported only by the command that runs it (tests replace this function)."""
    from reconciler.daemon.run import run as run_daemon

    return run_daemon(settings)


@app.command()
def run(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Map files or folders.", show_default=False, metavar="MAP")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with daemon settings.", exists=True)] = None,
    resync: Annotated[float | None, typer.Option(help="Seconds between full resyncs (default 300).")] = None,
    poll_images: Annotated[
        float | None,
        typer.Option(
            help="Ask the registry about the tags of auto/notify containers every this many seconds; pull only"
            " what changed (off by default)."
        ),
    ] = None,
    http: Annotated[str | None, typer.Option(help="host:port of /healthz, /readyz, /metrics, or 'off'.")] = None,
    workers: Annotated[int | None, typer.Option(help="Keys reconciled at once (default 4).")] = None,
    parallel: Annotated[int | None, typer.Option("--parallel", "-j", help="Actions at once in a wave.")] = None,
    health_gate: Annotated[
        float | None, typer.Option(help="Seconds for a recreated container to turn healthy.")
    ] = None,
    prune_deleted_maps: Annotated[
        bool | None, typer.Option("--prune-deleted-maps", help="Remove the containers of deleted map files.")
    ] = None,
    stop_timeout: Annotated[float | None, typer.Option(help="Seconds in-flight work may take on SIGTERM.")] = None,
    prune: Annotated[
        bool | None, typer.Option("--prune", help="Remove containers of configs removed from a map (orphans).")
    ] = None,
    volumes: Annotated[bool | None, typer.Option("--volumes", help="With --prune: orphaned volumes too.")] = None,
    update_persistent: Annotated[
        bool | None, typer.Option("--update-persistent", help="Also move persistent containers to newer images.")
    ] = None,
    clients_file: ClientsFile = None,
    client: OnlyClients = None,
    update_window: Annotated[
        str | None,
        typer.Option(help="When auto updates may run, unless a map says: 'Sat 02:00-05:00' or '0 2 * * 6 3h'."),
    ] = None,
    notify: Annotated[
        list[str] | None, typer.Option("--notify", help="An Apprise URL to notify (repeatable).", show_default=False)
    ] = None,
    git: Annotated[str | None, typer.Option(help="Read the maps from this git repository (URL or path).")] = None,
    git_branch: Annotated[str | None, typer.Option(help="Its branch (default: the remote's HEAD).")] = None,
    git_path: Annotated[str | None, typer.Option(help="The maps' folder in the repository.")] = None,
    git_interval: Annotated[float | None, typer.Option(help="Seconds between fetches (default 60).")] = None,
    git_secret_file: Annotated[
        Path | None, typer.Option(help="The secret that signs POST /hooks/git (X-Hub-Signature-256).")
    ] = None,
) -> None:
    """Run the daemon: keep the engines matching the maps, now and whenever anything changes."""
    from pydantic import ValidationError

    from reconciler.daemon.settings import load_settings

    try:
        settings = load_settings(
            config,
            paths=[str(p) for p in paths] if paths else None,
            resync=resync,
            poll_images=poll_images,
            http=http,
            workers=workers,
            concurrency=parallel,
            health_gate=health_gate,
            prune_deleted_maps=prune_deleted_maps,
            stop_timeout=stop_timeout,
            update_persistent=update_persistent,
            prune=prune,
            prune_volumes=volumes,
            clients_file=clients_file,
            client=client or None,
            update_window=update_window,
            notify=notify or None,
            git=git,
            git_branch=git_branch,
            git_path=git_path,
            git_interval=git_interval,
            git_secret_file=git_secret_file,
        )
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid settings: {_settings_problem(exc)}", err=True)
        raise typer.Exit(2) from None
    if settings.paths and settings.git:
        typer.echo("error: maps come from map files or folders or from --git, not both", err=True)
        raise typer.Exit(2)
    if not settings.paths and not settings.git:
        typer.echo("error: no map files or folders given (arguments, RECONCILER_PATHS or the config file)", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_daemon(settings))


def health_url(url: str | None, config: Path | None) -> str:
    """The endpoint to ask: `--url` (a URL, or `host:port`), else the `http` setting `run` would use (flags
    aside: RECONCILER_HTTP, the config file, the default), with a wildcard address asked on loopback."""
    import urllib.parse

    from pydantic import ValidationError

    from reconciler.daemon.settings import load_settings

    if url is None:
        try:
            address = load_settings(config).http_address
        except (ValidationError, ValueError) as exc:
            typer.echo(f"error: invalid settings: {_settings_problem(exc)}", err=True)
            raise typer.Exit(2) from None
        if address is None:
            typer.echo("error: the status server is off (http: off): nothing to ask", err=True)
            raise typer.Exit(2)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address[0], address[0])
        url = f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    if "://" not in url:
        url = "http://" + url
    return url if urllib.parse.urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/healthz"


@app.command()
def healthcheck(
    url: Annotated[
        str | None,
        typer.Option(help="The daemon's health endpoint, or host:port. Default: the `http` setting of `run`."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with daemon settings.", exists=True)] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 5.0,
) -> None:
    """Ask a running daemon whether it is healthy (exit 0) or not (exit 1): for container HEALTHCHECKs."""
    import urllib.error
    import urllib.request

    url = health_url(url, config)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            typer.echo(response.read().decode(errors="replace").strip())
    except urllib.error.HTTPError as exc:
        typer.echo(f"unhealthy: {exc.read().decode(errors='replace').strip()}", err=True)
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"unhealthy: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of the map format (for editors), generated from the model."""
    from reconciler.model import model_json_schema

    _print_json(model_json_schema())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconciler {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_json: Annotated[
        bool | None,
        typer.Option(
            "--log-json/--log-console",
            help="Log format (default: JSON unless stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
    state_dir_option: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            help="The daemon's state directory (holds, pauses); 'off' for none. Default: as `run` finds it.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logs.configure_on_first_use(log_level.lower(), json=log_json)
    if state_dir_option is not None:
        # One place for every command, `run` included (its settings read RECONCILER_STATE_DIR too).
        os.environ["RECONCILER_STATE_DIR"] = state_dir_option


GLOBAL_VALUES = ("--log-level", "--state-dir")
GLOBAL_FLAGS = ("--log-json", "--log-console")


def hoist_globals(argv: list[str]) -> list[str]:
    """`reconciler plan x.yaml --log-level debug` means `reconciler --log-level debug plan x.yaml`: the
    options of `reconciler` itself are moved before the command wherever they were written (up to `--`)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_VALUES and "=" in arg):
            front.append(arg)
        elif arg in GLOBAL_VALUES and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    from reconciler._lazy import defer_docker_ssh

    defer_docker_ssh()  # docker-py's ssh transport costs ~110 ms of every command; only ssh:// clients need it
    try:
        app(args=hoist_globals(sys.argv[1:]))
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
