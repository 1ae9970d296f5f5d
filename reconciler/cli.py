"""The command line (DESIGN §6): `validate`, `schema`, and the commands built on the engine.

Exit codes are a contract: 0 success, 1 failure or invalid map, 2 usage error (click's own code for bad
arguments). Command output goes to stdout; problems and logs go to stderr. No input ever produces a Python
traceback: map problems are `MapError`s, printed one line each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler import __version__, logs
from reconciler.model import MapError, MapSet, load_map_files, model_json_schema
from reconciler.plan.naming import attached_volume_name, container_name, network_name

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


def expand_map_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders contribute their `*.yml` / `*.yaml` files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            files.append(path)
    return files


def load_maps(paths: list[Path], *, as_json: bool = False) -> MapSet:
    """Load the maps or exit 1 with every problem on stderr (or as JSON on stdout)."""
    files = expand_map_paths(paths)
    try:
        if not files:
            raise MapError([])
        maps = load_map_files(files)
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


@app.command()
def validate(paths: MapPaths, as_json: JsonFlag = False) -> None:
    """Check map files (schema and integrity) and show the containers they resolve to."""
    maps = load_maps(paths, as_json=as_json)
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
