"""Drift rules (DESIGN §4): each difference between desired and observed state as a typed reason.

Every rule returns `Drift` values naming the field, the wanted and the found value, and the fix it needs
(`Fix`, ordered by strength: recreating beats restarting beats starting beats updating in place beats running
an exec command). The rules are a superset of docker-map 1.1.1's update rules: removed environment
variables, removed ports and links, user, hostname, healthcheck and every other create/host option are
noticed too — the last ones through the spec hash label, so nothing is missed even without a specific rule.
Values the container got from its image (environment, command, user, exposed ports, healthcheck) count as
wanted when the map does not set them, so an unset key never looks like drift.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from reconciler.model.errors import looks_secret

from . import naming
from .desired import LIMIT_OPTIONS
from .observed import (
    ObservedContainer,
    ObservedEndpoint,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
)
from .resources import ContainerSpec, EndpointSpec, NetworkSpec, VolumeInitSpec, VolumeSpec

NON_RECOVERABLE_EXIT_CODES = frozenset({-127, -1})  # docker-map's defaults
LABEL_VOLUME_CREATED = naming.LABEL_VOLUME_CREATED
_ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")
_LIMIT_DEFAULTS: dict[str, Any] = {
    "Memory": 0,
    "MemoryReservation": 0,
    "KernelMemory": 0,
    "CpuShares": 0,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "BlkioWeight": 0,
    "NanoCpus": 0,
    "PidsLimit": 0,
}


class Fix(IntEnum):
    """What a drift needs, weakest first; a resource gets the strongest fix among its drifts."""

    NONE = 0  # reported only (e.g. a volume's driver changed: volumes are data, never recreated for it)
    EXEC = 1
    UPDATE = 2
    START = 3
    RESTART = 4
    RECREATE = 5
    CREATE = 6


class Reason(StrEnum):
    MISSING = "missing"
    IMAGE = "image"
    MOUNTS = "mounts"
    VOLUMES_FROM = "volumes_from"
    LINKS = "links"
    NETWORK_MODE = "network_mode"
    NETWORKS = "networks"
    ENV = "env"
    COMMAND = "command"
    ENTRYPOINT = "entrypoint"
    USER = "user"
    PORTS = "ports"
    EXPOSED = "exposed"
    HEALTHCHECK = "healthcheck"
    HOSTNAME = "hostname"
    STOP = "stop"
    OPTIONS = "options"  # the spec hash differs and no specific rule says why
    LIMITS = "limits"
    RESTART_POLICY = "restart_policy"
    STOPPED = "stopped"
    EXITED = "exited"  # stopped with a non-recoverable exit code
    EXEC = "exec"
    DEPENDENCY = "dependency"  # a dependency was recreated (cascade)
    VOLUME = "volume"
    INIT = "init"
    FOREIGN = "foreign"  # run by a container that is not ours (docker-map's, compose's): `adopt` takes it over
    NETWORK = "network"


@dataclass(frozen=True)
class Drift:
    reason: Reason
    field: str
    wanted: Any
    found: Any
    fix: Fix

    def describe(self, mask: bool = True) -> str:
        """Readable: `env FOO: 'a' → 'b'`; secret-looking environment values are never shown. Some reasons
        are worded for a person (`as_dict` keeps the machine values)."""
        worded = _worded(self)
        if worded is not None:
            return worded
        if self.reason is Reason.MISSING:
            return f"{self.field} missing" if self.fix is Fix.CREATE else f"{self.field} {self.found} → {self.wanted}"
        wanted, found = self.wanted, self.found
        if mask and self.reason is Reason.ENV and is_secret(self.field):
            wanted = "***" if wanted is not None else None
            found = "***" if found is not None else None
        name = f"{self.reason.value} {self.field}" if self.field and self.field != self.reason.value else self.reason
        return f"{name}: {_show(found)} → {_show(wanted)}"

    def as_dict(self, mask: bool = True) -> dict[str, Any]:
        wanted, found = self.wanted, self.found
        if mask and self.reason is Reason.ENV and is_secret(self.field):
            wanted = "***" if wanted is not None else None
            found = "***" if found is not None else None
        return {
            "reason": self.reason.value,
            "field": self.field,
            "wanted": _jsonable(wanted),
            "found": _jsonable(found),
            "fix": self.fix.name.lower(),
        }


def _worded(drift: Drift) -> str | None:
    """The reasons whose generic form needs decoding: image references, leftovers, orphans, cascades and
    healthchecks (durations in seconds, not a dict in nanoseconds)."""
    reason, field_ = drift.reason, drift.field
    if reason is Reason.IMAGE and field_ == "reference":
        return f"image: {drift.found} → {drift.wanted}"
    if reason is Reason.MISSING and field_ == "temporary":
        return "leftover replacement of an interrupted recreate"
    if reason is Reason.MISSING and field_ == "map":
        return "config removed from the map"
    if reason is Reason.DEPENDENCY:
        return f"{'restarted' if drift.fix is Fix.RESTART else 'recreated'} because {field_} was recreated"
    if reason is Reason.HEALTHCHECK:
        return f"healthcheck: {_health_text(drift.found)} → {_health_text(drift.wanted)}"
    return None


def _health_text(check: Any) -> str:
    """`{'Test': [...], 'Interval': 10**10}` → `test [CMD, true], interval 10s`."""
    if not isinstance(check, Mapping):
        return "(none)"
    parts = []
    for key, value in check.items():
        shown = _duration(value) if key in _HEALTH_DURATIONS and isinstance(value, int) else _show(value)
        parts.append(f"{key.lower().replace('startperiod', 'start_period')} {shown}")
    return ", ".join(parts) or "(none)"


_HEALTH_DURATIONS = frozenset({"Interval", "Timeout", "StartPeriod", "StartInterval"})


def _duration(nanoseconds: int) -> str:
    seconds = nanoseconds / 1e9
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def is_secret(name: str) -> bool:
    """One rule for what looks secret, the map errors' (`model.errors.looks_secret`)."""
    return looks_secret(name)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def strongest(drifts: list[Drift]) -> Fix:
    return max((d.fix for d in drifts), default=Fix.NONE)


# --- containers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerContext:
    """What a container's rules need besides its spec and inspect: images and the other containers."""

    observed: ObservedState
    update_persistent: bool = False
    rejected_images: frozenset[tuple[str, str]] = frozenset()  # (reference, id): an update that was rolled back
    apply_pending: bool = False  # `apply --update`: act on `notify` containers' newer images too
    waiting: frozenset[str] = frozenset()  # containers whose `auto` updates wait for their window


def container_drift(spec: ContainerSpec, found: ObservedContainer, ctx: ContainerContext) -> list[Drift]:
    """Every difference between a container's desired spec and its inspect, as typed reasons."""
    image = ctx.observed.images.get(found.image_id)  # the image the container runs (its defaults)
    drifts: list[Drift] = []
    image_drift = _image(spec, found, ctx)
    pending = [d for d in image_drift if d.fix is Fix.NONE]  # reported beside whatever else drifted
    recreate: list[Drift] = [d for d in image_drift if d.fix is not Fix.NONE]
    recreate += _mounts(spec, found, image)
    recreate += _volumes_from(spec, found, ctx.observed)
    recreate += _links(spec, found)
    recreate += _networks(spec, found, ctx.observed)
    recreate += _env(spec, found, image)
    recreate += _command(spec, found, image)
    recreate += _user(spec, found, image)
    recreate += _ports(spec, found, image)
    recreate += _healthcheck(spec, found, image)
    recreate += _hostname_and_stop(spec, found)
    if not recreate and found.spec_hash not in spec.spec_hashes:
        recreate.append(_spec_changed(spec, found))
    drifts += recreate
    drifts += _limits(spec, found)
    drifts += _state(spec, found)
    if not recreate:
        drifts += _exec(spec, found)
    return drifts + pending


def _image(spec: ContainerSpec, found: ObservedContainer, ctx: ContainerContext) -> list[Drift]:
    """A newer image for the tag: recreate (`auto`), or `Fix.NONE` — pending, reported only — for `notify`
    (unless `apply --update`) and for `auto` outside its window; `pinned` stays on the id it runs."""
    if (spec.persistent and not ctx.update_persistent) or spec.update == "pinned":
        return []
    wanted = ctx.observed.images.get(spec.image)
    if wanted is None or wanted.id == found.image_id:
        return []  # a missing image is pulled first; the container is compared again afterwards
    if (spec.image, wanted.id) in ctx.rejected_images:
        return []  # this image failed its health gate before: not again until the tag moves
    pending = (spec.update == "notify" and not ctx.apply_pending) or spec.name in ctx.waiting
    fix = Fix.NONE if pending else Fix.RECREATE
    return [Drift(Reason.IMAGE, spec.image, _short_id(wanted.id), _short_id(found.image_id), fix)]


def _spec_changed(spec: ContainerSpec, found: ObservedContainer) -> Drift:
    """No rule names the difference, but the spec hash differs. The map's `image:` reference is one such
    change (same image id, or its new tag not pulled yet): say that rather than the hash."""
    if found.image_ref and found.image_ref != spec.image:
        return Drift(Reason.IMAGE, "reference", spec.image, found.image_ref, Fix.RECREATE)
    return Drift(Reason.OPTIONS, "spec-hash", spec.spec_hash, found.spec_hash, Fix.RECREATE)


def _short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _mounts(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    drifts = []
    # tmpfs and other mount types pass through (host_config.mounts / tmpfs): the spec hash covers them.
    observed = {m.target: m for m in found.mounts if m.type in ("bind", "volume")}
    wanted_targets = {m.target for m in spec.mounts}
    for mount in spec.mounts:
        have = observed.get(mount.target)
        if have is None:
            drifts.append(
                Drift(Reason.MOUNTS, mount.target, _mount_text(mount.source, mount.read_only), None, Fix.RECREATE)
            )
        elif have.source != mount.source or have.read_only != mount.read_only or have.type != mount.type:
            drifts.append(
                Drift(
                    Reason.MOUNTS,
                    mount.target,
                    _mount_text(mount.source, mount.read_only),
                    _mount_text(have.source, have.read_only),
                    Fix.RECREATE,
                )
            )
    if not spec.volumes_from:
        implicit = set(spec.anonymous_volumes) | (set(image.volumes) if image else set())
        for target, have in sorted(observed.items()):
            if target in wanted_targets or target in implicit:
                continue
            if have.type == "volume" and _ANONYMOUS_VOLUME.match(have.source or ""):
                continue
            drifts.append(Drift(Reason.MOUNTS, target, None, _mount_text(have.source, have.read_only), Fix.RECREATE))
    for path in spec.anonymous_volumes:
        if path not in observed:
            drifts.append(Drift(Reason.MOUNTS, path, "(anonymous volume)", None, Fix.RECREATE))
    if tuple(sorted(spec.volumes_from)) != tuple(sorted(found.volumes_from)):
        drifts.append(
            Drift(
                Reason.VOLUMES_FROM, "volumes_from", sorted(spec.volumes_from), sorted(found.volumes_from), Fix.RECREATE
            )
        )
    return drifts


def _volumes_from(spec: ContainerSpec, found: ObservedContainer, observed: ObservedState) -> list[Drift]:
    """docker-map's rule for `uses: <config>`: at each of the provider's mount paths the consumer must have
    the provider's source (after an interrupted cascade it may still hold the old provider's volumes).
    The consumer's own mounts shadow the provider's, so their paths are not compared."""
    own = {m.target for m in spec.mounts}
    have = {m.target: m.source for m in found.mounts}
    provided: dict[str, set[str]] = {}  # target → sources (two providers may offer the same path)
    for entry in spec.volumes_from:
        provider = observed.containers.get(entry.split(":")[0])
        if provider is None:
            return []  # created in this plan: the cascade recreates the consumer anyway
        for mount in provider.mounts:
            if mount.type in ("bind", "volume") and mount.target not in own:
                provided.setdefault(mount.target, set()).add(mount.source)
    return [
        Drift(Reason.VOLUMES_FROM, target, sorted(sources), have.get(target), Fix.RECREATE)
        for target, sources in sorted(provided.items())
        if have.get(target) not in sources
    ]


def _mount_text(source: str, read_only: bool) -> str:
    return f"{source}:ro" if read_only else source


def user_network(spec: ContainerSpec) -> str | None:
    """The user-defined network a container runs on (`network_mode` naming one), if any."""
    mode = spec.network_mode or "bridge"
    if mode in ("bridge", "default", "host", "none") or mode.startswith("container:"):
        return None
    return mode


def _links(spec: ContainerSpec, found: ObservedContainer) -> list[Drift]:
    """Legacy links. On a user-defined network the engine stores them as that endpoint's links (with the
    endpoint's own), not in `HostConfig.Links`."""
    wanted = {f"{name}:{alias}" for name, alias in spec.links}
    have = {f"{name}:{alias}" for name, alias in found.links}
    primary = user_network(spec)
    if primary is not None:
        endpoint = next((e for e in spec.endpoints if e.network == primary), None)
        wanted |= {f"{name}:{alias}" for name, alias in (endpoint.links if endpoint else ())}
        have |= set(found.networks[primary].links) if primary in found.networks else set()
    drifts = [Drift(Reason.LINKS, link, link, None, Fix.RECREATE) for link in sorted(wanted - have)]
    drifts += [Drift(Reason.LINKS, link, None, link, Fix.RECREATE) for link in sorted(have - wanted)]
    return drifts


def _networks(spec: ContainerSpec, found: ObservedContainer, observed: ObservedState) -> list[Drift]:
    wanted_mode = spec.network_mode or "bridge"
    have_mode = found.network_mode or "bridge"
    if have_mode == "default":
        have_mode = "bridge"
    if wanted_mode.startswith("container:") and have_mode.startswith("container:"):
        return _shared_stack(wanted_mode, have_mode, observed)
    if wanted_mode != have_mode:
        return [Drift(Reason.NETWORK_MODE, "network_mode", wanted_mode, have_mode, Fix.RECREATE)]
    if wanted_mode.startswith("container:") or wanted_mode in ("host", "none"):
        return []
    wanted_networks: dict[str, EndpointSpec | None] = {e.network: e for e in spec.endpoints} or {wanted_mode: None}
    drifts = []
    for name, endpoint in sorted(wanted_networks.items()):
        have = found.networks.get(name)
        if have is None:
            drifts.append(Drift(Reason.NETWORKS, name, "connected", None, Fix.RECREATE))
        elif endpoint is not None:
            drifts += _endpoint(endpoint, have, compare_links=name != user_network(spec))
    for name in sorted(set(found.networks) - set(wanted_networks)):
        drifts.append(Drift(Reason.NETWORKS, name, None, "connected", Fix.RECREATE))
    return drifts


def _shared_stack(wanted_mode: str, have_mode: str, observed: ObservedState) -> list[Drift]:
    """`container:<name>`: the engine stores `container:<id>`; the map names the container (ours, or one
    outside the maps)."""
    wanted_id = observed.container_id(wanted_mode.removeprefix("container:"))
    have_id = have_mode.removeprefix("container:")
    prefix = len(have_id) >= 12 and wanted_id is not None and wanted_id.startswith(have_id)
    if wanted_id is not None and (wanted_id == have_id or prefix):
        return []
    other = observed.container_by_id(have_id)
    shown = f"container:{other.name}" if other else have_mode
    return [Drift(Reason.NETWORK_MODE, "network_mode", wanted_mode, shown, Fix.RECREATE)]


def _endpoint(endpoint: EndpointSpec, have: ObservedEndpoint, *, compare_links: bool) -> list[Drift]:
    """Aliases, links (unless `_links` compares them: the primary user network's) and a fixed address."""
    name = endpoint.network
    drifts = []
    missing_aliases = sorted(set(endpoint.aliases) - set(have.aliases))
    if missing_aliases:
        drifts.append(Drift(Reason.NETWORKS, f"{name} aliases", missing_aliases, sorted(have.aliases), Fix.RECREATE))
    wanted_links = sorted(f"{n}:{a}" for n, a in endpoint.links)
    have_links = sorted(have.links)
    if compare_links and wanted_links != have_links:
        drifts.append(Drift(Reason.NETWORKS, f"{name} links", wanted_links, have_links, Fix.RECREATE))
    if endpoint.ipv4_address and endpoint.ipv4_address != have.ipv4_address:
        drifts.append(Drift(Reason.NETWORKS, f"{name} ipv4", endpoint.ipv4_address, have.ipv4_address, Fix.RECREATE))
    return drifts


def _env(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    defaults = dict(image.env) if image else {}
    wanted = {**defaults, **spec.env}
    drifts = []
    for key in sorted(set(wanted) | set(found.env)):
        want, have = wanted.get(key), found.env.get(key)
        if want == have:
            continue
        if want is None and image is None:
            continue  # without the image's defaults we cannot tell an extra variable from an image default
        drifts.append(Drift(Reason.ENV, key, want, have, Fix.RECREATE))
    return drifts


def _command(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    drifts = []
    for reason, wanted, have, default in (
        (Reason.ENTRYPOINT, spec.entrypoint, found.entrypoint, image.entrypoint if image else None),
        (Reason.COMMAND, spec.command, found.cmd, image.cmd if image else None),
    ):
        if wanted is None and (image is None or (reason is Reason.COMMAND and spec.entrypoint is not None)):
            continue  # unknown image defaults; or a new entrypoint, which resets the image's command
        expected = default if wanted is None else wanted
        if tuple(expected or ()) != tuple(have or ()):
            drifts.append(Drift(reason, reason.value, list(expected or ()), list(have or ()), Fix.RECREATE))
    return drifts


def _user(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    wanted = spec.user if spec.user is not None else (image.user if image else found.user)
    if (wanted or "") != (found.user or ""):
        return [Drift(Reason.USER, "user", wanted or "", found.user or "", Fix.RECREATE)]
    return []


def _ports(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    drifts = []
    wanted: dict[str, set[tuple[str, str]]] = {}
    for port in spec.ports:
        if port.host_port is not None:
            wanted.setdefault(port.container_port, set()).add((port.host_ip or "", port.host_port))
    have = {p: {(ip or "", hp) for ip, hp in binds} for p, binds in found.port_bindings.items()}
    for key in sorted(set(wanted) | set(have)):
        if wanted.get(key, set()) != have.get(key, set()):
            drifts.append(
                Drift(
                    Reason.PORTS,
                    key,
                    _bindings(wanted.get(key)),
                    _bindings(have.get(key)),
                    Fix.RECREATE,
                )
            )
    exposed_wanted = {p.container_port for p in spec.ports} | (set(image.exposed_ports) if image else set())
    exposed_have = set(found.exposed_ports)
    if image is None:
        exposed_have &= exposed_wanted | set(wanted)
    drifts += [Drift(Reason.EXPOSED, p, "exposed", None, Fix.RECREATE) for p in sorted(exposed_wanted - exposed_have)]
    drifts += [Drift(Reason.EXPOSED, p, None, "exposed", Fix.RECREATE) for p in sorted(exposed_have - exposed_wanted)]
    return drifts


def _bindings(binds: set[tuple[str, str]] | None) -> list[str] | None:
    if not binds:
        return None
    return sorted(f"{ip}:{port}" if ip else port for ip, port in binds)


def _healthcheck(spec: ContainerSpec, found: ObservedContainer, image: ObservedImage | None) -> list[Drift]:
    own = dict(spec.healthcheck or {})
    if image is None:
        if not own:
            return []
        # Unknown image defaults: compare only what the map sets.
        have_all = found.healthcheck or {}
        wanted: Mapping[str, Any] | None = own
        have: Mapping[str, Any] | None = {k: have_all.get(k) for k in own}
    else:
        wanted = expected_healthcheck(own, image.healthcheck)
        have = found.healthcheck
    if _health_norm(wanted) != _health_norm(have):
        return [Drift(Reason.HEALTHCHECK, "healthcheck", _health_norm(wanted), _health_norm(have), Fix.RECREATE)]
    return []


def expected_healthcheck(own: Mapping[str, Any], image: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """What the engine stores: the container's fields, each one left out (or zero) taken from the image."""
    if not own:
        return image
    merged = {k: v for k, v in (image or {}).items() if v}
    merged.update({k: v for k, v in own.items() if v})
    return merged


def _health_norm(check: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not check:
        return None
    out = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in check.items() if v}
    if out.get("Test") == ["NONE"]:
        return {"Test": ["NONE"]}  # switched off: the other fields mean nothing
    return out or None


def _hostname_and_stop(spec: ContainerSpec, found: ObservedContainer) -> list[Drift]:
    drifts = []
    own_uts = spec.network_mode != "host" and not (spec.network_mode or "").startswith("container:")
    if spec.hostname and own_uts and spec.hostname != found.hostname:
        drifts.append(Drift(Reason.HOSTNAME, "hostname", spec.hostname, found.hostname, Fix.RECREATE))
    if spec.domainname and spec.domainname != found.domainname:
        drifts.append(Drift(Reason.HOSTNAME, "domainname", spec.domainname, found.domainname, Fix.RECREATE))
    if spec.stop_signal and spec.stop_signal != found.stop_signal:
        drifts.append(Drift(Reason.STOP, "stop_signal", spec.stop_signal, found.stop_signal, Fix.RECREATE))
    if spec.stop_timeout is not None and spec.stop_timeout != found.stop_timeout:
        drifts.append(Drift(Reason.STOP, "stop_timeout", spec.stop_timeout, found.stop_timeout, Fix.RECREATE))
    return drifts


def _limits(spec: ContainerSpec, found: ObservedContainer) -> list[Drift]:
    drifts = []
    wanted = dict(spec.limits)
    for key in sorted(set(LIMIT_OPTIONS.values()) | set(wanted)):
        if key == "MemorySwap" and key not in wanted:
            continue  # the engine derives it from Memory when unset
        if key not in wanted and key not in found.host_config:
            continue
        want = wanted.get(key, _LIMIT_DEFAULTS.get(key))
        have = found.host_config.get(key)
        if (want or _LIMIT_DEFAULTS.get(key)) != (have or _LIMIT_DEFAULTS.get(key)):
            # The engine cannot drop a limit in place (an update to 0 is ignored): only a new container can.
            fix = Fix.UPDATE if key in wanted and want else Fix.RECREATE
            drifts.append(Drift(Reason.LIMITS, key, want, have, fix))
    want_policy = dict(spec.restart_policy or {})
    want_name = want_policy.get("Name") or "no"
    have_name = found.restart_policy.get("Name") or "no"
    want_retries = int(want_policy.get("MaximumRetryCount") or 0)
    have_retries = int(found.restart_policy.get("MaximumRetryCount") or 0)
    if (want_name, want_retries) != (have_name, have_retries):
        drifts.append(
            Drift(
                Reason.RESTART_POLICY,
                "restart_policy",
                f"{want_name}:{want_retries}" if want_retries else want_name,
                f"{have_name}:{have_retries}" if have_retries else have_name,
                Fix.UPDATE,
            )
        )
    return drifts


def _state(spec: ContainerSpec, found: ObservedContainer) -> list[Drift]:
    if found.running:
        return []
    if found.status == "dead" or (found.status == "exited" and found.exit_code in NON_RECOVERABLE_EXIT_CODES):
        return [Drift(Reason.EXITED, "state", "running", f"{found.status} ({found.exit_code})", Fix.RECREATE)]
    if spec.persistent and found.status == "exited" and found.exit_code == 0:
        return []  # a persistent container may finish its job and stay exited
    state = found.status if found.status != "exited" else f"exited ({found.exit_code})"
    if found.oom_killed:
        state += ", OOM-killed"
    return [Drift(Reason.STOPPED, "state", "running", state, Fix.START)]


def _exec(spec: ContainerSpec, found: ObservedContainer) -> list[Drift]:
    if not found.running or (found.processes is None and found.execs is None):
        return []  # not looked at (no exec commands, or not running)
    drifts = []
    for command in spec.exec_commands:
        if command.policy != "restart":
            continue
        text = command.cmd if isinstance(command.cmd, str) else " ".join(command.cmd)
        if not _exec_running(command.cmd, text, found):
            drifts.append(Drift(Reason.EXEC, text, "running", None, Fix.EXEC))
    return drifts


def _exec_running(cmd: tuple[str, ...] | str, text: str, found: ObservedContainer) -> bool:
    """Running if the engine has a running exec instance with this very argv (as docker-py splits a string:
    shlex); for commands started by an older version or by hand, a process whose command line contains the
    text (`top`) counts too."""
    argv = tuple(shlex.split(cmd)) if isinstance(cmd, str) else tuple(cmd)
    if argv in (found.execs or ()):
        return True
    return any(text in line for line in found.processes or ())


# --- volumes, inits, networks --------------------------------------------------------------------------


def volume_drift(spec: VolumeSpec, found: ObservedVolume) -> list[Drift]:
    """Volumes are data: a changed driver is reported, never fixed by recreating the volume."""
    drifts = []
    if found.driver != spec.driver:
        drifts.append(Drift(Reason.VOLUME, "driver", spec.driver, found.driver, Fix.NONE))
    if dict(spec.driver_options) != dict(found.options):
        drifts.append(Drift(Reason.VOLUME, "driver_options", dict(spec.driver_options), dict(found.options), Fix.NONE))
    return drifts


def init_drift(spec: VolumeInitSpec, found: ObservedContainer, volume: ObservedVolume | None) -> list[Drift]:
    """A volume is prepared when its init ran with the current owner/permissions on this very volume."""
    drifts = []
    if found.spec_hash != spec.spec_hash:
        drifts.append(Drift(Reason.INIT, "owner/permissions", _init_text(spec), "changed", Fix.RECREATE))
    if volume is not None and found.labels.get(LABEL_VOLUME_CREATED) != volume.identity:
        drifts.append(Drift(Reason.INIT, "volume", "prepared", "volume was recreated", Fix.RECREATE))
    if found.status in ("exited", "dead") and found.exit_code != 0:
        drifts.append(Drift(Reason.INIT, "exit code", 0, found.exit_code, Fix.RECREATE))
    if found.status == "created":
        drifts.append(Drift(Reason.INIT, "state", "ran", "never started", Fix.RECREATE))
    if found.running:
        drifts.append(Drift(Reason.INIT, "state", "ran", "still running (interrupted?)", Fix.RECREATE))
    return drifts


def _init_text(spec: VolumeInitSpec) -> str:
    parts = []
    if spec.owner:
        parts.append(f"owner {spec.owner}")
    if spec.permissions:
        parts.append(f"mode {spec.permissions}")
    return ", ".join(parts)


def network_drift(spec: NetworkSpec, found: ObservedNetwork) -> list[Drift]:
    drifts = []
    if found.driver != spec.driver:
        drifts.append(Drift(Reason.NETWORK, "driver", spec.driver, found.driver, Fix.RECREATE))
    if found.internal != spec.internal:
        drifts.append(Drift(Reason.NETWORK, "internal", spec.internal, found.internal, Fix.RECREATE))
    for key, value in spec.driver_options:
        if found.options.get(key) != value:
            drifts.append(Drift(Reason.NETWORK, f"option {key}", value, found.options.get(key), Fix.RECREATE))
    if not drifts and found.labels.get(naming.LABEL_SPEC_HASH) not in (None, spec.spec_hash):
        drifts.append(
            Drift(Reason.NETWORK, "spec-hash", spec.spec_hash, found.labels.get(naming.LABEL_SPEC_HASH), Fix.RECREATE)
        )
    return drifts
