"""Plan fingerprints: a dry run's ``plan_id``, re-checked before executing.

``plan_id = sha256(operation, parameters, the exact ids the plan touches,
workspace state)``.  The execution recomputes the plan from the current
workspace and refuses with ``PlanChangedError`` when the id differs, so a
widget always executes what the user previewed, never a fresh plan.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import layout
from .errors import PlanChangedError
from .readonly_sqlite import open_readonly


def metadata_digest(conn: sqlite3.Connection) -> str:
    """Fingerprint of the predictions table: changes when a row is added, deleted or re-scored.

    Aggregates computed by SQLite (count, rowid sum and max, score sums) cost
    ~40 ms at 100k predictions (hashing every id costs ~1.2 s), so executions
    can re-check it inside their first write transaction; the exact ids a plan
    touches are part of ``plan_id`` itself.
    """
    row = conn.execute(
        "SELECT count(*), total(rowid), max(rowid), total(val_score), total(test_score), total(train_score), "
        "min(prediction_id), max(prediction_id) FROM predictions"
    ).fetchone()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()


def workspace_state_token(root: Path, digest: str | None = None) -> str:
    """A digest that changes whenever predictions, arrays or tombstones change.

    ``digest`` is a ``metadata_digest`` the caller already computed in its own
    read transaction; otherwise it is read here (read-only SQLite).  Array
    files and the tombstone file contribute their size and mtime.
    """
    if digest is None:
        db = root / layout.STORE_SQLITE
        digest = ""
        if db.exists():
            with open_readonly(db) as conn:
                digest = metadata_digest(conn)
    h = hashlib.sha256(digest.encode())
    arrays = root / layout.ARRAYS_DIR
    if arrays.is_dir():
        for path in sorted(arrays.iterdir()):
            if path.suffix == ".parquet" or path.name == layout.TOMBSTONES_FILE:
                st = path.stat()
                h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def make_plan_id(operation: str, parameters: dict[str, Any], ids: Iterable[str], state_token: str) -> str:
    """Fingerprint of what a plan will do, on which workspace state."""
    h = hashlib.sha256()
    h.update(operation.encode())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    for pid in sorted(ids):
        h.update(pid.encode())
        h.update(b"\0")
    h.update(state_token.encode())
    return h.hexdigest()[:24]


def check_plan(expected: str | None, actual: str, what: str) -> None:
    """Raise ``PlanChangedError`` when a confirmed plan no longer matches."""
    if expected is not None and expected != actual:
        raise PlanChangedError(
            f"The workspace changed since the {what} preview (plan {expected} is now {actual}); nothing was done.",
        )
