"""Crash safety: kill -9 at named points, a full disk, then resume or roll back.

Each migration runs in a subprocess.  ``N4A_MIGRATION_TEST_KILL_AT`` (a test
hook in ``core/migration/journal.py``) makes it SIGKILL itself at a named point; the
disk-full case sets ``RLIMIT_FSIZE`` (with SIGXFSZ ignored, so writes fail with
EFBIG instead of killing the process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from n4a_widgets import Workspace
from n4a_widgets.core import layout
from n4a_widgets.core.migration import KILL_POINTS

from helpers import tree_hash

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
from n4a_widgets import Workspace, WorkspaceError
out = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
try:
    r = Workspace(sys.argv[1]).migrate(dry_run=False, output=out)
    print(json.dumps({"ok": True, "state": r.state}))
except WorkspaceError as exc:
    print(json.dumps({"ok": False, **exc.to_dict()}))
"""

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import n4a_widgets.core.migration, nirs4all.pipeline.storage.workspace_store  # noqa: imports before the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
""" + SCRIPT


def run_migration(source: Path, *, kill_at: str | None = None, output: Path | None = None,
                  script: str = SCRIPT, extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("N4A_MIGRATION_TEST_KILL_AT", None)
    if kill_at:
        env["N4A_MIGRATION_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-c", script, str(source), str(output or ""), *(extra or [])],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )


def leftovers(source: Path) -> list[str]:
    """Anything of ours beside the source, except the (empty, unlocked) lock marker."""
    return sorted(
        p.name for p in source.parent.iterdir()
        if p.name != source.name and not p.name.endswith(".n4a-migration.lock")
    )


@pytest.mark.parametrize("point", KILL_POINTS)
@pytest.mark.parametrize("then", ["resume", "rollback"])
def test_kill_then_resume_or_rollback(point: str, then: str, legacy_copy) -> None:
    source = legacy_copy("v0_7_1_duckdb_inline")
    before = tree_hash(source)
    proc = run_migration(source, kill_at=point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    status = Workspace(source).status()
    assert status.storage_mode == "mid_migration", status
    # The original bytes exist, untouched, at the source path or under the journal's backup name.
    journal = json.loads(layout.migration_journal(source).read_text())
    original = source if (source / "store.duckdb").exists() else Path(journal["backup"])
    assert tree_hash(original) == before

    preview = Workspace(source).migrate(dry_run=True, action=then)
    assert preview.state == "mid_migration" and preview.dry_run
    report = Workspace(source).migrate(dry_run=False, action=then)
    assert not layout.migration_journal(source).exists()
    assert not layout.migration_staging_dir(source).exists()
    if then == "rollback":
        assert report.state == "rolled_back"
        assert tree_hash(source) == before
        assert Workspace(source).status().storage_mode == "legacy"
        assert leftovers(source) == []
    else:
        assert report.state == "published" and report.verification_passed
        assert report.rows_migrated == 42
        assert Workspace(source).status().storage_mode == "migrated"
        backup = Path(report.backup_path)
        assert tree_hash(backup) == before
        assert leftovers(source) == [backup.name]


def test_kill_with_output_then_resume(legacy_copy, tmp_path: Path) -> None:
    source = legacy_copy("v0_8_0_duckdb_sidecars")
    before = tree_hash(source)
    out = tmp_path / "converted"
    proc = run_migration(source, kill_at="verified", output=out)
    assert proc.returncode == -signal.SIGKILL
    assert Workspace(source).status().storage_mode == "mid_migration"
    assert tree_hash(source) == before
    report = Workspace(source).migrate(dry_run=False)  # action="auto" resumes
    assert report.state == "published" and report.output_path == str(out)
    assert Workspace(out).status().storage_mode == "migrated"
    assert tree_hash(source) == before
    assert Workspace(source).status().storage_mode == "legacy"


@pytest.mark.parametrize("name", ["v0_7_1_duckdb_inline", "v0_9_4_sqlite"])
def test_disk_full_gives_a_clean_error(name: str, legacy_copy) -> None:
    source = legacy_copy(name)
    before = tree_hash(source)
    proc = run_migration(source, script=LIMITED, extra=[str(20_000)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is False and result["type"] == "MigrationError", result
    assert "disk space" in result["message"] and "untouched" in result["hint"]
    assert tree_hash(source, ignore_empty_sidecars=True) == before
    assert leftovers(source) == []
    assert Workspace(source).status().storage_mode == "legacy"
