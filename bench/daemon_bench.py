"""Benchmark: the `run` daemon managing N containers — reaction times, a full resync and idle cost, each
against a baseline measured in the same run on the same engine.

- a container's death (a kill) → running again (median, p95), from its `die` event, against the engine's
  own `start` of a stopped container: what the daemon adds is the difference (target: median ≤ engine
  start + 40 ms);
- tag move → the updated container running (median, p95) against what the engine needs for it: create the
  replacement, start it, stop and remove the old one, straight through the SDK (target: at most 1.5 times that);
- a full resync with nothing to change (SIGHUP: reload and reconcile everything), its duration;
- idle: the daemon's CPU share, resident memory and engine requests per minute while nothing happens,
  beside an idle Python process that holds the engine's event stream with the SDK (targets: ≤ 0.05 % CPU,
  ≤ 45 MB, no requests), and its memory beside the same holder with the daemon's libraries imported
  (uvicorn, prometheus-client, the map format's pydantic models).

    .venv/bin/python bench/daemon_bench.py [N] [IDLE_SECONDS]    (default: 50 30; needs scripts/engine.sh)
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "reconciler-test/busybox:latest"
TRAP = "trap 'exit 0' TERM; while :; do sleep 1; done"
TRIALS = 10
NO_SSH = "import sys; sys.modules['paramiko'] = None\n"  # docker-py without its ssh transport, as reconciler runs it
EVENTS = "for _ in docker.from_env().events():\n    pass\n"
HOLDER = NO_SSH + "import docker\n" + EVENTS
# The same holder with what a daemon must hold beside it: its HTTP server, its metrics and the map format's
# models (pydantic) — the memory of the libraries, so the daemon's own share is the difference.
HOLDER_WITH_LIBRARIES = (
    NO_SSH + "import docker, uvicorn, prometheus_client\nfrom reconciler.model import load_map_files\n" + EVENTS
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith((name + " ", name + "{")):  # labelled `client` since several engines
                return float(line.split()[-1])
    raise KeyError(name)


def wait(condition: Any, timeout: float, interval: float = 0.005) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(interval)
    raise TimeoutError("condition not met")


def running(api: Any, name: str, image: str | None = None) -> bool:
    try:
        data = api.inspect_container(name)
    except docker.errors.NotFound:
        return False
    return bool(data["State"]["Running"]) and (image is None or data["Image"] == image)


def cpu_seconds(pid: int) -> float:
    """The process's CPU time to the nanosecond: the sum of its threads' run times (schedstat), where the
    clock ticks of /proc/PID/stat (10 ms) are too coarse for an idle spell's few milliseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, ours: float, base: float, unit: str, baseline: str) -> None:
    ratio = f"{ours / base:>7.2f}" if base else f"{'—':>7}"
    digits = 3 if unit == "%" else 2  # an idle CPU share is a few hundredths of a per cent
    print(f"  {label:<30} {ours:>9.{digits}f} {unit:<3} {base:>9.{digits}f} {unit:<3} {ratio}   {baseline}")


def map_text(name: str, n: int, tag: str) -> str:
    lines = [f"name: {name}", "set_hostname: false"]
    command = f'  create_options: {{command: [sh, -c, "{TRAP}"]}}'
    for i in range(n - 1):
        lines += [f"c{i}:", f"  image: {IMAGE}", "  stop_timeout: 1", command]
    lines += ["updated:", f"  image: {tag}", "  stop_timeout: 1", command]
    return "\n".join(lines) + "\n"


def start_daemon(folder: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "reconciler", "--log-level", "warning", "run", str(folder)]
    argv += ["--http", f"127.0.0.1:{port}", "--resync", "3600"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def settle(port: int, quiet: float = 5.0, timeout: float = 180.0) -> float:
    """Wait until the daemon's start-up work is over: its queue empty and no engine request for `quiet`
    seconds (at 500 containers the reconciles after the cold start take a while). Seconds waited."""
    started = time.monotonic()
    last, since = metric(port, "reconciler_engine_requests"), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = metric(port, "reconciler_engine_requests")
        if now != last or metric(port, "reconciler_queue_depth") > 0:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - started


def idle_rows(proc: subprocess.Popen[bytes], port: int, seconds: float) -> None:
    """The daemon and an SDK events-stream holder, side by side over the same quiet spell."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    libraries = subprocess.Popen(
        [sys.executable, "-c", HOLDER_WITH_LIBRARIES],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(2)  # the holder's start-up is not idle
        requests0, t0 = metric(port, "reconciler_engine_requests"), time.monotonic()
        ours0, theirs0 = cpu_seconds(proc.pid), cpu_seconds(holder.pid)
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        ours_cpu = 100 * (cpu_seconds(proc.pid) - ours0) / elapsed
        holder_cpu = 100 * (cpu_seconds(holder.pid) - theirs0) / elapsed
        requests = (metric(port, "reconciler_engine_requests") - requests0) * 60 / elapsed
        row("idle CPU", ours_cpu, holder_cpu, "%", "an idle SDK events-stream holder")
        row("idle RSS", rss_mb(proc.pid), rss_mb(holder.pid), "MB", "the same holder")
        row("idle RSS", rss_mb(proc.pid), rss_mb(libraries.pid), "MB", "the holder with the daemon's libraries")
        print(f"  {'idle engine requests':<30} {requests:>9.1f} /min (target 0)")
    finally:
        for process in (holder, libraries):
            process.kill()
            process.wait(10)


def deaths(client: Any, name: str) -> tuple[dict[str, float], Any]:
    """When each of the bench's containers died, as this process saw the engine's `die` event (a kill takes
    the engine itself ~90 ms before the container is dead: not the daemon's time)."""
    seen: dict[str, float] = {}
    stream = client.api.events(decode=True, filters={"type": "container", "event": "die"})

    def follow() -> None:
        with contextlib.suppress(Exception):
            for event in stream:
                who = str((event.get("Actor") or {}).get("Attributes", {}).get("name", ""))
                if who.startswith(name):
                    seen[who] = time.perf_counter()

    threading.Thread(target=follow, daemon=True).start()
    return seen, stream


def kill_rows(client: Any, api: Any, name: str, n: int) -> None:
    """The engine's own start of a stopped container, then a kill healed by the daemon, alternately; the
    daemon's reaction counts from the container's death."""
    died, stream = deaths(client, name)
    engine_start, reaction, end_to_end = [], [], []
    for trial in range(TRIALS):
        target = f"{name}.c{trial % (n - 1)}"
        probe = api.create_container(IMAGE, ["sh", "-c", TRAP], name=f"{name}-probe{trial}", stop_timeout=1)
        started = time.perf_counter()
        api.start(probe)
        wait(lambda p=probe: api.inspect_container(p)["State"]["Running"], 30)
        engine_start.append(time.perf_counter() - started)
        api.remove_container(probe, force=True, v=True)
        died.pop(target, None)
        started = time.perf_counter()
        api.kill(target)
        wait(lambda t=target: t in died, 10, 0.001)
        wait(lambda t=target: running(api, t), 30, 0.002)
        back = time.perf_counter()
        reaction.append(back - died[target])
        end_to_end.append(back - started)
        time.sleep(0.3)
    stream.close()
    start = 1000 * statistics.median(engine_start)
    row("death → running, median", 1000 * statistics.median(reaction), start, "ms", "the engine's start")
    row("death → running, p95", 1000 * pct(reaction, 0.95), 1000 * pct(engine_start, 0.95), "ms", "the same")
    print(f"  {'kill call → running, median':<30} {1000 * statistics.median(end_to_end):>9.2f} ms  (the kill included)")


def swap(api: Any, name: str, trial: int) -> float:
    """What the engine needs for one update: create and start the new container, stop and remove the old."""
    old = api.create_container(IMAGE, ["sh", "-c", TRAP], name=f"{name}-old{trial}", stop_timeout=1)
    api.start(old)
    started = time.perf_counter()
    new = api.create_container(IMAGE, ["sh", "-c", TRAP], name=f"{name}-new{trial}", stop_timeout=1)
    api.start(new)
    api.stop(old, timeout=1)
    api.remove_container(old, v=True)
    seconds = time.perf_counter() - started
    api.remove_container(new, force=True, v=True)
    return seconds


def update_rows(client: Any, api: Any, name: str, tag: str) -> None:
    ours, floor = [], []
    for trial in range(5):
        floor.append(swap(api, name, trial))
        image, _ = client.images.build(
            fileobj=io.BytesIO(f"FROM {IMAGE}\nLABEL gen={trial + 1}\n".encode()), tag=tag, rm=True
        )
        started = time.perf_counter()
        wait(lambda i=image.id: running(api, f"{name}.updated", i), 60, 0.01)
        ours.append(time.perf_counter() - started)
        time.sleep(0.5)
    row(
        "tag move → updated, median",
        1000 * statistics.median(ours),
        1000 * statistics.median(floor),
        "ms",
        "create+start new, stop+remove old (SDK)",
    )
    row("tag move → updated, p95", 1000 * pct(ours, 0.95), 1000 * pct(floor, 0.95), "ms", "the same")


def resync_row(proc: subprocess.Popen[bytes], port: int) -> None:
    """SIGHUP: reload the maps and reconcile everything, with nothing to change."""
    name = "reconciler_reconcile_duration_seconds"
    count0, sum0 = metric(port, f"{name}_count"), metric(port, f"{name}_sum")
    proc.send_signal(signal.SIGHUP)
    wait(lambda: metric(port, f"{name}_count") > count0 and metric(port, "reconciler_queue_depth") == 0, 120, 0.05)
    count, total = metric(port, f"{name}_count") - count0, metric(port, f"{name}_sum") - sum0
    print(f"  {'full resync, nothing to do':<30} {1000 * total / count:>9.0f} ms  ({count:.0f} reconcile)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    idle_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    client = docker.from_env(timeout=120)
    api = client.api
    name = f"dbench{uuid.uuid4().hex[:6]}"
    tag = f"{name}-img:live"
    client.images.build(fileobj=io.BytesIO(f"FROM {IMAGE}\nLABEL gen=0\n".encode()), tag=tag, rm=True)
    folder = Path(tempfile.mkdtemp())
    (folder / "bench.yaml").write_text(map_text(name, n, tag))
    port = free_port()
    started = time.perf_counter()
    proc = start_daemon(folder, port)
    try:
        names = [f"{name}.updated", *(f"{name}.c{i}" for i in range(n - 1))]
        wait(lambda: all(running(api, c) for c in names), 600, 0.5)
        print(
            f"daemon managing {n} containers (all running {time.perf_counter() - started:.1f} s after its start); "
            f"{TRIALS} kill trials, 5 tag moves, {idle_seconds:.0f} s idle"
        )
        print(f"  {'figure':<30} {'ours':>13} {'baseline':>13} {'ratio':>7}   baseline")
        settled = settle(port)
        print(f"  (settled {settled:.1f} s after the last container ran: queue empty, no request for 5 s)")
        idle_rows(proc, port, idle_seconds)
        resync_row(proc, port)
        kill_rows(client, api, name, n)
        update_rows(client, api, name, tag)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        ids = [c["Id"] for c in api.containers(all=True, filters={"name": name})]
        for ident in ids:
            api.remove_container(ident, force=True, v=True)
        client.images.remove(tag, force=True)


if __name__ == "__main__":
    main()
