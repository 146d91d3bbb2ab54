"""Workspace.status() on every format, never changing a byte."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from n4a_widgets import NotAWorkspaceError, Workspace, WorkspaceError
from n4a_widgets.core import layout

from helpers import tree_hash


def test_current_workspace_is_migrated(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    s = Workspace(demo_ws).status()
    assert s.storage_mode == "migrated"
    assert s.format == "sqlite-workspace-v2"
    assert s.schema_version == 5
    assert s.migration_needed is False
    assert s.has_prediction_arrays_table is False
    assert s.has_arrays_directory is True
    assert tree_hash(demo_ws) == before


def test_status_leaves_no_sqlite_sidecars(demo_ws: Path) -> None:
    for side in layout.sqlite_sidecars(demo_ws):
        side.unlink(missing_ok=True)
    before = tree_hash(demo_ws)
    Workspace(demo_ws).status()
    Workspace(demo_ws).health()
    Workspace(demo_ws).stats()
    assert tree_hash(demo_ws) == before
    assert not (demo_ws / "store.sqlite-wal").exists()


def test_empty_folder_is_new(tmp_path: Path) -> None:
    s = Workspace(tmp_path).status()
    assert s.storage_mode == "new"
    assert s.migration_needed is False
    h = Workspace(tmp_path).health()
    assert h.total_predictions == 0 and h.datasets == ()


def test_unrelated_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a workspace")
    with pytest.raises(NotAWorkspaceError, match="not a nirs4all workspace"):
        Workspace(tmp_path).status()


def test_missing_path_and_file(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace(tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace(f)


def test_old_sqlite_schema_is_legacy(demo_ws: Path) -> None:
    # An outdated schema is recognised from PRAGMA user_version (what nirs4all
    # itself checks); here we lower it on a private copy to exercise the branch.
    conn = sqlite3.connect(demo_ws / "store.sqlite")
    conn.execute("PRAGMA user_version=2")
    conn.close()
    before = tree_hash(demo_ws)
    s = Workspace(demo_ws).status()
    assert (s.storage_mode, s.schema_version, s.migration_needed) == ("legacy", 2, True)
    assert s.format == "sqlite-workspace-v2"
    assert tree_hash(demo_ws) == before


def test_sqlite_with_inline_arrays_table(demo_ws: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(demo_ws / "store.sqlite")
    conn.execute("CREATE TABLE prediction_arrays (prediction_id TEXT PRIMARY KEY, y_true BLOB)")
    conn.execute("INSERT INTO prediction_arrays VALUES ('x', NULL)")
    conn.commit()
    conn.close()
    # Arrays both inline and in Parquet: a conversion that stopped half-way.
    s = Workspace(demo_ws).status()
    assert s.storage_mode == "mid_migration"
    assert s.has_prediction_arrays_table is True
    # Inline only (no Parquet files): plain legacy.
    for p in (demo_ws / "arrays").glob("*.parquet"):
        p.unlink()
    s = Workspace(demo_ws).status()
    assert (s.storage_mode, s.format) == ("legacy", "sqlite-workspace-legacy-arrays")


def test_runs_manifest_tree_is_legacy(tmp_path: Path) -> None:
    manifest = tmp_path / "ws" / "runs" / "2024-01-01_ds" / "0001_pipeline" / "manifest.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("pipeline: {}\n")
    s = Workspace(tmp_path / "ws").status()
    assert (s.storage_mode, s.format, s.migration_needed) == ("legacy", "fs-runs-legacy", True)


def test_interrupted_migration_is_mid_migration(demo_ws: Path) -> None:
    journal = layout.migration_journal(demo_ws)
    journal.write_text(json.dumps({"phase": "staging"}))
    try:
        assert Workspace(demo_ws).status().storage_mode == "mid_migration"
        # Between the two renames the source path is missing: still reported.
        moved = demo_ws.with_name("moved")
        demo_ws.rename(moved)
        s = Workspace(demo_ws).status()
        assert s.storage_mode == "mid_migration"
        moved.rename(demo_ws)
    finally:
        journal.unlink()


def test_corrupt_sqlite_is_a_clear_error(demo_ws: Path) -> None:
    from n4a_widgets import CorruptStoreError

    (demo_ws / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    before = tree_hash(demo_ws)
    with pytest.raises(CorruptStoreError, match="not a readable SQLite"):
        Workspace(demo_ws).status()
    with pytest.raises(CorruptStoreError):
        Workspace(demo_ws).health()
    assert tree_hash(demo_ws) == before


@contextlib.contextmanager
def _as_nobody():
    """Act as user 'nobody' (effective ids) so permissions apply although tests run as root."""
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_no_read_permission(demo_master: Path) -> None:
    # Import as root all the package code the 'nobody' steps run: the clone may sit
    # in a folder 'nobody' cannot enter (a 0700 temp dir), and only the workspace's
    # permissions are under test here.
    import n4a_widgets.core.health  # noqa: F401
    import n4a_widgets.core.status  # noqa: F401
    from n4a_widgets import StorageHealth

    if os.geteuid() != 0:
        pytest.skip("needs root to take the 'nobody' identity")
    base = Path(tempfile.mkdtemp(prefix="n4a-perm-"))
    try:
        base.chmod(0o755)
        ws = base / "ws"
        shutil.copytree(demo_master, ws)
        before = tree_hash(ws)
        ws.chmod(0o700)  # folder unreadable for others
        with _as_nobody(), pytest.raises(WorkspaceError, match="No permission to read"):
            Workspace(ws)
        with _as_nobody():
            w = StorageHealth(ws)
        assert w.state == "error" and "No permission" in w.error["message"]
        ws.chmod(0o755)
        (ws / "store.sqlite").chmod(0o600)  # folder readable, store not
        with _as_nobody(), pytest.raises(WorkspaceError, match=r"(?i)permission"):
            Workspace(ws).health()
        (ws / "store.sqlite").chmod(0o644)
        assert tree_hash(ws) == before
    finally:
        shutil.rmtree(base)


# --------------------------------------------------------------- real legacy stores

def _manifest() -> dict:
    from helpers import LEGACY_FIXTURES

    path = LEGACY_FIXTURES / "manifest.json"
    return json.loads(path.read_text())["fixtures"] if path.exists() else {}


EXPECTED_LAYOUT = {
    "duckdb-inline-arrays": ("duckdb-workspace", "duckdb-inline-arrays", True),
    "duckdb-parquet-sidecars": ("duckdb-workspace", "duckdb-parquet-sidecars", False),
}


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_real_legacy_fixture_status_and_health(name: str, legacy_copy) -> None:
    info = _manifest()[name]
    ws_path = legacy_copy(name)
    before = tree_hash(ws_path)
    ws = Workspace(ws_path)
    s = ws.status()
    assert s.storage_mode == "legacy"
    assert s.migration_needed is True
    assert s.format == info["inspect_workspace_format"]["format"]
    fmt = info["storage_format"]
    if fmt in EXPECTED_LAYOUT:
        assert (s.format, s.layout, s.has_prediction_arrays_table) == EXPECTED_LAYOUT[fmt]
    if info["sqlite_schema_version"] is not None:
        assert s.schema_version == info["sqlite_schema_version"]
        assert s.layout == f"sqlite-schema-{info['sqlite_schema_version']}"
    h = ws.health()
    assert h.migration_needed is True
    assert h.total_predictions == info["predictions_total"]
    assert {d.name: d.prediction_count for d in h.datasets} == info["predictions_per_dataset"]
    assert "Migration needed" in h.message
    ws.stats()
    assert tree_hash(ws_path) == before, "status/health/stats changed a legacy workspace"
