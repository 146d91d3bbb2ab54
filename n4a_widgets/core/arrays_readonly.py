"""Read-only views of ``arrays/``: which prediction ids each Parquet file holds.

We read only the ``prediction_id`` and ``dataset_name`` columns (cheap), and
reproduce nirs4all's file naming (``ArrayStore._parquet_path``) and tombstone
reading (``ArrayStore._read_tombstones``) without importing nirs4all, so health
and the widgets' first paint stay light; ``tests/test_health.py`` checks both
against nirs4all's own on every run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout

#: ``nirs4all.pipeline.storage.array_store._UNSAFE_FILENAME_RE`` (contract-tested).
UNSAFE_FILENAME_RE = re.compile(r'[/\\:*?"<>|\s.]+')


def sanitize_dataset_filename(dataset_name: str) -> str:
    """nirs4all's array file stem for ``dataset_name`` (``_sanitize_dataset_filename``)."""
    return UNSAFE_FILENAME_RE.sub("_", dataset_name).strip("_") or "unnamed"


def array_store_readonly(root: Path) -> Any:
    """nirs4all's ``ArrayStore`` in read-only mode (creates nothing on disk)."""
    from .nirs4all_api import array_store

    return array_store(root, read_only=True)


def parquet_path_for(root: Path, dataset_name: str) -> Path:
    """The file nirs4all uses for ``dataset_name`` (names are sanitized)."""
    return root / layout.ARRAYS_DIR / f"{sanitize_dataset_filename(dataset_name)}.parquet"


def read_tombstones(root: Path) -> dict[str, str]:
    """Pending deletes ``{prediction_id: timestamp}`` (empty when none), without importing nirs4all.

    The one tombstone reader of the package; ``tests/test_nirs4all_adapter.py`` checks it gives
    nirs4all's own answer.  A file that is not JSON raises ``CorruptStoreError``.
    """

    from .errors import CorruptStoreError

    path = root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptStoreError(
            f"{path.name} in arrays/ cannot be read.", "Run StorageHealth to check the workspace; nothing was changed."
        ) from exc
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    return {str(k): "" for k in data}  # a plain list of ids (older writers)


def tombstone_ids(root: Path) -> set[str]:
    """The ids of ``read_tombstones``: pending deletes."""
    return set(read_tombstones(root))


def live_prediction_ids(root: Path, dataset_name: str | None = None) -> set[str]:
    """Ids of the predictions in ``store.sqlite`` (read-only), optionally of one dataset."""
    from .readonly_sqlite import open_readonly

    with open_readonly(root / layout.STORE_SQLITE) as conn:
        if dataset_name is None:
            return {str(r[0]) for r in conn.execute("SELECT prediction_id FROM predictions")}
        rows = conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", [dataset_name])
        return {str(r[0]) for r in rows}


@dataclass
class ArrayFileScan:
    """What one pass over ``arrays/*.parquet`` found."""

    ids_by_dataset: dict[str, set[str]] = field(default_factory=dict)
    files_by_dataset: dict[str, Path] = field(default_factory=dict)
    bytes_by_file: dict[Path, int] = field(default_factory=dict)
    rows_by_file: dict[Path, int] = field(default_factory=dict)
    corrupt_files: list[str] = field(default_factory=list)

    @property
    def all_ids(self) -> set[str]:
        out: set[str] = set()
        for ids in self.ids_by_dataset.values():
            out |= ids
        return out


def scan_array_files(
    root: Path,
    *,
    deep: bool = False,
    on_file: Callable[[int, int, Path], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ArrayFileScan:
    """Read the id columns of every array file; ``deep`` decodes every column.

    A file that cannot be read (truncated, not Parquet, missing columns) is
    listed in ``corrupt_files`` by absolute path and contributes no ids.
    """
    import pyarrow.parquet as pq

    scan = ArrayFileScan()
    arrays = root / layout.ARRAYS_DIR
    files = sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []
    for index, path in enumerate(files):
        if should_stop is not None and should_stop():
            break
        if on_file is not None:
            on_file(index, len(files), path)
        try:
            scan.bytes_by_file[path] = path.stat().st_size
            pf = pq.ParquetFile(path)
            table = pf.read(columns=["prediction_id", "dataset_name"])
            if deep:
                for _batch in pf.iter_batches(batch_size=2048):
                    pass
            scan.rows_by_file[path] = table.num_rows
        except Exception:  # noqa: BLE001 - any read failure means the file is unusable
            scan.corrupt_files.append(str(path))
            continue
        ids = table.column("prediction_id").to_pylist()
        names = table.column("dataset_name").to_pylist()
        for pid, name in zip(ids, names, strict=True):
            ds = name if name is not None else path.stem
            scan.ids_by_dataset.setdefault(ds, set()).add(pid)
            scan.files_by_dataset.setdefault(ds, path)
    return scan


#: Rows decoded at a time by ``take_rows`` (bounds memory, not the work).
TAKE_BATCH_ROWS = 8192
#: Bytes ``take_rows`` reads from disk at a time.
TAKE_BUFFER_BYTES = 1 << 20


def take_rows(
    path: Path, rows: list[int], columns: list[str] | None = None, check: Callable[[], None] | None = None
) -> Any:
    """The rows at positions ``rows`` of one array file (in that order), as an Arrow table.

    nirs4all writes a dataset's file as one row group, so taking a few rows decodes
    the whole column chunks either way; streaming keeps one batch decoded at a time
    (at 1M predictions a file is ~600 MB decoded, the rows wanted a few MB) and stops
    after the last wanted row.  ``check()`` runs between batches (cancel, time limit).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Page by page from disk: without a buffer size a whole compressed column chunk is read first.
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=TAKE_BUFFER_BYTES)
    schema = parquet.schema_arrow if columns is None else pa.schema([parquet.schema_arrow.field(c) for c in columns])
    order = sorted(range(len(rows)), key=rows.__getitem__)
    pieces: list[pa.Table] = []
    picked_order: list[int] = []
    start, pos = 0, 0
    if rows:
        for batch in parquet.iter_batches(batch_size=TAKE_BATCH_ROWS, columns=columns):
            if check is not None:
                check()
            end = start + batch.num_rows
            picked: list[int] = []
            while pos < len(order) and rows[order[pos]] < end:
                picked.append(order[pos])
                pos += 1
            if picked:
                local = pa.array([rows[i] - start for i in picked], pa.int64())
                pieces.append(pa.Table.from_batches([batch.take(local)]))
                picked_order.extend(picked)
            start = end
            if pos == len(order):
                break
    if pos < len(order):
        raise IndexError(f"{path.name} has {start} rows; row {rows[order[pos]]} was asked for")
    table = pa.concat_tables(pieces).combine_chunks() if pieces else schema.empty_table()
    if picked_order != list(range(len(rows))):  # back to the order asked for
        back = [0] * len(rows)
        for k, i in enumerate(picked_order):
            back[i] = k
        table = table.take(pa.array(back, pa.int64()))
    return table

