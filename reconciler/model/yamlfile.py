"""YAML reading that remembers where every value came from.

PyYAML's constructors drop positions, so we compose the node graph ourselves and build plain Python values
while recording, for each key path, the line and column it was written at. Every later complaint about the
map (schema, integrity) looks its key path up here, which is how an error can say `site.yaml:12:5`.

Supported tags: the YAML 1.1 core types, merge keys (`<<`; a key written beside them overrides the merged
one, as YAML says), and docker-map's `!path` / `!path_lazy`, which expand `~` and `$VARS` in a string — or,
on a mapping or a list, in its first-level string values, as docker-map's `expand_node` does. docker-fabric's
`!env` / `!env_lazy` read fabric's `env`, which does not exist here: they are an error that says what to write
instead. Anything else (a Python object tag, a complex key, a recursive alias, several documents) is a clear
error, never a traceback.

Speed: the scanner and parser are libyaml's when PyYAML was built with it (`yaml.CParser`, about ten times
faster), the composer stays PyYAML's Python one so that the bounds below hold for both. Both give the same
nodes and the same marks; when the fast one finds anything wrong, the map is read again with the pure-Python
loader, whose messages are the ones shown (and which is the fallback without libyaml).

Every cost is bounded (`limits.Limits`): the composer counts nesting and nodes as it goes (PyYAML's composer
recurses, so 5,000 levels of `[[[…]]]` would otherwise end in a RecursionError), merge keys are sized before
PyYAML flattens them (flattening copies pairs, so merges of merges grow exponentially), and building values
counts every value with aliases expanded (an alias bomb is small as nodes and huge as values).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import KeyPath, MapError, MapProblem, looks_secret
from .limits import DEFAULT_LIMITS, Limits

try:
    from yaml._yaml import CParser as _CParser

    LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml: its Python parser does it all
    _CParser = yaml.parser.Parser  # type: ignore[assignment,misc]  # never instantiated then
    LIBYAML = False

PATH_TAGS = ("!path", "!path_lazy")
FABRIC_TAGS = ("!env", "!env_lazy")
_MAP_TAG = "tag:yaml.org,2002:map"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Positions:
    """Line/column (1-based) of each key path in one file; lookups fall back to the nearest ancestor."""

    file: str
    where: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Numbers YAML 1.1 reads differently from how they look (`0770` is 504, `0x1f` is 31), as written:
    # the loader needs the text where the digits mean something else (chmod modes).
    written: dict[KeyPath, str] = field(default_factory=dict)
    # Where each scalar value starts (`where` has the key's position): a value at fault is shown there.
    values: dict[KeyPath, tuple[int, int, str]] = field(default_factory=dict)  # line, column, text

    def locate(self, path: KeyPath) -> tuple[int | None, int | None]:
        for end in range(len(path), -1, -1):
            hit = self.where.get(path[:end])
            if hit is not None:
                return hit
        return None, None

    def forget(self, prefix: KeyPath) -> None:
        """Drop what was recorded at and under `prefix` (a merged value that a later key overrides)."""
        for record in (self.where, self.written, self.values):
            for path in [p for p in record if p[: len(prefix)] == prefix]:
                del record[path]

    def value_problem(self, path: KeyPath, message: str) -> MapProblem:
        """A problem shown where the value at `path` starts (the key's position when there is no value)."""
        hit = self.values.get(path)
        line, column = hit[:2] if hit else self.locate(path)
        return MapProblem(message, file=self.file, line=line, column=column, key_path=path)

    def problem(self, path: KeyPath, message: str, **kwargs: Any) -> MapProblem:
        # A short form (`attaches: log`) has no item `[0]` in the file: name what the user wrote.
        while self.where and len(path) > 1 and path not in self.where:
            path = path[:-1]
        line, column = self.locate(path)
        return MapProblem(message, file=self.file, line=line, column=column, key_path=path, **kwargs)


def expand_path(value: str) -> str:
    """What `!path` means: `~` and `$VARS` expanded, as docker-map does."""
    return os.path.expanduser(os.path.expandvars(value))


class _TooBig(yaml.MarkedYAMLError):
    """A limit was reached while composing; carries the node's position and the message."""


class _Bounded(yaml.composer.Composer):
    """PyYAML's composer, stopping at `limits.max_depth` levels or `limits.max_values` nodes (mixed into both
    loaders, before their parser)."""

    limits: Limits
    depth = 0
    nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            return super().compose_node(parent, index)  # an alias adds no node: the builder counts its values
        mark = self.peek_event().start_mark  # type: ignore[attr-defined]
        self.nodes += 1
        if self.nodes > self.limits.max_values:
            raise _TooBig(None, None, f"more than {self.limits.setting('max_values')} YAML values", mark)
        if self.depth >= self.limits.max_depth:
            raise _TooBig(None, None, f"nested deeper than {self.limits.setting('max_depth')} levels", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(_Bounded, yaml.SafeLoader):
    """SafeLoader that knows docker-map's path tags (used only for composing and scalar construction)."""

    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits = limits


class _FastLoader(_Bounded, _CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """The same with libyaml's scanner and parser: `_Bounded` comes first, so its (Python) composer is used."""

    def __init__(self, stream: str, limits: Limits) -> None:
        _CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.limits = limits


def _construct_path(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return expand_path(str(node.value))


for _tag in PATH_TAGS:
    _Loader.add_constructor(_tag, _construct_path)
    _FastLoader.add_constructor(_tag, _construct_path)


class _Builder:
    def __init__(self, loader: _Loader | _FastLoader, positions: Positions) -> None:
        self.loader = loader
        self.limits = loader.limits
        self.positions = positions
        self.problems: list[MapProblem] = []
        self._active: set[int] = set()
        self._built = 0
        self._merged: dict[int, int] = {}  # node id → pairs once its merge keys are flattened

    def fail(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        mark = node.start_mark
        self.problems.append(
            MapProblem(message, file=self.positions.file, line=mark.line + 1, column=mark.column + 1, key_path=path)
        )

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._built += 1
        if self._built > self.limits.max_values:
            # Reached only through aliases or merge keys: the composer stops plain files earlier.
            message = f"more than {self.limits.setting('max_values')} values with YAML aliases expanded"
            raise _TooBig(None, None, f"{message} (an alias bomb?)", node.start_mark)
        if len(path) > self.limits.max_depth or id(node) in self._active:
            limit = self.limits.setting("max_depth")
            self.fail(node, path, f"nested deeper than {limit} levels through YAML aliases (a recursive alias?)")
            return None
        self._active.add(id(node))
        try:
            value = self._build(node, path)
        finally:
            self._active.discard(id(node))
        if isinstance(node, yaml.ScalarNode):
            self.positions.values[path] = (*_mark(node), str(node.value))
            if _reads_differently(value, node):
                self.positions.written[path] = str(node.value)
        return value

    def _build(self, node: yaml.Node, path: KeyPath) -> Any:
        if node.tag in FABRIC_TAGS:
            self.fail(node, path, _fabric_tag_message(node))
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag in PATH_TAGS:
            return self._expanded(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
            return self._sequence(node, path)
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path)
        self.fail(node, path, f"unsupported YAML tag {node.tag!r}")
        return None

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what SafeConstructor's construct_yaml_str gives, without its bookkeeping
        if node.tag in PATH_TAGS:
            return expand_path(str(node.value))
        if node.tag.startswith("tag:yaml.org,2002:") and node.tag in self.loader.yaml_constructors:
            try:
                return self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
                kind = node.tag.rsplit(":", 1)[-1]
                if _secret_place(path, str(node.value)):
                    self.fail(node, path, f"invalid {kind} value (not shown: the key looks secret)")
                else:
                    self.fail(node, path, f"invalid {kind} value {node.value!r}: {exc}")
                return None
        self.fail(node, path, f"unsupported YAML tag {node.tag!r}")
        return None

    def _expanded(self, node: yaml.Node, path: KeyPath) -> Any:
        """docker-map's `expand_node`: a `!path` list or mapping expands its first-level values. Nested
        lists and mappings are kept as written (docker-map fails on them; tag them `!path` themselves)."""
        if isinstance(node, yaml.SequenceNode):
            items = self._sequence(node, path)
            return [expand_path(v) if isinstance(v, str) else v for v in items]
        assert isinstance(node, yaml.MappingNode)  # a scalar never gets here
        mapping = self._mapping(node, path)
        if mapping is None:
            return None
        return {k: expand_path(v) if isinstance(v, str) else v for k, v in mapping.items()}

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            self.positions.where.setdefault((*path, index), _mark(child))
            items.append(self.build(child, (*path, index)))
        return items

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any] | None:
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        if not self._flatten(node, path):
            return None
        # flatten_mapping puts the merged pairs first: a later one (and any written key) overrides them.
        merged = len(node.value) - explicit
        result: dict[Any, Any] = {}
        from_merge: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._key(key_node, path)
            if key is _NO_KEY:
                continue
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

    def _key(self, key_node: yaml.Node, path: KeyPath) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            self.fail(key_node, path, "a mapping key must be a plain value, not a list or mapping")
            return _NO_KEY
        key = self._build(key_node, path)
        if key is None and key_node.value not in ("", "~", "null", "Null", "NULL"):
            return _NO_KEY  # already reported
        if key is None:
            return ""
        if not isinstance(key, (str, int, float, bool)):
            return str(key_node.value)
        return key

    def _flatten(self, node: yaml.MappingNode, path: KeyPath) -> bool:
        """Merge keys inlined (PyYAML's `flatten_mapping`), once their size is known to fit the budget."""
        try:
            size = self._merged_size(node, 0)
        except _TooBig as exc:
            self.fail(node, path, f"merge keys: {exc.problem}")
            return False
        if size > self.limits.max_values:
            self.fail(node, path, f"merge keys expand to more than {self.limits.setting('max_values')} pairs")
            return False
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.fail(node, path, f"invalid merge key: {_reason(exc)}")
            return False
        return True

    def _merged_size(self, node: yaml.Node, depth: int) -> int:
        """Pairs of `node` once flattened (memoised per node, so shared merge sources count once each)."""
        if not isinstance(node, yaml.MappingNode):
            return 0  # not a mapping: flatten_mapping reports it
        if depth > self.limits.max_depth:
            raise _TooBig(None, None, f"nested deeper than {self.limits.setting('max_depth')} levels", node.start_mark)
        known = self._merged.get(id(node))
        if known is not None:
            return known
        size = 0
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                size += 1
            elif isinstance(value_node, yaml.SequenceNode):
                size += sum(self._merged_size(v, depth + 1) for v in value_node.value)
            else:
                size += self._merged_size(value_node, depth + 1)
        self._merged[id(node)] = size
        return size


_NO_KEY = object()


def _secret_place(path: KeyPath, text: str) -> bool:
    """A value under a secret-looking key, or a `NAME=value` list entry with such a name."""
    name, equals, _ = text.partition("=")
    return any(looks_secret(str(part)) for part in path) or bool(equals and looks_secret(name))


def _fabric_tag_message(node: yaml.Node) -> str:
    """docker-fabric's `!env NAME` is fabric's `env[NAME]`: no such thing here, so say what works."""
    name = str(node.value) if isinstance(node, yaml.ScalarNode) else "NAME"
    return (
        f"'{node.tag}' is docker-fabric's tag for fabric's env, which reconciler does not have: write the value "
        f"itself, or `!path ${name}` to read the environment variable {name}"
    )


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


def read_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, Positions]:
    """Parse one YAML document; return plain values and their positions, or raise `MapError`."""
    if LIBYAML and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        fast = _FastLoader(text, limits)
        try:
            return _compose_and_build(fast, Positions(file))
        except MapError:
            pass  # said again below, in the reference loader's words
        finally:
            fast.dispose()
    positions = Positions(file)
    try:
        loader = _Loader(text, limits)
    except yaml.reader.ReaderError as exc:  # the reader refuses control characters before parsing starts
        raise MapError([_unreadable(exc, text, file)]) from None
    try:
        return _compose_and_build(loader, positions)
    finally:
        loader.dispose()


def _compose_and_build(loader: _Loader | _FastLoader, positions: Positions) -> tuple[Any, Positions]:
    file = positions.file
    try:
        node = loader.get_single_node()
        if node is None:
            return None, positions
        builder = _Builder(loader, positions)
        positions.where[()] = _mark(node)
        value = builder.build(node, ())
    except _TooBig as exc:
        raise MapError([_at(exc, file, f"refused: {exc.problem}")]) from None
    except yaml.MarkedYAMLError as exc:
        raise MapError([_at(exc, file, f"YAML syntax error: {_reason(exc)}")]) from None
    except yaml.YAMLError as exc:
        raise MapError([MapProblem(f"YAML error: {_reason(exc)}", file=file)]) from None
    if builder.problems:
        raise MapError(builder.problems)
    return value, positions


def _at(exc: yaml.MarkedYAMLError, file: str, message: str) -> MapProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    return MapProblem(message, file=file, line=line, column=column)


def _unreadable(exc: yaml.reader.ReaderError, text: str, file: str) -> MapProblem:
    """A NUL byte or another control character: say which, and where (PyYAML gives only an offset)."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    return MapProblem(
        f"YAML error: character #x{character:04x} is not allowed in YAML text (a binary file?)",
        file=file,
        line=line,
        column=column,
    )
