"""Update windows (`update_window`, DESIGN §2): when `auto` image updates may run.

Two spellings, both in the daemon's time zone:
- days and a time range: `"Sat 02:00-05:00"`, `"Mon-Fri 22:00-23:30"`, `"Sat,Sun 01:00-04:00"`, or
  `"03:00-04:00"` for every day; an end before the start runs past midnight;
- a cron expression and a duration: `"0 2 * * 6 3h"` (croniter's five fields, then `90m`, `3h`, `1h30m`).

Both become one `Window` (a cron expression for the openings and how long each stays open), so the daemon
asks only `is_open(now)` and `next_open(now)`. Pure: croniter computes (imported on first use, so maps
without a window never pay for it), nothing here reads a clock — the daemon passes `now` (tests inject it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from croniter import croniter as Croniter


def _croniter() -> type[Croniter]:
    """croniter, imported when a window is first used: maps without one never pay for it (issue 17)."""
    from croniter import croniter  # noqa: PLC0415

    return croniter


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_RANGE = re.compile(r"^(?:(?P<days>[A-Za-z,-]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
_MAX_LENGTH = 200


class WindowError(ValueError):
    """An `update_window` that is not one of the two spellings (the message says which and why)."""


@dataclass(frozen=True)
class Window:
    cron: str
    duration: timedelta
    text: str = ""

    def is_open(self, now: datetime) -> bool:
        opened: datetime = _croniter()(self.cron, now + timedelta(seconds=1)).get_prev(datetime)
        return now - opened < self.duration

    def next_open(self, now: datetime) -> datetime:
        """`now` while open, else the next opening."""
        if self.is_open(now):
            return now
        opening: datetime = _croniter()(self.cron, now).get_next(datetime)
        return opening

    def wait(self, now: datetime) -> float:
        """Seconds until the window is open (0 while it is)."""
        return max(0.0, (self.next_open(now) - now).total_seconds())


def parse_window(text: str) -> Window:
    """`text` as a window, or WindowError."""
    spec = " ".join(str(text).split())
    if not spec or len(spec) > _MAX_LENGTH:
        raise WindowError(f"{text!r} is not an update window (e.g. 'Sat 02:00-05:00' or '0 2 * * 6 3h')")
    match = _RANGE.match(spec)
    if match is not None:
        return _from_range(spec, match)
    return _from_cron(spec)


def _minutes(hhmm: str) -> int:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    if hours > 23 or minutes > 59:
        raise WindowError(f"{hhmm!r} is not a time of day (00:00 to 23:59)")
    return hours * 60 + minutes


def _day(name: str) -> int:
    key = name.lower()[:3]
    if len(name) < 3 or key not in _DAYS:
        raise WindowError(f"{name!r} is not a day (Mon, Tue, … Sun)")
    return _DAYS.index(key)


def _days(text: str | None) -> str:
    if text is None:
        return "*"
    parts = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        parts.append(f"{_day(first)}-{_day(last)}" if last else str(_day(first)))
    return ",".join(parts)


def _from_range(spec: str, match: re.Match[str]) -> Window:
    start, end = _minutes(match["start"]), _minutes(match["end"])
    length = (end - start) % (24 * 60)
    if length == 0:
        raise WindowError(f"{spec!r}: the window is empty (start and end are the same time)")
    cron = f"{start % 60} {start // 60} * * {_days(match['days'])}"
    return Window(cron, timedelta(minutes=length), spec)


def _from_cron(spec: str) -> Window:
    fields = spec.split(" ")
    if len(fields) != 6:
        raise WindowError(
            f"{spec!r} is not an update window: write days and times ('Sat 02:00-05:00') or five cron fields"
            " and a duration ('0 2 * * 6 3h')"
        )
    cron, duration = " ".join(fields[:5]), fields[5]
    if not _croniter().is_valid(cron):
        raise WindowError(f"{cron!r} is not a cron expression (minute hour day month weekday)")
    found = _DURATION.match(duration)
    if found is None or not (found["h"] or found["m"]):
        raise WindowError(f"{duration!r} is not a duration (e.g. 90m, 3h, 1h30m)")
    length = timedelta(hours=int(found["h"] or 0), minutes=int(found["m"] or 0))
    if length <= timedelta(0):
        raise WindowError(f"{duration!r}: the window is empty")
    return Window(cron, length, spec)
