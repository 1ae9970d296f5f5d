"""The real engine works for tests: create, inspect and remove a labelled container from a test image."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

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


def test_the_engine_port_keeps_its_connections(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """docker-py keys its local-socket pools by each request's whole URL: forty inspects of forty names
    opened forty connections. The engine port keeps its connections, a few for the few requests at once."""
    from reconciler.executor.engine import DockerEngine

    opened: list[object] = []
    real = socket.socket.connect

    def counted(self: socket.socket, address: Any) -> None:
        opened.append(address)
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", counted)
    engine = DockerEngine()  # docker-py asks the engine's version here, on a connection of its own
    opened.clear()
    try:
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(lambda i: engine.inspect_container(f"{prefix}-absent-{i}"), range(40)))
        assert found == [None] * 40
        assert engine.request_count == 40
        assert 1 <= len(opened) <= 8, len(opened)
    finally:
        engine.close()
