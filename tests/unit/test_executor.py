"""The executor's wave logic against a fake engine port (our own protocol — the engine itself is never
mocked in integration tests): a failed resource fails its dependents, independent resources carry on."""

from __future__ import annotations

from typing import Any

from reconciler.executor.apply import Executor, Outcome
from reconciler.model import combine_maps, load_map_text
from reconciler.plan.desired import desired_state
from reconciler.plan.observed import ObservedState
from reconciler.plan.planner import plan_update
from reconciler.testing import FakeEngine


class FailingCreates(FakeEngine):
    """The shipped fake of the `Engine` port (holding the image `x:latest`); `fail` names make create_container fail."""

    def __init__(self, fail: set[str]) -> None:
        super().__init__(images={"x:latest": {}})
        self.fail_create = fail

    @property
    def started(self) -> list[str]:
        return [call[1] for call in self.ops("start")]


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
    engine = FailingCreates(fail={"m.db"})
    result = Executor(engine, concurrency=2).run(plan)
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
