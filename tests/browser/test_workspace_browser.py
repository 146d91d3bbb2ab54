"""WorkspaceBrowser in real JupyterLab: the scanned table, a bulk migrate (preview -> confirm), open a row below."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import LEGACY_FIXTURES, tree_hash
from jlab import show_widget

pytestmark = pytest.mark.browser


def test_bulk_migrate_from_the_page(jupyter_server, page, small_master: Path, served_copy) -> None:
    served_copy(LEGACY_FIXTURES / "v0_8_11_sqlite", "fleet/old/a")
    served_copy(LEGACY_FIXTURES / "v0_9_4_sqlite", "fleet/old/b")
    served_copy(small_master, "fleet/current/small")
    root = jupyter_server.root / "fleet"
    sources = {p: tree_hash(root / p) for p in ("old/a", "old/b")}
    nb, widget = show_widget(page, jupyter_server, "browser.ipynb", [
        "from n4a_widgets import WorkspaceBrowser\nw = WorkspaceBrowser('fleet')\nw",
        "w.wait(300)\nprint('RESULT', w.state, w.report.get('done'), w.report.get('failed'),"
        " sorted(r['storage_mode'] for r in w.rows))",
    ], "n4a-workspace-browser")

    rows = widget.locator("[data-table=workspaces] tbody tr[data-row]")
    rows.nth(2).wait_for()
    assert rows.count() == 3
    assert widget.locator("[data-total=legacy]").inner_text().startswith("2 need a migration")
    widget.locator("[data-health=healthy]").wait_for()  # filled in after the scan

    widget.locator("button[data-action=preview_migrate]").click()
    preview = widget.locator("[data-table=preview] tbody tr")
    preview.nth(1).wait_for()
    assert widget.locator("[data-table=preview] [data-outcome=planned]").count() == 2
    assert not (root / "old" / "a-migrated").exists()  # a preview writes nothing

    widget.locator("button[data-action=confirm]").click()
    widget.locator("[data-table=result] [data-outcome=done]").nth(1).wait_for(timeout=300_000)
    out = nb.run_python(1)
    assert "RESULT done 2 0 ['legacy', 'legacy', 'migrated', 'migrated', 'migrated']" in out  # sources stay legacy
    assert {p: tree_hash(root / p) for p in sources} == sources  # never in place
    assert rows.count() == 5  # rescanned: the two migrated copies are listed

    # open one row in StorageHealth, below the table, in the same output
    widget.locator("[data-row$='current/small'] button[data-action=open_widget]").first.click()
    nb.cell(0).locator(".jp-OutputArea .n4a-storage-health").wait_for()
