"""libyaml's parser (the fast path) against PyYAML's pure-Python one (the reference, issue 17).

`read_yaml` parses with libyaml when PyYAML has it and falls back to the Python parser, whose messages are
shown, whenever the fast one finds anything wrong. Both must give the same values and the same positions:
pinned here on every map in tests/, on text that is hard on column counting, and on broken text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.model import MapError, yamlfile
from reconciler.model.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
MAPS = [ROOT / "config" / "example.yaml", *sorted((ROOT / "tests" / "maps").rglob("*.yaml"))]
INVALID = sorted((ROOT / "tests" / "maps_invalid").glob("*.yaml"))
TRICKY = [
    "name: é\nwéb:\n  image: ñ/x\n  exposes: [8080, {80: [8081, ü]}]\n",
    "a: 1\r\nb:\r\n  - x\r\n  - 'y'\r\n",
    "\ufeffname: bom\nweb: {image: x}\n",
    "base: &b {image: x, user: 1}\nweb:\n  <<: *b\n  user: 2\n",
    "web:\n  create_options:\n    command: >\n      folded\n      text\n    entrypoint: |\n      a\n      b\n",
    "x: !path ~/y\nz: !path [$HOME, a]\nmode: 0770\n",
    "name: 😀\nk: '😀 x'\n",
]
BROKEN = ["a: [1, 2\n", "a: b: c\n", "a:\n\t- tab\n", "x: !!python/object:os.system ls\n", "a: 1\na: 2\n"]


def python_only(text: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    with monkeypatch.context() as m:
        m.setattr(yamlfile, "LIBYAML", False)
        return yamlfile.read_yaml(text, "f.yaml", **kw)


def test_libyaml_is_there() -> None:
    assert yamlfile.LIBYAML  # the deployment's PyYAML wheels carry it; without it this file tests nothing


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in MAPS] + TRICKY)
def test_same_values_and_positions(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected, where = python_only(text, monkeypatch)
    fast = yamlfile._FastLoader(text, Limits())
    try:
        value, positions = yamlfile._compose_and_build(fast, yamlfile.Positions("f.yaml"))  # no fallback
    finally:
        fast.dispose()
    assert value == expected
    assert (positions.where, positions.values, positions.written) == (where.where, where.values, where.written)


def outcome(text: str) -> Any:
    try:
        return yamlfile.read_yaml(text, "f.yaml")[0]
    except MapError as exc:
        return [str(p) for p in exc.problems]


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in INVALID] + BROKEN)
def test_broken_text_gets_the_reference_message(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(yamlfile, "LIBYAML", False)
        reference = outcome(text)
    assert outcome(text) == reference


def test_bounds_hold_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits(max_depth=10, max_values=50)
    for text in ("a: " + "[" * 20 + "]" * 20 + "\n", "\n".join(f"k{i}: {i}" for i in range(60))):
        with pytest.raises(MapError) as reference:
            python_only(text, monkeypatch, limits=limits)
        with pytest.raises(MapError) as fast:
            yamlfile.read_yaml(text, "f.yaml", limits)
        assert "refused" in str(fast.value.problems[0])
        assert [str(p) for p in fast.value.problems] == [str(p) for p in reference.value.problems]
