"""One migration call's context (progress/cancel ticker, warnings) and its lock beside the source.

A migration never writes into its source, so its job lock is a marker file
*beside* the source (``.NAME.n4a-migration.lock``), taken by ``run_write``
through ``guard.exclusive_write``.  The marker is removed when the migration
ends, while the lock is still held; whoever takes the lock checks that the
marker it locked is still the one at that path (``lock_still_ours``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WorkspaceBusyError
from ..progress import Ticker
from ..reports import utc_now


def lock_marker(source: Path) -> Path:
    """The job-lock marker of a migration of ``source`` (beside it, never inside)."""
    return source.parent / f".{source.name}.n4a-migration.lock"


_lock_marker = lock_marker  # the name tests and older callers import


def lock_still_ours(source: Path) -> None:
    """After taking the lock: refuse if the marker we locked was removed or replaced meanwhile.

    A migration that ends removes its marker while holding the lock; a process
    that opened the old file just before can then lock an unlinked file.  The
    holder record at the path tells: it must be ours.
    """
    from ..locking import WorkspaceLock

    holder = WorkspaceLock(source, "", marker=lock_marker(source)).read_holder()
    if holder is None or holder.pid != os.getpid():
        raise WorkspaceBusyError(f"Another migration of {source} just started or ended.", "Try again.")


def remove_lock_marker(source: Path) -> None:
    """Remove the (empty) marker if no job holds it: take the lock, unlink, release."""
    from ..locking import WorkspaceLock

    marker = lock_marker(source)
    if not marker.exists():
        return
    try:
        lock = WorkspaceLock(source, "cleanup", marker=marker).acquire()
    except (WorkspaceBusyError, OSError):
        return  # someone else's migration: theirs to remove
    try:
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
    finally:
        lock.release()


@dataclass
class _Run:
    """What every step of one migration shares: the source, its layout, the ticker, warnings."""

    source: Path
    layout_name: str
    ticker: Ticker
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Stop with ``OperationCancelledError`` when Cancel was pressed (only staging was written)."""
        self.ticker.check("Migration")
