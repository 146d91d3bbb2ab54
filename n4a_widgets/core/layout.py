"""Names of the files and folders a workspace (and a migration of it) uses.

One place for every name, so status, health, maintenance and migration agree
on what they look at.
"""

from __future__ import annotations

from pathlib import Path

STORE_SQLITE = "store.sqlite"
STORE_DUCKDB = "store.duckdb"
ARRAYS_DIR = "arrays"
ARTIFACTS_DIR = "artifacts"
EXPORTS_DIR = "exports"
LOGS_DIR = "logs"
RUNS_DIR = "runs"
TOMBSTONES_FILE = "_tombstones.json"
ARRAYS_LOCK_FILE = ".lock"

#: Our own cross-process job marker, kept inside the workspace it protects.
JOB_LOCK_FILE = ".n4a_widgets.lock"

#: Folder names nirs4all creates itself; a folder holding only these is a new workspace.
NIRS4ALL_FOLDERS = frozenset(
    {ARRAYS_DIR, ARTIFACTS_DIR, EXPORTS_DIR, LOGS_DIR, RUNS_DIR, "native_results", "library", ".cache", ".tmp"}
)


def sqlite_sidecars(root: Path) -> list[Path]:
    """The SQLite WAL and shared-memory files that belong to ``store.sqlite``."""
    return [root / f"{STORE_SQLITE}{suffix}" for suffix in ("-wal", "-shm", "-journal")]


def migration_staging_dir(source: Path) -> Path:
    """Where a migration of ``source`` builds the new workspace before publishing."""
    return source.parent / f".{source.name}.n4a-migration-staging"


def migration_journal(source: Path) -> Path:
    """The small JSON file recording the phases of a migration of ``source``."""
    return source.parent / f".{source.name}.n4a-migration.json"


def migration_backup_prefix(source: Path) -> str:
    """Backups of a migrated source are named ``<name>.legacy-<timestamp>``."""
    return f"{source.name}.legacy-"

#: The workspace's own history of write actions (append-only JSON lines; core/history.py).
HISTORY_FILE = ".n4a_history.jsonl"
#: What destructive actions deleted, kept for undo until purged (core/trash.py).
TRASH_DIR = ".n4a_trash"
