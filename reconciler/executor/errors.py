"""Engine errors as types, and the one place where retryable calls are retried.

Every failure of an engine call becomes either a `RetryableEngineError` (connection refused or reset, a read
timeout, 5xx, "removal already in progress", a container that is restarting) or a `PermanentEngineError`
(`NotFound`, `Conflict` — e.g. a name held by someone else —, a bad request). Only retryable errors are
retried, with exponential backoff and jitter (tenacity), by `retrying`; everything else fails at once.

Pulls fail in their own words (a registry's answer relayed by the engine, in the HTTP status or in the
progress stream): `classify_pull` reads them — missing or unauthorized images are permanent, a registry's
5xx, a reset or refused connection, a timeout and rate limits are retryable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import docker.errors
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential_jitter

T = TypeVar("T")


class EngineError(Exception):
    """A failed engine call; `status` is the HTTP status when the engine answered."""

    retryable = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableEngineError(EngineError):
    retryable = True


class PermanentEngineError(EngineError):
    pass


class NotFound(PermanentEngineError):
    pass


class Conflict(PermanentEngineError):
    pass


_RETRYABLE_409 = ("already in progress", "is restarting", "is paused", "is already being", "device or resource busy")


def _explanation(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or exc)


def classify(exc: BaseException) -> EngineError:
    """Turn any exception from the docker SDK or requests into our error types."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(_explanation(exc), 404)
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        text = _explanation(exc)
        if status == 404:
            return NotFound(text, status)
        if status == 409:
            if any(marker in text.lower() for marker in _RETRYABLE_409):
                return RetryableEngineError(text, status)
            return Conflict(text, status)
        if status is not None and status >= 500:
            if "no such" in text.lower():
                return NotFound(text, status)
            return RetryableEngineError(text, status)
        return PermanentEngineError(text, status)
    if isinstance(
        exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)
    ):
        return RetryableEngineError(f"engine unreachable: {exc}")
    if isinstance(exc, docker.errors.DockerException):
        return PermanentEngineError(str(exc))
    return PermanentEngineError(f"{type(exc).__name__}: {exc}")


_PULL_PERMANENT = (
    "not found",
    "manifest unknown",
    "unauthorized",
    "denied",
    "authentication required",
    "invalid reference",
    "does not exist",
    "no matching manifest",
)
_PULL_RETRYABLE = (
    "500",
    "502",
    "503",
    "504",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
    "connection reset",
    "connection refused",
    "broken pipe",
    "timeout",
    "timed out",
    "eof",
    "too many requests",
    "toomanyrequests",
    "temporary failure",
    "no such host",
)


def classify_pull(message: str, status: int | None = None) -> EngineError:
    """A failed pull's message (from the engine's HTTP answer or its progress stream) as an error type."""
    text = message.lower()
    if status == 404 or any(marker in text for marker in _PULL_PERMANENT):
        return NotFound(message, status) if status in (None, 404) else PermanentEngineError(message, status)
    if (status is not None and status >= 500) or any(marker in text for marker in _PULL_RETRYABLE):
        return RetryableEngineError(message, status)
    return PermanentEngineError(message, status)


def retrying(
    call: Callable[[], T],
    *,
    attempts: int = 5,
    max_delay: float = 60.0,
    sleep: Callable[[float], Any] | None = None,
) -> T:
    """Run `call`, classifying errors; retry retryable ones with exponential backoff and jitter."""

    def classified() -> T:
        try:
            return call()
        except Exception as exc:
            raise classify(exc) from exc

    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    retryer = Retrying(
        retry=retry_if_exception_type(RetryableEngineError),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_delay),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        reraise=True,
        **kwargs,
    )
    return retryer(classified)
