"""The migration on the one write skeleton: plan_id, the guard's lock beside the source, its cleanup."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from n4a_widgets import MigrationError, PlanChangedError, Workspace, WorkspaceBusyError
from n4a_widgets.core import layout
from n4a_widgets.core.migration import lock_marker

from helpers import tree_hash


def test_dry_run_plan_id_executes_that_plan_with_the_backup_name_it_showed(legacy_copy) -> None:
    source = legacy_copy("v0_7_1_duckdb_inline")
    plan = Workspace(source).migrate(dry_run=True)
    assert plan.plan_id and plan.backup_path
    time.sleep(1.1)  # a fresh timestamp would now differ from the dry run's
    report = Workspace(source).migrate(dry_run=False, plan_id=plan.plan_id)
    assert report.state == "published" and report.verification_passed
    assert report.backup_path == plan.backup_path
    assert Path(plan.backup_path).is_dir()
    assert report.plan_id == plan.plan_id
    assert (report.total_rows, report.rows_migrated, report.datasets) == (
        plan.total_rows, plan.rows_migrated, plan.datasets)
    assert not lock_marker(source).exists()


def test_source_changed_since_the_dry_run_is_refused_and_nothing_written(legacy_copy) -> None:
    source = legacy_copy("v0_8_0_duckdb_sidecars")
    plan = Workspace(source).migrate(dry_run=True)
    (source / "notes.txt").write_text("a file written after the preview")
    before = tree_hash(source)
    siblings = sorted(p.name for p in source.parent.iterdir())
    with pytest.raises(PlanChangedError):
        Workspace(source).migrate(dry_run=False, plan_id=plan.plan_id)
    assert tree_hash(source) == before
    assert sorted(p.name for p in source.parent.iterdir()) == siblings  # no staging, journal, marker
    assert not layout.migration_staging_dir(source).exists()


def test_output_plan_id_changes_with_the_output(legacy_copy, tmp_path: Path) -> None:
    source = legacy_copy("v0_10_3_sqlite")
    a = Workspace(source).migrate(dry_run=True, output=tmp_path / "a")
    b = Workspace(source).migrate(dry_run=True, output=tmp_path / "b")
    assert a.plan_id != b.plan_id and a.backup_path is None
    with pytest.raises(PlanChangedError):
        Workspace(source).migrate(dry_run=False, output=tmp_path / "b", plan_id=a.plan_id)
    report = Workspace(source).migrate(dry_run=False, output=tmp_path / "a", plan_id=a.plan_id)
    assert report.output_path == str(tmp_path / "a") and report.verification_passed
    assert not lock_marker(source).exists()


def test_lock_marker_removed_after_a_failed_migration(legacy_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    from n4a_widgets.core.migration import execute

    source = legacy_copy("v0_7_1_duckdb_inline")

    def broken(run, reader, staging, skip):
        raise MigrationError("sabotaged")

    monkeypatch.setattr(execute, "_build_convert", broken)
    with pytest.raises(MigrationError, match="sabotaged"):
        Workspace(source).migrate(dry_run=False)
    assert not lock_marker(source).exists()
    assert not layout.migration_staging_dir(source).exists()


def test_marker_held_by_another_process_is_left_alone(legacy_copy) -> None:
    """A migration refused as busy must not remove the other holder's marker."""
    from n4a_widgets.core.locking import WorkspaceLock

    source = legacy_copy("v0_7_1_duckdb_inline")
    lock = WorkspaceLock(source, "migrate", marker=lock_marker(source)).acquire()
    try:
        with pytest.raises(WorkspaceBusyError):
            Workspace(source).migrate(dry_run=False)
        assert lock_marker(source).exists()
    finally:
        lock.release()


def test_replaced_marker_is_detected(legacy_copy) -> None:
    """The marker we locked was unlinked and re-created by another process: refuse, write nothing."""
    from n4a_widgets.core.migration.context import lock_still_ours

    source = legacy_copy("v0_7_1_duckdb_inline")
    marker = lock_marker(source)
    record = {"pid": os.getpid() + 1, "host": "elsewhere", "operation": "migrate",
              "since": "2026-01-01T00:00:00+00:00"}
    marker.write_text(json.dumps(record))
    with pytest.raises(WorkspaceBusyError):
        lock_still_ours(source)


def test_interrupted_migration_plan_id(legacy_copy) -> None:
    """The dry run of a mid-migration state has a plan_id; rollback with it restores the source."""
    source = legacy_copy("v0_7_1_duckdb_inline")
    before = tree_hash(source)
    layout.migration_staging_dir(source).mkdir()
    preview = Workspace(source).migrate(dry_run=True, action="rollback")
    assert preview.state == "mid_migration" and preview.plan_id
    report = Workspace(source).migrate(dry_run=False, action="rollback", plan_id=preview.plan_id)
    assert report.state == "rolled_back" and report.plan_id == preview.plan_id
    assert tree_hash(source) == before
    assert not lock_marker(source).exists()


def test_cli_prints_the_plan_id_and_executes_it(legacy_copy, tmp_path: Path) -> None:
    import subprocess
    import sys

    source = legacy_copy("v0_10_3_sqlite")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    dry = subprocess.run([sys.executable, "-m", "n4a_widgets", "migrate", str(source), "--output", str(out), "--json"],
                         capture_output=True, text=True, env=env, check=True)
    plan_id = json.loads(dry.stdout)["plan_id"]
    real = subprocess.run([sys.executable, "-m", "n4a_widgets", "migrate", str(source), "--output", str(out), "--yes",
                           "--plan-id", plan_id, "--json"], capture_output=True, text=True, env=env)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["plan_id"] == plan_id


_FORCE_BARS = r'''
import sys
import duckdb

_connect = duckdb.connect


class Conn:
    # A connection whose progress bars come on (shown at once, as if every query were slow) with its first
    # query, unless it was turned quiet first.
    def __init__(self, conn):
        self._conn, self._quiet, self._armed = conn, False, False

    def _arm(self, sql):
        if "enable_progress_bar" in sql and "false" in sql.lower():
            self._quiet = True
        elif not self._quiet and not self._armed:
            self._conn.execute("SET enable_progress_bar = true")
            self._conn.execute("SET progress_bar_time = 0")
            self._armed = True

    def execute(self, sql, *args, **kwargs):
        self._arm(sql)
        return self._conn.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self._arm(sql)
        return self._conn.sql(sql, *args, **kwargs)

    def cursor(self):
        return Conn(self._conn.cursor()) if not self._quiet else self._conn.cursor()

    def __getattr__(self, name):
        return getattr(self._conn, name)


duckdb.connect = lambda *args, **kwargs: Conn(_connect(*args, **kwargs))
from n4a_widgets import Workspace

report = Workspace(sys.argv[1]).migrate(dry_run=False, output=sys.argv[2])
assert report.verification_passed
print("MIGRATED")
'''


def test_no_progress_bar_or_log_in_the_output(legacy_copy, tmp_path: Path) -> None:
    """A migration prints nothing of its own engines (in a notebook it would land in the cell output)."""
    import subprocess
    import sys

    source = legacy_copy("v0_7_1_duckdb_inline")
    script = tmp_path / "force_bars.py"
    script.write_text(_FORCE_BARS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, str(script), str(source), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MIGRATED", proc.stdout[:500]
    assert "▕" not in proc.stderr and "%" not in proc.stderr, proc.stderr[:500]
