"""The benchmark workspace factory builds real, consistent, current-format workspaces."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers import prediction_ids, sqlite_rows

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def factory():
    sys.path.insert(0, str(BENCH))
    try:
        import workspace_factory

        yield workspace_factory
    finally:
        sys.path.remove(str(BENCH))


def test_build_300_is_healthy_and_exact(factory, tmp_path: Path) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    from n4a_widgets import Workspace

    ws = factory.build_large_workspace(tmp_path / "ws", 300, n_datasets=4, n_samples=20, seed=1)
    report = Workspace(ws).health()
    assert report.healthy, report.message
    assert report.storage_mode == "migrated"
    assert report.total_predictions == 300
    assert report.total_datasets == 4
    assert report.orphan_metadata_count == report.orphan_array_count == report.pending_tombstones == 0
    assert report.corrupt_files == ()
    assert {d.name: d.prediction_count for d in report.datasets} == dict.fromkeys(factory.dataset_names(4), 75)
    assert len(prediction_ids(ws)) == 300

    # Real partitions, folds and several models; arrays of n_samples values.
    parts = Counter(r[0] for r in sqlite_rows(ws / "store.sqlite", "SELECT partition FROM predictions"))
    assert set(parts) == {"train", "val", "test"}
    folds = {r[0] for r in sqlite_rows(ws / "store.sqlite", "SELECT DISTINCT fold_id FROM predictions")}
    assert folds == set(factory.FOLDS)
    models = {r[0] for r in sqlite_rows(ws / "store.sqlite", "SELECT DISTINCT model_name FROM predictions")}
    assert len(models) >= 2
    statuses = {r[0] for r in sqlite_rows(ws / "store.sqlite", "SELECT status FROM runs")}
    assert statuses == {"completed"}

    store = WorkspaceStore.open_readonly(ws)
    try:
        pid = sorted(prediction_ids(ws))[0]
        arrays = store.array_store.load_batch([pid])
        assert len(arrays[pid]["y_true"]) == 20
        assert len(arrays[pid]["y_pred"]) == 20
        assert store.array_store.integrity_check(prediction_ids(ws)) == {
            "orphan_ids": [],
            "missing_ids": [],
            "corrupt_files": [],
        }
    finally:
        store.close()


def test_summaries_and_classification(factory, tmp_path: Path) -> None:
    """Guards the private ``WorkspaceStore._ensure_open`` the factory uses to run ANALYZE."""
    from n4a_widgets import Workspace

    ws = factory.build_large_workspace(
        tmp_path / "ws", 61, n_datasets=2, n_samples=10, with_summaries=True, tasks=("regression", "classification")
    )
    report = Workspace(ws).health()
    assert report.healthy and report.total_predictions == 61
    tasks = dict(sqlite_rows(ws / "store.sqlite", "SELECT dataset_name, MIN(task_type) FROM predictions GROUP BY 1"))
    assert sorted(tasks.values()) == ["classification", "regression"]
    # bulk_update_chain_summaries filled the chain summaries.
    filled = sqlite_rows(ws / "store.sqlite", "SELECT COUNT(*) FROM chains WHERE cv_val_score IS NOT NULL")[0][0]
    assert filled > 0
    assert sqlite_rows(ws / "store.sqlite", "SELECT COUNT(*) FROM sqlite_stat1")[0][0] > 0


def test_cached_workspace_gives_private_copies(factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N4A_BENCH_CACHE", str(tmp_path / "cache"))
    a = factory.cached_workspace(30, dest=tmp_path / "a", n_datasets=2, n_samples=5)
    b = factory.cached_workspace(30, dest=tmp_path / "b", n_datasets=2, n_samples=5)
    assert a != b and a.is_dir() and b.is_dir()
    assert prediction_ids(a) == prediction_ids(b)  # same build, copied
    assert len(list((tmp_path / "cache").glob("ws30_*/.complete"))) == 1


def test_scale_shape_builds(factory, tmp_path: Path) -> None:
    """The issue-14 shape (8 datasets, 40 samples, summaries) builds and is healthy at a small size."""
    from n4a_widgets import Workspace

    ws = factory.build_large_workspace(tmp_path / "ws", 160, **factory.SCALE_SHAPE)
    report = Workspace(ws).health()
    assert report.healthy and report.total_predictions == 160 and report.total_datasets == 8
    assert {d.name for d in report.datasets} == set(factory.dataset_names(8))
    lengths = sqlite_rows(ws / "store.sqlite", "SELECT DISTINCT n_samples FROM predictions")
    assert lengths == [(40,)]
