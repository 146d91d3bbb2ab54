"""SqlConsole widget driven through its Python twins; pages travel as Arrow IPC custom messages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from n4a_widgets.core.errors import InvalidArgumentError
from n4a_widgets.widgets.sql_console import SqlConsole

from helpers import tree_hash


def _console(ws: Path, **kwargs: Any) -> tuple[SqlConsole, list[tuple[dict[str, Any], list[bytes]]]]:
    w = SqlConsole(ws, **kwargs)
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    w.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))  # type: ignore[method-assign]
    return w, sent


def test_schema_examples_and_paged_results(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    w, sent = _console(demo_ws)
    names = {t["name"] for t in w.schema}
    assert {"predictions", "runs", "arrays"} <= names
    assert any("arrays" in e["sql"] for e in w.examples)
    w.page_size = 10
    w.run("SELECT prediction_id, val_score FROM predictions ORDER BY prediction_id")
    assert w.wait(60)
    assert w.state == "done", w.error
    assert "rows" not in w.report  # rows never travel as JSON traits
    assert w.report["row_count"] == 98 and w.report["page_count"] == 10
    content, buffers = sent[-1]
    assert content["type"] == "page" and content["page"] == 0 and len(buffers) == 1
    page0 = pa.ipc.open_stream(buffers[0]).read_all()
    assert page0.num_rows == 10 and page0.column_names == ["prediction_id", "val_score"]
    w.next_page()
    page1 = pa.ipc.open_stream(sent[-1][1][0]).read_all()
    assert sent[-1][0]["page"] == 1
    assert page1.column(0).to_pylist() == [r[0] for r in w.page_rows()]
    assert page1.column(0).to_pylist()[0] > page0.column(0).to_pylist()[-1]
    w.prev_page()
    assert w.page == 0 and w.report["page"] == 0
    w.prev_page()  # clamps at the first page
    assert w.page == 0
    w.goto_page(99)
    assert w.page == 9
    assert w.history[0]["ok"] and w.history[0]["row_count"] == 98
    w.close()
    assert tree_hash(demo_ws) == before


def test_rejected_query_shows_inline_error_and_history(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    w, _ = _console(demo_ws)
    w._on_message(w, {"action": "run", "args": {"sql": "DELETE FROM predictions"}}, [])
    w.wait(30)
    assert w.state == "error"
    assert w.error["type"] == "QueryRejectedError"
    assert w.error["message"].startswith("This console is read-only")
    assert w.history[0]["ok"] is False
    w.close()
    assert tree_hash(demo_ws) == before


def test_cancel_stops_a_running_query(demo_ws: Path) -> None:
    w, _ = _console(demo_ws)
    w.timeout_s = 120
    w.run("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r")
    import time

    time.sleep(0.5)
    assert w.state == "running"
    w.cancel()
    assert w.wait(30)
    assert w.state == "cancelled", (w.state, w.error)
    assert w.error == {} and w.message == "Cancelled"  # the user's own Cancel is not an error
    w.run("SELECT 1 AS one")
    w.wait(30)
    assert w.state == "done" and w.page_rows() == [[1]]
    w.close()


def test_export_result_writes_outside_the_workspace(demo_ws: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    before = tree_hash(demo_ws)
    w, _ = _console(demo_ws)
    w.limit = 5  # the export ignores the row cap
    w.run("SELECT p.prediction_id, a.y_true FROM predictions p JOIN arrays a USING (prediction_id)")
    w.wait(60)
    assert w.report["truncated"]
    dest = tmp_path / "export" / "all.parquet"
    dest.parent.mkdir()
    w.export_result(str(dest))
    assert w.wait(60) and w.state == "done", w.error
    assert pq.read_table(dest).num_rows == 98 == w.last_export["row_count"]
    assert os.listdir(dest.parent) == ["all.parquet"]
    with pytest.raises(InvalidArgumentError):
        w.export_result(str(demo_ws / "inside.parquet"))
    w._on_message(w, {"action": "export_result", "args": {"path": str(demo_ws / "inside.parquet")}}, [])
    assert w.state == "error" and "inside the workspace" in w.error["message"]
    w.close()
    assert tree_hash(demo_ws) == before


def test_bad_path_gives_error_state(tmp_path: Path) -> None:
    w = SqlConsole(tmp_path / "missing")
    assert w.state == "error" and "does not exist" in w.error["message"]


def test_failed_or_cancelled_query_clears_the_previous_result(demo_ws: Path) -> None:
    """A new user must never take the last good result for the answer to a query that failed."""
    import threading
    import time

    w, sent = _console(demo_ws)
    w.run("SELECT model_name FROM predictions LIMIT 3")
    assert w.wait(60) and w.state == "done" and w.result_state == "fresh"
    w.run("SELECT no_such_column FROM predictions")
    assert w.wait(60) and w.state == "error"
    assert w.report == {} and w.result_state == "none" and sent[-1][0] == {"type": "clear"}
    assert "Error" not in w.error["message"]  # no exception class names in what the user reads
    with pytest.raises(InvalidArgumentError, match="no result"):
        w.export_result("/tmp/never.parquet")
    w.run("SELECT model_name FROM predictions LIMIT 3")
    assert w.wait(60) and w.result_state == "fresh"
    # A statement the engine does not interrupt (planning thousands of branches): Cancel still lands fast.
    slow = " UNION ALL ".join(f"SELECT {i}" for i in range(4500))
    w.timeout_s = 120
    w.run(slow)
    assert w.result_state == "stale"
    time.sleep(0.3)
    assert w.state == "running" and w.message in ("Starting", "Running query")
    pressed = time.monotonic()
    w.cancel()
    assert w.wait(30)
    waited = time.monotonic() - pressed
    assert w.state == "cancelled" and w.error == {} and w.report == {} and w.result_state == "none"
    assert waited < 3.0  # the limit under test (cancel grace 0.5 s), with slack for a loaded machine
    assert threading.active_count() < 50
    w.close()
