"""The session-end leak check's bookkeeping (tests/integration/leaks.py), on recorded event shapes of 26.1.5:
which containers are the session's and which anonymous volumes were made for them — never anyone else's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.conftest import SESSION, TEST_LABEL
from tests.integration.leaks import SessionObjects

ANON = "efa8a009ab3bf8fecf3a4f6ebf11721b779659781e8818e3707b8b4e687ccfb2"
OTHER_ANON = "59b9fcfd0666" + "0" * 52


class _Silent:
    """A client whose event stream is empty: the test feeds `_note` itself."""

    def events(self, **_filters: Any) -> Iterator[dict[str, Any]]:
        return iter(())

    def close(self) -> None:
        return None


def created(ident: str, name: str, **labels: str) -> dict[str, Any]:
    return {"Type": "container", "Action": "create", "Actor": {"ID": ident, "Attributes": {"name": name, **labels}}}


def mounted(volume: str, container: str) -> dict[str, Any]:
    attributes = {"container": container, "destination": "/data", "driver": "local"}
    return {"Type": "volume", "Action": "mount", "Actor": {"ID": volume, "Attributes": attributes}}


def test_only_anonymous_volumes_of_the_sessions_containers_are_the_sessions() -> None:
    tracked = SessionObjects(_Silent)
    try:
        tracked._note(created("c1", f"{SESSION}-m.app"))
        tracked._note(created("c2", "strangers-name", **{TEST_LABEL: SESSION}))  # labelled by a test
        tracked._note(created("c3", "someone-else.app"))  # another engineer's container
        tracked._note(mounted(ANON, "c1"))
        tracked._note(mounted(f"{SESSION}-m.data", "c1"))  # named: swept by its name, not tracked here
        tracked._note(mounted(OTHER_ANON, "c3"))
        assert tracked.containers == {"c1", "c2"}
        assert tracked.anonymous_volumes() == {ANON}
    finally:
        tracked.close()


def test_a_container_renamed_into_the_session_counts() -> None:
    tracked = SessionObjects(_Silent)
    try:
        tracked._note({"Type": "container", "Action": "rename", "Actor": {"ID": "c9", "Attributes": {"name": SESSION}}})
        tracked._note(mounted(ANON, "c9"))
        assert tracked.anonymous_volumes() == {ANON}
    finally:
        tracked.close()
