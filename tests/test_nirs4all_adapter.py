"""Contract tests for core/nirs4all_api.py: one per private nirs4all touch.

See docs/ARCHITECTURE.md, "The nirs4all adapter".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from n4a_widgets.core import nirs4all_api


def test_repair_artifact_refcounts_raises_undercounts_to_the_chains_naming_them(small_ws: Path) -> None:
    """``_ensure_chain_artifact_refcounts``: ref_count becomes at least the number of chains naming the artifact."""
    db = small_ws / "store.sqlite"
    conn = sqlite3.connect(db)
    (aid,) = conn.execute("SELECT artifact_id FROM artifacts LIMIT 1").fetchone()
    conn.execute("UPDATE artifacts SET ref_count = 0 WHERE artifact_id = ?", [aid])  # an undercount, as after a merge
    conn.commit()
    conn.close()
    store = nirs4all_api.open_store(small_ws)
    try:
        nirs4all_api.repair_artifact_refcounts(store)
        assert store.gc_artifacts() == 0  # nothing a chain names is collected
    finally:
        store.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT ref_count FROM artifacts WHERE artifact_id = ?", [aid]).fetchone()[0] >= 1
    finally:
        conn.close()
