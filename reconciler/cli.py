"""The command line (DESIGN §6): `validate`, `schema`, and the commands built on the engine.

Exit codes are a contract: 0 success, 1 failure or invalid map, 2 usage error (click's own code for bad
arguments). Command output goes to stdout; problems and logs go to stderr. No input ever produces a Python
traceback: map problems are `MapError`s, printed one line each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from reconciler import __version__, logs
from reconciler.daemon.run import run as run_daemon
from reconciler.daemon.settings import load_settings
from reconciler.executor.apply import DEFAULT_CONCURRENCY, DEFAULT_HEALTH_GATE, Executor, RunResult
from reconciler.executor.converge import Converged, Planner, converge, teardown, update
from reconciler.executor.engine import DockerEngine
from reconciler.executor.errors import EngineError
from reconciler.model import MapError, MapProblem, MapSet, load_map_files, load_map_text, model_json_schema
from reconciler.model import compose as compose_import
from reconciler.model.limits import Limits, limits_from
from reconciler.plan.desired import desired_state, desired_state_with_sources
from reconciler.plan.graph import TargetError, select_targets
from reconciler.plan.naming import attached_volume_name, container_name, network_name
from reconciler.plan.planner import Action, PlanOptions
from reconciler.plan.render import render_plan
from reconciler.plan.resources import DesiredState, ResourceId

app = typer.Typer(
    name="reconciler",
    help="Keep the containers on a Docker host exactly as container map files describe them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MapPaths = Annotated[
    list[Path],
    typer.Argument(help="Map files, or folders of *.yml / *.yaml map files.", show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target", "-t", help="config, config.instance, map.config or a group (repeatable).", show_default=False
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
    values = {name.removeprefix("RECONCILER_").lower(): v for name, v in os.environ.items()}
    try:
        return limits_from({k: v for k, v in values.items() if k.startswith("map_max_")})
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def load_maps(paths: list[Path], *, as_json: bool = False) -> MapSet:
    """Load the maps or exit 1 with every problem on stderr (or as JSON on stdout)."""
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
    """`MAP… [TARGET…]`: arguments that exist on disk are maps, the rest are targets."""
    maps = [a for a in args if a.exists() or a.suffix in (".yml", ".yaml")]
    targets = [str(a) for a in args if a not in maps]
    return maps, targets


def resolve_targets(maps: MapSet, targets: list[str]) -> frozenset[ResourceId] | None:
    if not targets:
        return None
    try:
        return frozenset(select_targets(maps, targets))
    except TargetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def prepare(
    args: list[Path], target: list[str] | None, as_json: bool
) -> tuple[frozenset[ResourceId] | None, DesiredState, DockerEngine]:
    """What plan/apply/down share: load the maps (exit 1 if invalid), resolve targets (exit 2 if unknown),
    build the desired state, and reach the engine (exit 1 if it does not answer)."""
    paths, targets = split_args(args)
    maps = load_maps(paths, as_json=as_json)
    selected = resolve_targets(maps, [*targets, *(target or [])])
    return selected, desired_state(maps), connect()


def connect() -> DockerEngine:
    try:
        engine = DockerEngine()
        engine.ping()
    except EngineError as exc:
        typer.echo(f"error: cannot reach the Docker engine: {exc}", err=True)
        raise typer.Exit(1) from None
    return engine


def engine_failure(exc: EngineError) -> typer.Exit:
    typer.echo(f"error: the Docker engine failed: {exc}", err=True)
    return typer.Exit(1)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def _summary(maps: MapSet) -> list[dict[str, Any]]:
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


def deploy_problems(maps: MapSet) -> list[MapProblem]:
    """What `plan` would block because of the maps themselves: the desired state is built as the planner
    builds it (one code path), and each problem is shown where its key was written."""
    desired, sources = desired_state_with_sources(maps)
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
def validate(paths: MapPaths, as_json: JsonFlag = False) -> None:
    """Check map files (schema, integrity, and that every container can be built as `plan` builds it) and
    show the containers they resolve to."""
    maps = load_maps(paths, as_json=as_json)
    problems = deploy_problems(maps)
    if problems:
        raise _refuse(problems, as_json)
    summary = _summary(maps)
    if as_json:
        _print_json({"valid": True, "maps": summary, "warnings": [w.as_dict() for w in maps.warnings]})
        return
    for entry in summary:
        typer.echo(f"map {entry['map']} ({entry['file']}): {len(entry['containers'])} containers")
        for c in entry["containers"]:
            deps = f"  after {', '.join(c['depends_on'])}" if c["depends_on"] else ""
            vols = f"  attaches {', '.join(c['attaches'])}" if c["attaches"] else ""
            typer.echo(f"  {c['name']:<32} {c['image']}{deps}{vols}")
        for net in entry["networks"]:
            typer.echo(f"  network {net}")
    typer.echo("valid")


@app.command()
def plan(
    args: Annotated[
        list[Path], typer.Argument(help="Map files or folders, then optional targets.", show_default=False)
    ],
    as_json: JsonFlag = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 when in sync, 2 when there is drift, 1 on error.")
    ] = False,
    target: Targets = None,
    prune: Annotated[bool, typer.Option(help="Plan removing orphans (ours, no longer in any map).")] = False,
    update_persistent: Annotated[bool, typer.Option(help="Also update persistent containers' images.")] = False,
) -> None:
    """Show what `apply` would change on the engine, and why. Changes nothing."""
    selected, desired, engine = prepare(args, target, as_json)
    options = PlanOptions(targets=selected, prune=prune, update_persistent=update_persistent)
    result = _converge(engine, desired, update(options), execute=False).plan
    if as_json:
        _print_json(result.as_dict())
    else:
        typer.echo(render_plan(result))
    if detailed_exitcode and not result.in_sync:
        raise typer.Exit(2)


Parallel = Annotated[int, typer.Option("--parallel", "-j", min=1, max=64, help="Actions run at once within a wave.")]


def _progress(enabled: bool) -> Any:
    def show(event: str, action: Action, error: str | None) -> None:
        if not enabled or event == "start":
            return
        mark = {"done": "ok", "failed": "FAILED", "skipped": "skipped"}[event]
        line = f"  {mark:<8} {action.op.value:<9} {action.resource.kind.value:<12} {action.resource.name}"
        typer.echo(line + (f": {error}" if error else ""))

    return show


def _report(result: RunResult, blocked: int, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        _print_json(
            {
                **(extra or {}),
                "ok": result.ok and not blocked,
                "results": [
                    {
                        "kind": r.action.resource.kind.value,
                        "name": r.action.resource.name,
                        "action": r.action.op.value,
                        "outcome": r.outcome.value,
                        "error": r.error,
                        "seconds": round(r.seconds, 3),
                    }
                    for r in result.results
                ],
            }
        )
        return
    for r in result.failed:
        typer.echo(f"error: {r.action.op.value} {r.action.resource}: {r.error}", err=True)
    summary = result.summary() + (f", {blocked} blocked" if blocked else "")
    typer.echo(f"summary: {summary}")


@app.command()
def apply(
    args: Annotated[
        list[Path], typer.Argument(help="Map files or folders, then optional targets.", show_default=False)
    ],
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
        ),
    ] = DEFAULT_HEALTH_GATE,
    as_json: JsonFlag = False,
) -> None:
    """Make the engine match the maps: plan, then execute in dependency order."""
    selected, desired, engine = prepare(args, target, as_json)
    options = PlanOptions(
        targets=selected, prune=prune, prune_volumes=volumes, update_persistent=update_persistent, pull=pull
    )
    if dry_run:
        result = _converge(engine, desired, update(options), execute=False).plan
        _print_json(result.as_dict()) if as_json else typer.echo(render_plan(result))
        return
    show = _progress(not as_json and sys.stdout.isatty())
    executor = Executor(engine, concurrency=parallel, on_event=show, health_gate=health_gate or None)
    done = _converge(engine, desired, update(options), executor=executor)
    if not as_json:
        for blocked in done.plan.blocked:
            typer.echo(f"blocked: {blocked.resource}: {blocked.message}", err=True)
        for note in done.plan.notes:
            typer.echo(f"note: {note.resource}: {note.message}", err=True)
    merged = RunResult([*(done.pulled.results if done.pulled else []), *done.result.results])
    _report(merged, len(done.plan.blocked), as_json, {"plan": done.plan.as_dict()})
    if not done.ok:
        raise typer.Exit(1)


@app.command()
def down(
    args: Annotated[
        list[Path], typer.Argument(help="Map files or folders, then optional targets.", show_default=False)
    ],
    target: Targets = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove attached volumes (their data!).")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    as_json: JsonFlag = False,
) -> None:
    """Stop and remove what the maps own, dependents first. Volumes stay unless --volumes."""
    selected, desired, engine = prepare(args, target, as_json)
    executor = Executor(engine, concurrency=parallel, on_event=_progress(not as_json and sys.stdout.isatty()))
    done = _converge(engine, desired, teardown(selected, volumes=volumes), executor=executor, pull=False)
    if not as_json:
        for blocked in done.plan.blocked:
            typer.echo(f"blocked: {blocked.resource}: {blocked.message}", err=True)
    _report(done.result, len(done.plan.blocked), as_json)
    if not done.ok:
        raise typer.Exit(1)


@app.command()
def adopt(
    args: Annotated[
        list[Path], typer.Argument(help="Map files or folders, then optional targets.", show_default=False)
    ],
    target: Targets = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan.")] = False,
    parallel: Parallel = DEFAULT_CONCURRENCY,
    health_gate: Annotated[
        float, typer.Option(help="Seconds for each new container to turn healthy; if it does not, theirs runs again.")
    ] = DEFAULT_HEALTH_GATE,
    as_json: JsonFlag = False,
) -> None:
    """Take over running containers that provide what the maps describe but are not ours — docker-map's
    (under the map's names, without labels) and, for maps imported from compose, the project's — by the
    same create-first recreate as updates. Prints the plan, then executes it in dependency order."""
    selected, desired, engine = prepare(args, target, as_json)
    options = PlanOptions(targets=selected, adopt=True)
    planned = _converge(engine, desired, update(options), execute=False).plan
    if not as_json:
        typer.echo(render_plan(planned))
    if dry_run:
        if as_json:
            _print_json(planned.as_dict())
        return
    executor = Executor(engine, concurrency=parallel, on_event=_progress(not as_json), health_gate=health_gate or None)
    done = _converge(engine, desired, update(options), executor=executor)
    for blocked in done.plan.blocked if not as_json else ():
        typer.echo(f"blocked: {blocked.resource}: {blocked.message}", err=True)
    merged = RunResult([*(done.pulled.results if done.pulled else []), *done.result.results])
    _report(merged, len(done.plan.blocked), as_json, {"plan": done.plan.as_dict()})
    if not done.ok:
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


def _converge(engine: DockerEngine, desired: DesiredState, planner: Planner, **how: Any) -> Converged:
    """The one loop, with the command line's one way of reporting an engine that fails."""
    try:
        return converge(engine, desired, planner, **how)
    except EngineError as exc:
        raise engine_failure(exc) from None


@app.command()
def status(
    args: Annotated[list[Path], typer.Argument(help="Map files or folders.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Each resource of the maps: state, health and a drift summary."""
    _selected, desired, engine = prepare(args, None, as_json)
    looked = _converge(engine, desired, update(), execute=False)
    current, observed = looked.plan, looked.observed
    assert observed is not None  # a plan-only converge always looked
    rows: list[dict[str, Any]] = []
    for rid in desired.all_ids():
        if rid.kind.value == "image":
            image = observed.images.get(rid.name)
            state = "present" if image else "missing"
            health = None
        elif rid.kind.value in ("container", "volume-init"):
            c = observed.containers.get(rid.name)
            state = "missing" if c is None else (c.status if c.status != "exited" else f"exited ({c.exit_code})")
            health = None if c is None else c.health
        elif rid.kind.value == "volume":
            state = "present" if rid.name in observed.volumes else "missing"
            health = None
        else:
            state = "present" if rid.name in observed.networks else "missing"
            health = None
        action = current.action_for(rid)
        rows.append(
            {
                "kind": rid.kind.value,
                "name": rid.name,
                "state": state,
                "health": health,
                "drift": [d.describe() for d in action.reasons] if action else [],
                "action": action.op.value if action else None,
            }
        )
    blocked = {b.resource.name: b.message for b in current.blocked}
    for row in rows:
        if row["name"] in blocked:
            row["drift"] = [blocked[row["name"]]]
            row["action"] = "blocked"
    if as_json:
        _print_json({"in_sync": current.in_sync, "resources": rows, "notes": [n.as_dict() for n in current.notes]})
        return
    for row in rows:
        health = f" ({row['health']})" if row["health"] else ""
        drift = "in sync" if not row["drift"] else f"{row['action']}: " + "; ".join(row["drift"][:3])
        state = f"{row['state']}{health}"
        typer.echo(f"{row['kind']:<12} {row['name']:<40} {state:<22} {drift}")
    for note in current.notes:
        typer.echo(f"note: {note.resource}: {note.message}")
    typer.echo("in sync" if current.in_sync else "drift: run `reconciler apply` to fix")


@app.command()
def run(
    paths: Annotated[list[Path] | None, typer.Argument(help="Map files or folders.", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with daemon settings.", exists=True)] = None,
    resync: Annotated[float | None, typer.Option(help="Seconds between full resyncs (default 300).")] = None,
    poll_images: Annotated[
        float | None, typer.Option(help="Pull the tags in use every this many seconds (off by default).")
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
    update_persistent: Annotated[
        bool | None, typer.Option("--update-persistent", help="Also move persistent containers to newer images.")
    ] = None,
) -> None:
    """Run the daemon: keep the engine matching the maps, now and whenever anything changes."""
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
        )
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.paths:
        typer.echo("error: no map files or folders given (arguments, RECONCILER_PATHS or the config file)", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_daemon(settings))


@app.command()
def healthcheck(
    url: Annotated[str, typer.Option(help="The daemon's health endpoint.")] = "http://127.0.0.1:9105/healthz",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 5.0,
) -> None:
    """Ask a running daemon whether it is healthy (exit 0) or not (exit 1): for container HEALTHCHECKs."""
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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logs.configure(log_level.lower(), json=log_json)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
