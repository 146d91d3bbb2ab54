"""The workspace's history of write actions: ``ws.history()``.

Kept inside the workspace (``.n4a_history.jsonl``) so it travels with it, as
an append-only log of small JSON events, each written with ``O_APPEND`` and
``fsync``: ``begin`` (before the action changes anything), ``end`` (outcome
``done`` / ``failed`` / ``cancelled`` with counts), ``undone`` and ``purged``.
A crash can at worst leave a torn last line, which the reader skips; an action
whose ``begin`` has no ``end`` is *interrupted*: ``run_write`` finishes its
record (``recover``) the next time anything writes to the workspace, saying
what was committed, and the action stays undoable for what it did.

Times are UTC (ISO 8601); the CLI and widgets show them in local time.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import layout
from .reports import Report

DONE, FAILED, CANCELLED, RUNNING = "done", "failed", "cancelled", "running"
#: Operations whose deletes/additions ``undo`` can take back (from the trash and the recorded ids).
UNDOABLE = frozenset({"remove_bottom", "clean_dead_links", "merge", "undo", "migrate"})


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_local(ts: str | None) -> str:
    """A recorded UTC time as local time (for people)."""
    if not ts:
        return ""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts


@dataclass(frozen=True)
class ActionRecord(Report):
    """One write action run on the workspace (newest first in ``ws.history()``)."""

    action_id: str
    operation: str
    started_at: str
    finished_at: str | None
    outcome: str
    """``done``, ``failed``, ``cancelled``, or ``running`` while it runs."""
    parameters: dict[str, Any]
    plan_id: str | None
    counts: dict[str, int]
    undoable: bool
    undone: bool
    user: str
    host: str
    pid: int
    bytes: int
    message: str
    undone_by: str | None
    """The undo action that took this one back."""
    undoes: str | None
    """For an undo: the action it took back."""
    purged: bool
    interrupted: bool
    """The process stopped before recording the end (kill, crash, power loss)."""


def history_path(root: Path) -> Path:
    return root / layout.HISTORY_FILE


def append(root: Path, event: dict[str, Any]) -> None:
    """Append one event durably (one line, ``O_APPEND`` + ``fsync``)."""
    line = (json.dumps(event, default=str, separators=(",", ":")) + "\n").encode()
    fd = os.open(history_path(root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_events(root: Path) -> list[dict[str, Any]]:
    path = history_path(root)
    if not path.exists():
        return []
    events = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                if isinstance(event, dict) and "action_id" in event:
                    events.append(event)
    return events


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fold(events: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    actions: dict[str, dict[str, Any]] = {}
    for ev in events:
        kind, aid = ev.get("event"), ev["action_id"]
        if kind == "begin":
            actions[aid] = {**ev, "outcome": RUNNING, "undone": False, "purged": False, "undone_by": None}
        elif aid in actions:
            a = actions[aid]
            if kind == "end":
                a.update({k: v for k, v in ev.items() if k != "event"})
            elif kind == "undone":
                a["undone"], a["undone_by"] = True, ev.get("by")
            elif kind == "redone":  # the undo that took it back was itself undone
                a["undone"], a["undone_by"] = False, None
            elif kind == "purged":
                a["purged"] = True
    return actions


def _record(a: dict[str, Any], root: Path) -> ActionRecord:
    from .trash import read_ids

    outcome = str(a.get("outcome", RUNNING))
    interrupted = bool(a.get("interrupted", False))
    host = str(a.get("host", ""))
    if outcome == RUNNING and host == socket.gethostname() and not _pid_alive(int(a.get("pid", 0))):
        outcome, interrupted = FAILED, True  # finished for good by the next write (recover)
    counts = {k: int(v) for k, v in dict(a.get("counts") or {}).items()}
    undoable = False
    if outcome != RUNNING and a["operation"] in UNDOABLE and not a["undone"] and not a["purged"]:
        if a["operation"] == "migrate":
            undoable = bool((a.get("parameters") or {}).get("backup_path")) and outcome == DONE
        else:
            ids = read_ids(root, a["action_id"])
            undoable = ids is not None and bool(ids["removed"] or ids["added"])
    return ActionRecord(
        action_id=a["action_id"],
        operation=a["operation"],
        started_at=a.get("started_at", ""),
        finished_at=a.get("finished_at"),
        outcome=outcome,
        parameters=dict(a.get("parameters") or {}),
        plan_id=a.get("plan_id"),
        counts=counts,
        undoable=undoable,
        undone=bool(a["undone"]),
        user=str(a.get("user", "")),
        host=host,
        pid=int(a.get("pid", 0)),
        bytes=int(a.get("bytes", 0) or 0),
        message=str(a.get("message", "")),
        undone_by=a.get("undone_by"),
        undoes=a.get("undoes"),
        purged=bool(a["purged"]),
        interrupted=interrupted,
    )


def history(root: Path, *, limit: int = 100) -> tuple[ActionRecord, ...]:
    """The recorded actions, newest first (read-only)."""
    actions = list(_fold(read_events(root)).values())
    actions.reverse()
    if limit is not None and limit >= 0:
        actions = actions[:limit]
    return tuple(_record(a, root) for a in actions)


def find(root: Path, action_id: str) -> ActionRecord | None:
    a = _fold(read_events(root)).get(action_id)
    return None if a is None else _record(a, root)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else ""


def begin(
    root: Path,
    action_id: str,
    operation: str,
    *,
    parameters: dict[str, Any],
    plan_id: str | None,
    undoes: str | None = None,
) -> None:
    append(root, {
        "event": "begin", "action_id": action_id, "operation": operation, "started_at": utc_now(),
        "parameters": parameters, "plan_id": plan_id, "user": _user(), "host": socket.gethostname(),
        "pid": os.getpid(), "undoes": undoes,
    })


def finish(
    root: Path,
    action_id: str,
    outcome: str,
    *,
    counts: dict[str, int],
    nbytes: int = 0,
    message: str = "",
    interrupted: bool = False,
    parameters: dict[str, Any] | None = None,
) -> None:
    event: dict[str, Any] = {
        "event": "end", "action_id": action_id, "finished_at": utc_now(), "outcome": outcome, "counts": counts,
        "bytes": nbytes, "message": message, "interrupted": interrupted,
    }
    if parameters is not None:
        event["parameters"] = parameters
    append(root, event)


def mark(root: Path, action_id: str, kind: str, **extra: Any) -> None:
    """``undone`` (with ``by``), ``redone`` or ``purged``."""
    append(root, {"event": kind, "action_id": action_id, "at": utc_now(), **extra})


def unfinished(root: Path) -> list[dict[str, Any]]:
    """Raw records of actions with a ``begin`` and no ``end`` (call with the job lock held)."""
    return [a for a in _fold(read_events(root)).values() if a.get("outcome") == RUNNING]


__all__ = ["ActionRecord", "find", "history", "to_local"]


def record_completed(
    root: Path,
    action_id: str,
    operation: str,
    *,
    parameters: dict[str, Any],
    plan_id: str | None,
    counts: dict[str, int],
    started_at: str,
) -> None:
    """Record an action that could not be recorded as it ran (a migration: nothing may be written into
    its source, so it records into the workspace it published, once published).

    For an in-place migration pass ``parameters`` with ``backup_path``, ``output_path`` (the published
    folder) and ``state_token`` (``plans.workspace_state_token`` of it, right after publishing): ``undo``
    swaps the backup back only while that token still matches (nothing written since).
    """
    append(root, {
        "event": "begin", "action_id": action_id, "operation": operation, "started_at": started_at,
        "parameters": parameters, "plan_id": plan_id, "user": _user(), "host": socket.gethostname(),
        "pid": os.getpid(), "undoes": None,
    })
    finish(root, action_id, DONE, counts=counts)
