"""Bulk migrate / compact / merge over a scanned tree: preview -> execute, one row per workspace."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from n4a_widgets import Workspace, scan_workspaces
from n4a_widgets.core.fleet import bulk

from helpers import LEGACY_FIXTURES, prediction_ids, tree_hash


@contextlib.contextmanager
def _held_by_another_process(ws: Path) -> Iterator[None]:
    """Our job lock on ``ws`` held by a child process (as a job in another kernel would)."""
    code = (
        "import sys, time; from pathlib import Path; from n4a_widgets.core.guard import exclusive_write\n"
        "with exclusive_write(Path(sys.argv[1]), 'other kernel', probe_writers=False):\n"
        "    print('held', flush=True); time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", code, str(ws)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield
    finally:
        child.kill()
        child.wait()


def _legacy_tree(root: Path, names: list[str]) -> list[Path]:
    out = []
    for name in names:
        shutil.copytree(LEGACY_FIXTURES / name, root / "old" / name)
        out.append(root / "old" / name)
    return out


def test_bulk_migrate_never_in_place_and_failures_do_not_stop_the_others(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    paths = _legacy_tree(root, ["v0_8_11_sqlite", "v0_7_1_duckdb_inline", "v0_9_4_sqlite"])
    before = {p: tree_hash(p) for p in paths}
    legacy = [Path(e.path) for e in scan_workspaces(root).workspaces if e.migration_needed]
    assert sorted(legacy) == sorted(paths)
    plan = bulk.preview_migrate(legacy, scan_root=root)
    assert plan.dry_run and plan.planned == 3
    assert not any(Path(r.output_path).exists() for r in plan.rows)  # the preview wrote nothing
    assert {p: tree_hash(p) for p in paths} == before
    # another process holds the second workspace while the bulk runs: its row fails, the others proceed
    busy = sorted(paths)[1]
    with _held_by_another_process(busy):
        done = bulk.execute(plan)
    outcome = {Path(r.path): r.outcome for r in done.rows}
    assert outcome[busy] == "failed" and done.rows[[Path(r.path) for r in done.rows].index(busy)].error["type"] == (
        "WorkspaceBusyError")
    assert done.done == 2 and done.failed == 1, done.to_dict()
    for row in done.rows:
        if row.outcome == "done":
            out = Path(row.output_path)
            assert out == Path(row.path).with_name(Path(row.path).name + "-migrated")
            assert Workspace(out).status().storage_mode == "migrated"
            assert len(prediction_ids(out)) == row.report["rows_migrated"] > 0
    for p in paths:  # sources untouched, migrated or not (the other process left its own lock marker)
        after = tree_hash(p)
        if p == busy:
            after.pop(".n4a_widgets.lock")
        assert after == before[p], outcome[p]
    with pytest.raises(Exception, match="execution"):
        bulk.execute(done)


def test_bulk_compact_and_merge(demo_ws: Path, small_ws: Path, tmp_path: Path) -> None:
    plan = bulk.preview_compact([demo_ws, small_ws])
    by = {Path(r.path): r for r in plan.rows}
    assert by[demo_ws].outcome == "planned" and by[small_ws].outcome == "nothing_to_do"
    done = bulk.execute(plan)
    assert {Path(r.path): r.outcome for r in done.rows} == {demo_ws: "done", small_ws: "nothing_to_do"}
    assert scan_workspaces(demo_ws).workspaces[0].pending_tombstones == 0

    target = tmp_path / "target"
    shutil.copytree(small_ws, target)
    before = len(prediction_ids(target))
    merge_plan = bulk.preview_merge(target, [demo_ws])
    assert merge_plan.rows[0].outcome == "planned" and merge_plan.rows[0].plan_id
    added = merge_plan.rows[0].report["added"]
    merged = bulk.execute(merge_plan)
    assert merged.rows[0].outcome == "done" and merged.rows[0].report["added"] == added
    assert len(prediction_ids(target)) == before + added - merged.rows[0].report["removed"]
    with pytest.raises(Exception, match="both the target and a source"):
        bulk.preview_merge(target, [target])


def test_cancel_before_start_marks_every_row(tmp_path: Path) -> None:
    import threading

    paths = _legacy_tree(tmp_path, ["v0_8_11_sqlite", "v0_9_4_sqlite"])
    stop = threading.Event()
    stop.set()
    plan = bulk.preview_migrate(paths, cancel=stop)
    assert plan.cancelled and [r.outcome for r in plan.rows] == ["cancelled", "cancelled"]


def test_cancel_between_workspaces_keeps_what_is_done(tmp_path: Path) -> None:
    import threading

    paths = _legacy_tree(tmp_path, ["v0_8_11_sqlite", "v0_9_4_sqlite", "v0_10_3_sqlite"])
    plan = bulk.preview_migrate(paths)
    stop = threading.Event()

    def progress(fraction: float, _message: str) -> None:
        if fraction >= 1 / 3:  # the first workspace is finished: press Cancel
            stop.set()

    done = bulk.execute(plan, progress=progress, cancel=stop)
    outcomes = [r.outcome for r in done.rows]
    assert done.cancelled and outcomes[0] == "done" and outcomes[1:] == ["cancelled", "cancelled"], outcomes
    assert Workspace(done.rows[0].output_path).status().storage_mode == "migrated"
    assert not any(Path(r.output_path).exists() for r in done.rows[1:])
