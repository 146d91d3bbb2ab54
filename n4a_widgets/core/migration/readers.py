"""Read-only readers for every legacy store layout a migration accepts.

One ``LegacyReader`` per source, whatever the layout:

* ``store.duckdb`` with arrays inline in ``prediction_arrays`` (nirs4all 0.7.x),
* ``store.duckdb`` with ``arrays/<dataset>.parquet`` sidecars (0.8.0-0.8.3),
* ``store.sqlite`` (any schema) with sidecars (0.8.4-0.11) or with an inline
  ``prediction_arrays`` table (older development builds).

Readers never write: DuckDB is opened ``read_only=True``, SQLite through
``readonly_sqlite.open_readonly`` (``mode=ro``, ``immutable`` when no WAL), and
Parquet with pyarrow.  Everything streams: per dataset, per batch of
predictions, so memory is bounded by a batch and never by the store.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import layout
from ..arrays_readonly import tombstone_ids

#: Metadata columns a current ``save_prediction`` accepts, in a stable order.
PREDICTION_FIELDS = (
    "prediction_id", "pipeline_id", "chain_id", "dataset_name", "model_name", "model_class", "fold_id",
    "partition", "val_score", "test_score", "train_score", "metric", "task_type", "n_samples", "n_features",
    "scores", "best_params", "preprocessings", "branch_id", "branch_name", "exclusion_count", "exclusion_rate",
    "refit_context", "prediction_scope", "prediction_level", "evaluation_scope", "reduction_role", "reduction_id",
    "physical_sample_id", "origin_sample_id", "derived_unit_id", "unit_level", "unit_id", "row_id",
    "sample_influence_weight",
)

#: Columns stored as JSON text (DuckDB's JSON type comes back as text, too).
JSON_COLUMNS = {
    "runs": {"config", "datasets", "summary"},
    "pipelines": {"expanded_config", "original_template", "generator_choices"},
    "chains": {"steps", "fold_artifacts", "shared_artifacts", "branch_path", "relation_replay_manifest",
               "cv_scores", "final_scores", "final_agg_scores", "best_params"},
    "predictions": {"scores", "best_params"},
    "logs": {"details"},
}

#: Array fields carried over (``X``/``spectra`` only exist in newer layouts).
FLOAT_ARRAYS = ("y_true", "y_pred", "y_proba", "weights", "X", "spectra")
INT_ARRAYS = ("sample_indices",)
SHAPED = {"y_proba": "y_proba_shape", "X": "X_shape", "spectra": "spectra_shape",
          "y_true": "y_true_shape", "y_pred": "y_pred_shape"}

#: DuckDB buffer pool of the migration reader: it only serves index look-ups of one batch
#: (512 MB cost ~1 GB more peak RSS on a 3 GB store: the pool fills with cached blocks).
DUCKDB_MEMORY_LIMIT_MB = 128
#: About this many bytes of inline arrays per look-up.
LOOKUP_BYTES = 16 * 1024 * 1024

#: Tables whose rows are carried over, in dependency order.
CORE_TABLES = ("artifacts", "runs", "pipelines", "chains", "predictions", "logs")


def parse_json(value: Any) -> Any:
    """JSON text -> Python (legacy stores keep JSON as text); other values unchanged."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def sanitize_dataset_filename(name: str) -> str:
    """nirs4all's file name for a dataset's array file (same rule since 0.8.0)."""
    from ..nirs4all_api import sanitize_dataset_filename as sanitize

    return sanitize(name)


# ----------------------------------------------------------------- arrays


def _list_column(column: Any, dtype: Any) -> list[Any]:
    """Arrow list column -> one numpy array (or None) per row, without Python floats."""
    import numpy as np
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        out: list[Any] = []
        for chunk in column.chunks:
            out.extend(_list_column(chunk, dtype))
        return out
    if pa.types.is_null(column.type):
        return [None] * len(column)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return [None if v is None else np.asarray(v, dtype=dtype) for v in column.to_pylist()]
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(column))]


def arrays_from_batch(batch: Any) -> list[dict[str, Any]]:
    """Turn an Arrow record batch of array columns into per-row array dicts."""
    import numpy as np

    names = set(batch.schema.names)
    cols: dict[str, list[Any]] = {}
    for name in FLOAT_ARRAYS:
        if name in names:
            cols[name] = _list_column(batch.column(name), np.float64)
    for name in INT_ARRAYS:
        if name in names:
            cols[name] = _list_column(batch.column(name), np.int64)
    shapes = {f: batch.column(s).to_pylist() for f, s in SHAPED.items() if s in names}
    labels = {f: batch.column(f"{f}_labels").to_pylist() for f in ("y_true", "y_pred") if f"{f}_labels" in names}
    meta = batch.column("sample_metadata").to_pylist() if "sample_metadata" in names else None
    result_meta = batch.column("result_metadata").to_pylist() if "result_metadata" in names else None
    task = batch.column("task_type").to_pylist() if "task_type" in names else None
    rows: list[dict[str, Any]] = []
    for i in range(batch.num_rows):
        row: dict[str, Any] = {name: cols[name][i] for name in cols}
        for field, shape_values in shapes.items():
            shape = shape_values[i]
            if row.get(field) is not None and shape is not None and len(shape) > 1:
                with contextlib.suppress(ValueError):
                    row[field] = row[field].reshape(shape)
        for field, label_values in labels.items():
            if label_values[i] is not None:
                from ..nirs4all_api import decode_target_array

                row[field] = decode_target_array(
                    {field: None, f"{field}_labels": label_values[i], "task_type": task[i] if task else None}, field
                )
        if meta is not None:
            row["sample_metadata"] = parse_json(meta[i]) if meta[i] else None
        if result_meta is not None:
            row["result_metadata"] = parse_json(result_meta[i]) if result_meta[i] else None
        rows.append(row)
    return rows


def reshape_legacy_proba(arrays: dict[str, Any]) -> None:
    """0.7.x stored ``y_proba`` flattened without its shape: restore (n_samples, n_classes)."""
    proba, pred = arrays.get("y_proba"), arrays.get("y_pred")
    if proba is None or pred is None or proba.ndim != 1 or len(pred) == 0:
        return
    n = len(pred)
    if len(proba) % n == 0 and len(proba) // n > 1:
        arrays["y_proba"] = proba.reshape(n, len(proba) // n)


def iter_parquet_arrays(
    path: Path,
    keep: set[str] | None,
    *,
    tombstones: set[str] | frozenset[str] = frozenset(),
    batch_rows: int = 256,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stream ``(prediction_id, arrays)`` from one array file, in file order.

    nirs4all semantics: a row whose id is tombstoned is a pending delete; when an
    id appears twice (an upsert before compaction) the last row wins.  ``keep``
    restricts to live ids (``None``: every id).
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    ids = pf.read(columns=["prediction_id"]).column("prediction_id").to_pylist()
    last: dict[str, int] = {}
    for pos, pid in enumerate(ids):
        last[pid] = pos
    del ids
    offset = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        batch_ids = batch.column("prediction_id").to_pylist()
        wanted = [
            i for i, pid in enumerate(batch_ids)
            if last.get(pid) == offset + i and pid not in tombstones and (keep is None or pid in keep)
        ]
        if wanted:
            import pyarrow as pa

            sub = batch.take(pa.array(wanted, type=pa.int64())) if len(wanted) != batch.num_rows else batch
            for i, arrays in zip(wanted, arrays_from_batch(sub), strict=True):
                yield batch_ids[i], arrays
        offset += batch.num_rows


# ----------------------------------------------------------------- readers


class LegacyReader:
    """Read-only view of one legacy store (DuckDB or SQLite metadata)."""

    kind = "?"

    def __init__(self, root: Path, layout_name: str) -> None:
        self.root = root
        self.layout = layout_name
        self._stack = contextlib.ExitStack()
        self._columns: dict[str, list[str]] = {}
        self.inline = False

    # -- plumbing each backend provides
    def _execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def _table_columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    def _inline_batches(self, dataset: str, batch_rows: int, skip: set[str]) -> Iterator[list[tuple[dict, Any]]]:
        raise NotImplementedError

    # -- shared helpers
    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LegacyReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            self._columns[table] = self._table_columns(table) if table in self.tables() else []
        return self._columns[table]

    def count(self, table: str) -> int:
        if table not in self.tables():
            return 0
        return int(self._execute(f'SELECT count(*) FROM "{table}"')[1][0][0])

    def table_counts(self) -> dict[str, int]:
        names = list(CORE_TABLES)
        if "prediction_arrays" in self.tables():
            names.append("prediction_arrays")
        return {t: self.count(t) for t in names}

    def _dicts(self, table: str, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        names, rows = self._execute(sql, params)
        json_cols = JSON_COLUMNS.get(table, set())
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for col in json_cols & item.keys():
                item[col] = parse_json(item[col])
            out.append(item)
        return out

    def rows(self, table: str, order_by: str | None = None) -> list[dict[str, Any]]:
        """Every row of a (small) metadata table, JSON columns parsed."""
        if table not in self.tables():
            return []
        order = f" ORDER BY {order_by}" if order_by else ""
        return self._dicts(table, f'SELECT * FROM "{table}"{order}')

    def iter_rows(self, table: str, key: str, batch: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """Keyset-paginated rows of a possibly large table (logs)."""
        if table not in self.tables():
            return
        last: Any = None
        while True:
            where = f' WHERE "{key}" > ?' if last is not None else ""
            params = [last] if last is not None else []
            chunk = self._dicts(table, f'SELECT * FROM "{table}"{where} ORDER BY "{key}" LIMIT {batch}', params)
            if not chunk:
                return
            yield chunk
            last = chunk[-1][key]

    def prediction_select(self, alias: str = "p") -> str:
        cols = [c for c in PREDICTION_FIELDS if c in self.columns("predictions")]
        return ", ".join(f'{alias}."{c}"' for c in cols)

    def datasets(self) -> dict[str, int]:
        _names, rows = self._execute(
            "SELECT dataset_name, count(*) FROM predictions GROUP BY dataset_name ORDER BY dataset_name"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def natural_key_duplicates(self) -> set[str]:
        """Ids a current store would merge (same natural key); the newest row of each group is kept."""
        cols = self.columns("predictions")
        order = "created_at DESC, prediction_id DESC" if "created_at" in cols else "prediction_id DESC"
        _names, rows = self._execute(
            "SELECT prediction_id FROM (SELECT prediction_id, row_number() OVER ("
            "PARTITION BY pipeline_id, chain_id, fold_id, partition, model_name, branch_id "
            f"ORDER BY {order}) AS rn FROM predictions) WHERE rn > 1"
        )
        return {str(r[0]) for r in rows}

    def orphan_predictions(self) -> list[str]:
        _names, rows = self._execute(
            "SELECT prediction_id FROM predictions WHERE pipeline_id NOT IN (SELECT pipeline_id FROM pipelines)"
        )
        return [str(r[0]) for r in rows]

    def predictions_meta(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Metadata (plus pipeline name) for ``ids``."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            sql = (
                f"SELECT {self.prediction_select()}, pl.name AS pipeline_name FROM predictions p "
                f"LEFT JOIN pipelines pl ON pl.pipeline_id = p.pipeline_id WHERE p.prediction_id IN ({marks})"
            )
            for item in self._dicts("predictions", sql, chunk):
                out[str(item["prediction_id"])] = item
        return out

    def live_ids(self, dataset: str) -> list[str]:
        _names, rows = self._execute(
            "SELECT prediction_id FROM predictions WHERE dataset_name = ? ORDER BY prediction_id", [dataset]
        )
        return [str(r[0]) for r in rows]

    def array_bytes(self) -> int:
        """Bytes of legacy array data (inline: raw values; sidecars: file sizes)."""
        arrays = self.root / layout.ARRAYS_DIR
        return sum(p.stat().st_size for p in arrays.glob("*.parquet")) if arrays.is_dir() else 0

    def iter_batches(
        self, dataset: str, *, batch_rows: int = 256, skip: set[str] | None = None
    ) -> Iterator[list[tuple[dict[str, Any], dict[str, Any] | None]]]:
        """Yield batches of ``(metadata, arrays or None)`` for one dataset, deterministic order."""
        skip = skip or set()
        if self.inline:
            yield from self._inline_batches(dataset, batch_rows, skip)
            return
        live = [pid for pid in self.live_ids(dataset) if pid not in skip]
        keep = set(live)
        path = self.root / layout.ARRAYS_DIR / f"{sanitize_dataset_filename(dataset)}.parquet"
        seen: set[str] = set()
        pending: list[tuple[str, dict[str, Any]]] = []

        def flush() -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
            meta = self.predictions_meta([pid for pid, _ in pending])
            out: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(meta[pid], arrays) for pid, arrays in pending]
            pending.clear()
            return out

        if path.is_file():
            for pid, arrays in iter_parquet_arrays(path, keep, tombstones=tombstone_ids(self.root),
                                                   batch_rows=batch_rows):
                seen.add(pid)
                pending.append((pid, arrays))
                if len(pending) >= batch_rows:
                    yield flush()
            if pending:
                yield flush()
        missing = [pid for pid in live if pid not in seen]
        for start in range(0, len(missing), batch_rows):
            chunk = missing[start:start + batch_rows]
            meta = self.predictions_meta(chunk)
            yield [(meta[pid], None) for pid in chunk]


class DuckDBReader(LegacyReader):
    kind = "duckdb"

    def __init__(self, root: Path, layout_name: str) -> None:
        super().__init__(root, layout_name)
        from ..readonly_duckdb import open_duckdb_readonly

        self.conn = self._stack.enter_context(open_duckdb_readonly(root / layout.STORE_DUCKDB))
        # No progress bars in a notebook's output; one thread and a bounded buffer pool: the reader
        # only runs small metadata queries and index look-ups of one batch of arrays at a time.
        self.conn.execute("SET enable_progress_bar = false")
        self.conn.execute("SET threads = 1")
        self.conn.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT_MB}MB'")
        self._tables: set[str] | None = None
        self._avg_row_bytes: float | None = None
        self.inline = "prediction_arrays" in self.tables()

    def _execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> tuple[list[str], list[tuple]]:
        cur = self.conn.execute(sql, list(params))
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()

    def tables(self) -> set[str]:
        if self._tables is None:
            rows = self.conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
            self._tables = {r[0] for r in rows}
        return self._tables

    def _table_columns(self, table: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [r[0] for r in rows]

    def array_bytes(self) -> int:
        """Bytes of the inline array values, from DuckDB's storage metadata (no scan of the arrays).

        Summing ``len()`` of every list scans all of them (3 GB of RSS and 47 s
        on a 3 GB store); the storage info counts each list's child values per
        segment.  It may include values of rows deleted but not yet vacuumed.
        """
        if not self.inline:
            return super().array_bytes()
        widths = {"y_true": 8, "y_pred": 8, "y_proba": 8, "weights": 8, "sample_indices": 4}
        rows = self.conn.execute(
            "SELECT column_name, sum(count) FROM pragma_storage_info('prediction_arrays') "
            "WHERE segment_type NOT IN ('VALIDITY') AND column_path LIKE '[%, 1]' GROUP BY column_name"
        ).fetchall()
        return int(sum(int(n or 0) * widths.get(str(name), 0) for name, n in rows))

    def _lookup(self, sql: str, params: list[str]) -> Any:
        """Run one look-up; a row larger than the pool doubles the pool (up to 8x) instead of failing."""
        import duckdb

        limit = DUCKDB_MEMORY_LIMIT_MB
        while True:
            try:
                return self.conn.sql(sql, params=params).to_arrow_table()
            except duckdb.OutOfMemoryException:
                if limit >= 8 * DUCKDB_MEMORY_LIMIT_MB:
                    raise
                limit *= 2
                self.conn.execute(f"SET memory_limit = '{limit}MB'")

    def _row_bytes(self) -> float:
        """Average bytes of arrays per inline row (to size each look-up)."""
        if self._avg_row_bytes is None:
            self._avg_row_bytes = self.array_bytes() / max(1, self.count("prediction_arrays"))
        return self._avg_row_bytes

    def _inline_batches(self, dataset: str, batch_rows: int, skip: set[str]) -> Iterator[list[tuple[dict, Any]]]:
        """Index look-ups of one batch of ids at a time, in prediction_id order.

        A scan or join of ``prediction_arrays`` makes DuckDB hold whole vectors
        of 2048 rows of long lists (> 900 MB on a 3 GB store, whatever the
        memory limit); a look-up by primary key fetches only the rows asked for.
        """
        acols = [c for c in self.columns("prediction_arrays") if c != "prediction_id"]
        sel = ", ".join(f'"{c}"' for c in acols)
        ids = [pid for pid in self.live_ids(dataset) if pid not in skip]
        per_query = max(1, min(batch_rows, int(LOOKUP_BYTES / max(self._row_bytes(), 1.0))))
        for start in range(0, len(ids), per_query):
            chunk = ids[start:start + per_query]
            marks = ", ".join("?" for _ in chunk)
            table = self._lookup(
                f"SELECT prediction_id, {sel} FROM prediction_arrays WHERE prediction_id IN ({marks})", chunk
            )
            found_ids = table.column("prediction_id").to_pylist()
            found = dict(zip(found_ids, arrays_from_batch(table), strict=True))
            del table
            meta = self.predictions_meta(chunk)
            out = []
            for pid in chunk:
                item = found.get(pid)
                if item is not None:
                    reshape_legacy_proba(item)
                out.append((meta[pid], item))
            yield out


class SQLiteReader(LegacyReader):
    kind = "sqlite"

    def __init__(self, root: Path, layout_name: str) -> None:
        super().__init__(root, layout_name)
        from ..readonly_sqlite import open_readonly, table_names

        self.conn = self._stack.enter_context(open_readonly(root / layout.STORE_SQLITE))
        self._tables = table_names(self.conn)
        self.inline = "prediction_arrays" in self._tables

    def _execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> tuple[list[str], list[tuple]]:
        cur = self.conn.execute(sql, list(params))
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()

    def tables(self) -> set[str]:
        return self._tables

    def _table_columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f'PRAGMA table_info("{table}")')]

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def array_bytes(self) -> int:
        if not self.inline:
            return super().array_bytes()
        cols = [c for c in self.columns("prediction_arrays") if c in (*FLOAT_ARRAYS, *INT_ARRAYS)]
        if not cols:
            return 0
        expr = " + ".join(f"coalesce(length({c}), 0)" for c in cols)
        return int(self.conn.execute(f"SELECT sum({expr}) FROM prediction_arrays").fetchone()[0] or 0)

    @staticmethod
    def _decode(value: Any, dtype: Any) -> Any:
        """Inline SQLite arrays: JSON text lists or raw little-endian buffers."""
        import numpy as np

        if value is None:
            return None
        if isinstance(value, (bytes, bytearray, memoryview)):
            return np.frombuffer(bytes(value), dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        parsed = parse_json(value)
        if parsed is None:
            return None
        return np.asarray([math.nan if v is None else v for v in parsed], dtype=dtype)

    def _inline_batches(self, dataset: str, batch_rows: int, skip: set[str]) -> Iterator[list[tuple[dict, Any]]]:
        import numpy as np

        acols = [c for c in self.columns("prediction_arrays") if c in (*FLOAT_ARRAYS, *INT_ARRAYS, "y_proba_shape")]
        ids = [pid for pid in self.live_ids(dataset) if pid not in skip]
        for start in range(0, len(ids), batch_rows):
            chunk = ids[start:start + batch_rows]
            marks = ", ".join("?" for _ in chunk)
            sel = ", ".join(f'"{c}"' for c in acols)
            rows = self.conn.execute(
                f"SELECT prediction_id, {sel} FROM prediction_arrays WHERE prediction_id IN ({marks})", chunk
            ).fetchall()
            found: dict[str, dict[str, Any]] = {}
            for row in rows:
                item: dict[str, Any] = {}
                for col, value in zip(acols, row[1:], strict=True):
                    if col == "y_proba_shape":
                        continue
                    item[col] = self._decode(value, np.int64 if col in INT_ARRAYS else np.float64)
                shape = parse_json(row[1 + acols.index("y_proba_shape")]) if "y_proba_shape" in acols else None
                if item.get("y_proba") is not None and isinstance(shape, list) and len(shape) > 1:
                    item["y_proba"] = item["y_proba"].reshape(shape)
                else:
                    reshape_legacy_proba(item)
                found[str(row[0])] = item
            meta = self.predictions_meta(chunk)
            yield [(meta[pid], found.get(pid)) for pid in chunk]


def open_reader(root: Path, layout_name: str) -> LegacyReader:
    """The reader for ``root`` (``layout_name`` is ``StorageStatus.layout``)."""
    if (root / layout.STORE_DUCKDB).is_file() and not (root / layout.STORE_SQLITE).is_file():
        return DuckDBReader(root, layout_name)
    return SQLiteReader(root, layout_name)
