"""StorageHealth in real JupyterLab + headless Chromium: badge, rows, buttons, themes."""

from __future__ import annotations

from pathlib import Path

from jlab import open_notebook, show_widget, write_notebook


def _cells(ws_rel: str) -> list[str]:
    return [
        f"from n4a_widgets import StorageHealth\nw = StorageHealth({ws_rel!r})\nw",
        "print('WAITED', w.wait(60), w.state, w.report.get('total_predictions'), w.report.get('deep'))",
    ]


def test_storage_health_in_jupyterlab(jupyter_server, page, demo_master: Path, served_copy) -> None:
    from n4a_widgets import Workspace

    ws_rel = served_copy(demo_master, "ws_health")
    expected = Workspace(jupyter_server.root / ws_rel).health()
    nb, widget = show_widget(page, jupyter_server, "health.ipynb", _cells(ws_rel), "n4a-storage-health")
    assert "WAITED True done" in nb.run_python(1)

    assert widget.locator(".n4a-badge").first.inner_text() == "Migrated"
    rows = widget.locator("[data-table=datasets] tbody tr")
    rows.first.wait_for()
    assert rows.count() == expected.total_datasets == 3
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert names == [d.name for d in expected.datasets]
    tablets = rows.nth(names.index("tablets")).inner_text()
    assert "4" in tablets.split("\t")[-1]  # pending deletes column
    assert widget.locator("[data-integrity]").inner_text().startswith("Healthy")
    assert widget.locator(".n4a-stack-seg").count() >= 3

    # Run integrity check: a background job; the page shows the full-check result.
    widget.locator("button[data-action=integrity_check]").click()
    integrity = widget.locator("[data-integrity]")
    integrity.filter(has_text="full check").wait_for()
    assert "deep True" not in nb.output_text(1)  # the earlier print is unchanged
    # Refresh goes back to the quick check.
    widget.locator("button[data-action=refresh]").click()
    page.wait_for_timeout(200)
    integrity.filter(has_not_text="full check").wait_for()
    assert integrity.inner_text() == "Healthy"
    assert f"WAITED True done {expected.total_predictions} False" in nb.run_python(1)


def test_storage_health_shows_problems_and_dark_theme(jupyter_server, page, demo_master: Path, served_copy) -> None:
    from n4a_widgets.core.arrays_readonly import parquet_path_for

    ws_rel = served_copy(demo_master, "ws_broken")
    broken = parquet_path_for(jupyter_server.root / ws_rel, "tablets")
    broken.write_bytes(broken.read_bytes()[:100])
    jupyter_server.set_theme("JupyterLab Dark")
    try:
        nb, widget = show_widget(page, jupyter_server, "broken.ipynb", _cells(ws_rel), "n4a-storage-health")
        nb.run_python(1)
        line = widget.locator("[data-integrity]").inner_text()
        assert "tablets.parquet" in line and "corrupt" in line
        # Dark theme: the widget's text colour follows JupyterLab's variables (light text).
        color = widget.evaluate("el => getComputedStyle(el).color")
        rgb = [int(x) for x in color[color.index("(") + 1 : color.index(")")].split(",")[:3]]
        assert sum(rgb) / 3 > 150, color
    finally:
        jupyter_server.set_theme("JupyterLab Light")


def test_bad_path_shows_error_area(jupyter_server, page) -> None:
    write_notebook(jupyter_server.root / "bad.ipynb", [
        "from n4a_widgets import StorageHealth\nStorageHealth('no/such/workspace')",
    ])
    nb = open_notebook(page, jupyter_server.base_url, "bad.ipynb")
    nb.run_cell(0)
    err = nb.widget("n4a-storage-health").locator(".n4a-error")
    err.wait_for(state="visible")
    assert "does not exist" in err.inner_text()
    assert "Traceback" not in nb.output_text(0)
