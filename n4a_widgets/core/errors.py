"""Errors raised by n4a_widgets.

Every error carries a ``hint`` telling the user what to do next, because the
widgets show these messages to people who cannot read a traceback.
"""

from __future__ import annotations

from typing import Any


class WorkspaceError(Exception):
    """Base class: something about the workspace or the request is wrong."""

    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(f"{message} {self.hint}".strip() if self.hint else message)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form shown by widgets (type, message, hint)."""
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class NotAWorkspaceError(WorkspaceError):
    """The folder holds no nirs4all store and is not empty."""

    default_hint = (
        "Pass the folder you gave nirs4all as workspace_path (it contains store.sqlite), "
        "or an empty folder to start a new workspace."
    )


class CorruptStoreError(WorkspaceError):
    """The metadata store or an array file cannot be read."""

    default_hint = (
        "Restore the file from a backup, or run the integrity check to see what is readable. "
        "Nothing was changed."
    )


class WorkspaceBusyError(WorkspaceError):
    """Another job or a nirs4all run is writing to this workspace."""

    default_hint = "Wait for the other job or run to finish, then try again."


class QueryRejectedError(WorkspaceError):
    """A SQL statement was refused because the console is read-only."""

    default_hint = "Only read-only SELECT queries over the workspace tables are allowed."


class PlanChangedError(WorkspaceError):
    """The workspace changed between the dry run and the execution."""

    default_hint = "Run the preview (dry run) again and confirm the new plan."


class MigrationError(WorkspaceError):
    """A migration could not be completed; the source is left untouched."""

    default_hint = "Your original workspace is untouched. Fix the cause and run the migration again."


class UnsupportedFormatError(WorkspaceError):
    """The workspace format is not supported by this operation."""

    default_hint = "Open the workspace with MigrationWizard (or `python -m n4a_widgets migrate`) first."


class InvalidArgumentError(WorkspaceError, ValueError):
    """An argument is out of range or names something that does not exist."""

    default_hint = ""


class OperationCancelledError(WorkspaceError):
    """The user cancelled a running job."""

    default_hint = "Nothing more was done after the cancel; the workspace is consistent."


class QueryTimeoutError(WorkspaceError):
    """A SQL query ran longer than its time limit and was stopped."""

    default_hint = "Add a WHERE clause or a LIMIT, or raise the time limit (timeout_s). Nothing was changed."
