"""Every widget in the states that carry the most colour (badges, banners,
error boxes, primary and danger buttons, tables), for contrast checks and
screenshots in each front-end.

Each entry is (name, Python lines that leave the widget in ``w``).  The lines
wait for the widget's job before it is displayed, so a screenshot shows the
settled state.  ``prepare`` copies the workspaces they use under a server root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers import LEGACY_FIXTURES

#: Where the browser tests write widget screenshots (.gitignore'd); N4A_SCREENSHOTS overrides it.
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("N4A_SCREENSHOTS") or REPO / "test-results" / "screenshots")

JOIN_SQL = (
    "SELECT p.prediction_id, p.dataset_name, p.partition, p.val_score, a.y_pred "
    "FROM predictions p JOIN arrays a USING (prediction_id) ORDER BY p.prediction_id"
)

GALLERY: list[tuple[str, str]] = [
    ("storage_health", "w = StorageHealth('g_ws'); w.wait(60)"),
    ("storage_health_legacy", "w = StorageHealth('g_legacy'); w.wait(60)"),
    ("storage_health_error", "w = StorageHealth('no/such/workspace')"),
    ("migration_wizard_dry_run", "w = MigrationWizard('g_legacy'); w.dry_run(); w.wait(120)"),
    ("maintenance_panel_preview",
     "w = MaintenancePanel('g_ws'); w.wait(60); w.preview_remove_bottom(0.3); w.wait(60)"),
    ("sql_console_results", f"w = SqlConsole('g_ws', page_size=10); w.run({JOIN_SQL!r}); w.wait(60)"),
    ("sql_console_error", "w = SqlConsole('g_ws'); w.run('DELETE FROM predictions'); w.wait(60)"),
    ("export_picker", "w = ExportPicker('g_ws'); w.wait(60)"),
    ("export_picker_done", "w = ExportPicker('g_ws'); w.wait(60); w.export('g_export.zip'); w.wait(60)"),
    ("merge_stores_preview", "w = MergeStores('g_ws', ['g_src']); w.preview(); w.wait(60)"),
]

IMPORTS = (
    "from n4a_widgets import StorageHealth, MigrationWizard, MaintenancePanel, SqlConsole, ExportPicker, MergeStores"
)


def entries() -> list[tuple[str, str]]:
    """The gallery, plus WorkspaceBrowser once the package has it."""
    import n4a_widgets

    if not hasattr(n4a_widgets, "WorkspaceBrowser"):
        return list(GALLERY)
    return [*GALLERY, ("workspace_browser", "w = WorkspaceBrowser('.'); w.wait(60)")]


def imports() -> str:
    import n4a_widgets

    return IMPORTS + (", WorkspaceBrowser" if hasattr(n4a_widgets, "WorkspaceBrowser") else "")


def prepare(root: Path, demo_master: Path) -> None:
    """Copy the gallery's workspaces under ``root`` (fresh each time)."""
    for name, source in (("g_ws", demo_master), ("g_src", demo_master),
                         ("g_legacy", LEGACY_FIXTURES / "v0_8_0_duckdb_sidecars")):
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
    (root / "g_export.zip").unlink(missing_ok=True)


#: Screenshots written in this pytest session (the terminal summary reports them).
WRITTEN: list[Path] = []


def shot(frontend: str, theme: str, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{frontend}-{theme}-{name}.png"
    WRITTEN.append(path)
    return path


def screenshot(page: object, root: object, path: Path) -> None:
    """Screenshot a widget whole: a widget taller than the page would be cut by
    the notebook's scroll area, so the viewport grows to fit it for the shot."""
    size = page.viewport_size  # type: ignore[attr-defined]
    box = root.bounding_box()  # type: ignore[attr-defined]
    grow = box is not None and size is not None and box["height"] + 250 > size["height"]
    if grow:
        page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 300})  # type: ignore[attr-defined]
    try:
        root.scroll_into_view_if_needed()  # type: ignore[attr-defined]
        root.screenshot(path=str(path))  # type: ignore[attr-defined]
    finally:
        if grow:
            page.set_viewport_size(size)  # type: ignore[attr-defined]
