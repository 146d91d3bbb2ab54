"""Read-only SQL over a workspace: ``Workspace.query`` and the SqlConsole.

Safe by construction, not by keyword filters:

1. The engine is an **in-memory DuckDB** that has no file access at all.  The
   workspace's tables reach it only as Arrow data that *our* code read: the
   metadata tables of ``store.sqlite`` through a trace-free read-only SQLite
   connection (natively into Arrow with the ADBC SQLite driver, or row by row
   through Python's sqlite3 when the two could differ; a legacy
   ``store.duckdb`` through ``read_only=True``), and ``arrays`` from
   ``arrays/*.parquet`` filtered to live predictions (the columns a query
   needs read into memory within a budget, else a streaming pyarrow
   dataset).  Then ``allowed_paths``/``allowed_directories`` are
   emptied (DuckDB 2.0 otherwise allows writing ``<cwd>/:memory:*``), external
   access is switched off, spilling is disabled, extension auto-install/load
   is off, path-like settings are set to a neutral value, and the
   configuration is locked.  No statement can read or write a file, attach a
   database, install or load an extension, or change a setting.
2. As a second layer, the statement is parsed by DuckDB: exactly one statement,
   of type SELECT, whose syntax tree holds only SELECT query nodes (DuckDB
   accepts ``WITH x AS (DELETE ...)``, which we refuse).
3. Limits: a row cap (``limit``; only ``limit + 1`` rows are ever fetched, from
   a streaming result), a byte cap on the rows kept, a time limit and cancel
   (a watchdog thread calls ``conn.interrupt()``), a memory limit and a thread
   count for the engine.

Metadata tables are loaded lazily: only the tables a query names, and only the
columns it can refer to (an over-approximation from the SQL text; ``*``,
``NATURAL`` joins, positional references and catalog introspection load every
column).  A :class:`SqlSession` caches what it loaded until the files change,
so the console's later queries run at DuckDB speed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import decimal
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .errors import (
    InvalidArgumentError,
    OperationCancelledError,
    QueryRejectedError,
    QueryTimeoutError,
    WorkspaceError,
)
from .reports import Report

if TYPE_CHECKING:
    import pyarrow as pa

    from .workspace import Workspace

Progress = Callable[[float, str], None]

#: Name of the table that exposes every dataset's Parquet arrays (live rows only).
ARRAYS_TABLE = "arrays"
#: Engine defaults (the machine is shared; a console must not starve the kernel).
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
#: Rows kept by a query are also capped in bytes (list columns can be large).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: ``arrays`` columns a session keeps in memory (estimated from Parquet metadata).  Within it the
#: columns a query needs are read once into an Arrow table, which also tells DuckDB how many rows
#: ``arrays`` has (a join then builds its hash table from the smaller side, not from the arrays).
#: Beyond it ``arrays`` is a streaming pyarrow dataset.
DEFAULT_ARRAYS_MEMORY_BYTES = 256 * 1024 * 1024
#: Value given to DuckDB's path-like settings so none of them names a real folder.
NEUTRAL_DIR = "/n4a-sql-console-has-no-file-access"

_READ_ONLY = "This console is read-only: "
_ALLOWED_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
#: Words that make a query look at the catalog itself: then every table is loaded in full.
_CATALOG_WORDS = frozenset({
    "describe", "summarize", "show", "information_schema", "pg_catalog", "duckdb_columns", "duckdb_tables",
    "duckdb_views", "duckdb_constraints", "duckdb_indexes", "pragma_table_info", "pragma_show", "table_info",
    "query", "query_table",
})
_WORD = re.compile(r"[a-z_][a-z0-9_$]*")

#: nirs4all's Parquet schema for array files (``ArrayStore._PARQUET_SCHEMA``, checked by a contract
#: test); used for an empty ``arrays`` table when a workspace has no array file yet.
_ARRAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prediction_id", "utf8"), ("dataset_name", "utf8"), ("model_name", "utf8"), ("fold_id", "utf8"),
    ("partition", "utf8"), ("metric", "utf8"), ("val_score", "float64"), ("task_type", "utf8"),
    ("y_true", "list_f64"), ("y_true_shape", "list_i32"), ("y_pred", "list_f64"), ("y_pred_shape", "list_i32"),
    ("y_proba", "list_f64"), ("y_proba_shape", "list_i32"), ("X", "list_f64"), ("X_shape", "list_i32"),
    ("spectra", "list_f64"), ("spectra_shape", "list_i32"), ("sample_indices", "list_i32"),
    ("weights", "list_f64"), ("sample_metadata", "utf8"), ("result_metadata", "utf8"),
)


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class ColumnInfo(Report):
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo(Report):
    """One table of the console's schema sidebar."""

    name: str
    kind: str
    """``table``, ``view`` (metadata store) or ``arrays`` (Parquet arrays, live rows)."""
    row_count: int | None
    columns: tuple[ColumnInfo, ...]
    description: str = ""


@dataclass(frozen=True)
class QueryResult(Report):
    """One page of a query's result (``rows``) and what the whole result holds.

    ``rows`` is a list of lists of plain JSON values; ``row_count`` is the
    number of rows the result holds (at most ``limit``); ``truncated`` says the
    query produced more rows than were kept.  With the default page size
    (``limit``) ``rows`` is the whole kept result.
    """

    sql: str
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    duration_seconds: float
    limit: int
    page: int = 0
    page_size: int = 0
    page_count: int = 1
    offset: int = 0
    tables: list[str] = dataclasses.field(default_factory=list)
    truncated_reason: str = ""
    """``""``, ``"limit"`` (row cap) or ``"bytes"`` (size cap on kept rows)."""

    def to_dict(self, include_rows: bool = True) -> dict[str, Any]:
        data = super().to_dict()
        if not include_rows:
            data.pop("rows")
        return data


@dataclass(frozen=True)
class QueryExportReport(Report):
    """What ``export_result`` wrote: the full result (no row cap) as one Parquet file."""

    sql: str
    path: str
    row_count: int
    size_bytes: int
    duration_seconds: float


# ---------------------------------------------------------------- engine


def locked_connection(memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = DEFAULT_THREADS) -> Any:
    """An in-memory DuckDB connection with no file access and locked settings."""
    import duckdb

    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,  # no scanning of Python variables by name
        "temp_directory": "",  # no spilling: a query that needs more memory fails instead
        "max_temp_directory_size": "0KB",
        "extension_directory": NEUTRAL_DIR,
        "secret_directory": NEUTRAL_DIR,
        "home_directory": NEUTRAL_DIR,
        "memory_limit": memory_limit,
        "threads": int(threads),
    }
    conn = duckdb.connect(":memory:", config=config)
    try:
        # DuckDB adds <cwd>/:memory: (and .wal variants) to allowed_paths; COPY could write there.
        for stmt in (
            "SET allowed_paths = []",
            "SET allowed_directories = []",
            "SET enable_external_access = false",
            "SET lock_configuration = true",
        ):
            conn.execute(stmt)
        check = conn.execute(
            "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), "
            "current_setting('allowed_paths'), current_setting('allowed_directories'), "
            "current_setting('python_enable_replacements')"
        ).fetchall()[0]
    except Exception:
        conn.close()
        raise
    if check is None or check[0] is not False or check[1] is not True or check[2] or check[3] or check[4]:
        conn.close()
        raise WorkspaceError(
            f"The SQL engine could not be locked down (settings {check}).",
            "This DuckDB version behaves differently from the one n4a_widgets was tested with; "
            "report it and do not use the console until it is fixed.",
        )
    return conn


class _Watchdog:
    """Interrupts the connection when the deadline passes or ``cancel`` is set."""

    def __init__(self, conn: Any, timeout_s: float | None, cancel: threading.Event | None) -> None:
        self.conn = conn
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.cancel = cancel
        self.reason = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="n4a-sql-watchdog", daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if not self.reason:
                if self.cancel is not None and self.cancel.is_set():
                    self.reason = "cancel"
                elif self.deadline is not None and time.monotonic() > self.deadline:
                    self.reason = "timeout"
            if self.reason:
                # Repeat: an interrupt that lands between two engine calls is otherwise lost.
                self.conn.interrupt()

    def check(self) -> None:
        """Raise now if the query must stop (used between our own Python steps)."""
        if not self.reason:
            if self.cancel is not None and self.cancel.is_set():
                self.reason = "cancel"
            elif self.deadline is not None and time.monotonic() > self.deadline:
                self.reason = "timeout"
        if self.reason:
            raise self.stop_error()

    def stop_error(self) -> WorkspaceError:
        if self.reason == "timeout":
            return QueryTimeoutError(f"The query ran longer than {self.timeout_s:g} s and was stopped.")
        return OperationCancelledError(
            "The query was cancelled.", "Nothing was changed; edit the query and run it again."
        )

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _map_engine_error(exc: Exception, dog: _Watchdog | None) -> WorkspaceError:
    """Turn a DuckDB error into a message a console user can act on (never echoing engine paths)."""
    import duckdb

    text = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        if dog is not None and dog.reason:
            return dog.stop_error()
        return OperationCancelledError("The query was interrupted.")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return WorkspaceError(
            "The query needed more memory than the console allows and was stopped.",
            "Select fewer columns (array columns are large), filter with WHERE, or aggregate. Nothing was changed.",
        )
    if isinstance(exc, duckdb.PermissionException):
        return QueryRejectedError(
            _READ_ONLY + "it cannot read or write files, attach databases, or install or load extensions.",
            "Query the workspace tables instead (see the schema: predictions, runs, ..., arrays).",
        )
    if "configuration has been locked" in text or "disabled by configuration" in text:
        return QueryRejectedError(_READ_ONLY + "the engine's settings cannot be changed.")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return InvalidArgumentError(
        f"SQL error: {first}",
        "Check table and column names against the schema; only SELECT queries are supported.",
    )


# ---------------------------------------------------------------- analysis


@dataclass
class _Analysis:
    words: set[str]
    all_columns: bool
    catalog: bool


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_statement(conn: Any, sql: str) -> _Analysis:
    """Refuse anything but one SELECT; return what the query may refer to."""
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise InvalidArgumentError("The query is empty.", "Type a SELECT query, for example: SELECT * FROM runs")
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise _map_engine_error(exc, None) from exc
    if not statements:
        raise InvalidArgumentError("The query is empty (only comments?).", "Type a SELECT query.")
    if len(statements) > 1:
        raise QueryRejectedError(
            _READ_ONLY + f"send one statement at a time (found {len(statements)} separated by ';').",
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(getattr(kind, "name", kind)).replace("_", " ")
        if name == "MULTI":
            raise QueryRejectedError(
                _READ_ONLY + "this statement expands into several statements (a PIVOT without an IN list?).",
                "Write PIVOT ... ON column IN (value, ...) inside a SELECT, or use GROUP BY.",
            )
        raise QueryRejectedError(_READ_ONLY + f"{name} statements are not allowed; only SELECT queries run.")
    try:
        found = conn.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
        row = found[0] if found else None
    except duckdb.Error as exc:
        raise _map_engine_error(exc, None) from exc
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        message = str(tree.get("error_message") or "unsupported statement")
        if "Only SELECT" in message:
            raise QueryRejectedError(_READ_ONLY + "only SELECT queries run.")
        raise InvalidArgumentError(f"SQL error: {message}", "Check the query's syntax.")
    aliases: set[str] = set()
    refs: list[list[str]] = []
    all_columns = False
    for node in _walk(tree):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type.endswith("_NODE") and node_type not in _ALLOWED_QUERY_NODES:
            raise QueryRejectedError(
                _READ_ONLY + f"data-changing statements are not allowed, even inside a query ({node_type}).",
            )
        if node_type == "BASE_TABLE":
            aliases.add(str(node.get("alias") or "").lower())
            aliases.add(str(node.get("table_name") or "").lower())
        elif node_type in ("STAR", "POSITIONAL_REFERENCE", "SHOW_REF") or node.get("ref_type") == "NATURAL":
            all_columns = True
        elif node_type == "COLUMN_REF":
            refs.append([str(n).lower() for n in node.get("column_names") or []])
    aliases.discard("")
    if any(len(r) == 1 and r[0] in aliases for r in refs):
        all_columns = True  # a table used as a value (``SELECT p FROM predictions p``) needs every column
    words = set(_WORD.findall(sql.lower()))
    return _Analysis(words=words, all_columns=all_columns, catalog=bool(words & _CATALOG_WORDS))


# ---------------------------------------------------------------- sources


def _affinity(decl: str) -> str:
    """SQLite's column affinity rules, reduced to the Arrow type we build."""
    d = (decl or "").upper()
    if "INT" in d:
        return "int"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT")):
        return "str"
    if any(k in d for k in ("REAL", "FLOA", "DOUB")):
        return "float"
    if "BLOB" in d:
        return "bytes"
    return "any"


_DISPLAY_TYPE = {"int": "BIGINT", "str": "VARCHAR", "float": "DOUBLE", "bytes": "BLOB", "any": "VARCHAR"}


def _arrow_column(values: tuple[Any, ...] | list[Any], kind: str) -> pa.Array:
    """Build an Arrow array from SQLite values (dynamically typed: fall back gracefully)."""
    import pyarrow as pa

    target = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bytes": pa.binary()}.get(kind)
    try:
        return pa.array(values, type=target) if target is not None else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    if kind == "int":
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            return pa.array(values, type=pa.float64())
    return pa.array([None if v is None else (v.hex() if isinstance(v, bytes) else str(v)) for v in values],
                    type=pa.string())


@dataclass
class _Table:
    name: str
    kind: str  # table / view
    columns: list[str]
    types: list[str]  # affinity (sqlite) or DuckDB type (duckdb)
    row_count: int | None
    has_rowid: bool = True


class _Source:
    """Where metadata tables come from; loads chosen columns as Arrow arrays."""

    tables: dict[str, _Table]

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        raise NotImplementedError

    def display_type(self, table: _Table, index: int) -> str:
        return table.types[index]


class _NoSource(_Source):
    def __init__(self) -> None:
        self.tables = {}

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        return {}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _SqliteSource(_Source):
    def __init__(self, db: Path) -> None:
        from .readonly_sqlite import open_readonly

        self.db = db
        self.tables = {}
        with open_readonly(db) as conn:
            objects = conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
            ).fetchall()
            for name, kind in objects:
                info = conn.execute(f"PRAGMA table_info({_q(name)})").fetchall()
                count = None
                has_rowid = kind == "table"
                if kind == "table":
                    try:
                        conn.execute(f"SELECT rowid FROM {_q(name)} LIMIT 0").fetchall()
                    except Exception:  # noqa: BLE001 - WITHOUT ROWID tables
                        has_rowid = False
                self.tables[name] = _Table(
                    name, kind, [r[1] for r in info], [_affinity(r[2]) for r in info], count, has_rowid
                )

    def display_type(self, table: _Table, index: int) -> str:
        return _DISPLAY_TYPE[table.types[index]]

    def count_rows(self) -> None:
        """Fill ``row_count`` of every table (only the schema sidebar needs it)."""
        from .readonly_sqlite import open_readonly

        todo = [t for t in self.tables.values() if t.kind == "table" and t.row_count is None]
        if not todo:
            return
        with open_readonly(self.db) as conn:
            for table in todo:
                table.row_count = int(conn.execute(f"SELECT count(*) FROM {_q(table.name)}").fetchall()[0][0])

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        """Read the wanted columns: natively into Arrow (ADBC) where it gives the same answer, else via Python."""
        return _adbc_load(self.db, self.tables, wanted, dog) or self._python_load(wanted, dog)

    def _python_load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        """Row by row through Python's sqlite3 (≈1 µs a value): the exact, always-available path."""
        from .readonly_sqlite import open_readonly

        out: dict[str, dict[str, pa.Array]] = {}
        with open_readonly(self.db) as conn:
            # One read transaction: every table comes from the same snapshot (matters in WAL mode).
            with contextlib.suppress(Exception):
                conn.execute("BEGIN")
            for name, cols in wanted.items():
                dog.check()
                table = self.tables[name]
                order = " ORDER BY rowid" if table.has_rowid else ""
                rows = conn.execute(f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(name)}{order}").fetchall()
                dog.check()
                values = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
                kinds = {c: table.types[table.columns.index(c)] for c in cols}
                out[name] = {c: _arrow_column(v, kinds[c]) for c, v in zip(cols, values, strict=True)}
            with contextlib.suppress(Exception):
                conn.execute("COMMIT")
        return out


#: Arrow types the ADBC SQLite driver may return for a column of each affinity that equal what
#: ``_arrow_column`` builds from the same values (the driver infers one type from all the values it reads).
_ADBC_ACCEPTED = {
    "int": ("int64", "double"),  # integers (and reals mixed in: double, as _arrow_column falls back to)
    "float": ("double", "int64"),  # int64 only when no value is a real: cast to double
    "str": ("string",),  # a blob among texts makes the column binary: not accepted
    "bytes": ("binary",),
    "any": ("int64", "double", "string", "binary"),  # string/binary re-checked with the storage classes
}
_ADBC_TARGET = {"int": "int64", "float": "double", "str": "string", "bytes": "binary"}
#: Storage classes (SQLite ``typeof``) that an ``any``-affinity column may mix and still match ``_arrow_column``.
_CLASS_CODE = "CASE typeof({col}) WHEN 'integer' THEN 1 WHEN 'real' THEN 2 WHEN 'text' THEN 4 WHEN 'blob' THEN 8 " \
              "ELSE 0 END"


def _adbc_uri(db: Path) -> str:
    """The same trace-free read-only URI ``open_readonly`` uses (``immutable=1`` only when no -wal exists)."""
    from .readonly_sqlite import _uri

    return _uri(db, immutable=not db.with_name(db.name + "-wal").exists())


def _adbc_column(array: Any, kind: str, classes: set[int] | None) -> pa.Array | None:
    """The driver's column as ``_arrow_column`` would build it, or None when they could differ."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if array.null_count == n:  # empty or all NULL: the driver says int64, we say the affinity's type
        target = _ADBC_TARGET.get(kind)
        return pa.nulls(n, type=pa.type_for_alias(target) if target else pa.null())
    name = str(array.type)
    if name not in _ADBC_ACCEPTED[kind]:
        return None
    if kind == "float" and name == "int64":
        return array.cast(pa.float64())
    # Texts or blobs in an ``any`` column: only when no other storage class is mixed in.
    if kind == "any" and name in ("string", "binary") and (classes is None or len(classes - {0}) != 1):
        return None
    return array


def _adbc_load(
    db: Path, tables: dict[str, _Table], wanted: dict[str, list[str]], dog: _Watchdog
) -> dict[str, dict[str, pa.Array]]:
    """Read the wanted columns of ``store.sqlite`` straight into Arrow with the ADBC SQLite driver.

    Same read-only, trace-free URI as ``open_readonly`` (``mode=ro``, plus ``immutable=1`` when no WAL
    exists), ``PRAGMA query_only``, and one read transaction for every table (one snapshot).  Each table
    is read as one batch, so the driver infers each column's type from every value; a table whose
    columns could come out differently from the Python path (mixed storage classes) is left out and the
    caller reads it through Python.  Any driver error (not installed, locked, corrupt) leaves the table
    to the Python path too, which maps errors to the right WorkspaceError.
    """
    try:
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi as adbc_dbapi
    except ImportError:
        return {}

    out: dict[str, dict[str, pa.Array]] = {}
    try:
        # autocommit off: the driver opens one transaction, so every table comes from the same snapshot.
        with adbc_dbapi.connect(_adbc_uri(db), autocommit=False) as conn, conn.cursor() as cur:
            cur.execute("PRAGMA query_only=ON")
            for name, cols in wanted.items():
                dog.check()
                table = tables[name]
                kinds = [table.types[table.columns.index(c)] for c in cols]
                checks = [i for i, k in enumerate(kinds) if k == "any"]
                select = [_q(c) for c in cols] + [_CLASS_CODE.format(col=_q(cols[i])) for i in checks]
                order = " ORDER BY rowid" if table.has_rowid else ""
                cur.execute(f"SELECT count(*) FROM {_q(name)}")
                count = int(cur.fetchall()[0][0])
                cur.adbc_statement.set_options(
                    **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(max(count + 1, 1024))}
                )
                cur.execute(f"SELECT {', '.join(select)} FROM {_q(name)}{order}")
                got = cur.fetch_arrow_table()
                dog.check()
                if got.num_columns != len(select):
                    return {}
                got.validate(full=True)  # e.g. invalid UTF-8 in a text: let the Python path report it
                arrays: dict[str, pa.Array] = {}
                for i, (c, kind) in enumerate(zip(cols, kinds, strict=True)):
                    classes = None
                    if kind == "any":
                        code = got.column(len(cols) + checks.index(i))
                        classes = {int(v) for v in code.unique().to_pylist() if v is not None}
                    arr = _adbc_column(got.column(i), kind, classes)
                    if arr is None:
                        # Read every table through Python then: all of them from one snapshot.
                        return {}
                    arrays[c] = arr
                out[name] = arrays
    except WorkspaceError:
        raise  # a timeout or cancel from dog.check()
    except Exception:  # noqa: BLE001 - any driver problem: the Python path reads (and reports) it
        return {}
    return out


class _DuckdbSource(_Source):
    """A legacy ``store.duckdb`` (nirs4all 0.7-0.8.3), opened ``read_only=True`` for each load."""

    def __init__(self, db: Path) -> None:
        from .readonly_duckdb import open_duckdb_readonly

        self.db = db
        self.tables = {}
        with open_duckdb_readonly(db) as conn:
            objects = conn.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_type, table_name"
            ).fetchall()
            for name, kind in objects:
                cols = conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                    [name],
                ).fetchall()
                is_view = "VIEW" in str(kind).upper()
                count = None if is_view else int(conn.execute(f"SELECT count(*) FROM {_q(name)}").fetchall()[0][0])
                self.tables[name] = _Table(
                    name, "view" if is_view else "table", [c[0] for c in cols], [str(c[1]) for c in cols], count
                )

    def load(self, wanted: dict[str, list[str]], dog: _Watchdog) -> dict[str, dict[str, pa.Array]]:
        from .readonly_duckdb import open_duckdb_readonly

        out: dict[str, dict[str, pa.Array]] = {}
        with open_duckdb_readonly(self.db) as conn:
            for name, cols in wanted.items():
                dog.check()
                # Load every wanted column of a table at once so rows line up.
                table = conn.sql(f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(name)}").to_arrow_table()
                out[name] = {c: table.column(i).combine_chunks() for i, c in enumerate(cols)}
        return out


def _signature(root: Path) -> tuple[Any, ...]:
    """Changes when any file the console reads changes (then caches are dropped)."""
    paths = [root / layout.STORE_SQLITE, *layout.sqlite_sidecars(root)[:1], root / layout.STORE_DUCKDB,
             root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE]
    arrays = root / layout.ARRAYS_DIR
    if arrays.is_dir():
        paths += sorted(arrays.glob("*.parquet"))
    sig: list[Any] = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        sig.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(sig)


def read_tombstone_ids(root: Path) -> set[str]:
    """Ids in ``arrays/_tombstones.json`` (pending deletes), read without importing nirs4all.

    Same answer as ``arrays_readonly.read_tombstones`` (a contract test checks it).
    """
    path = root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE
    if not path.is_file():
        return set()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkspaceError(
            f"{path} cannot be read ({exc}).", "Run StorageHealth to check the workspace; nothing was changed."
        ) from exc
    return {str(k) for k in (data.keys() if isinstance(data, dict) else data)}


# ---------------------------------------------------------------- session


class SqlSession:
    """A read-only SQL console on one workspace: one locked engine, cached tables.

    ``execute`` returns a :class:`QueryCursor` that keeps at most ``limit`` rows
    and serves them in pages (Arrow tables, IPC bytes or JSON rows).  One query
    runs at a time; ``interrupt()`` stops the running one from another thread.
    Close the session (or use it as a context manager) to free the engine.
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str],
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
        arrays_memory_bytes: int = DEFAULT_ARRAYS_MEMORY_BYTES,
    ) -> None:
        from .workspace import as_workspace

        self.workspace = as_workspace(workspace)
        self.root = self.workspace.path
        self._conn = locked_connection(memory_limit, threads)
        self._lock = threading.RLock()
        self._signature: tuple[Any, ...] | None = None
        self._source: _Source = _NoSource()
        self._loaded: dict[str, dict[str, pa.Array]] = {}
        self._arrays_registered = False
        self._arrays_mode = ""  # what `arrays` is now: "table" (columns in memory) or "dataset" (streamed)
        self._arrays_dataset: Any = None  # pyarrow dataset over the files, live rows only
        self._arrays_table: pa.Table | None = None  # the columns read into memory so far
        self._registered: Any = None  # the object registered as `arrays`
        self._arrays_memory_bytes = _check_int("arrays_memory_bytes", arrays_memory_bytes, minimum=0)
        self._array_files: list[Path] = []
        self._array_schema: pa.Schema | None = None
        self._array_col_bytes: dict[str, int] = {}
        self._live_count: int | None = None
        self.warnings: list[str] = []
        self._closed = False

    # -- lifecycle

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.interrupt()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def interrupt(self) -> None:
        """Stop the running query (safe from any thread)."""
        self._conn.interrupt()

    # -- catalog

    def _refresh(self) -> None:
        """(Re)discover tables when the files changed; drop everything cached."""
        sig = _signature(self.root)
        if sig == self._signature:
            return
        for name in list(self._loaded):
            with contextlib.suppress(Exception):
                self._conn.unregister(name)
        if self._arrays_registered:
            with contextlib.suppress(Exception):
                self._conn.unregister(ARRAYS_TABLE)
        self._loaded = {}
        self._arrays_registered = False
        self._arrays_mode = ""
        self._arrays_dataset = None
        self._arrays_table = None
        self._live_count = None
        self.warnings = []
        sqlite_db = self.root / layout.STORE_SQLITE
        duck_db = self.root / layout.STORE_DUCKDB
        if sqlite_db.is_file():
            self._source = _SqliteSource(sqlite_db)
        elif duck_db.is_file():
            self._source = _DuckdbSource(duck_db)
        else:
            self._source = _NoSource()
        self._source.tables.pop(ARRAYS_TABLE, None)  # our arrays table wins over a same-named store table
        self._scan_array_files()
        self._signature = sig

    def _scan_array_files(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = self.root / layout.ARRAYS_DIR
        files = sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []
        good: list[Path] = []
        schemas: list[pa.Schema] = []
        col_bytes: dict[str, int] = {}
        for path in files:
            try:
                meta = pq.read_metadata(path)
                schemas.append(meta.schema.to_arrow_schema())
                good.append(path)
            except Exception:  # noqa: BLE001 - any unreadable file is skipped and reported
                self.warnings.append(f"{path.name} is not readable Parquet; its rows are missing from 'arrays'.")
                continue
            # In-memory size estimate per top-level column: decoded bytes, at least 8 bytes a row.
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                sizes: dict[str, int] = {}
                for i in range(group.num_columns):
                    chunk = group.column(i)
                    top = chunk.path_in_schema.split(".")[0]
                    sizes[top] = sizes.get(top, 0) + int(chunk.total_uncompressed_size)
                for top, size in sizes.items():
                    col_bytes[top] = col_bytes.get(top, 0) + max(size, 8 * group.num_rows)
        self._array_files = good
        self._array_col_bytes = col_bytes
        if schemas:
            try:
                self._array_schema = pa.unify_schemas(schemas, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                self._array_schema = schemas[0]
                self.warnings.append("Array files have incompatible schemas; 'arrays' uses the first file's.")
        else:
            self._array_schema = _empty_array_schema()

    def schema(self) -> tuple[TableInfo, ...]:
        """Tables and columns a query can use (the console's sidebar)."""
        with self._lock:
            self._refresh()
            if isinstance(self._source, _SqliteSource):
                self._source.count_rows()
            out = []
            for name, table in sorted(self._source.tables.items(), key=lambda kv: (kv[1].kind != "table", kv[0])):
                cols = tuple(
                    ColumnInfo(c, self._source.display_type(table, i)) for i, c in enumerate(table.columns)
                )
                out.append(TableInfo(name, table.kind, table.row_count, cols))
            if self._array_schema is not None:
                cols = tuple(ColumnInfo(f.name, _duck_type_name(f.type)) for f in self._array_schema)
                out.append(TableInfo(
                    ARRAYS_TABLE, "arrays", self._live_count, cols,
                    "Every dataset's Parquet arrays, live predictions only; join on prediction_id.",
                ))
            return tuple(out)

    # -- loading

    def _prepare(self, analysis: _Analysis, dog: _Watchdog) -> list[str]:
        """Register the tables the query may use (only the columns it may use)."""
        import pyarrow as pa

        tables = self._source.tables
        used = list(tables) if analysis.catalog else [n for n in tables if n.lower() in analysis.words]
        needs_arrays = ARRAYS_TABLE in analysis.words or analysis.catalog
        if needs_arrays and "predictions" in tables and "predictions" not in used:
            used.append("predictions")
        wanted: dict[str, list[str]] = {}
        for name in used:
            table = tables[name]
            have = self._loaded.get(name, {})
            if analysis.all_columns or analysis.catalog or table.kind == "view":
                cols = list(table.columns)
            else:
                cols = [c for c in table.columns if c.lower() in analysis.words]
                if not cols and not have:  # e.g. count(*): one column carries the row count
                    cols = table.columns[:1]
                if name == "predictions" and needs_arrays and "prediction_id" in table.columns:
                    cols.append("prediction_id")
            missing = [c for c in dict.fromkeys(cols) if c not in have]
            if missing:
                wanted[name] = missing
        if wanted:
            fresh = self._source.load(wanted, dog)
            for name, arrays in fresh.items():
                have = {**self._loaded.get(name, {}), **arrays}
                order = [c for c in tables[name].columns if c in have]
                self._loaded[name] = {c: have[c] for c in order}
                with contextlib.suppress(Exception):
                    self._conn.unregister(name)
                self._conn.register(name, pa.table({c: have[c] for c in order}))
        if needs_arrays:
            dog.check()
            self._register_arrays(analysis, dog)
        return sorted({*used, *([ARRAYS_TABLE] if needs_arrays else [])})

    def _live_ids(self) -> pa.Array:
        import pyarrow as pa
        import pyarrow.compute as pc

        preds = self._loaded.get("predictions", {})
        ids = preds.get("prediction_id")
        if ids is None:
            return pa.array([], type=pa.string())
        ids = pc.cast(ids, pa.string())
        dead = read_tombstone_ids(self.root)
        if dead:
            ids = pc.filter(ids, pc.invert(pc.is_in(ids, value_set=pa.array(sorted(dead), type=pa.string()))))
        return pc.drop_null(ids)

    def _open_arrays(self) -> None:
        """Build the live-rows dataset over the array files (once per change of the files).

        The rows to hide (pending tombstones, array rows without a prediction) are few, so the
        dataset is filtered with ``NOT prediction_id IN (dead ids)`` (or not at all), which keeps
        scans streaming and cheap even at 100k predictions.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        if not (self._array_files and self._array_schema is not None):
            self._live_count = 0
            self._arrays_dataset = None
            self._arrays_table = pa.table({f.name: pa.array([], f.type) for f in _empty_array_schema()})
            return
        live = self._live_ids()
        raw = [pc.cast(pq.read_table(p, columns=["prediction_id"]).column(0), pa.string()) for p in self._array_files]
        ids = pa.chunked_array([c for r in raw for c in r.chunks], type=pa.string())
        dead = pc.unique(pc.filter(ids, pc.invert(pc.is_in(ids, value_set=live))))
        self._live_count = len(ids) - (int(pc.sum(pc.is_in(ids, value_set=dead)).as_py() or 0) if len(dead) else 0)
        dataset = ds.dataset([str(p) for p in self._array_files], schema=self._array_schema, format="parquet")
        if len(dead):
            dataset = dataset.filter(~ds.field("prediction_id").isin(dead))
        self._arrays_dataset = dataset
        self._arrays_table = None

    def _array_bytes(self, columns: set[str]) -> int:
        return sum(self._array_col_bytes.get(c, 0) for c in columns)

    def _register_arrays(self, analysis: _Analysis, dog: _Watchdog) -> None:
        """Register ``arrays`` (live rows only) with the columns the query may use.

        Within ``arrays_memory_bytes`` those columns are read once into an Arrow table (kept for the
        next queries), so DuckDB knows the row count and scans memory; beyond it ``arrays`` is the
        streaming dataset (every column, read as the query goes).
        """
        if self._arrays_dataset is None and self._arrays_table is None:
            self._open_arrays()
            dog.check()
        if self._arrays_dataset is None:  # no array file: an empty table with nirs4all's columns
            mode, obj = "table", self._arrays_table
        else:
            schema = self._array_schema
            assert schema is not None
            names = list(schema.names)
            if analysis.all_columns or analysis.catalog:
                needed = set(names)
            else:
                needed = {c for c in names if c.lower() in analysis.words or c == "prediction_id"}
            have = set(self._arrays_table.column_names) if self._arrays_table is not None else set()
            if needed <= have:
                mode, obj = "table", self._arrays_table
            else:
                budget = self._arrays_memory_bytes
                cols = have | needed if self._array_bytes(have | needed) <= budget else needed
                if self._array_bytes(cols) <= budget:
                    ordered = [c for c in names if c in cols]
                    self._arrays_table = self._arrays_dataset.to_table(columns=ordered)
                    dog.check()
                    mode, obj = "table", self._arrays_table
                else:
                    mode, obj = "dataset", self._arrays_dataset
        if self._arrays_registered and mode == self._arrays_mode and (mode == "dataset" or obj is self._registered):
            return
        with contextlib.suppress(Exception):
            self._conn.unregister(ARRAYS_TABLE)
        self._conn.register(ARRAYS_TABLE, obj)
        self._registered = obj
        self._arrays_mode = mode
        self._arrays_registered = True

    #: Columns of ``predictions`` most queries use; ``warm_up`` loads them ahead of the first query.
    WARM_COLUMNS = (
        "prediction_id", "pipeline_id", "chain_id", "dataset_name", "model_name", "model_class", "fold_id",
        "partition", "val_score", "test_score", "train_score", "metric", "task_type", "n_samples",
    )

    def warm_up(self, cancel: threading.Event | None = None) -> None:
        """Load the common ``predictions`` columns and ``arrays`` now (the console does it while you type)."""
        self._refresh()
        table = self._source.tables.get("predictions")
        if table is None:
            return
        cols = [c for c in self.WARM_COLUMNS if c in table.columns]
        with contextlib.suppress(WorkspaceError):
            self.execute(
                f"SELECT {', '.join(_q(c) for c in cols)} FROM predictions JOIN {ARRAYS_TABLE} "
                "USING (prediction_id) LIMIT 0",
                limit=0, timeout_s=120, cancel=cancel,
            )

    # -- queries

    def execute(
        self,
        sql: str,
        *,
        limit: int = 1000,
        timeout_s: float | None = 30,
        cancel: threading.Event | None = None,
        page_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> QueryCursor:
        """Run one read-only query; keep at most ``limit`` rows (and ``max_bytes``)."""
        import duckdb
        import pyarrow as pa

        limit = _check_int("limit", limit, minimum=0)
        page_size = _check_int("page_size", page_size if page_size is not None else max(limit, 1), minimum=1)
        if timeout_s is not None and not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise InvalidArgumentError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}.")
        started = time.perf_counter()
        with self._lock:
            self._ensure_open()
            analysis = check_statement(self._conn, sql)
            with _Watchdog(self._conn, timeout_s, cancel) as dog:
                try:
                    self._refresh()
                    used = self._prepare(analysis, dog)
                    dog.check()
                    rel = self._conn.sql(sql)
                    if rel is None:
                        raise QueryRejectedError(_READ_ONLY + "the statement returned no rows to show.")
                    columns = [str(c) for c in rel.columns]
                    types = [str(t) for t in rel.types]
                    reader = rel.to_arrow_reader(min(max(limit + 1, 1), 2048))
                    batches: list[pa.RecordBatch] = []
                    kept = 0
                    nbytes = 0
                    reason = ""
                    try:
                        schema = reader.schema
                        for batch in reader:
                            need = limit + 1 - kept
                            if batch.num_rows >= need:
                                batches.append(batch.slice(0, need))
                                kept += need
                                break
                            batches.append(batch)
                            kept += batch.num_rows
                            nbytes += batch.nbytes
                            if nbytes > max_bytes:
                                reason = "bytes"
                                break
                    finally:
                        reader.close()
                        del rel
                    dog.check()
                except duckdb.Error as exc:
                    raise _map_engine_error(exc, dog) from exc
        table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
        if table.num_rows > limit:
            table = table.slice(0, limit)
            reason = "limit"
        return QueryCursor(
            sql=sql, columns=columns, types=types, table=table, truncated=bool(reason), truncated_reason=reason,
            duration_seconds=time.perf_counter() - started, limit=limit, page_size=page_size, tables=used,
        )

    def export(
        self,
        sql: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        timeout_s: float | None = 600,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        overwrite: bool = False,
    ) -> QueryExportReport:
        """Write the query's full result (no row cap) to one Parquet file outside the workspace.

        Streams batches into a temporary file next to ``dest`` and renames it
        when complete, so ``dest`` is either absent or whole.
        """
        import duckdb
        import pyarrow.parquet as pq

        target = resolve_export_path(self.root, dest, overwrite=overwrite)
        started = time.perf_counter()
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        rows = 0
        with self._lock:
            self._ensure_open()
            analysis = check_statement(self._conn, sql)
            with _Watchdog(self._conn, timeout_s, cancel) as dog:
                try:
                    if progress:
                        progress(0.0, "Loading tables")
                    self._refresh()
                    self._prepare(analysis, dog)
                    rel = self._conn.sql(sql)
                    if rel is None:
                        raise QueryRejectedError(_READ_ONLY + "the statement returned no rows to export.")
                    reader = rel.to_arrow_reader(65536)
                    try:
                        with pq.ParquetWriter(tmp, reader.schema) as writer:
                            for batch in reader:
                                writer.write_batch(batch)
                                rows += batch.num_rows
                                if progress:
                                    progress(0.5, f"{rows:,} rows written")
                                dog.check()
                    finally:
                        reader.close()
                        del rel
                    dog.check()
                    os.replace(tmp, target)
                except duckdb.Error as exc:
                    raise _map_engine_error(exc, dog) from exc
                finally:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
        if progress:
            progress(1.0, f"{rows:,} rows written to {target.name}")
        return QueryExportReport(sql, str(target), rows, target.stat().st_size, time.perf_counter() - started)

    def _ensure_open(self) -> None:
        if self._closed:
            raise WorkspaceError("This SQL session is closed.", "Open a new one (SqlSession(path)).")


# ---------------------------------------------------------------- cursor


@dataclass
class QueryCursor:
    """The kept rows of one query (at most ``limit``), served page by page."""

    sql: str
    columns: list[str]
    types: list[str]
    table: pa.Table
    truncated: bool
    truncated_reason: str
    duration_seconds: float
    limit: int
    page_size: int
    tables: list[str]

    @property
    def row_count(self) -> int:
        return int(self.table.num_rows)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.row_count / self.page_size))

    def _check_page(self, index: int) -> int:
        index = _check_int("page", index, minimum=0)
        if index >= self.page_count:
            raise InvalidArgumentError(f"Page {index} does not exist (the result has {self.page_count} pages).")
        return index

    def page(self, index: int = 0) -> pa.Table:
        """Rows of page ``index`` as an Arrow table."""
        index = self._check_page(index)
        return self.table.slice(index * self.page_size, self.page_size)

    def page_ipc(self, index: int = 0) -> bytes:
        """Page ``index`` as Arrow IPC stream bytes, with types a JS Arrow reader can show."""
        return arrow_ipc_bytes(display_safe(self.page(index)))

    def page_rows(self, index: int = 0) -> list[list[Any]]:
        return table_rows(self.page(index))

    def result(self, page: int = 0) -> QueryResult:
        """The ``QueryResult`` for page ``page`` (rows as plain JSON values)."""
        page = self._check_page(page)
        return QueryResult(
            sql=self.sql, columns=list(self.columns), types=list(self.types), rows=self.page_rows(page),
            row_count=self.row_count, truncated=self.truncated, duration_seconds=round(self.duration_seconds, 4),
            limit=self.limit, page=page, page_size=self.page_size, page_count=self.page_count,
            offset=page * self.page_size, tables=list(self.tables), truncated_reason=self.truncated_reason,
        )

    def to_arrow(self) -> pa.Table:
        """Every kept row as one Arrow table."""
        return self.table


# ---------------------------------------------------------------- conversions


def plain_value(value: Any) -> Any:
    """A plain JSON value for one cell (NaN/inf become null; bytes become hex)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return str(value)


def table_rows(table: pa.Table) -> list[list[Any]]:
    """Rows of ``table`` as lists of plain JSON values."""
    columns = []
    for col in table.columns:
        try:
            values = col.to_pylist()
        except (ValueError, OverflowError):  # e.g. dates out of Python's range
            values = [str(v) for v in col]
        columns.append([plain_value(v) for v in values])
    return [list(r) for r in zip(*columns, strict=True)] if columns else [[] for _ in range(table.num_rows)]


def _is_js_safe(t: Any) -> bool:
    import pyarrow.types as pt

    if pt.is_boolean(t) or pt.is_integer(t) or pt.is_floating(t) or pt.is_string(t) or pt.is_null(t):
        return True
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
        v = t.value_type
        return bool(pt.is_boolean(v) or pt.is_integer(v) or pt.is_floating(v) or pt.is_string(v))
    return False


def display_safe(table: pa.Table) -> pa.Table:
    """Columns the browser's Arrow reader shows well; others become text (JSON for nested values)."""
    import pyarrow as pa

    cols = []
    fields = []
    for field, col in zip(table.schema, table.columns, strict=True):
        if _is_js_safe(field.type):
            cols.append(col)
            fields.append(field.remove_metadata())
            continue
        try:
            values = col.to_pylist()
        except (ValueError, OverflowError):
            values = [str(v) for v in col]
        text = [
            None if v is None else (json.dumps(plain_value(v)) if isinstance(v, (dict, list, tuple)) else
                                    str(plain_value(v)))
            for v in values
        ]
        cols.append(pa.array(text, type=pa.string()))
        fields.append(pa.field(field.name, pa.string()))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def arrow_ipc_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _duck_type_name(t: Any) -> str:
    import pyarrow.types as pt

    if pt.is_string(t) or pt.is_large_string(t):
        return "VARCHAR"
    if pt.is_float64(t):
        return "DOUBLE"
    if pt.is_int32(t):
        return "INTEGER"
    if pt.is_int64(t):
        return "BIGINT"
    if pt.is_list(t) or pt.is_large_list(t):
        return _duck_type_name(t.value_type) + "[]"
    return str(t).upper()


def _empty_array_schema() -> pa.Schema:
    import pyarrow as pa

    kinds = {"utf8": pa.string(), "float64": pa.float64(), "list_f64": pa.list_(pa.float64()),
             "list_i32": pa.list_(pa.int32())}
    return pa.schema([(name, kinds[kind]) for name, kind in _ARRAY_COLUMNS])


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, not {value!r}.")
    return int(value)


# ---------------------------------------------------------------- export paths


def default_export_path(root: Path, now: _dt.datetime | None = None) -> Path:
    """``<parent of workspace>/<name>-query-<timestamp>.parquet`` (or the cwd when the parent is read-only)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{root.name}-query-{stamp}.parquet"
    parent = root.parent
    if os.access(parent, os.W_OK):
        return parent / name
    cwd = Path.cwd()
    if not _inside(cwd, root) and os.access(cwd, os.W_OK):
        return cwd / name
    raise InvalidArgumentError(
        f"No writable default folder for the export ({parent} is read-only).", "Give an explicit path outside the "
        "workspace.",
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def resolve_export_path(root: Path, dest: str | os.PathLike[str] | None, *, overwrite: bool = False) -> Path:
    """Validate where an export goes: outside the workspace, in an existing folder."""
    if dest is None or str(dest).strip() == "":
        return default_export_path(root)
    target = Path(dest).expanduser()
    if not target.is_absolute():
        target = Path.cwd() / target
    if target.suffix.lower() != ".parquet":
        target = target.with_name(target.name + ".parquet")
    if _inside(target, root) or _inside(target.parent, root):
        raise InvalidArgumentError(
            f"{target} is inside the workspace; the console never writes into a workspace.",
            "Choose a path outside the workspace folder.",
        )
    if not target.parent.is_dir():
        raise InvalidArgumentError(f"Folder {target.parent} does not exist.", "Create it first or pick another path.")
    if target.is_dir():
        raise InvalidArgumentError(f"{target} is a folder.", "Give a file name ending in .parquet.")
    if target.exists() and not overwrite:
        raise InvalidArgumentError(f"{target} already exists.", "Pick another name, or pass overwrite=True.")
    if not os.access(target.parent, os.W_OK):
        raise InvalidArgumentError(f"No permission to write in {target.parent}.", "Pick a folder you can write to.")
    return target


# ---------------------------------------------------------------- one-shot entry points


def run_query(
    ws: Workspace | str | os.PathLike[str],
    sql: str,
    limit: int = 1000,
    timeout_s: float | None = 30,
    cancel: threading.Event | None = None,
    *,
    page_size: int | None = None,
) -> QueryResult:
    """Run one read-only query and return its first page (``Workspace.query``).

    For many queries or paging, keep a :class:`SqlSession` open instead: it
    caches the tables it loaded.
    """
    with SqlSession(ws) as session:
        return session.execute(sql, limit=limit, timeout_s=timeout_s, cancel=cancel, page_size=page_size).result(0)


def export_query(
    ws: Workspace | str | os.PathLike[str],
    sql: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    timeout_s: float | None = 600,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> QueryExportReport:
    """Write a query's full result to Parquet outside the workspace (one-shot session)."""
    with SqlSession(ws) as session:
        return session.export(sql, dest, timeout_s=timeout_s, cancel=cancel, progress=progress, overwrite=overwrite)
