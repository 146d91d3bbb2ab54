"""Helpers shared by the tests (no fixtures here; see conftest.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: SQLite coordination files a read-only open may create (no data in them).
EMPTY_SIDECARS = ("store.sqlite-wal", "store.sqlite-shm")


def tree_hash(root: Path, *, ignore_empty_sidecars: bool = False) -> dict[str, str]:
    """{relative path: sha256} for every file and folder under ``root``.

    ``ignore_empty_sidecars`` drops empty ``-wal`` and the ``-shm`` files that
    a read-only SQLite open of a WAL store may create (allowed: no data changes).
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            full = Path(dirpath) / f
            rel = os.path.relpath(full, root)
            if ignore_empty_sidecars and f in EMPTY_SIDECARS and (f.endswith("-shm") or full.stat().st_size == 0):
                continue
            out[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def sqlite_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read-only query for assertions (trace-free when no WAL holds committed rows)."""
    import sqlite3

    wal = db.with_name(db.name + "-wal")
    flags = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?{flags}", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def prediction_ids(ws: Path) -> set[str]:
    return {r[0] for r in sqlite_rows(ws / "store.sqlite", "SELECT prediction_id FROM predictions")}


FIXTURES = Path(__file__).parent / "fixtures"
#: Workspaces written by real old nirs4all releases (tests/fixtures/make_legacy_fixtures.py).
LEGACY_FIXTURES = FIXTURES / "legacy"


def replay_chains(workspace: Path) -> dict[str, Any]:
    """``{chain_id: y_pred}`` for every chain that a live prediction of ``workspace`` uses.

    Each chain is replayed with ``nirs4all.predict(chain_id=..., workspace_path=...)`` on fixed
    spectra generated like the demo's (same feature count), so two calls on workspaces holding
    the same fitted models give equal arrays.  A chain that cannot be replayed raises.
    """
    import sqlite3

    import nirs4all
    import numpy as np

    db = sqlite3.connect(f"file:{workspace / 'store.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT DISTINCT p.chain_id, p.task_type FROM predictions p WHERE p.chain_id IS NOT NULL ORDER BY 1"
        ).fetchall()
    finally:
        db.close()
    spectra: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for chain_id, task in rows:
        kind = "classification" if "classif" in str(task or "") else "regression"
        if kind not in spectra:
            gen = nirs4all.generate.classification if kind == "classification" else nirs4all.generate.regression
            spectra[kind] = _features(gen(n_samples=12, random_state=123))
        result = nirs4all.predict(chain_id=str(chain_id), data=spectra[kind], workspace_path=str(workspace))
        out[str(chain_id)] = np.asarray(result.y_pred if hasattr(result, "y_pred") else result)
    return out


def _features(dataset: Any) -> Any:
    """The X matrix of a generated SpectroDataset."""
    return dataset.x({}, layout="2d")
