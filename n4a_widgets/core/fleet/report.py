"""The fleet report: one row per workspace found under a folder.

``FleetEntry`` holds the keys the public API documents (``path``, ``storage_mode``,
``format``, ``migration_needed``, ``size_bytes``, ``total_predictions``,
``datasets``, ``last_run_at``, ``pending_tombstones``, ``error``) plus the
facts the browser needs for its totals (archive flags, reclaimable bytes,
backups of a migration).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..reports import Report

#: ``storage_mode`` of an entry whose store could not be read at all.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FleetEntry(Report):
    """One workspace (a folder, or a workspace inside a ``.zip``)."""

    path: str
    """Absolute path of the folder, or of the ``.zip`` for an archive."""
    storage_mode: str
    """``migrated``, ``legacy``, ``mid_migration``, ``new``, or ``unknown`` when unreadable."""
    format: str
    migration_needed: bool
    size_bytes: int
    """Bytes on disk (``stat`` only; for an archive, the compressed bytes of its members)."""
    total_predictions: int | None
    """None when it cannot be known cheaply (archives)."""
    datasets: tuple[str, ...]
    last_run_at: str | None
    pending_tombstones: int | None
    error: str | None
    """Why the store could not be read (message and hint), else None."""
    layout: str
    schema_version: int | None
    is_archive: bool
    archive_member: str | None
    """Folder of the workspace inside the archive (``""`` at its root)."""
    array_bytes: int
    metadata_bytes: int
    reclaimable_bytes: int
    """Estimated bytes a compaction frees (array bytes x pending deletes / array rows)."""
    backup_of: str | None
    """For ``<name>.legacy-<timestamp>`` folders left by a migration: the migrated workspace."""
    message: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SkippedFolder(Report):
    path: str
    reason: str


@dataclass(frozen=True)
class FleetReport(Report):
    """What ``scan_workspaces`` found under ``root``; read-only, no array file decoded."""

    root: str
    workspaces: tuple[FleetEntry, ...]
    skipped: tuple[SkippedFolder, ...]
    """Folders not looked into: unreadable, symlink loops."""
    workspace_count: int
    legacy_count: int
    archive_count: int
    total_bytes: int
    legacy_bytes: int
    """Bytes held by workspaces that need a migration (legacy or mid_migration)."""
    reclaimable_bytes: int
    """Compaction estimate plus the backups left by finished migrations."""
    backup_bytes: int
    folders_scanned: int
    max_depth: int
    cancelled: bool
    checked_at: str
    elapsed_s: float
    notes: tuple[str, ...]

    def entry(self, path: str) -> FleetEntry:
        """The entry for ``path`` (as listed in ``workspaces``)."""
        for item in self.workspaces:
            if item.path == str(path):
                return item
        raise KeyError(path)
