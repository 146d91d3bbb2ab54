"""Crash safety of destructive actions and of undo: kill -9 at named points, then the next call.

Each action runs in a subprocess that SIGKILLs itself at a point named by
``N4A_TEST_KILL_AT`` (``core/crash.py``).  Afterwards the workspace must be
either the old one or recoverable: the next write finishes the history record
(``failed``, ``interrupted``, with what was committed), and undo brings back
exactly what was deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from undo_helpers import assert_same, nirs4all_reads_cleanly, predictions, snapshot

from n4a_widgets import Workspace
from n4a_widgets.core.crash import KILL_ENV

REPO = Path(__file__).resolve().parents[1]

REMOVE = """
import sys
from n4a_widgets.core.maintenance import remove_bottom
from pathlib import Path
remove_bottom(Path(sys.argv[1]), 0.6, partition=None, dry_run=False, batch_size=4)
"""

UNDO = """
import sys
from n4a_widgets import Workspace
Workspace(sys.argv[1]).undo(sys.argv[2], dry_run=False)
"""


def run(script: str, *args: str, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


@pytest.mark.parametrize(
    ("point", "committed"),
    [("after_begin", "none"), ("after_trash", "none"), ("after_batch", "some"), ("before_end", "all")],
)
def test_kill_during_remove_bottom_then_recover_and_undo(demo_ws: Path, point: str, committed: str) -> None:
    ws = Workspace(demo_ws)
    ws.compact(dry_run=False)
    before = snapshot(demo_ws)
    planned = set(ws.remove_bottom(0.6, partition=None).prediction_ids)
    proc = run(REMOVE, str(demo_ws), kill_at=point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    gone = set(before["predictions"]) - set(predictions(demo_ws))
    assert gone <= planned
    assert {"none": not gone, "some": 0 < len(gone) < len(planned), "all": gone == planned}[committed], len(gone)
    # read-only history already says the action was interrupted ...
    seen = ws.history()[0]
    assert seen.operation == "remove_bottom" and seen.outcome == "failed" and seen.interrupted
    # ... and the next write records what was committed
    ws.compact(dry_run=False)
    record = next(a for a in ws.history() if a.operation == "remove_bottom")
    assert record.outcome == "failed" and record.interrupted and record.finished_at
    assert record.counts["removed"] == len(gone), record.message
    assert record.undoable == bool(gone)
    assert ws.health().healthy
    if gone:
        ws.undo(record.action_id, dry_run=False)
    after = snapshot(demo_ws)
    assert_same(before, after)


@pytest.mark.parametrize("point", ["after_begin", "undo_before_commit", "undo_after_commit", "before_end"])
def test_kill_during_undo_then_recover(demo_ws: Path, point: str) -> None:
    ws = Workspace(demo_ws)
    ws.compact(dry_run=False)
    before = snapshot(demo_ws)
    ws.remove_bottom(0.6, partition=None, dry_run=False)
    target = ws.history()[0]
    proc = run(UNDO, str(demo_ws), target.action_id, kill_at=point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ws.compact(dry_run=False)  # the next write finishes the records
    undo_rec = next(a for a in ws.history() if a.operation == "undo")
    assert undo_rec.outcome == "failed" and undo_rec.interrupted, undo_rec
    target_now = next(a for a in ws.history() if a.action_id == target.action_id)
    if point in ("after_begin", "undo_before_commit"):
        assert not target_now.undone and target_now.undoable, "nothing was restored: undo again"
        ws.undo(target.action_id, dry_run=False)
    else:
        assert target_now.undone, undo_rec.message
    assert_same(before, snapshot(demo_ws))
    assert ws.health().healthy, ws.health().message
    nirs4all_reads_cleanly(demo_ws)
