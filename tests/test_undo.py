"""Undo on real workspaces: what an action deleted comes back exactly (issue #11)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from undo_helpers import assert_same, nirs4all_reads_cleanly, predictions, snapshot

from n4a_widgets import InvalidArgumentError, PlanChangedError, Workspace, WorkspaceError
from n4a_widgets.core import layout

from helpers import replay_chains, tree_hash


def _done(ws: Workspace, op: str) -> Any:
    return next(a for a in ws.history() if a.operation == op)


def test_remove_bottom_undo_gives_back_everything_also_after_a_compaction(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    ws.compact(dry_run=False)  # apply the demo's pending deletes first: "before" is a clean state
    before = snapshot(demo_ws)
    replays = replay_chains(demo_ws)
    plan = ws.remove_bottom(0.5, partition=None)
    done = ws.remove_bottom(0.5, partition=None, dry_run=False, plan_id=plan.plan_id)
    assert done.removed == plan.removed > 20
    after_delete = snapshot(demo_ws)
    assert len(after_delete["chains"]) < len(before["chains"]), "the fixture should prune some chains"
    assert not set(done.prediction_ids) & set(after_delete["predictions"])
    ws.compact(dry_run=False)  # nothing left of them in arrays/ now

    record = _done(ws, "remove_bottom")
    assert record.outcome == "done" and record.undoable and not record.undone
    assert record.counts["removed"] == done.removed and record.plan_id == plan.plan_id
    assert record.parameters["fraction"] == 0.5 and record.user and record.host and record.bytes > 0

    state = tree_hash(demo_ws)
    preview = ws.undo(record.action_id)
    assert tree_hash(demo_ws) == state, "the undo dry run wrote something"
    assert preview.dry_run and preview.restored == done.removed and preview.removed == 0
    assert set(preview.restored_ids) == set(done.prediction_ids)
    result = ws.undo(record.action_id, dry_run=False, plan_id=preview.plan_id)
    assert dataclasses.replace(result, dry_run=True) == preview, "dry run != real run"
    assert_same(before, snapshot(demo_ws))
    again = replay_chains(demo_ws)  # the pruned chains are back, with their fitted models
    assert again.keys() == replays.keys()
    for cid, y in replays.items():
        assert np.array_equal(again[cid], y), cid

    records = {a.action_id: a for a in ws.history()}
    assert records[record.action_id].undone
    undo_rec = next(a for a in ws.history() if a.operation == "undo")
    assert undo_rec.undoes == record.action_id and undo_rec.counts["restored"] == done.removed
    assert records[record.action_id].undone_by == undo_rec.action_id
    with pytest.raises(WorkspaceError, match="already undone"):
        ws.undo(record.action_id)
    nirs4all_reads_cleanly(demo_ws)


def test_undo_of_the_undo_deletes_again_and_redo_is_undoable(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    plan = ws.remove_bottom(0.3)
    done = ws.remove_bottom(0.3, dry_run=False, plan_id=plan.plan_id)
    gone = set(done.prediction_ids)
    first = _done(ws, "remove_bottom")
    ws.undo(first.action_id, dry_run=False)
    assert gone <= set(predictions(demo_ws))
    the_undo = _done(ws, "undo")
    preview = ws.undo(the_undo.action_id)
    assert preview.removed == len(gone) and preview.restored == 0
    ws.undo(the_undo.action_id, dry_run=False, plan_id=preview.plan_id)
    assert not gone & set(predictions(demo_ws))
    again = {a.action_id: a for a in ws.history()}
    assert again[the_undo.action_id].undone and not again[first.action_id].undone
    assert again[first.action_id].undoable, "after redo the original action can be undone again"
    ws.undo(first.action_id, dry_run=False)
    assert gone <= set(predictions(demo_ws))


def test_clean_dead_links_undo(demo_ws: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ws = Workspace(demo_ws)
    ws.compact(dry_run=False)
    # one prediction loses its arrays (a metadata orphan)
    victim_file = sorted((demo_ws / "arrays").glob("*.parquet"))[0]
    t = pq.read_table(victim_file)
    orphan = t.column("prediction_id")[0].as_py()
    pq.write_table(t.filter(pc.invert(pc.equal(t.column("prediction_id"), pa.scalar(orphan)))), victim_file)
    before = snapshot(demo_ws)
    plan = ws.clean_dead_links()
    assert plan.metadata_orphan_ids == (orphan,)
    ws.clean_dead_links(dry_run=False, plan_id=plan.plan_id)
    assert orphan not in predictions(demo_ws)
    record = _done(ws, "clean_dead_links")
    preview = ws.undo(record.action_id)
    assert preview.restored_ids == (orphan,)
    ws.undo(record.action_id, dry_run=False, plan_id=preview.plan_id)
    before["arrays"].pop(orphan, None)
    after = snapshot(demo_ws)
    after["arrays"].pop(orphan, None)
    assert_same(before, after)


def test_plan_changed_and_refusals(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    with pytest.raises(WorkspaceError, match="No action"):
        ws.undo("nope")
    with pytest.raises(InvalidArgumentError):
        ws.undo("")
    done = ws.remove_bottom(0.2, dry_run=False)
    record = _done(ws, "remove_bottom")
    preview = ws.undo(record.action_id)
    ws.remove_bottom(0.1, dry_run=False)  # the workspace changes after the preview
    with pytest.raises(PlanChangedError):
        ws.undo(record.action_id, dry_run=False, plan_id=preview.plan_id)
    assert not set(done.prediction_ids) & set(predictions(demo_ws))
    ws.compact(dry_run=False)
    with pytest.raises(WorkspaceError, match="cannot be undone"):
        ws.undo(_done(ws, "compact").action_id)


def test_purge_trash_ends_undo(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    ws.remove_bottom(0.2, dry_run=False)
    record = _done(ws, "remove_bottom")
    assert ws.stats().usage("Trash").size_bytes > 0
    keep = ws.purge_trash(30)
    assert keep.purged_actions == 0 and keep.dry_run
    preview = ws.purge_trash(0)
    assert preview.action_ids == (record.action_id,) and preview.bytes > 0
    assert (demo_ws / layout.TRASH_DIR / record.action_id).is_dir(), "the dry run purged"
    done = ws.purge_trash(0, dry_run=False, plan_id=preview.plan_id)
    assert done.purged_actions == 1
    assert not (demo_ws / layout.TRASH_DIR / record.action_id).exists()
    with pytest.raises(WorkspaceError, match="purged"):
        ws.undo(record.action_id)
    assert ws.stats().usage("Trash").size_bytes == 0
    with pytest.raises(InvalidArgumentError):
        ws.purge_trash(-1)


def test_history_is_recorded_for_failures_and_dry_runs_record_nothing(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    ws.remove_bottom(0.2)
    ws.compact()
    assert ws.history() == ()
    assert not (demo_ws / layout.HISTORY_FILE).exists()
    preview = ws.remove_bottom(0.2)
    ws.remove_bottom(0.1, dry_run=False)
    with pytest.raises(PlanChangedError):
        ws.remove_bottom(0.2, dry_run=False, plan_id=preview.plan_id)
    # a refused plan is refused before the action begins: only the real one is recorded
    assert [a.operation for a in ws.history()] == ["remove_bottom"]
    for a in ws.history():
        d = a.to_dict()
        json.dumps(d)
        for key in ("action_id", "operation", "started_at", "finished_at", "outcome", "parameters", "plan_id",
                    "counts", "undoable", "undone"):
            assert key in d


def test_merge_overwrite_undo_via_ctx(make_workspace, tmp_path: Path) -> None:
    """A merge with overwrite on run_write: the added predictions go, the replaced ones come back."""
    from n4a_widgets.core import merge as merge_mod
    from n4a_widgets.core.write_op import WriteOperation, run_write

    target = make_workspace("target", [("wheat", "regression", 130, 1)])
    source = make_workspace("source", [("wheat", "regression", 100, 1)])
    before = snapshot(target)

    class MergeOp(WriteOperation[Any, Any]):  # what the merge helper's run_write port does
        name, label = "merge", "merge"

        def plan(self, root: Path, ticker: Any) -> Any:
            return merge_mod.build_plan(root, [source], "overwrite", None)

        def preview(self, root: Path, plan: Any) -> Any:
            return plan.report

        def execute(self, root: Path, plan: Any, ctx: Any) -> Any:
            merge_mod._execute(root, plan, "overwrite", lambda _f, _m: None, None, ctx)
            return dataclasses.replace(plan.report, dry_run=False)

    if hasattr(merge_mod, "MergeOperation"):  # merge is on run_write (merge branch): the public path
        report = Workspace(target).merge([source], on_conflict="overwrite", dry_run=False)
    else:
        report = run_write(target, MergeOp(), dry_run=False)
    assert report.removed > 0 and report.added > 0
    ws = Workspace(target)
    record = _done(ws, "merge")
    preview = ws.undo(record.action_id)
    assert preview.removed == report.added and preview.restored == report.removed
    ws.undo(record.action_id, dry_run=False, plan_id=preview.plan_id)
    after = snapshot(target)
    assert_same(before, after)
    nirs4all_reads_cleanly(target)


def test_trash_travels_with_the_workspace(demo_ws: Path, tmp_path: Path) -> None:
    ws = Workspace(demo_ws)
    done = ws.remove_bottom(0.2, dry_run=False)
    moved = tmp_path / "moved"
    shutil.move(str(demo_ws), moved)
    record = _done(Workspace(moved), "remove_bottom")
    Workspace(moved).undo(record.action_id, dry_run=False)
    assert set(done.prediction_ids) <= set(predictions(moved))


def test_health_counts_the_trash(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    assert ws.stats().usage("Trash").size_bytes == 0
    ws.remove_bottom(0.3, dry_run=False)
    health = ws.health()
    assert health.healthy, health.message
    assert ws.stats().usage("Trash").file_count > 0
