"""Guards for the nirs4all internals core/merge.py relies on: fail loudly when the library changes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from n4a_widgets.core import merge as merge_mod


def test_conflict_key_is_nirs4alls(demo_ws: Path) -> None:
    """Our batched key == ``Predictions._merge_conflict_key`` for every row (and rows come in the same order)."""
    from nirs4all.data.predictions import Predictions
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    rows, pipes, chains = merge_mod._read_store(demo_ws, full=True, datasets=None)
    keys = merge_mod._KeyMaker(pipes, chains)
    store = WorkspaceStore.open_readonly(demo_ws)
    try:
        theirs = store.query_predictions().to_dicts()
        assert [r["prediction_id"] for r in rows] == [r["prediction_id"] for r in theirs]
        for ours, row in zip(rows, theirs, strict=True):
            assert keys.key(ours) == Predictions._merge_conflict_key(store, row)
    finally:
        store.close()
    assert merge_mod.KEY_COLUMNS == (
        "dataset_name", "model_name", "model_class", "fold_id", "partition", "preprocessings", "branch_id", "metric",
        "refit_context",
    )


def test_merge_stores_helpers_still_exist() -> None:
    from nirs4all.data.predictions import Predictions

    for name in ("merge_stores", "_merge_conflict_key", "_merge_resolve_conflict", "_merge_ensure_target_context",
                 "_merge_save_row"):
        assert hasattr(Predictions, name), name
    src = inspect.getsource(Predictions._merge_resolve_conflict)
    # the tie rule we copy: a source row must beat every conflicting row strictly
    assert "ex_score <= src_score if ascending else ex_score >= src_score" in src
    params = set(inspect.signature(Predictions.merge_stores).parameters)
    assert params >= {"sources", "target", "on_conflict", "datasets"}


def test_private_store_calls_behave_as_merge_expects(small_ws: Path) -> None:
    """``_delete_predictions_matching`` inside a transaction: SQLite delete, one tombstone write, no compaction,
    no artifact GC, rolled back with the transaction; ``_ensure_open``, ``_execute_with_retry``,
    ``AUTO_COMPACT_TOMBSTONE_THRESHOLD`` exist."""
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    params = inspect.signature(WorkspaceStore._delete_predictions_matching).parameters
    assert "prediction_ids" in params
    assert isinstance(WorkspaceStore.AUTO_COMPACT_TOMBSTONE_THRESHOLD, int)
    store = WorkspaceStore(small_ws)
    try:
        store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = 1 << 62
        store._execute_with_retry("PRAGMA analysis_limit=1000")
        ids = [r[0] for r in store._ensure_open().execute("SELECT prediction_id FROM predictions LIMIT 3")]
        assert merge_mod._live_ids(store, "synthetic_regression") >= set(ids)

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.transaction():
            store._delete_predictions_matching(prediction_ids=ids)
            assert not (set(ids) & merge_mod._live_ids(store, "synthetic_regression"))
            raise Boom
        assert merge_mod._live_ids(store, "synthetic_regression") >= set(ids)  # rolled back
        tomb = json.loads((small_ws / "arrays" / "_tombstones.json").read_text())
        assert set(ids) <= set(tomb)  # stale tombstones for live rows ...
        store.compact_arrays()
        assert not (small_ws / "arrays" / "_tombstones.json").exists()  # ... dropped by the validated compaction
        from n4a_widgets import Workspace

        h = Workspace(small_ws).health()
        assert h.orphan_metadata_count == 0 and h.orphan_array_count == 0
    finally:
        store.close()


def test_load_batch_keeps_the_last_duplicate_and_save_batch_round_trips(tmp_path: Path) -> None:
    """We copy arrays with nirs4all's own load_batch -> save_batch; check it is lossless for classification."""
    import numpy as np
    from nirs4all.pipeline.storage.array_store import ArrayStore

    a = ArrayStore(tmp_path / "a")
    rec = {"prediction_id": "p1", "dataset_name": "d s.1", "task_type": "classification",
           "y_true": np.array(["x", "y", "x"]), "y_pred": np.array(["x", "x", "y"]),
           "y_proba": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), "sample_indices": np.array([3, 1, 2])}
    a.save_batch([rec])
    a.save_batch([{**rec, "y_pred": np.array(["y", "y", "y"])}])
    loaded = ArrayStore(tmp_path / "a", read_only=True).load_batch(["p1"], dataset_name="d s.1")["p1"]
    assert list(loaded["y_pred"]) == ["y", "y", "y"]
    b = ArrayStore(tmp_path / "b")
    b.save_batch([{"prediction_id": "p1", "dataset_name": "d s.1", "task_type": "classification", **loaded}])
    import pyarrow.parquet as pq

    ta = pq.read_table(a._parquet_path("d s.1")).to_pylist()[-1]
    tb = pq.read_table(b._parquet_path("d s.1")).to_pylist()[-1]
    for col in ("y_true", "y_pred", "y_true_labels", "y_pred_labels", "y_proba", "y_proba_shape", "sample_indices"):
        assert ta[col] == tb[col], col


def _same_arrays(ours: dict, theirs: dict) -> int:
    import numpy as np

    assert set(ours) == set(theirs) and ours
    for key, t in theirs.items():
        o = ours[key]
        assert set(o) == set(t), key
        for name, tv in t.items():
            ov = o[name]
            if isinstance(tv, np.ndarray):
                assert isinstance(ov, np.ndarray) and ov.dtype == tv.dtype and ov.shape == tv.shape, (key, name)
                assert np.array_equal(ov, tv, equal_nan=tv.dtype.kind == "f"), (key, name)
            else:
                assert ov == tv, (key, name)
    return len(theirs)


def test_load_arrays_equals_nirs4alls_load_batch(demo_ws: Path, tmp_path: Path) -> None:
    """Our column-wise reader returns what ``ArrayStore.load_batch`` returns: same keys, types, dtypes, shapes
    and values (regression, classification, typed string labels, 2-D probabilities, duplicated ids)."""
    import numpy as np
    from nirs4all.pipeline.storage.array_store import ArrayStore

    from n4a_widgets.core.arrays_readonly import array_store_readonly

    checked = 0
    for ds in ("corn moisture", "wheat.protein v2", "tablets"):
        ids = [r["prediction_id"] for r in merge_mod._read_store(demo_ws, full=False, datasets={ds})[0]]
        checked += _same_arrays(merge_mod._load_arrays(demo_ws, ds, ids),
                                array_store_readonly(demo_ws).load_batch(ids, dataset_name=ds))
    assert checked > 50

    store = ArrayStore(tmp_path / "labels")
    rec = {"prediction_id": "p1", "dataset_name": "d s.1", "task_type": "classification",
           "y_true": np.array(["x", "y", "x"]), "y_pred": np.array(["x", "x", "y"]),
           "y_proba": np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), "sample_indices": np.array([3, 1, 2]),
           "weights": np.array([1.0, 0.5, 2.0]), "sample_metadata": {"a": [1, 2, 3]}}
    store.save_batch([rec, {**rec, "prediction_id": "p2", "y_true": np.array([1, 2, 1]),
                            "y_pred": np.array([2, 2, 1]), "X": np.arange(6.0).reshape(3, 2)}])
    store.save_batch([{**rec, "y_pred": np.array(["y", "y", "y"])}])  # p1 again: the last row wins
    ids = ["p1", "p2", "missing"]
    ours = merge_mod._load_arrays(tmp_path / "labels", "d s.1", ids)
    assert _same_arrays(ours, array_store_readonly(tmp_path / "labels").load_batch(ids, dataset_name="d s.1")) == 2
    assert list(ours["p1"]["y_pred"]) == ["y", "y", "y"] and ours["p2"]["X"].shape == (3, 2)
