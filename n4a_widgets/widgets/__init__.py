"""anywidget front-ends; each imports its core module only when used."""

from __future__ import annotations

import importlib
from typing import Any

_WIDGETS = {
    "StorageHealth": "storage_health",
    "MaintenancePanel": "maintenance_panel",
    "MigrationWizard": "migration_wizard",
    "ExportPicker": "export_picker",
    "SqlConsole": "sql_console",
    "MergeStores": "merge_stores",
    "WorkspaceBrowser": "workspace_browser",
}

__all__ = sorted(_WIDGETS)


def __getattr__(name: str) -> Any:
    module = _WIDGETS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
