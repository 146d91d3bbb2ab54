"""Maintenance: compact, clean dead links, remove the bottom fraction.

Safety model (DESIGN.md §4):

- **Exact dry runs.**  A dry run is read-only (read-only SQLite and Parquet,
  never a writable ``WorkspaceStore``, whose constructor applies pending
  tombstones) and returns the same report type, with the same counts and ids,
  that the execution then reports.  Only ``dry_run`` differs.
- **Plan-checked execution.**  Executing with ``plan_id`` recomputes the plan
  from the current workspace and raises ``PlanChangedError`` if it differs;
  inside the first deletion transaction the metadata is checked once more, so
  a run landing between check and delete is caught too.
- **One writer.**  Every execution holds ``locking.exclusive_job`` and refuses
  while a nirs4all run writes (``writers.ensure_no_writer``); SQLite's "database
  is locked" becomes ``WorkspaceBusyError``.
- **Batched.**  Deletions go through nirs4all's
  ``WorkspaceStore._delete_predictions_matching(prediction_ids=[...])`` in
  batches (one transaction and one tombstone write each), with automatic
  compaction held off and the statistics refreshed first (``ANALYZE``), then one
  compaction per touched dataset at the end.  Cancel is honoured between
  batches; what was committed is compacted and reported (``cancelled=True``).

Ranking (``remove_bottom``) follows nirs4all's ``Predictions.remove_bottom``:
for ``val_score``/``test_score``/``train_score`` rows are grouped by their
``metric`` (different units are ranked separately), ``int(len(group) *
fraction)`` rows are removed per group, the direction comes from
``nirs4all.core.metrics.infer_ascending`` and NaN/NULL scores count as the
worst.  Among equal scores the oldest rows go first (nirs4all ranks rows
fetched newest first), then ``prediction_id``, so a plan is reproducible.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..arrays_readonly import read_tombstones, scan_array_files
from ..errors import (
    CorruptStoreError,
    InvalidArgumentError,
    OperationCancelledError,
    PlanChangedError,
    UnsupportedFormatError,
    WorkspaceError,
)
from ..locking import exclusive_job
from ..plans import check_plan, make_plan_id, metadata_digest, workspace_state_token
from ..readonly_sqlite import map_sqlite_error, open_readonly
from ..reports import Report
from ..writers import ensure_no_writer

if TYPE_CHECKING:
    from ..workspace import Workspace

Progress = Callable[[float, str], None]

#: Score columns whose rows are ranked within their ``metric`` (as nirs4all does).
SCORE_COLUMNS = ("val_score", "test_score", "train_score")
#: Predictions deleted per SQLite transaction (cancel is checked between batches).
BATCH_SIZE = 2000
#: Fields that differ between a dry run and the execution of the same plan.
EXECUTION_ONLY_FIELDS = ("dry_run",)
_NUMERIC_TYPES = ("REAL", "INT", "NUM", "FLOA", "DOUB", "DEC")


# ----------------------------------------------------------------- reports


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
    pending_tombstones_before: int
    cancelled: bool


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


# ----------------------------------------------------------------- helpers


class _Clock:
    def __init__(self, progress: Progress | None, cancel: threading.Event | None) -> None:
        self.progress = progress
        self.cancel = cancel

    def step(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(min(max(fraction, 0.0), 1.0), message)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def check(self, what: str) -> None:
        """Before anything was written: stop with OperationCancelledError."""
        if self.cancelled:
            raise OperationCancelledError(f"{what} cancelled before anything was changed.")


def _root(ws: Workspace | Path | str) -> Path:
    from ..workspace import as_workspace

    return as_workspace(ws).path


def _require_current(root: Path) -> None:
    from ..status import MIGRATED, detect_status

    status = detect_status(root)
    if status.storage_mode != MIGRATED:
        if status.storage_mode == "new":
            raise UnsupportedFormatError(
                f"{root} holds no predictions yet (no store.sqlite).",
                "Run nirs4all with workspace_path pointing here first; there is nothing to maintain.",
            )
        raise UnsupportedFormatError(f"{root} is not in the current storage format ({status.message}).")


def _db(root: Path) -> Path:
    return root / layout.STORE_SQLITE


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _fmt_choices(values: Sequence[Any]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


def _numeric_columns(conn: sqlite3.Connection) -> list[str]:
    cols = []
    for _cid, name, decl, *_ in conn.execute("PRAGMA table_info(predictions)"):
        if any(t in str(decl or "").upper() for t in _NUMERIC_TYPES):
            cols.append(str(name))
    return cols


def maintenance_choices(ws: Workspace | Path | str) -> MaintenanceChoices:
    """Metric columns, partitions and datasets present in the workspace (read-only)."""
    root = _root(ws)
    _require_current(root)
    with open_readonly(_db(root)) as conn:
        metrics = _numeric_columns(conn)
        partitions = [r[0] for r in conn.execute("SELECT DISTINCT partition FROM predictions ORDER BY 1") if r[0]]
        datasets = [r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions ORDER BY 1") if r[0]]
    scores = [m for m in SCORE_COLUMNS if m in metrics]
    return MaintenanceChoices(tuple(metrics), tuple(scores), tuple(partitions), tuple(datasets))


def _validate_remove_bottom(
    conn: sqlite3.Connection, fraction: Any, metric: str, partition: str | None, dataset_name: str | None
) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise InvalidArgumentError(
            f"fraction must be a number between 0 and 1, got {fraction!r}.", "For example 0.1 removes the worst 10 %."
        )
    value = float(fraction)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(
            f"fraction must be between 0 and 1, got {fraction!r}.",
            "For example 0.1 removes the worst 10 %; valid range is [0, 1].",
        )
    metrics = _numeric_columns(conn)
    if metric not in metrics:
        raise InvalidArgumentError(
            f"Unknown metric column {metric!r}.",
            "Valid choices: "
            + _fmt_choices([m for m in SCORE_COLUMNS if m in metrics] + [m for m in metrics if m not in SCORE_COLUMNS])
            + ".",
        )
    if partition is not None:
        partitions = [r[0] for r in conn.execute("SELECT DISTINCT partition FROM predictions ORDER BY 1") if r[0]]
        if partition not in partitions:
            raise InvalidArgumentError(
                f"Unknown partition {partition!r}.", f"Valid choices: {_fmt_choices(partitions)}, or None for all."
            )
    if dataset_name is not None:
        datasets = [r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions ORDER BY 1") if r[0]]
        if dataset_name not in datasets:
            raise InvalidArgumentError(
                f"Unknown dataset {dataset_name!r}.", f"Valid choices: {_fmt_choices(datasets)}, or None for all."
            )
    return value


def _scope_frame(conn: sqlite3.Connection, metric: str, partition: str | None, dataset_name: str | None) -> Any:
    """The rows ``remove_bottom`` ranks, with only the columns it needs."""
    import polars as pl

    where, params = [], []
    if partition is not None:
        where.append("partition = ?")
        params.append(partition)
    if dataset_name is not None:
        where.append("dataset_name = ?")
        params.append(dataset_name)
    sql = f'SELECT prediction_id, dataset_name, metric, "{metric}" AS score, CAST(created_at AS TEXT) FROM predictions'
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql, params).fetchall()
    schema = {
        "prediction_id": pl.Utf8,
        "dataset_name": pl.Utf8,
        "metric": pl.Utf8,
        "score": pl.Float64,
        "created_at": pl.Utf8,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.col("score").fill_nan(None))


def _ranked_groups(frame: Any, metric: str) -> list[tuple[str | None, bool, Any]]:
    """[(metric name, lower_is_better, rows sorted best → worst)] like nirs4all."""
    from nirs4all.core.metrics import infer_ascending

    if frame.height == 0:
        return []
    groups = frame.partition_by("metric", maintain_order=True) if metric in SCORE_COLUMNS else [frame]
    out = []
    for group in groups:
        name = group["metric"][0] if metric in SCORE_COLUMNS else metric
        ascending = bool(infer_ascending(name or "rmse"))
        # nirs4all sorts rows it fetched newest first (ORDER BY created_at DESC), so
        # among equal scores the oldest go first; prediction_id settles the rest.
        ordered = group.sort(
            ["score", "created_at", "prediction_id"],
            descending=[not ascending, True, False],
            nulls_last=True,
            maintain_order=True,
        )
        out.append((name if metric in SCORE_COLUMNS else metric, ascending, ordered))
    return out


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass
class _RemovePlan:
    fraction: float
    metric: str
    partition: str | None
    dataset_name: str | None
    total: int
    ids: list[str]
    groups: list[MetricGroupCut]
    datasets: list[DatasetCut]
    digest: str
    plan_id: str = ""

    def report(
        self,
        root: Path,
        *,
        dry_run: bool,
        removed_ids: Sequence[str] | None = None,
        cancelled: bool = False,
    ) -> RemoveBottomReport:
        ids = sorted(self.ids if removed_ids is None else removed_ids)
        datasets = self.datasets
        if removed_ids is not None and len(removed_ids) != len(self.ids):
            done = set(removed_ids)
            by_ds: dict[str, int] = {}
            for pid, ds in self._id_dataset.items():
                if pid in done:
                    by_ds[ds] = by_ds.get(ds, 0) + 1
            datasets = [
                DatasetCut(
                    d.dataset_name, d.total, by_ds.get(d.dataset_name, 0), d.total - by_ds.get(d.dataset_name, 0)
                )
                for d in self.datasets
            ]
        threshold = self.groups[0].threshold_score if len(self.groups) == 1 else None
        return RemoveBottomReport(
            path=str(root),
            dry_run=dry_run,
            fraction=self.fraction,
            metric=self.metric,
            partition=self.partition,
            dataset_name=self.dataset_name,
            total=self.total,
            planned=len(self.ids),
            removed=len(ids),
            remaining=self.total - len(ids),
            threshold_score=threshold,
            groups=tuple(self.groups),
            datasets=tuple(datasets),
            prediction_ids=tuple(ids),
            plan_id=self.plan_id,
            cancelled=cancelled,
        )

    _id_dataset: dict[str, str] = field(default_factory=dict)


def _plan_remove_bottom(
    root: Path, fraction: Any, metric: str, partition: str | None, dataset_name: str | None
) -> _RemovePlan:
    import polars as pl

    with open_readonly(_db(root)) as conn:
        value = _validate_remove_bottom(conn, fraction, metric, partition, dataset_name)
        frame = _scope_frame(conn, metric, partition, dataset_name)
        digest = metadata_digest(conn)
    groups: list[MetricGroupCut] = []
    removals = []
    for name, ascending, ordered in _ranked_groups(frame, metric):
        n = ordered.height
        k = int(n * value)
        tail = ordered.tail(k) if k else ordered.clear()
        removals.append(tail)
        threshold = _float_or_none(tail["score"][0]) if k else None
        worst_kept = _float_or_none(ordered["score"][n - k - 1]) if n - k > 0 else None
        groups.append(MetricGroupCut(name, ascending, n, k, threshold, worst_kept))
    removed = pl.concat(removals) if removals else frame.clear()
    ids = removed["prediction_id"].to_list()
    totals = frame.group_by("dataset_name").len()
    gone = removed.group_by("dataset_name").len()
    gone_by = dict(zip(gone["dataset_name"].to_list(), gone["len"].to_list(), strict=True))
    datasets = [
        DatasetCut(str(ds), int(n), int(gone_by.get(ds, 0)), int(n) - int(gone_by.get(ds, 0)))
        for ds, n in sorted(
            zip(totals["dataset_name"].to_list(), totals["len"].to_list(), strict=True), key=lambda x: str(x[0])
        )
    ]
    plan = _RemovePlan(value, metric, partition, dataset_name, frame.height, ids, groups, datasets, digest)
    plan._id_dataset = dict(zip(ids, removed["dataset_name"].to_list(), strict=True))
    params = {"fraction": value, "metric": metric, "partition": partition, "dataset_name": dataset_name}
    plan.plan_id = make_plan_id("remove_bottom", params, ids, workspace_state_token(root, digest))
    return plan


def score_distribution(
    ws: Workspace | Path | str,
    metric: str = "val_score",
    partition: str | None = "val",
    dataset_name: str | None = None,
    *,
    bins: int = 30,
) -> ScoreDistribution:
    """Histogram per metric group and the cut for every whole percent (read-only).

    The MaintenancePanel computes this once per metric/partition/dataset choice;
    the page then moves the cut line with the slider without asking Python.
    """
    import numpy as np

    root = _root(ws)
    _require_current(root)
    with open_readonly(_db(root)) as conn:
        _validate_remove_bottom(conn, 0.0, metric, partition, dataset_name)
        frame = _scope_frame(conn, metric, partition, dataset_name)
    out = []
    for name, ascending, ordered in _ranked_groups(frame, metric):
        n = ordered.height
        scores = ordered["score"].to_list()
        finite = np.array([s for s in scores if s is not None and math.isfinite(s)], dtype=float)
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
        else:
            counts, edges = np.zeros(0, dtype=int), np.zeros(0)
        cut_scores: list[float | None] = []
        cut_counts: list[int] = []
        for pct in range(101):
            k = int(n * (pct / 100))
            cut_counts.append(k)
            cut_scores.append(_float_or_none(scores[n - k]) if k else None)
        out.append(
            ScoreGroup(
                name,
                ascending,
                n,
                n - int(finite.size),
                tuple(float(e) for e in edges),
                tuple(int(c) for c in counts),
                tuple(cut_scores),
                tuple(cut_counts),
            )
        )
    return ScoreDistribution(metric, partition, dataset_name, frame.height, tuple(out))


# -------------------------------------------------------- batched deletion


def _open_store(root: Path) -> Any:
    """A writable WorkspaceStore (its constructor applies pending tombstones)."""
    import nirs4all.pipeline.storage  # noqa: F401 - registers the store backend
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    try:
        return WorkspaceStore(root)
    except sqlite3.OperationalError as exc:
        raise map_sqlite_error(_db(root), exc) from exc


def _dataset_of_files(root: Path) -> dict[str, str]:
    """{parquet path: dataset name} from each file's ``dataset_name`` column."""
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    arrays = root / layout.ARRAYS_DIR
    for path in sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []:
        try:
            col = pq.read_table(path, columns=["dataset_name"]).column("dataset_name")
            names = [n for n in col.unique().to_pylist() if n]
        except Exception:  # noqa: BLE001 - unreadable files are reported by health
            names = []
        out[str(path)] = str(names[0]) if names else path.stem
    return out


def _delete_in_batches(
    root: Path,
    ids: Sequence[str],
    expected_digest: str,
    clock: _Clock,
    span: tuple[float, float],
    *,
    array_orphans: Sequence[str] = (),
    compact_datasets: Sequence[str] = (),
    batch_size: int = BATCH_SIZE,
) -> tuple[list[str], bool]:
    """Delete ``ids`` through nirs4all in batches; then compact the touched files.

    Returns (ids actually deleted, cancelled).  The first batch's transaction
    re-reads the metadata digest and raises ``PlanChangedError`` on a mismatch
    (nothing deleted).  Cancel stops between batches; committed batches are
    then compacted so the workspace is consistent.
    """
    lo, hi = span
    clock.step(lo, "Opening the store (applies pending deletes, if any)")
    store = _open_store(root)
    done: list[str] = []
    cancelled = False
    try:
        conn = store._ensure_open()
        if ids:
            # SQLite plans update_chain_summary's query on the partition index
            # without statistics (29 ms a chain at 100k); ANALYZE fixes the plan.
            conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("ANALYZE")
        # Hold off nirs4all's automatic compaction (every 64 tombstones) until the end.
        store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = 1 << 62
        batches = list(_chunks(list(ids), batch_size)) or [[]]
        for index, batch in enumerate(batches):
            if index > 0 and clock.cancelled:
                cancelled = True
                break
            clock.step(
                lo + (hi - lo) * 0.8 * index / len(batches),
                f"Deleting predictions {len(done):,}/{len(ids):,} (batch {index + 1}/{len(batches)})",
            )
            with store.transaction():
                if index == 0:
                    if metadata_digest(conn) != expected_digest:
                        raise PlanChangedError(
                            "The predictions changed since the plan was computed (a run landed or something was "
                            "deleted); nothing was deleted."
                        )
                    if clock.cancelled:
                        raise OperationCancelledError("Cancelled before anything was changed.")
                if batch:
                    summary = store._delete_predictions_matching(prediction_ids=batch)
                    if int(summary["deleted_predictions"]) != len(batch):
                        raise PlanChangedError(
                            f"Only {summary['deleted_predictions']} of {len(batch)} planned predictions still "
                            "existed; this batch was rolled back."
                        )
            done.extend(batch)
        if array_orphans and not cancelled:
            store.array_store.delete_batch(set(array_orphans))
        del store.AUTO_COMPACT_TOMBSTONE_THRESHOLD
        if done:
            store.gc_artifacts()
        targets = sorted(set(compact_datasets))
        for i, name in enumerate(targets):
            clock.step(lo + (hi - lo) * (0.8 + 0.2 * i / max(len(targets), 1)), f"Compacting arrays of {name}")
            store.compact_arrays(name)
        clock.step(hi, "Done")
    except sqlite3.OperationalError as exc:
        raise map_sqlite_error(_db(root), exc) from exc
    finally:
        store.close()
    return done, cancelled


# -------------------------------------------------------------- operations


def remove_bottom(
    ws: Workspace | Path | str,
    fraction: float,
    metric: str = "val_score",
    partition: str | None = "val",
    dataset_name: str | None = None,
    dry_run: bool = True,
    plan_id: str | None = None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
    batch_size: int = BATCH_SIZE,
) -> RemoveBottomReport:
    """Remove the worst ``fraction`` of predictions (see the module docstring).

    ``dry_run=True`` (default) is read-only and returns the exact plan with its
    ``plan_id``.  ``dry_run=False`` executes; with ``plan_id`` it refuses
    (``PlanChangedError``) unless the plan is still the same.  ``partition=None``
    or ``dataset_name=None`` mean all.  ``force`` overrides a stale job marker
    or a run left 'running' by a crashed process.
    """
    root = _root(ws)
    clock = _Clock(progress, cancel)
    _require_current(root)
    clock.step(0.0, "Ranking predictions")
    if dry_run:
        plan = _plan_remove_bottom(root, fraction, metric, partition, dataset_name)
        clock.step(1.0, "Done")
        return plan.report(root, dry_run=True)
    with open_readonly(_db(root)) as conn:  # bad input fails before anything (even the job lock) is touched
        _validate_remove_bottom(conn, fraction, metric, partition, dataset_name)
    with exclusive_job(root, "remove_bottom", force=force):
        ensure_no_writer(root, force=force)
        plan = _plan_remove_bottom(root, fraction, metric, partition, dataset_name)
        check_plan(plan_id, plan.plan_id, "remove-bottom")
        clock.check("Remove bottom")
        datasets = [d.dataset_name for d in plan.datasets if d.removed]
        done, cancelled = _delete_in_batches(
            root, plan.ids, plan.digest, clock, (0.1, 1.0), compact_datasets=datasets, batch_size=batch_size
        )
        return plan.report(root, dry_run=False, removed_ids=done, cancelled=cancelled)


@dataclass
class _CleanPlan:
    meta_orphans: list[str]
    array_orphans: list[str]
    datasets: list[DatasetOrphans]
    array_datasets: list[str]
    digest: str
    plan_id: str


def _plan_clean(root: Path) -> _CleanPlan:
    with open_readonly(_db(root)) as conn:
        meta: dict[str, str] = {
            str(pid): str(ds or "") for pid, ds in conn.execute("SELECT prediction_id, dataset_name FROM predictions")
        }
        digest = metadata_digest(conn)
    scan = scan_array_files(root)
    if scan.corrupt_files:
        raise CorruptStoreError(
            "Cannot look for dead links while array file(s) are unreadable: "
            + ", ".join(Path(p).name for p in scan.corrupt_files)
            + " (every prediction of those datasets would look orphaned).",
            "Restore the file(s) from a backup, or export what is readable; nothing was changed.",
        )
    tombstones = set(read_tombstones(root))
    array_ids = scan.all_ids
    meta_orphans = sorted(set(meta) - array_ids)
    per_ds: dict[str, list[int]] = {}
    for pid in meta_orphans:
        per_ds.setdefault(meta[pid], [0, 0])[0] += 1
    array_orphans: list[str] = []
    array_datasets: list[str] = []
    for ds, ids in sorted(scan.ids_by_dataset.items()):
        orphans = ids - set(meta) - tombstones
        if orphans:
            per_ds.setdefault(ds, [0, 0])[1] += len(orphans)
            array_orphans.extend(orphans)
            array_datasets.append(ds)
    array_orphans.sort()
    datasets = [DatasetOrphans(ds, m, a) for ds, (m, a) in sorted(per_ds.items())]
    plan_id = make_plan_id("clean_dead_links", {}, [*meta_orphans, *array_orphans], workspace_state_token(root, digest))
    return _CleanPlan(meta_orphans, array_orphans, datasets, array_datasets, digest, plan_id)


def clean_dead_links(
    ws: Workspace | Path | str,
    dry_run: bool = True,
    plan_id: str | None = None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
    batch_size: int = BATCH_SIZE,
) -> CleanDeadLinksReport:
    """Delete predictions that have no arrays and array rows that have no prediction.

    Array rows of predictions already deleted (pending tombstones) are not
    orphans: ``compact`` reclaims them.  Refuses while any array file is
    unreadable.  Dry run by default; see ``remove_bottom`` for ``plan_id`` and
    ``force``.
    """
    root = _root(ws)
    clock = _Clock(progress, cancel)
    _require_current(root)

    def report(
        plan: _CleanPlan, *, dry: bool, removed_meta: Sequence[str], removed_arrays: int, cancelled: bool = False
    ) -> CleanDeadLinksReport:
        return CleanDeadLinksReport(
            path=str(root),
            dry_run=dry,
            metadata_orphan_count=len(plan.meta_orphans),
            metadata_orphan_ids=tuple(plan.meta_orphans),
            array_orphan_count=len(plan.array_orphans),
            array_orphan_ids=tuple(plan.array_orphans),
            removed_metadata=len(removed_meta),
            removed_array_rows=removed_arrays,
            datasets=tuple(plan.datasets),
            plan_id=plan.plan_id,
            cancelled=cancelled,
        )

    clock.step(0.0, "Comparing metadata with array files")
    if dry_run:
        plan = _plan_clean(root)
        clock.step(1.0, "Done")
        return report(plan, dry=True, removed_meta=plan.meta_orphans, removed_arrays=len(plan.array_orphans))
    with exclusive_job(root, "clean_dead_links", force=force):
        ensure_no_writer(root, force=force)
        plan = _plan_clean(root)
        check_plan(plan_id, plan.plan_id, "clean dead links")
        clock.check("Clean dead links")
        if not plan.meta_orphans and not plan.array_orphans:
            clock.step(1.0, "Nothing to clean")
            return report(plan, dry=False, removed_meta=[], removed_arrays=0)
        done, cancelled = _delete_in_batches(
            root,
            plan.meta_orphans,
            plan.digest,
            clock,
            (0.1, 1.0),
            array_orphans=plan.array_orphans,
            compact_datasets=plan.array_datasets,
            batch_size=batch_size,
        )
        return report(
            plan,
            dry=False,
            removed_meta=done,
            removed_arrays=0 if cancelled else len(plan.array_orphans),
            cancelled=cancelled,
        )


def _live_ids(root: Path) -> set[str]:
    with open_readonly(_db(root)) as conn:
        return {str(r[0]) for r in conn.execute("SELECT prediction_id FROM predictions")}


def _plan_compact_file(path: Path, live: set[str], tombstones: set[str]) -> tuple[int, int]:
    """(rows_before, rows_after) that compaction of ``path`` produces."""
    import pyarrow.parquet as pq

    ids = pq.read_table(path, columns=["prediction_id"]).column("prediction_id").to_pylist()
    dead = tombstones - live
    return len(ids), len({i for i in ids if i not in dead})


def compact(
    ws: Workspace | Path | str,
    dataset_name: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> CompactReport:
    """Apply pending deletes and rewrite array files, one dataset at a time.

    Does what ``WorkspaceStore.compact_arrays(dataset)`` does (under nirs4all's
    ``arrays/.lock``: snapshot the live ids from committed SQLite, drop
    tombstoned rows that are not live, de-duplicate, re-sort, rewrite), but
    without opening a writable store, whose constructor would first compact
    every file in one unreported, uncancellable pass (and upgrade old schemas
    in place).  Progress and cancel are per dataset; a cancelled compaction
    leaves the remaining files as they were (still consistent).
    ``dry_run=True`` reports rows before/after per file without writing
    (``bytes_after`` is then None).
    """
    root = _root(ws)
    clock = _Clock(progress, cancel)
    _require_current(root)
    names = _dataset_of_files(root)
    if dataset_name is not None:
        from ..arrays_readonly import parquet_path_for

        target = str(parquet_path_for(root, dataset_name))
        known = sorted(set(names.values()) | set(maintenance_choices(root).datasets))
        if dataset_name not in known:
            raise InvalidArgumentError(f"Unknown dataset {dataset_name!r}.", f"Valid choices: {_fmt_choices(known)}.")
        names = {p: n for p, n in names.items() if p == target}
    tombstones = set(read_tombstones(root))
    if dry_run:
        live = _live_ids(root)
        rows = []
        for i, (path, name) in enumerate(names.items()):
            clock.step(i / max(len(names), 1), f"Reading {Path(path).name}")
            before, after = _plan_compact_file(Path(path), live, tombstones)
            rows.append(DatasetCompaction(name, path, before, after, before - after, Path(path).stat().st_size, None))
        clock.step(1.0, "Done")
        return _compact_report(root, True, dataset_name, rows, len(tombstones), False)

    from nirs4all.pipeline.storage.array_store import ArrayStore

    rows = []
    cancelled = False
    with exclusive_job(root, "compact", force=force):
        ensure_no_writer(root, force=force)
        store = ArrayStore(root)
        for i, name in enumerate(names.values()):
            if clock.cancelled:
                cancelled = True
                break
            clock.step(i / max(len(names), 1), f"Compacting {name} ({i + 1}/{len(names)})")
            # Same steps as WorkspaceStore.compact_arrays: live ids are read
            # under the process lock, so a concurrent delete cannot make a fresh
            # tombstone look stale.
            with store._process_lock():
                live = _live_ids(root)
                stats = store._compact_unlocked(dataset_name=name, live_ids=live)
            for stem, s in stats.items():
                file = str(root / layout.ARRAYS_DIR / f"{stem}.parquet")
                rows.append(
                    DatasetCompaction(
                        name,
                        file,
                        int(s["rows_before"]),
                        int(s["rows_after"]),
                        int(s["rows_removed"]),
                        int(s["bytes_before"]),
                        int(s["bytes_after"]),
                    )
                )
        clock.step(1.0, "Cancelled" if cancelled else "Done")
    return _compact_report(root, False, dataset_name, rows, len(tombstones), cancelled)


def _compact_report(
    root: Path,
    dry_run: bool,
    dataset_name: str | None,
    rows: list[DatasetCompaction],
    pending: int,
    cancelled: bool,
) -> CompactReport:
    before = sum(r.rows_before for r in rows)
    after = sum(r.rows_after for r in rows)
    bytes_before = sum(r.bytes_before for r in rows)
    bytes_after = None if dry_run else sum(r.bytes_after or 0 for r in rows)
    return CompactReport(
        path=str(root),
        dry_run=dry_run,
        dataset_name=dataset_name,
        datasets=tuple(rows),
        rows_before=before,
        rows_after=after,
        rows_removed=before - after,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        bytes_reclaimed=None if bytes_after is None else bytes_before - bytes_after,
        pending_tombstones_before=pending,
        cancelled=cancelled,
    )


__all__ = [
    "EXECUTION_ONLY_FIELDS",
    "CleanDeadLinksReport",
    "CompactReport",
    "DatasetCompaction",
    "DatasetCut",
    "DatasetOrphans",
    "MaintenanceChoices",
    "MetricGroupCut",
    "RemoveBottomReport",
    "ScoreDistribution",
    "ScoreGroup",
    "WorkspaceError",
    "clean_dead_links",
    "compact",
    "maintenance_choices",
    "remove_bottom",
    "score_distribution",
]
