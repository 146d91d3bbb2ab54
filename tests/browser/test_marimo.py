"""The widgets in marimo (``mo.ui.anywidget(w)``, served by ``marimo run``):
the JupyterLab clicks (StorageHealth, MaintenancePanel preview -> confirm,
SqlConsole run and page: custom messages and Arrow buffers both ways), then
every gallery widget in light and dark with contrast measured and screenshots."""

from __future__ import annotations

from pathlib import Path

import gallery
import journeys
from contrast import failures, measure, summary
from marimo_app import free_port, marimo_run, write_app

JOURNEY = ["storage_health", "maintenance_panel", "sql_console"]


def test_widgets_in_marimo(browser, demo_master: Path, tmp_path: Path) -> None:
    import shutil

    from n4a_widgets import Workspace

    root = tmp_path / "marimo_root"
    root.mkdir()
    for name in ("m_health", "m_maint", "m_sql"):
        shutil.copytree(demo_master, root / name)
    gallery.prepare(root, demo_master)
    entries = gallery.entries()
    cells = [
        "from n4a_widgets import StorageHealth\nw = StorageHealth('m_health')",
        "from n4a_widgets import MaintenancePanel\nw = MaintenancePanel('m_maint')",
        f"from n4a_widgets import SqlConsole\nw = SqlConsole('m_sql', page_size={journeys.PAGE_SIZE})",
    ] + [f"{gallery.imports()}\n{code}" for _, code in entries]
    app = write_app(root / "widgets_app.py", cells)
    names = JOURNEY + [name for name, _ in entries]

    with marimo_run(app, free_port(), tmp_path / "home") as base:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="light")
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base, wait_until="domcontentloaded")
            widgets = page.locator(".n4a-widget")
            widgets.nth(len(names) - 1).wait_for(state="visible", timeout=180_000)
            assert widgets.count() == len(names)
            roots = {name: widgets.nth(i) for i, name in enumerate(names)}

            journeys.storage_health(roots["storage_health"], Workspace(root / "m_health").health())
            journeys.maintenance_preview_confirm(roots["maintenance_panel"], root / "m_maint")
            expected = Workspace(root / "m_sql").query(journeys.JOIN_SQL, limit=100_000)
            journeys.sql_run_and_page(roots["sql_console"], expected)

            bad: list[str] = []
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                page.wait_for_function("s => getComputedStyle(document.body).colorScheme === s", arg=scheme)
                page.wait_for_timeout(300)
                for name, el in roots.items():
                    el.scroll_into_view_if_needed()
                    measures = measure(el)
                    print(f"[contrast] marimo {scheme:5} {name:28} {summary(measures)}")
                    bad += [f"marimo {scheme} · {name}: {m}" for m in failures(measures)]
                    gallery.screenshot(page, el, gallery.shot("marimo", scheme, name))
            assert not errors, errors
            assert not bad, "\n".join(bad)
        finally:
            context.close()
