"""Edges of the spec hash that test_spec_hash.py does not pin: which values count as empty (left out) and
which do not, at the top level (both hashes) and inside nested values (the current hash).

An empty value left out means a field added later with that default changes no hash; inside nested values a
falsy value that is *not* empty (0) changes the hash (at the top level, 0 counts as empty: a pinned quirk).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from reconciler.plan.resources import ContainerSpec, Mount
from tests.unit.test_spec_hash import RICH


@pytest.mark.parametrize("empty", [None, "", (), False])
def test_an_empty_top_level_value_is_left_out_of_both_hashes(empty: Any) -> None:
    blank = dataclasses.replace(RICH, user=empty)
    assert blank.spec_hash == RICH.spec_hash
    assert blank.legacy_spec_hash == RICH.legacy_spec_hash


def test_a_top_level_zero_counts_as_empty_a_quirk_pinned_for_compatibility() -> None:
    """At the top level `stable_hash` leaves out values `in (None, "", (), [], {}, False)`, and `0 == False`:
    a zero (`stop_timeout: 0`) hashes like an unset field, in both hashes. Changing that would change the
    hash of every container with such a field (a recreate at upgrade), so it is pinned here; the field rule
    for `stop_timeout` still reports None → 0 (see test_drift_rules)."""
    zero = dataclasses.replace(RICH, stop_timeout=0)
    assert RICH.stop_timeout is None
    assert zero.spec_hash == RICH.spec_hash
    assert zero.legacy_spec_hash == RICH.legacy_spec_hash
    assert dataclasses.replace(RICH, stop_timeout=1).spec_hash != RICH.spec_hash


@dataclasses.dataclass(frozen=True)
class MountWithCollections(Mount):
    """A Mount as a later version might define it: new fields whose defaults are empty collections."""

    options: tuple[str, ...] = ()
    tags: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, str] = dataclasses.field(default_factory=dict)


def test_nested_empty_lists_and_dicts_added_later_change_nothing() -> None:
    more = dataclasses.replace(RICH, mounts=tuple(MountWithCollections(**dataclasses.asdict(m)) for m in RICH.mounts))
    assert more.spec_hash == RICH.spec_hash


def test_a_nested_zero_or_non_empty_value_changes_the_hash() -> None:
    @dataclasses.dataclass(frozen=True)
    class MountWithCount(Mount):
        count: int | None = None

    def with_count(value: int | None) -> ContainerSpec:
        return dataclasses.replace(
            RICH, mounts=tuple(MountWithCount(**dataclasses.asdict(m), count=value) for m in RICH.mounts)
        )

    assert with_count(None).spec_hash == RICH.spec_hash
    assert with_count(0).spec_hash != RICH.spec_hash  # 0 is a value, not "unset"
    assert with_count(0).spec_hash != with_count(1).spec_hash


def test_read_only_is_part_of_a_mounts_hash() -> None:
    flipped = dataclasses.replace(RICH, mounts=(dataclasses.replace(RICH.mounts[0], read_only=False), RICH.mounts[1]))
    assert flipped.spec_hash != RICH.spec_hash
