"""Read-only SQL over a workspace: ``Workspace.query``, ``SqlSession`` and the SqlConsole.

Safe by construction, not by keyword filters (docs/ARCHITECTURE.md, "SQL"):

1. ``engine``: an in-memory DuckDB with no file access and locked settings; the
   workspace's tables reach it only as Arrow data our code read (``sources``).
2. ``guard``: DuckDB parses the statement; exactly one SELECT whose syntax tree
   holds only SELECT query nodes runs.
3. Hard limits: every query runs in a worker process of the session
   (``worker``), killed at the deadline plus a grace, shortly after an
   unhonoured cancel, or over its memory cap; its environment is empty.  Row
   and byte caps apply before a batch is kept, and only the page shown is
   converted, in the worker, under the same limits.

Modules: ``engine`` (lockdown, watchdog, error mapping), ``guard`` (statement
check), ``sources`` (metadata tables), ``local`` (the engine with its cached
tables, inside the worker), ``worker`` (the process and its frames),
``session`` (``SqlSession``, one-shot ``run_query``/``export_query``),
``cursor`` (kept rows, pages, ``QueryResult``), ``values`` (JSON and display
conversions), ``export`` (where an export may go, and how it is written).
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
    NEUTRAL_SETTINGS,
    EngineRestartedError,
    _Watchdog,
    locked_connection,
)
from .export import QueryExportReport, SafeDestination, default_export_path, resolve_export_path
from .guard import ALLOWED_TABLE_FUNCTIONS, MAX_SQL_CHARS, check_statement
from .local import LocalEngine
from .session import DEFAULT_MEMORY_CAP_BYTES, DEFAULT_PAGE_BYTES, SqlSession, export_query, run_query
from .sources import ColumnInfo, TableInfo, _adbc_load, _adbc_uri, _SqliteSource
from .values import _empty_array_schema, arrow_ipc_bytes, display_safe, plain_value, table_rows

__all__ = [
    "ALLOWED_TABLE_FUNCTIONS",
    "ARRAYS_TABLE",
    "DEFAULT_ARRAYS_MEMORY_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MEMORY_CAP_BYTES",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_PAGE_BYTES",
    "DEFAULT_THREADS",
    "MAX_SQL_CHARS",
    "NEUTRAL_DIR",
    "NEUTRAL_SETTINGS",
    "ColumnInfo",
    "EngineRestartedError",
    "LocalEngine",
    "QueryCursor",
    "QueryExportReport",
    "QueryResult",
    "SafeDestination",
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
