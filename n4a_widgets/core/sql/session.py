"""``SqlSession``: the console's handle on one workspace; every query runs in its worker process.

The limits hold by construction (docs/ARCHITECTURE.md, "SQL"): the session
waits for the worker's answer while it watches the clock, the cancel event and
the worker's memory, and kills the worker when the deadline plus ``GRACE_S``
passes, ``CANCEL_GRACE_S`` after a cancel it did not honour, or when its
resident memory passes ``memory_cap_bytes``.  The next request starts a new
worker and the session says so (``notices``, ``restarts``).  Failures arrive
as ``WorkspaceError`` subclasses rebuilt from the worker's message; no
traceback, machine path or engine stack crosses over.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, NoReturn

from .. import errors as _errors
from ..errors import InvalidArgumentError, OperationCancelledError, QueryTimeoutError, WorkspaceError
from ..progress import Progress, Ticker
from .cursor import QueryCursor, QueryResult
from .engine import (
    DEFAULT_ARRAYS_MEMORY_BYTES,
    DEFAULT_MAX_BYTES,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_THREADS,
    NEUTRAL_DIR,
    EngineRestartedError,
)
from .export import QueryExportReport, SafeDestination, resolve_export_path
from .guard import check_text
from .sources import ColumnInfo, TableInfo
from .values import _check_int
from .worker import read_frame, write_frame

#: Resident memory the worker may use (DuckDB's own limit, the cached tables and the kept rows fit in it).
DEFAULT_MEMORY_CAP_BYTES = 2 * 1024**3
#: Address space the worker may map: a hard ceiling even between two memory checks.
ADDRESS_SPACE_HEADROOM = 3 * 1024**3
#: Bytes of one page sent to this process (JSON rows, or Arrow IPC for the browser).
DEFAULT_PAGE_BYTES = 16 * 1024 * 1024
#: Seconds past ``timeout_s`` before the worker is killed (its own watchdog stops it at ``timeout_s``).
GRACE_S = 0.5
#: Seconds a worker has to honour a cancel before it is killed.
CANCEL_GRACE_S = 0.5
#: Seconds a new worker has to start (import the engine, lock it down).
START_TIMEOUT_S = 60.0
_POLL_S = 0.02
_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv.pop(1)); "
    "from n4a_widgets.core.sql.worker import main; main()"
)
_RESTARTED = "The SQL engine was restarted; run the query again. Nothing was changed."


def _worker_env(threads: int) -> dict[str, str]:
    """The worker's whole environment: nothing inherited (no proxy credentials, no time zone)."""
    n = str(max(1, int(threads)))
    return {"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC", "HOME": NEUTRAL_DIR,
            "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "PYTHONHASHSEED": "0"}


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill a worker and reap it (also called at interpreter exit for a session never closed)."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.close()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _rebuild(data: dict[str, Any]) -> WorkspaceError:
    name = str(data.get("type", "WorkspaceError"))
    cls = EngineRestartedError if name == "EngineRestartedError" else getattr(_errors, name, WorkspaceError)
    if not (isinstance(cls, type) and issubclass(cls, WorkspaceError)):
        cls = WorkspaceError
    return cls(str(data.get("message", "The query failed.")), str(data.get("hint", "")))


def _check_timeout(timeout_s: Any) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
        math.isfinite(timeout_s) and timeout_s > 0
    ):
        raise InvalidArgumentError(f"timeout_s must be a positive, finite number of seconds, not {timeout_s!r}.")
    return float(timeout_s)


# One pre-started worker per process, for the next session on the same workspace with the same
# limits (a new SqlConsole, each ``Workspace.query``): it has booted and imported its libraries
# while idle.  It holds no data (tables load on its first request, from the workspace as it is
# then) and ends with this process (end of its stdin, and the parent-death signal).
_SPARE_LOCK = threading.Lock()
_SPARE: dict[str, subprocess.Popen[bytes]] = {}


def _take_spare(key: str) -> subprocess.Popen[bytes] | None:
    with _SPARE_LOCK:
        proc = _SPARE.pop(key, None)
    if proc is not None and proc.poll() is not None:
        _stop(proc)
        return None
    return proc


def _keep_spare(key: str, spawn: Any) -> None:
    with _SPARE_LOCK:
        old = [p for k, p in _SPARE.items() if k != key]
        if key in _SPARE and _SPARE[key].poll() is None:
            return
        _SPARE.clear()
        try:
            _SPARE[key] = spawn()
        except OSError:
            pass
    for proc in old:
        _stop(proc)


class SqlSession:
    """A read-only SQL console on one workspace: a worker process with one locked engine, cached tables.

    ``execute`` returns a :class:`QueryCursor` that keeps at most ``limit`` rows
    (and ``max_bytes``) and serves them in pages.  One query runs at a time;
    ``interrupt()`` stops the running one from another thread.  Close the
    session (or use it as a context manager) to stop the worker; a session that
    is dropped without ``close()`` stops it when it is collected or at exit.
    """

    def __init__(
        self,
        root: Path,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
        arrays_memory_bytes: int = DEFAULT_ARRAYS_MEMORY_BYTES,
        memory_cap_bytes: int = DEFAULT_MEMORY_CAP_BYTES,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        prestart: bool = True,
        _faults: bool = False,
    ) -> None:
        self.root = Path(root)
        self.prestart = bool(prestart)
        """Take a pre-started worker if one is waiting, and leave one for the next session (see ``_SPARE``)."""
        self.memory_cap_bytes = _check_int("memory_cap_bytes", memory_cap_bytes, minimum=64 * 1024 * 1024)
        self.page_bytes = _check_int("page_bytes", page_bytes, minimum=1024)
        self._options: dict[str, Any] = {
            "memory_limit": str(memory_limit), "threads": _check_int("threads", threads, minimum=1),
            "arrays_memory_bytes": _check_int("arrays_memory_bytes", arrays_memory_bytes, minimum=0),
            "address_space": self.memory_cap_bytes + ADDRESS_SPACE_HEADROOM, "faults": bool(_faults),
        }
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._interrupt = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._generation = 0
        self._next_id = 0
        self.warnings: list[str] = []
        self.notices: list[str] = []
        """What the session did on its own (an engine restarted after an internal error, a crash or a limit)."""
        self.restarts = 0
        self._closed = False
        self._start()

    # -- the worker

    def _spawn(self, *, prewarm: bool = False) -> subprocess.Popen[bytes]:
        paths = [p for p in sys.path if p]
        options = {**self._options, "prewarm": prewarm}
        cmd = [sys.executable, "-I", "-c", _BOOT, json.dumps(paths), str(self.root), json.dumps(options)]
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            env=_worker_env(self._options["threads"]), cwd="/", close_fds=True, start_new_session=True,
        )

    def _spare_key(self) -> str:
        return json.dumps([str(self.root), self._options, [p for p in sys.path if p]], sort_keys=True)

    def _start(self) -> None:
        proc = (_take_spare(self._spare_key()) if self.prestart else None) or self._spawn()
        self._proc = proc
        self._generation += 1
        self._finalizer = weakref.finalize(self, _stop, proc)
        # Not at interpreter exit: a daemon thread may still wait on this worker, and killing it there
        # would wake that thread into an error.  The worker ends by itself when this process does
        # (end of its stdin, and the parent-death signal).
        self._finalizer.atexit = False
        try:
            reply, _ = self._wait(proc, 0, deadline=time.monotonic() + START_TIMEOUT_S, cancel=None,
                                  what="start", timeout_s=START_TIMEOUT_S)
        except WorkspaceError:
            self._discard()
            raise
        if not reply.get("ready"):
            self._discard()
            raise WorkspaceError("The SQL engine could not start.", "Check the workspace; nothing was changed.")
        if self.prestart:
            _keep_spare(self._spare_key(), lambda: self._spawn(prewarm=True))

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            _stop(proc)

    def _restarted(self, why: str) -> None:
        self._discard()
        if not self._closed:
            self.restarts += 1
            self.notices.append(why)

    def _ensure_worker(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise WorkspaceError("This SQL session is closed.", "Open a new one (SqlSession(path)).")
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self._restarted("The SQL engine had stopped; a new one was started.")
            self._start()
        assert self._proc is not None
        return self._proc

    def _request(
        self, header: dict[str, Any], *, timeout_s: float, cancel: threading.Event | None = None,
        on_batch: Any = None,
    ) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            proc = self._ensure_worker()
            if cancel is not None and cancel.is_set():  # pressed before it was sent: never send it
                raise OperationCancelledError("The query was cancelled.", "Nothing was changed.")
            self._next_id += 1
            rid = self._next_id
            self._interrupt.clear()
            try:
                with self._write_lock:
                    write_frame(proc.stdin, {**header, "id": rid})  # type: ignore[arg-type]
            except (OSError, ValueError):
                self._restarted("The SQL engine had stopped; a new one was started.")
                raise EngineRestartedError("The SQL engine stopped unexpectedly.", _RESTARTED) from None
            return self._wait(proc, rid, deadline=time.monotonic() + timeout_s + GRACE_S, cancel=cancel,
                              what=str(header.get("op")), timeout_s=timeout_s, on_batch=on_batch)

    def _wait(
        self, proc: subprocess.Popen[bytes], rid: int, *, deadline: float, cancel: threading.Event | None,
        what: str, timeout_s: float, on_batch: Any = None,
    ) -> tuple[dict[str, Any], bytes]:
        """The worker's answer to request ``rid``, or a kill when a limit passes."""
        assert proc.stdout is not None
        try:
            fd = proc.stdout.fileno()
        except ValueError:  # closed under us (the session was closed from another thread)
            self._died(what)
        cancel_sent: float | None = None
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], _POLL_S)
            except (OSError, ValueError):
                self._died(what)
            if ready:
                try:
                    reply, payload = read_frame(proc.stdout)
                except (EOFError, OSError, ValueError):
                    self._died(what)
                if reply.get("kind") == "batch":
                    if on_batch is not None:
                        on_batch(payload)
                    continue
                if not reply.get("ok"):
                    if reply.get("restart"):
                        self._restarted("The SQL engine hit an internal error and was restarted.")
                    raise _rebuild(dict(reply.get("error") or {}))
                return reply, payload
            now = time.monotonic()
            if proc.poll() is not None:
                self._died(what)
            stop = self._interrupt.is_set() or (cancel is not None and cancel.is_set())
            if stop and cancel_sent is None and rid:
                cancel_sent = now
                with contextlib.suppress(OSError, ValueError), self._write_lock:
                    write_frame(proc.stdin, {"op": "cancel", "id": rid})  # type: ignore[arg-type]
            if cancel_sent is not None and now - cancel_sent > CANCEL_GRACE_S:
                self._restarted("A cancelled query did not stop at once; the SQL engine was restarted.")
                raise OperationCancelledError("The query was cancelled.", "Nothing was changed.")
            if now > deadline:
                self._restarted("A query passed its time limit; the SQL engine was restarted.")
                if what == "start":
                    raise WorkspaceError("The SQL engine did not start in time.", "Try again; nothing was changed.")
                raise QueryTimeoutError(f"The query ran longer than {timeout_s:g} s and was stopped.")
            rss = _rss_bytes(proc.pid)
            if rss is not None and rss > self.memory_cap_bytes:
                self._restarted("A query passed the memory cap; the SQL engine was restarted.")
                raise WorkspaceError(
                    f"The query needed more than {self.memory_cap_bytes / 1024**3:.1f} GB of memory and was stopped.",
                    "Select fewer columns (array columns are large), filter with WHERE, or aggregate. "
                    "Nothing was changed.",
                )

    def _died(self, what: str) -> NoReturn:
        if self._closed:
            self._discard()
            raise WorkspaceError("The SQL session was closed while the query ran.", "Open a new session to query.")
        self._restarted("The SQL engine stopped unexpectedly and was restarted.")
        if what == "start":
            raise WorkspaceError("The SQL engine could not start.", "Check the workspace; nothing was changed.")
        raise EngineRestartedError(
            "The SQL engine stopped unexpectedly on this query (it ran out of memory or crashed).",
            "Select fewer columns, filter with WHERE or aggregate. " + _RESTARTED,
        )

    # -- lifecycle

    def close(self) -> None:
        """Stop the worker (the kept results go with it); safe while another thread waits on a query."""
        self._closed = True
        self._interrupt.set()
        if self._lock.acquire(timeout=0.5):
            try:
                self._discard()
            finally:
                self._lock.release()
        else:  # a query (or the console's warm-up) is waiting on the worker: stop the worker under it
            proc, finalizer = self._proc, self._finalizer
            if finalizer is not None:
                finalizer.detach()
            if proc is not None:
                _stop(proc)

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def interrupt(self) -> None:
        """Stop the running query (safe from any thread)."""
        self._interrupt.set()

    # -- catalog

    def schema(self) -> tuple[TableInfo, ...]:
        """Tables and columns a query can use (the console's sidebar)."""
        reply, _ = self._request({"op": "schema"}, timeout_s=120)
        self.warnings = list(reply.get("warnings", []))
        return tuple(
            TableInfo(t["name"], t["kind"], t["row_count"],
                      tuple(ColumnInfo(c["name"], c["type"]) for c in t["columns"]), t.get("description", ""))
            for t in reply["tables"]
        )

    def warm_up(self, cancel: threading.Event | None = None) -> None:
        """Load the common ``predictions`` columns and ``arrays`` now (the console does it while you type)."""
        with contextlib.suppress(WorkspaceError):
            self._request({"op": "warm_up", "timeout_s": 120}, timeout_s=120, cancel=cancel)

    def engine_state(self) -> dict[str, Any]:
        """What the worker's engine holds (``arrays_mode``, loaded columns): for tests and benchmarks."""
        return dict(self._request({"op": "state"}, timeout_s=30)[0]["state"])

    def _inject(self, kind: str, *, timeout_s: float = 30) -> None:
        """Tests only: make the worker fail like a broken engine (``internal``, ``crash``, ``hang``)."""
        self._request({"op": "fault", "kind": kind}, timeout_s=timeout_s)

    # -- queries

    def execute(
        self,
        sql: str,
        *,
        limit: int = 1000,
        timeout_s: float = 30,
        cancel: threading.Event | None = None,
        page_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> QueryCursor:
        """Run one read-only query; keep at most ``limit`` rows (and ``max_bytes``)."""
        check_text(sql)
        limit = _check_int("limit", limit, minimum=0)
        page_size = _check_int("page_size", page_size if page_size is not None else max(limit, 1), minimum=1)
        timeout = _check_timeout(timeout_s)
        max_bytes = _check_int("max_bytes", max_bytes, minimum=0)
        started = time.perf_counter()
        reply, _ = self._request(
            {"op": "execute", "sql": sql, "limit": limit, "timeout_s": timeout, "max_bytes": max_bytes},
            timeout_s=timeout, cancel=cancel,
        )
        self.warnings = list(reply.get("warnings", self.warnings))
        reply["duration_seconds"] = time.perf_counter() - started
        return QueryCursor(self, reply, sql=sql, limit=limit, page_size=page_size, timeout_s=timeout,
                           page_bytes=self.page_bytes, generation=self._generation)

    def _page(self, cursor: QueryCursor, *, offset: int, length: int, fmt: str) -> tuple[bytes, int]:
        with self._lock:
            if cursor._session is not self or cursor._generation != self._generation or self._proc is None:
                raise WorkspaceError("This result is no longer available (the SQL engine was restarted).",
                                     "Run the query again.")
            reply, body = self._request(
                {"op": "page", "result": cursor._result_id, "offset": offset, "length": length, "format": fmt,
                 "max_bytes": cursor.page_bytes, "timeout_s": cursor.timeout_s},
                timeout_s=cursor.timeout_s,
            )
        return body, int(reply["rows"])

    def export(
        self,
        sql: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        timeout_s: float = 600,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        overwrite: bool = False,
    ) -> QueryExportReport:
        """Write the query's full result (no row cap) to one Parquet file outside the workspace.

        The worker streams batches; this process writes them into a temporary
        file created exclusively in the destination folder (opened once), and
        renames it inside that folder when complete, after checking the folder
        is still the one it opened: ``dest`` is either absent or whole, and
        never under the workspace.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        check_text(sql)
        timeout = _check_timeout(timeout_s)
        ticker = Ticker(progress, cancel)
        target = resolve_export_path(self.root, dest, overwrite=overwrite)
        started = time.perf_counter()
        ticker.step(0.0, "Running query")
        rows = 0
        with SafeDestination(self.root, target, overwrite=overwrite) as out:
            writer: list[Any] = []

            def on_batch(payload: bytes) -> None:
                nonlocal rows
                table = pa.ipc.open_stream(payload).read_all()
                if not writer:
                    writer.append(pq.ParquetWriter(out.file, table.schema))
                if table.num_rows:
                    writer[0].write_table(table)
                rows += table.num_rows
                ticker.step(0.5, f"{rows:,} rows written")

            try:
                self._request({"op": "export", "sql": sql, "timeout_s": timeout}, timeout_s=timeout, cancel=cancel,
                              on_batch=on_batch)
            finally:
                if writer:
                    writer[0].close()
            out.commit()
        size = out.size_bytes
        ticker.done(f"{rows:,} rows written to {target.name}")
        return QueryExportReport(sql, str(target), rows, size, time.perf_counter() - started)


# ---------------------------------------------------------------- one-shot entry points


def run_query(
    root: Path,
    sql: str,
    *,
    limit: int = 1000,
    timeout_s: float = 30,
    cancel: threading.Event | None = None,
    page_size: int | None = None,
) -> QueryResult:
    """Run one read-only query and return its first page (``Workspace.query``).

    For many queries or paging, keep a :class:`SqlSession` open instead: it
    caches the tables it loaded.
    """
    with SqlSession(root) as session:
        return session.execute(sql, limit=limit, timeout_s=timeout_s, cancel=cancel, page_size=page_size).result(0)


def export_query(
    root: Path,
    sql: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    timeout_s: float = 600,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> QueryExportReport:
    """Write a query's full result to Parquet outside the workspace (one-shot session)."""
    with SqlSession(root) as session:
        return session.export(sql, dest, timeout_s=timeout_s, cancel=cancel, progress=progress, overwrite=overwrite)
