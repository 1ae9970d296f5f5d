"""Malformed maps of every shape get a clean `MapError` or a valid model — never another exception."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import MapError, MapProblem, ResolvedMap, load_map_dict, load_map_files, load_map_text
from reconciler.model.limits import Limits
from reconciler.model.schema import MAP_KEYS, ContainerConfig

NAMES = [
    "web",
    "app",
    "db",
    "a",
    "b",
    "app.one",
    "web.x",
    "one",
    "two",
    "data",
    "log",
    "/data",
    "./rel",
    "ro",
    "rw",
    "bridge",
    "host",
    "none",
    "container:x",
    "/web",
    "disabled",
    "u=rwX",
    "2000",
    "",
    " ",
]
KEYS = [
    *MAP_KEYS,
    *ContainerConfig.model_fields,
    "path",
    "host_path",
    "readonly",
    "alias",
    "container",
    "exposed_port",
    "host_port",
    "interface",
    "network_name",
    "aliases",
    "links",
    "cmd",
    "policy",
    "test",
    "interval",
    "default",
    "default_path",
    "driver",
    "user",
    "permissions",
    "one",
    "web",
    "app",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.sampled_from(NAMES),
    st.text(max_size=8),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(NAMES), st.integers(0, 70000))


def values(depth: int = 4) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=12,
    )


configs = st.dictionaries(st.sampled_from(list(ContainerConfig.model_fields)), values(), max_size=6)
maps = st.fixed_dictionaries(
    {"name": st.one_of(st.just("m"), scalars)},
    optional={
        "volumes": st.one_of(st.dictionaries(st.sampled_from(["data", "log", "a"]), values(), max_size=3), values()),
        "host": st.one_of(st.dictionaries(st.sampled_from(["data", "log"]), values(), max_size=3), values()),
        "networks": values(),
        "groups": values(),
        "repository": scalars,
        "default_tag": scalars,
        "host_root": scalars,
        "use_attached_parent_name": scalars,
        "web": st.one_of(configs, values()),
        "app": st.one_of(configs, values()),
        "containers": st.one_of(st.dictionaries(st.sampled_from(["db", "a", "b"]), configs, max_size=3), values()),
    },
)


def _check_error(exc: MapError) -> None:
    problems = exc.problems
    assert problems, "a MapError must carry at least one problem"
    for problem in problems:
        assert str(problem).startswith("fuzz.yaml")


def _load(data: Any) -> None:
    try:
        result = load_map_dict(data, file="fuzz.yaml")
    except MapError as exc:
        _check_error(exc)
        return
    assert isinstance(result, ResolvedMap)
    for config in result.configs:  # a valid model resolves without surprises
        result.image(config)
        result.instances(config)
        result.dependencies(config)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maps)
def test_random_structures_load_or_fail_cleanly(data: dict[str, Any]) -> None:
    _load(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values(), max_size=6))
def test_random_top_level_mappings(data: dict[Any, Any]) -> None:
    _load(data)


@settings(max_examples=300, deadline=None)
@given(
    maps,
    st.integers(min_value=0, max_value=400),
    st.sampled_from(["", ":", "[", "- ", "{", "\t", "!!x ", "&a ", "*a"]),
)
def test_corrupted_yaml_text(data: dict[str, Any], at: int, junk: str) -> None:
    text = yaml.safe_dump(data, default_flow_style=False)
    at = min(at, len(text))
    broken = text[:at] + junk + text[at:]
    try:
        load_map_text(broken, "fuzz.yaml")
    except MapError as exc:
        _check_error(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    try:
        load_map_text(text, "fuzz.yaml")
    except MapError as exc:
        _check_error(exc)


# --- hostile shapes (issue 19): aliases, merge keys, depth, size, encodings, NUL bytes, BOMs -------------

SMALL = Limits(max_bytes=4096, max_depth=12, max_values=2_000, max_containers=20)
FRAGMENTS = [
    "&a [x, x, x]",
    "*a",
    "[*a, *a, *a]",
    "{<<: *a}",
    "{<<: [*a, *a]}",
    "&b {k: *a}",
    "*b",
    "!path [a, $HOME]",
    "!path_lazy {a: ~/x}",
    "!env name",
    "!env_lazy",
    "[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]",
    "{a: {b: {c: {d: {e: {f: {g: {h: {i: {j: {k: {l: {m: x}}}}}}}}}}}}}",
    "\x00",
    "\ufeff",
    "\x85",
    "\u2028",
    "'\\x00'",
    "!!binary AAAA",
    "!!python/object:os.system x",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["web", "app", "a", "b", "create_options", "labels"]), st.sampled_from(FRAGMENTS)),
        max_size=8,
    )
)
def test_hostile_yaml_is_refused_cleanly_and_within_limits(pairs: list[tuple[str, str]]) -> None:
    lines = [f"{'  ' * (i % 3)}{key}{i}: {fragment}" for i, (key, fragment) in enumerate(pairs)]
    try:
        load_map_text("\n".join(lines) + "\n", "fuzz.yaml", limits=SMALL)
    except MapError as exc:
        _check_error(exc)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE]),
)
def test_arbitrary_bytes_with_byte_order_marks(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, bom: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"
    path.write_bytes(bom + data)
    problems = _refusal(lambda: load_map_files([path], limits=SMALL))
    assert all(str(p).startswith(str(path)) and "without problems" not in str(p) for p in problems)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.sampled_from(["[", "{a: "]))
def test_nesting_and_alias_fanout_never_exceed_the_limits(depth: int, fanout: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "x" + closer * depth
    lines = [f"a0: &a0 {nested}"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, 8)]
    problems = _refusal(lambda: load_map_text("\n".join(lines) + "\n", "fuzz.yaml", limits=SMALL))
    assert all(str(p).startswith("fuzz.yaml") for p in problems)
    assert not problems or any("setting map_" in p.message or "container config" in p.message for p in problems)


def _refusal(load: Callable[[], object]) -> list[MapProblem]:
    """The problems of a refused map, or none; any other exception fails the test."""
    problems: list[MapProblem] = []
    try:
        load()
    except MapError as exc:
        problems = exc.problems or [MapProblem("a MapError without problems")]
    return problems
