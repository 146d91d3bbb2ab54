"""Workspace.merge on real workspaces made by real nirs4all.run calls.

Three source/target workspaces share dataset names and pipelines so that
nirs4all's conflict key (dataset, model, fold, partition, ... and the model
specification, which for a one-model pipeline holds the KFold seed) matches:

- ``a``: wheat (100 samples), tablets (classification, 120 samples)
- ``b``: wheat (130 samples: same pipeline, other data -> conflicts with other scores), corn
- ``c``: wheat twice (160 then 110 samples: duplicate keys inside one source), tablets (identical to a's: ties)
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from n4a_widgets import Workspace
from n4a_widgets.core import merge as merge_mod
from n4a_widgets.core.arrays_readonly import parquet_path_for
from n4a_widgets.core.errors import (
    InvalidArgumentError,
    OperationCancelledError,
    PlanChangedError,
    UnsupportedFormatError,
    WorkspaceBusyError,
    WorkspaceError,
)
from n4a_widgets.core.locking import exclusive_job

from helpers import sqlite_rows

STRATEGIES = ("keep_best", "keep_existing", "overwrite")
ARRAY_COLUMNS = ("y_true", "y_pred", "y_proba", "X", "spectra", "sample_indices", "weights",
                 "y_true_shape", "y_pred_shape", "y_proba_shape", "y_true_labels", "y_pred_labels")


@pytest.fixture(scope="session")
def merge_masters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from n4a_widgets.demo import run_dataset

    root = tmp_path_factory.mktemp("merge_masters")
    plan = {
        "a": [("wheat", "regression", 100, 1), ("tablets", "classification", 120, 2)],
        "b": [("wheat", "regression", 130, 1), ("corn", "regression", 120, 0)],
        "c": [("wheat", "regression", 160, 1), ("wheat", "regression", 110, 1), ("tablets", "classification", 120, 2)],
    }
    out = {}
    for name, runs in plan.items():
        for ds, task, n, seed in runs:
            run_dataset(root / name, ds, task, n, seed, n_models=1)
        out[name] = root / name
    return out


@pytest.fixture
def ws3(merge_masters: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, src in merge_masters.items():
        shutil.copytree(src, tmp_path / name)
        out[name] = tmp_path / name
    return out


def prediction_ids(root: Path) -> set[str]:
    """Live ids, reading the WAL too (a killed writer leaves committed rows there, unseen by immutable=1)."""
    import sqlite3

    conn = sqlite3.connect(f"{(root / 'store.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT prediction_id FROM predictions")}
    finally:
        conn.close()


def _final_state(root: Path) -> collections.Counter:
    """Multiset of (nirs4all conflict key, scores) of every prediction in ``root``."""
    from nirs4all.data.predictions import Predictions
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    store = WorkspaceStore.open_readonly(root)
    try:
        rows = store.query_predictions().to_dicts()
        return collections.Counter(
            (Predictions._merge_conflict_key(store, r), r["val_score"], r["test_score"], r["train_score"])
            for r in rows
        )
    finally:
        store.close()


def _array_rows(root: Path, dataset: str) -> dict[str, dict]:
    table = pq.read_table(parquet_path_for(root, dataset))
    rows = {}
    for rec in table.to_pylist():  # later duplicates win, like nirs4all's readers
        rows[rec["prediction_id"]] = rec
    return rows


def _strip(d: dict) -> dict:
    d = dict(d)
    d.pop("dry_run")
    return d


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_merge_matches_dry_run_nirs4all_and_source_arrays(ws3: dict[str, Path], tmp_path: Path, strategy: str) -> None:
    target = ws3["b"]
    nirs_target = tmp_path / "nirs_target"
    shutil.copytree(target, nirs_target)
    sources = [ws3["a"], ws3["c"]]
    ws = Workspace(target)
    before_ids = prediction_ids(target)

    preview = ws.merge(sources, on_conflict=strategy)
    assert preview.dry_run and preview.plan_id
    assert prediction_ids(target) == before_ids  # a preview writes nothing
    plan = merge_mod.build_plan(target, sources, strategy, None)
    assert plan.plan_id == preview.plan_id
    done = ws.merge(sources, on_conflict=strategy, dry_run=False, plan_id=preview.plan_id)
    assert not done.dry_run
    assert _strip(preview.to_dict()) == _strip(done.to_dict())

    # counts are what happened
    after_ids = prediction_ids(target)
    assert len(after_ids) == done.predictions_after == len(before_ids) + done.added - done.removed
    assert set(done.prediction_ids) <= before_ids | {nid for b in plan.batches for _, nid in b.adds}
    assert not (after_ids & set(done.prediction_ids))
    assert done.conflicts > 0 and done.datasets_merged == ("tablets", "wheat")
    if strategy == "keep_existing":
        assert done.removed == 0 and done.kept_existing == done.conflicts
    if strategy == "overwrite":
        assert done.kept_existing == 0 and done.removed > 0
    if strategy == "keep_best":
        assert 0 < done.kept_existing < done.conflicts and done.removed > 0

    # same result as nirs4all's own merge_stores on an identical copy
    from nirs4all.data.predictions import Predictions

    theirs = Predictions.merge_stores(sources, nirs_target, on_conflict=strategy)
    assert theirs.predictions_merged == done.added
    assert theirs.conflicts_resolved == done.conflicts
    assert tuple(theirs.datasets_merged) == done.datasets_merged
    assert _final_state(target) == _final_state(nirs_target)

    # every array value of every merged prediction equals the winning source's
    live = prediction_ids(target)
    checked = 0
    for batch in plan.batches:
        src_root = sources[batch.source_index]
        src_rows = _array_rows(src_root, batch.dataset)
        tgt_rows = _array_rows(target, batch.dataset)
        for row, new_id in batch.adds:
            if new_id not in live:
                continue  # replaced later by another source
            s, t = src_rows[row["prediction_id"]], tgt_rows[new_id]
            for col in ARRAY_COLUMNS:
                assert s.get(col) == t.get(col), (col, new_id)
            for col in ("model_name", "fold_id", "partition", "metric", "val_score", "task_type"):
                assert s[col] == t[col]
            checked += 1
    assert checked > 0

    health = ws.health()
    assert (health.orphan_metadata_count, health.orphan_array_count, health.corrupt_files) == (0, 0, ())
    assert health.pending_tombstones == 0  # replaced rows were compacted away
    runs = sqlite_rows(target / "store.sqlite", "SELECT status FROM runs WHERE name LIKE 'merge_%'")
    assert runs and all(r[0] == "completed" for r in runs)


def test_merge_into_new_empty_target_and_dataset_filter(ws3: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    target.mkdir()
    ws = Workspace(target)
    preview = ws.merge([ws3["a"]], datasets=["tablets"])
    assert preview.added == len(sqlite_rows(ws3["a"] / "store.sqlite",
                                            "SELECT 1 FROM predictions WHERE dataset_name='tablets'"))
    assert preview.predictions_before == 0 and not (target / "store.sqlite").exists()
    done = ws.merge([ws3["a"]], datasets=["tablets"], dry_run=False, plan_id=preview.plan_id)
    assert ws.status().storage_mode == "migrated"
    assert {r[0] for r in sqlite_rows(target / "store.sqlite", "SELECT DISTINCT dataset_name FROM predictions")} == {
        "tablets"}
    assert len(prediction_ids(target)) == done.added > 0 and done.conflicts == 0
    h = ws.health()
    assert h.healthy and h.orphan_metadata_count == 0
    # merging the same source again: every row now conflicts and ties keep the target's
    again = ws.merge([ws3["a"]], datasets=["tablets"], dry_run=False)
    assert (again.added, again.removed, again.conflicts) == (0, 0, done.added)


def test_source_unchanged_and_read_only(ws3: dict[str, Path]) -> None:
    from helpers import tree_hash

    before = tree_hash(ws3["a"], ignore_empty_sidecars=True)
    Workspace(ws3["b"]).merge([ws3["a"]], dry_run=False)
    assert tree_hash(ws3["a"], ignore_empty_sidecars=True) == before


def test_refusals(ws3: dict[str, Path], tmp_path: Path, legacy_copy) -> None:
    ws = Workspace(ws3["b"])
    with pytest.raises(WorkspaceError, match="does not exist"):
        ws.merge([tmp_path / "nope"])
    with pytest.raises(InvalidArgumentError, match="listed twice"):
        ws.merge([ws3["a"], str(ws3["a"]) + "/"])
    link = tmp_path / "link_to_b"
    link.symlink_to(ws3["b"])
    with pytest.raises(InvalidArgumentError, match="target workspace itself"):
        ws.merge([link])
    with pytest.raises(InvalidArgumentError, match="target workspace itself"):
        ws.merge([ws3["b"]])
    with pytest.raises(InvalidArgumentError, match="Unknown conflict strategy"):
        ws.merge([ws3["a"]], on_conflict="newest")
    with pytest.raises(InvalidArgumentError, match="No source has dataset"):
        ws.merge([ws3["a"]], datasets=["nope"])
    with pytest.raises(InvalidArgumentError, match="No source"):
        ws.merge([])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="holds no nirs4all store"):
        ws.merge([empty])
    legacy = legacy_copy("v0_9_4_sqlite")
    with pytest.raises(UnsupportedFormatError, match="MigrationWizard"):
        ws.merge([legacy])
    with pytest.raises(UnsupportedFormatError, match="MigrationWizard"):
        ws.merge([legacy_copy("v0_7_1_duckdb_inline")])
    with pytest.raises(UnsupportedFormatError):
        Workspace(legacy).merge([ws3["a"]])


def test_plan_changed_when_source_or_target_changes(ws3: dict[str, Path]) -> None:
    from n4a_widgets.demo import run_dataset

    ws = Workspace(ws3["b"])
    preview = ws.merge([ws3["a"]])
    run_dataset(ws3["a"], "wheat", "regression", 90, 1, n_models=1)  # the source changes
    before = prediction_ids(ws3["b"])
    with pytest.raises(PlanChangedError):
        ws.merge([ws3["a"]], dry_run=False, plan_id=preview.plan_id)
    preview = ws.merge([ws3["a"]])
    run_dataset(ws3["b"], "corn", "regression", 80, 0, n_models=1)  # the target changes
    before = prediction_ids(ws3["b"])
    with pytest.raises(PlanChangedError):
        ws.merge([ws3["a"]], dry_run=False, plan_id=preview.plan_id)
    assert prediction_ids(ws3["b"]) == before
    # a changed strategy is a different plan too
    preview = ws.merge([ws3["a"]], on_conflict="overwrite")
    with pytest.raises(PlanChangedError):
        ws.merge([ws3["a"]], on_conflict="keep_best", dry_run=False, plan_id=preview.plan_id)


def test_busy_target_is_refused(ws3: dict[str, Path]) -> None:
    import fcntl

    ws = Workspace(ws3["b"])
    preview = ws.merge([ws3["a"]])
    with exclusive_job(ws3["b"], "other job"), pytest.raises(WorkspaceBusyError):
        ws.merge([ws3["a"]], dry_run=False, plan_id=preview.plan_id)
    lock = ws3["b"] / "arrays" / ".lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what nirs4all holds while it writes arrays
        with pytest.raises(WorkspaceBusyError, match="nirs4all run"):
            ws.merge([ws3["a"]], dry_run=False, plan_id=preview.plan_id)
    finally:
        os.close(fd)
    assert ws.merge([ws3["a"]], dry_run=False, plan_id=preview.plan_id).added == preview.added


def test_cancel_between_batches_leaves_complete_predictions(ws3: dict[str, Path]) -> None:
    ws = Workspace(ws3["b"])
    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        assert 0.0 <= fraction <= 1.0
        seen.append(message)
        if message.startswith("Merged"):
            cancel.set()

    before = prediction_ids(ws3["b"])
    with pytest.raises(OperationCancelledError, match="after 1 of"):
        ws.merge([ws3["a"], ws3["c"]], dry_run=False, progress=progress, cancel=cancel)
    after = prediction_ids(ws3["b"])
    assert after != before  # the first batch is in
    h = ws.health()
    assert (h.orphan_metadata_count, h.orphan_array_count) == (0, 0)
    assert any(m.startswith("Reading source") for m in seen) and any("Writing arrays" in m for m in seen)


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from n4a_widgets import Workspace
    target, when = sys.argv[1], sys.argv[2]
    sources = sys.argv[3:]
    def progress(fraction, message):
        if message.startswith(when):
            print("READY", flush=True)
            time.sleep(60)
    Workspace(target).merge(sources, on_conflict="overwrite", dry_run=False, progress=progress)
""")


@pytest.mark.parametrize("when", ["Committing", "Writing arrays", "Merged"])
def test_kill_mid_merge_leaves_no_prediction_without_arrays(ws3: dict[str, Path], when: str) -> None:
    target = ws3["b"]
    before = prediction_ids(target)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(target), when, str(ws3["a"]), str(ws3["c"])],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    ws = Workspace(target)
    h = ws.health()
    assert h.orphan_metadata_count == 0, h.orphan_metadata_ids
    assert h.corrupt_files == ()
    after = prediction_ids(target)
    if when in ("Committing", "Writing arrays"):
        assert after == before  # the open transaction was rolled back
    else:
        assert after != before and h.orphan_array_count == 0
    # the killed job's lock does not block the next merge, which completes the work
    done = ws.merge([ws3["a"], ws3["c"]], on_conflict="overwrite", dry_run=False)
    assert done.added > 0
    h = ws.health()
    assert h.orphan_metadata_count == 0


def test_report_is_plain_json(ws3: dict[str, Path]) -> None:
    import json

    rep = Workspace(ws3["b"]).merge([ws3["a"], ws3["c"]])
    d = json.loads(json.dumps(rep.to_dict()))
    assert {"added", "removed", "plan_id", "dry_run", "sources", "prediction_ids", "bytes"} <= set(d)
    src = d["sources"][0]
    keys = {"added", "removed", "conflicts", "kept_existing", "skipped", "errors", "conflict_details", "bytes"}
    assert keys <= set(src)
    c = d["sources"][1]["conflict_details"][0]
    assert {"key", "source_id", "target_id", "winner"} <= set(c) and c["winner"] in ("source", "target")
    assert c["key"]["dataset_name"] in ("wheat", "tablets")
    assert rep["added"] == rep.added


def test_confirm_reuses_the_previewed_plan_once(ws3: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Confirming a preview does not plan again (same request, unchanged tokens); the plan runs once."""
    calls: list[int] = []
    real = merge_mod.build_plan

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_mod.plan, "build_plan", counting)
    ws = Workspace(ws3["b"])
    preview = ws.merge([ws3["a"], ws3["c"]])
    done = ws.merge([ws3["a"], ws3["c"]], dry_run=False, plan_id=preview.plan_id)
    assert len(calls) == 1 and _strip(done.to_dict()) == _strip(preview.to_dict())
    with pytest.raises(PlanChangedError):  # not remembered any more: planned again, on the changed target
        ws.merge([ws3["a"], ws3["c"]], dry_run=False, plan_id=preview.plan_id)
    assert len(calls) == 2
    # a remembered preview is not reused for another request
    preview = ws.merge([ws3["a"]], on_conflict="overwrite")
    with pytest.raises(PlanChangedError):
        ws.merge([ws3["a"]], on_conflict="keep_best", dry_run=False, plan_id=preview.plan_id)
    assert len(calls) == 4
