"""The SQL worker: a process of its own per ``SqlSession``, where every query runs.

Why a process: DuckDB allocates outside its buffer manager (huge strings and
lists, planning of enormous statements), and some calls do not check for
interrupts for tens of seconds.  In a process of our own both are bounded by
construction: the session kills the worker at the deadline (plus a grace) or
when its memory passes the cap, and starts a new one; the user's kernel never
holds the engine, its allocations or its threads.

The worker starts with an empty environment (no proxy, no credentials, UTC),
an address-space limit, and no core dumps; it dies with its parent.  It talks
to the session through stdin/stdout in frames (``write_frame``/``read_frame``):
a JSON header and an optional binary payload (Arrow IPC or JSON rows).  A
``cancel`` frame is read by a thread of its own, so it lands while a query runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import struct
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

_HEAD = struct.Struct("<IQ")
#: Largest frame either side accepts (a page is capped far below this).
MAX_FRAME_BYTES = 1 << 31
#: Results a worker keeps for paging (the oldest is dropped first).
KEEP_RESULTS = 4


def write_frame(out: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    out.write(_HEAD.pack(len(head), len(payload)) + head)
    if payload:
        out.write(payload)
    out.flush()


def read_exact(inp: IO[bytes], n: int) -> bytes:
    chunks = []
    while n:
        got = inp.read(n)
        if not got:
            raise EOFError
        chunks.append(got)
        n -= len(got)
    return b"".join(chunks)


def read_frame(inp: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    hl, pl = _HEAD.unpack(read_exact(inp, _HEAD.size))
    if hl > MAX_FRAME_BYTES or pl > MAX_FRAME_BYTES:
        raise EOFError
    header = json.loads(read_exact(inp, hl))
    return header, read_exact(inp, pl) if pl else b""


# ------------------------------------------------------------------ process set-up


def _limit_self(address_space: int) -> None:
    """Hard limits of the worker process itself (best effort where the OS lacks them)."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    if os.getppid() == 1:
        os._exit(0)


class _Worker:
    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        from .local import LocalEngine

        # Frames own the real stdout; anything a library prints goes to stderr instead.
        self.out = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        self.engine = LocalEngine(
            root, memory_limit=options["memory_limit"], threads=options["threads"],
            arrays_memory_bytes=options["arrays_memory_bytes"],
        )
        self.faults = bool(options.get("faults"))
        self.prewarm = bool(options.get("prewarm"))
        self.results: OrderedDict[int, Any] = OrderedDict()
        self.requests: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self.current = 0
        self.cancel = threading.Event()
        self._cancel_lock = threading.Lock()

    # -- the reader thread: requests go to the queue, cancels take effect at once

    def _prepare(self) -> None:
        """Idle time: import the libraries; a spare (pre-started) worker also loads the common tables.

        A request arriving meanwhile waits on the import lock or the engine's lock, never on work
        done twice; tables loaded here are re-read if the workspace changes before a query.
        """
        _prefetch_imports()
        if self.prewarm:
            with contextlib.suppress(Exception):
                self.engine.warm_up(cancel=self.cancel)

    def read_loop(self) -> None:
        inp = sys.stdin.buffer
        while True:
            try:
                header, payload = read_frame(inp)
            except (EOFError, OSError, ValueError):
                os._exit(0)  # the session is gone: no engine teardown, no destructors on threads
            if header.get("op") == "cancel":
                with self._cancel_lock:
                    if header.get("id") == self.current:
                        self.cancel.set()
                continue
            self.requests.put((header, payload))

    # -- the main thread: one request at a time

    def serve(self) -> None:
        threading.Thread(target=self.read_loop, name="n4a-sql-worker-reader", daemon=True).start()
        write_frame(self.out, {"ok": True, "ready": True, "pid": os.getpid()})
        threading.Thread(target=self._prepare, name="n4a-sql-worker-prepare", daemon=True).start()
        while True:
            item = self.requests.get()
            if item is None:
                break
            header, _payload = item
            with self._cancel_lock:
                self.current = int(header.get("id", 0))
                self.cancel = threading.Event()
            restart = False
            try:
                reply, body = self.handle(header)
                reply = {"ok": True, **reply}
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
                reply, restart = self.describe(exc)
                body = b""
            if header.get("op") == "close":
                write_frame(self.out, reply)
                os._exit(0)
            write_frame(self.out, {**reply, "id": header.get("id")}, body)
            if restart:
                os._exit(3)  # the engine is broken: the session starts a new worker

    def describe(self, exc: BaseException) -> tuple[dict[str, Any], bool]:
        from ..errors import QueryRejectedError, WorkspaceError
        from .engine import EngineRestartedError, _scrub, is_broken_engine_error

        restart = False
        if isinstance(exc, EngineRestartedError):
            err: WorkspaceError = exc
            restart = True
        elif isinstance(exc, WorkspaceError):
            err = exc
        elif isinstance(exc, MemoryError):
            err = WorkspaceError(
                "The query needed more memory than the console allows and was stopped.",
                "Select fewer columns (array columns are large), filter with WHERE, or aggregate. "
                "The SQL engine was restarted; nothing was changed.",
            )
            restart = True
        elif isinstance(exc, RecursionError):
            err = QueryRejectedError(
                "The query is nested too deeply to run.", "Write it with fewer nested expressions or subqueries."
            )
        elif is_broken_engine_error(exc) if isinstance(exc, Exception) else False:
            err = EngineRestartedError("The SQL engine hit an internal error on this query and was restarted.")
            restart = True
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            detail = f": {_scrub(first)}" if first else ""
            err = WorkspaceError(
                f"The query could not be completed{detail}.",
                "Check the query; if it keeps failing, select fewer or simpler columns. Nothing was changed.",
            )
        if self.cancel.is_set() and not isinstance(exc, WorkspaceError):
            from ..errors import OperationCancelledError

            err = OperationCancelledError("The query was cancelled.", "Nothing was changed.")
        data = err.to_dict()
        return {"ok": False, "error": data, "restart": restart}, restart

    def _check(self, timeout_s: float | None) -> Any:
        from .engine import _Watchdog

        dog = _Watchdog(None, timeout_s, self.cancel)
        return dog.check

    def handle(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        timeout = header.get("timeout_s")
        if op == "schema":
            tables = self.engine.schema()
            return {"tables": [t.to_dict() for t in tables], "warnings": list(self.engine.warnings)}, b""
        if op == "warm_up":
            self.engine.warm_up(cancel=self.cancel)
            return {}, b""
        if op == "state":
            return {"state": self.engine.state()}, b""
        if op == "execute":
            kept = self.engine.run(header["sql"], limit=header["limit"], timeout_s=timeout, cancel=self.cancel,
                                   max_bytes=header["max_bytes"])
            self.results[self.current] = kept
            while len(self.results) > KEEP_RESULTS:
                self.results.popitem(last=False)
            return {"result": self.current, "columns": kept.columns, "types": kept.types,
                    "row_count": kept.table.num_rows, "truncated_reason": kept.truncated_reason,
                    "tables": kept.tables, "duration_seconds": kept.duration_seconds,
                    "warnings": list(self.engine.warnings)}, b""
        if op == "page":
            return self.page(header)
        if op == "export":
            return self.export(header)
        if op == "close":
            return {}, b""
        if op == "fault" and self.faults:
            return self.fault(str(header.get("kind")))
        raise ValueError(f"unknown request {op!r}")

    def fault(self, kind: str) -> tuple[dict[str, Any], bytes]:
        """Tests only (``SqlSession(_faults=True)``): fail the way a broken engine does."""
        import signal

        import duckdb

        if kind == "internal":
            raise duckdb.InternalException(
                "INTERNAL Error: injected failure\nStack Trace:\n/opt/venv/lib/python3/site-packages/duckdb/"
                "duckdb.so(+0x1234) [0x7f00]"
            )
        if kind == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if kind == "hang":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            while True:
                pass
        return {}, b""

    def page(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        from ..errors import WorkspaceError
        from .values import arrow_ipc_bytes, capped_display_ipc, capped_rows_json

        kept = self.results.get(int(header["result"]))
        if kept is None:
            raise WorkspaceError("This result is no longer available.", "Run the query again.")
        table = kept.table.slice(int(header["offset"]), int(header["length"]))
        check = self._check(header.get("timeout_s"))
        fmt = header["format"]
        cap = int(header["max_bytes"])
        if fmt == "rows":
            body, n = capped_rows_json(table, cap, check)
        elif fmt == "display":
            body, n = capped_display_ipc(table, cap, check)
        else:  # "arrow": the kept values as they are
            from .local import _rows_within

            n = _rows_within(table, cap)
            body = arrow_ipc_bytes(table.slice(0, n))
        return {"rows": n}, body

    def export(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        import pyarrow as pa

        rows = 0
        for batch in self.engine.export_batches(header["sql"], timeout_s=header.get("timeout_s"),
                                                cancel=self.cancel):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as w:
                w.write_batch(batch)
            write_frame(self.out, {"id": header.get("id"), "kind": "batch", "rows": batch.num_rows},
                        sink.getvalue().to_pybytes())
            rows += batch.num_rows
        return {"rows": rows}, b""


def _prefetch_imports() -> None:
    """Import the engine's libraries while the worker waits for its first request.

    They cost seconds in a fresh process; a request that needs one meanwhile just waits on
    Python's import lock, so nothing is done twice.
    """
    import importlib

    from ..readonly_sqlite import import_adbc

    for name in ("pyarrow", "pyarrow.compute", "pyarrow.parquet", "pyarrow.dataset", "duckdb"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the request that needs it reports the failure
            return
    with contextlib.suppress(Exception):
        import_adbc()  # without its optional polars backend, as the engine imports it


def _arrow_memory_pool() -> None:
    """Give freed Arrow memory back to the system at once (the worker's peak is the user's memory).

    pyarrow's default mimalloc pool keeps what a query freed: reading every file's ids
    at 1M predictions left 145 MB resident for 40 MB of ids, and the anti-join another
    130 MB.  jemalloc with no decay (or the system allocator where jemalloc is not built
    in) returns it, for a few percent of speed.
    """
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, AttributeError, pa.ArrowException):
        with contextlib.suppress(Exception):
            pa.set_memory_pool(pa.system_memory_pool())


def main() -> None:
    """Entry point: ``python -c 'from n4a_widgets.core.sql.worker import main; main()' ROOT OPTIONS``."""
    root = Path(sys.argv[1])
    options = json.loads(sys.argv[2])
    _limit_self(int(options.get("address_space", 0)))
    try:
        _arrow_memory_pool()
        worker = _Worker(root, options)
    except BaseException as exc:  # noqa: BLE001 - report set-up failures as a message
        from ..errors import WorkspaceError

        err = exc if isinstance(exc, WorkspaceError) else WorkspaceError(
            "The SQL engine could not start.", "Check that the workspace is readable; nothing was changed.")
        write_frame(sys.stdout.buffer, {"ok": False, "error": err.to_dict(), "restart": False})
        os._exit(2)
    worker.serve()
    os._exit(0)
