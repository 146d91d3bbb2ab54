"""Is a nirs4all run writing to this workspace right now?

nirs4all has no "writer" flag of its own; a run publishes its results in a
short block (``begin_run`` → one SQLite transaction → ``save_batch`` under
``arrays/.lock`` → ``complete_run``).  Three signals show that block, all read
without changing a byte:

- ``arrays/.lock`` held (nirs4all's advisory lock around array writes);
- SQLite's WAL write lock: byte 120 of ``store.sqlite-shm`` locked by another
  process (``fcntl F_GETLK`` on a read-only descriptor), or a rollback
  journal (``store.sqlite-journal``) for a store not in WAL mode;
- runs whose status is ``running``.  A run that stays ``running`` while no
  lock is held either is computing (it will publish later) or crashed; we
  cannot tell which, so it blocks maintenance until the user overrides it
  deliberately (``force=True``, CLI ``--force``).

A writer that starts *after* the check is handled by the operations
themselves: their SQLite transaction is the arbiter ("database is locked"
becomes ``WorkspaceBusyError``) and array rewrites take ``arrays/.lock``.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .errors import WorkspaceBusyError
from .locking import arrays_lock_held
from .readonly_sqlite import open_readonly, table_names
from .reports import Report

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Offset of SQLite's WAL_WRITE_LOCK in the ``-shm`` file (see sqlite3 wal.c: 120 + 0).
WAL_WRITE_LOCK_OFFSET = 120

#: How long a ``running`` run without any lock is watched before it is called stale.
SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class RunningRun(Report):
    run_id: str
    name: str
    created_at: str
    age_seconds: float | None


@dataclass(frozen=True)
class WriterActivity(Report):
    """What ``detect_writers`` saw (read-only)."""

    arrays_lock_held: bool
    sqlite_writer_pid: int | None
    """pid holding SQLite's write lock (WAL), or -1 for a rollback journal in progress."""
    running_runs: tuple[RunningRun, ...]

    @property
    def locked(self) -> bool:
        """A lock is held right now: a writer is certainly active."""
        return self.arrays_lock_held or self.sqlite_writer_pid is not None

    @property
    def idle(self) -> bool:
        return not self.locked and not self.running_runs

    def describe(self) -> str:
        parts = []
        if self.arrays_lock_held:
            parts.append("nirs4all holds arrays/.lock (it is writing prediction arrays)")
        if self.sqlite_writer_pid is not None:
            who = f"pid {self.sqlite_writer_pid}" if self.sqlite_writer_pid > 0 else "another process"
            parts.append(f"{who} holds the store.sqlite write lock")
        for run in self.running_runs:
            age = f", {run.age_seconds:.0f} s ago" if run.age_seconds is not None else ""
            parts.append(f"run '{run.name}' ({run.run_id[:8]}) is 'running' since {run.created_at} UTC{age}")
        return "; ".join(parts) if parts else "no writer"


def sqlite_writer_pid(root: Path) -> int | None:
    """pid of the process holding SQLite's WAL write lock, None when free.

    Uses ``F_GETLK`` (a query, never a lock) on ``store.sqlite-shm`` opened
    read-only.  Locks held by this very process are invisible to ``F_GETLK``.
    """
    if fcntl is None:  # pragma: no cover
        return None
    if (root / f"{layout.STORE_SQLITE}-journal").exists():
        return -1
    shm = root / f"{layout.STORE_SQLITE}-shm"
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, WAL_WRITE_LOCK_OFFSET, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        kind, _whence, _start, _len, pid = struct.unpack("hhqqi", answer)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else int(pid)


def running_runs(root: Path) -> tuple[RunningRun, ...]:
    """Runs whose status is ``running`` (read-only SQLite)."""
    db = root / layout.STORE_SQLITE
    if not db.is_file():
        return ()
    with open_readonly(db) as conn:
        if "runs" not in table_names(conn):
            return ()
        rows = conn.execute(
            "SELECT run_id, COALESCE(name, ''), CAST(created_at AS TEXT) FROM runs WHERE status = 'running'"
        ).fetchall()
    now = _dt.datetime.now(_dt.UTC)
    out = []
    for run_id, name, created in rows:
        age: float | None = None
        try:
            started = _dt.datetime.fromisoformat(str(created))
            if started.tzinfo is None:
                started = started.replace(tzinfo=_dt.UTC)
            age = round((now - started).total_seconds(), 1)
        except (TypeError, ValueError):
            pass
        out.append(RunningRun(str(run_id), str(name), str(created), age))
    return tuple(out)


def detect_writers(root: Path) -> WriterActivity:
    """One read-only look at the three writer signals."""
    return WriterActivity(arrays_lock_held(root), sqlite_writer_pid(root), running_runs(root))


def ensure_no_writer(root: Path, *, force: bool = False, settle_seconds: float = SETTLE_SECONDS) -> WriterActivity:
    """Raise ``WorkspaceBusyError`` while a nirs4all run writes to ``root``.

    A held lock always refuses.  A ``running`` run with no lock is watched for
    ``settle_seconds`` (a publishing run completes within a fraction of a
    second); if it is still ``running`` it is either computing or crashed, and
    only ``force=True`` proceeds.  Returns what was seen last.
    """
    deadline = time.monotonic() + settle_seconds
    while True:
        seen = detect_writers(root)
        if seen.idle:
            return seen
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if seen.locked:
        raise WorkspaceBusyError(
            f"A nirs4all run is writing to {root}: {seen.describe()}.",
            "Wait for the run to finish (usually seconds), then try again.",
        )
    if force:
        return seen
    raise WorkspaceBusyError(
        f"{root} has runs still marked 'running' but no lock is held: {seen.describe()}.",
        "If a nirs4all run is still computing in another notebook or process, let it finish first. "
        "If it crashed or was interrupted, the mark is stale: retry with force=True (CLI: --force).",
    )
