"""Background jobs for the widgets: one thread each, throttled progress, cancel.

A widget asks ``start_job`` to run a core call such as ``ws.compact``.  The
call runs on its own thread so the kernel stays free for other cells; its
``progress(fraction, message)`` reports are forwarded at most ``max_rate``
times a second; ``job.cancel()`` sets the ``threading.Event`` the core call
checks between batches.  A per-workspace guard, shared by every widget in
the kernel, refuses a second job that would conflict (``WorkspaceBusyError``).
Cross-process exclusion is the core's job (``core.locking``), so scripts and
the CLI are protected too.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import OperationCancelledError, WorkspaceBusyError, WorkspaceError

RUNNING, DONE, ERROR, CANCELLED = "running", "done", "error", "cancelled"

Work = Callable[[Callable[[float, str], None], threading.Event], Any]


@dataclass
class JobUpdate:
    """What a widget shows: sent on start, on throttled progress and at the end."""

    state: str
    progress: float
    message: str
    elapsed: float
    result: Any = None
    error: dict[str, str] | None = None
    exception: BaseException | None = None
    """The exception itself, for callers that word it their own way (the widgets)."""


@dataclass
class Job:
    """A running or finished background job."""

    id: int
    name: str
    key: Path
    writes: bool
    cancel_event: threading.Event = field(default_factory=threading.Event)
    state: str = RUNNING
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: BaseException | None = None
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Ask the job to stop at its next checkpoint."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; True if it ended within ``timeout``."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


_ids = itertools.count(1)
_guard = threading.Lock()
_active: dict[Path, list[Job]] = {}


def active_jobs(key: Path | None = None) -> list[Job]:
    """Jobs running now in this kernel (on ``key`` only, when given)."""
    with _guard:
        if key is not None:
            return list(_active.get(Path(key), []))
        return [job for jobs in _active.values() for job in jobs]


def _claim(job: Job) -> None:
    with _guard:
        running = _active.setdefault(job.key, [])
        blockers = running if job.writes else [j for j in running if j.writes]
        if blockers:
            other = blockers[0]
            raise WorkspaceBusyError(
                f"'{other.name}' is already running on {job.key} in this kernel "
                f"(started {other.elapsed:.0f} s ago).",
                "Wait for it to finish or cancel it, then try again.",
            )
        running.append(job)


def _release(job: Job) -> None:
    with _guard:
        running = _active.get(job.key, [])
        if job in running:
            running.remove(job)
        if not running:
            _active.pop(job.key, None)


def error_to_dict(exc: BaseException) -> dict[str, str]:
    """The ``error`` trait: type, message and what to do next."""
    if isinstance(exc, WorkspaceError):
        return exc.to_dict()
    return {
        "type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "hint": "This looks like a bug; the details are in the kernel log.",
    }


def start_job(
    name: str,
    key: Path,
    work: Work,
    *,
    on_update: Callable[[JobUpdate], None] | None = None,
    writes: bool = True,
    max_rate: float = 10.0,
) -> Job:
    """Run ``work(progress, cancel)`` on a new thread and return its ``Job``.

    Raises ``WorkspaceBusyError`` at once (before any thread starts) when a
    conflicting job runs on the same workspace in this kernel.
    """
    job = Job(next(_ids), name, Path(key), writes)
    _claim(job)
    interval = 1.0 / max_rate if max_rate > 0 else 0.0
    last_sent = [0.0]
    send_lock = threading.Lock()

    def send(force: bool = False) -> None:
        if on_update is None:
            return
        with send_lock:
            now = time.monotonic()
            if not force and now - last_sent[0] < interval:
                return
            last_sent[0] = now
            err = error_to_dict(job.error) if job.error is not None else None
            update = JobUpdate(job.state, job.progress, job.message, job.elapsed, job.result, err, job.error)
        on_update(update)

    def progress(fraction: float, message: str) -> None:
        job.progress = min(max(float(fraction), 0.0), 1.0)
        job.message = message
        send()

    def run() -> None:
        try:
            job.result = work(progress, job.cancel_event)
            job.state = DONE
            job.progress = 1.0
        except OperationCancelledError as exc:
            job.state, job.error = CANCELLED, exc
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the widget
            job.state = CANCELLED if job.cancel_event.is_set() and not isinstance(exc, WorkspaceError) else ERROR
            job.error = exc
        finally:
            _release(job)
            try:
                send(force=True)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("job update listener failed")

    job.message = "Starting"
    send(force=True)
    job.thread = threading.Thread(target=run, name=f"n4a-job-{job.id}-{name}", daemon=True)
    job.thread.start()
    return job
