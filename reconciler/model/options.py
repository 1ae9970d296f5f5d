"""`create_options` and `host_config` checked against docker-py's keywords, so that `validate` finds what
would fail at create time.

docker-map passes `create_options` to docker-py's `create_container` and `host_config` to
`create_host_config` (`HostConfig`); an unknown keyword there is a `TypeError` when the container is created,
long after the map was accepted, and a limit of the wrong type is HostConfig's `host_config_type_error`.
Older docker-map maps write limits and a few host settings in `create_options` (docker-py 1.x took them
there); the planner moves those (`plan.desired.LIMIT_OPTIONS`, `plan.options.HOST_KEYS`) and they are
accepted here. The keyword lists are docker-py 7.x's signatures, pinned by a unit test against the
installed docker-py (this package may not import docker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import KeyPath, MapProblem, did_you_mean
from .schema import ContainerMapModel
from .yamlfile import Positions

CREATE_KWARGS = frozenset(
    [
        "image",
        "command",
        "hostname",
        "user",
        "detach",
        "stdin_open",
        "tty",
        "ports",
        "environment",
        "volumes",
        "network_disabled",
        "name",
        "entrypoint",
        "working_dir",
        "domainname",
        "host_config",
        "mac_address",
        "labels",
        "stop_signal",
        "networking_config",
        "healthcheck",
        "stop_timeout",
        "runtime",
        "use_config_proxy",
        "platform",
    ]
)
HOST_KWARGS = frozenset(
    [
        "version",
        "binds",
        "port_bindings",
        "lxc_conf",
        "publish_all_ports",
        "links",
        "privileged",
        "dns",
        "dns_search",
        "volumes_from",
        "network_mode",
        "restart_policy",
        "cap_add",
        "cap_drop",
        "devices",
        "extra_hosts",
        "read_only",
        "pid_mode",
        "ipc_mode",
        "security_opt",
        "ulimits",
        "log_config",
        "mem_limit",
        "memswap_limit",
        "mem_reservation",
        "kernel_memory",
        "mem_swappiness",
        "cgroup_parent",
        "group_add",
        "cpu_quota",
        "cpu_period",
        "blkio_weight",
        "blkio_weight_device",
        "device_read_bps",
        "device_write_bps",
        "device_read_iops",
        "device_write_iops",
        "oom_kill_disable",
        "shm_size",
        "sysctls",
        "tmpfs",
        "oom_score_adj",
        "dns_opt",
        "cpu_shares",
        "cpuset_cpus",
        "userns_mode",
        "uts_mode",
        "pids_limit",
        "isolation",
        "auto_remove",
        "storage_opt",
        "init",
        "init_path",
        "volume_driver",
        "cpu_count",
        "cpu_percent",
        "nano_cpus",
        "cpuset_mems",
        "runtime",
        "mounts",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "device_cgroup_rules",
        "device_requests",
        "cgroupns",
    ]
)
# Set by reconciler itself from the config (the engine port passes them): writing them would clash.
_OWN = {
    "image": "the config's `image`",
    "name": "the container name (<map>.<config>[.<instance>])",
    "host_config": "the config's `host_config`",
    "networking_config": "the config's `networks`",
    "version": "the engine's API version",
}
# Host settings that older maps put into create_options and that the planner moves to the host config.
_MOVED_FROM_CREATE = frozenset(
    [
        "mem_limit",
        "memswap_limit",
        "mem_reservation",
        "kernel_memory",
        "cpu_shares",
        "cpu_period",
        "cpu_quota",
        "cpuset_cpus",
        "cpuset_mems",
        "blkio_weight",
        "nano_cpus",
        "pids_limit",
        "restart_policy",
        "binds",
        "mounts",
        "port_bindings",
        "links",
        "volumes_from",
        "network_mode",
    ]
)
# Value types HostConfig checks itself (`host_config_type_error`). Value *meaning* (`mem_limit: 64x`, a
# restart policy that is not a mapping) is the planner's, reported by `validate` from the desired state.
_INT = "a whole number"
_SIZE = "a size: bytes as a number, or a string like '64m'"
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    **dict.fromkeys(
        ["cpu_shares", "cpu_period", "cpu_quota", "blkio_weight", "nano_cpus", "pids_limit"], ((int,), _INT)
    ),
    **dict.fromkeys(["cpu_count", "cpu_percent", "cpu_rt_period", "cpu_rt_runtime", "mem_swappiness"], ((int,), _INT)),
    "oom_score_adj": ((int,), _INT),
    **dict.fromkeys(
        ["mem_limit", "memswap_limit", "mem_reservation", "kernel_memory", "shm_size"], ((int, float, str), _SIZE)
    ),
    "cpuset_cpus": ((str,), "a string like '0-3' or '0,1'"),
    "cpuset_mems": ((str,), "a string like '0-3' or '0,1'"),
    "log_config": ((dict,), "a mapping like {type: json-file, config: {max-size: 10m}}"),
    "sysctls": ((dict,), "a mapping"),
    **dict.fromkeys(["ulimits", "security_opt", "device_requests", "device_cgroup_rules"], ((list,), "a list")),
}

Origin = Callable[[str], KeyPath]


def check_options(model: ContainerMapModel, origin: Origin, positions: Positions) -> list[MapProblem]:
    """Every config's own `create_options` / `host_config` (where written, so the line is the key's)."""
    problems: list[MapProblem] = []
    for name, cfg in model.containers.items():
        at = origin(name)
        problems += _keys((*at, "create_options"), cfg.create_options, _create_allowed, positions)
        problems += _keys((*at, "host_config"), cfg.host_config, _host_allowed, positions)
    return problems


def _keys(
    at: KeyPath, options: Mapping[str, Any], allowed: Callable[[str], str | None], positions: Positions
) -> list[MapProblem]:
    problems = []
    for key, value in options.items():
        reason = allowed(key) or _type(key, value)
        if reason:
            problems.append(positions.problem((*at, key), reason))
    return problems


def _create_allowed(key: str) -> str | None:
    if key in _OWN:
        return f"'{key}' is set by reconciler from {_OWN[key]}: leave it out of create_options"
    if key in CREATE_KWARGS or key in _MOVED_FROM_CREATE:
        return None
    if key in HOST_KWARGS:
        return f"'{key}' is a host_config option (docker-py's create_container does not take it): move it there"
    return f"unknown create_options key '{key}' (not a docker-py create_container argument){_hint(key)}"


def _host_allowed(key: str) -> str | None:
    if key in _OWN:
        return f"'{key}' is set by reconciler from {_OWN[key]}: leave it out of host_config"
    if key in HOST_KWARGS:
        return None
    if key in CREATE_KWARGS:
        return f"'{key}' is a create_options option (docker-py's HostConfig does not take it): move it there"
    return f"unknown host_config key '{key}' (not a docker-py HostConfig argument){_hint(key)}"


def _hint(key: str) -> str:
    return did_you_mean(key, (CREATE_KWARGS | HOST_KWARGS) - set(_OWN))


def _type(key: str, value: Any) -> str | None:
    rule = _TYPES.get(key)
    if rule is None or value is None:
        return None
    types, wanted = rule
    if isinstance(value, bool) or not isinstance(value, types):
        return f"{key} must be {wanted}, not {type(value).__name__}"
    return None
