"""Which storage format a workspace folder holds: ``Workspace.status()``.

Detection only reads: SQLite through ``readonly_sqlite`` (no trace when no
writer is attached), DuckDB with ``read_only=True``, and ``stat`` for the rest.
nirs4all's own ``inspect_workspace_format`` opens SQLite in ``mode=ro`` and so
leaves ``-wal``/``-shm`` files behind; we reproduce its format names instead
(``tests/test_nirs4all_contract.py`` checks we agree with it on every fixture).

Status is the first answer of the CLI and of every widget, so it never imports
nirs4all (whose storage package pulls scikit-learn: seconds in a fresh
process).  The few nirs4all values it relies on are constants here, each
checked against nirs4all's own by ``tests/test_status.py``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .readonly_duckdb import duckdb_tables, open_duckdb_readonly
from .readonly_sqlite import open_readonly, table_names, user_version
from .reports import Report

MIGRATED = "migrated"
LEGACY = "legacy"
MID_MIGRATION = "mid_migration"
NEW = "new"
STORAGE_MODES = (MIGRATED, LEGACY, MID_MIGRATION, NEW)


#: ``nirs4all.pipeline.storage.store_schema.SCHEMA_VERSION`` of the supported nirs4all
#: (1.4.x); a contract test fails when the installed nirs4all disagrees.
CURRENT_SCHEMA_VERSION = 5

#: nirs4all's ``inspect_workspace_format(...).format`` names (``nirs4all.workspace.compat``).
FORMAT_DUCKDB = "duckdb-workspace"
FORMAT_SQLITE = "sqlite-workspace-v2"
FORMAT_SQLITE_INLINE = "sqlite-workspace-legacy-arrays"
FORMAT_RUNS_TREE = "fs-runs-legacy"
FORMAT_NEW = "new-or-empty"
NIRS4ALL_FORMATS = (FORMAT_DUCKDB, FORMAT_SQLITE, FORMAT_SQLITE_INLINE, FORMAT_RUNS_TREE, FORMAT_NEW)
#: Ours alone: the source folder of an interrupted migration is gone.
FORMAT_MISSING = "missing"


def current_schema_version() -> int:
    """The SQLite schema version the installed nirs4all writes (without importing nirs4all)."""
    return CURRENT_SCHEMA_VERSION


@dataclass(frozen=True)
class StorageStatus(Report):
    """What is on disk, in the words a user needs to decide what to do."""

    path: str
    storage_mode: str
    """One of ``migrated``, ``legacy``, ``mid_migration``, ``new``."""
    format: str
    """nirs4all's name for the format (``inspect_workspace_format``)."""
    layout: str
    """Finer description, e.g. ``duckdb-inline-arrays`` or ``sqlite-schema-2``."""
    schema_version: int | None
    migration_needed: bool
    has_prediction_arrays_table: bool
    has_arrays_directory: bool
    metadata_store: str | None
    message: str


def _has_runs_tree(root: Path) -> bool:
    runs = root / layout.RUNS_DIR
    return runs.is_dir() and any(runs.glob("*/*/manifest.yaml"))


def _parquet_files(root: Path) -> list[Path]:
    arrays = root / layout.ARRAYS_DIR
    return sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []


def _is_effectively_empty(root: Path) -> bool:
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name in layout.NIRS4ALL_FOLDERS:
            continue
        return False
    return True


def _interrupted_migration(root: Path) -> str | None:
    journal = layout.migration_journal(root)
    staging = layout.migration_staging_dir(root)
    if journal.exists():
        return f"A migration of this workspace was interrupted (journal {journal.name})."
    if staging.exists():
        return f"A migration of this workspace left a staging folder ({staging.name})."
    return None


def detect_status(root: Path) -> StorageStatus:
    """Classify ``root``; raises ``NotAWorkspaceError`` for unrelated folders."""
    from .errors import NotAWorkspaceError

    arrays_dir = (root / layout.ARRAYS_DIR).is_dir()
    interrupted = _interrupted_migration(root)
    if not root.exists():
        # Only reachable when a migration journal names this path.
        return StorageStatus(
            str(root),
            MID_MIGRATION,
            FORMAT_MISSING,
            "swapped-out",
            None,
            True,
            False,
            False,
            None,
            interrupted or "The workspace folder is missing.",
        )

    sqlite_path = root / layout.STORE_SQLITE
    duck_path = root / layout.STORE_DUCKDB

    if duck_path.exists() and not sqlite_path.exists():
        with open_duckdb_readonly(duck_path) as conn:
            tables = duckdb_tables(conn)
        inline = "prediction_arrays" in tables
        lay = "duckdb-inline-arrays" if inline else "duckdb-parquet-sidecars"
        mode = MID_MIGRATION if interrupted else LEGACY
        msg = interrupted or (
            "Legacy DuckDB store with prediction arrays inside the database (nirs4all 0.7.x)."
            if inline
            else "Legacy DuckDB metadata with Parquet array files (nirs4all 0.8.0-0.8.3)."
        )
        return StorageStatus(
            str(root),
            mode,
            FORMAT_DUCKDB,
            lay,
            None,
            True,
            inline,
            arrays_dir,
            layout.STORE_DUCKDB,
            msg + " Migrate it to use it with nirs4all 1.x.",
        )

    if sqlite_path.exists():
        with open_readonly(sqlite_path) as conn:
            tables = table_names(conn)
            version = user_version(conn)
            inline = "prediction_arrays" in tables
            inline_rows = 0
            if inline:
                try:
                    inline_rows = conn.execute("SELECT count(*) FROM prediction_arrays").fetchone()[0]
                except sqlite3.Error:
                    inline_rows = 0
        fmt = FORMAT_SQLITE_INLINE if inline else FORMAT_SQLITE
        current = current_schema_version()
        if interrupted or (inline and inline_rows and _parquet_files(root)) or duck_path.exists():
            why = interrupted or (
                "Both a legacy DuckDB store and a SQLite store are present: an earlier conversion stopped half-way."
                if duck_path.exists()
                else "Arrays are both inline (prediction_arrays table) and in Parquet files: "
                "a conversion stopped half-way."
            )
            return StorageStatus(
                str(root),
                MID_MIGRATION,
                fmt,
                "sqlite-mixed" if not interrupted else f"sqlite-schema-{version}",
                version,
                True,
                inline,
                arrays_dir,
                layout.STORE_SQLITE,
                why + " Resume or roll back the migration.",
            )
        if inline:
            return StorageStatus(
                str(root),
                LEGACY,
                fmt,
                "sqlite-inline-arrays",
                version,
                True,
                True,
                arrays_dir,
                layout.STORE_SQLITE,
                "SQLite store with arrays inside the database (older development builds). Migrate it.",
            )
        if version < current:
            return StorageStatus(
                str(root),
                LEGACY,
                fmt,
                f"sqlite-schema-{version}",
                version,
                True,
                False,
                arrays_dir,
                layout.STORE_SQLITE,
                f"SQLite store with outdated schema {version} (nirs4all 0.8.4-0.11); "
                f"nirs4all 1.x needs schema {current}. Migrate it (the upgrade runs on a copy).",
            )
        note = (
            "Current format."
            if version == current
            else (f"Schema {version} is newer than the installed nirs4all supports ({current}); upgrade nirs4all.")
        )
        return StorageStatus(
            str(root),
            MIGRATED,
            fmt,
            f"sqlite-schema-{version}",
            version,
            False,
            False,
            arrays_dir,
            layout.STORE_SQLITE,
            note,
        )

    if _has_runs_tree(root):
        return StorageStatus(
            str(root),
            MID_MIGRATION if interrupted else LEGACY,
            FORMAT_RUNS_TREE,
            "runs-manifest-tree",
            None,
            True,
            False,
            arrays_dir,
            None,
            interrupted or "Legacy runs/ manifest tree (nirs4all <= 0.6). Migrate it to use it with nirs4all 1.x.",
        )

    if interrupted:
        return StorageStatus(
            str(root),
            MID_MIGRATION,
            FORMAT_NEW,
            "staging-only",
            None,
            True,
            False,
            arrays_dir,
            None,
            interrupted,
        )
    if not _is_effectively_empty(root):
        raise NotAWorkspaceError(
            f"{root} is not a nirs4all workspace: it holds no store.sqlite, store.duckdb or runs/ manifests."
        )
    return StorageStatus(
        str(root),
        NEW,
        FORMAT_NEW,
        "empty",
        None,
        False,
        False,
        arrays_dir,
        None,
        "No nirs4all store yet: a nirs4all.run(workspace_path=...) here creates one.",
    )
