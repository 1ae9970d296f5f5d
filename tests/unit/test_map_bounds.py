"""Hostile maps (issue 19): each bomb is refused with a message naming the file and the limit, within a
bound on time and memory that the test measures in a fresh subprocess (README "Limits and hardening")."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 10.0  # the README's bound per map file (measured: 1 to 3 s on a shared 2-core machine)
MEGABYTES = 256  # the README's bound on peak resident memory of a `validate` process

# Loads the file as `reconciler validate` does, then reports the outcome, the wall time and the peak memory.
PROBE = """
import json, resource, sys, time
from reconciler.model import MapError, load_map_files
start = time.monotonic()
try:
    load_map_files([sys.argv[1]])
    problems = []
except MapError as exc:
    problems = [str(p) for p in exc.problems]
elapsed = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"problems": problems, "seconds": elapsed, "mb": peak}))
"""


def alias_bomb() -> str:
    """Nine levels of nine aliases: 9**9 values from 11 lines."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join([*lines, "web: {create_options: {labels: *a9}}"]) + "\n"


def merge_bomb() -> str:
    """Merge keys of merge keys: PyYAML's flatten_mapping would copy 9**12 pairs."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    lines += [f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}" for i in range(1, 13)]
    return "\n".join(lines) + "\n"


BOMBS: dict[str, tuple[Callable[[], str | bytes], str]] = {
    "alias_bomb": (alias_bomb, "values with YAML aliases expanded (an alias bomb?)"),
    "merge_bomb": (merge_bomb, "merge keys expand to more than 100000 (setting map_max_values) pairs"),
    "deep_nesting": (
        lambda: "web:\n  create_options:\n    labels: " + "[" * 5000 + "]" * 5000 + "\n",
        "refused: nested deeper than 64 (setting map_max_depth) levels",
    ),
    "deep_mappings": (
        lambda: "".join(f"{' ' * i}k{i}:\n" for i in range(1000)),
        "refused: nested deeper than 64 (setting map_max_depth) levels",
    ),
    "huge_file": (
        lambda: "".join(f"c{i}: {{image: nginx}}\n" for i in range(200_000)),
        "refused: the file is larger than 1 MiB (setting map_max_bytes)",
    ),
    "many_values": (
        lambda: "web:\n  create_options:\n    labels: [" + ",".join(["1"] * 400_000) + "]\n",
        "refused: more than 100000 (setting map_max_values) YAML values",
    ),
    "many_containers": (
        lambda: "".join(f"c{i}: {{}}\n" for i in range(2001)),
        "refused: 2001 containers, more than 2000 (setting map_max_containers)",
    ),
    "many_instances": (
        lambda: "web:\n  instances: [" + ", ".join(f"i{i}" for i in range(2500)) + "]\n",
        "refused: 2500 containers, more than 2000 (setting map_max_containers)",
    ),
    "recursive_alias": (lambda: "web: &w\n  create_options: {labels: *w}\n", "a recursive alias?"),
    "nul_bytes": (lambda: b"web:\n  image: ng\x00inx\n", ":2:12: <map>: YAML error: character #x0000"),
    "binary": (lambda: bytes(range(256)) * 16, "not utf-8 text at byte 128"),
}


def measure(tmp_path: Path, name: str, content: str | bytes) -> dict[str, object]:
    path = tmp_path / f"{name}.yaml"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=SECONDS * 3,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    outcome["file"] = str(path)
    return outcome


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_within_time_and_memory(tmp_path: Path, name: str) -> None:
    make, expected = BOMBS[name]
    outcome = measure(tmp_path, name, make())
    problems = outcome["problems"]
    assert isinstance(problems, list)
    assert problems, "a bomb must be refused"
    assert all(str(p).startswith(str(outcome["file"])) for p in problems)  # names the file
    assert any(expected in str(p) for p in problems), problems
    print(f"{name}: {outcome['seconds']:.2f} s, {outcome['mb']:.0f} MB")
    assert float(str(outcome["seconds"])) < SECONDS
    assert float(str(outcome["mb"])) < MEGABYTES


def test_the_largest_map_within_every_limit_loads_within_the_bounds(tmp_path: Path) -> None:
    """Just under the caps: 1,000 configs of two instances, with binds, ports and environment."""
    config = (
        "  image: nginx\n  instances: [a, b]\n  exposes: {80: 80}\n  binds: {/etc/x: [/srv/x, ro]}\n"
        "  create_options:\n    environment: {A: '1', B: '2', C: '3', D: '4'}\n    labels: {x: y}\n"
    )
    outcome = measure(tmp_path, "largest", "".join(f"c{i}:\n{config}" for i in range(1000)))
    assert outcome["problems"] == []
    print(f"largest valid map: {outcome['seconds']:.2f} s, {outcome['mb']:.0f} MB")
    assert float(str(outcome["seconds"])) < SECONDS
    assert float(str(outcome["mb"])) < MEGABYTES


@pytest.mark.parametrize(
    ("encoded", "name"),
    [
        (b"\xef\xbb\xbfweb: {image: nginx}\n", "utf-8 BOM"),
        ("\ufeffweb: {image: nginx}\n".encode("utf-16-le"), "utf-16 LE BOM"),
        ("\ufeffweb: {image: nginx}\n".encode("utf-16-be"), "utf-16 BE BOM"),
        ("\ufeffweb: {image: nginx}\n".encode("utf-32"), "utf-32 BOM"),
    ],
)
def test_yaml_encodings_with_a_byte_order_mark_load(tmp_path: Path, encoded: bytes, name: str) -> None:
    outcome = measure(tmp_path, "bom", encoded)
    assert outcome["problems"] == [], name


def test_utf16_without_bom_is_refused_cleanly(tmp_path: Path) -> None:
    outcome = measure(tmp_path, "u16", "web: {image: nginx}\n".encode("utf-16-le"))
    problems = outcome["problems"]
    assert isinstance(problems, list)
    assert len(problems) == 1


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=SECONDS,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"{fifo}: <map>: cannot read map file: not a regular file"
