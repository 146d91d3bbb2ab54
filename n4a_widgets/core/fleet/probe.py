"""Cheap facts about one workspace folder, for the fleet scan.

Everything here is read-only and costs a few stats and one or two small
queries, whatever the size of the array files: the format comes from
``status.detect_status``, counts from ``readonly_sqlite`` / ``readonly_duckdb``
(``immutable=1`` when no writer is attached), pending deletes from
``arrays_readonly.read_tombstones``, array row counts from Parquet footers
(only when there are pending deletes, to estimate what a compaction frees).
No array file is decoded.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import WorkspaceError
from ..status import LEGACY, MID_MIGRATION, NEW, StorageStatus, detect_status
from .report import UNKNOWN, FleetEntry


def _iso(value: Any) -> str | None:
    """Timestamps as ISO-8601 text, whichever store (SQLite text, DuckDB datetime) they come from."""
    if value is None or value == "":
        return None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    try:
        return _dt.datetime.fromisoformat(str(value)).isoformat()
    except ValueError:
        return str(value)


_CREATED_AT = re.compile(rb"^created_at:\s*['\"]?([^'\"\r\n]+)", re.MULTILINE)


def _manifest_created_at(path: Path) -> str | None:
    """``created_at`` from the head of a 0.6 manifest (no YAML parse: it is a top-level key)."""
    try:
        with path.open("rb") as fh:
            found = _CREATED_AT.search(fh.read(4096))
    except OSError:
        return None
    return _iso(found.group(1).decode("utf-8", "replace").strip()) if found else None


def disk_usage(root: Path, notes: list[str]) -> tuple[int, int, int]:
    """(total, arrays/, store files) bytes below ``root``: ``stat`` only, links not followed."""
    total = arrays = metadata = 0
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, top = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            notes.append(f"size: cannot list {folder} ({exc.strerror or exc}); its bytes are not counted")
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), top or entry.name))
                    continue
                if entry.is_symlink():
                    continue
                size = entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            total += size
            first = top or entry.name
            if first == layout.ARRAYS_DIR:
                arrays += size
            elif first.startswith((layout.STORE_SQLITE, layout.STORE_DUCKDB)):
                metadata += size
    return total, arrays, metadata


_COUNT_SQL = "SELECT dataset_name, count(*) FROM predictions GROUP BY dataset_name"
_LAST_RUN_SQL = "SELECT max(coalesce(completed_at, created_at)) FROM runs"


def _sqlite_counts(root: Path) -> tuple[int, tuple[str, ...], str | None]:
    from ..readonly_sqlite import map_sqlite_error, open_readonly

    db = root / layout.STORE_SQLITE
    with open_readonly(db) as conn:
        try:
            rows = conn.execute(_COUNT_SQL).fetchall()
            last = conn.execute(_LAST_RUN_SQL).fetchone()[0]
        except sqlite3.Error as exc:
            raise map_sqlite_error(db, exc) from exc
    return sum(int(r[1]) for r in rows), tuple(sorted(str(r[0]) for r in rows if r[0] is not None)), _iso(last)


def _duckdb_counts(root: Path) -> tuple[int, tuple[str, ...], str | None]:
    import duckdb

    from ..errors import CorruptStoreError
    from ..readonly_duckdb import open_duckdb_readonly

    db = root / layout.STORE_DUCKDB
    with open_duckdb_readonly(db) as conn:
        try:
            rows = conn.execute(_COUNT_SQL).fetchall()
            last = conn.execute(_LAST_RUN_SQL).fetchone()[0]
        except duckdb.Error as exc:
            raise CorruptStoreError(f"Reading {db} failed: {exc}.") from exc
    return sum(int(r[1]) for r in rows), tuple(sorted(str(r[0]) for r in rows if r[0] is not None)), _iso(last)


def _runs_tree_counts(root: Path) -> tuple[int, tuple[str, ...], str | None]:
    """nirs4all <= 0.6: ``<dataset>.meta.parquet`` rows (footer only) and manifest times."""
    import pyarrow.parquet as pq

    total = 0
    names = []
    for meta in sorted(root.glob("*.meta.parquet")):
        total += int(pq.read_metadata(meta).num_rows)
        names.append(meta.name[: -len(".meta.parquet")])
    stamps = [_manifest_created_at(p) for p in (root / layout.RUNS_DIR).glob("*/*/manifest.yaml")]
    known = [s for s in stamps if s]
    return total, tuple(names), max(known) if known else None


def _counts(root: Path, status: StorageStatus) -> tuple[int, tuple[str, ...], str | None]:
    if status.storage_mode == NEW or not root.exists():
        return 0, (), None
    if status.metadata_store == layout.STORE_SQLITE:
        return _sqlite_counts(root)
    if status.metadata_store == layout.STORE_DUCKDB:
        return _duckdb_counts(root)
    if status.layout == "runs-manifest-tree":
        return _runs_tree_counts(root)
    return 0, (), None


def _array_rows(root: Path) -> int:
    import pyarrow.parquet as pq

    rows = 0
    for path in (root / layout.ARRAYS_DIR).glob("*.parquet"):
        rows += int(pq.read_metadata(path).num_rows)  # footer only
    return rows


def _backup_of(root: Path) -> str | None:
    """``<name>.legacy-<timestamp>`` beside a folder ``<name>``: the backup a published migration kept."""
    marker = ".legacy-"
    if marker not in root.name:
        return None
    original = root.parent / root.name.split(marker, 1)[0]
    if not root.name.startswith(layout.migration_backup_prefix(original)) or not original.is_dir():
        return None
    return str(original)


def probe(root: Path) -> FleetEntry:
    """The fleet row for workspace folder ``root``; a read failure lands in ``error``."""
    notes: list[str] = []
    size, arrays, metadata = disk_usage(root, notes) if root.exists() else (0, 0, 0)
    try:
        status = detect_status(root)
    except WorkspaceError as exc:
        return FleetEntry(
            str(root), UNKNOWN, "unreadable", False, size, None, (), None, None, str(exc), "unreadable", None,
            False, None, arrays, metadata, 0, _backup_of(root), exc.message, tuple(notes),
        )
    error: str | None = None
    total: int | None = None
    datasets: tuple[str, ...] = ()
    last_run: str | None = None
    try:
        total, datasets, last_run = _counts(root, status)
    except WorkspaceError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - an odd legacy store is a row with an error, not a failed scan
        error = f"Could not count the predictions of {root}: {exc}"
    pending: int | None = 0
    reclaimable = 0
    if (root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE).exists():
        try:
            from ..arrays_readonly import read_tombstones

            pending = len(read_tombstones(root))
            if pending and arrays:
                rows = _array_rows(root)
                reclaimable = int(arrays * min(1.0, pending / rows)) if rows else 0
        except Exception as exc:  # noqa: BLE001 - unreadable tombstones or footers: say so, keep scanning
            pending = None
            notes.append(f"pending deletes unreadable: {exc}")
    return FleetEntry(
        str(root), status.storage_mode, status.format, status.migration_needed, size, total, datasets, last_run,
        pending, error, status.layout, status.schema_version, False, None, arrays, metadata, reclaimable,
        _backup_of(root) if status.storage_mode in (LEGACY, MID_MIGRATION) else None, status.message, tuple(notes),
    )
