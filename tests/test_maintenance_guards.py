"""Guards: nirs4all behaviours maintenance and core/writers.py rely on (ranking rules, WAL locks).

The contract tests of the private calls themselves are in tests/test_nirs4all_adapter.py.

If one of these fails after a nirs4all upgrade, maintenance may be wrong or slow:
read the failing assertion, then adapt n4a_widgets/core/maintenance.py.
"""

from __future__ import annotations

import inspect
from pathlib import Path


def _store(ws: Path):  # type: ignore[no-untyped-def]
    import nirs4all.pipeline.storage  # noqa: F401
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    return WorkspaceStore(ws)


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
