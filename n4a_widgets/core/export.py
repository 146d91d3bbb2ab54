"""Portable Parquet export of live predictions: one file per dataset.

``Workspace.export`` writes, for each selected dataset, one self-describing
Parquet file that plain polars / pandas / duckdb / R read without nirs4all:
the array file's columns as nirs4all stored them (``prediction_id``,
``dataset_name``, ``model_name``, ``fold_id``, ``partition``, ``metric``,
``val_score``, ``task_type``, ``y_true``, ``y_pred``, ... ``result_metadata``)
followed by ``METADATA_COLUMNS`` from ``store.sqlite`` (test/train scores, all
scores as JSON, model class, preprocessings, chain, pipeline and run names).

Which rows: a row is exported when its prediction is live in SQLite, is not
tombstoned (``arrays/_tombstones.json``, deleted but not compacted), is the
last copy of its id in the file (nirs4all's own "keep last" rule), belongs to
the dataset, and matches the filters.  A tombstone on a prediction that is
still in SQLite (a crash between nirs4all's two writes) also excludes the row:
its arrays may predate the metadata, so we never guess.

Two ways to write a file, same columns and types either way:

- **copy** (nothing to filter or exclude): the source file's column chunks are
  copied byte for byte by the kernel and the metadata columns appended next
  to them (``parquet_splice``); the file keeps nirs4all's row groups (one).
  Without filters the copy starts before the rows are checked; the metadata
  query, its encoding and the merged footer overlap the copy.  Speed is that
  of a file copy.
- **rewrite** (filters, tombstones, orphans or duplicates present): one
  thread decodes the source batch by batch (pyarrow, ``pre_buffer=False``, so
  it decodes page by page even inside nirs4all's single row group) and
  filters; the calling thread fetches the metadata of each row group from
  SQLite by primary key, aligns it with Arrow (``index_in`` + ``take``) and
  writes with ``ParquetWriter`` in small row groups (``ROW_GROUP_BYTES``
  decoded) so readers of the export can stream and skip.

Safety: read-only on the workspace (SQLite opened read-only, array files only
read); output goes to a temporary name in the destination folder and is
renamed when complete; an error or a cancel removes every partial file.  The
destination may not lie inside the workspace, except under its ``exports/``
folder (nirs4all's own place for exports).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .arrays_readonly import parquet_path_for, read_tombstones
from .errors import (
    CorruptStoreError,
    InvalidArgumentError,
    OperationCancelledError,
    UnsupportedFormatError,
    WorkspaceError,
)
from .readonly_sqlite import open_readonly
from .reports import Report, utc_now

if TYPE_CHECKING:
    import sqlite3

    import numpy as np
    import pyarrow as pa

    from .parquet_splice import Splice
    from .workspace import Workspace

Progress = Callable[[float, str], None]

FORMATS = ("auto", "parquet", "zip", "folder")

#: Read-ahead buffer per column of the source (pre_buffer off): small, a file has ~20 columns.
READ_BUFFER_BYTES = 64 << 10
#: Decoded bytes per batch read from the source (pyarrow's buffers scale with it).
READ_BATCH_BYTES = 2 << 20
#: Hand pyarrow's default pool's free pages back every this many batches (each call costs ~0.4 ms;
#: never calling it lets the page buffers' pool grow ~25 MB on a 60 MB file).
RELEASE_EVERY_BATCHES = 2
#: Decoded bytes per row group written (filtered batches are gathered up to this).
ROW_GROUP_BYTES = 4 << 20
#: Bounds on rows per batch (very wide or very narrow rows).
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 16, 65536

#: Columns added from SQLite: (column name, SQL expression, Arrow type name).
METADATA_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("test_score", "p.test_score", "float64"),
    ("train_score", "p.train_score", "float64"),
    ("scores", "p.scores", "string"),
    ("best_params", "p.best_params", "string"),
    ("model_class", "p.model_class", "string"),
    ("preprocessings", "p.preprocessings", "string"),
    ("n_samples", "p.n_samples", "int64"),
    ("n_features", "p.n_features", "int64"),
    ("branch_id", "p.branch_id", "int64"),
    ("branch_name", "p.branch_name", "string"),
    ("exclusion_count", "p.exclusion_count", "int64"),
    ("exclusion_rate", "p.exclusion_rate", "float64"),
    ("chain_id", "p.chain_id", "string"),
    ("pipeline_id", "p.pipeline_id", "string"),
    ("pipeline_name", "pl.name", "string"),
    ("run_id", "pl.run_id", "string"),
    ("run_name", "r.name", "string"),
    ("created_at", "p.created_at", "string"),
)

#: Parquet key-value metadata key holding what the export was (JSON).
EXPORT_INFO_KEY = "n4a_widgets.export"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


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


# ------------------------------------------------------------------ helpers


def safe_file_stem(name: str) -> str:
    """A file name (no extension) for ``name`` that is safe on every OS and in zips."""
    stem = _SAFE_NAME.sub("_", name).strip("._ ") or "dataset"
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    return stem[:120]


def unique_file_names(datasets: Sequence[str], suffix: str = ".parquet") -> dict[str, str]:
    """``{dataset: file name}``; names that sanitize alike get ``-2``, ``-3``..."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in datasets:
        stem = safe_file_stem(name)
        candidate, n = stem, 1
        while (candidate + suffix).lower() in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add((candidate + suffix).lower())
        out[name] = candidate + suffix
    return out


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _resolved(path: Path) -> Path:
    """``path`` with symlinks of its existing part resolved."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


@dataclass
class _Target:
    """Where the export goes: ``final`` path and the resolved format."""

    final: Path
    format: str
    file_names: dict[str, str]
    create_exports_dir: bool = False


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
    return fmt


def resolve_target(ws_root: Path, dest: str | os.PathLike[str], datasets: Sequence[str], fmt: str,
                   overwrite: bool) -> _Target:
    """Decide the final path and format; refuse bad destinations before any work."""
    _check_format(fmt)
    dest_path = Path(dest).expanduser().absolute()
    if fmt == "auto":
        explicit_zip = dest_path.suffix.lower() == ".zip" and not dest_path.is_dir()
        fmt = "parquet" if len(datasets) == 1 and not explicit_zip else "zip"
    if fmt == "parquet" and len(datasets) != 1:
        raise InvalidArgumentError(
            f"A single Parquet file holds one dataset; {len(datasets)} are selected.",
            "Export to a .zip or a folder (format='zip' or 'folder'), or select one dataset.",
        )
    names = unique_file_names(datasets)
    final = dest_path
    if fmt in ("parquet", "zip") and dest_path.is_dir():
        # A folder given as destination: put the file inside it with a default name.
        default = names[datasets[0]] if fmt == "parquet" else f"{safe_file_stem(ws_root.name)}_predictions.zip"
        final = dest_path / default

    ws_real = _resolved(ws_root)
    final_real = _resolved(final)
    create_exports = False
    if _is_within(final_real, ws_real):
        exports = ws_real / layout.EXPORTS_DIR
        if not _is_within(final_real, exports) or (final_real == exports and fmt != "folder"):
            raise InvalidArgumentError(
                f"{final} is inside the workspace; an export never writes there.",
                f"Pick a folder outside the workspace, or its '{layout.EXPORTS_DIR}/' subfolder.",
            )
        create_exports = not exports.exists()

    parent = final.parent
    if fmt == "folder":
        if final.exists() and not final.is_dir():
            raise InvalidArgumentError(f"{final} is a file; a folder export needs a folder.",
                                       "Pick a new folder name, or use format='parquet' or 'zip'.")
        if not overwrite:
            clashes = [final / n for n in names.values() if (final / n).exists()]
            if clashes:
                raise WorkspaceError(
                    f"{clashes[0]} already exists" + (f" (and {len(clashes) - 1} more)." if len(clashes) > 1 else "."),
                    "Pick another folder, or pass overwrite=True (--overwrite) to replace those files.",
                )
    else:
        if final.is_dir():
            raise InvalidArgumentError(f"{final} is a folder.", "Give a file name ending in .parquet or .zip.")
        if final.exists() and not overwrite:
            raise WorkspaceError(f"{final} already exists.",
                                 "Pick another name, or pass overwrite=True (--overwrite) to replace it.")
    check_dir = final if fmt == "folder" and final.exists() else parent
    if not check_dir.exists() and not (create_exports and _resolved(check_dir) == ws_real / layout.EXPORTS_DIR):
        raise WorkspaceError(f"Folder {check_dir} does not exist.", "Create it first, or pick another destination.")
    if check_dir.exists() and not os.access(check_dir, os.W_OK | os.X_OK):
        raise WorkspaceError(f"Cannot write to {check_dir} (permission denied).",
                             "Pick a folder you can write to, such as your home folder.")
    return _Target(final=final, format=fmt, file_names=names, create_exports_dir=create_exports)


# ---------------------------------------------------------------- selection


@dataclass
class _DatasetPlan:
    name: str
    source: Path | None
    file_name: str
    keep: np.ndarray | None = None
    source_rows: int = 0
    rows: int = 0
    tombstoned: int = 0
    orphans: int = 0
    duplicates: int = 0
    filtered: int = 0
    other_dataset: int = 0
    source_bytes: int = 0
    decoded_bytes: int = 0
    ids: pa.Array | None = None
    """The source's ``prediction_id`` column (Arrow), read while planning."""
    schema: pa.Schema | None = None
    """The source's Arrow schema (from its footer, read once while planning)."""
    row_group_rows: list[int] | None = None

    @property
    def needs_filtering(self) -> bool:
        return self.rows != self.source_rows


def _sqlite_ids(conn: sqlite3.Connection, name: str, partition: str | None, model_name: str | None,
                fold_id: str | None) -> tuple[list[str], list[str] | None]:
    """(every live id of ``name``, the live ids matching the filters or None when there are no filters)."""
    live = [r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", (name,))]
    clauses, params = ["dataset_name = ?"], [name]
    for column, value in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if len(clauses) == 1:
        return live, None
    sql = f"SELECT prediction_id FROM predictions WHERE {' AND '.join(clauses)}"
    return live, [r[0] for r in conn.execute(sql, params)]


def _open_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unreadable
        raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc


def _is_in(ids: pa.Array, values: Sequence[str] | set[str]) -> np.ndarray:
    """``ids[i] in values`` as a numpy bool array (nulls are never in)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not values:
        return np.zeros(len(ids), dtype=bool)
    value_set = pa.array(list(values), type=ids.type)
    return _to_bools(pc.is_in(ids, value_set=value_set))


def _to_bools(values: pa.BooleanArray) -> np.ndarray:
    """Arrow booleans as numpy (nulls as False), unpacking the bits ourselves: pyarrow's
    ``to_numpy(zero_copy_only=False)`` imports its pandas layer on first use (over 1 ms)."""
    import numpy as np

    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)

    def unpack(buffer: pa.Buffer) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
        return bits[values.offset:values.offset + n].astype(bool)

    validity, data = values.buffers()
    out = unpack(data)
    if values.null_count and validity is not None:
        out &= unpack(validity)
    return out


def _last_copies(ids: pa.Array) -> np.ndarray:
    """True for the last row of each id (nirs4all's "keep last" rule); nulls count as one id."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(ids)
    encoded = pc.dictionary_encode(ids)
    if len(encoded.dictionary) == n and ids.null_count == 0:
        return np.ones(n, dtype=bool)  # no duplicates: the common case, no sort
    codes = _codes(encoded)
    _, first_from_end = np.unique(codes[::-1], return_index=True)
    last = np.zeros(n, dtype=bool)
    last[n - 1 - first_from_end] = True
    return last


def _equals(values: pa.Array, value: str) -> np.ndarray:
    """``values[i] == value`` as a numpy bool array (nulls are not equal); one distinct value per dataset file."""
    import numpy as np
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    hits = np.array([v == value for v in encoded.dictionary.to_pylist()] + [False], dtype=bool)
    return hits[_codes(encoded)]


def _codes(encoded: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as numpy, nulls as one more code (``len(dictionary)``)."""
    import pyarrow.compute as pc

    indices = encoded.indices
    if indices.null_count:  # pc.fill_null's first call costs ~1 ms: only when needed
        indices = pc.fill_null(indices, len(encoded.dictionary))
    return indices.to_numpy()


def _plan_dataset(plan: _DatasetPlan, live: Sequence[str], selected: Sequence[str] | None,
                  tombstones: set[str]) -> None:
    """Fill ``plan.keep``: which rows of the source file are exported (reads two columns, vectorized)."""

    if plan.source is None:
        return
    pf = _open_parquet(plan.source)
    try:
        table = pf.read(columns=["prediction_id", "dataset_name"], use_threads=False)
    except Exception as exc:  # noqa: BLE001
        raise CorruptStoreError(f"Array file {plan.source} cannot be read ({exc}).") from exc
    md = pf.metadata
    plan.schema = pf.schema_arrow
    plan.row_group_rows = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    pf.close()  # a zip of many datasets must not hold every file open
    plan.source_bytes = plan.source.stat().st_size
    plan.decoded_bytes = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    ids = table.column("prediction_id").combine_chunks()
    names = table.column("dataset_name").combine_chunks()
    n = len(ids)
    last = _last_copies(ids)
    ours = last & _equals(names, plan.name)
    tombstoned = ours & _is_in(ids, tombstones)
    rest = ours & ~tombstoned
    in_live = _is_in(ids, live)
    keep = rest & in_live
    plan.duplicates = int(n - last.sum())
    plan.other_dataset = int(last.sum() - ours.sum())
    plan.tombstoned = int(tombstoned.sum())
    plan.orphans = int(rest.sum() - keep.sum())
    if selected is not None:
        chosen = keep & _is_in(ids, selected)
        plan.filtered = int(keep.sum() - chosen.sum())
        keep = chosen
    plan.keep = keep
    plan.ids = ids
    plan.source_rows = n
    plan.rows = int(keep.sum())


# ----------------------------------------------------------------- metadata


class _Metadata:
    """Fetches the metadata columns for ids and aligns them to the ids with Arrow (no per-row Python join).

    Prediction columns come from one query on ``predictions`` (no SQL join:
    joining pipelines and runs per row costs more than the rows); pipeline
    and run names are looked up once per distinct pipeline, cached, and
    attached with an Arrow ``take``.
    """

    _LOOKUP = ("pipeline_name", "run_id", "run_name")

    def __init__(self, conn: sqlite3.Connection, skip: set[str]) -> None:
        import pyarrow as pa

        self.conn = conn
        present = {r[1] for r in conn.execute("PRAGMA table_info(predictions)")}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self.columns = [c for c in METADATA_COLUMNS if c[0] not in skip]
        self.row_columns = [c for c in self.columns if c[1].startswith("p.")]
        exprs = [expr if expr[2:] in present else "NULL" for _n, expr, _t in self.row_columns]
        pipeline = "p.pipeline_id" if "pipeline_id" in present else "NULL"
        self.select = f"SELECT p.prediction_id, {pipeline}{''.join(', ' + e for e in exprs)} FROM predictions p WHERE "
        self.lookup_sql: str | None = None
        if "pipelines" in tables:
            run = "r.name" if "runs" in tables else "NULL"
            join = " LEFT JOIN runs r ON r.run_id = pl.run_id" if "runs" in tables else ""
            self.lookup_sql = f"SELECT pl.pipeline_id, pl.name, pl.run_id, {run} FROM pipelines pl{join} WHERE "
        self.pipelines: dict[str, tuple[Any, Any, Any]] = {}
        self.schema = pa.schema([(name, getattr(pa, type_)()) for name, _e, type_ in self.columns])

    def for_dataset(self, dataset: str, ids: pa.Array) -> pa.Table:
        """Rows for ``ids`` (all of ``dataset``: the copy path), one query for the whole dataset."""
        rows = self.conn.execute(self.select + "p.dataset_name = ?", (dataset,)).fetchall()
        return self._aligned(rows, ids)

    def for_ids(self, ids: pa.Array | pa.ChunkedArray) -> pa.Table:
        """Rows for ``ids`` (a row group of the rewrite), looked up by primary key."""
        import pyarrow.compute as pc

        wanted = [i for i in pc.unique(ids).to_pylist() if i is not None]
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(wanted):
            rows.extend(self.conn.execute(self.select + f"p.prediction_id IN ({','.join('?' * len(chunk))})", chunk))
        return self._aligned(rows, ids)

    def _aligned(self, rows: list[tuple[Any, ...]], ids: pa.Array | pa.ChunkedArray) -> pa.Table:
        """The metadata table of ``rows`` in the order of ``ids`` (ids without a row give nulls)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(len(self.row_columns) + 2)]
        arrays = dict(zip([c[0] for c in self.row_columns], self._arrays(columns[2:], self.row_columns),
                          strict=True))
        if any(name in self._LOOKUP for name, _e, _t in self.columns):
            arrays.update(self._pipeline_columns(pa.array(columns[1], type=pa.string())))
        table = pa.Table.from_arrays([arrays[name] for name, _e, _t in self.columns], schema=self.schema)
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        index = pc.index_in(ids, value_set=pa.array(columns[0], type=ids.type))
        return table.take(index)

    def _pipeline_columns(self, pipeline_ids: pa.Array) -> dict[str, pa.Array]:
        """pipeline_name, run_id, run_name for each row (cached per pipeline; Arrow take, no per-row loop)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        distinct = [p for p in pc.unique(pipeline_ids).to_pylist() if p is not None]
        missing = [p for p in distinct if p not in self.pipelines]
        if missing and self.lookup_sql is not None:
            for chunk in _chunks(missing):
                sql = self.lookup_sql + f"pl.pipeline_id IN ({','.join('?' * len(chunk))})"
                for pid, name, run_id, run_name in self.conn.execute(sql, chunk):
                    self.pipelines[pid] = (name, run_id, run_name)
        found = [p for p in distinct if p in self.pipelines]
        values = list(zip(*(self.pipelines[p] for p in found), strict=True)) if found else [(), (), ()]
        lookup = [c for c in METADATA_COLUMNS if c[0] in self._LOOKUP]
        index = pc.index_in(pipeline_ids, value_set=pa.array(found, type=pa.string()))
        return {name: array.take(index) for (name, _e, _t), array in zip(lookup, self._arrays(values, lookup),
                                                                          strict=True)}

    @staticmethod
    def _arrays(columns: Sequence[Sequence[Any]], spec: Sequence[tuple[str, str, str]]) -> list[pa.Array]:
        import pyarrow as pa

        arrays = []
        for values, (_name, _e, type_) in zip(columns, spec, strict=True):
            arrow_type = getattr(pa, type_)()
            try:
                arrays.append(pa.array(values, type=arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                arrays.append(pa.array([_coerce(v, type_) for v in values], type=arrow_type))
        return arrays


def _chunks(values: list[str], step: int = 900) -> Iterator[list[str]]:
    """``values`` in slices small enough for SQLite's host-parameter limit."""
    for start in range(0, len(values), step):
        yield values[start:start + step]


def _coerce(value: Any, type_: str) -> Any:
    if value is None:
        return None
    if type_ == "string":
        return value if isinstance(value, str) else str(value)
    if type_ == "int64":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ writing

#: String columns whose values are (nearly) all distinct: a dictionary only costs time there.
_DISTINCT_STRINGS = frozenset({"prediction_id", "scores", "created_at"})


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Scalar string columns worth dictionary encoding (model, partition, run names...)."""
    import pyarrow as pa

    return [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
            and f.name not in _DISTINCT_STRINGS]


def _scalar_columns(schema: pa.Schema) -> list[str]:
    """Columns worth min/max statistics (not the arrays: computing those costs a pass over every value)."""
    import pyarrow as pa

    return [f.name for f in schema if not pa.types.is_list(f.type) and not pa.types.is_large_list(f.type)]


def _writer_options(schema: pa.Schema) -> dict[str, Any]:
    """ParquetWriter settings of every file we write: zstd (level 1), dictionaries and
    statistics only where they pay (never on the float arrays: dictionary-encoding
    measured values is a hash per value for nothing), no page index."""
    return {"compression": "zstd", "compression_level": 1, "use_dictionary": _dictionary_columns(schema),
            "write_statistics": _scalar_columns(schema), "write_page_index": False}


def _batch_rows(plan: _DatasetPlan) -> int:
    per_row = max(plan.decoded_bytes // max(plan.source_rows, 1), 1)
    return int(min(max(READ_BATCH_BYTES // per_row, MIN_BATCH_ROWS), MAX_BATCH_ROWS))


def _export_pool() -> pa.MemoryPool:
    """The memory pool of the rewrite's Arrow buffers: jemalloc, else the system allocator.

    pyarrow's default pool (mimalloc) keeps freed pages of every thread that
    allocated them; streaming a file batch by batch through it (decoding on
    pyarrow's threads, freeing on ours) grows RSS by ~2x what is live, and
    ``release_unused`` per batch costs more time than the decoding.  jemalloc
    and glibc hand large freed blocks back on their own.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # not built in (Windows wheels)
        return pa.system_memory_pool()


def _iter_source(plan: _DatasetPlan, batch_rows: int, pool: pa.MemoryPool) -> Iterator[pa.RecordBatch]:
    """The source's record batches (all columns, in order), decoded on the calling thread.

    Decoded columns are allocated from ``pool``: ``pq.ParquetFile`` takes no
    memory pool, its reader class does (private pyarrow API, guarded by a
    test; without it we read through ``ParquetFile``).  Page buffers still
    come from pyarrow's default pool (mimalloc), which keeps freed pages per
    thread: decoding on this one thread (the caller's other thread encodes
    meanwhile) and handing its pages back every other batch keeps that small
    (``release_unused`` only collects the calling thread's heap).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert plan.source is not None
    default_pool = pa.default_memory_pool()
    batches: Iterator[pa.RecordBatch]
    reader: Any
    try:
        from pyarrow._parquet import ParquetReader

        reader = ParquetReader(memory_pool=pool)
        reader.open(str(plan.source), buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
        batches = reader.iter_batches(batch_rows, row_groups=range(reader.metadata.num_row_groups),
                                      use_threads=False)
    except (ImportError, TypeError, AttributeError):
        reader = pq.ParquetFile(plan.source, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        batches = reader.iter_batches(batch_size=batch_rows, use_threads=False)
    try:
        for i, batch in enumerate(batches):
            yield batch
            if i % RELEASE_EVERY_BATCHES == 0:
                default_pool.release_unused()
    finally:
        reader.close()


class _SourceReader:
    """Decodes and filters the source on its own thread; hands over row-group-sized tables.

    pyarrow decodes with the GIL released, so decoding the next row group
    overlaps the metadata lookup and the (zstd) encoding of the current one on
    the caller's thread.  The hand-over queue holds one row group: memory stays
    bounded by about three row groups plus the decoder's page buffers,
    whatever the file size.
    """

    _DONE = object()

    def __init__(self, plan: _DatasetPlan, pool: pa.MemoryPool) -> None:
        import queue

        assert plan.source is not None and plan.keep is not None
        self.plan = plan
        self.pool = pool
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.rows_read = 0
        self.thread = threading.Thread(target=self._run, name="n4a-export-read", daemon=True)

    def __enter__(self) -> _SourceReader:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        import queue

        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)  # unblock a pending put
            except queue.Empty:
                pass
        self.thread.join()

    def _put(self, item: Any) -> bool:
        import queue

        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = self.plan.keep
        assert keep is not None
        batch_rows = _batch_rows(self.plan)
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        consumed = 0
        try:
            for batch in _iter_source(self.plan, batch_rows, self.pool):
                if self.stop.is_set():
                    return
                n = batch.num_rows
                mask = keep[self.rows_read:self.rows_read + n]
                self.rows_read += n
                consumed += n
                if mask.any():
                    if not mask.all():
                        batch = pc.filter(batch, pa.array(mask), memory_pool=self.pool)
                    pending.append(batch)
                    pending_bytes += batch.nbytes
                del batch
                if pending_bytes >= ROW_GROUP_BYTES:  # a row group to write
                    if not self._put((pending, consumed)):
                        return
                    pending, pending_bytes, consumed = [], 0, 0
                elif consumed >= 8 * batch_rows:  # little kept lately: report progress anyway
                    if not self._put(([], consumed)):
                        return
                    consumed = 0
            if (pending or consumed) and not self._put((pending, consumed)):
                return
            self._put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(exc)

    def __iter__(self) -> Any:
        while True:
            item = self.queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def _write_rewrite(plan: _DatasetPlan, meta: _Metadata, out: Path, info: dict[str, str],
                   tick: Callable[[int], None]) -> None:
    """Stream ``plan.source`` into ``out``: filter, join metadata, small row groups.

    Two threads: ``_SourceReader`` decodes and filters, this thread looks the
    metadata up (SQLite connections stay on their thread) and writes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert plan.source is not None and plan.keep is not None
    pool = _export_pool()
    reader = _SourceReader(plan, pool)
    assert plan.schema is not None
    src_schema = plan.schema
    schema = pa.schema([*src_schema, *meta.schema], metadata=info)
    writer = pq.ParquetWriter(out, schema, memory_pool=pool, **_writer_options(schema))
    try:
        with reader:
            items = iter(reader)
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    break
                except (OSError, pa.ArrowException) as exc:
                    if isinstance(exc, OSError) and getattr(exc, "filename", None) not in (None, str(plan.source)):
                        raise
                    raise CorruptStoreError(f"Array file {plan.source} cannot be read ({exc}).") from exc
                batches, consumed = item
                if batches:
                    table = pa.Table.from_batches(batches)
                    if table.schema != src_schema:  # (Table.cast imports pyarrow's pandas layer: only if needed)
                        table = table.cast(src_schema)
                    extra = meta.for_ids(table.column("prediction_id"))
                    for name in extra.column_names:
                        table = table.append_column(schema.field(name), extra.column(name))
                    writer.write_table(table, row_group_size=max(table.num_rows, 1))
                    del table, extra, batches
                tick(consumed)
    finally:
        writer.close()
        pool.release_unused()
    if reader.rows_read != plan.source_rows:
        raise CorruptStoreError(f"Array file {plan.source} changed while it was read ({reader.rows_read} of "
                                f"{plan.source_rows} rows).", "Run the export again.")


def _write_copy(plan: _DatasetPlan, meta: _Metadata, out: Path, info: dict[str, str],
                splice: Splice | None = None) -> None:
    """Copy ``plan.source``'s column chunks and append the metadata columns (same row groups).

    ``splice``: the copy into ``out``, if it was started early."""
    import io

    import pyarrow.parquet as pq

    from .parquet_splice import Splice, SpliceUnsupported

    assert plan.source is not None and plan.schema is not None and plan.row_group_rows is not None
    assert plan.ids is not None
    ids, sizes, names = plan.ids, plan.row_group_rows, plan.schema.names
    columns: list[str] = []

    def make_extra() -> bytes:
        extra = meta.for_dataset(plan.name, ids)
        columns.extend(extra.column_names)
        buf = io.BytesIO()
        options = _writer_options(extra.schema)
        options["write_statistics"] = True  # scalars only here: cheap, and pyarrow's default
        writer = pq.ParquetWriter(buf, extra.schema, **options)
        start = 0
        for size in sizes:
            writer.write_table(extra.slice(start, size), row_group_size=max(size, 1))
            start += size
        writer.close()
        return buf.getvalue()

    if splice is None:
        splice = Splice(plan.source, out)
    splice.finish(make_extra, info)
    # Cheap check of what a reader will see: the footer parses and has every column.
    md = pq.read_metadata(out)
    expected = [*names, *columns]
    if md.num_rows != plan.source_rows or md.schema.to_arrow_schema().names != expected:
        raise SpliceUnsupported("spliced file does not read back as expected")


# ------------------------------------------------------------------ cleanup


class _Scratch:
    """Temporary files and folders of one export; ``discard`` removes them all."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.dirs: list[Path] = []

    def temp_name(self, folder: Path, final_name: str) -> Path:
        path = folder / f".{final_name}.n4a-export-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        self.paths.append(path)
        return path

    def discard(self) -> None:
        for path in self.paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass
        for folder in reversed(self.dirs):
            try:
                folder.rmdir()
            except OSError:
                pass


def _map_write_error(exc: OSError, where: Path) -> WorkspaceError:
    import errno

    if exc.errno == errno.ENOSPC:
        return WorkspaceError(f"The disk is full while writing {where}.", "Free some space and export again; "
                              "nothing was left behind.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WorkspaceError(f"Cannot write {where} ({exc.strerror}).", "Pick a folder you can write to.")
    return WorkspaceError(f"Writing {where} failed: {exc}.", "Check the destination and export again.")


# --------------------------------------------------------------------- main


def export_predictions(
    ws: Workspace,
    dest: str | os.PathLike[str],
    datasets: Sequence[str] | None = None,
    partition: str | None = None,
    model_name: str | None = None,
    format: str = "auto",
    fold_id: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ExportReport:
    """Export live predictions of ``datasets`` (all by default) to Parquet at ``dest``.

    See the module docstring for the columns, the row rules and the two write
    paths.  ``format``: ``auto`` (a file for one dataset, a zip for several),
    ``parquet``, ``zip`` (Parquet files stored uncompressed in the zip) or
    ``folder``.  ``dest`` may be an existing folder for ``parquet``/``zip``:
    the file is then named after the dataset / the workspace.  Raises
    ``InvalidArgumentError`` (unknown dataset, nothing matches, bad format),
    ``WorkspaceError`` (destination exists, not writable),
    ``CorruptStoreError`` (unreadable array file) or
    ``OperationCancelledError``; on any error nothing is left at ``dest``.
    """
    from .status import MIGRATED, detect_status

    started = time.perf_counter()
    root = ws.path
    _check_format(format)
    for label, value in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{label} must be a string, not {type(value).__name__}.")
    if isinstance(datasets, str):
        datasets = [datasets]

    def report_progress(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise OperationCancelledError("Export cancelled; partial files were removed.")

    status = detect_status(root)
    if status.storage_mode != MIGRATED:
        raise UnsupportedFormatError(f"Export reads the current storage format; this workspace is "
                                     f"{status.storage_mode} ({status.format}).")
    report_progress(0.0, "Reading metadata")
    db = root / layout.STORE_SQLITE
    try:
        tombstones = set(read_tombstones(root))
    except Exception as exc:  # noqa: BLE001
        raise CorruptStoreError(f"{root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE} cannot be read ({exc}).") from exc

    with open_readonly(db) as conn:
        known = sorted(r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions") if r[0] is not None)
        if datasets is None:
            chosen = known
        else:
            chosen = list(dict.fromkeys(datasets))
            unknown = [d for d in chosen if d not in known]
            if unknown:
                raise InvalidArgumentError(
                    f"Unknown dataset{'s' if len(unknown) > 1 else ''}: {', '.join(map(repr, unknown))}.",
                    "Known datasets: " + (", ".join(map(repr, known)) if known else "none (the workspace is empty)")
                    + ".",
                )
        if not chosen:
            raise InvalidArgumentError("The workspace has no predictions to export.", "Run nirs4all first.")
        target = resolve_target(root, dest, chosen, format, overwrite)

        filters = {k: v for k, v in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id))
                   if v is not None}
        folder = target.final if target.format == "folder" else target.final.parent
        plans: list[_DatasetPlan] = []
        scratch = _Scratch()
        early: dict[str, Splice] = {}
        files: list[ExportedFile] = []
        try:
            if target.create_exports_dir:
                (root / layout.EXPORTS_DIR).mkdir(exist_ok=True)
                scratch.dirs.append(root / layout.EXPORTS_DIR)
            if target.format == "folder" and not target.final.exists():
                target.final.mkdir()
                scratch.dirs.append(target.final)
            for i, name in enumerate(chosen):
                check_cancel()
                report_progress(0.02 * i / len(chosen), f"Selecting rows of {name}")
                source = parquet_path_for(root, name)
                plan = _DatasetPlan(name, source if source.is_file() else None, target.file_names[name])
                if i == 0 and not filters and plan.source is not None:
                    # Most likely a plain copy: let the kernel start copying while we select rows.
                    opened = _start_splice(plan.source, scratch.temp_name(folder, plan.file_name))
                    if opened is not None:
                        early[name] = opened
                live, selected = _sqlite_ids(conn, name, partition, model_name, fold_id)
                _plan_dataset(plan, live, selected, tombstones)
                plans.append(plan)
            for name in list(early):
                plan = next(p for p in plans if p.name == name)
                if plan.rows == 0 or plan.needs_filtering:  # the guess was wrong: drop the copy
                    dropped = early.pop(name)
                    dropped.abort()
                    dropped.out.unlink(missing_ok=True)

            to_write = [p for p in plans if p.rows > 0]
            skipped = tuple(p.name for p in plans if p.rows == 0)
            if not to_write:
                what = ", ".join(f"{k}={v!r}" for k, v in filters.items())
                raise InvalidArgumentError(
                    "No live prediction matches " + (what if what else "the selection") + " in "
                    + ", ".join(map(repr, chosen)) + "; nothing was written.",
                    _filter_hint(conn, chosen) if filters
                    else "The selected datasets have no live predictions with arrays.",
                )

            notes: list[str] = []
            for p in plans:
                if p.source is None:
                    notes.append(f"{p.name}: no array file, skipped.")
                elif p.rows == 0:
                    notes.append(f"{p.name}: no live prediction matches the filters, skipped.")

            info = {
                EXPORT_INFO_KEY: json.dumps({
                    "exported_at": utc_now(), "workspace": root.name, "filters": filters,
                    "nirs4all": _nirs4all_version(), "n4a_widgets": _our_version(),
                }),
            }
            total_work = sum(p.source_rows for p in to_write) or 1
            done = [0]
            current = [""]

            def tick(rows: int) -> None:
                done[0] += rows
                check_cancel()
                report_progress(0.02 + 0.96 * done[0] / total_work,
                                f"Writing {current[0]} ({done[0]}/{total_work} rows)")

            written: list[tuple[_DatasetPlan, Path, str]] = []
            for plan in to_write:
                check_cancel()
                current[0] = plan.name
                splice = early.get(plan.name)  # stays in ``early`` until done: an error aborts it
                tmp = splice.out if splice is not None else scratch.temp_name(folder, plan.file_name)
                assert plan.source is not None and plan.schema is not None
                meta = _Metadata(conn, skip=set(plan.schema.names))
                method = _write_one(plan, meta, tmp, info, tick, splice)
                early.pop(plan.name, None)
                written.append((plan, tmp, method))
            check_cancel()
            report_progress(0.99, "Publishing")
            files = _publish(target, written, scratch, overwrite)
        except BaseException as exc:
            for pending in early.values():
                pending.abort()
            scratch.discard()
            if isinstance(exc, OSError) and not isinstance(exc, WorkspaceError):
                raise _map_write_error(exc, target.final) from exc
            raise

    report_progress(1.0, "Done")
    return ExportReport(
        workspace=str(root),
        dest=str(target.final),
        format=target.format,
        files=tuple(files),
        total_rows=sum(f.rows for f in files),
        total_bytes=(target.final.stat().st_size if target.format == "zip" else sum(f.bytes for f in files)),
        duration_seconds=round(time.perf_counter() - started, 3),
        datasets=tuple(p.name for p in to_write),
        partition=partition,
        model_name=model_name,
        fold_id=fold_id,
        excluded_tombstoned=sum(p.tombstoned for p in plans),
        excluded_orphans=sum(p.orphans for p in plans),
        excluded_duplicates=sum(p.duplicates for p in plans),
        excluded_by_filters=sum(p.filtered for p in plans),
        skipped_datasets=skipped,
        exported_at=utc_now(),
        notes=tuple(notes),
    )


def _start_splice(source: Path, tmp: Path) -> Splice | None:
    """Start copying ``source`` into ``tmp`` before the rows are selected; None if it cannot start
    (an unreadable source: the row selection then reports it properly)."""
    from .parquet_splice import Splice, SpliceUnsupported

    try:
        return Splice(source, tmp)
    except (SpliceUnsupported, OSError):
        return None  # nothing was created: the temporary file is created last


def _write_one(plan: _DatasetPlan, meta: _Metadata, tmp: Path, info: dict[str, str],
               tick: Callable[[int], None], splice: Splice | None = None) -> str:
    """Write one dataset to ``tmp`` (``splice``: a copy of it already started there); returns the method used."""
    if not plan.needs_filtering:
        try:
            _write_copy(plan, meta, tmp, info, splice)
            tick(plan.source_rows)
            return "copy"
        except OperationCancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any surprise in the fast path: use the rewrite
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            if splice is not None:
                splice.abort()
            tmp.unlink(missing_ok=True)
    elif splice is not None:
        splice.abort()
        tmp.unlink(missing_ok=True)
    _write_rewrite(plan, meta, tmp, info, tick)
    return "rewrite"


def _publish(target: _Target, written: list[tuple[_DatasetPlan, Path, str]], scratch: _Scratch,
             overwrite: bool) -> list[ExportedFile]:
    """Rename (or zip) the finished temporary files into place."""
    import zipfile

    files: list[ExportedFile] = []
    if target.format == "zip":
        tmp_zip = scratch.temp_name(target.final.parent, target.final.name)
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for plan, tmp, method in written:
                zf.write(tmp, arcname=plan.file_name, compress_type=zipfile.ZIP_STORED)
                size = tmp.stat().st_size
                tmp.unlink()
                files.append(ExportedFile(plan.name, str(target.final), plan.rows, size, plan.file_name, method))
        _replace(tmp_zip, target.final, overwrite)
        return files
    for plan, tmp, method in written:
        final = target.final / plan.file_name if target.format == "folder" else target.final
        size = tmp.stat().st_size
        _replace(tmp, final, overwrite)
        files.append(ExportedFile(plan.name, str(final), plan.rows, size, None, method))
    return files


def _replace(tmp: Path, final: Path, overwrite: bool) -> None:
    if not overwrite and final.exists():
        raise WorkspaceError(f"{final} appeared while exporting.", "Pick another name, or pass overwrite=True.")
    os.replace(tmp, final)


def _filter_hint(conn: sqlite3.Connection, datasets: Sequence[str]) -> str:
    marks = ",".join("?" * len(datasets))
    parts = []
    for column in ("partition", "model_name", "fold_id"):
        values = [r[0] for r in conn.execute(
            f"SELECT DISTINCT {column} FROM predictions WHERE dataset_name IN ({marks}) ORDER BY 1", list(datasets))]
        parts.append(f"{column}: {', '.join(map(repr, values[:12]))}{' ...' if len(values) > 12 else ''}")
    return "Values present — " + "; ".join(parts) + "."


def _nirs4all_version() -> str:
    import sys

    module = sys.modules.get("nirs4all")  # imported already (file naming); importlib.metadata scans sys.path
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("nirs4all")
    except PackageNotFoundError:
        return "unknown"


def _our_version() -> str:
    from .. import __version__

    return __version__


# ------------------------------------------------------- choices for widgets


@dataclass(frozen=True)
class ExportChoices(Report):
    """What the ExportPicker offers: datasets with counts and sizes, filter values."""

    datasets: tuple[dict[str, Any], ...]
    partitions: tuple[str, ...]
    models: tuple[str, ...]
    folds: tuple[str, ...]


def export_choices(ws: Workspace) -> ExportChoices:
    """Datasets (live predictions, array file size) and the distinct filter values (read-only)."""
    health = ws.health()
    with open_readonly(ws.path / layout.STORE_SQLITE) as conn:
        def distinct(column: str) -> tuple[str, ...]:
            return tuple(str(r[0]) for r in conn.execute(
                f"SELECT DISTINCT {column} FROM predictions WHERE {column} IS NOT NULL ORDER BY 1"))

        partitions, models, folds = distinct("partition"), distinct("model_name"), distinct("fold_id")
    datasets = tuple(
        {"name": d.name, "prediction_count": d.prediction_count, "parquet_size_bytes": d.parquet_size_bytes,
         "pending_tombstones": d.pending_tombstones}
        for d in health.datasets if d.prediction_count > 0
    )
    return ExportChoices(datasets=datasets, partitions=partitions, models=models, folds=folds)


