"""The executor's wave logic against a fake engine port (our own protocol — the engine itself is never
mocked in integration tests): a failed resource fails its dependents, independent resources carry on."""

from __future__ import annotations

import threading
from typing import Any

from reconciler.executor.apply import Executor, Outcome
from reconciler.executor.errors import PermanentEngineError
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import plan_update


class FakeEngine:
    """Just enough of `Engine` for creating containers; `fail` names make create_container fail."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.created: list[str] = []
        self.started: list[str] = []
        self.lock = threading.Lock()

    def inspect_container(self, ident: str) -> dict[str, Any] | None:
        with self.lock:
            if ident in self.created:
                return {
                    "Id": ident,
                    "Name": f"/{ident}",
                    "State": {"Running": ident in self.started},
                    "Config": {"Labels": {"io.reconciler.managed": "true"}},
                }
        return None

    def create_container(self, name: str, config: dict[str, Any]) -> str:
        if name in self.fail:
            raise PermanentEngineError(f"refused to create {name}", 400)
        with self.lock:
            self.created.append(name)
        return name

    def start(self, ident: str) -> None:
        with self.lock:
            self.started.append(ident)

    def exec_run(self, ident: str, cmd: Any, user: str | None) -> int:
        return 0


MAP = """
name: m
db: {image: x}
web: {image: x, links: db}
front: {image: x, links: web}
other: {image: x}
"""


def test_a_failed_resource_fails_its_dependents_and_independent_ones_carry_on() -> None:
    desired = desired_state(combine_maps([load_map_text(MAP)]))
    observed = ObservedState(images={"x:latest": _image()})
    plan = plan_update(desired, observed)
    engine = FakeEngine(fail={"m.db"})
    result = Executor(engine, concurrency=2).run(plan)  # type: ignore[arg-type]
    outcomes = {r.action.resource.name: r.outcome for r in result.results}
    assert outcomes == {
        "m.db": Outcome.FAILED,
        "m.web": Outcome.SKIPPED,
        "m.front": Outcome.SKIPPED,
        "m.other": Outcome.DONE,
    }
    assert engine.started == ["m.other"]
    skipped = next(r for r in result.results if r.action.resource.name == "m.front")
    assert skipped.error == "dependency container m.web failed"
    assert not result.ok
    assert result.summary() == "1 done, 1 failed, 2 skipped"


def _image() -> Any:
    from reconciler.plan.observed import parse_image

    return parse_image({"Id": "sha256:x", "RepoTags": ["x:latest"], "Config": {}})
