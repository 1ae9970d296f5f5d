"""Test your maps without an engine: an in-memory fake of reconciler's engine port, shipped with it.

    from reconciler.api import MappingDockerClient, load_map_file
    from reconciler.testing import FakeEngine

    engine = FakeEngine(images={"nginx:1.27": {"cmd": ["nginx", "-g", "daemon off;"]}})
    client = MappingDockerClient(load_map_file("site.yaml"), engine=engine)
    assert client.startup("web").ok
    assert client.plan().plan.in_sync              # the engine now matches the map
    assert "site.web" in engine.running()

`FakeEngine` (`engine`) implements the whole `reconciler.executor.engine.Engine` protocol (mypy checks it)
over plain inspect JSON, and answers as the engine does: what it stores for a create is what the engine
stores for what the executor sends (`containers`, `images`, `normalise`: the image's defaults merged in,
paths cleaned, links rewritten), names are unique, a running container is not removed without `force`.
It records every call (`calls`, `ops()`), and has knobs for failures (`fail_start`, `fail_create`, …).

For tests of the planner alone: `synthesize(desired)` (`snapshot`) is the engine that did exactly what a
desired state says, as an `EngineSnapshot` whose `observed()` is what observation would make of it; the
`*_json` builders give single inspect answers to change.

This package sits above the executor and the planner and is never imported by the product itself (an
import-linter contract in pyproject.toml says so); it needs no test framework.
"""

from .containers import container_json, container_labels, engine_container, stranger_container_json
from .engine import Call, FakeEngine
from .ids import container_id, hex_id, image_id
from .images import DEFAULT_PATH, image_json
from .resources import init_json, network_json, volume_json
from .snapshot import EngineSnapshot, synthesize
from .states import state_json, top_lines

__all__ = [
    "DEFAULT_PATH",
    "Call",
    "EngineSnapshot",
    "FakeEngine",
    "container_id",
    "container_json",
    "container_labels",
    "engine_container",
    "hex_id",
    "image_id",
    "image_json",
    "init_json",
    "network_json",
    "state_json",
    "stranger_container_json",
    "synthesize",
    "top_lines",
    "volume_json",
]
