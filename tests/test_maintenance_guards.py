"""Guards: every private nirs4all behaviour core/maintenance.py and core/writers.py rely on.

If one of these fails after a nirs4all upgrade, maintenance may be wrong or slow:
read the failing assertion, then adapt n4a_widgets/core/maintenance.py.
"""

from __future__ import annotations

import inspect
import sqlite3
from pathlib import Path

import pytest

from helpers import prediction_ids


def _store(ws: Path):  # type: ignore[no-untyped-def]
    import nirs4all.pipeline.storage  # noqa: F401
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    return WorkspaceStore(ws)


def test_delete_predictions_matching_batches_and_defers_compaction(demo_ws: Path) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    assert isinstance(WorkspaceStore.AUTO_COMPACT_TOMBSTONE_THRESHOLD, int)
    params = inspect.signature(WorkspaceStore._delete_predictions_matching).parameters
    assert "prediction_ids" in params
    store = _store(demo_ws)  # applies the 4 pending tombstones
    try:
        assert store.array_store.pending_tombstone_count() == 0
        conn = store._ensure_open()
        assert isinstance(conn, sqlite3.Connection)
        ids = sorted(prediction_ids(demo_ws))[:70]
        store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = 1 << 62  # instance attribute is honoured
        with store.transaction():
            summary = store._delete_predictions_matching(prediction_ids=ids)
            assert conn.in_transaction, "the batch did not join our transaction"
        assert summary["deleted_predictions"] == len(ids)
        assert store.array_store.pending_tombstone_count() == len(ids), "compaction ran mid-batch"
        del store.AUTO_COMPACT_TOMBSTONE_THRESHOLD
        assert store.AUTO_COMPACT_TOMBSTONE_THRESHOLD == 64
    finally:
        store.close()
    assert not set(ids) & prediction_ids(demo_ws)


def test_transaction_rolls_back_the_batch(demo_ws: Path) -> None:
    store = _store(demo_ws)
    ids = sorted(prediction_ids(demo_ws))[:3]
    try:
        store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = 1 << 62
        with pytest.raises(RuntimeError), store.transaction():
            store._delete_predictions_matching(prediction_ids=ids)
            raise RuntimeError("abort")
    finally:
        store.close()
    assert set(ids) <= prediction_ids(demo_ws)


def test_compact_arrays_is_lock_snapshot_compact_unlocked() -> None:
    """Our compact repeats these steps per dataset without opening a writable store."""
    from nirs4all.pipeline.storage.array_store import ArrayStore
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    src = inspect.getsource(WorkspaceStore.compact_arrays)
    assert "_process_lock()" in src and "_compact_unlocked(" in src and "live_ids" in src
    params = inspect.signature(ArrayStore._compact_unlocked).parameters
    assert list(params)[1:] == ["dataset_name", "live_ids"]
    stats_src = inspect.getsource(ArrayStore._compact_unlocked)
    for key in ("rows_before", "rows_after", "rows_removed", "bytes_before", "bytes_after"):
        assert key in stats_src


def test_writable_open_applies_pending_tombstones(demo_ws: Path) -> None:
    """Why dry runs never open a writable WorkspaceStore."""
    from n4a_widgets.core.arrays_readonly import read_tombstones

    assert len(read_tombstones(demo_ws)) == 4
    _store(demo_ws).close()
    assert read_tombstones(demo_ws) == {}


def test_remove_bottom_ranking_rules_unchanged() -> None:
    from nirs4all.data.predictions import Predictions

    src = inspect.getsource(Predictions.remove_bottom)
    for needle in (
        'partition_by("metric"',
        '{"val_score", "test_score", "train_score"}',
        '_infer_ascending(score_metric or "rmse")',
        "fill_nan(None)",
        "nulls_last=True",
        "tail(int(len(group) * fraction))",
        '"removed": n_remove if not dry_run else 0',
    ):
        assert needle in src, f"Predictions.remove_bottom changed: {needle!r} is gone"
    from nirs4all.core.metrics import infer_ascending

    assert infer_ascending("rmse") is True and infer_ascending("balanced_accuracy") is False


def test_query_predictions_orders_newest_first() -> None:
    """Our tie-break (oldest first among equal scores) mirrors this order."""
    from nirs4all.pipeline.storage import store_queries

    assert "ORDER BY {prefix}created_at DESC" in inspect.getsource(store_queries.build_prediction_query)


def test_wal_write_lock_is_visible_through_shm(demo_ws: Path) -> None:
    """SQLite's WAL write lock is byte 120 of -shm (F_GETLK sees other processes only)."""
    import subprocess
    import sys

    from n4a_widgets.core.writers import sqlite_writer_pid

    code = (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(demo_ws / 'store.sqlite')!r}, isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('BEGIN IMMEDIATE')\n"
        "print('READY', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        assert sqlite_writer_pid(demo_ws) == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert sqlite_writer_pid(demo_ws) is None
