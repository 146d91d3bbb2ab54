"""The same clicks in every front-end (JupyterLab, Notebook 7, marimo).

Each journey takes a Playwright locator of the widget root (shadow roots are
pierced by Playwright's CSS engine) and checks what the page shows and what
the workspace on disk holds, so it needs no kernel-side printing and runs
unchanged where the front-end hides the code (``marimo run``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import prediction_ids

JOIN_SQL = (
    "SELECT p.prediction_id, p.dataset_name, p.partition, p.val_score, a.y_pred "
    "FROM predictions p JOIN arrays a USING (prediction_id) ORDER BY p.prediction_id"
)
PAGE_SIZE = 25


def storage_health(widget: Any, expected: Any) -> None:
    """Badge, dataset rows, a background integrity check and Refresh."""
    widget.locator(".n4a-badge", has_text="Migrated").wait_for(timeout=90_000)
    rows = widget.locator("[data-table=datasets] tbody tr")
    rows.nth(expected.total_datasets - 1).wait_for()
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert names == [d.name for d in expected.datasets]
    assert widget.locator(".n4a-stack-seg").count() >= 3
    integrity = widget.locator("[data-integrity]")
    integrity.filter(has_text="Healthy").wait_for()
    widget.locator("button[data-action=integrity_check]").click()
    integrity.filter(has_text="full check").wait_for(timeout=90_000)
    widget.locator("button[data-action=refresh]").click()
    integrity.filter(has_not_text="full check").wait_for(timeout=90_000)
    assert integrity.inner_text().startswith("Healthy")


def maintenance_preview_confirm(widget: Any, root: Path) -> int:
    """Slider, Preview (nothing deleted), Confirm (exactly the preview's count deleted)."""
    before = prediction_ids(root)
    widget.locator("[data-histogram]").first.wait_for(timeout=90_000)
    slider = widget.locator("input[data-input=fraction]")
    slider.fill("0.3")
    slider.dispatch_event("change")
    widget.locator("[data-cut-caption]").first.filter(has_text="30%").wait_for()
    widget.locator("button[data-action=preview_remove_bottom]").click()
    summary = widget.locator("[data-summary=remove-bottom]")
    summary.filter(has_text="Will remove").wait_for(timeout=90_000)
    will = int(summary.inner_text().split("Will remove", 1)[1].split()[0])
    assert will > 0 and prediction_ids(root) == before
    widget.locator("button[data-action=confirm]").click()
    summary.filter(has_text="Removed").wait_for(timeout=90_000)
    removed = before - prediction_ids(root)
    assert len(removed) == will, (len(removed), will)
    return will


def sql_run_and_page(widget: Any, expected: Any) -> None:
    """Type a join, Ctrl+Enter, an Arrow page of rows, Next page, a refused DELETE."""
    n = expected.row_count
    widget.locator("[data-section=schema] [data-table-name=arrays]").wait_for(timeout=90_000)
    editor = widget.locator("textarea.n4a-sql-editor")
    editor.fill(JOIN_SQL)
    editor.press("Control+Enter")
    widget.locator("[data-section=status]").filter(has_text=f"{n} rows").wait_for(timeout=90_000)
    rows = widget.locator("table[data-table=results] tbody tr")
    rows.nth(PAGE_SIZE - 1).wait_for()
    assert rows.count() == PAGE_SIZE
    headers = widget.locator("table[data-table=results] thead th").all_inner_texts()
    assert headers == ["#", *expected.columns]
    first = rows.first.locator("td").all_inner_texts()
    assert first[:4] == ["1", *[str(v) for v in expected.rows[0][:3]]]
    pages = -(-n // PAGE_SIZE)
    assert widget.locator("[data-section=page]").inner_text() == f"page 1 / {pages}"
    widget.locator("button[data-action=next_page]").click()
    widget.locator("[data-section=page]").filter(has_text="page 2 /").wait_for()
    rows.first.locator("td").first.filter(has_text=str(PAGE_SIZE + 1)).wait_for()
    second = rows.first.locator("td").all_inner_texts()
    assert second[1:3] == [str(v) for v in expected.rows[PAGE_SIZE][:2]]
    editor.fill("DELETE FROM predictions")
    editor.press("Control+Enter")
    widget.locator(".n4a-error").filter(has_text="read-only").wait_for()
