"""Issue 16's visual defects, each walked in real JupyterLab + headless Chromium as a user meets it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers import LEGACY_FIXTURES
from jlab import open_notebook, show_widget, write_notebook

pytestmark = pytest.mark.browser


def test_download_link_is_built_from_the_server_root(jupyter_server, page, demo_master: Path, served_copy,
                                                     tmp_path: Path) -> None:
    """The server root is above the notebook's folder (the common case): the link must include it."""
    served_copy(demo_master, "ws_link")
    (jupyter_server.root / "notebooks").mkdir(exist_ok=True)
    out = jupyter_server.root / "notebooks" / "tablets.parquet"
    out.unlink(missing_ok=True)
    outside = tmp_path / "elsewhere.parquet"
    nb, widget = show_widget(page, jupyter_server, "notebooks/link.ipynb", [
        "from n4a_widgets import ExportPicker\nw = ExportPicker('../ws_link')\nw",
        "w.wait(60); w.select(['tablets']); w.export(); w.wait(60)\nprint('EXPORTED', w.state, w.report['dest'])",
        f"w.export({str(outside)!r}); w.wait(60)\nprint('EXPORTED', w.state)",
    ], "n4a-export-picker")
    assert "EXPORTED done" in nb.run_python(1)
    link = widget.locator("a[data-link=download]")
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href.endswith("files/notebooks/tablets.parquet"), href  # was files/tablets.parquet: a 404
    assert "n4a-btn" in (link.get_attribute("class") or "")  # a button, not bare text
    response = page.request.get(jupyter_server.base_url.rstrip("/") + href)
    assert response.ok, response.status
    assert response.body() == out.read_bytes()  # the very file that was exported

    # Outside the server root no link can work: say why instead.
    assert "EXPORTED done" in nb.run_python(2)
    note = widget.locator("[data-note=no-link]")
    note.wait_for()
    assert "outside the folder this Jupyter server shares" in note.inner_text()
    assert widget.locator("a[data-link=download]").count() == 0


def test_kernel_restart_mid_job_is_detected(jupyter_server, page, demo_master: Path, served_copy) -> None:
    ws_rel = served_copy(demo_master, "ws_restart")
    nb, widget = show_widget(page, jupyter_server, "restart.ipynb", [
        f"from n4a_widgets import StorageHealth\nw = StorageHealth({ws_rel!r})\nw",
        "import time\nw.wait(60)\n"
        "job = w._run('Convert', lambda p, c: [(p(i / 3000, 'Converting…'), time.sleep(0.1)) for i in range(3000)]"
        ", writes=False)",
    ], "n4a-storage-health")
    nb.run_cell(1)
    label = widget.locator(".n4a-progress-label")
    label.filter(has_text="Converting").wait_for()
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    lost = widget.locator("[data-kernel-lost]")
    lost.wait_for(timeout=60_000)
    assert "The kernel restarted; this job's state is lost — run the cell again" in lost.inner_text()
    assert widget.locator(".n4a-progress").evaluate("el => getComputedStyle(el).display") == "none"
    frozen = label.evaluate("el => el.textContent")
    time.sleep(1.5)  # the label used to keep counting every 500 ms
    assert label.evaluate("el => el.textContent") == frozen
    buttons = widget.locator("button")
    assert buttons.count() > 0
    assert all(buttons.nth(i).is_disabled() for i in range(buttons.count()))  # Cancel too: it cannot arrive


def test_first_paint_never_shows_an_empty_workspace(jupyter_server, page, demo_master: Path, served_copy) -> None:
    ws_rel = served_copy(demo_master, "ws_paint")
    write_notebook(jupyter_server.root / "paint.ipynb", [
        f"from n4a_widgets import StorageHealth\nw = StorageHealth({ws_rel!r})\nw",
        f"from n4a_widgets import MaintenancePanel\nm = MaintenancePanel({ws_rel!r})\nm",
    ])
    nb = open_notebook(page, jupyter_server.base_url, "paint.ipynb")
    # Record every text the widgets ever show, from before the cells run.
    page.evaluate("""() => {
      window.__n4aSeen = [];
      const record = () => {
        for (const el of document.querySelectorAll('.n4a-storage-health, .n4a-maintenance-panel')) {
          window.__n4aSeen.push(el.textContent);
        }
      };
      new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    nb.run_cell(0)
    widget = nb.widget("n4a-storage-health")
    widget.locator("[data-table=datasets] tbody tr").first.wait_for(timeout=60_000)
    nb.run_cell(1)
    panel = nb.widget("n4a-maintenance-panel", cell=1)
    panel.locator("[data-histogram]").first.wait_for(timeout=60_000)
    seen = page.evaluate("() => window.__n4aSeen")
    health_texts = [s for s in seen if "Workspace storage" in s]
    assert any("Loading workspace…" in s for s in seen)
    assert not any("No datasets yet" in s or "Datasets (0)" in s for s in health_texts)


def test_migration_with_output_folder_ends_clean(jupyter_server, page, served_copy) -> None:
    ws_rel = served_copy(LEGACY_FIXTURES / "v0_9_4_sqlite", "legacy_out")
    out_rel = "legacy_out_migrated"
    target = jupyter_server.root / out_rel
    if target.exists():
        import shutil

        shutil.rmtree(target)
    _nb, widget = show_widget(page, jupyter_server, "migrate_out.ipynb", [
        f"from n4a_widgets import MigrationWizard\nw = MigrationWizard({ws_rel!r}, output={out_rel!r})\nw",
    ], "n4a-migration-wizard")
    start = widget.locator("[data-buttons=main] button[data-action=start]")
    assert start.is_disabled()  # no preview yet: Start cannot rename or write anything
    widget.locator("[data-buttons=main] button[data-action=dry_run]").click()
    widget.locator("[data-section=plan]").wait_for()
    assert start.is_enabled()
    start.click()
    widget.locator("[data-verification=passed]").wait_for(timeout=180_000)
    # The source is still legacy (it stays in place) but nothing invites a second start.
    assert not widget.locator("[data-banner]").is_visible()
    assert not widget.locator("[data-buttons=main]").is_visible()
    assert not widget.locator("input[data-input=output]").is_visible()
    assert not list((jupyter_server.root).glob(".*.n4a-migration.lock"))
    widget.locator("button[data-action=open_storage_health]").click()
    health = widget.locator("[data-section=health] .n4a-storage-health")
    health.locator(".n4a-badge", has_text="Migrated").wait_for(timeout=60_000)
    health.locator("[data-table=datasets] tbody tr").first.wait_for(timeout=60_000)
    assert out_rel in health.locator(".n4a-path").inner_text()


def test_maintenance_panel_charts_slider_and_confirm(jupyter_server, page, demo_master: Path, served_copy) -> None:
    ws_rel = served_copy(demo_master, "ws_maint_keys")
    nb, widget = show_widget(page, jupyter_server, "maint_keys.ipynb", [
        f"from n4a_widgets import MaintenancePanel\nw = MaintenancePanel({ws_rel!r})\nw",
        "print('FRACTION', w.fraction)",
    ], "n4a-maintenance-panel")
    charts = widget.locator("[data-histogram]")
    charts.first.wait_for()
    assert charts.count() == 2
    for i in range(2):
        assert charts.nth(i).locator("[data-axis=x]").count() == 1
        assert len(charts.nth(i).locator("[data-tick=x]").all_inner_texts()) == 3
    a, b = charts.nth(0).bounding_box(), charts.nth(1).bounding_box()
    assert a and b
    gap = max(b["x"] - (a["x"] + a["width"]), b["y"] - (a["y"] + a["height"]))
    assert gap >= 8, (a, b)  # the charts no longer touch

    slider = widget.locator("input[data-input=fraction]")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert widget.locator("[data-cut-caption]").first.inner_text().startswith("15%")
    assert "FRACTION 0.15" in nb.run_python(1)

    slider.focus()  # back to 0 %: nothing to remove
    page.keyboard.press("Home")
    assert "FRACTION 0.0" in nb.run_python(1)
    widget.locator("button[data-action=preview_remove_bottom]").click()
    confirm = widget.locator("[data-result=remove-bottom] button[data-action=confirm]")
    confirm.wait_for()
    assert "danger" not in (confirm.get_attribute("class") or "")
    assert "nothing to remove" in confirm.inner_text()
