"""Read-only access to ``store.sqlite`` that leaves no trace.

``WorkspaceStore(path)`` upgrades schemas and applies tombstones in place, so
status and health never use it.  When no WAL file exists no writer is attached,
and SQLite's ``immutable=1`` mode reads without creating ``-wal``/``-shm``
files.  When a WAL exists we must read it (it holds committed rows), so we use
``mode=ro``, which may create empty coordination files (allowed, no data
changes).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import CorruptStoreError, WorkspaceBusyError, WorkspaceError


def _uri(db: Path, immutable: bool) -> str:
    uri = f"{db.absolute().as_uri()}?mode=ro"
    return uri + "&immutable=1" if immutable else uri


def map_sqlite_error(db: Path, exc: sqlite3.Error) -> WorkspaceError:
    """Turn a sqlite3 error into the WorkspaceError a user can act on."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return WorkspaceBusyError(f"{db} is locked by another process ({exc}).")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return CorruptStoreError(f"{db} is not a readable SQLite database ({exc}).")
    if "unable to open" in text or "readonly" in text or "permission" in text:
        return WorkspaceError(
            f"Cannot open {db} for reading ({exc}).",
            "Check that you have read permission on the workspace folder and its files.",
        )
    return CorruptStoreError(f"Reading {db} failed: {exc}.")


@contextlib.contextmanager
def open_readonly(db: Path) -> Iterator[sqlite3.Connection]:
    """Yield a query-only connection to ``db``; close it afterwards."""
    if not db.is_file():
        raise WorkspaceError(f"{db} does not exist.")
    wal = db.with_name(db.name + "-wal")
    immutable = not wal.exists()
    try:
        conn = sqlite3.connect(_uri(db, immutable), uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise map_sqlite_error(db, exc) from exc
    try:
        conn.execute("PRAGMA query_only=ON")
        # Force the header to be read now so corrupt files fail here.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield conn
    except sqlite3.Error as exc:
        raise map_sqlite_error(db, exc) from exc
    finally:
        conn.close()


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


# ------------------------------------------------------------------ ADBC: SQLite straight into Arrow


def adbc_uri(db: Path) -> str:
    """The same trace-free read-only URI ``open_readonly`` uses (``immutable=1`` only when no -wal exists)."""
    return _uri(db, immutable=not db.with_name(db.name + "-wal").exists())


def import_adbc() -> tuple[Any, Any]:
    """The ADBC SQLite driver and its DB-API, without the polars import its DB-API tries.

    ``adbc_driver_manager.dbapi`` imports polars when it can, only to accept polars frames as
    bind parameters (never used here): 0.8 s of a fresh worker's first query.  Hiding polars
    for the duration of that import makes it skip that backend; nothing else changes.
    """
    import sys

    hide = "polars" not in sys.modules
    if hide:
        sys.modules["polars"] = None  # type: ignore[assignment]  # "import polars" raises ImportError
    try:
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi as adbc_dbapi
    finally:
        if hide and sys.modules.get("polars", 0) is None:
            del sys.modules["polars"]
    return adbc_driver_sqlite, adbc_dbapi


@contextlib.contextmanager
def adbc_reader(db: Path) -> Iterator[Callable[..., Any]]:
    """``read(sql, params=(), rows=None) -> pyarrow.Table`` on one read-only ADBC connection to ``db``.

    The same trace-free URI as ``open_readonly``, ``PRAGMA query_only``, and one read
    transaction (autocommit off) for every ``read``, so they all see one snapshot.  With
    ``rows`` (how many the statement returns, at most) the result is one batch, so the
    driver types each column from every value rather than from the first batch.  Each
    table is validated in full (invalid UTF-8, say, raises here).  Driver errors are raised
    as they come: callers fall back to their Python path, which reports them properly.
    """
    driver, dbapi = import_adbc()
    with dbapi.connect(adbc_uri(db), autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA query_only=ON")

        def read(sql: str, params: Sequence[Any] = (), rows: int | None = None) -> Any:
            if rows is not None:
                cur.adbc_statement.set_options(**{driver.StatementOptions.BATCH_ROWS.value: str(max(rows + 1, 1024))})
            cur.execute(sql, list(params)) if params else cur.execute(sql)
            table = cur.fetch_arrow_table()
            table.validate(full=True)
            return table

        yield read

