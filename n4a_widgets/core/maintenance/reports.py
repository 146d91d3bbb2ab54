"""The reports of maintenance (one definition each, used by core, CLI and widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from ..plans import SCORE_COLUMNS  # noqa: F401 - re-exported: rows are ranked within their ``metric`` there
from ..reports import Report

#: Predictions deleted per SQLite transaction (cancel is checked between batches).
BATCH_SIZE = 2000
#: Fields that differ between a dry run and the execution of the same plan.
EXECUTION_ONLY_FIELDS = ("dry_run",)


@dataclass(frozen=True)
class DatasetCompaction(Report):
    dataset_name: str
    file: str
    rows_before: int
    rows_after: int
    rows_removed: int
    bytes_before: int
    bytes_after: int | None
    """None in a dry run (the size is known only after rewriting)."""


@dataclass(frozen=True)
class CompactReport(Report):
    """What ``compact`` did (or, with ``dry_run=True``, will do) per array file."""

    path: str
    dry_run: bool
    dataset_name: str | None
    datasets: tuple[DatasetCompaction, ...]
    rows_before: int
    rows_after: int
    rows_removed: int
    bytes_before: int
    bytes_after: int | None
    bytes_reclaimed: int | None
    """Never negative: a rewrite that compresses a little worse reclaims nothing."""
    pending_tombstones_before: int
    cancelled: bool
    plan_id: str = ""


@dataclass(frozen=True)
class DatasetOrphans(Report):
    dataset_name: str
    metadata_orphans: int
    array_orphans: int


@dataclass(frozen=True)
class CleanDeadLinksReport(Report):
    """Predictions without arrays (metadata orphans) and array rows without a
    prediction that are not pending deletes (array orphans)."""

    path: str
    dry_run: bool
    metadata_orphan_count: int
    metadata_orphan_ids: tuple[str, ...]
    array_orphan_count: int
    array_orphan_ids: tuple[str, ...]
    removed_metadata: int
    """Predictions deleted (dry run: that will be deleted)."""
    removed_array_rows: int
    """Orphan array rows removed (dry run: that will be removed)."""
    datasets: tuple[DatasetOrphans, ...]
    plan_id: str
    cancelled: bool


@dataclass(frozen=True)
class MetricGroupCut(Report):
    """Ranking inside one metric group."""

    metric: str | None
    lower_is_better: bool
    total: int
    removed: int
    threshold_score: float | None
    """Best score among the removed rows (rows scoring this or worse go)."""
    worst_kept_score: float | None


@dataclass(frozen=True)
class DatasetCut(Report):
    dataset_name: str
    total: int
    removed: int
    remaining: int


@dataclass(frozen=True)
class RemoveBottomReport(Report):
    """The worst ``fraction`` of predictions in scope, removed (or to remove)."""

    path: str
    dry_run: bool
    fraction: float
    metric: str
    partition: str | None
    dataset_name: str | None
    total: int
    planned: int
    removed: int
    remaining: int
    threshold_score: float | None
    """As nirs4all reports it: set when there is exactly one metric group."""
    groups: tuple[MetricGroupCut, ...]
    datasets: tuple[DatasetCut, ...]
    prediction_ids: tuple[str, ...]
    plan_id: str
    cancelled: bool


@dataclass(frozen=True)
class ScoreGroup(Report):
    """Histogram of one metric group plus the cut for every whole percent."""

    metric: str | None
    lower_is_better: bool
    total: int
    missing: int
    """Rows with a NaN/NULL score (ranked worst, not drawn)."""
    bin_edges: tuple[float, ...]
    counts: tuple[int, ...]
    cut_scores: tuple[float | None, ...]
    """``cut_scores[k]`` = threshold score when removing k % (k = 0..100)."""
    cut_counts: tuple[int, ...]
    """``cut_counts[k]`` = rows removed at k %."""


@dataclass(frozen=True)
class ScoreDistribution(Report):
    """What the MaintenancePanel draws for one metric/partition/dataset choice."""

    metric: str
    partition: str | None
    dataset_name: str | None
    total: int
    groups: tuple[ScoreGroup, ...]


@dataclass(frozen=True)
class MaintenanceChoices(Report):
    """Valid inputs for ``remove_bottom`` (what the dropdowns offer)."""

    metrics: tuple[str, ...]
    score_metrics: tuple[str, ...]
    partitions: tuple[str, ...]
    datasets: tuple[str, ...]
