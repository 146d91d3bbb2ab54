"""Plan fingerprints: a dry run's ``plan_id``, re-checked before executing.

``plan_id = sha256(operation, parameters, the exact ids the plan touches,
workspace state)``.  The execution recomputes the plan from the current
workspace and refuses with ``PlanChangedError`` when the id differs, so a
widget always executes what the user previewed, never a fresh plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import layout
from .errors import PlanChangedError
from .readonly_sqlite import open_readonly


def workspace_state_token(root: Path) -> str:
    """A digest that changes whenever predictions, arrays or tombstones change.

    Reads every live prediction id with its scores (read-only SQLite) and the
    size and mtime of every array file and of the tombstone file.
    """
    h = hashlib.sha256()
    db = root / layout.STORE_SQLITE
    if db.exists():
        with open_readonly(db) as conn:
            for row in conn.execute(
                "SELECT prediction_id, dataset_name, partition, val_score, test_score, train_score "
                "FROM predictions ORDER BY prediction_id"
            ):
                h.update(repr(tuple(row)).encode())
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
