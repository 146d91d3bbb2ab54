"""One writer at a time: a cross-process job lock per workspace.

The lock is an ``fcntl.flock`` on a small marker file that also records who
holds it (pid, host, operation, since).  The kernel drops a flock when its
process dies, so a crash never blocks the next job: the next holder simply
finds the previous holder's record and reports it as stale.  ``force=True``
replaces the marker file when the recorded holder is gone but the lock is
still held (for example by a child process that inherited the descriptor).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .errors import WorkspaceBusyError
from .reports import Report

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class LockHolder(Report):
    pid: int
    host: str
    operation: str
    since: str
    age_seconds: float
    alive: bool | None
    """Whether the holder's process still exists (None when on another host)."""


def _parse_holder(text: str) -> LockHolder | None:
    try:
        data: dict[str, Any] = json.loads(text)
        since = _dt.datetime.fromisoformat(data["since"])
        age = (_dt.datetime.now(_dt.UTC) - since).total_seconds()
        pid = int(data["pid"])
        host = str(data.get("host", ""))
    except (ValueError, KeyError, TypeError):
        return None
    alive: bool | None = None
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    return LockHolder(pid, host, str(data.get("operation", "?")), data["since"], round(age, 1), alive)


def describe_holder(holder: LockHolder | None) -> str:
    if holder is None:
        return "another process"
    who = f"'{holder.operation}' (pid {holder.pid} on {holder.host or 'unknown host'})"
    return f"{who}, running for {holder.age_seconds:.0f} s since {holder.since}"


class WorkspaceLock:
    """Exclusive, cross-process lock for a job that writes to a workspace."""

    def __init__(self, root: Path, operation: str, *, marker: Path | None = None,
                 remove_on_release: bool | None = None) -> None:
        self.root = root
        self.operation = operation
        self.marker = marker if marker is not None else root / layout.JOB_LOCK_FILE
        # A marker outside the workspace (the migration's, beside the source) is
        # removed on release, so no empty ``.NAME.n4a-migration.lock`` stays behind.
        self.remove_on_release = (self.marker.parent != root) if remove_on_release is None else remove_on_release
        self._fd: int | None = None
        self.stale_holder: LockHolder | None = None
        """A previous holder's record found when we took the lock (it had died)."""

    def read_holder(self) -> LockHolder | None:
        try:
            return _parse_holder(self.marker.read_text())
        except OSError:
            return None

    def acquire(self, *, force: bool = False) -> WorkspaceLock:
        if fcntl is None:  # pragma: no cover
            return self
        fd = os.open(self.marker, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = self.read_holder()
            if force and holder is not None and holder.alive is False:
                # The recorded holder is gone; a leftover descriptor keeps the
                # old inode locked.  Give the marker a fresh inode and retry.
                with contextlib.suppress(FileNotFoundError):
                    self.marker.unlink()
                self.stale_holder = holder
                return self.acquire(force=False)
            hint = "Wait for it to finish, then try again."
            if holder is not None and holder.alive is False:
                hint = (
                    f"The recorded holder (pid {holder.pid}) no longer exists; if you are sure no job "
                    "is running, retry with force=True (CLI: --force) to take over the lock."
                )
            raise WorkspaceBusyError(f"Workspace {self.root} is busy: {describe_holder(holder)}.", hint) from exc
        if not self._same_file(fd):
            # The holder we waited for removed the marker on release: our lock is
            # on an unlinked inode.  Lock the file that is there now instead.
            os.close(fd)
            return self.acquire(force=force)
        previous = os.read(fd, 4096).decode("utf-8", "replace")
        if previous.strip() and self.stale_holder is None:
            self.stale_holder = _parse_holder(previous)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "operation": self.operation,
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def _same_file(self, fd: int) -> bool:
        try:
            here = os.stat(self.marker)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self.remove_on_release:
                with contextlib.suppress(FileNotFoundError):
                    self.marker.unlink()  # while still locked: nobody can take the old inode meanwhile
            os.ftruncate(fd, 0)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> WorkspaceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def flock_held(path: Path) -> bool:
    """True while some process holds a flock on ``path`` (a non-blocking, read-only probe)."""
    if fcntl is None:  # pragma: no cover - Windows: assume held, never guess "free"
        return path.exists()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def arrays_lock_held(root: Path) -> bool:
    """True while a nirs4all process holds ``arrays/.lock`` (it is writing arrays)."""
    return flock_held(root / layout.ARRAYS_DIR / layout.ARRAYS_LOCK_FILE)


@contextlib.contextmanager
def exclusive_job(root: Path, operation: str, *, force: bool = False) -> Iterator[WorkspaceLock]:
    """Hold the workspace's job lock for a writing operation."""
    lock = WorkspaceLock(root, operation).acquire(force=force)
    try:
        yield lock
    finally:
        lock.release()
