"""The widgets in Notebook 7 (the ``notebook`` package's page, served by the
same Jupyter server as JupyterLab at /notebooks/...): the JupyterLab clicks,
contrast in Light and Dark, and screenshots."""

from __future__ import annotations

from pathlib import Path

import gallery
import journeys
from contrast import failures, measure, summary
from jlab import THEMES, NotebookPage, switch_theme, write_notebook


def open_notebook7(page, base_url: str, relpath: str) -> NotebookPage:
    page.goto(f"{base_url}notebooks/{relpath}", wait_until="domcontentloaded")
    page.wait_for_selector("#main-panel .jp-NotebookPanel .jp-Cell", timeout=120_000)
    assert page.evaluate("() => window.jupyterapp && window.jupyterapp.name") == "Jupyter Notebook"
    nb = NotebookPage(page)
    nb.wait_kernel_idle()
    return nb


def test_widgets_in_notebook7(jupyter_server, page, demo_master: Path, served_copy) -> None:
    from n4a_widgets import Workspace

    health_rel = served_copy(demo_master, "nb7_health")
    maint_rel = served_copy(demo_master, "nb7_maint")
    sql_rel = served_copy(demo_master, "nb7_sql")
    write_notebook(jupyter_server.root / "nb7.ipynb", [
        f"from n4a_widgets import StorageHealth\nStorageHealth({health_rel!r})",
        f"from n4a_widgets import MaintenancePanel\nMaintenancePanel({maint_rel!r})",
        f"from n4a_widgets import SqlConsole\nSqlConsole({sql_rel!r}, page_size={journeys.PAGE_SIZE})",
    ])
    nb = open_notebook7(page, jupyter_server.base_url, "nb7.ipynb")
    roots = {}
    for i, name in enumerate(["storage_health", "maintenance_panel", "sql_console"]):
        nb.run_cell(i)
        roots[name] = nb.cell(i).locator(".jp-OutputArea .n4a-widget").first
        roots[name].wait_for(state="visible")

    journeys.storage_health(roots["storage_health"], Workspace(jupyter_server.root / health_rel).health())
    journeys.maintenance_preview_confirm(roots["maintenance_panel"], jupyter_server.root / maint_rel)
    expected = Workspace(jupyter_server.root / sql_rel).query(journeys.JOIN_SQL, limit=100_000)
    journeys.sql_run_and_page(roots["sql_console"], expected)
    assert "Traceback" not in nb.panel.inner_text()

    bad: list[str] = []
    try:
        for key, theme in THEMES.items():
            switch_theme(page, theme)
            for name, root in roots.items():
                root.scroll_into_view_if_needed()
                measures = measure(root)
                print(f"[contrast] notebook7 {key:5} {name:20} {summary(measures)}")
                bad += [f"{theme} · {name}: {m}" for m in failures(measures)]
                gallery.screenshot(page, root, gallery.shot("notebook7", key, name))
    finally:
        jupyter_server.set_theme("JupyterLab Light")
    assert not bad, "\n".join(bad)
