"""Engines for docker-map's clients: one `DockerEngine` per `ClientConfig`.

`base_url` may be `unix://`, `tcp://` (with `tls`: CA, client certificate and key, verify) or `ssh://`
(docker-py's own SSH support); a client without `base_url` is the local engine, found as docker-py finds it
(`DOCKER_HOST` or the default socket). Connecting asks the engine its API version (unless the client sets
`version`), so old engines work; an engine that cannot be reached fails its own client's work only.
A TLS client's session ignores REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which requests would otherwise put in
place of the client's own CA.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar

import docker.constants
import docker.errors
import docker.tls

from reconciler._lazy import docker_ssh, ssh_errors
from reconciler.model import MapSet
from reconciler.model.clients import DEFAULT_CLIENT, ClientConfig, clients_in_use, default_clients
from reconciler.model.errors import did_you_mean
from reconciler.plan.desired import desired_state
from reconciler.plan.resources import DesiredState

from .defaults import POOL_SIZE
from .engine import DEFAULT_TIMEOUT, DockerEngine, keep_connections
from .errors import EngineError, PermanentEngineError, classify

T = TypeVar("T")


def connect_client(client: ClientConfig, *, pool_size: int = POOL_SIZE, retry_for: float = 60.0) -> DockerEngine:
    """The engine of one client (its API version asked, unless the client sets one)."""
    timeout = client.timeout or DEFAULT_TIMEOUT
    if client.base_url is None and client.tls is None:
        return DockerEngine(timeout=timeout, pool_size=pool_size, retry_for=retry_for)
    if (client.base_url or "").startswith("ssh://"):
        docker_ssh()
    try:
        api = docker.APIClient(
            base_url=client.base_url,
            # "auto" would ask the engine now, before the session is set up (below); asked afterwards.
            version=client.version or docker.constants.MINIMUM_DOCKER_API_VERSION,
            timeout=int(timeout),
            tls=_tls(client),
            max_pool_size=pool_size,
        )
    except docker.errors.DockerException as exc:
        raise classify(exc) from exc
    except (ValueError, OSError) as exc:
        raise PermanentEngineError(f"client '{client.name}': {exc}") from exc
    except ssh_errors() as exc:  # ssh://: an unknown host key, a refused key, a failed handshake
        raise PermanentEngineError(f"client '{client.name}': ssh: {exc}") from exc
    if client.tls is not None:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's own CA: the client's CA would
        # be ignored wherever those are set (they often are). The client's TLS settings are the whole truth.
        api.trust_env = False
    if client.version is None:
        try:
            api._version = api._retrieve_server_version()  # docker-py's own "auto", now with the session ready
        except docker.errors.DockerException as exc:
            raise classify(exc) from exc
    keep_connections(api)
    engine = DockerEngine.from_api(api, timeout=timeout)
    engine.retry_for = retry_for
    return engine


def _tls(client: ClientConfig) -> docker.tls.TLSConfig | bool:
    if client.tls is None:
        return False
    tls = client.tls
    return docker.tls.TLSConfig(client_cert=tls.client_cert, ca_cert=tls.ca_cert, verify=tls.verify)


@dataclass(frozen=True)
class Deployment:
    """One client's share of the maps: the client and the desired state placed on it."""

    client: ClientConfig
    desired: DesiredState

    @property
    def name(self) -> str:
        return self.client.name


class UnknownClient(ValueError):
    """`--client NAME` names no client of the clients file."""


def deployments(
    maps: MapSet, clients: Mapping[str, ClientConfig] | None, only: Collection[str] | None = None
) -> list[Deployment]:
    """Each client the maps run on, with its desired state; sorted by client. Without a clients file the
    one client is `__default__`. `only` names the clients to use — also one the maps no longer place
    anything on, so that what a map left there (orphans after its `clients` changed) can be seen, pruned
    and taken down."""
    known = clients if clients is not None else default_clients()
    for name in only or ():
        if name not in known:
            raise UnknownClient(f"unknown client '{name}'{did_you_mean(name, known)}")
    used = clients_in_use(maps, clients) if clients is not None else [DEFAULT_CLIENT]
    chosen = sorted(c for c in known if c in only) if only else used
    return [Deployment(known[c], desired_state(maps, known[c], clients)) for c in chosen]


def connected(client: ClientConfig, run: Callable[[DockerEngine], T]) -> T:
    """`run` on the client's engine, once it answers; errors say which of the two failed."""
    try:
        engine = connect_client(client)
        engine.ping()
    except EngineError as exc:
        raise EngineError(f"cannot reach the Docker engine: {exc}") from None
    try:
        return run(engine)
    except EngineError as exc:
        raise EngineError(f"the Docker engine failed: {exc}") from None
    finally:
        engine.close()
