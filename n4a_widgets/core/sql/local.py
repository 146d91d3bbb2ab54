"""``LocalEngine``: one locked engine on one workspace, with the tables it loaded cached.

It runs inside the SQL worker process (``worker``), never in the user's kernel:
the worker is what makes the time and memory limits hard.

Metadata tables are loaded lazily: only the tables a query names, and only the
columns it can refer to (an over-approximation from the statement; ``*``,
``NATURAL`` joins, positional references and catalog introspection load every
column).  ``arrays`` is every dataset's Parquet arrays, live predictions only
(the columns a query needs read into memory within a budget, else a streaming
pyarrow dataset).  The engine caches what it loaded until the files change, so
later queries run at DuckDB speed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..arrays_readonly import take_rows, tombstone_ids
from ..errors import QueryRejectedError, WorkspaceError
from .engine import (
    _READ_ONLY,
    ARRAYS_TABLE,
    DEFAULT_ARRAYS_MEMORY_BYTES,
    DEFAULT_MAX_BYTES,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    _map_engine_error,
    _Watchdog,
    locked_connection,
)
from .guard import _Analysis, check_statement
from .sources import ColumnInfo, TableInfo, _DuckdbSource, _NoSource, _q, _signature, _Source, _SqliteSource
from .values import _check_int, _duck_type_name, _empty_array_schema

#: Rows DuckDB puts in one Arrow batch; the byte cap is checked on each batch before it is kept.
FETCH_ROWS = 1024
#: Rows a batch when a column has no fixed width: DuckDB builds a whole batch (doubling its Arrow
#: buffers) inside its memory limit before we can look at it, so 1,024 rows of 30,000-element
#: lists (a 256 MB buffer plus its copy) can fail the limit where 32-row batches never do.
FETCH_ROWS_TEXT = 256
FETCH_ROWS_NESTED = 32
#: An export's batches are cut to at most this many bytes before they leave the worker.
EXPORT_BATCH_BYTES = 32 * 1024 * 1024

if TYPE_CHECKING:
    import pyarrow as pa


class LocalEngine:
    """One locked engine on one workspace, with the tables it loaded cached (runs in the SQL worker).

    ``run`` keeps at most ``limit`` rows of one query; ``export_batches`` streams
    every row.  One query runs at a time; ``interrupt()`` stops the running one
    from another thread.
    """

    def __init__(
        self,
        root: Path,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
        arrays_memory_bytes: int = DEFAULT_ARRAYS_MEMORY_BYTES,
    ) -> None:
        self.root = Path(root)
        self._conn = locked_connection(memory_limit, threads)
        self._lock = threading.RLock()
        self._signature: tuple[Any, ...] | None = None
        self._source: _Source = _NoSource()
        self._loaded: dict[str, dict[str, pa.Array]] = {}
        self._arrays_registered = False
        self._arrays_mode = ""  # what `arrays` is now: "table" (columns in memory) or "dataset" (streamed)
        self._arrays_dataset: Any = None  # pyarrow dataset over the files, live rows only
        self._arrays_table: pa.Table | None = None  # the columns read into memory so far
        self._dead: Any = None  # prediction ids hidden from `arrays` (tombstoned or orphaned)
        self._light: tuple[frozenset[str], pa.Table] | None = None  # late mode: scalars + row locators
        self._late_cols: set[str] = set()
        self._registered: Any = None  # the object registered as `arrays`
        self._arrays_memory_bytes = _check_int("arrays_memory_bytes", arrays_memory_bytes, minimum=0)
        self._array_files: list[Path] = []
        self._file_ids: list[pa.ChunkedArray] = []
        self._array_schema: pa.Schema | None = None
        self._array_col_bytes: dict[str, int] = {}
        self._live_count: int | None = None
        self.warnings: list[str] = []
        self._closed = False

    # -- lifecycle

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.interrupt()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def interrupt(self) -> None:
        """Stop the running query (safe from any thread)."""
        self._conn.interrupt()

    # -- catalog

    def _refresh(self) -> None:
        """(Re)discover tables when the files changed; drop everything cached."""
        sig = _signature(self.root)
        if sig == self._signature:
            return
        for name in list(self._loaded):
            with contextlib.suppress(Exception):
                self._conn.unregister(name)
        if self._arrays_registered:
            with contextlib.suppress(Exception):
                self._conn.unregister(ARRAYS_TABLE)
        self._loaded = {}
        self._arrays_registered = False
        self._arrays_mode = ""
        self._arrays_dataset = None
        self._arrays_table = None
        self._live_count = None
        self._dead = None
        self._light = None
        self._file_ids = []
        self._late_cols = set()
        self.warnings = []
        sqlite_db = self.root / layout.STORE_SQLITE
        duck_db = self.root / layout.STORE_DUCKDB
        if sqlite_db.is_file():
            self._source = _SqliteSource(sqlite_db)
        elif duck_db.is_file():
            self._source = _DuckdbSource(duck_db)
        else:
            self._source = _NoSource()
        self._source.tables.pop(ARRAYS_TABLE, None)  # our arrays table wins over a same-named store table
        self._scan_array_files()
        self._signature = sig

    def _scan_array_files(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = self.root / layout.ARRAYS_DIR
        files = sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []
        good: list[Path] = []
        schemas: list[pa.Schema] = []
        col_bytes: dict[str, int] = {}
        for path in files:
            try:
                meta = pq.read_metadata(path)
                schemas.append(meta.schema.to_arrow_schema())
                good.append(path)
            except Exception:  # noqa: BLE001 - any unreadable file is skipped and reported
                self.warnings.append(f"{path.name} is not readable Parquet; its rows are missing from 'arrays'.")
                continue
            # In-memory size estimate per top-level column: decoded bytes, at least 8 bytes a row.
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                sizes: dict[str, int] = {}
                for i in range(group.num_columns):
                    chunk = group.column(i)
                    top = chunk.path_in_schema.split(".")[0]
                    sizes[top] = sizes.get(top, 0) + int(chunk.total_uncompressed_size)
                for top, size in sizes.items():
                    col_bytes[top] = col_bytes.get(top, 0) + max(size, 8 * group.num_rows)
        self._array_files = good
        self._array_col_bytes = col_bytes
        if schemas:
            try:
                self._array_schema = pa.unify_schemas(schemas, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                self._array_schema = schemas[0]
                self.warnings.append("Array files have incompatible schemas; 'arrays' uses the first file's.")
        else:
            self._array_schema = _empty_array_schema()

    def schema(self) -> tuple[TableInfo, ...]:
        """Tables and columns a query can use (the console's sidebar)."""
        with self._lock:
            self._refresh()
            if isinstance(self._source, _SqliteSource):
                self._source.count_rows()
            out = []
            for name, table in sorted(self._source.tables.items(), key=lambda kv: (kv[1].kind != "table", kv[0])):
                cols = tuple(
                    ColumnInfo(c, self._source.display_type(table, i)) for i, c in enumerate(table.columns)
                )
                out.append(TableInfo(name, table.kind, table.row_count, cols))
            if self._array_schema is not None:
                cols = tuple(ColumnInfo(f.name, _duck_type_name(f.type)) for f in self._array_schema)
                out.append(TableInfo(
                    ARRAYS_TABLE, "arrays", self._live_count, cols,
                    "Every dataset's Parquet arrays, live predictions only; join on prediction_id.",
                ))
            return tuple(out)

    # -- loading

    def _prepare(self, analysis: _Analysis, dog: _Watchdog) -> list[str]:
        """Register the tables the query may use (only the columns it may use)."""
        import pyarrow as pa

        tables = self._source.tables
        used = list(tables) if analysis.catalog else [n for n in tables if n.lower() in analysis.words]
        needs_arrays = ARRAYS_TABLE in analysis.words or analysis.catalog
        if needs_arrays and "predictions" in tables and "predictions" not in used:
            used.append("predictions")
        wanted: dict[str, list[str]] = {}
        for name in used:
            table = tables[name]
            have = self._loaded.get(name, {})
            if analysis.all_columns or analysis.catalog or table.kind == "view":
                cols = list(table.columns)
            else:
                cols = [c for c in table.columns if c.lower() in analysis.words]
                if not cols and not have:  # e.g. count(*): one column carries the row count
                    cols = table.columns[:1]
                if name == "predictions" and needs_arrays and "prediction_id" in table.columns:
                    cols.append("prediction_id")
            missing = [c for c in dict.fromkeys(cols) if c not in have]
            if missing:
                wanted[name] = missing
        if wanted:
            fresh = self._source.load(wanted, dog)
            for name, arrays in fresh.items():
                have = {**self._loaded.get(name, {}), **arrays}
                order = [c for c in tables[name].columns if c in have]
                self._loaded[name] = {c: have[c] for c in order}
                with contextlib.suppress(Exception):
                    self._conn.unregister(name)
                self._conn.register(name, pa.table({c: have[c] for c in order}))
        if needs_arrays:
            dog.check()
            self._register_arrays(analysis, dog)
        return sorted({*used, *([ARRAYS_TABLE] if needs_arrays else [])})

    def _live_ids(self) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        preds = self._loaded.get("predictions", {})
        ids = preds.get("prediction_id")
        if ids is None:
            return pa.array([], type=pa.string())
        ids = pc.cast(ids, pa.string())
        dead = tombstone_ids(self.root)
        if dead:
            ids = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=pa.array(sorted(dead), type=pa.string()))))
        return pc.drop_null(ids)

    def _open_arrays(self) -> None:
        """Build the live-rows dataset over the array files (once per change of the files).

        The rows to hide (pending tombstones, array rows without a prediction) are few, so the
        dataset is filtered with ``NOT prediction_id IN (dead ids)`` (or not at all), which keeps
        scans streaming and cheap even at 100k predictions.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        if not (self._array_files and self._array_schema is not None):
            self._live_count = 0
            self._arrays_dataset = None
            self._arrays_table = pa.table({f.name: pa.array([], f.type) for f in _empty_array_schema()})
            return
        live = self._live_ids()
        raw = [pc.cast(pq.read_table(p, columns=["prediction_id"]).column(0), pa.string()) for p in self._array_files]
        self._file_ids = raw  # the light table reuses them: at 1M, a second read of every file's ids costs ~1 s
        ids = pa.chunked_array([c for r in raw for c in r.chunks], type=pa.string())
        dead = pc.unique(pc.filter(ids, pc.invert(pc.is_in(ids, value_set=live))))
        self._dead = dead
        self._live_count = len(ids) - (int(pc.sum(pc.is_in(ids, value_set=dead)).as_py() or 0) if len(dead) else 0)
        dataset = ds.dataset([str(p) for p in self._array_files], schema=self._array_schema, format="parquet")
        if len(dead):
            dataset = dataset.filter(~ds.field("prediction_id").isin(dead))
        self._arrays_dataset = dataset
        self._arrays_table = None

    def _array_bytes(self, columns: set[str]) -> int:
        return sum(self._array_col_bytes.get(c, 0) for c in columns)

    def _register_arrays(self, analysis: _Analysis, dog: _Watchdog) -> None:
        """Register ``arrays`` (live rows only) with the columns the query may use.

        Within ``arrays_memory_bytes`` those columns are read once into an Arrow table (kept for the
        next queries), so DuckDB knows the row count and scans memory; beyond it ``arrays`` is the
        streaming dataset (every column, read as the query goes).
        """
        if self._arrays_dataset is None and self._arrays_table is None:
            self._open_arrays()
            dog.check()
        if self._arrays_dataset is None:  # no array file: an empty table with nirs4all's columns
            mode, obj = "table", self._arrays_table
        else:
            schema = self._array_schema
            assert schema is not None
            names = list(schema.names)
            needed = analysis.columns_of(ARRAYS_TABLE, names) | {"prediction_id"}
            have = set(self._arrays_table.column_names) if self._arrays_table is not None else set()
            if needed <= have:
                mode, obj = "table", self._arrays_table
            else:
                budget = self._arrays_memory_bytes
                cols = have | needed if self._array_bytes(have | needed) <= budget else needed
                late = self._late_columns(analysis, needed)
                if self._array_bytes(cols) <= budget:
                    ordered = [c for c in names if c in cols]
                    self._arrays_table = self._arrays_dataset.to_table(columns=ordered)
                    dog.check()
                    mode, obj = "table", self._arrays_table
                elif late is not None:
                    mode, obj = "late", self._light_table(needed - late, late, dog)
                    self._late_cols = late
                else:
                    mode, obj = "dataset", self._arrays_dataset
        if self._arrays_registered and mode == self._arrays_mode and (mode == "dataset" or obj is self._registered):
            return
        with contextlib.suppress(Exception):
            self._conn.unregister(ARRAYS_TABLE)
        self._conn.register(ARRAYS_TABLE, obj)
        self._registered = obj
        self._arrays_mode = mode
        self._arrays_registered = True

    # -- late materialization: the page first, its arrays after

    def _late_columns(self, analysis: _Analysis, needed: set[str]) -> set[str] | None:
        """The array columns a query only shows (plain top-level select items), or None.

        Such a query can run on the light columns with a row locator in place of
        each array column, and fetch the arrays of the kept rows only: what makes
        "first page of predictions ⋈ arrays ORDER BY score LIMIT 50" cheap at 1M.
        """
        import pyarrow.types as pt

        schema = self._array_schema
        # Without a sort at the top the streamed result stops after ``limit`` rows: cheaper than late.
        if schema is None or not analysis.flat_top or not analysis.ordered or analysis.all_columns:
            return None
        heavy = {f.name for f in schema if pt.is_list(f.type) or pt.is_large_list(f.type)} & needed
        shown = set(analysis.bare.values())
        late = {c for c in heavy if c.lower() in shown}
        if not late or {c.lower() for c in late} & analysis.elsewhere:
            return None
        meta_cols = {c.lower() for t in self._source.tables.values() for c in t.columns}
        if {c.lower() for c in late} & meta_cols:  # a bare name could mean a metadata column
            return None
        light = (needed - heavy) | {"prediction_id"}
        if self._array_bytes(light) + 8 * (self._live_count or 0) > self._arrays_memory_bytes:
            return None
        return late

    def _light_table(self, light: set[str], late: set[str], dog: _Watchdog) -> pa.Table:
        """Live rows' light columns, with each late column holding ``file << 32 | row`` instead of values."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        key = frozenset(light | late)
        if self._light is not None and self._light[0] == key:
            return self._light[1]
        assert self._array_schema is not None
        names = [f.name for f in self._array_schema if f.name in light]
        parts = []
        known_ids = self._file_ids if len(self._file_ids) == len(self._array_files) else []
        for index, path in enumerate(self._array_files):
            dog.check()
            cols = [n for n in names if n in pq.read_schema(path).names]
            if known_ids and "prediction_id" in cols:  # read by _open_arrays already
                rest = [n for n in cols if n != "prediction_id"]
                part = pq.read_table(path, columns=rest) if rest else None
                ids = known_ids[index]
                part = (pa.table({"prediction_id": ids}) if part is None
                        else part.append_column("prediction_id", ids))
            else:
                part = pq.read_table(path, columns=cols)
            locator = pc.add(pa.array(range(part.num_rows), pa.int64()), pa.scalar(index << 32, pa.int64()))
            for name in names:
                if name not in part.column_names:
                    part = part.append_column(name, pa.nulls(part.num_rows, self._array_schema.field(name).type))
            part = part.select(names)
            for name in sorted(late):
                part = part.append_column(name, locator)
            parts.append(part)
        table = pa.concat_tables(parts, promote_options="permissive")
        if self._dead is not None and len(self._dead):
            keep = pc.invert(pc.is_in(pc.cast(table.column("prediction_id"), pa.string()), value_set=self._dead))
            table = table.filter(keep)
        self._light = (key, table)
        return table

    def _materialize(self, table: pa.Table, types: list[str], analysis: _Analysis, dog: _Watchdog) -> pa.Table:
        """Replace the locators of the kept rows by their arrays: each file read once, its late columns only."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        assert self._array_schema is not None
        by_lower = {c.lower(): c for c in self._late_cols}
        targets = [(pos, by_lower[name]) for pos, name in analysis.bare.items()
                   if name in by_lower and pos < table.num_columns
                   and pa.types.is_integer(table.schema.field(pos).type)]
        if not targets or table.num_rows == 0:
            for pos, col_name in targets:
                kind = self._array_schema.field(col_name).type
                table = table.set_column(pos, pa.field(table.schema.field(pos).name, kind), pa.nulls(0, kind))
                types[pos] = _duck_type_name(kind)
            return table
        # Every late column of one row carries the same locator: take it from the first.
        loc = table.column(targets[0][0]).combine_chunks()
        files = pc.shift_right(loc, 32).to_pylist()
        rows = pc.bit_wise_and(loc, pa.scalar(0xFFFFFFFF, pa.int64())).to_pylist()
        wanted: dict[int, list[int]] = {}
        for k, f in enumerate(files):
            if f is not None:
                wanted.setdefault(f, []).append(k)
        columns = sorted({c for _, c in targets})
        fetched: dict[str, list[Any]] = {c: [None] * len(files) for c in columns}
        for f, ks in wanted.items():
            dog.check()
            path = self._array_files[f]
            present = [c for c in columns if c in pq.read_schema(path).names]
            part = take_rows(path, [rows[k] for k in ks], present, dog.check)
            for c in present:
                for k, v in zip(ks, part.column(c).to_pylist(), strict=True):
                    fetched[c][k] = v
            del part
        for pos, col_name in targets:
            kind = self._array_schema.field(col_name).type
            table = table.set_column(pos, pa.field(table.schema.field(pos).name, kind),
                                     pa.array(fetched[col_name], type=kind))
            types[pos] = _duck_type_name(kind)
        return table

    #: Columns of ``predictions`` most queries use, most used first; ``warm_up`` loads them ahead of the
    #: first query, as many as ``WARM_BYTES`` holds.
    WARM_COLUMNS = (
        "prediction_id", "dataset_name", "model_name", "partition", "val_score", "test_score", "train_score",
        "metric", "fold_id", "task_type", "n_samples", "model_class", "pipeline_id", "chain_id",
    )
    #: What the warm-up may load (estimated Arrow bytes): at 1M predictions all of ``WARM_COLUMNS``
    #: took the idle worker to 730 MB; a query needing more loads the rest itself.
    WARM_BYTES = 128 * 1024 * 1024

    def warm_up(self, cancel: threading.Event | None = None) -> None:
        """Load the common ``predictions`` columns and ``arrays`` now (the console does it while you type)."""
        self._refresh()
        table = self._source.tables.get("predictions")
        if table is None:
            return
        cols = self._warm_columns(table)
        # Two statements, not a join: loading is the point, and even a LIMIT 0 join builds its hash table.
        for sql in (f"SELECT {', '.join(_q(c) for c in cols)} FROM predictions LIMIT 0",
                    f"SELECT prediction_id FROM {ARRAYS_TABLE} LIMIT 0"):
            with contextlib.suppress(WorkspaceError):
                self.run(sql, limit=0, timeout_s=120, cancel=cancel)

    def _warm_columns(self, table: Any) -> list[str]:
        """The leading ``WARM_COLUMNS`` whose estimated size fits ``WARM_BYTES`` (always the id)."""
        cols = [c for c in self.WARM_COLUMNS if c in table.columns]
        sizes = self._source.column_bytes(table.name, cols)
        if not sizes:
            return cols
        chosen: list[str] = []
        total = 0.0
        for c in cols:
            total += sizes.get(c, 0.0)
            if chosen and total > self.WARM_BYTES:
                break
            chosen.append(c)
        return chosen

    # -- queries

    def run(
        self,
        sql: str,
        *,
        limit: int,
        timeout_s: float | None,
        cancel: threading.Event | None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Kept:
        """Run one checked query; keep at most ``limit`` rows and ``max_bytes`` (checked before a batch is kept)."""
        import duckdb
        import pyarrow as pa

        started = time.perf_counter()
        with self._lock:
            self._ensure_open()
            analysis = check_statement(self._conn, sql)
            with _Watchdog(self._conn, timeout_s, cancel) as dog:
                try:
                    self._refresh()
                    used = self._prepare(analysis, dog)
                    dog.check()
                    rel = self._conn.sql(sql)
                    if rel is None:
                        raise QueryRejectedError(_READ_ONLY + "the statement returned no rows to show.")
                    columns = [str(c) for c in rel.columns]
                    types = [str(t) for t in rel.types]
                    # Small batches: a batch is built whole before we can look at its size.
                    reader = rel.to_arrow_reader(min(max(limit + 1, 1), _fetch_rows(types)))
                    batches: list[pa.RecordBatch] = []
                    kept = 0
                    nbytes = 0
                    reason = ""
                    try:
                        schema = reader.schema
                        for batch in reader:
                            dog.check()
                            need = limit + 1 - kept
                            if batch.num_rows > need:
                                batch = batch.slice(0, need)
                            fit = _rows_within(batch, max_bytes - nbytes)
                            if fit < batch.num_rows:
                                batches.append(batch.slice(0, fit))
                                kept += fit
                                reason = "bytes"
                                break
                            batches.append(batch)
                            kept += batch.num_rows
                            nbytes += batch.nbytes
                            if kept > limit:
                                break
                    finally:
                        reader.close()
                        del rel
                    dog.check()
                except duckdb.Error as exc:
                    raise _map_engine_error(exc, dog) from exc
        table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
        if table.num_rows > limit:
            table = table.slice(0, limit)
            reason = reason or "limit"
        if self._arrays_mode == "late" and ARRAYS_TABLE in used:
            table = self._materialize(table, types, analysis, _Watchdog(None, timeout_s, cancel))
            fit = _rows_within(table, max_bytes)
            if fit < table.num_rows:
                table, reason = table.slice(0, fit), "bytes"
        return Kept(sql, columns, types, table, reason, used, time.perf_counter() - started)

    def export_batches(
        self, sql: str, *, timeout_s: float | None, cancel: threading.Event | None
    ) -> Iterator[pa.RecordBatch]:
        """Every row of the query, batch by batch, under the time limit (the caller writes them)."""
        import duckdb

        with self._lock:
            self._ensure_open()
            analysis = check_statement(self._conn, sql)
            analysis.flat_top = False  # an export streams every row: arrays are read as the query goes
            with _Watchdog(self._conn, timeout_s, cancel) as dog:
                try:
                    self._refresh()
                    self._prepare(analysis, dog)
                    rel = self._conn.sql(sql)
                    if rel is None:
                        raise QueryRejectedError(_READ_ONLY + "the statement returned no rows to export.")
                    reader = rel.to_arrow_reader(_fetch_rows([str(t) for t in rel.types]))
                    try:
                        yield _schema_batch(reader.schema)  # the schema first, even for an empty result
                        for batch in reader:
                            dog.check()
                            yield from _split_batch(batch, EXPORT_BATCH_BYTES)
                    finally:
                        reader.close()
                        del rel
                    dog.check()
                except duckdb.Error as exc:
                    raise _map_engine_error(exc, dog) from exc

    def state(self) -> dict[str, Any]:
        """What the engine holds now (for tests and benchmarks)."""
        table = self._arrays_table
        return {"arrays_mode": self._arrays_mode, "arrays_rows": None if table is None else table.num_rows,
                "loaded": {k: list(v) for k, v in self._loaded.items()}}

    def _ensure_open(self) -> None:
        if self._closed:
            raise WorkspaceError("This SQL session is closed.", "Open a new one (SqlSession(path)).")


@dataclass
class Kept:
    """The rows one query kept, still in the engine's process."""

    sql: str
    columns: list[str]
    types: list[str]
    table: pa.Table
    truncated_reason: str
    tables: list[str]
    duration_seconds: float


def _fetch_rows(types: list[str]) -> int:
    """Rows per Arrow batch for a result of these DuckDB types: fewer when a row's width is unbounded."""
    upper = [t.upper() for t in types]
    if any(t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")) for t in upper):
        return FETCH_ROWS_NESTED
    if any(t.startswith(("VARCHAR", "BLOB", "BIT", "JSON")) for t in upper):
        return FETCH_ROWS_TEXT
    return FETCH_ROWS


def _rows_within(batch: pa.RecordBatch, budget: int) -> int:
    """How many leading rows of ``batch`` fit in ``budget`` bytes (binary search on slices)."""
    if batch.nbytes <= budget:
        return batch.num_rows
    lo, hi = 0, batch.num_rows
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if batch.slice(0, mid).nbytes <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _split_batch(batch: pa.RecordBatch, max_bytes: int) -> Iterator[pa.RecordBatch]:
    """Pieces of ``batch`` of at most ``max_bytes`` each (at least one row a piece)."""
    start = 0
    while start < batch.num_rows:
        n = max(1, _rows_within(batch.slice(start), max_bytes))
        yield batch.slice(start, n)
        start += n


def _schema_batch(schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([], schema=schema)
