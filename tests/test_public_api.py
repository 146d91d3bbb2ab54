"""The public API (names and signatures outside callers rely on), importable from the top-level package."""

from __future__ import annotations

import inspect

import n4a_widgets
from n4a_widgets import Workspace, WorkspaceError

ERRORS = ["WorkspaceBusyError", "QueryRejectedError", "PlanChangedError", "MigrationError", "UnsupportedFormatError"]
WIDGETS = ["StorageHealth", "MigrationWizard", "MaintenancePanel", "ExportPicker", "SqlConsole", "MergeStores"]


def test_errors_are_workspace_errors() -> None:
    for name in ERRORS:
        cls = getattr(n4a_widgets, name)
        assert issubclass(cls, WorkspaceError), name
        err = cls("something went wrong")
        assert err.hint, f"{name} has no default hint telling the user what to do next"


def test_widgets_are_anywidgets() -> None:
    import anywidget

    from n4a_widgets.widgets import _WIDGETS
    from n4a_widgets.widgets.base import bundle

    for name in WIDGETS:
        cls = getattr(n4a_widgets, name)
        assert issubclass(cls, anywidget.AnyWidget), name
        assert cls.__doc__, name
        path = bundle(_WIDGETS[name])
        assert path.exists(), f"{name}: {path} not built (npm run build)"
        assert "render" in path.read_text()


REQUIRED = {
    "status": [], "health": [], "stats": [], "compact": [], "clean_dead_links": [], "remove_bottom": ["fraction"],
    "export": ["dest"], "query": ["sql"], "migrate": [], "merge": ["sources"],
    "history": [], "undo": ["action_id"], "purge_trash": ["older_than_days"],
}
#: The public API: the options and their defaults (keyword-only, after the required arguments).
OPTIONS = {
    "compact": {"dataset_name": None},
    "clean_dead_links": {"dry_run": True, "plan_id": None},
    "remove_bottom": {"metric": "val_score", "partition": "val", "dataset_name": None, "dry_run": True,
                      "plan_id": None},
    "export": {"datasets": None, "partition": None, "model_name": None, "format": "auto"},
    "query": {"limit": 1000, "timeout_s": 30},
    "migrate": {"dry_run": True, "output": None},
    "merge": {"on_conflict": "keep_best", "datasets": None, "dry_run": True, "plan_id": None},
    "history": {"limit": 100},
    "undo": {"dry_run": True, "plan_id": None, "force": False},
    "purge_trash": {"dry_run": True, "plan_id": None},
}
WRITING = ("compact", "clean_dead_links", "remove_bottom", "migrate", "merge", "undo", "purge_trash")


def test_workspace_signatures() -> None:
    for method, required in REQUIRED.items():
        params = inspect.signature(getattr(Workspace, method)).parameters
        positional = [p.name for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
        assert positional == required, (method, positional)
        for name, default in OPTIONS.get(method, {}).items():
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (method, name)
            assert params[name].default == default, (method, name, params[name].default)
    for method in WRITING:
        params = inspect.signature(getattr(Workspace, method)).parameters
        assert params["dry_run"].default is True, method
        assert "force" in params, method
    for method in ("health", "compact", "clean_dead_links", "remove_bottom", "export", "migrate", "merge"):
        params_ = inspect.signature(getattr(Workspace, method)).parameters
        assert "progress" in params_ and "cancel" in params_, method


def test_options_are_keyword_only_at_call_time(tmp_path) -> None:
    import pytest

    ws = Workspace(tmp_path)
    with pytest.raises(TypeError):
        ws.remove_bottom(0.1, "val_score")  # type: ignore[misc]
    with pytest.raises(TypeError):
        ws.query("SELECT 1", 10)  # type: ignore[misc]


def test_fleet_names() -> None:
    """Second-round public names: scan_workspaces and WorkspaceBrowser from the top-level package."""
    import anywidget

    from n4a_widgets import WorkspaceBrowser, scan_workspaces

    assert "scan_workspaces" in n4a_widgets.__all__ and "WorkspaceBrowser" in n4a_widgets.__all__
    params = inspect.signature(scan_workspaces).parameters
    assert list(params)[:4] == ["root", "max_depth", "progress", "cancel"]
    assert params["max_depth"].default == 6
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in ("max_depth", "progress", "cancel"))
    assert issubclass(WorkspaceBrowser, anywidget.AnyWidget) and WorkspaceBrowser.__doc__
    entry_keys = {"path", "storage_mode", "format", "migration_needed", "size_bytes", "total_predictions", "datasets",
                  "last_run_at", "pending_tombstones", "error"}
    from n4a_widgets.core.fleet import FleetEntry

    assert entry_keys <= set(FleetEntry.__dataclass_fields__)
