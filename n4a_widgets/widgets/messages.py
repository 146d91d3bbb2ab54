"""From an error to the words a widget shows: a title, the message, a hint in widget words.

Core errors speak API ("pass overwrite=True (--overwrite)", "retry with
force=True") because scripts and the CLI read them.  A person looking at a
widget has checkboxes and buttons instead, and no use for a class name, so
this one mapping rewrites both.  The ``type`` key stays (tests and runbooks
branch on it); the front-end shows ``title``, never ``type``.
"""

from __future__ import annotations

import re
from typing import Any

from ..core import errors as E

TITLES: dict[type[BaseException], str] = {
    E.OperationCancelledError: "Cancelled",
    E.WorkspaceBusyError: "The workspace is busy",
    E.PlanChangedError: "The workspace changed since the preview",
    E.QueryRejectedError: "Query not allowed",
    E.QueryTimeoutError: "The query took too long",
    E.MigrationError: "The migration did not complete",
    E.UnsupportedFormatError: "This format needs a migration first",
    E.NotAWorkspaceError: "Not a nirs4all workspace",
    E.CorruptStoreError: "A file cannot be read",
    E.InvalidArgumentError: "Cannot do that",
    E.WorkspaceError: "Cannot do that",
}

_GENERIC = [
    (re.compile(r",? ?(or )?pass overwrite=True(?: \(--overwrite\))?"), r", \1tick Overwrite"),
    (re.compile(r"retry with force=True(?: \(CLI: --force\))?"), "run it again with Force (in Python: force=True)"),
    (re.compile(r"\s*\(or `python -m n4a_widgets migrate`\)"), ""),
    (re.compile(r"\(or pass output= on another disk\)"), "(or choose an output folder on another disk)"),
]

# Per widget: phrases whose widget wording differs from the generic one.
_PER_WIDGET: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "MigrationWizard": [(re.compile(r"Open the workspace with MigrationWizard first\."),
                         "Use the migration below first.")],
    "SqlConsole": [(re.compile(r", tick Overwrite"), ", or choose another file name")],
    "MergeStores": [(re.compile(r"Pass None to merge every dataset\."), "Untick the dataset filter to merge all.")],
}


def widget_hint(hint: str, widget: str = "") -> str:
    """``hint`` in the words of ``widget``'s controls."""
    for pattern, repl in [*_PER_WIDGET.get(widget, []), *_GENERIC]:
        hint = pattern.sub(repl, hint)
    return hint.replace(", , ", ", ").replace(". , ", ", ").strip()


def title_for(exc: BaseException) -> str:
    for klass in type(exc).__mro__:
        if klass in TITLES:
            return TITLES[klass]
    return "Something went wrong"


def user_error(exc: BaseException, widget: str = "") -> dict[str, Any]:
    """The ``error`` trait for ``exc``: type (for code), title, message and hint (for people)."""
    if isinstance(exc, E.WorkspaceError):
        return {"type": type(exc).__name__, "title": title_for(exc), "message": exc.message,
                "hint": widget_hint(exc.hint or "", widget)}
    return {
        "type": type(exc).__name__,
        "title": "Something went wrong",
        "message": str(exc) or "An unexpected error occurred.",
        "hint": "This looks like a bug; the details are in the kernel log.",
    }
