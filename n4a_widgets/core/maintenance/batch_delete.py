"""Batched deletion through nirs4all, shared by remove-bottom and clean dead links.

Deletions go through nirs4all's batched delete (``nirs4all_api.delete_predictions``,
one transaction and one tombstone write per batch) with automatic compaction
held off and the statistics refreshed first (``ANALYZE``), then one compaction
per touched dataset at the end.  Cancel is honoured between batches; what was
committed is compacted and reported (``cancelled=True``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import layout
from .. import nirs4all_api as api
from ..crash import kill_point
from ..errors import OperationCancelledError, PlanChangedError
from ..paths import store_db
from ..plans import digest_unchanged
from ..readonly_sqlite import map_sqlite_error
from ..write_op import WriteContext
from .reports import BATCH_SIZE


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def open_store(root: Path) -> Any:
    """A writable WorkspaceStore (its constructor applies pending tombstones)."""
    try:
        return api.open_store(root)
    except sqlite3.OperationalError as exc:
        raise map_sqlite_error(store_db(root), exc) from exc


def dataset_of_files(root: Path) -> dict[str, str]:
    """{parquet path: dataset name} from each file's ``dataset_name`` column."""
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    arrays = root / layout.ARRAYS_DIR
    for path in sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []:
        try:
            names = _names_from_statistics(path)
            if names is None:
                col = pq.read_table(path, columns=["dataset_name"]).column("dataset_name")
                names = [n for n in col.unique().to_pylist() if n]
        except Exception:  # noqa: BLE001 - unreadable files are reported by health
            names = []
        out[str(path)] = str(names[0]) if names else path.stem
    return out


def _names_from_statistics(path: Path) -> list[str] | None:
    """The one dataset name of ``path`` read from its footer (min == max in every row group), else None.

    nirs4all writes one dataset per file, so the footer statistics answer without
    decoding a column (0.02 s instead of 0.2 s for 8 files at 1M predictions).
    """
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    try:
        index = meta.schema.names.index("dataset_name")
    except ValueError:
        return []
    seen: set[str] = set()
    for g in range(meta.num_row_groups):
        col = meta.row_group(g).column(index)
        stats = col.statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min != stats.max:
            return None
        seen.add(str(stats.min))
    return sorted(seen) if len(seen) <= 1 else None


def batch_size_for(n: int, batch_size: int = BATCH_SIZE) -> int:
    """As few batches as SQLite's host-parameter limit allows (one up to 30,000 ids).

    nirs4all re-reads every chain's artifact references once per delete call
    (``_ensure_chain_artifact_refcounts``: 1.7 s at 1M predictions, whatever
    the batch holds), so each batch costs that again: the number of calls,
    not their size, decides whether the delete grows linearly.  Cancel is
    still checked between batches.  An explicit ``batch_size`` other than the
    default is used as given.
    """
    if batch_size != BATCH_SIZE:
        return batch_size
    return max(batch_size, min(n, 30_000))


def compact_touched(store: Any, conn: Any, datasets: Sequence[str], ticker: Any) -> None:
    """Compact ``datasets`` with one live-id snapshot (``compact_arrays(name)`` re-reads every id per call).

    Same steps as ``WorkspaceStore.compact_arrays``: the live ids are read on
    committed state under nirs4all's ``arrays/.lock``, then each file is
    rewritten without its tombstoned, non-live rows.
    """
    if not datasets:
        return
    arrays = store.array_store
    with api.arrays_process_lock(arrays):
        live = {str(r[0]) for r in conn.execute("SELECT prediction_id FROM predictions")}
        for i, name in enumerate(datasets):
            ticker.step(i / len(datasets), f"Compacting arrays of {name}")
            api.compact_dataset_unlocked(arrays, name, live)


def delete_in_batches(
    root: Path,
    ids: Sequence[str],
    expected_digest: str,
    ctx: WriteContext,
    *,
    array_orphans: Sequence[str] = (),
    compact_datasets: Sequence[str] = (),
    batch_size: int = BATCH_SIZE,
) -> tuple[list[str], bool]:
    """Delete ``ids`` through nirs4all in batches; then compact the touched files.

    Returns (ids actually deleted, cancelled).  The first batch's transaction
    re-reads the metadata digest and raises ``PlanChangedError`` on a mismatch
    (nothing deleted).  Cancel stops between batches; committed batches are
    then compacted so the workspace is consistent.  ``ctx.before_delete`` gets
    every planned id inside the first transaction (after the re-check, before
    any delete), so the trash holds them before a single row goes; each
    committed batch is added to ``ctx.removed_ids``.
    """
    ticker = ctx.ticker
    ticker.step(0.0, "Opening the store (applies pending deletes, if any)")
    store = open_store(root)
    done: list[str] = []
    cancelled = False
    try:
        conn = api.store_connection(store)
        if ids:
            api.analyze(store)
        api.defer_auto_compaction(store)
        batches = list(chunks(list(ids), batch_size_for(len(ids), batch_size))) or [[]]
        for index, batch in enumerate(batches):
            if index > 0 and ticker.cancelled:
                cancelled = True
                break
            ticker.step(
                0.8 * index / len(batches),
                f"Deleting predictions {len(done):,}/{len(ids):,} (batch {index + 1}/{len(batches)})",
            )
            with store.transaction():
                if index == 0:
                    if not digest_unchanged(conn, expected_digest):
                        raise PlanChangedError(
                            "The predictions changed since the plan was computed (a run landed or something was "
                            "deleted); nothing was deleted."
                        )
                    if ticker.cancelled:
                        raise OperationCancelledError("Cancelled before anything was changed.")
                    keep = [*ids, *array_orphans]
                    if keep:
                        ticker.step(0.0, f"Keeping {len(keep):,} predictions in the trash (for undo)")
                        ctx.before_delete(store, keep)
                if batch:
                    deleted = api.delete_predictions(store, batch)
                    if deleted != len(batch):
                        raise PlanChangedError(
                            f"Only {deleted} of {len(batch)} planned predictions still existed; this batch was "
                            "rolled back."
                        )
            done.extend(batch)
            ctx.removed_ids.extend(batch)
            if batch:
                kill_point("after_batch")
        if array_orphans and not cancelled:
            store.array_store.delete_batch(set(array_orphans))
            ctx.removed_ids.extend(array_orphans)
        api.restore_auto_compaction(store)
        if done:
            store.gc_artifacts()
        compact_touched(store, conn, sorted(set(compact_datasets)), ticker.span(0.8, 1.0))
        ticker.done()
    except sqlite3.OperationalError as exc:
        raise map_sqlite_error(store_db(root), exc) from exc
    finally:
        store.close()
    return done, cancelled
