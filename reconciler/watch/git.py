"""Maps from a git repository (`run --git URL`): the git CLI, run defensively, one commit at a time.

`GitRepo` keeps a bare repository of its own in the daemon's state directory (never the user's clone) and
- `fetch()`: fetches the branch (or the remote's HEAD), shallow, and returns the commit it points at;
- `checkout(commit)`: writes that commit's `path` folder into `commits/<sha>/` and returns the folder,
  which the daemon then loads like any maps folder. Each commit gets a fresh folder, so a bad commit never
  overwrites the maps in force; folders of commits no longer needed are removed (`keep_only`).

A repository may be hostile; it is treated as data, never as code or as a way out of its folder:
- git runs with hooks off (`core.hooksPath=/dev/null`), without a terminal prompt, with `protocol.ext`
  off (the transport that runs commands) and `protocol.file` only for what the user named, with
  `transfer.fsckObjects` (malformed objects, `..` and `.git` paths refused at fetch) and a timeout on every
  call (`timeout`); submodules are never fetched;
- symlinks are written as plain files holding their target (`core.symlinks=false`), and the checkout is
  refused if anything in it is not a regular file or folder — so reading the maps never follows a link;
- the checkout is refused past `max_files` entries or `max_bytes` in all, checked from the tree listing
  before a byte is written (each map file is bounded again by the map limits when it is loaded);
- a repository whose maps name host paths is just a map: no trust comes with where the maps came from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from reconciler.logs import get_logger

log = get_logger(__name__)
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.symlinks=false",
    "core.fsmonitor=false",
    "protocol.ext.allow=never",
    "protocol.file.allow=user",
    "transfer.fsckObjects=true",
    "fetch.recurseSubmodules=false",
    "submodule.recurse=false",
)


def redact(url: str) -> str:
    """The URL without its user info (`https://user:token@host/…` → `https://***@host/…`): shown in logs,
    status and notifications instead of the URL itself."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


class GitError(Exception):
    """A git call failed or timed out, or a commit's tree was refused (the message says which)."""


def check_path(path: str) -> str:
    """`path` if it names a folder inside a repository (no `..`, no `.git`), else GitError."""
    clean = path.strip("/") or "."
    if clean != "." and any(part in ("..", ".git", "") for part in clean.split("/")):
        raise GitError(f"{path!r} is not a folder inside the repository")
    return path


def check_branch(branch: str) -> str:
    """`branch` if it is a plain branch name (never an option or a revision expression), else GitError."""
    if not _BRANCH.match(branch) or ".." in branch or branch.endswith((".lock", "/")):
        raise GitError(f"{branch!r} is not a branch name")
    return branch


class GitRepo:
    def __init__(
        self,
        url: str,
        directory: Path,
        *,
        branch: str | None = None,
        path: str = ".",
        timeout: float = 60.0,
        max_files: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = url
        self.directory = directory
        self.branch = branch
        self.path = path.strip("/") or "."
        self.timeout = timeout
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.git_dir = directory / "repo.git"
        self.commits = directory / "commits"
        check_path(path)
        if branch is not None:
            check_branch(branch)

    def _git(self, *args: str, env: dict[str, str] | None = None) -> str:
        command = ["git", *(x for c in SAFE_CONFIG for x in ("-c", c)), f"--git-dir={self.git_dir}", *args]
        environment = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PROTOCOL_FROM_USER": "1",
            **(env or {}),
        }
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env=environment,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than {self.timeout:.0f}s") from None
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from None
        if done.returncode != 0:
            message = done.stderr.strip().replace(self.url, redact(self.url))
            userinfo = self.url.partition("://")[2].split("/", 1)[0].rpartition("@")[0]
            if userinfo:
                message = message.replace(userinfo, "***")
            raise GitError(f"git {args[0]} failed: {message[-500:]}")
        return done.stdout

    def fetch(self) -> str:
        """Fetch the branch (or the remote's HEAD); the commit it points at now."""
        if not (self.git_dir / "HEAD").exists():
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GitError(f"cannot make the repository's folder {self.directory}: {exc}") from None
            self._git("init", "--quiet", "--bare", str(self.git_dir))
        ref = f"refs/heads/{self.branch}" if self.branch else "HEAD"
        self._git("fetch", "--quiet", "--no-tags", "--depth=1", "--no-recurse-submodules", "--", self.url, ref)
        commit = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()
        if not _SHA.match(commit):
            raise GitError(f"unexpected commit id {commit[:80]!r}")
        return commit

    def checkout(self, commit: str) -> Path:
        """The commit's map folder, written to `commits/<sha>/` (once; a folder there is reused)."""
        if not _SHA.match(commit):
            raise GitError(f"{commit[:80]!r} is not a commit id")
        target = self.commits / commit
        if target.is_dir():
            return target
        tree = commit if self.path == "." else f"{commit}:{self.path}"
        self._check_tree(tree)
        partial = self.commits / f".{commit}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        index = {"GIT_INDEX_FILE": str(self.directory / f".{commit}.index")}
        try:
            self._git("read-tree", tree, env=index)
            self._git(f"--work-tree={partial}", "checkout-index", "--all", "--force", env=index)
            _only_regular(partial)
        except GitError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            Path(index["GIT_INDEX_FILE"]).unlink(missing_ok=True)
        partial.rename(target)
        return target

    def _check_tree(self, tree: str) -> None:
        listing = self._git("ls-tree", "-r", "-l", "-z", "--full-tree", tree)
        entries = [e for e in listing.split("\0") if e]
        if len(entries) > self.max_files:
            raise GitError(f"the commit has more than {self.max_files} files under {self.path!r}: refused")
        total = 0
        for entry in entries:
            meta = entry.split("\t", 1)[0].split()
            if meta[1] == "commit":
                continue  # a submodule: never fetched, nothing written
            total += int(meta[3]) if meta[3].isdigit() else 0
        if total > self.max_bytes:
            raise GitError(f"the commit's files under {self.path!r} are over {self.max_bytes} bytes: refused")

    def keep_only(self, commits: Iterable[str]) -> None:
        """Remove the folders of other commits (those in force and being tried stay)."""
        wanted = set(commits)
        if not self.commits.is_dir():
            return
        for folder in self.commits.iterdir():
            if folder.name not in wanted:
                shutil.rmtree(folder, ignore_errors=True)


def _only_regular(folder: Path) -> None:
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(root) / name
            if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                raise GitError(f"{entry.relative_to(folder)} is not a regular file: refused")
