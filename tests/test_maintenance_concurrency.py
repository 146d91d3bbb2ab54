"""One writer: other processes holding our job lock, nirs4all writers, stale marks, real concurrent runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from n4a_widgets import Workspace
from n4a_widgets.core.errors import PlanChangedError, WorkspaceBusyError
from n4a_widgets.core.writers import detect_writers, ensure_no_writer

from helpers import prediction_ids, sqlite_rows

REPO = Path(__file__).resolve().parent.parent


def _spawn(code: str, *, ready: str = "READY", timeout: float = 60) -> subprocess.Popen[str]:
    """Run ``code`` in a child Python; wait until it prints ``ready``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == ready:
            return proc
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited with {proc.returncode} before {ready}")
    proc.kill()
    raise AssertionError("child never became ready")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_second_process_holding_a_job_refuses_every_write(demo_ws: Path) -> None:
    holder = _spawn(f"""
        import time
        from pathlib import Path
        from n4a_widgets.core.locking import exclusive_job
        with exclusive_job(Path({str(demo_ws)!r}), "someone else's compact"):
            print("READY", flush=True)
            time.sleep(120)
    """)
    try:
        ws = Workspace(demo_ws)
        plan = ws.remove_bottom(0.3)  # dry runs stay available (read-only)
        before = prediction_ids(demo_ws)
        for call in (
            lambda: ws.remove_bottom(0.3, dry_run=False, plan_id=plan.plan_id),
            lambda: ws.clean_dead_links(dry_run=False),
            lambda: ws.compact(dry_run=False),
        ):
            with pytest.raises(WorkspaceBusyError) as info:
                call()
            assert f"pid {holder.pid}" in info.value.message
            assert "someone else's compact" in info.value.message
        assert prediction_ids(demo_ws) == before
    finally:
        _stop(holder)
    # The kernel released the dead holder's lock: the next job simply runs.
    assert Workspace(demo_ws).compact(dry_run=False).rows_removed == 4


def test_killed_holders_stale_marker_gives_a_clear_message_and_force_works(demo_ws: Path, tmp_path: Path) -> None:
    # The holder starts a grandchild that inherits the locked descriptor, then is killed:
    # the lock stays held by a process that is not the recorded holder.
    pid_file = tmp_path / "grandchild.pid"
    holder = _spawn(f"""
        import subprocess, sys, time
        from pathlib import Path
        from n4a_widgets.core.locking import WorkspaceLock
        lock = WorkspaceLock(Path({str(demo_ws)!r}), "crashed job").acquire()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], pass_fds=(lock._fd,),
                                 stdout=subprocess.DEVNULL)
        Path({str(pid_file)!r}).write_text(str(child.pid))
        print("READY", flush=True)
        time.sleep(120)
    """)
    grandchild = int(pid_file.read_text())
    try:
        ws = Workspace(demo_ws)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with pytest.raises(WorkspaceBusyError) as info:
            ws.compact(dry_run=False)
        assert "crashed job" in info.value.message
        assert "no longer exists" in info.value.hint and "force" in info.value.hint
        report = ws.compact(dry_run=False, force=True)
        assert report.rows_removed == 4
    finally:
        _stop(holder)
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_nirs4all_array_lock_refuses(demo_ws: Path) -> None:
    holder = _spawn(f"""
        import time
        from pathlib import Path
        from nirs4all.pipeline.storage.array_store import ArrayStore
        with ArrayStore(Path({str(demo_ws)!r}))._process_lock():
            print("READY", flush=True)
            time.sleep(120)
    """)
    try:
        assert detect_writers(demo_ws).arrays_lock_held
        with pytest.raises(WorkspaceBusyError, match=r"arrays/\.lock"):
            Workspace(demo_ws).compact(dry_run=False)
    finally:
        _stop(holder)


def test_sqlite_write_lock_refuses(demo_ws: Path) -> None:
    holder = _spawn(f"""
        import sqlite3, time
        conn = sqlite3.connect({str(demo_ws / "store.sqlite")!r}, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        print("READY", flush=True)
        time.sleep(120)
    """)
    try:
        seen = detect_writers(demo_ws)
        assert seen.sqlite_writer_pid == holder.pid
        before = prediction_ids(demo_ws)
        with pytest.raises(WorkspaceBusyError, match="write lock"):
            Workspace(demo_ws).remove_bottom(0.3, dry_run=False)
        assert prediction_ids(demo_ws) == before
    finally:
        _stop(holder)


def test_run_left_running_by_a_crash_needs_force(demo_ws: Path) -> None:
    crashed = _spawn(f"""
        import os
        from pathlib import Path
        import nirs4all.pipeline.storage
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore
        store = WorkspaceStore(Path({str(demo_ws)!r}))
        store.begin_run("interrupted run", config={{}}, datasets=[])
        print("READY", flush=True)
        os._exit(1)
    """)
    crashed.wait(10)
    from n4a_widgets.core.readonly_sqlite import open_readonly

    with open_readonly(demo_ws / "store.sqlite") as conn:  # the row is in the WAL: not immutable=1
        assert conn.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0] == 1
    with pytest.raises(WorkspaceBusyError) as info:
        ensure_no_writer(demo_ws, settle_seconds=0.3)
    assert "interrupted run" in info.value.message and "force=True" in info.value.hint
    ws = Workspace(demo_ws)
    plan = ws.remove_bottom(0.3)
    with pytest.raises(WorkspaceBusyError):
        ws.remove_bottom(0.3, dry_run=False, plan_id=plan.plan_id)
    report = ws.remove_bottom(0.3, dry_run=False, plan_id=plan.plan_id, force=True)
    assert report.removed == plan.removed
    assert ws.health(deep=True).healthy


RUN_CODE = """
    from pathlib import Path
    print("READY", flush=True)
    from n4a_widgets.demo import run_dataset
    run_dataset(Path({ws!r}), "concurrent run", "regression", 150, 11, n_models=3)
    print("RUN DONE", flush=True)
"""


@pytest.mark.parametrize("operation", ["compact", "remove_bottom"])
def test_real_run_writing_while_maintenance_is_asked(demo_ws: Path, tmp_path: Path, operation: str) -> None:
    """Refused, or both complete; every prediction of the run is there with its arrays."""
    from n4a_widgets.demo import run_dataset

    reference = tmp_path / "reference"
    run_dataset(reference, "concurrent run", "regression", 150, 11, n_models=3)
    expected = sqlite_rows(reference / "store.sqlite", "SELECT count(*) FROM predictions")[0][0]

    ws = Workspace(demo_ws)
    runner = _spawn(RUN_CODE.format(ws=str(demo_ws)))
    outcomes: list[str] = []
    try:
        while runner.poll() is None:
            try:
                if operation == "compact":
                    ws.compact(dry_run=False)
                else:
                    ws.remove_bottom(0.2, dataset_name="corn moisture", dry_run=False)
                outcomes.append("done")
            except WorkspaceBusyError:
                outcomes.append("busy")
            except PlanChangedError:
                outcomes.append("plan changed")
            time.sleep(0.02)
        assert runner.returncode == 0, "the nirs4all run failed while maintenance ran"
    finally:
        _stop(runner)
    assert "done" in outcomes
    got = sqlite_rows(
        demo_ws / "store.sqlite", "SELECT count(*) FROM predictions WHERE dataset_name = 'concurrent run'"
    )[0][0]
    assert got == expected, outcomes
    health = ws.health(deep=True)
    assert health.healthy, (health.message, outcomes)
    run_ids = {
        r[0]
        for r in sqlite_rows(
            demo_ws / "store.sqlite", "SELECT prediction_id FROM predictions WHERE dataset_name = 'concurrent run'"
        )
    }
    import pyarrow.parquet as pq

    files = list((demo_ws / "arrays").glob("concurrent_run*.parquet"))
    assert len(files) == 1
    assert run_ids <= set(pq.read_table(files[0], columns=["prediction_id"]).column("prediction_id").to_pylist())
