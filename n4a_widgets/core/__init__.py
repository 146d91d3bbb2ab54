"""Storage logic around nirs4all, free of any Jupyter import."""

from .errors import (
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
from .workspace import Workspace, as_workspace, scan_workspaces

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
    "as_workspace",
    "scan_workspaces",
]
