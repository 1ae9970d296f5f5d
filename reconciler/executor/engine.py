"""The engine port: the only code that calls the Docker SDK.

`Engine` is a typed protocol of the calls reconciler makes (lists, inspects, create/start/stop/remove,
pull, …) in Engine API terms: plain JSON dicts in and out. `DockerEngine` implements it over docker-py's
low-level `APIClient`, with a timeout on every call (a hung engine must never hang us), errors classified
into retryable and permanent ones, and retries for the retryable ones — all in `errors.retrying`. The
connection pool is sized to the worker count. Unit tests (and users testing their maps) use the in-memory
fake of this protocol shipped as `reconciler.testing.FakeEngine`; the real engine is never mocked in
integration tests.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import docker
import docker.errors
import docker.types
import requests
import urllib3.exceptions
from docker import auth
from docker.transport.basehttpadapter import BaseHTTPAdapter

from reconciler._lazy import docker_ssh

from .defaults import POOL_SIZE
from .errors import EngineError, NotFound, PermanentEngineError, RetryableEngineError, classify, classify_pull, retrying

Json = dict[str, Any]

DEFAULT_TIMEOUT = 60.0
PULL_IDLE_TIMEOUT = 60.0  # no progress message for this long: the registry (or the engine) stalls
PULL_TIMEOUT = 1800.0  # the whole pull, retries included


class Engine(Protocol):
    """The calls reconciler makes, in Engine API terms."""

    def ping(self) -> bool: ...
    def version(self) -> Json: ...
    def list_containers(self) -> list[Json]: ...
    def inspect_container(self, ident: str) -> Json | None: ...
    def top(self, ident: str) -> Json | None: ...
    def inspect_exec(self, exec_id: str) -> Json | None: ...
    def list_images(self) -> list[Json]: ...
    def inspect_image(self, ref: str) -> Json | None: ...
    def list_volumes(self) -> list[Json]: ...
    def inspect_volume(self, name: str) -> Json | None: ...
    def list_networks(self) -> list[Json]: ...
    def create_container(self, name: str, config: Json) -> str: ...
    def start(self, ident: str) -> None: ...
    def stop(self, ident: str, timeout: int | None) -> None: ...
    def restart(self, ident: str, timeout: int | None) -> None: ...
    def kill(self, ident: str, signal: str | None = None) -> None: ...
    def remove_container(self, ident: str, *, force: bool = False, volumes: bool = False) -> None: ...
    def rename(self, ident: str, name: str) -> None: ...
    def wait(self, ident: str, timeout: float) -> int: ...
    def update_container(self, ident: str, settings: Json) -> None: ...
    def exec_run(self, ident: str, cmd: list[str] | str, user: str | None) -> int: ...
    def logs(self, ident: str, tail: int = 20) -> str: ...
    def create_volume(self, name: str, driver: str, options: Mapping[str, str], labels: Mapping[str, str]) -> Json: ...
    def remove_volume(self, name: str) -> None: ...
    def create_network(self, name: str, config: Json) -> str: ...
    def remove_network(self, ident: str) -> None: ...
    def disconnect(self, network: str, container: str) -> None: ...
    def inspect_network(self, ident: str) -> Json | None: ...
    def pull(
        self,
        ref: str,
        progress: Callable[[Json], None] | None = None,
        *,
        idle_timeout: float = PULL_IDLE_TIMEOUT,
        timeout: float = PULL_TIMEOUT,
    ) -> None: ...
    def registry_digest(self, ref: str) -> str | None: ...
    def events(self) -> EventStream: ...


class CountingEngine(Engine, Protocol):
    """An `Engine` that counts its API calls (the daemon's idle check and metrics read it)."""

    @property
    def request_count(self) -> int: ...


class EventStream(Protocol):
    """A live stream of engine events; `close()` from another thread ends the iteration."""

    def __iter__(self) -> Iterator[Json]: ...
    def close(self) -> None: ...


class DockerEngine:
    """`Engine` over docker-py's APIClient; found as the docker CLI finds it (DOCKER_HOST or the socket)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        pool_size: int = POOL_SIZE,
        attempts: int = 5,
        retry_for: float = 60.0,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        """`attempts` and `retry_for` bound the retries of a transient error (whichever ends first)."""
        if (base_url or os.environ.get("DOCKER_HOST", "")).startswith("ssh://"):
            docker_ssh()
        try:
            if base_url is None:
                client = docker.from_env(timeout=int(timeout), max_pool_size=pool_size)
                self.api: docker.APIClient = client.api
            else:
                self.api = docker.APIClient(base_url=base_url, timeout=int(timeout), max_pool_size=pool_size)
        except docker.errors.DockerException as exc:
            raise classify(exc) from exc
        _skip_proxy_lookup(self.api)
        keep_connections(self.api)
        self.timeout = timeout
        self.attempts = attempts
        self.retry_for = retry_for
        self.sleep = sleep
        self._requests = 0
        self._lock = threading.Lock()

    @classmethod
    def for_client(cls, client: Any) -> DockerEngine:
        """The port for what a docker-map caller passes: a client (`DockerClientWrapper`, docker-py's
        APIClient or DockerClient), a base URL, or nothing (the environment, as the docker CLI)."""
        if client is None:
            return cls()
        if isinstance(client, str):
            url = client
            if url.startswith("unix://") and not url.startswith("unix:///"):
                url = "unix:///" + url.removeprefix("unix://")  # docker-map's docs write unix://var/run/…
            return cls(base_url=url)
        api = getattr(client, "api", client)
        if isinstance(api, docker.APIClient):
            return cls.from_api(api)
        raise TypeError(f"cannot use {type(client).__name__} as a Docker client")

    @classmethod
    def from_api(cls, api: docker.APIClient, *, timeout: float = DEFAULT_TIMEOUT, attempts: int = 5) -> DockerEngine:
        """Wrap an existing docker-py APIClient (e.g. a caller's `DockerClientWrapper`)."""
        engine = cls.__new__(cls)
        engine.api = api
        engine.timeout = timeout
        engine.attempts = attempts
        engine.retry_for = 60.0
        engine.sleep = None
        engine._requests = 0
        engine._lock = threading.Lock()
        return engine

    # --- plumbing ------------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Engine API calls made so far (benchmarks and the daemon's idle check read it)."""
        return self._requests

    def _call(self, func: Callable[[], Any], max_delay: float | None = None) -> Any:
        def counted() -> Any:
            with self._lock:
                self._requests += 1
            return func()

        limit = self.retry_for if max_delay is None else max_delay
        return retrying(counted, attempts=self.attempts, max_delay=limit, sleep=self.sleep)

    def _maybe(self, func: Callable[[], Any]) -> Any:
        try:
            return self._call(func)
        except NotFound:
            return None

    def close(self) -> None:
        self.api.close()

    # --- reads ---------------------------------------------------------------------------------------

    def ping(self) -> bool:
        return bool(self._call(self.api.ping))

    def version(self) -> Json:
        result: Json = self._call(self.api.version)
        return result

    def list_containers(self) -> list[Json]:
        result: list[Json] = self._call(lambda: self.api.containers(all=True))
        return result

    def inspect_container(self, ident: str) -> Json | None:
        result: Json | None = self._maybe(lambda: self.api.inspect_container(ident))
        return result

    def inspect_exec(self, exec_id: str) -> Json | None:
        """`GET /exec/{id}/json`; None once the engine has forgotten it."""
        result: Json | None = self._maybe(lambda: self.api.exec_inspect(exec_id))
        return result

    def top(self, ident: str) -> Json | None:
        try:
            result: Json = self._call(lambda: self.api.top(ident))
        except NotFound:
            return None
        except Exception as exc:  # a container that stopped meanwhile answers 409/500: no processes
            if getattr(exc, "status", None) in (409, 500):
                return None
            raise
        return result

    def list_images(self) -> list[Json]:
        result: list[Json] = self._call(self.api.images)
        return result

    def inspect_image(self, ref: str) -> Json | None:
        result: Json | None = self._maybe(lambda: self.api.inspect_image(ref))
        return result

    def registry_digest(self, ref: str) -> str | None:
        """The manifest digest the registry has for `ref` now, asked by the engine (with its credentials;
        a HEAD of the manifest, no layers), or None when the registry does not know the tag."""
        found: Json | None = self._maybe(lambda: self.api.inspect_distribution(ref))
        if found is None:
            return None
        digest = (found.get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None

    def list_volumes(self) -> list[Json]:
        result: Json = self._call(self.api.volumes)
        return list(result.get("Volumes") or [])

    def inspect_volume(self, name: str) -> Json | None:
        result: Json | None = self._maybe(lambda: self.api.inspect_volume(name))
        return result

    def list_networks(self) -> list[Json]:
        result: list[Json] = self._call(self.api.networks)
        return result

    def logs(self, ident: str, tail: int = 20) -> str:
        data = self._maybe(lambda: self.api.logs(ident, tail=tail))
        return data.decode(errors="replace") if isinstance(data, bytes) else ""

    # --- containers ----------------------------------------------------------------------------------

    def create_container(self, name: str, config: Json) -> str:
        """`config` holds docker-py create_container kwargs plus `host_config` kwargs and `networking`."""
        kwargs = dict(config)
        host_kwargs = kwargs.pop("host_config", {})
        networking = kwargs.pop("networking", None)

        def create() -> Json:
            host_config = self.api.create_host_config(**host_kwargs)
            networking_config = None
            if networking:
                networking_config = self.api.create_networking_config(
                    {net: self.api.create_endpoint_config(**ep) for net, ep in networking.items()}
                )
            result: Json = self.api.create_container(
                name=name, host_config=host_config, networking_config=networking_config, **kwargs
            )
            return result

        result = self._call(create)
        return str(result["Id"])

    def start(self, ident: str) -> None:
        self._call(lambda: self.api.start(ident))

    def stop(self, ident: str, timeout: int | None) -> None:
        # docker-py adds the grace period to the client timeout, so a slow stop is not cut short.
        grace = 10 if timeout is None else timeout
        self._call(lambda: self.api.stop(ident, timeout=grace))

    def restart(self, ident: str, timeout: int | None) -> None:
        grace = 10 if timeout is None else timeout
        self._call(lambda: self.api.restart(ident, timeout=grace))

    def kill(self, ident: str, signal: str | None = None) -> None:
        self._call(lambda: self.api.kill(ident, signal=signal) if signal else self.api.kill(ident))

    def remove_container(self, ident: str, *, force: bool = False, volumes: bool = False) -> None:
        """`volumes`: the container's anonymous volumes go with it (the engine keeps those another
        container still uses, and never touches named volumes)."""
        with contextlib.suppress(NotFound):  # already gone: removing is idempotent
            self._call(lambda: self.api.remove_container(ident, force=force, v=volumes))

    def rename(self, ident: str, name: str) -> None:
        self._call(lambda: self.api.rename(ident, name))

    def wait(self, ident: str, timeout: float) -> int:
        result: Json = self._call(lambda: self.api.wait(ident, timeout=timeout))
        return int(result.get("StatusCode", -1))

    def update_container(self, ident: str, settings: Json) -> None:
        url = self.api._url("/containers/{0}/update", ident)  # the raw endpoint takes every updatable field

        def update() -> None:
            response = self.api._post_json(url, data=settings)
            self.api._raise_for_status(response)

        self._call(update)

    def exec_run(self, ident: str, cmd: list[str] | str, user: str | None) -> int:
        def run() -> int:
            created = self.api.exec_create(ident, cmd, user=user or "")
            self.api.exec_start(created["Id"], detach=True)
            return 0

        result: int = self._call(run)
        return result

    # --- volumes, networks, images -------------------------------------------------------------------

    def create_volume(self, name: str, driver: str, options: Mapping[str, str], labels: Mapping[str, str]) -> Json:
        result: Json = self._call(
            lambda: self.api.create_volume(name, driver=driver, driver_opts=dict(options) or None, labels=dict(labels))
        )
        return result

    def remove_volume(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(lambda: self.api.remove_volume(name))

    def create_network(self, name: str, config: Json) -> str:
        result: Json = self._call(lambda: self.api.create_network(name, **config))
        return str(result["Id"])

    def remove_network(self, ident: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(lambda: self.api.remove_network(ident))

    def inspect_network(self, ident: str) -> Json | None:
        result: Json | None = self._maybe(lambda: self.api.inspect_network(ident))
        return result

    def disconnect(self, network: str, container: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(lambda: self.api.disconnect_container_from_network(container, network, force=True))

    def events(self) -> EventStream:
        """The engine's event stream (no read timeout: it may be silent for hours)."""
        stream: EventStream = self._call(lambda: _events(self.api))
        return stream

    def pull(
        self,
        ref: str,
        progress: Callable[[Json], None] | None = None,
        *,
        idle_timeout: float = PULL_IDLE_TIMEOUT,
        timeout: float = PULL_TIMEOUT,
    ) -> None:
        """Pull `ref`. docker-py pulls with no timeout at all, so a registry that stalls mid-layer would hang
        us forever: here every read of the progress stream waits at most `idle_timeout`, and the pull with
        its retries (transient registry errors only, see `classify_pull`) ends after `timeout`."""
        repository, tag = split_reference(ref)
        deadline = time.monotonic() + timeout

        def attempt() -> None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PermanentEngineError(f"pull {ref}: not done within {timeout:g}s")
            response = self._pull_request(ref, repository, tag, min(idle_timeout, remaining))
            try:
                for event in self.api._stream_helper(response, decode=True):
                    if "error" in event:
                        raise classify_pull(f"pull {ref}: {event['error']}")
                    if time.monotonic() > deadline:
                        raise PermanentEngineError(f"pull {ref}: not done within {timeout:g}s")
                    if progress is not None:
                        progress(event)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise RetryableEngineError(f"pull {ref}: no progress for {idle_timeout:g}s or cut off: {exc}") from exc
            finally:
                response.close()

        self._call(attempt, max_delay=timeout)

    def _pull_request(self, ref: str, repository: str, tag: str | None, read_timeout: float) -> Any:
        """`POST /images/create` as docker-py sends it (with the registry's credentials), but with a read
        timeout: it bounds every wait for the next progress message."""
        registry, _ = auth.resolve_repository_name(repository)
        headers = {}
        header = auth.get_config_header(self.api, registry)
        if header:
            headers["X-Registry-Auth"] = header
        params = {"fromImage": repository, "tag": tag}
        try:
            response = self.api._post(
                self.api._url("/images/create"),
                params=params,
                headers=headers,
                stream=True,
                timeout=(self.timeout, read_timeout),
            )
            self.api._raise_for_status(response)
        except docker.errors.APIError as exc:
            raise classify_pull(f"pull {ref}: {classify(exc)}", exc.status_code) from exc
        except EngineError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        return response


EVENT_TYPES = ("container", "image", "volume", "network")


def _skip_proxy_lookup(api: docker.APIClient) -> None:
    """Over the local socket, no proxy or netrc applies: requests would still look them up in the
    environment for every request (a tenth of a no-op `apply`'s observation)."""
    if str(api.base_url).startswith("http+docker://"):
        api.trust_env = False


def keep_connections(api: docker.APIClient) -> None:
    """docker-py keys the connection pools of its local-socket and ssh transports by each request's whole
    URL, so a request on a container's own path (`/containers/<id>/start`) gets a pool — and a new
    connection — of its own, and the 25 pools it keeps close one as each new one comes: a connect and a close
    per request (a cold apply of 40 containers: 179 connects for 183 requests). Keyed by the engine, the
    connections are kept and reused. (requests' own adapter, for tcp:// and TLS, already keys by host.)"""
    adapter = getattr(api, "_custom_adapter", None)
    if not isinstance(adapter, BaseHTTPAdapter):
        return

    def by_engine(request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        parts = urlsplit(request.url)
        return adapter.get_connection(f"{parts.scheme}://{parts.netloc}", proxies)

    adapter.get_connection_with_tls_context = by_engine


def _events(api: docker.APIClient) -> EventStream:
    stream: EventStream = api.events(decode=True, filters={"type": list(EVENT_TYPES)})
    return stream


def split_reference(ref: str) -> tuple[str, str | None]:
    """`registry:5000/app:1.2` → (`registry:5000/app`, `1.2`); digests stay with the repository."""
    if "@" in ref:
        return ref, None
    head, _, last = ref.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return (f"{head}/{name}" if head else name), tag
    return ref, "latest"
