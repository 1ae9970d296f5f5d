"""Registry polling (`--poll-images`): pull a tag only when the registry has another manifest for it.

Only tags of `auto` and `notify` containers are asked about — a `pinned` container's tag is never polled.
For each, the engine asks the registry for the tag's manifest digest (`GET /distribution/…/json`: a HEAD
of the manifest with the engine's own credentials, no layers) and compares it with the digests the local
image was pulled by; only a different digest is pulled. A pull that moves the tag shows up as image events,
which reconcile everything — the policy then decides (recreate, or report as pending).
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.executor.engine import Engine
from reconciler.executor.errors import EngineError
from reconciler.logs import get_logger
from reconciler.plan.observed import parse_image
from reconciler.plan.resources import ContainerSpec

log = get_logger(__name__)
POLLED_POLICIES = frozenset({"auto", "notify"})


def polled_images(containers: Iterable[ContainerSpec]) -> list[str]:
    """The tags worth asking a registry about: those of `auto` and `notify` containers."""
    return sorted({spec.image for spec in containers if spec.update in POLLED_POLICIES})


def poll(engine: Engine, refs: Iterable[str]) -> list[str]:
    """Pull the refs whose registry digest differs from the local image's; the refs pulled."""
    pulled = []
    for ref in refs:
        try:
            if _newer(engine, ref):
                engine.pull(ref)  # a moved tag shows up as image events, which do the rest
                pulled.append(ref)
        except EngineError as exc:
            log.warning("polling an image failed", image=ref, error=str(exc))
    return pulled


def _newer(engine: Engine, ref: str) -> bool:
    remote = engine.registry_digest(ref)
    if remote is None:
        log.debug("registry does not know the tag", image=ref)
        return False
    local = engine.inspect_image(ref)
    if local is not None and remote in parse_image(local).digests:
        log.debug("registry digest unchanged: not pulled", image=ref)
        return False
    log.info("registry has a newer image", image=ref, digest=remote[:19])
    return True
