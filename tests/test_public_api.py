"""The public names of DESIGN.md §3, importable from the top-level package."""

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


def test_workspace_signatures() -> None:
    expected = {
        "status": [],
        "health": [],
        "stats": [],
        "compact": ["dataset_name"],
        "clean_dead_links": ["dry_run", "plan_id"],
        "remove_bottom": ["fraction", "metric", "partition", "dataset_name", "dry_run", "plan_id"],
        "export": ["dest", "datasets", "partition", "model_name", "format"],
        "query": ["sql", "limit", "timeout_s"],
        "migrate": ["dry_run", "output"],
        "merge": ["sources", "on_conflict", "datasets", "dry_run", "plan_id"],
    }
    for method, params in expected.items():
        sig = inspect.signature(getattr(Workspace, method))
        positional = [p.name for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
        assert positional[: len(params)] == params, (method, positional)
    defaults = inspect.signature(Workspace.remove_bottom).parameters
    assert defaults["metric"].default == "val_score" and defaults["partition"].default == "val"
    assert defaults["dry_run"].default is True
    assert inspect.signature(Workspace.merge).parameters["on_conflict"].default == "keep_best"
    assert inspect.signature(Workspace.query).parameters["limit"].default == 1000
    for method in ("health", "compact", "clean_dead_links", "remove_bottom", "export", "migrate", "merge"):
        params_ = inspect.signature(getattr(Workspace, method)).parameters
        assert "progress" in params_ and "cancel" in params_, method


def test_fleet_names() -> None:
    """DESIGN §3, second round: scan_workspaces and WorkspaceBrowser from the top-level package."""
    import anywidget

    from n4a_widgets import WorkspaceBrowser, scan_workspaces

    assert "scan_workspaces" in n4a_widgets.__all__ and "WorkspaceBrowser" in n4a_widgets.__all__
    params = inspect.signature(scan_workspaces).parameters
    assert list(params)[:4] == ["root", "max_depth", "progress", "cancel"]
    assert params["max_depth"].default == 6
    assert issubclass(WorkspaceBrowser, anywidget.AnyWidget) and WorkspaceBrowser.__doc__
    entry_keys = {"path", "storage_mode", "format", "migration_needed", "size_bytes", "total_predictions", "datasets",
                  "last_run_at", "pending_tombstones", "error"}
    from n4a_widgets.core.fleet import FleetEntry

    assert entry_keys <= set(FleetEntry.__dataclass_fields__)
