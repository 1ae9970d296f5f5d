"""Engine errors as types, and retries with backoff in one place (sleep injected, so no real waiting)."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from reconciler.executor.errors import (
    Conflict,
    NotFound,
    PermanentEngineError,
    RetryableEngineError,
    classify,
    retrying,
)


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(explanation, response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (api_error(404, "No such container: x"), NotFound),
        (api_error(409, 'Conflict. The container name "/m.app" is already in use'), Conflict),
        (api_error(409, "removal of container abc is already in progress"), RetryableEngineError),
        (api_error(409, "Container abc is restarting, wait until the container is running"), RetryableEngineError),
        (api_error(500, "driver failed programming external connectivity"), RetryableEngineError),
        (api_error(500, "No such image: nginx:latest"), NotFound),
        (api_error(400, "invalid reference format"), PermanentEngineError),
        (requests.exceptions.ConnectionError("connection refused"), RetryableEngineError),
        (requests.exceptions.ReadTimeout("read timed out"), RetryableEngineError),
        (docker.errors.DockerException("Error while fetching server API version"), PermanentEngineError),
    ],
)
def test_classification(error: Exception, kind: type) -> None:
    classified = classify(error)
    assert type(classified) is kind
    assert classified.retryable is (kind is RetryableEngineError)


def test_retryable_errors_are_retried_with_growing_backoff() -> None:
    sleeps: list[float] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise requests.exceptions.ConnectionError("reset")
        return "ok"

    assert retrying(flaky, sleep=sleeps.append) == "ok"
    assert len(calls) == 4
    assert len(sleeps) == 3
    assert sleeps[2] > sleeps[0]  # exponential (with a little jitter)


def test_permanent_errors_fail_at_once_and_retries_are_bounded() -> None:
    sleeps: list[float] = []
    with pytest.raises(Conflict):
        retrying(lambda: (_ for _ in ()).throw(api_error(409, "name in use")), sleep=sleeps.append)
    assert sleeps == []
    with pytest.raises(RetryableEngineError):
        retrying(lambda: (_ for _ in ()).throw(api_error(503, "busy")), attempts=3, sleep=sleeps.append)
    assert len(sleeps) == 2
