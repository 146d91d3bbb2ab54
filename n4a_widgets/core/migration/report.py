"""The report every migration call returns (dry run, execution, resume, rollback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..reports import Report

if TYPE_CHECKING:
    pass



@dataclass(frozen=True)
class MigrationReport(Report):
    """What a migration did (or, with ``dry_run=True``, would do)."""

    source_path: str
    source_format: str
    """``StorageStatus.layout`` of the source, e.g. ``duckdb-inline-arrays``."""
    dry_run: bool
    action: str
    """``migrate``, ``resume``, ``rollback`` or ``inspect`` (dry run of a mid-migration state)."""
    state: str
    """``planned``, ``published``, ``rolled_back``, ``failed``, ``mid_migration``."""
    total_rows: int
    rows_migrated: int
    datasets_migrated: int
    datasets: tuple[dict[str, Any], ...]
    verification_passed: bool
    verification_sample_size: int
    verification_mismatches: int
    mismatch_details: tuple[str, ...]
    arrays_verified: int
    array_values_verified: int
    artifacts_verified: int
    duckdb_size_before: int
    """Bytes of the legacy metadata store (``store.duckdb`` or the old ``store.sqlite``)."""
    duckdb_size_after: int
    """Bytes of the new ``store.sqlite`` (0 in a dry run)."""
    parquet_total_size: int
    """Bytes of the new ``arrays/*.parquet`` (0 in a dry run)."""
    legacy_array_bytes: int
    size_before_bytes: int
    size_after_bytes: int
    duration_seconds: float
    estimated_duration_seconds: float | None
    table_counts_before: dict[str, int]
    table_counts_after: dict[str, int]
    merged_duplicates: tuple[str, ...]
    """Legacy predictions sharing a natural key with a newer one (nirs4all 1.x keeps one per key)."""
    output_path: str | None
    backup_path: str | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    started_at: str
    plan_id: str = ""
    """The dry run's fingerprint of source state + plan; pass it to the real run to execute exactly that plan."""

