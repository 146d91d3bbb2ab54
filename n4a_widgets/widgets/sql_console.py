"""``SqlConsole``: read-only SQL over a workspace's metadata and arrays.

Rows never travel as JSON traits: each page is sent to the page as an Arrow
IPC buffer in a custom message (``{"type": "page", ...}`` + ``buffers``); the
``report`` trait carries only the result's shape (columns, types, counts,
duration).  All SQL runs in ``core.sql.SqlSession`` (locked engine, row cap,
time limit, cancel); this class only forwards clicks and pages.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError, WorkspaceBusyError, WorkspaceError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, action, bundle

HISTORY_SIZE = 50


def example_queries(tables: set[str]) -> list[dict[str, str]]:
    """A few starting points, only for tables this workspace has."""
    out = []
    if "predictions" in tables:
        out.append({"title": "Best model per dataset (validation)", "sql": (
            "SELECT dataset_name, model_name, metric, min(val_score) AS best_val, count(*) AS n\n"
            "FROM predictions\nWHERE partition = 'val'\nGROUP BY ALL\nORDER BY dataset_name, best_val")})
        out.append({"title": "Scores with their arrays", "sql": (
            "SELECT p.dataset_name, p.model_name, p.fold_id, p.test_score, a.y_true, a.y_pred\n"
            "FROM predictions p JOIN arrays a USING (prediction_id)\nWHERE p.partition = 'test'\nLIMIT 100")})
        out.append({"title": "Residuals per sample", "sql": (
            "SELECT p.model_name, unnest(a.y_true) AS y_true, unnest(a.y_pred) AS y_pred\n"
            "FROM predictions p JOIN arrays a USING (prediction_id)\n"
            "WHERE p.partition = 'test' AND p.fold_id = 'avg'")})
    if "runs" in tables:
        out.append({"title": "Runs",
                    "sql": "SELECT name, status, created_at, completed_at FROM runs ORDER BY created_at"})
    if not out:
        out.append({"title": "Tables", "sql": "SHOW TABLES"})
    return out


class SqlConsole(WorkspaceWidget):
    """A read-only SQL console: ``display(SqlConsole(path))``.

    Type a SELECT query and press Ctrl/Cmd+Enter (or ``w.run(sql)``).  Tables:
    the metadata store's (``predictions``, ``runs``, ``pipelines``, ``chains``,
    ...) and ``arrays`` (live prediction arrays; join on ``prediction_id``).
    Results are paged (``next_page()``, ``prev_page()``); ``export_result(path)``
    writes the full result, without the row cap, to a Parquet file outside the
    workspace.  Nothing a query does can change the workspace.
    """

    _esm = bundle("sql_console")

    sql = t.Unicode("").tag(sync=True)
    schema: t.List[Any] = t.List().tag(sync=True)
    examples: t.List[Any] = t.List().tag(sync=True)
    history: t.List[Any] = t.List().tag(sync=True)
    page = t.Int(0).tag(sync=True)
    page_size = t.Int(50).tag(sync=True)
    limit = t.Int(10_000).tag(sync=True)
    timeout_s = t.Float(30.0).tag(sync=True)
    export_path = t.Unicode("").tag(sync=True)
    last_export = t.Dict().tag(sync=True)
    warnings: t.List[Any] = t.List().tag(sync=True)
    result_state = t.Unicode("none").tag(sync=True)
    """``none`` (nothing to show or export), ``fresh`` (the result on screen), ``stale`` (a new query runs)."""
    notices: t.List[Any] = t.List().tag(sync=True)
    """What the engine did on its own (restarted after an internal error, a crash or a limit)."""

    def __init__(
        self, workspace: str | pathlib.Path | Workspace, *, sql: str = "", warm_up: bool = True, **kwargs: Any
    ) -> None:
        self._session: Any = None
        self._cursor: Any = None
        self._session_lock = threading.Lock()
        super().__init__(workspace, sql=sql, **kwargs)
        if self.workspace is not None:
            try:
                self.refresh_schema()
            except WorkspaceError as exc:
                self._show_error(exc)
            else:
                if warm_up:
                    # Load the common columns while the user types; the first query then runs at engine speed.
                    session = self._get_session()
                    threading.Thread(target=session.warm_up, name="n4a-sql-warm-up", daemon=True).start()

    # ------------------------------------------------------------- plumbing

    def _get_session(self) -> Any:
        from ..core.sql import SqlSession

        with self._session_lock:
            if self._session is None:
                assert self.workspace is not None
                self._session = SqlSession(self.workspace.path)
            return self._session

    def close(self) -> None:
        """Close the widget and its SQL engine."""
        if self._session is not None:
            self._session.close()
            self._session = None
        super().close()

    @action
    def refresh_schema(self) -> None:
        """Re-read the list of tables and columns (the sidebar)."""
        session = self._get_session()
        tables = session.schema()
        self.schema = [tbl.to_dict() for tbl in tables]
        self.examples = example_queries({tbl.name for tbl in tables})
        self.warnings = list(session.warnings)

    # ----------------------------------------------------------------- twins

    @action
    def run(self, sql: str | None = None) -> None:
        """Run ``sql`` (or the editor's text) in the background; pages follow."""
        if self.busy:
            raise WorkspaceBusyError("A query is already running.", "Wait for it or press Cancel, then run again.")
        text = self.sql if sql is None else str(sql)
        self.sql = text
        session = self._get_session()
        limit, page_size, timeout = int(self.limit), int(self.page_size), float(self.timeout_s)

        if self._cursor is not None:
            self.result_state = "stale"  # dimmed on the page, Export off, until this query ends

        def work(progress: Callable[[float, str], None], cancel: threading.Event) -> Any:
            progress(0.0, "Running query")
            try:
                return session.execute(text, limit=limit, timeout_s=timeout, cancel=cancel, page_size=page_size)
            except Exception as exc:
                from ..jobs import error_to_dict

                self._clear_result()
                self._remember(text, None, error_to_dict(exc))
                raise
            finally:
                self.notices = list(session.notices[-5:])

        def on_result(cursor: Any) -> None:
            self._cursor = cursor
            self.page = 0
            self.report = cursor.summary(0)
            self.result_state = "fresh"
            self._remember(text, self.report, None)
            self._send_page()

        self._run("Query", work, writes=False, on_result=on_result)

    def _clear_result(self) -> None:
        """A failed or cancelled query leaves nothing on screen that could pass for its result."""
        self._cursor = None
        self.report = {}
        self.result_state = "none"
        self.send({"type": "clear"})

    @t.observe("state")
    def _on_state(self, change: dict[str, Any]) -> None:
        if change["new"] == "cancelled":  # the user's own Cancel: neutral, not an error
            self.error = {}
            self.message = "Cancelled"

    def _remember(self, text: str, report: dict[str, Any] | None, error: dict[str, Any] | None) -> None:
        entry: dict[str, Any] = {"sql": text, "ok": error is None}
        if report is not None:
            entry.update(row_count=report["row_count"], truncated=report["truncated"],
                         duration_seconds=report["duration_seconds"])
        if error is not None:
            entry["error"] = str(error.get("message", ""))
        self.history = [entry, *[h for h in self.history if h.get("sql") != text]][:HISTORY_SIZE]

    @action
    def goto_page(self, index: int) -> None:
        """Show page ``index`` (0-based) of the current result."""
        if self._cursor is None:
            raise InvalidArgumentError("There is no result yet.", "Run a query first.")
        index = max(0, min(int(index), self._cursor.page_count - 1))
        self.page = index
        self.report = self._cursor.summary(index)
        self._send_page()

    @action
    def next_page(self) -> None:
        """Show the next page of the current result."""
        self.goto_page(self.page + 1)

    @action
    def prev_page(self) -> None:
        """Show the previous page of the current result."""
        self.goto_page(self.page - 1)

    def page_table(self) -> Any:
        """The page on screen as a pyarrow Table (``None`` before the first result)."""
        return None if self._cursor is None else self._cursor.page(self.page)

    def page_rows(self) -> list[list[Any]]:
        """The page on screen as lists of plain values (for scripts and tests)."""
        return [] if self._cursor is None else self._cursor.page_rows(self.page)

    def result(self) -> Any:
        """The current ``QueryResult`` (page on screen), or ``None``."""
        return None if self._cursor is None else self._cursor.result(self.page)

    @action
    def request_page(self) -> None:
        """Send the page on screen again (the front-end asks when it renders)."""
        self._send_page()

    def _send_page(self) -> None:
        cursor = self._cursor
        if cursor is None:
            return
        payload = cursor.page_ipc(self.page)
        self.send(
            {"type": "page", "page": self.page, "page_count": cursor.page_count, "offset": self.page * cursor.page_size,
             "row_count": cursor.row_count, "sql": cursor.sql},
            buffers=[payload],
        )

    @action
    def export_result(self, path: str | pathlib.Path | None = None, *, overwrite: bool = False) -> None:
        """Write the full result of the current query (no row cap) to Parquet, outside the workspace."""
        from ..core.sql import resolve_export_path

        if self.busy:
            raise WorkspaceBusyError("A job is already running.", "Wait for it or press Cancel.")
        if self._cursor is None or self.result_state != "fresh":
            raise InvalidArgumentError("There is no result to export.", "Run a query first; export writes its result.")
        text = self._cursor.sql
        session = self._get_session()
        assert self.workspace is not None
        dest = str(path) if path not in (None, "") else (self.export_path or None)
        target = resolve_export_path(self.workspace.path, dest, overwrite=overwrite)
        self.export_path = str(target)

        def work(progress: Callable[[float, str], None], cancel: threading.Event) -> Any:
            return session.export(text, target, timeout_s=max(600.0, float(self.timeout_s)), cancel=cancel,
                                  progress=progress, overwrite=overwrite)

        def on_result(report: Any) -> None:
            self.last_export = report.to_dict()

        self._run("Export result", work, writes=False, on_result=on_result)
