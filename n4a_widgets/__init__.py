"""n4a_widgets: notebook widgets to see, repair, migrate, prune, export, query
and merge nirs4all workspaces.

``import n4a_widgets`` is fast: nirs4all, duckdb, pyarrow and the widget
classes load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core.errors import (
    CorruptStoreError,
    InvalidArgumentError,
    MigrationError,
    NotAWorkspaceError,
    OperationCancelledError,
    PlanChangedError,
    QueryRejectedError,
    QueryTimeoutError,
    UnsupportedFormatError,
    WorkspaceBusyError,
    WorkspaceError,
)
from .core.workspace import Workspace

__version__ = "0.1.0"

_WIDGETS = ("StorageHealth", "MaintenancePanel", "MigrationWizard", "ExportPicker", "SqlConsole", "MergeStores")

__all__ = [
    "CorruptStoreError",
    "InvalidArgumentError",
    "MigrationError",
    "NotAWorkspaceError",
    "OperationCancelledError",
    "PlanChangedError",
    "QueryRejectedError",
    "QueryTimeoutError",
    "UnsupportedFormatError",
    "Workspace",
    "WorkspaceBusyError",
    "WorkspaceError",
    *_WIDGETS,
]


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module(".widgets", __name__), name)
    raise AttributeError(f"module 'n4a_widgets' has no attribute {name!r}")
