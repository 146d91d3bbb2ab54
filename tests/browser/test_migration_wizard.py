"""MigrationWizard happy path in real JupyterLab: dry run, start, verified result, backup kept."""

from __future__ import annotations

from helpers import LEGACY_FIXTURES, tree_hash
from jlab import show_widget


def test_migration_wizard_dry_run_then_migrate(jupyter_server, page, served_copy) -> None:
    ws_rel = served_copy(LEGACY_FIXTURES / "v0_8_0_duckdb_sidecars", "legacy_ws")
    source_hash = tree_hash(jupyter_server.root / ws_rel)
    nb, widget = show_widget(page, jupyter_server, "migrate.ipynb", [
        f"from n4a_widgets import MigrationWizard, Workspace\nw = MigrationWizard({ws_rel!r})\nw",
        "w.wait()\nr = w.report\nprint('RESULT', w.state, Workspace(" + repr(ws_rel) + ").status().storage_mode,"
        " r.get('verification_passed'), r.get('backup_path'))",
    ], "n4a-migration-wizard")
    assert widget.locator(".n4a-badge").first.inner_text() == "Legacy"
    assert widget.locator("[data-banner]").is_visible()

    widget.locator("[data-buttons=main] button[data-action=dry_run]").click()
    plan = widget.locator("[data-section=plan]")
    plan.wait_for(state="visible")
    rows = plan.locator("[data-table=plan-datasets] tbody tr")
    assert rows.count() == 3
    assert "legacy-" in widget.locator("[data-note=backup]").inner_text()
    # a dry run writes nothing
    assert tree_hash(jupyter_server.root / ws_rel) == source_hash

    widget.locator("[data-buttons=main] button[data-action=start]").click()
    widget.locator("[data-verification=passed]").wait_for(timeout=180_000)
    widget.locator(".n4a-badge", has_text="Migrated").wait_for()
    out = nb.run_python(1)
    assert "RESULT done migrated True" in out
    backup = out.strip().split()[-1]
    # the original is kept, byte for byte, as the backup
    assert tree_hash(jupyter_server.root / backup) == source_hash
