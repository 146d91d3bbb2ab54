"""Read-only access to legacy ``store.duckdb`` files (nirs4all 0.7–0.8.3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import CorruptStoreError, WorkspaceBusyError, WorkspaceError


@contextlib.contextmanager
def open_duckdb_readonly(db: Path) -> Iterator[Any]:
    """Yield a ``read_only=True`` DuckDB connection; never writes to ``db``.

    Spilling, if a query ever needs it, goes to the system temp folder, never
    to DuckDB's default ``<db>.tmp`` beside the (legacy, untouchable) store.
    """
    import tempfile

    import duckdb

    if not db.is_file():
        raise WorkspaceError(f"{db} does not exist.")
    # No memory_limit: a vector of long list columns (2048 rows x thousands of
    # values) needs hundreds of MB per thread, and a 512 MB pool ran out of
    # memory on a plain aggregate of a 1.25 GB legacy store (measured).
    config: dict[str, Any] = {"temp_directory": str(Path(tempfile.gettempdir()) / "n4a_widgets_duckdb_spill")}
    try:
        conn = duckdb.connect(str(db), read_only=True, config=config)
    except duckdb.Error as exc:
        text = str(exc).lower()
        if "lock" in text:
            raise WorkspaceBusyError(f"{db} is open for writing by another process ({exc}).") from exc
        if "permission" in text:
            raise WorkspaceError(f"Cannot read {db} ({exc}).", "Check the file permissions.") from exc
        raise CorruptStoreError(f"{db} is not a readable DuckDB database ({exc}).") from exc
    try:
        # DuckDB prints progress bars to stdout for slow queries; in a notebook they land in the cell.
        conn.execute("SET enable_progress_bar = false")
        yield conn
    finally:
        conn.close()


def duckdb_tables(conn: Any) -> set[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}
