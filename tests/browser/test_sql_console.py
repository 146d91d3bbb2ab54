"""SqlConsole in real JupyterLab: type a join, Ctrl+Enter, paged Arrow table, page forward, a refused DELETE."""

from __future__ import annotations

from pathlib import Path

from helpers import tree_hash
from jlab import show_widget

JOIN_SQL = (
    "SELECT p.prediction_id, p.dataset_name, p.partition, p.val_score, a.y_pred "
    "FROM predictions p JOIN arrays a USING (prediction_id) ORDER BY p.prediction_id"
)
PAGE_SIZE = 25


def test_sql_console_join_paging_and_refusal(jupyter_server, page, demo_master: Path, served_copy) -> None:
    from n4a_widgets import Workspace

    ws_rel = served_copy(demo_master, "ws_sql")
    ws = jupyter_server.root / ws_rel
    before = tree_hash(ws)
    expected = Workspace(ws).query(JOIN_SQL, limit=100_000)
    n = expected.row_count
    assert n > PAGE_SIZE and not expected.truncated
    nb, widget = show_widget(page, jupyter_server, "sql.ipynb", [
        f"from n4a_widgets import SqlConsole\nw = SqlConsole({ws_rel!r}, page_size={PAGE_SIZE})\nw",
        "print('STATE', w.state, w.report.get('row_count'), w.page, (w.error or {}).get('type'))",
    ], "n4a-sql-console")
    widget.locator("[data-section=schema] [data-table-name=arrays]").wait_for()

    # Type the join into the editor and run it with Ctrl+Enter.
    editor = widget.locator("textarea.n4a-sql-editor")
    editor.click()
    editor.press_sequentially(JOIN_SQL)
    editor.press("Control+Enter")
    status = widget.locator("[data-section=status]")
    status.filter(has_text=f"{n} rows").wait_for(timeout=120_000)
    rows = widget.locator("table[data-table=results] tbody tr")
    headers = widget.locator("table[data-table=results] thead th").all_inner_texts()
    assert headers == ["#", *expected.columns]
    assert rows.count() == PAGE_SIZE
    first = rows.first.locator("td").all_inner_texts()
    assert first[:4] == ["1", *[str(v) for v in expected.rows[0][:3]]]
    assert widget.locator("[data-section=page]").inner_text() == f"page 1 / {-(-n // PAGE_SIZE)}"

    # Page forward: rows PAGE_SIZE+1 ... arrive as the next Arrow page.
    widget.locator("button[data-action=next_page]").click()
    widget.locator("[data-section=page]").filter(has_text="page 2 /").wait_for()
    rows.first.locator("td").first.filter(has_text=str(PAGE_SIZE + 1)).wait_for()
    second = rows.first.locator("td").all_inner_texts()
    assert second[1:3] == [str(v) for v in expected.rows[PAGE_SIZE][:2]]
    assert "STATE done " + str(n) + " 1 None" in nb.run_python(1)

    # A data-changing statement is refused inline, with the read-only message.
    editor.fill("DELETE FROM predictions")
    editor.press("Control+Enter")
    error = widget.locator(".n4a-error")
    error.filter(has_text="read-only").wait_for()
    assert error.locator("[data-error-type=QueryRejectedError]").count() == 1
    assert "Query not allowed" in error.inner_text() and "QueryRejectedError" not in error.inner_text()
    assert "Traceback" not in nb.output_text(0)
    assert "STATE error" in nb.run_python(1)
    assert Workspace(ws).query("SELECT count(*) FROM predictions").rows[0][0] == len(
        {r[0] for r in expected.rows})
    assert tree_hash(ws) == before
