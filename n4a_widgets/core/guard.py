"""The one-writer guard every write operation takes (docs/ARCHITECTURE.md, "Guard").

``exclusive_write(root, operation, force=...)`` holds our cross-process job
lock (``locking``) and refuses while a nirs4all run writes (``writers``).
``busy_reason(root)`` is the read-only question the widgets ask to grey out
their buttons; it never takes a lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from . import layout
from .errors import WorkspaceBusyError, WorkspaceError
from .locking import WorkspaceLock, arrays_lock_held, describe_holder, flock_held
from .writers import detect_writers, ensure_no_writer


@contextlib.contextmanager
def exclusive_write(
    root: Path,
    operation: str,
    *,
    force: bool = False,
    marker: Path | None = None,
    probe_writers: bool = True,
) -> Iterator[WorkspaceLock]:
    """Hold the job lock of ``root`` and make sure no nirs4all run is writing.

    ``marker`` puts the lock file elsewhere (a migration never writes into its
    source, so its marker sits beside it).  ``probe_writers=False`` only for
    sources that are legacy stores (no nirs4all 1.x run can write to them);
    the arrays lock is still checked.  ``force`` takes over a stale lock and
    proceeds past runs left 'running' by a crash.
    """
    lock = WorkspaceLock(root, operation, marker=marker).acquire(force=force)
    try:
        if marker is not None and root.is_dir():
            # Our lock lives elsewhere; another job of ours may still hold the workspace's own.
            held = job_lock_holder(root)
            if held:
                raise WorkspaceBusyError(held)
        if probe_writers:
            ensure_no_writer(root, force=force)
        elif root.is_dir() and arrays_lock_held(root):
            raise WorkspaceBusyError(f"nirs4all is writing arrays in {root}.")
        yield lock
    finally:
        lock.release()


def job_lock_holder(root: Path, marker: Path | None = None) -> str | None:
    """Who holds our job lock on ``root`` right now (another process), or None."""
    lock = WorkspaceLock(root, "", marker=marker)
    if not flock_held(lock.marker):
        return None
    holder = lock.read_holder()
    if holder is not None and holder.pid == os.getpid():
        return None
    stale = " (its process no longer exists: stale, use force)" if holder is not None and holder.alive is False else ""
    return f"Another job holds the workspace: {describe_holder(holder)}{stale}."


def busy_reason(root: Path) -> str | None:
    """Why a write on ``root`` would be refused right now, or None (read-only)."""
    held = job_lock_holder(root)
    if held:
        return held
    if not (root / layout.STORE_SQLITE).exists():
        return None
    try:
        seen = detect_writers(root)
    except WorkspaceError:
        return None
    return None if seen.idle else f"A nirs4all run may be writing: {seen.describe()}."
