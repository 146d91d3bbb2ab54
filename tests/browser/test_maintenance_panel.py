"""MaintenancePanel in real JupyterLab + headless Chromium: histogram, preview, confirm, report."""

from __future__ import annotations

from pathlib import Path

import pytest

from jlab import show_widget

pytestmark = pytest.mark.browser


def test_remove_bottom_preview_then_confirm(jupyter_server, page, demo_master: Path, served_copy) -> None:
    from helpers import prediction_ids

    ws_rel = served_copy(demo_master, "ws_maint")
    root = jupyter_server.root / ws_rel
    before = prediction_ids(root)
    nb, widget = show_widget(page, jupyter_server, "maint.ipynb", [
        f"from n4a_widgets import MaintenancePanel\nw = MaintenancePanel({ws_rel!r})\nw",
        "print('WAITED', w.wait(60), w.state, w.last_action, w.report.get('removed'), w.preview == {})",
    ], "n4a-maintenance-panel")

    # Histogram drawn from the workspace; the cut line follows the slider.
    hist = widget.locator("[data-histogram]")
    hist.first.wait_for()
    assert hist.count() == 2  # rmse and balanced_accuracy are ranked separately
    line = widget.locator("[data-cut-line]").first
    slider = widget.locator("input[data-input=fraction]")
    slider.fill("0.3")
    x30 = float(line.get_attribute("x1") or 0)
    assert (
        line.evaluate("el => getComputedStyle(el).display") != "none"
    )  # a 0-wide SVG line: not "visible" to Playwright
    caption = widget.locator("[data-cut-caption]").first
    assert caption.inner_text().startswith("30%")
    slider.fill("0.6")
    assert float(line.get_attribute("x1") or 0) != x30
    slider.fill("0.3")
    slider.dispatch_event("change")

    # Preview: counts per dataset; nothing deleted yet.
    widget.locator("button[data-action=preview_remove_bottom]").click()
    summary = widget.locator("[data-summary=remove-bottom]")
    summary.filter(has_text="Will remove").wait_for()
    rows = widget.locator("[data-table=remove-bottom] tbody tr")
    assert rows.count() == 3
    assert prediction_ids(root) == before

    # Confirm: the previewed plan runs; the report replaces the preview.
    widget.locator("button[data-action=confirm]").click()
    summary.filter(has_text="Removed").wait_for(timeout=60_000)
    out = nb.run_python(1)
    assert "WAITED True done remove_bottom" in out and out.strip().endswith("True")
    removed = int(out.split()[4])
    assert removed > 0 and len(before - prediction_ids(root)) == removed
