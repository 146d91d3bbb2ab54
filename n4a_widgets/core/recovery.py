"""Finish the record of an action a crash interrupted (run by ``run_write`` under the job lock).

A killed action left a ``begin`` without an ``end``.  What it committed is
read back from the workspace itself: every id its trash kept that is no longer
a live prediction was removed; every id it announced (``before_add``) that is
live was added.  The record is then ended as ``failed`` with
``interrupted=True`` and a message saying what was committed; the action
stays undoable for exactly that.  An interrupted *undo* whose restore had
committed marks its target undone (the undo had finished in all but the
record).  SQLite's own transaction guarantees each batch is all or nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from . import history, trash


def _owned_by_live_process(record: dict[str, object]) -> bool:
    pid = int(str(record.get("pid", 0)) or 0)
    if record.get("host") != socket.gethostname():
        return False  # we hold the job lock: an action of another host cannot be running
    if pid == os.getpid():
        return False
    return history._pid_alive(pid)


def recover(root: Path) -> list[str]:
    """End every unfinished record; returns their action ids."""
    if not history.history_path(root).exists():
        return []
    from .arrays_readonly import live_prediction_ids

    done: list[str] = []
    unfinished = [a for a in history.unfinished(root) if not _owned_by_live_process(a)]
    if not unfinished:
        return done
    live = live_prediction_ids(root)
    for a in unfinished:
        aid = str(a["action_id"])
        trash.remove_partials(root, aid)
        content = trash.read_trash(root, aid)
        intent = trash.read_ids(root, aid) or {"removed": [], "added": []}
        removed = [i for i in content.kept_ids if i not in live]
        added = [i for i in intent["added"] if i in live]
        if removed or added:
            trash.write_ids(root, aid, removed=removed, added=added)
        elif trash.trash_dir(root, aid).exists():
            shutil.rmtree(trash.trash_dir(root, aid), ignore_errors=True)
        message = (
            f"Interrupted: the process (pid {a.get('pid')}) stopped before the end. "
            f"Committed: {len(removed)} removed, {len(added)} added"
            + ("; undo takes them back." if removed or added else "; nothing had changed.")
        )
        target = a.get("undoes")
        if a.get("operation") == "undo" and target and intent["added"]:
            if set(intent["added"]) <= live:
                history.mark(root, str(target), "undone", by=aid)
                message += " The undo had restored everything; its target is marked undone."
            elif added:
                message += " The undo was only partly restored; run undo on the same action again to finish."
        history.finish(
            root, aid, history.FAILED, counts={"removed": len(removed), "added": len(added)},
            nbytes=trash.trash_size_of(root, aid), message=message, interrupted=True,
        )
        done.append(aid)
    return done
