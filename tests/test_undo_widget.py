"""History view of MaintenancePanel and StorageHealth's way to it: the Python twins of the buttons."""

from __future__ import annotations

from pathlib import Path

from n4a_widgets import Workspace
from n4a_widgets.widgets.maintenance_panel import MaintenancePanel
from n4a_widgets.widgets.storage_health import StorageHealth

from helpers import prediction_ids


def test_history_view_undo_with_preview_and_confirm(demo_ws: Path) -> None:
    done = Workspace(demo_ws).remove_bottom(0.3, dry_run=False)
    gone = set(done.prediction_ids)
    panel = MaintenancePanel(demo_ws)
    panel.show_history()
    assert panel.view == "history" and panel.trash_bytes > 0
    row = panel.history[0]
    assert row["operation"] == "remove_bottom" and row["undoable"]
    panel.preview_undo(row["action_id"])
    assert panel.wait()
    assert panel.preview["operation"] == "undo" and panel.preview["report"]["restored"] == len(gone)
    assert not gone & prediction_ids(demo_ws), "the preview changed something"
    panel.confirm()
    assert panel.wait()
    assert panel.state == "done", panel.error
    assert gone <= prediction_ids(demo_ws)
    assert panel.last_action == "undo" and panel.history[0]["operation"] == "undo"
    assert not panel.history[1]["undoable"] and panel.history[1]["undone"]


def test_purge_preview_and_confirm_and_cancel_is_honoured(demo_ws: Path) -> None:
    Workspace(demo_ws).remove_bottom(0.3, dry_run=False)
    panel = MaintenancePanel(demo_ws, view="history")
    panel.preview_purge_trash(0)
    assert panel.wait()
    assert panel.preview["report"]["purged_actions"] == 1
    panel.purge_days = 5  # changing the input drops the preview: a plan only runs with what was previewed
    assert panel.preview == {}
    panel.preview_purge_trash(0)
    assert panel.wait()
    panel.confirm()
    assert panel.wait() and panel.state == "done", panel.error
    assert panel.trash_bytes == 0 and panel.history[1]["purged"]


def test_storage_health_shows_recent_actions_and_opens_history(demo_ws: Path) -> None:
    Workspace(demo_ws).remove_bottom(0.3, dry_run=False)
    health = StorageHealth(demo_ws)
    assert health.wait()
    assert health.recent_actions[0]["operation"] == "remove_bottom"
    assert health.report["trash_bytes"] > 0
    panel = health.open_history()
    assert isinstance(panel, MaintenancePanel) and panel.view == "history"
    assert panel.wait() and panel.history
