"""Every private nirs4all call n4a_widgets makes, in one place.

nirs4all 1.4 exposes no batched delete, no per-file compaction under its own
lock, no read-only tombstone reader and no public name for its array-file
naming or label codec; the public alternatives are quadratic or load the
whole workspace (docs/ARCHITECTURE.md, "The nirs4all adapter").  Each private
touch is one small function here, and ``tests/test_nirs4all_adapter.py``
holds one contract test per function, so a nirs4all upgrade that changes one
of them fails there, by name, before any operation misbehaves.

Nothing else in the package may reach into a private nirs4all name.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Larger than any tombstone count: holds off nirs4all's automatic compaction
#: (every 64 tombstones) while we delete in batches, so we compact once.
_NO_AUTO_COMPACTION = 1 << 62


def open_store(root: Path) -> Any:
    """A writable ``WorkspaceStore`` (its constructor applies pending tombstones)."""
    import nirs4all.pipeline.storage  # noqa: F401 - registers the store backend
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    return WorkspaceStore(root)


def array_store(root: Path, *, read_only: bool = False) -> Any:
    """nirs4all's ``ArrayStore`` for ``root`` (read-only creates nothing on disk)."""
    from nirs4all.pipeline.storage.array_store import ArrayStore

    return ArrayStore(root, read_only=read_only)


def store_connection(store: Any) -> sqlite3.Connection:
    """The store's own SQLite connection (``WorkspaceStore._ensure_open``), for reads inside its transaction."""
    return store._ensure_open()


def analyze(store: Any) -> None:
    """Refresh SQLite's statistics on the store's connection.

    nirs4all re-runs ``update_chain_summary`` for each chain a delete touches;
    without statistics SQLite plans its query on the partition index (29 ms a
    chain at 100k predictions).  ``ANALYZE`` with a row limit costs ~0.1 s.
    """
    store._execute_with_retry("PRAGMA analysis_limit=1000")
    store._execute_with_retry("ANALYZE")


def defer_auto_compaction(store: Any) -> None:
    """No automatic compaction on this store instance until ``restore_auto_compaction``."""
    store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = _NO_AUTO_COMPACTION


def restore_auto_compaction(store: Any) -> None:
    """nirs4all's own threshold again (the instance attribute shadowed the class's)."""
    with contextlib.suppress(AttributeError):
        del store.AUTO_COMPACT_TOMBSTONE_THRESHOLD


def delete_predictions(store: Any, prediction_ids: Sequence[str]) -> int:
    """Delete ``prediction_ids`` in one SQLite transaction and one tombstone write; returns how many existed."""
    if not prediction_ids:
        return 0
    summary = store._delete_predictions_matching(prediction_ids=list(prediction_ids))
    return int(summary["deleted_predictions"])


@contextlib.contextmanager
def arrays_process_lock(arrays: Any) -> Iterator[None]:
    """nirs4all's ``arrays/.lock`` (the lock its own writers take), held by this process."""
    with arrays._process_lock():
        yield


def compact_dataset_unlocked(arrays: Any, dataset_name: str, live_ids: set[str]) -> dict[str, dict[str, Any]]:
    """``ArrayStore._compact_unlocked``: rewrite one dataset's file; call under ``arrays_process_lock``.

    Returns ``{file stem: {rows_before, rows_after, rows_removed, bytes_before, bytes_after}}``.
    """
    return dict(arrays._compact_unlocked(dataset_name=dataset_name, live_ids=live_ids))


def array_file_path(root: Path, dataset_name: str) -> Path:
    """The file nirs4all uses for ``dataset_name`` (names are sanitized: spaces, dots, slashes)."""
    return Path(array_store(root, read_only=True)._parquet_path(dataset_name))


def sanitize_dataset_filename(name: str) -> str:
    """nirs4all's file stem for a dataset's array file (the same rule since 0.8.0)."""
    from nirs4all.pipeline.storage.array_store import _sanitize_dataset_filename

    return str(_sanitize_dataset_filename(name))


def read_tombstones(root: Path) -> dict[str, str]:
    """Pending deletes ``{prediction_id: timestamp}`` as nirs4all reads them."""
    return dict(array_store(root, read_only=True)._read_tombstones())


def decode_target_array(values: Any, encoding: Any) -> Any:
    """nirs4all's label codec for typed classification targets (``nirs4all.data._predictions``)."""
    from nirs4all.data._predictions.target_codec import decode_target_array as decode

    return decode(values, encoding)


def repair_artifact_refcounts(store: Any) -> None:
    """nirs4all's own repair (``_ensure_chain_artifact_refcounts``): ``ref_count >= chains naming the artifact``.

    nirs4all runs it before every chain prune; a merge runs it once more before
    its garbage collection, so no artifact a chain names can be collected.
    """
    with store.transaction():
        store._ensure_chain_artifact_refcounts(store._ensure_open())

# ------------------------------------------------------------- undo (restore)
#
# nirs4all's ``begin_pipeline`` and ``save_chain`` always issue fresh uuids, so
# an undo that must give back the *same* chain (``nirs4all.predict(chain_id=...)``
# keeps working) re-inserts the row with nirs4all's own INSERT statement on the
# store's connection, inside the store's transaction.  Summaries are then
# recomputed by nirs4all itself (``bulk_update_chain_summaries``,
# ``complete_pipeline``).

_PIPELINE_INSERT_COLUMNS = (
    "pipeline_id", "run_id", "name", "expanded_config", "original_template", "generator_choices",
    "dataset_name", "dataset_hash",
)
_CHAIN_INSERT_COLUMNS = (
    "chain_id", "pipeline_id", "steps", "model_step_idx", "model_class", "preprocessings", "fold_strategy",
    "fold_artifacts", "shared_artifacts", "branch_path", "source_index", "dataset_name",
    "relation_replay_manifest", "relation_replay_version", "relation_replay_fingerprint",
)


def insert_pipeline_row(store: Any, row: dict[str, Any]) -> None:
    """Re-create a pruned pipeline with its own id (``store_queries.INSERT_PIPELINE``; JSON columns as stored)."""
    from nirs4all.pipeline.storage.store_queries import INSERT_PIPELINE

    store_connection(store).execute(INSERT_PIPELINE, [row.get(c) for c in _PIPELINE_INSERT_COLUMNS])


def insert_chain_row(store: Any, row: dict[str, Any]) -> None:
    """Re-create a pruned chain with its own id (``store_queries.INSERT_CHAIN``; JSON columns as stored)."""
    from nirs4all.pipeline.storage.store_queries import INSERT_CHAIN

    store_connection(store).execute(INSERT_CHAIN, [row.get(c) for c in _CHAIN_INSERT_COLUMNS])


def increment_artifact_refs(store: Any, artifact_ids: Sequence[str]) -> None:
    """One more reference per id (``store_queries.INCREMENT_ARTIFACT_REF``): a restored chain uses it again."""
    from nirs4all.pipeline.storage.store_queries import INCREMENT_ARTIFACT_REF

    store_connection(store).executemany(INCREMENT_ARTIFACT_REF, [(a,) for a in artifact_ids])


# --- Streamed array files (migration): nirs4all's own row encoding, schema and compression.
# ``ArrayStore.save_batch`` rewrites the whole dataset file on every call (memory and time
# grow with the file); the migration writes the same rows as row groups of one file instead.


def array_records_to_table(arrays: Any, records: list[dict[str, Any]]) -> Any:
    """``ArrayStore._records_to_table``: save_batch records -> the Arrow table nirs4all would write."""
    return arrays._records_to_table(records)


def array_file_schema(*, labels: bool) -> Any:
    """nirs4all's Parquet schema of an array file (``_LABEL_PARQUET_SCHEMA`` when typed labels are stored)."""
    from nirs4all.pipeline.storage import array_store as m

    return m._LABEL_PARQUET_SCHEMA if labels else m._PARQUET_SCHEMA


def align_array_table(table: Any, schema: Any) -> Any:
    """``_align_to_schema``: add missing columns as nulls, cast, drop extras (as save_batch does on append)."""
    from nirs4all.pipeline.storage.array_store import _align_to_schema

    return _align_to_schema(table, schema)


def array_write_options() -> dict[str, Any]:
    """The ``pq.write_table`` options nirs4all writes array files with (compression and level)."""
    from nirs4all.pipeline.storage import array_store as m

    return {"compression": m._COMPRESSION, "compression_level": m._COMPRESSION_LEVEL}
