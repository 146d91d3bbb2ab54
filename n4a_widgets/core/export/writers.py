"""Writing one dataset file: the byte copy (``parquet_splice``) or the streamed rewrite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    CorruptStoreError,
    OperationCancelledError,
)
from .metadata import _Metadata
from .plan import READ_BUFFER_BYTES, _DatasetPlan

if TYPE_CHECKING:

    import pyarrow as pa

    from ..parquet_splice import Splice


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
EXPORT_INFO_KEY = "n4a_widgets.export"


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

    from ..parquet_splice import Splice, SpliceUnsupported

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


def _start_splice(source: Path, tmp: Path) -> Splice | None:
    """Start copying ``source`` into ``tmp`` before the rows are selected; None if it cannot start
    (an unreadable source: the row selection then reports it properly)."""
    from ..parquet_splice import Splice, SpliceUnsupported

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


