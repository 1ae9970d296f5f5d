"""Map problems: every complaint about a map names the file, line, column and key path.

The loader, the schema validation and the integrity check all report through `MapProblem`, so the
command line and the daemon print one consistent line per problem:

    config/site.yaml:12:5: web.binds[0]: unknown volume alias 'app_cfg' (did you mean 'app_config'?)

A `MapError` carries one or more problems; nothing else escapes the loader for bad input.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

KeyPath = tuple[str | int, ...]

# Names whose values are never shown (the rule of `plan.drift.is_secret`, here for messages about maps that
# are rejected before any desired state exists).
_SECRET = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|PASS$|_PW$|^PW_", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """`DB_PASSWORD`, `api_token`, `AWS_SECRET_ACCESS_KEY`: a value under such a name is not echoed."""
    return bool(_SECRET.search(name))


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def format_key_path(path: KeyPath) -> str:
    """`('web', 'binds', 0)` → `web.binds[0]`; string keys with dots are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if part and "." not in part and " " not in part else repr(part)
            out += f".{text}" if out else text
    return out or "<map>"


@dataclass(frozen=True)
class MapProblem:
    """One problem with a map: where it is and what is wrong."""

    message: str
    file: str = "<map>"
    line: int | None = None
    column: int | None = None
    key_path: KeyPath = ()
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{where}: {format_key_path(self.key_path)}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "key": format_key_path(self.key_path),
            "message": self.message,
            "severity": self.severity.value,
        }


@dataclass
class MapError(Exception):
    """A map (or set of maps) that cannot be used. Carries every problem found, errors first."""

    problems: list[MapProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    @property
    def errors(self) -> list[MapProblem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` suffix for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
