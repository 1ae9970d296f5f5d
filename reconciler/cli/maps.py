"""The commands about the maps themselves: `validate`, `schema` and `graph`. None needs an engine
(`graph --state` asks the engines that answer, and draws the graph all the same when one does not).

`validate` builds each container's desired state as `plan` does — one code path, so whatever `plan` would
block is reported here first, at the file, line and key where it was written. It and `schema` are the
commands people run most often without a Docker engine, so they must stay cheap: the model is imported in
their bodies, the engine never (tests/unit/test_startup.py).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.common import load_clients, load_maps, placed, print_json, refuse, resolve_targets, split_args
from reconciler.cli.options import ClientsFile, JsonFlag, MapPaths, MapsAndTargets, OnlyClients, Targets

if TYPE_CHECKING:
    from reconciler.executor.clients import Deployment
    from reconciler.executor.converge import Converged
    from reconciler.executor.engine import DockerEngine
    from reconciler.model import MapProblem, MapSet
    from reconciler.model.clients import ClientConfig
    from reconciler.plan.resources import DesiredState, ResourceId


def validate(paths: MapPaths, as_json: JsonFlag = False, clients_file: ClientsFile = None) -> None:
    """Check map files (schema, integrity, and that every container can be built as `plan` builds it) and
    show the containers they resolve to."""
    maps = load_maps(paths, as_json=as_json)
    problems = deploy_problems(maps, load_clients(clients_file))
    if problems:
        raise refuse(problems, as_json)
    summary = _summary(maps)
    if as_json:
        print_json({"valid": True, "maps": summary, "warnings": [w.as_dict() for w in maps.warnings]})
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


def _summary(maps: MapSet) -> list[dict[str, Any]]:
    """Each map as `validate` shows it: its containers (name, image, dependencies, attached volumes) and
    networks, under the names the engine will see."""
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


def schema() -> None:
    """Print the JSON Schema of the map format (for editors), generated from the model."""
    from reconciler.model import model_json_schema

    print_json(model_json_schema())


GRAPH_FORMATS = ("mermaid", "dot")


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
