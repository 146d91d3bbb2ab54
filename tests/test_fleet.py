"""scan_workspaces on a real mixed tree: every format, archives, traps; no byte changed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from n4a_widgets import WorkspaceError, scan_workspaces
from n4a_widgets.core import layout

from helpers import LEGACY_FIXTURES, tree_hash

LEGACY = sorted(p.name for p in LEGACY_FIXTURES.iterdir() if p.is_dir())


def _zip_folder(folder: Path, archive: Path, inside: str) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{inside}/{path.relative_to(folder)}" if inside else str(path.relative_to(folder)))


def _open_modes(root: Path) -> None:
    """Readable by everyone, whatever the umask the repo was cloned with."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = Path(dirpath) / f
            if not p.is_symlink():
                p.chmod(0o644)


@pytest.fixture(scope="module")
def fleet(demo_master: Path, small_master: Path) -> Iterator[tuple[Path, dict[str, tuple[str, bool]]]]:
    """A tree of every kind of folder, and {relative path: (storage_mode, is_archive)} expected."""
    base = Path(tempfile.mkdtemp(prefix="n4a-fleet-"))
    root = base / "tree"
    expected: dict[str, tuple[str, bool]] = {}
    for name in LEGACY:  # every format made by the real old releases
        shutil.copytree(LEGACY_FIXTURES / name, root / "old" / name)
        expected[f"old/{name}"] = ("legacy", False)
    shutil.copytree(small_master, root / "projects" / "small")
    expected["projects/small"] = ("migrated", False)
    shutil.copytree(demo_master, root / "projects" / "deep" / "er" / "demo")
    expected["projects/deep/er/demo"] = ("migrated", False)
    # a decoy inside a workspace's artifacts/: never searched
    (root / "projects" / "small" / "artifacts" / "zz").mkdir(parents=True)
    (root / "projects" / "small" / "artifacts" / "zz" / "store.sqlite").write_bytes(b"decoy")
    # half-finished conversions: a staging folder beside the source; a journal whose source was swapped out;
    # a DuckDB and a SQLite store side by side
    mid = root / "mid"
    shutil.copytree(LEGACY_FIXTURES / "v0_8_11_sqlite", mid / "staged")
    shutil.copytree(small_master, layout.migration_staging_dir(mid / "staged"))
    expected["mid/staged"] = ("mid_migration", False)
    layout.migration_journal(mid / "gone").write_text(json.dumps({"phase": "swapped"}))
    expected["mid/gone"] = ("mid_migration", False)
    shutil.copytree(LEGACY_FIXTURES / "v0_8_0_duckdb_sidecars", mid / "mixed")
    shutil.copy2(small_master / "store.sqlite", mid / "mixed" / "store.sqlite")
    expected["mid/mixed"] = ("mid_migration", False)
    # archives: a cluster task's workspace.zip (folder one level down), a zip of a legacy store at its root,
    # and a zip that holds no workspace
    (root / "cluster" / "task1").mkdir(parents=True)
    _zip_folder(small_master, root / "cluster" / "task1" / "workspace.zip", "workspace")
    expected["cluster/task1/workspace.zip"] = ("migrated", True)
    _zip_folder(LEGACY_FIXTURES / "v0_9_4_sqlite", root / "cluster" / "old.zip", "")
    expected["cluster/old.zip"] = ("legacy", True)
    with zipfile.ZipFile(root / "cluster" / "docs.zip", "w") as zf:
        zf.writestr("readme.txt", "not a workspace")
    # a workspace created but never written, an empty folder, plain files, a corrupt store
    (root / "fresh" / "arrays").mkdir(parents=True)
    expected["fresh"] = ("new", False)
    (root / "empty").mkdir()
    (root / "misc").mkdir()
    (root / "misc" / "notes.txt").write_text("hello")
    (root / "notes.csv").write_text("a,b\n1,2\n")
    (root / "broken").mkdir()
    (root / "broken" / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    expected["broken"] = ("unknown", False)
    # unreadable for anyone but its owner (root); holds a workspace
    shutil.copytree(small_master, root / "locked" / "hidden_ws")
    _open_modes(root)
    os.symlink("..", root / "misc" / "loop")  # a symlink loop back to the tree's root
    (root / "locked").chmod(0o700)
    base.chmod(0o755)
    try:
        yield root, expected
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(base)


def _found(report, root: Path) -> dict[str, tuple[str, bool]]:
    return {os.path.relpath(e.path, root): (e.storage_mode, e.is_archive) for e in report.workspaces}


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Act as user 'nobody' (effective ids) so permissions apply although tests run as root."""
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_scan_finds_exactly_the_workspaces_and_changes_nothing(fleet) -> None:
    root, expected = fleet
    before = tree_hash(root)
    report = scan_workspaces(root)
    assert tree_hash(root) == before
    found = _found(report, root)
    with_locked = {**expected, "locked/hidden_ws": ("migrated", False)}
    if os.geteuid() == 0:
        assert found == with_locked
    else:  # an ordinary user cannot read locked/
        assert found == expected
    assert any(s.path.endswith("misc/loop") and "symlink" in s.reason for s in report.skipped)
    assert report.workspace_count == len(found)
    assert report.archive_count == 2
    assert report.legacy_count == sum(1 for m, _ in found.values() if m in ("legacy", "mid_migration"))


def test_unreadable_folder_is_skipped_with_a_note(fleet) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to take the 'nobody' identity")
    root, expected = fleet
    before = tree_hash(root)
    with _as_nobody():
        report = scan_workspaces(root)
    assert tree_hash(root) == before
    assert _found(report, root) == expected
    locked = [s for s in report.skipped if s.path == str(root / "locked")]
    assert locked and "permission denied" in locked[0].reason
    assert any("locked" in n for n in report.notes)
    # every row but the corrupt store was readable by nobody
    assert [e.path for e in report.workspaces if e.error] == [str(root / "broken")]


def test_entry_facts(fleet, demo_master: Path) -> None:
    root, _ = fleet
    report = scan_workspaces(root)
    keys = {"path", "storage_mode", "format", "migration_needed", "size_bytes", "total_predictions", "datasets",
            "last_run_at", "pending_tombstones", "error"}
    for row in report.to_dict()["workspaces"]:
        assert keys <= set(row)
    demo = report.entry(str(root / "projects/deep/er/demo"))
    truth = sqlite3.connect(f"{(demo_master / 'store.sqlite').as_uri()}?mode=ro&immutable=1", uri=True)
    count, names = truth.execute("SELECT count(*), group_concat(DISTINCT dataset_name) FROM predictions").fetchone()
    truth.close()
    assert demo.total_predictions == count
    assert set(demo.datasets) == set(names.split(","))
    assert demo.pending_tombstones == 4
    assert demo.reclaimable_bytes > 0 and demo.migration_needed is False
    assert demo.size_bytes == sum(p.stat().st_size for p in demo_master.rglob("*") if p.is_file())
    assert demo.last_run_at and demo.last_run_at.startswith("20")
    for name in LEGACY:
        old = report.entry(str(root / "old" / name))
        assert old.migration_needed is True and old.error is None
        assert old.total_predictions and old.total_predictions > 0
        assert len(old.datasets) == 3 and old.last_run_at
    broken = report.entry(str(root / "broken"))
    assert broken.error and "not a readable SQLite" in broken.error
    task = report.entry(str(root / "cluster/task1/workspace.zip"))
    assert task.archive_member == "workspace" and task.schema_version == 5 and task.total_predictions is None
    assert task.datasets == ("synthetic_regression",)
    assert report.entry(str(root / "cluster/old.zip")).archive_member == ""
    assert report.legacy_bytes <= report.total_bytes


def test_max_depth_and_cancel(fleet) -> None:
    root, _ = fleet
    # max_depth counts folder levels below root: a workspace at depth 2 is found with max_depth=2, not 1
    two = _found(scan_workspaces(root, max_depth=2), root)
    assert "projects/small" in two and "old/v0_7_1_duckdb_inline" in two and "cluster/task1/workspace.zip" in two
    assert "projects/deep/er/demo" not in two
    one = _found(scan_workspaces(root, max_depth=1), root)
    assert "fresh" in one and "cluster/old.zip" in one
    assert "projects/small" not in one and "cluster/task1/workspace.zip" not in one
    stop = threading.Event()
    stop.set()
    cancelled = scan_workspaces(root, cancel=stop)
    assert cancelled.cancelled and cancelled.workspaces == ()
    seen: list[float] = []
    scan_workspaces(root, progress=lambda f, _m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)
    with pytest.raises(WorkspaceError, match="max_depth"):
        scan_workspaces(root, max_depth=-1)


def test_scan_of_a_single_workspace_and_bad_roots(small_ws: Path, tmp_path: Path) -> None:
    report = scan_workspaces(small_ws)
    assert [e.path for e in report.workspaces] == [str(small_ws)]
    assert scan_workspaces(tmp_path / "small" / "arrays").workspaces == ()  # nothing inside arrays/ is one
    with pytest.raises(WorkspaceError, match="does not exist"):
        scan_workspaces(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        scan_workspaces(tmp_path / "f.txt")


def test_cli_scan(fleet) -> None:
    root, _ = fleet
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-m", "n4a_widgets", "scan", str(root), "--json", "--max-depth", "2"],
        capture_output=True, text=True, env=env, check=True,
    )
    data = json.loads(out.stdout)
    assert data == {**data, "root": str(root), "max_depth": 2}
    assert {os.path.relpath(w["path"], root) for w in data["workspaces"]} >= {"projects/small", "old/v0_9_4_sqlite"}
    human = subprocess.run([sys.executable, "-m", "n4a_widgets", "scan", str(root)], capture_output=True, text=True,
                           env=env, check=True)
    assert "need a migration" in human.stdout and "v0_7_1_duckdb_inline" in human.stdout
    bad = subprocess.run([sys.executable, "-m", "n4a_widgets", "scan", str(root / "nope")], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_no_array_file_is_read(small_ws: Path) -> None:
    """Array files are only stat'ed: a garbage array file changes nothing in the row (health would flag it)."""
    clean = scan_workspaces(small_ws).workspaces[0]
    for f in (small_ws / "arrays").glob("*.parquet"):
        f.write_bytes(b"\0" * f.stat().st_size)  # same size, not Parquet any more
    row = scan_workspaces(small_ws).workspaces[0]
    assert row.error is None and row.notes == ()
    assert (row.total_predictions, row.datasets, row.size_bytes) == (
        clean.total_predictions, clean.datasets, clean.size_bytes)
