"""docker-map's `DockerFile` and `DockerContext`: write a Dockerfile in Python and build it with its context.

`DockerFile` collects instructions (it is a context manager that finalizes on exit: `VOLUME`, `EXPOSE`,
`LABEL`, `STOPSIGNAL`, `HEALTHCHECK`, `ENTRYPOINT`, `CMD` and the final `USER`/`WORKDIR` are written at the
end, as docker-map does). `add_file` puts a file or folder into the build context *and* writes the `ADD` line;
`add_archive` adds a tar archive that the build unpacks. `DockerContext` packs the Dockerfile and every added
file into a (gzip) tar stream for the engine, honouring `.dockerignore` rules of added folders.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any


def _json_or_shell(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else json.dumps(list(value))


class DockerFile:
    """A Dockerfile built in code (docker-map API)."""

    def __init__(
        self, baseimage: str, maintainer: str | None = None, initial: str | Iterable[str] | None = None, **kwargs: Any
    ) -> None:
        self._lines: list[str] = [f"FROM {baseimage}"]
        if maintainer:
            self._lines.append(f"LABEL maintainer={json.dumps(maintainer)}")
        self._files: list[tuple[str, str]] = []  # (source path on disk, path in the context)
        self._archives: list[tuple[str, str]] = []
        self._finalized = False
        self._remove_final: list[str] = []
        self.volumes: list[str] = []
        self.expose: list[int | str] = []
        self.labels: dict[str, str] = {}
        self.entrypoint: str | Sequence[str] | None = None
        self.command: str | Sequence[str] | None = None
        self.command_user: str | None = None
        self.command_workdir: str | None = None
        self.shell: Sequence[str] | None = None
        self.stopsignal: str | None = None
        self.healthcheck: dict[str, Any] | str | None = None
        for key, value in kwargs.items():
            if not hasattr(self, key):
                raise TypeError(f"DockerFile got an unknown option {key!r}")
            setattr(self, key, value)
        if initial:
            self.prefix_all(*([initial] if isinstance(initial, str) else initial))

    # --- writing -------------------------------------------------------------------------------------

    def prefix(self, prefix: str = "#", *args: str) -> None:
        """Write one instruction line: `prefix` followed by its arguments (`df.prefix('ENV', 'A=1')`)."""
        self._check_open()
        self._lines.append(" ".join([prefix, *args]))

    def prefix_all(self, *lines: str) -> None:
        for line in lines:
            self._check_open()
            self._lines.append(line)

    def write(self, text: str) -> None:
        self._check_open()
        self._lines.extend(text.rstrip("\n").split("\n"))

    def comment(self, text: str) -> None:
        self.prefix("#", text)

    def run(self, *commands: str) -> None:
        """One `RUN` per call; several commands are joined with `&&` (docker-map's behaviour)."""
        self.prefix("RUN", " && ".join(commands))

    def run_all(self, *commands: str) -> None:
        """Every command in its own `RUN` line."""
        for command in commands:
            self.prefix("RUN", command)

    def add_file(
        self,
        src_path: str | os.PathLike[str],
        dst_path: str | None = None,
        ctx_path: str | None = None,
        replace_space: bool = True,
        expandvars: bool = False,
        expanduser: bool = False,
        remove_final: bool = False,
    ) -> str:
        """Put a file or folder into the build context and write the `ADD` line; returns its context path."""
        source = os.fspath(src_path)
        if expanduser:
            source = os.path.expanduser(source)
        if expandvars:
            source = os.path.expandvars(source)
        if not os.path.exists(source):
            raise FileNotFoundError(source)
        name = ctx_path or posixpath.basename(source.rstrip("/")) or "root"
        if replace_space:
            name = name.replace(" ", "_")
        target = dst_path or f"/{name}"
        self._files.append((source, name))
        self.prefix("ADD", json.dumps([name, target]))
        if remove_final:
            self._remove_final.append(target)
        return name

    def add_archive(self, src_file: str | os.PathLike[str], remove_final: bool = False) -> str:
        """Add a tar archive that the build unpacks at `/`; returns its context path."""
        source = os.fspath(src_file)
        if not os.path.isfile(source):
            raise FileNotFoundError(source)
        name = posixpath.basename(source)
        self._archives.append((source, name))
        self.prefix("ADD", json.dumps([name, "/"]))
        if remove_final:
            self._remove_final.append(f"/{name}")
        return name

    def add_volume(self, path: str) -> None:
        self.volumes.append(path)

    # --- finishing -----------------------------------------------------------------------------------

    def finalize(self) -> None:
        if self._finalized:
            return
        if self._remove_final:
            self.prefix("RUN", "rm -rf " + " ".join(self._remove_final))
        for instruction, value in self._trailer():
            if value:
                self.prefix(instruction, value)
        self._finalized = True

    def _trailer(self) -> list[tuple[str, str | None]]:
        """The instructions docker-map writes after the body, in its order; empty ones are left out."""
        labels = " ".join(f"{json.dumps(str(k))}={json.dumps(str(v))}" for k, v in self.labels.items())
        return [
            ("SHELL", json.dumps(list(self.shell)) if self.shell else None),
            *(("EXPOSE", str(port)) for port in self.expose),
            ("VOLUME", json.dumps(self.volumes) if self.volumes else None),
            ("LABEL", labels or None),
            ("STOPSIGNAL", self.stopsignal),
            ("HEALTHCHECK", _healthcheck_line(self.healthcheck) if self.healthcheck else None),
            ("WORKDIR", self.command_workdir),
            ("USER", self.command_user),
            ("ENTRYPOINT", _json_or_shell(self.entrypoint) if self.entrypoint else None),
            ("CMD", _json_or_shell(self.command) if self.command else None),
        ]

    def __enter__(self) -> DockerFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()

    def _check_open(self) -> None:
        if self._finalized:
            raise ValueError("this DockerFile is finalized: no more instructions")

    # --- output --------------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return "\n".join(self._lines) + "\n"

    def getvalue(self) -> str:
        return self.text

    def fileobj(self) -> IO[bytes]:
        return io.BytesIO(self.text.encode())

    def save(self, name: str | os.PathLike[str]) -> None:
        self.finalize()
        Path(name).write_text(self.text)

    @property
    def context_files(self) -> list[tuple[str, str]]:
        return [*self._files, *self._archives]


def _healthcheck_line(check: dict[str, Any] | str) -> str:
    if isinstance(check, str):
        return check if check.upper() == "NONE" else f"CMD {check}"
    options = []
    for key in ("interval", "timeout", "start_period", "retries"):
        if check.get(key) is not None:
            options.append(f"--{key.replace('_', '-')}={check[key]}")
    test = check.get("test", "")
    return " ".join([*options, "CMD", _json_or_shell(test)])


class DockerContext:
    """A build context as a tar stream: the Dockerfile plus the files it adds (docker-map API)."""

    def __init__(
        self,
        dockerfile: DockerFile | None = None,
        compression: str | None = "gzip",
        encoding: str | None = None,
        finalize: bool = False,
        **kwargs: Any,
    ) -> None:
        self._tmp = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 - owned by the object
        self.stream_encoding = compression if compression in ("gzip", "bzip2") else None
        if compression == "gzip":
            self.tarfile = tarfile.open(mode="w:gz", fileobj=self._tmp, **kwargs)  # noqa: SIM115
        elif compression == "bzip2":
            self.tarfile = tarfile.open(mode="w:bz2", fileobj=self._tmp, **kwargs)  # noqa: SIM115
        else:
            self.tarfile = tarfile.open(mode="w", fileobj=self._tmp, **kwargs)  # noqa: SIM115
        self.encoding = encoding
        self._closed = False
        if dockerfile is not None:
            self.add_dockerfile(dockerfile)
        if finalize:
            self.finalize()

    def add(self, name: str | os.PathLike[str], arcname: str | None = None, **kwargs: Any) -> None:
        """Add a file or folder; a folder's `.dockerignore` rules leave out what they match."""
        path = os.fspath(name)
        arc = arcname or posixpath.basename(path.rstrip("/"))
        if os.path.isdir(path):
            patterns = _dockerignore(Path(path))
            self.tarfile.add(path, arcname=arc, filter=_ignore_filter(arc, patterns), **kwargs)
        else:
            self.tarfile.add(path, arcname=arc, **kwargs)

    def addfile(self, *args: Any, **kwargs: Any) -> None:
        self.tarfile.addfile(*args, **kwargs)

    def add_archive(self, tar_filename: str, arcname: str | None = None) -> None:
        self.tarfile.add(tar_filename, arcname=arcname or posixpath.basename(tar_filename))

    def add_dockerfile(self, dockerfile: DockerFile) -> None:
        dockerfile.finalize()
        data = dockerfile.text.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        self.tarfile.addfile(info, io.BytesIO(data))
        for source, name in dockerfile.context_files:
            self.add(source, arcname=name)

    def finalize(self) -> None:
        if not self._closed:
            self.tarfile.close()
            self._tmp.seek(0)
            self._closed = True

    @property
    def fileobj(self) -> IO[bytes]:
        self.finalize()
        return self._tmp

    def save(self, name: str | os.PathLike[str]) -> None:
        self.finalize()
        Path(name).write_bytes(self._tmp.read())
        self._tmp.seek(0)

    def close(self) -> None:
        self.finalize()
        self._tmp.close()

    def __enter__(self) -> DockerContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dockerignore(folder: Path) -> list[tuple[bool, str]]:
    """`.dockerignore` lines as (negated, pattern); comments and blanks skipped."""
    ignore = folder / ".dockerignore"
    if not ignore.is_file():
        return []
    rules = []
    for raw in ignore.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        rules.append((negated, posixpath.normpath(pattern.strip("/"))))
    return rules


def _excluded(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent folder counts."""
    excluded = False
    parts = relative.split("/")
    for negated, pattern in rules:
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatchcase("/".join(parts[:depth]), pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase("/".join(parts[depth - 1 :]), pattern[3:])
            ):
                excluded = not negated
                break
    return excluded


def _ignore_filter(arc_root: str, rules: list[tuple[bool, str]]) -> Any:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        relative = info.name[len(arc_root) :].lstrip("/")
        if relative and (relative == ".dockerignore" or _excluded(relative, rules)):
            return None
        return info

    return keep
