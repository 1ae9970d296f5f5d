"""The real engine works for tests: create, inspect and remove a labelled container from a test image."""

from __future__ import annotations

from typing import Any

from tests.conftest import TEST_IMAGE


def test_labelled_container_round_trip(docker_client: Any, prefix: str, test_labels: dict[str, str]) -> None:
    name = f"{prefix}.engine-check"
    labels = {**test_labels, "io.reconciler.managed": "true"}
    container = docker_client.containers.create(
        TEST_IMAGE,
        ["sh", "-c", "trap 'exit 0' TERM; id -u > /tmp/uid; sleep 30 & wait"],
        name=name,
        labels=labels,
        user="2000",
    )
    try:
        container.start()
        inspected = docker_client.api.inspect_container(name)
        assert inspected["Name"] == f"/{name}"
        assert inspected["Config"]["Labels"]["io.reconciler.managed"] == "true"
        assert inspected["Config"]["User"] == "2000"
        assert inspected["State"]["Running"] is True
        exit_code, output = container.exec_run(["id", "-u"])
        assert (exit_code, output.strip()) == (0, b"2000")
        container.stop(timeout=5)
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 0  # the TERM trap ran: a clean stop
    finally:
        container.remove(v=True, force=True)
    assert not docker_client.containers.list(all=True, filters={"name": name})
