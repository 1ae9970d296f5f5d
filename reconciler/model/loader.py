"""Loading maps: YAML (or a dict) → validated model → `extends` resolved → integrity-checked `ResolvedMap`.

The loader is the only way in. It reads docker-map's layout (container configs at the top level or under
`containers`), validates with the pydantic schema, and turns every complaint into a `MapProblem` that names
the file, line, column and key path. Several files load together into a `MapSet`; map names must be unique.
Nothing here touches the engine: reading the files is left to the caller (`load_map_files` is the one
convenience that opens files, and it does no other I/O).
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import schema
from .collector import collector_paused
from .errors import KeyPath, MapError, MapProblem, Severity, did_you_mean
from .extends import ExtendsError, extend_all
from .integrity import check_integrity, warnings_for
from .legacy import legacy_keys
from .limits import DEFAULT_LIMITS, Limits
from .options import check_options
from .resolved import ResolvedMap
from .yamlfile import Positions, read_yaml

_VOCABULARY: set[str] = set()
for _model in (
    schema.ContainerConfig,
    schema.VolumeConfig,
    schema.NetworkConfig,
    schema.HealthCheck,
    schema.NetworkEndpoint,
    schema.ExecCommand,
    schema.PortBinding,
    schema.InitSettings,
):
    _VOCABULARY.update(_model.model_fields)
_CONFIG_KEYS = set(schema.ContainerConfig.model_fields)


@dataclass
class MapSet:
    """Several maps loaded together (each file its own map), plus the warnings found while loading."""

    maps: dict[str, ResolvedMap] = field(default_factory=dict)
    warnings: list[MapProblem] = field(default_factory=list)

    def __iter__(self) -> Iterator[ResolvedMap]:
        return iter(self.maps.values())

    def __getitem__(self, name: str) -> ResolvedMap:
        return self.maps[name]

    def __len__(self) -> int:
        return len(self.maps)


def load_map_files(
    paths: Iterable[str | os.PathLike[str]], *, check: bool = True, limits: Limits = DEFAULT_LIMITS
) -> MapSet:
    """Load several map files; every problem of every file is collected before raising `MapError`."""
    problems: list[MapProblem] = []
    loaded: list[ResolvedMap] = []
    for path in paths:
        file = os.fspath(path)
        try:
            text = read_map_file(file, limits)
            loaded.append(load_map_text(text, file, check=check, limits=limits))
        except MapError as exc:
            problems.extend(exc.problems)
    return _combine(loaded, problems)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_map_file(file: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """A map file's text: a regular file (a FIFO or a device would hang or never end) of at most
    `limits.max_bytes`, read no further than that; UTF-8, or UTF-16/32 with a byte order mark (YAML's
    encodings)."""
    try:
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            raise MapError([MapProblem("cannot read map file: not a regular file", file=file)])
        with open(file, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise MapError([MapProblem(f"cannot read map file: {exc.strerror or exc}", file=file)]) from None
    if len(data) > limits.max_bytes:
        raise MapError([_too_large(file, limits)])
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise MapError(
            [MapProblem(f"cannot read map file: not {encoding} text at byte {exc.start} (a binary file?)", file=file)]
        ) from None


def _too_large(file: str, limits: Limits) -> MapProblem:
    return MapProblem(f"refused: the file is larger than {limits.setting('max_bytes')}", file=file)


def _combine(loaded: Sequence[ResolvedMap], problems: list[MapProblem]) -> MapSet:
    result = MapSet()
    for resolved in loaded:
        other = result.maps.get(resolved.name)
        if other is not None:
            problems.append(
                resolved.positions.problem(("name",), f"map name '{resolved.name}' is already used by {other.file}")
            )
            continue
        result.maps[resolved.name] = resolved
        result.warnings.extend(warnings_for(resolved))
    if any(p.severity is Severity.ERROR for p in problems):
        raise MapError(problems)
    return result


def combine_maps(maps: Sequence[ResolvedMap]) -> MapSet:
    """Put already loaded maps together, checking that their names are unique."""
    return _combine(maps, [])


def load_map_text(
    text: str,
    file: str = "<map>",
    *,
    default_name: str | None = None,
    check: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> ResolvedMap:
    if len(text) > limits.max_bytes or len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise MapError([_too_large(file, limits)])
    if default_name is None and file != "<map>":
        default_name = Path(file).stem
    base_dir = posixpath.dirname(posixpath.abspath(file)) if file != "<map>" else os.getcwd()
    with collector_paused():
        data, positions = read_yaml(text, file, limits)
        return load_map_dict(
            data,
            file=file,
            positions=positions,
            default_name=default_name,
            base_dir=base_dir,
            check=check,
            limits=limits,
        )


_NO_CONTAINERS = (
    "the map defines no containers (an empty or cut-off file?); nothing of it is changed: to take a map's "
    "containers down, use `reconciler down`, or delete the file"
)


def load_map_dict(
    data: Any,
    *,
    file: str = "<map>",
    positions: Positions | None = None,
    default_name: str | None = None,
    base_dir: str | None = None,
    check: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> ResolvedMap:
    """Validate and resolve one map given as plain data (what YAML gives, or a docker-map style dict)."""
    positions = positions or Positions(file)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise MapError([positions.problem((), "a map file must be a mapping of keys to values")])
    structured, origin = _structure(data, default_name)
    if "name" not in structured:
        raise MapError([positions.problem((), "the map has no 'name' (add `name: <map name>`)")])
    _check_count(structured, positions, limits)
    notes = legacy_keys(structured, origin, positions)
    problems = [n for n in notes if n.severity is Severity.ERROR] + _modes_as_written(structured, origin, positions)
    try:
        model = schema.ContainerMapModel.model_validate(structured)
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc, structured, origin, positions))
    if problems:
        raise MapError(problems)
    _check_count(model, positions, limits)
    if all(config.abstract for config in model.containers.values()):
        # An empty, comment-only or cut-off file (an editor's accident, a write that is not atomic) would
        # otherwise be a valid map of nothing, and a daemon with --prune would remove all of it at once.
        raise MapError([positions.problem((), _NO_CONTAINERS)])
    problems = check_options(model, origin, positions)
    if problems:
        raise MapError(problems)
    try:
        extended = extend_all(model.containers)
    except ExtendsError as exc:
        raise MapError([positions.problem((*origin(exc.config), "extends"), str(exc))]) from None
    resolved = ResolvedMap(
        model=model,
        file=file,
        base_dir=base_dir or os.getcwd(),
        positions=positions,
        configs={name: cfg for name, cfg in extended.items() if not cfg.abstract},
        extended=extended,
        notes=[n for n in notes if n.severity is Severity.WARNING],
    )
    if check:
        found = check_integrity(resolved, origin)
        if any(p.severity is Severity.ERROR for p in found):
            raise MapError(found)
    return resolved


def _check_count(data: dict[str, Any] | schema.ContainerMapModel, positions: Positions, limits: Limits) -> None:
    """At most `limits.max_containers`: configs counted before validation (which is what takes the time),
    configs times instances after it."""
    if isinstance(data, schema.ContainerMapModel):
        count = sum(max(1, len(cfg.instances)) for cfg in data.containers.values() if not cfg.abstract)
    else:
        containers = data.get("containers")
        count = len(containers) if isinstance(containers, Mapping) else 0
    if count > limits.max_containers:
        message = f"refused: {count} containers, more than {limits.setting('max_containers')}"
        raise MapError([positions.problem((), message)])


# --- structure and error translation -------------------------------------------------------------------


class _Origin:
    """Maps a container config name back to where it was written (top level or under `containers`)."""

    def __init__(self, top_level: set[str]) -> None:
        self.top_level = top_level

    def __call__(self, config: str) -> KeyPath:
        return (config,) if config in self.top_level else ("containers", config)


def _structure(data: Mapping[Any, Any], default_name: str | None) -> tuple[dict[str, Any], _Origin]:
    """docker-map's layout: known map keys, `containers`, and every other top-level key as a config."""
    out: dict[str, Any] = {}
    containers: dict[str, Any] = {}
    top_level: set[str] = set()
    for raw_key, value in data.items():
        key = str(raw_key)
        if key in schema.MAP_KEYS and key != "containers":
            out[key] = value
        elif key == "containers":
            if isinstance(value, Mapping):
                for name, cfg in value.items():
                    containers[str(name)] = {} if cfg is None else cfg
            else:
                out["containers"] = value
        else:
            containers[key] = {} if value is None else value
            top_level.add(key)
    if "containers" not in out:
        out["containers"] = containers
    if "name" not in out and default_name:
        out["name"] = default_name
    return out, _Origin(top_level)


_YAML_OCTAL = re.compile(r"^0[0-7]+$")


def _modes_as_written(data: dict[str, Any], origin: _Origin, positions: Positions) -> list[MapProblem]:
    """`permissions: 0770` means chmod 0770, as the user meant — not YAML 1.1's integer 504 (`chmod 504`).

    Only YAML text has this trap (a dict from Python passes its values as they are). Other number forms
    (`0x1f8`, `0b…`, `1_000`) have no evident chmod meaning: they are rejected, and dropped so that the
    schema does not report them a second time. `data` is updated with copies, never in place.
    """
    problems: list[MapProblem] = []
    containers = data.get("containers")
    if isinstance(containers, dict):
        for name, cfg in containers.items():
            containers[name] = _mode_as_written(cfg, (*origin(name), "permissions"), positions, problems)
    volumes = data.get("volumes")
    if isinstance(volumes, Mapping):
        data["volumes"] = {
            alias: _mode_as_written(vol, ("volumes", alias, "permissions"), positions, problems)
            for alias, vol in volumes.items()
        }
    return problems


def _mode_as_written(holder: Any, path: KeyPath, positions: Positions, problems: list[MapProblem]) -> Any:
    text = positions.written.get(path)
    if text is None or not isinstance(holder, Mapping) or not isinstance(holder.get("permissions"), int):
        return holder
    fixed = dict(holder)
    if _YAML_OCTAL.match(text):
        fixed["permissions"] = text
        return fixed
    number = fixed.pop("permissions")
    problems.append(
        positions.problem(
            path,
            f"YAML reads {text} as the number {number}, which is not a chmod mode: write octal digits "
            "(750, 0750) or quote a symbolic mode ('u=rwX,g=rX,o=')",
        )
    )
    return fixed


def _walk(data: Any, loc: Sequence[int | str], origin: _Origin) -> tuple[KeyPath, list[int | str]]:
    """Follow a pydantic error location through the raw data; return the raw key path and the rest."""
    path: list[str | int] = []
    node = data
    parts = list(loc)
    index = 0
    if parts[:1] == ["containers"] and len(parts) > 1:
        path = list(origin(str(parts[1])))
        node = data.get("containers", {}).get(parts[1]) if isinstance(data.get("containers"), dict) else None
        index = 2
    while index < len(parts):
        part = parts[index]
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and part.isdigit() and int(part) in node:
            part = int(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        path.append(part)
        index += 1
    rest = [p for p in parts[index:] if not _is_type_tag(p)]
    return tuple(path), rest


def _is_type_tag(part: int | str) -> bool:
    return isinstance(part, str) and (
        "[" in part
        or part
        in {
            "str",
            "int",
            "float",
            "bool",
            "list",
            "dict",
            "none",
            "function-before",
            "function-after",
            "tagged-union",
            "union",
            "nullable",
            "literal",
        }
    )


def _problems_from_validation(
    exc: ValidationError, data: dict[str, Any], origin: _Origin, positions: Positions
) -> list[MapProblem]:
    by_place: dict[tuple[KeyPath, str], list[Any]] = {}
    for error in exc.errors(include_url=False):
        path, rest = _walk(data, error["loc"], origin)
        by_place.setdefault((path, ".".join(map(str, rest))), []).append((error, rest))
    problems: list[MapProblem] = []
    index: dict[KeyPath, list[tuple[KeyPath, str]]] = {}
    if any(rest for (_, rest) in by_place):
        for at, (_, _, text) in positions.values.items():
            index.setdefault(at[:2], []).append((at, text))
    for (path, _), errors in by_place.items():
        type_errors = [e for e, _ in errors if str(e["type"]).endswith("_type")]
        if len(type_errors) > 1:
            # A union (`str | list[str]`): one message naming every accepted type.
            wanted = [str(e["msg"]).removeprefix("Input should be a valid ") for e in type_errors]
            rest = errors[0][1]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
            text = f"expected a {' or a '.join(dict.fromkeys(wanted))}, got {type(type_errors[0]['input']).__name__}"
            problems.append(positions.problem(path, f"{where}: {text}" if where else text))
        for error, rest in errors:
            if len(type_errors) > 1 and error in type_errors:
                continue
            located = _at_value(error, path, rest, positions, index.get(path[:2], []))
            problems.append(located or positions.problem(path, _message(error, path, rest)))
    return problems


def _at_value(
    error: Any, path: KeyPath, rest: list[int | str], positions: Positions, scalars: list[tuple[KeyPath, str]]
) -> MapProblem | None:
    """A short form (`exposes: {80: eighty}`) has no canonical index in the file: find the scalar at fault
    under `path` by its value, and point at it (with the field's name, not a canonical index)."""
    if not rest or len(path) < 2 or error["type"] == "extra_forbidden" or isinstance(error.get("input"), (dict, list)):
        return None
    wanted = str(error.get("input"))
    hits = [p for p, text in scalars if p[: len(path)] == path and text == wanted]
    if not hits or hits[0] == path:
        return None
    names = [r for r in rest if isinstance(r, str)]
    text = _message(error, path, [])
    return positions.value_problem(hits[0], f"{names[-1]}: {text}" if names else text)


# docker compose habits: where each of its service keys belongs in a container map.
COMPOSE_HINTS = {
    "command": "a compose key: write it under create_options: {command: [...]}",
    "entrypoint": "a compose key: write it under create_options: {entrypoint: [...]}",
    "environment": "a compose key: write it under create_options: {environment: {NAME: value}}",
    "ports": "a compose key: publish with exposes: {80: 8080} (container port: host port)",
    "volumes": "a compose key: use binds (host paths), attaches (named volumes) or shares",
    "depends_on": "a compose key: use uses (volumes) or links, which order the start too",
    "restart": "a compose key: write it under host_config: {restart_policy: {Name: always}}",
    "labels": "a compose key: write it under create_options: {labels: {...}}",
    "container_name": "a compose key: names are <map>.<config>, set by the map and the config's key",
    "working_dir": "a compose key: write it under create_options: {working_dir: /path}",
    "env_file": "a compose key: not supported; list the values under create_options: {environment: ...}",
}


def _message(error: Any, path: KeyPath, rest: list[int | str]) -> str:
    kind = error["type"]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    prefix = f"{where}: " if where else ""
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else str(error["loc"][-1])
        at_config = (len(path) == 2 and path[0] != "containers") or (len(path) == 3 and path[0] == "containers")
        if key in COMPOSE_HINTS and at_config:
            return f"unknown key '{key}' ({COMPOSE_HINTS[key]})"
        hint = did_you_mean(key, _VOCABULARY)
        if len(path) == 2 and path[0] != "containers" and not hint:
            hint = did_you_mean(key, _CONFIG_KEYS)
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"{prefix}missing required key"
    text = str(error["msg"])
    text = text.removeprefix("Value error, ")
    if kind in ("model_type", "dict_type") and len(path) == 1 and path[0] not in schema.MAP_KEYS:
        near = did_you_mean(str(path[0]), schema.MAP_KEYS)
        text = f"a container config must be a mapping{near}" if near else "a container config must be a mapping"
    return f"{prefix}{text}"


def model_json_schema() -> dict[str, Any]:
    """JSON Schema of a map file (for editors): map keys plus container configs at the top level."""
    base: dict[str, Any] = schema.ContainerMapModel.model_json_schema(mode="validation")
    config_ref = {"$ref": "#/$defs/ContainerConfig"}
    base["additionalProperties"] = config_ref
    base["required"] = []
    base["title"] = "reconciler container map (docker-map 1.x format)"
    base["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return base
