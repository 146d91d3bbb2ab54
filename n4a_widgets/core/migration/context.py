"""One migration call's context: progress, cancel, the lock beside the source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    WorkspaceBusyError,
)
from ..progress import Progress
from ..reports import utc_now

if TYPE_CHECKING:
    pass



def _lock_marker(source: Path) -> Path:
    return source.parent / f".{source.name}.n4a-migration.lock"


def _check_not_busy(source: Path) -> None:
    """Refuse while a nirs4all run or one of our jobs writes to the source (read-only probes)."""
    from ..guard import job_lock_holder
    from ..locking import arrays_lock_held

    if source.is_dir() and arrays_lock_held(source):
        raise WorkspaceBusyError(f"nirs4all is writing arrays in {source}.")
    held = job_lock_holder(source) if source.is_dir() else None
    if held:
        raise WorkspaceBusyError(held)


class _Cancelled(Exception):
    pass


def _checker(cancel: threading.Event | None) -> Callable[[], None]:
    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise _Cancelled()

    return check


# ----------------------------------------------------------------- context


@dataclass
class _Run:
    source: Path
    layout_name: str
    progress: Progress | None
    check: Callable[[], None]
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)

    def report_progress(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(max(0.0, min(1.0, fraction)), message)
