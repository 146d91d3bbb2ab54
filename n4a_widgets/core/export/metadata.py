"""The columns an export adds from ``store.sqlite``.

``_Metadata.scan`` reads a dataset's rows once, in the order of the
``dataset_name`` index (rowid order: sequential pages, where lookups by the
random prediction ids jump around a 1 GB file at 1M predictions), and returns
the live and the selected ids while keeping the metadata of the selected rows
as Arrow (a few hundred bytes a row, no arrays).  Writers then take rows from
that cache; ``for_ids`` falls back to primary-key lookups for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    import pyarrow as pa


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

#: Rows fetched per round trip by ``_Metadata.scan`` (bounds the transient Python tuples).
SCAN_BATCH = 10_000

#: Parquet key-value metadata key holding what the export was (JSON).
EXPORT_INFO_KEY = "n4a_widgets.export"


# ----------------------------------------------------------------- metadata


class _Metadata:
    """Fetches the metadata columns for ids and aligns them to the ids with Arrow (no per-row Python join).

    Prediction columns come from one query on ``predictions`` (no SQL join:
    joining pipelines and runs per row costs more than the rows); pipeline
    and run names are looked up once per distinct pipeline, cached, and
    attached with an Arrow ``take``.
    """

    _LOOKUP = ("pipeline_name", "run_id", "run_name")

    def __init__(self, conn: sqlite3.Connection, skip: set[str], db: Path | None = None) -> None:
        import pyarrow as pa

        self.conn = conn
        self.db = db
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
        self.cache: tuple[pa.Array, pa.Table] | None = None
        self.schema = pa.schema([(name, getattr(pa, type_)()) for name, _e, type_ in self.columns])

    def scan(
        self,
        dataset: str,
        filters: dict[str, str],
        on_rows: Callable[[int], None] | None = None,
    ) -> tuple[Sequence[str] | pa.Array, Sequence[str] | pa.Array | None]:
        """(every live id of ``dataset``, the live ids matching ``filters`` or None without filters).

        One pass over the dataset's rows; the metadata of the selected rows is
        cached for ``for_ids``/``for_dataset``.  ``on_rows(n)`` after each batch.
        """
        import pyarrow as pa

        fast = self._scan_arrow(dataset, filters) if self.db is not None else None
        if fast is not None:
            live_ids, ids, table = fast
            self.cache = (ids, table)
            if on_rows is not None:
                on_rows(len(live_ids))
            # Arrow arrays, not lists: ``_plan_dataset`` matches them in Arrow (no Python string per id).
            return (live_ids if filters else ids), (ids if filters else None)
        live: list[str] = []
        if filters:  # the live ids alone (cheap: two columns), then the selected rows with their metadata
            cursor = self.conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", (dataset,))
            while rows := cursor.fetchmany(SCAN_BATCH):
                live.extend(r[0] for r in rows)
                if on_rows is not None:
                    on_rows(len(rows) // 2)
        # ``+column``: the filters must not pick an index. SQLite prefers idx_predictions_partition
        # for ``partition = ?``, which visits that partition's rows of EVERY dataset (8x the rows at 1M).
        where = " AND ".join(["p.dataset_name = ?", *(f"+p.{column} = ?" for column in filters)])
        cursor = self.conn.execute(self.select + where, [dataset, *filters.values()])
        selected: list[str] = []
        ids_parts: list[pa.Array] = []
        tables: list[pa.Table] = []
        while rows := cursor.fetchmany(SCAN_BATCH):
            ids = [r[0] for r in rows]
            selected.extend(ids)
            id_array = pa.array(ids, type=pa.string())
            ids_parts.append(id_array)
            tables.append(self._aligned(rows, id_array))
            if on_rows is not None:
                on_rows(len(rows) // 2 if filters else len(rows))
        if not filters:
            live = selected
        if tables:
            self.cache = (pa.concat_arrays(ids_parts), pa.concat_tables(tables).combine_chunks())
        else:
            self.cache = (pa.array([], type=pa.string()), self.schema.empty_table())
        return live, (selected if filters else None)

    def _scan_arrow(self, dataset: str, filters: dict[str, str]) -> tuple[pa.Array, pa.Array, pa.Table] | None:
        """``scan`` read straight into Arrow by the ADBC SQLite driver, or None to take the Python path.

        At 1M predictions the Python path spends 0.9 s turning 125k rows into tuples and back
        into Arrow; the driver does it in C (``readonly_sqlite.adbc_reader``: one snapshot for
        both queries, each result one validated batch typed from all its values).  A column
        whose type is not the one the Python path would produce (a value of another storage
        class, say) sends the whole scan back to the Python path, as does any driver error.
        """
        import pyarrow as pa

        from ..readonly_sqlite import adbc_reader

        assert self.db is not None
        where = " AND ".join(["p.dataset_name = ?", *(f"+p.{column} = ?" for column in filters)])
        try:
            with adbc_reader(self.db) as read:
                count = int(read("SELECT count(*) FROM predictions WHERE dataset_name = ?", [dataset])
                            .column(0)[0].as_py())
                live = None
                if filters:
                    live = read("SELECT prediction_id FROM predictions WHERE dataset_name = ?", [dataset],
                                rows=count).column(0).combine_chunks()
                got = read(self.select + where, [dataset, *filters.values()], rows=count).combine_chunks()
        except Exception:  # noqa: BLE001 - no driver, a driver error, a lock: the Python path reports it
            return None
        ids = _exact(got.column(0), "string") if got.num_rows else pa.array([], pa.string())
        if ids is None or ids.null_count or (live is not None and _exact(live, "string") is None):
            return None
        arrays: dict[str, pa.Array] = {}
        for index, (name, _e, type_) in enumerate(self.row_columns, start=2):
            array = _exact(got.column(index), type_) if got.num_rows else pa.nulls(0, getattr(pa, type_)())
            if array is None:
                return None
            arrays[name] = array
        if any(name in self._LOOKUP for name, _e, _t in self.columns):
            pipelines = _exact(got.column(1), "string") if got.num_rows else pa.array([], pa.string())
            if pipelines is None:
                return None
            arrays.update(self._pipeline_columns(pipelines))
        table = pa.Table.from_arrays([arrays[name] for name, _e, _t in self.columns], schema=self.schema)
        return (live if live is not None else ids).cast(pa.string()), ids, table

    def for_dataset(self, dataset: str, ids: pa.Array) -> pa.Table:
        """Rows for ``ids`` (all of ``dataset``: the copy path), one query for the whole dataset."""
        if self.cache is not None:
            return self.for_ids(ids)
        rows = self.conn.execute(self.select + "p.dataset_name = ?", (dataset,)).fetchall()
        return self._aligned(rows, ids)

    def for_ids(self, ids: pa.Array | pa.ChunkedArray) -> pa.Table:
        """Rows for ``ids`` (a row group of the rewrite): from the scan's cache, else by primary key."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.cache is not None:
            cached_ids, table = self.cache
            if isinstance(ids, pa.ChunkedArray):
                ids = ids.combine_chunks()
            index = pc.index_in(ids, value_set=cached_ids)
            if index.null_count == 0:
                return table.take(index)
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


def _exact(array: Any, type_: str) -> pa.Array | None:
    """``array`` as the Arrow type the Python path builds, when the driver's type means the same values."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    target = getattr(pa, type_)()
    if array.null_count == len(array):
        return pa.nulls(len(array), target)
    kind = array.type
    if kind == target:
        return array
    if type_ == "float64" and pa.types.is_integer(kind):  # REAL affinity stored an integral value
        return array.cast(target)
    if type_ == "string" and pa.types.is_large_string(kind):
        return array.cast(target)
    return None


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


