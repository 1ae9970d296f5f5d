"""Leases on a recreate's replacement, so two reconcilers never undo each other's work.

A recreate's replacement (`<name>..next`) carries two labels: `io.reconciler.lease-owner` (an id of the
process that created it) and `io.reconciler.lease-expires` (unix time). Labels cannot change after create,
so the expiry is set once, long enough for the whole recreate (stop timeout + health gate + a margin).

A reconciler that finds a replacement leased by someone else leaves it alone and reports "another reconcile
is in progress" — unless the lease has expired, or its owner ran on this host and its process is gone (a
crashed `apply`: the next run must not wait for the expiry to heal). Everything here is pure except the
process check, which the caller passes in (`alive`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping

from reconciler.plan import naming

LABEL_LEASE_OWNER = naming.LABEL_LEASE_OWNER
LABEL_LEASE_EXPIRES = naming.LABEL_LEASE_EXPIRES
LEASE_MARGIN = 60.0  # on top of stop timeout and health gate: create, start, remove and rename

IN_PROGRESS = "another reconcile is in progress"


def process_owner() -> str:
    """`host/pid/random`: unique per process; host and pid let a later run on this host see it died."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


OWNER = process_owner()


def lease_labels(owner: str, expires: float) -> dict[str, str]:
    return {LABEL_LEASE_OWNER: owner, LABEL_LEASE_EXPIRES: str(int(expires))}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, someone else's
    return True


def foreign_holder(
    labels: Mapping[str, str] | None,
    owner: str,
    now: float,
    alive: Callable[[int], bool] = pid_alive,
) -> str | None:
    """The owner of a live lease held by someone other than `owner`, or None if the replacement is free
    to take (no lease, ours, expired, or its owner's process on this host is gone)."""
    labels = labels or {}
    holder = labels.get(LABEL_LEASE_OWNER)
    if not holder or holder == owner:
        return None
    try:
        expires = float(labels.get(LABEL_LEASE_EXPIRES, "0"))
    except ValueError:
        expires = 0.0
    if expires <= now:
        return None
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if host == socket.gethostname() and pid.isdigit() and not alive(int(pid)):
        return None
    return holder
