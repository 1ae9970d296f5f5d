"""Benchmark: start-up, `validate` at scale and a no-op `apply`, as ratios against floors of the same run.

Every figure is a whole process (start-up included), timed in pairs with its baseline — A B A B … — and
reported as the median of the pair-by-pair ratios, so the figures hold on a shared, noisy machine:
- `reconciler --help` and `validate` of the example against the interpreter's own start (`python -c pass`);
- `validate` of N generated containers (files of at most 1,000, the per-file limit is 2,000) against the
  same command at N = 1,000: linear means the ratio stays near N / 1,000;
- a no-op `apply` of a 40-container map (8 volume owners, 32 dependents with links) against the docker SDK
  floor: a process that imports docker and makes the same reads (the lists and one inspect per container,
  on a pool of 8), plus the number of engine requests the no-op makes, and the libraries' import alone
  against that floor (what no command that uses them can go below);
- `validate` against the import of its libraries alone (typer, PyYAML, pydantic).
Bytecode is compiled first, as in any installed copy.

    .venv/bin/python bench/startup_bench.py [--quick]     (the no-op rows need scripts/engine.sh)
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.executor.converge import converge
from reconciler.executor.engine import DockerEngine
from reconciler.model import load_map_files
from reconciler.plan.desired import desired_state

ROOT = Path(__file__).resolve().parents[1]

IMAGE = "reconciler-test/busybox:latest"
COMMAND = "[sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1; done\"]"
PER_FILE = 1_000
SIZES = (100, 1_000, 3_000, 10_000)

# docker-py without paramiko (its ssh transport), as reconciler runs it: the floor is the fastest way to the
# same answers with the SDK, so its inspects run on a pool of 8, as ours do.
NO_SSH = "import sys; sys.modules['paramiko'] = None  # docker-py then leaves its ssh transport out\n"
SDK_FLOOR = (
    NO_SSH
    + """
from concurrent.futures import ThreadPoolExecutor
import docker
api = docker.APIClient()
labels = ["io.reconciler.map=" + sys.argv[1], "io.reconciler.kind=container"]
ours = [c["Id"] for c in api.containers(all=True, filters={"label": labels})]
api.images(); api.volumes(); api.networks()
with ThreadPoolExecutor(8) as pool:
    images = {c["Image"] for c in pool.map(api.inspect_container, ours)}
    list(pool.map(api.inspect_image, images))
"""
)
# What the libraries alone cost a process: the command line's (typer), the map format's (PyYAML, pydantic's
# BaseModel) and, for commands that talk to an engine, the docker SDK's.
LIBRARIES = "import yaml, typer\nfrom pydantic import BaseModel\n"
LIBRARIES_AND_SDK = NO_SSH + LIBRARIES + "import docker\n"


def compiled() -> None:
    """Bytecode for reconciler, as any installed copy has it (pip compiles at install): this checkout may run
    with PYTHONDONTWRITEBYTECODE set, and every figure would then include compiling the sources."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "reconciler")], check=True)


def run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process (its output thrown away)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=ROOT, env=ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired(a: list[str], b: list[str], repeats: int) -> tuple[float, float, float]:
    """Median wall of A, of B, and median of the pair-by-pair A/B wall ratios (after one warm-up each)."""
    run(a), run(b)
    pairs = [(run(a)[0], run(b)[0]) for _ in range(repeats)]
    ratios = [x / y for x, y in pairs]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs), statistics.median(ratios)


def row(label: str, a: float, b: float, ratio: float, baseline: str, extra: str = "") -> None:
    print(f"{label:<34} {a:>8.3f} s {b:>8.3f} s {ratio:>8.2f}   {baseline}{extra}")


def write_maps(folder: Path, n: int) -> None:
    """N containers in files of at most PER_FILE: a fifth attach a volume, the rest link to and use one."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, n, PER_FILE)):
        m = min(PER_FILE, n - start)
        (folder / f"m{k}.yaml").write_text(map_text(f"m{k}", m))


def map_text(name: str, n: int, *, runnable: bool = False) -> str:
    bases = max(1, n // 5)
    lines = [f"name: {name}", "set_hostname: false", "volumes:"] + [f"  data{b}: /data" for b in range(bases)]
    extra = [f"  create_options: {{command: {COMMAND}}}", "  stop_timeout: 1"] if runnable else ["  exposes: [8080]"]
    for b in range(bases):
        lines += [f"base{b}:", f"  image: {IMAGE}", f"  attaches: data{b}", *extra]
    for a in range(n - bases):
        lines += [
            f"app{a}:",
            f"  image: {IMAGE}",
            f"  links: [[base{a % bases}, db]]",
            f"  uses: data{a % bases}",
            *extra,
        ]
    return "\n".join(lines) + "\n"


def startup_rows(python: str, repeats: int) -> None:
    floor = [python, "-c", "pass"]
    cli = [python, "-m", "reconciler"]
    a, b, r = paired([*cli, "--help"], floor, repeats)
    row("reconciler --help", a, b, r, "interpreter start")
    a, b, r = paired([*cli, "validate", "config/example.yaml"], floor, repeats)
    row("validate config/example.yaml", a, b, r, "interpreter start")
    a, b, r = paired([*cli, "validate", "config/example.yaml"], [python, "-c", LIBRARIES], repeats)
    row("validate config/example.yaml", a, b, r, "importing typer, PyYAML, pydantic")


def scaling_rows(python: str, repeats: int, tmp: Path) -> None:
    for n in SIZES:
        write_maps(tmp / f"n{n}", n)
    base = [python, "-m", "reconciler", "validate", str(tmp / f"n{PER_FILE}")]
    for n in SIZES:
        a, b, r = paired([python, "-m", "reconciler", "validate", str(tmp / f"n{n}")], base, max(3, repeats // 2))
        row(f"validate, {n:,} containers", a, b, r, f"validate of {PER_FILE:,}", f" (linear: {n / PER_FILE:.2f})")


def noop_rows(python: str, repeats: int, tmp: Path) -> None:
    name = f"sb{uuid.uuid4().hex[:6]}"
    path = tmp / f"{name}.yaml"
    path.write_text(map_text(name, 40, runnable=True))
    cli = [python, "-m", "reconciler"]
    try:
        subprocess.run([*cli, "apply", str(path)], check=True, cwd=ROOT, env=ENV, capture_output=True)
        a, b, r = paired([*cli, "apply", str(path)], [python, "-c", SDK_FLOOR, name], repeats)
        row("no-op apply, 40 containers", a, b, r, "docker SDK floor (same reads)", f"; {noop_requests(path)} requests")
        a, b, r = paired([python, "-c", LIBRARIES_AND_SDK], [python, "-c", SDK_FLOOR, name], repeats)
        row(
            "import of the libraries alone",
            a,
            b,
            r,
            "docker SDK floor (same reads)",
            "; typer, PyYAML, pydantic, docker",
        )
    finally:
        subprocess.run([*cli, "down", "--volumes", str(path)], check=False, cwd=ROOT, env=ENV, capture_output=True)


def noop_requests(path: Path) -> int:
    desired = desired_state(load_map_files([path]))
    engine = DockerEngine()
    done = converge(engine, desired)
    assert done.plan.in_sync, done.plan.as_dict()
    engine.close()
    return engine.request_count


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = 3 if quick else 7
    python = sys.executable
    compiled()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, median of {repeats} paired runs")
    print(f"{'figure':<34} {'ours':>10} {'baseline':>10} {'ratio':>8}   baseline")
    sections: list[Callable[[], None]] = [
        lambda: startup_rows(python, repeats),
        lambda: scaling_rows(python, repeats, tmp),
        lambda: noop_rows(python, repeats, tmp),
    ]
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as folder:
        tmp = Path(folder)
        for section in sections:
            section()


if __name__ == "__main__":
    main()
