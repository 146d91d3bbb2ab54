"""The locked engine: an in-memory DuckDB with no file access, its watchdog and its error mapping.

The workspace's tables reach the engine only as Arrow data our own code read
(see ``sources``).  ``locked_connection`` empties ``allowed_paths`` and
``allowed_directories`` (DuckDB 2.0 otherwise allows writing ``<cwd>/:memory:*``),
switches external access off, disables spilling and extension auto-install/load,
gives path-like settings a neutral value and locks the configuration: no
statement can read or write a file, attach a database, install or load an
extension, or change a setting.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any

from ..errors import (
    InvalidArgumentError,
    OperationCancelledError,
    QueryRejectedError,
    QueryTimeoutError,
    WorkspaceError,
)

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
#: Settings DuckDB fills from the environment (``HTTP_PROXY``, ``TZ``, ``HOME``, ...), given fixed
#: values before the configuration is locked, so no query can read a proxy password or the time zone.
#: The worker also starts with an empty environment; this is the engine layer's own guarantee.
NEUTRAL_SETTINGS: tuple[tuple[str, str], ...] = (
    ("http_proxy", ""),
    ("http_proxy_username", ""),
    ("http_proxy_password", ""),
    ("TimeZone", "UTC"),
    ("Calendar", "gregorian"),
)

_READ_ONLY = "This console is read-only: "
_BROKEN_HINT = "The SQL engine was restarted; run the query again. Nothing was changed."


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
        for name, value in NEUTRAL_SETTINGS:
            with contextlib.suppress(duckdb.CatalogException):  # e.g. no ICU: no TimeZone/Calendar setting
                conn.execute(f"SET {name} = '{value}'")
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
    if is_broken_engine_error(exc):
        return EngineRestartedError(
            "The SQL engine hit an internal error on this query and was restarted.", _BROKEN_HINT
        )
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
    first = _scrub(text.strip().splitlines()[0]) if text.strip() else "the engine refused the query"
    first = _ENGINE_KIND.sub("", first) or "the engine refused the query"  # "Binder Error: ..." -> "..."
    return InvalidArgumentError(
        f"SQL error: {first}",
        "Check table and column names against the schema; only SELECT queries are supported.",
    )


class EngineRestartedError(WorkspaceError):
    """The engine broke (internal error, crash, memory cap) and the session started a new one."""

    default_hint = _BROKEN_HINT


def is_broken_engine_error(exc: BaseException) -> bool:
    """An error after which DuckDB's connection is unusable ("database has been invalidated")."""
    import duckdb

    if isinstance(exc, (duckdb.InternalException, duckdb.FatalException)):
        return True
    return "has been invalidated" in str(exc) or "INTERNAL Error" in str(exc)


_ENGINE_KIND = re.compile(r"^(?:[A-Z][A-Za-z]*\s)*?(?:[A-Z][A-Za-z]*\s)?Error:\s*")
_PATHLIKE = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s/'\"]+){2,}/?")


def _scrub(text: str) -> str:
    """One line of an engine message without machine paths (a C++ frame or a file name)."""
    return _PATHLIKE.sub("<path>", text)[:500]
