"""What an export wrote: the reports that core, CLI and widgets share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..reports import Report

# ------------------------------------------------------------------ reports


@dataclass(frozen=True)
class ExportedFile(Report):
    """One Parquet file written (``member`` is its name inside a zip, else None)."""

    dataset: str
    path: str
    rows: int
    bytes: int
    member: str | None
    method: str
    """``copy`` (column chunks copied, metadata appended) or ``rewrite`` (streamed)."""

@dataclass(frozen=True)
class ExportReport(Report):
    """What ``Workspace.export`` wrote."""

    workspace: str
    dest: str
    format: str
    files: tuple[ExportedFile, ...]
    total_rows: int
    total_bytes: int
    duration_seconds: float
    datasets: tuple[str, ...]
    partition: str | None
    model_name: str | None
    fold_id: str | None
    excluded_tombstoned: int
    excluded_orphans: int
    excluded_duplicates: int
    excluded_by_filters: int
    skipped_datasets: tuple[str, ...]
    exported_at: str
    notes: tuple[str, ...]


# ------------------------------------------------------- choices for widgets


@dataclass(frozen=True)
class ExportChoices(Report):
    """What the ExportPicker offers: datasets with counts and sizes, filter values."""

    datasets: tuple[dict[str, Any], ...]
    partitions: tuple[str, ...]
    models: tuple[str, ...]
    folds: tuple[str, ...]


