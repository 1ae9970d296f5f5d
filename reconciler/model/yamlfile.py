"""YAML reading that remembers where every value came from.

PyYAML's constructors drop positions, so we compose the node graph ourselves and build plain Python values
while recording, for each key path, the line and column it was written at. Every later complaint about the
map (schema, integrity) looks its key path up here, which is how an error can say `site.yaml:12:5`.

Supported tags: the YAML 1.1 core types, merge keys (`<<`; a key written beside them overrides the merged
one, as YAML says), and docker-map's `!path` / `!path_lazy`, which
expand `~` and `$VARS` in a string. Anything else (a Python object tag, a complex key, a recursive alias,
several documents) is a clear error, never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import KeyPath, MapError, MapProblem

PATH_TAGS = ("!path", "!path_lazy")
_MAX_DEPTH = 64


@dataclass
class Positions:
    """Line/column (1-based) of each key path in one file; lookups fall back to the nearest ancestor."""

    file: str
    where: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Numbers YAML 1.1 reads differently from how they look (`0770` is 504, `0x1f` is 31), as written:
    # the loader needs the text where the digits mean something else (chmod modes).
    written: dict[KeyPath, str] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> tuple[int | None, int | None]:
        for end in range(len(path), -1, -1):
            hit = self.where.get(path[:end])
            if hit is not None:
                return hit
        return None, None

    def forget(self, prefix: KeyPath) -> None:
        """Drop what was recorded at and under `prefix` (a merged value that a later key overrides)."""
        for record in (self.where, self.written):
            for path in [p for p in record if p[: len(prefix)] == prefix]:
                del record[path]

    def problem(self, path: KeyPath, message: str, **kwargs: Any) -> MapProblem:
        # A short form (`attaches: log`) has no item `[0]` in the file: name what the user wrote.
        while self.where and len(path) > 1 and path not in self.where:
            path = path[:-1]
        line, column = self.locate(path)
        return MapProblem(message, file=self.file, line=line, column=column, key_path=path, **kwargs)


def expand_path(value: str) -> str:
    """What `!path` means: `~` and `$VARS` expanded, as docker-map does."""
    return os.path.expanduser(os.path.expandvars(value))


class _Loader(yaml.SafeLoader):
    """SafeLoader that knows docker-map's path tags (used only for composing and scalar construction)."""


def _construct_path(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return expand_path(str(node.value))


for _tag in PATH_TAGS:
    _Loader.add_constructor(_tag, _construct_path)


class _Builder:
    def __init__(self, loader: _Loader, positions: Positions) -> None:
        self.loader = loader
        self.positions = positions
        self.problems: list[MapProblem] = []
        self._active: set[int] = set()

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        mark = node.start_mark
        self.problems.append(
            MapProblem(message, file=self.positions.file, line=mark.line + 1, column=mark.column + 1, key_path=path)
        )

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if len(path) > _MAX_DEPTH or id(node) in self._active:
            self.fail(node, path, "value nests too deeply (recursive YAML alias?)")
            return None
        self._active.add(id(node))
        try:
            value = self._build(node, path)
        finally:
            self._active.discard(id(node))
        if isinstance(node, yaml.ScalarNode) and _reads_differently(value, node):
            self.positions.written[path] = str(node.value)
        return value

    def _build(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag in PATH_TAGS:
                return expand_path(str(node.value))
            if node.tag.startswith("tag:yaml.org,2002:") and node.tag in self.loader.yaml_constructors:
                try:
                    return self.loader.construct_object(node, deep=True)
                except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
                    self.fail(node, path, f"invalid {node.tag.rsplit(':', 1)[-1]} value {node.value!r}: {exc}")
                    return None
            self.fail(node, path, f"unsupported YAML tag {node.tag!r}")
            return None
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.fail(node, path, f"unsupported YAML tag {node.tag!r}")
                return None
            items = []
            for index, child in enumerate(node.value):
                self.positions.where.setdefault((*path, index), _mark(child))
                items.append(self.build(child, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self.fail(node, path, f"unsupported YAML tag {node.tag!r}")
                return None
            explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
            try:
                self.loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                self.fail(node, path, f"invalid merge key: {_reason(exc)}")
                return None
            # flatten_mapping puts the merged pairs first: a later one (and any written key) overrides them.
            merged = len(node.value) - explicit
            result: dict[Any, Any] = {}
            from_merge: set[Any] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                if not isinstance(key_node, yaml.ScalarNode):
                    self.fail(key_node, path, "a mapping key must be a plain value, not a list or mapping")
                    continue
                key = self._build(key_node, path)
                if key is None and key_node.value not in ("", "~", "null", "Null", "NULL"):
                    continue  # already reported
                if key is None:
                    key = ""
                if not isinstance(key, (str, int, float, bool)):
                    key = str(key_node.value)
                if key in result and key not in from_merge:
                    self.fail(key_node, (*path, _key(key)), f"duplicate key {key!r}")
                    continue
                if key in result:  # overriding a merged value: forget where the old one was
                    self.positions.forget((*path, _key(key)))
                if index < merged:
                    from_merge.add(key)
                else:
                    from_merge.discard(key)
                self.positions.where[(*path, _key(key))] = _mark(key_node)
                result[key] = self.build(value_node, (*path, _key(key)))
            return result
        self.fail(node, path, "unsupported YAML node")  # pragma: no cover - PyYAML has only three kinds
        return None


def _reads_differently(value: object, node: yaml.ScalarNode) -> bool:
    """An integer whose text is not its decimal digits: octal `0770`, hex, binary, `1_000`, `1:30`, `+5`."""
    return isinstance(value, int) and not isinstance(value, bool) and str(node.value) != str(value)


def _key(key: object) -> str | int:
    return key if isinstance(key, (str, int)) and not isinstance(key, bool) else str(key)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem or exc).strip()


def read_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one YAML document; return plain values and their positions, or raise `MapError`."""
    positions = Positions(file)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters before parsing starts
        raise MapError([MapProblem(f"YAML error: {exc}".replace("\n", " "), file=file)]) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            raise MapError(
                [MapProblem(f"YAML syntax error: {_reason(exc)}", file=file, line=line, column=column)]
            ) from None
        except yaml.YAMLError as exc:
            raise MapError([MapProblem(f"YAML error: {_reason(exc)}", file=file)]) from None
        if node is None:
            return None, positions
        builder = _Builder(loader, positions)
        positions.where[()] = _mark(node)
        value = builder.build(node, ())
        if builder.problems:
            raise MapError(builder.problems)
        return value, positions
    finally:
        loader.dispose()
