"""jobs.py: background thread, throttled progress, cancel, the in-kernel busy guard."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from n4a_widgets import OperationCancelledError, WorkspaceBusyError
from n4a_widgets.jobs import CANCELLED, DONE, ERROR, JobUpdate, active_jobs, start_job


def test_result_progress_and_throttle(tmp_path: Path) -> None:
    updates: list[JobUpdate] = []

    def work(progress, cancel):
        for i in range(2000):
            progress(i / 2000, f"step {i}")
            time.sleep(0.0005)
        return 42

    job = start_job("count", tmp_path, work, on_update=updates.append, max_rate=10)
    assert job.wait(30)
    assert job.state == DONE and job.result == 42
    assert updates[-1].state == DONE and updates[-1].result == 42 and updates[-1].progress == 1.0
    running = [u for u in updates if u.state == "running"]
    # ~1 s of work at <= 10 updates/s: far fewer than the 2000 reports.
    span = max(job.elapsed, 0.1)
    assert len(running) <= span * 10 + 2
    assert len(running) >= 2


def test_other_work_runs_while_a_job_runs(tmp_path: Path) -> None:
    gate = threading.Event()
    job = start_job("wait", tmp_path, lambda p, c: gate.wait(10), writes=False)
    # the caller is not blocked: we get here while the job still waits
    assert job.state == "running"
    gate.set()
    assert job.wait(10) and job.state == DONE


def test_cancel(tmp_path: Path) -> None:
    started = threading.Event()

    def work(progress, cancel):
        started.set()
        while not cancel.is_set():
            time.sleep(0.01)
        raise OperationCancelledError("stopped")

    updates: list[JobUpdate] = []
    job = start_job("loop", tmp_path, work, on_update=updates.append)
    assert started.wait(5)
    job.cancel()
    assert job.wait(5)
    assert job.state == CANCELLED
    assert updates[-1].state == CANCELLED and updates[-1].error["type"] == "OperationCancelledError"


def test_error_is_captured(tmp_path: Path) -> None:
    def work(progress, cancel):
        raise ValueError("boom")

    updates: list[JobUpdate] = []
    job = start_job("fail", tmp_path, work, on_update=updates.append)
    job.wait(5)
    assert job.state == ERROR
    assert updates[-1].error["message"] == "boom"


def test_busy_guard_per_workspace(tmp_path: Path) -> None:
    gate = threading.Event()
    a, b = tmp_path / "a", tmp_path / "b"
    writer = start_job("compact", a, lambda p, c: gate.wait(10), writes=True)
    try:
        with pytest.raises(WorkspaceBusyError, match="compact"):
            start_job("remove", a, lambda p, c: None, writes=True)
        with pytest.raises(WorkspaceBusyError):
            start_job("health", a, lambda p, c: None, writes=False)
        other = start_job("other", b, lambda p, c: 1, writes=True)  # another workspace is free
        assert other.wait(5) and other.state == DONE
    finally:
        gate.set()
    writer.wait(5)
    assert active_jobs(a) == []
    again = start_job("remove", a, lambda p, c: 2)
    assert again.wait(5) and again.result == 2


def test_readers_share(tmp_path: Path) -> None:
    gate = threading.Event()
    r1 = start_job("health", tmp_path, lambda p, c: gate.wait(10), writes=False)
    r2 = start_job("query", tmp_path, lambda p, c: 1, writes=False)
    assert r2.wait(5) and r2.state == DONE
    with pytest.raises(WorkspaceBusyError):
        start_job("compact", tmp_path, lambda p, c: None, writes=True)
    gate.set()
    r1.wait(5)
