"""`reconciler import compose`: a map written from a docker compose project.

Compose itself reads the files (`docker compose config`: several -f files, profiles, interpolation,
`extends`), so the translation (`reconciler.model.compose`) starts from compose's own normal form instead of
re-implementing its file format. What a map cannot express is a warning (an error with --strict), and the map written is
loaded again before it is written: a translation bug is reported, never saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


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
