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

The package splits that by concern: ``target`` (format, names, where the
export may go), ``plan`` (which rows), ``metadata`` (the SQLite columns),
``writers`` (copy or rewrite one file), ``publish`` (temporary names, rename,
zip), ``main`` (``export_predictions``) and ``reports``.
"""

from __future__ import annotations

from .main import _filter_hint, _nirs4all_version, _our_version, export_choices, export_predictions
from .metadata import METADATA_COLUMNS, _chunks, _coerce, _Metadata
from .plan import (
    READ_BUFFER_BYTES,
    _codes,
    _DatasetPlan,
    _equals,
    _is_in,
    _last_copies,
    _open_parquet,
    _plan_dataset,
    _sqlite_ids,
    _to_bools,
)
from .publish import _map_write_error, _publish, _replace, _Scratch
from .reports import ExportChoices, ExportedFile, ExportReport
from .target import (
    _SAFE_NAME,
    _WINDOWS_RESERVED,
    FORMATS,
    _check_format,
    _resolved,
    _Target,
    resolve_target,
    safe_file_stem,
    unique_file_names,
)
from .writers import (
    _DISTINCT_STRINGS,
    EXPORT_INFO_KEY,
    MAX_BATCH_ROWS,
    MIN_BATCH_ROWS,
    READ_BATCH_BYTES,
    RELEASE_EVERY_BATCHES,
    ROW_GROUP_BYTES,
    _batch_rows,
    _dictionary_columns,
    _export_pool,
    _iter_source,
    _scalar_columns,
    _SourceReader,
    _start_splice,
    _write_copy,
    _write_one,
    _write_rewrite,
    _writer_options,
)

__all__ = [
    "EXPORT_INFO_KEY",
    "FORMATS",
    "MAX_BATCH_ROWS",
    "METADATA_COLUMNS",
    "MIN_BATCH_ROWS",
    "READ_BATCH_BYTES",
    "READ_BUFFER_BYTES",
    "RELEASE_EVERY_BATCHES",
    "ROW_GROUP_BYTES",
    "ExportChoices",
    "ExportReport",
    "ExportedFile",
    "export_choices",
    "export_predictions",
    "resolve_target",
    "safe_file_stem",
    "unique_file_names",
]
# Private names stay importable from here (tests and the old single module's users):
_PRIVATE = (
    _DISTINCT_STRINGS, _SAFE_NAME, _WINDOWS_RESERVED, _DatasetPlan, _Metadata, _Scratch, _SourceReader, _Target,
    _batch_rows, _check_format, _chunks, _codes, _coerce, _dictionary_columns, _equals, _export_pool, _filter_hint,
    _is_in, _iter_source, _last_copies, _map_write_error, _nirs4all_version, _open_parquet, _our_version,
    _plan_dataset, _publish, _replace, _resolved, _scalar_columns, _sqlite_ids, _start_splice, _to_bools,
    _write_copy, _write_one, _write_rewrite, _writer_options,
)
