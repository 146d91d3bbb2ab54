"""Workspace health: counts, sizes and integrity, computed read-only.

``Workspace.health()`` must never modify the workspace, so it reads SQLite
through ``readonly_sqlite`` and Parquet through pyarrow; it never opens a
writable ``WorkspaceStore`` (which would apply tombstones in place).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .arrays_readonly import parquet_path_for, read_tombstones, scan_array_files
from .errors import CorruptStoreError, OperationCancelledError
from .progress import Progress
from .readonly_duckdb import duckdb_tables, open_duckdb_readonly
from .readonly_sqlite import open_readonly, table_names
from .reports import Report, utc_now
from .status import LEGACY, MID_MIGRATION, NEW, StorageStatus

#: How many orphan ids a report lists (counts are always exact).
ID_SAMPLE = 50


@dataclass(frozen=True)
class DatasetHealth(Report):
    name: str
    prediction_count: int
    parquet_size_bytes: int
    pending_tombstones: int
    array_rows: int
    orphan_metadata_count: int
    orphan_array_count: int
    parquet_file: str | None


@dataclass(frozen=True)
class StorageHealthReport(Report):
    """Integrity and size of one workspace at ``checked_at``."""

    path: str
    storage_mode: str
    format: str
    migration_needed: bool
    metadata_store_bytes: int
    parquet_total_bytes: int
    artifacts_bytes: int
    total_predictions: int
    total_datasets: int
    datasets: tuple[DatasetHealth, ...]
    orphan_metadata_count: int
    orphan_array_count: int
    pending_tombstones: int
    corrupt_files: tuple[str, ...]
    orphan_metadata_ids: tuple[str, ...]
    orphan_array_ids: tuple[str, ...]
    healthy: bool
    deep: bool
    checked_at: str
    message: str
    notes: tuple[str, ...]
    trash_bytes: int = 0
    """Bytes kept in ``.n4a_trash`` for undo (core/trash.py); a note warns when it is large."""


def dir_bytes(path: Path) -> tuple[int, int]:
    """(total bytes, file count) below ``path``; 0 when missing."""
    total = count = 0
    if not path.exists():
        return 0, 0
    if path.is_file():
        return path.stat().st_size, 1
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
                count += 1
        except OSError:
            continue
    return total, count


def metadata_store_bytes(root: Path) -> int:
    """Size of the metadata store with its WAL/journal files."""
    names = [layout.STORE_SQLITE, layout.STORE_DUCKDB]
    total = 0
    for name in names:
        for suffix in ("", "-wal", "-shm", "-journal", ".wal"):
            p = root / f"{name}{suffix}"
            if p.is_file():
                total += p.stat().st_size
    return total


def _metadata_ids_sqlite(db: Path) -> tuple[dict[str, set[str]], dict[str, set[str]] | None]:
    """{dataset: ids} from predictions, and from an inline prediction_arrays table if any."""
    with open_readonly(db) as conn:
        tables = table_names(conn)
        if "predictions" not in tables:
            raise CorruptStoreError(f"{db} has no predictions table.")
        meta: dict[str, set[str]] = {}
        for pid, ds in conn.execute("SELECT prediction_id, dataset_name FROM predictions"):
            meta.setdefault(ds or "", set()).add(pid)
        inline = None
        if "prediction_arrays" in tables:
            inline = _inline_ids(conn, meta)
    return meta, inline


def _inline_ids(conn: Any, meta: dict[str, set[str]]) -> dict[str, set[str]]:
    """Ids stored inline, grouped by the dataset of their prediction."""
    by_id = {pid: ds for ds, ids in meta.items() for pid in ids}
    out: dict[str, set[str]] = {}
    for (pid,) in conn.execute("SELECT prediction_id FROM prediction_arrays").fetchall():
        out.setdefault(by_id.get(pid, ""), set()).add(pid)
    return out


def _metadata_ids_duckdb(db: Path) -> tuple[dict[str, set[str]], dict[str, set[str]] | None]:
    with open_duckdb_readonly(db) as conn:
        tables = duckdb_tables(conn)
        meta: dict[str, set[str]] = {}
        if "predictions" in tables:
            for pid, ds in conn.execute("SELECT prediction_id, dataset_name FROM predictions").fetchall():
                meta.setdefault(ds or "", set()).add(pid)
        inline = _inline_ids(conn, meta) if "prediction_arrays" in tables else None
    return meta, inline


def _metadata_ids_runs_tree(root: Path) -> dict[str, set[str]]:
    """{dataset: ids} from the ``<dataset>.meta.parquet`` files of nirs4all <= 0.6."""
    import pyarrow.parquet as pq

    meta: dict[str, set[str]] = {}
    for path in sorted(root.glob("*.meta.parquet")):
        try:
            table = pq.read_table(path, columns=["id", "dataset_name"])
        except Exception:  # noqa: BLE001 - reported by the caller as missing data
            continue
        for pid, ds in zip(table.column("id").to_pylist(), table.column("dataset_name").to_pylist(), strict=True):
            meta.setdefault(ds or path.name.removesuffix(".meta.parquet"), set()).add(str(pid))
    return meta


def compute_health(
    root: Path,
    status: StorageStatus,
    *,
    deep: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    engine: str = "auto",
) -> StorageHealthReport:
    """Build the health report; see ``Workspace.health`` for the contract.

    ``engine="sets"`` forces the set-based path that legacy stores use (tests
    compare it with the Arrow path of current stores).
    """
    notes: list[str] = []

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)
        if cancel is not None and cancel.is_set():
            raise OperationCancelledError("Integrity check cancelled.")

    sqlite_db = root / layout.STORE_SQLITE
    arrow = engine == "auto" and status.storage_mode != NEW and not status.has_prediction_arrays_table
    if arrow and sqlite_db.exists():
        return _sqlite_parquet_report(root, status, deep=deep, report=report)

    report(0.0, "Reading metadata")
    meta: dict[str, set[str]] = {}
    inline: dict[str, set[str]] | None = None
    if status.storage_mode != NEW and root.exists():
        duck_db = root / layout.STORE_DUCKDB
        if sqlite_db.exists():
            meta, inline = _metadata_ids_sqlite(sqlite_db)
        elif duck_db.exists():
            meta, inline = _metadata_ids_duckdb(duck_db)
        elif status.format == "fs-runs-legacy":
            meta = _metadata_ids_runs_tree(root)
            inline = {ds: set(ids) for ds, ids in meta.items()}
            notes.append(
                "nirs4all <= 0.6 runs/ tree: predictions read from <dataset>.meta.parquet; array links not checked."
            )

    def on_file(i: int, n: int, path: Path) -> None:
        report(0.1 + 0.85 * i / max(n, 1), f"Checking {path.name} ({i + 1}/{n})")

    scan = scan_array_files(root, deep=deep, on_file=on_file)
    report(0.95, "Comparing metadata and arrays")
    try:
        tombstones = set(read_tombstones(root))
    except Exception as exc:  # noqa: BLE001 - unreadable tombstones are a corrupt file
        tombstones = set()
        scan.corrupt_files.append(str(root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE))
        notes.append(f"Tombstone file unreadable: {exc}")

    array_ids = scan.all_ids
    if inline is not None:
        for ds, ids in inline.items():
            scan.ids_by_dataset.setdefault(ds, set()).update(ids)
        array_ids = scan.all_ids
        notes.append("Arrays are stored inline in the database (prediction_arrays table).")

    meta_ids: set[str] = set()
    for ids in meta.values():
        meta_ids |= ids
    orphan_meta = meta_ids - array_ids
    orphan_arrays = array_ids - meta_ids - tombstones

    datasets: list[DatasetHealth] = []
    for name in sorted(set(meta) | set(scan.ids_by_dataset)):
        ids = meta.get(name, set())
        arr = scan.ids_by_dataset.get(name, set())
        path = scan.files_by_dataset.get(name)
        if path is None and inline is None:
            candidate = parquet_path_for(root, name)
            path = candidate if candidate.exists() else None
        size = path.stat().st_size if path is not None and path.exists() else 0
        datasets.append(
            DatasetHealth(
                name=name,
                prediction_count=len(ids),
                parquet_size_bytes=size,
                pending_tombstones=len(arr & tombstones),
                array_rows=len(arr),
                orphan_metadata_count=len(ids - array_ids),
                orphan_array_count=len(arr - meta_ids - tombstones),
                parquet_file=str(path) if path is not None else None,
            )
        )

    report(1.0, "Done")
    return _finish(
        root,
        status,
        datasets=datasets,
        total_predictions=len(meta_ids),
        orphan_counts=(len(orphan_meta), len(orphan_arrays)),
        orphan_samples=(tuple(sorted(orphan_meta)[:ID_SAMPLE]), tuple(sorted(orphan_arrays)[:ID_SAMPLE])),
        pending_tombstones=len(tombstones),
        corrupt_files=scan.corrupt_files,
        parquet_total_bytes=sum(scan.bytes_by_file.values()),
        deep=deep,
        notes=notes,
    )


def _sqlite_parquet_report(
    root: Path, status: StorageStatus, *, deep: bool, report: Callable[[float, str], None]
) -> StorageHealthReport:
    """The common case (``store.sqlite`` + ``arrays/``), computed in Arrow: see ``health_arrow``."""
    from .health_arrow import sqlite_parquet_health

    notes: list[str] = []
    corrupt: list[str] = []
    try:
        tombstones = set(read_tombstones(root))
    except Exception as exc:  # noqa: BLE001 - unreadable tombstones are a corrupt file
        tombstones = set()
        corrupt.append(str(root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE))
        notes.append(f"Tombstone file unreadable: {exc}")
    found = sqlite_parquet_health(root, tombstones, deep=deep, report=report)
    report(1.0, "Done")
    return _finish(
        root,
        status,
        datasets=[DatasetHealth(**d) for d in found.datasets],
        total_predictions=found.total_predictions,
        orphan_counts=(found.orphan_metadata_count, found.orphan_array_count),
        orphan_samples=(found.orphan_metadata_ids, found.orphan_array_ids),
        pending_tombstones=len(tombstones),
        corrupt_files=[*found.corrupt_files, *corrupt],
        parquet_total_bytes=found.parquet_total_bytes,
        deep=deep,
        notes=notes,
    )


def _finish(
    root: Path,
    status: StorageStatus,
    *,
    datasets: list[DatasetHealth],
    total_predictions: int,
    orphan_counts: tuple[int, int],
    orphan_samples: tuple[tuple[str, ...], tuple[str, ...]],
    pending_tombstones: int,
    corrupt_files: list[str],
    parquet_total_bytes: int,
    deep: bool,
    notes: list[str],
) -> StorageHealthReport:
    """The report from the computed pieces: the message and ``healthy`` are decided here only."""
    orphan_meta, orphan_arrays = orphan_counts
    corrupt = tuple(sorted(set(corrupt_files)))
    healthy = not orphan_meta and not orphan_arrays and not corrupt
    if status.storage_mode in (LEGACY, MID_MIGRATION):
        message = "Migration needed: " + status.message
    elif healthy:
        message = "Healthy"
    else:
        parts = []
        if orphan_meta:
            parts.append(f"{orphan_meta} predictions without arrays")
        if orphan_arrays:
            parts.append(f"{orphan_arrays} array rows without a prediction")
        if corrupt:
            parts.append(f"{len(corrupt)} unreadable file(s): " + ", ".join(Path(c).name for c in corrupt))
        message = "; ".join(parts)
    from .trash import trash_note, trash_size

    trash_bytes = trash_size(root)[0]
    note = trash_note(root, metadata_store_bytes(root) + parquet_total_bytes)
    if note:
        notes.append(note)
    return StorageHealthReport(
        path=str(root),
        storage_mode=status.storage_mode,
        format=status.format,
        migration_needed=status.migration_needed,
        metadata_store_bytes=metadata_store_bytes(root),
        parquet_total_bytes=parquet_total_bytes,
        artifacts_bytes=dir_bytes(root / layout.ARTIFACTS_DIR)[0],
        total_predictions=total_predictions,
        total_datasets=len(datasets),
        datasets=tuple(datasets),
        orphan_metadata_count=orphan_meta,
        orphan_array_count=orphan_arrays,
        pending_tombstones=pending_tombstones,
        corrupt_files=corrupt,
        orphan_metadata_ids=orphan_samples[0],
        orphan_array_ids=orphan_samples[1],
        healthy=healthy,
        deep=deep,
        checked_at=utc_now(),
        message=message,
        notes=tuple(notes),
        trash_bytes=trash_bytes,
    )
