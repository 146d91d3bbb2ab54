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

#: The predictions table's score columns: what remove-bottom ranks by and a digest may be narrowed to.
SCORE_COLUMNS = ("val_score", "test_score", "train_score")


def metadata_digest(conn: sqlite3.Connection, *, scores: bool | str = True) -> str:
    """Fingerprint of the predictions table: changes when a row is added, deleted or re-scored.

    Aggregates computed by SQLite (count, rowid sum and max, score sums) cost
    ~40 ms at 100k predictions (hashing every id costs ~1.2 s), so executions
    can re-check it inside their first write transaction; the exact ids a plan
    touches are part of ``plan_id`` itself.

    A plan that depends on fewer columns asks for less, which SQLite answers
    from an index instead of reading every row (at 1M predictions 0.12-0.2 s
    instead of 0.5-0.8 s, and a remove-bottom reads it three times):
    ``scores=False`` (compact: rows only) or ``scores="val_score"`` (the one
    score column a remove-bottom ranks by).  The kind is part of the digest,
    so ``digest_unchanged`` re-reads the same kind.
    """
    if scores is False:
        kind, sql = "rows", "SELECT count(*), total(rowid), max(rowid) FROM predictions"
    elif isinstance(scores, str) and scores in SCORE_COLUMNS:
        index = _index_on(conn, scores)
        source = f'predictions INDEXED BY "{index}"' if index else "predictions"
        kind, sql = scores, f'SELECT count(*), total(rowid), max(rowid), total("{scores}") FROM {source}'
    else:
        kind, sql = (
            "all",
            (
                "SELECT count(*), total(rowid), max(rowid), total(val_score), total(test_score), total(train_score), "
                "min(prediction_id), max(prediction_id) FROM predictions"
            ),
        )
    row = conn.execute(sql).fetchone()
    return f"{kind}:" + hashlib.sha256(repr(tuple(row)).encode()).hexdigest()


def digest_unchanged(conn: sqlite3.Connection, expected: str) -> bool:
    """Whether ``metadata_digest`` of the same kind as ``expected`` still gives ``expected``."""
    kind = expected.split(":", 1)[0]
    scores: bool | str = False if kind == "rows" else (kind if kind in SCORE_COLUMNS else True)
    return metadata_digest(conn, scores=scores) == expected


def _index_on(conn: sqlite3.Connection, column: str) -> str | None:
    """The name of an index whose first column is ``column`` (SQLite does not pick it for a sum)."""
    for row in conn.execute("PRAGMA index_list(predictions)").fetchall():
        name = str(row[1])
        cols = conn.execute(f'PRAGMA index_info("{name.replace(chr(34), chr(34) * 2)}")').fetchall()
        if cols and cols[0][2] == column and '"' not in name:
            return name
    return None


def workspace_state_token(root: Path, digest: str | None = None, *, scores: bool | str = True) -> str:
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
                digest = metadata_digest(conn, scores=scores)
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
