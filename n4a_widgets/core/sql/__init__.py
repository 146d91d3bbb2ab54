"""Read-only SQL over a workspace: ``Workspace.query``, ``SqlSession`` and the SqlConsole.

Safe by construction, not by keyword filters (docs/ARCHITECTURE.md, "SQL"):

1. ``engine``: an in-memory DuckDB with no file access and locked settings; the
   workspace's tables reach it only as Arrow data our code read (``sources``).
2. ``guard``: DuckDB parses the statement; exactly one SELECT whose syntax tree
   holds only SELECT query nodes runs.
3. Limits: a row cap, a byte cap on the kept rows, a time limit and cancel, a
   memory limit and a thread count for the engine.

Modules: ``engine`` (lockdown, watchdog, error mapping), ``guard`` (statement
check), ``sources`` (metadata tables), ``session`` (``SqlSession``, one-shot
``run_query``/``export_query``), ``cursor`` (kept rows, pages, ``QueryResult``),
``values`` (JSON and display conversions), ``export`` (where an export may go).
"""

from __future__ import annotations

from .cursor import QueryCursor, QueryResult
from .engine import (
    ARRAYS_TABLE,
    DEFAULT_ARRAYS_MEMORY_BYTES,
    DEFAULT_MAX_BYTES,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    NEUTRAL_DIR,
    _Watchdog,
    locked_connection,
)
from .export import QueryExportReport, default_export_path, resolve_export_path
from .guard import check_statement
from .session import SqlSession, export_query, run_query
from .sources import ColumnInfo, TableInfo, _adbc_load, _adbc_uri, _SqliteSource
from .values import _empty_array_schema, arrow_ipc_bytes, display_safe, plain_value, table_rows

__all__ = [
    "ARRAYS_TABLE",
    "DEFAULT_ARRAYS_MEMORY_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_THREADS",
    "NEUTRAL_DIR",
    "ColumnInfo",
    "QueryCursor",
    "QueryExportReport",
    "QueryResult",
    "SqlSession",
    "TableInfo",
    "_SqliteSource",
    "_Watchdog",
    "_adbc_load",
    "_adbc_uri",
    "_empty_array_schema",
    "arrow_ipc_bytes",
    "check_statement",
    "default_export_path",
    "display_safe",
    "export_query",
    "locked_connection",
    "plain_value",
    "resolve_export_path",
    "run_query",
    "table_rows",
]
