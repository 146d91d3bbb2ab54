"""Contract tests for core/nirs4all_api.py: one per private nirs4all touch.

If one fails after a nirs4all upgrade, the adapter function named in the test
must change (docs/ARCHITECTURE.md, "The nirs4all adapter"); nothing else in
the package reaches into nirs4all's private names.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from n4a_widgets.core import nirs4all_api as api

from helpers import prediction_ids

# ------------------------------------------------------- store and batched delete


def test_delete_predictions_matching_batches_and_defers_compaction(demo_ws: Path) -> None:
    """``delete_predictions`` + ``defer_auto_compaction``: one transaction, one tombstone write, no compaction."""
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    assert isinstance(WorkspaceStore.AUTO_COMPACT_TOMBSTONE_THRESHOLD, int)
    assert "prediction_ids" in inspect.signature(WorkspaceStore._delete_predictions_matching).parameters
    store = api.open_store(demo_ws)  # applies the 4 pending tombstones
    try:
        assert store.array_store.pending_tombstone_count() == 0
        conn = api.store_connection(store)
        assert isinstance(conn, sqlite3.Connection)
        ids = sorted(prediction_ids(demo_ws))[:70]
        api.defer_auto_compaction(store)
        with store.transaction():
            assert api.delete_predictions(store, ids) == len(ids)
            assert conn.in_transaction, "the batch did not join our transaction"
        assert store.array_store.pending_tombstone_count() == len(ids), "compaction ran mid-batch"
        api.restore_auto_compaction(store)
        assert store.AUTO_COMPACT_TOMBSTONE_THRESHOLD == WorkspaceStore.AUTO_COMPACT_TOMBSTONE_THRESHOLD
        assert api.delete_predictions(store, []) == 0
    finally:
        store.close()
    assert not set(ids) & prediction_ids(demo_ws)


def test_transaction_rolls_back_the_batch(demo_ws: Path) -> None:
    store = api.open_store(demo_ws)
    ids = sorted(prediction_ids(demo_ws))[:3]
    try:
        api.defer_auto_compaction(store)
        with pytest.raises(RuntimeError), store.transaction():
            api.delete_predictions(store, ids)
            raise RuntimeError("abort")
    finally:
        store.close()
    assert set(ids) <= prediction_ids(demo_ws)


def test_analyze_refreshes_statistics(small_ws: Path) -> None:
    """``analyze``: ``_execute_with_retry`` runs ANALYZE (sqlite_stat1 appears)."""
    store = api.open_store(small_ws)
    try:
        api.analyze(store)
        conn = api.store_connection(store)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] == 1
    finally:
        store.close()


# ------------------------------------------------------------------ compaction


def test_compact_arrays_is_lock_snapshot_compact_unlocked() -> None:
    """``arrays_process_lock`` + ``compact_dataset_unlocked`` repeat ``compact_arrays`` per dataset."""
    from nirs4all.pipeline.storage.array_store import ArrayStore
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    src = inspect.getsource(WorkspaceStore.compact_arrays)
    assert "_process_lock()" in src and "_compact_unlocked(" in src and "live_ids" in src
    assert list(inspect.signature(ArrayStore._compact_unlocked).parameters)[1:] == ["dataset_name", "live_ids"]
    stats_src = inspect.getsource(ArrayStore._compact_unlocked)
    for key in ("rows_before", "rows_after", "rows_removed", "bytes_before", "bytes_after"):
        assert key in stats_src


def test_compact_dataset_unlocked_applies_tombstones_of_one_file(demo_ws: Path) -> None:
    from n4a_widgets.core.arrays_readonly import live_prediction_ids, read_tombstones

    pending = read_tombstones(demo_ws)
    assert len(pending) == 4
    arrays = api.array_store(demo_ws)
    with api.arrays_process_lock(arrays):
        stats = {}
        for path in sorted((demo_ws / "arrays").glob("*.parquet")):
            name = path.stem
            stats.update(api.compact_dataset_unlocked(arrays, name, live_prediction_ids(demo_ws)))
    assert sum(s["rows_removed"] for s in stats.values()) == 4
    assert read_tombstones(demo_ws) == {}


def test_writable_open_applies_pending_tombstones(demo_ws: Path) -> None:
    """Why dry runs never call ``open_store``."""
    assert len(api.read_tombstones(demo_ws)) == 4
    api.open_store(demo_ws).close()
    assert not (demo_ws / "arrays" / "_tombstones.json").exists()


# ------------------------------------------------------------- naming, codec


def test_array_file_path_and_sanitize_dataset_filename(demo_ws: Path) -> None:
    assert api.sanitize_dataset_filename("wheat.protein v2") == "wheat_protein_v2"
    assert api.array_file_path(demo_ws, "wheat.protein v2") == demo_ws / "arrays" / "wheat_protein_v2.parquet"
    assert not (demo_ws / "nowhere").exists()
    api.array_file_path(demo_ws / "nowhere", "x")  # read-only: creates nothing
    assert not (demo_ws / "nowhere").exists()


def test_read_tombstones_matches_the_file(demo_ws: Path) -> None:
    on_disk = json.loads((demo_ws / "arrays" / "_tombstones.json").read_text())
    assert api.read_tombstones(demo_ws) == on_disk


def test_decode_target_array_round_trips_labels() -> None:
    import numpy as np
    from nirs4all.data._predictions.target_codec import encode_target_labels

    labels = np.array(["a", "b", "a"], dtype=object)
    encoded = encode_target_labels(labels)
    row = {"y_true_labels": encoded, "y_true": None, "task_type": "classification", "y_true_shape": None}
    assert list(api.decode_target_array(row, "y_true")) == ["a", "b", "a"]


# ------------------------------------------------------------ undo (restore)


def test_insert_rows_use_nirs4all_statements_and_columns() -> None:
    """``insert_pipeline_row`` / ``insert_chain_row`` / ``increment_artifact_refs``: the SQL constants exist
    and name exactly the columns we pass (a new NOT NULL column would fail here, not in an undo)."""
    from nirs4all.pipeline.storage import store_queries

    for const, cols in (
        (store_queries.INSERT_PIPELINE, api._PIPELINE_INSERT_COLUMNS),
        (store_queries.INSERT_CHAIN, api._CHAIN_INSERT_COLUMNS),
    ):
        listed = const.split("(", 1)[1].split(")", 1)[0]
        assert [c.strip() for c in listed.split(",")][: len(cols)] == list(cols)
    assert "ref_count = ref_count + 1" in store_queries.INCREMENT_ARTIFACT_REF


def test_reinserted_chain_keeps_its_id_and_columns(small_ws: Path) -> None:
    """A chain pruned by nirs4all's delete and re-created by ``insert_chain_row`` (after its pipeline, by
    ``insert_pipeline_row``) has its old id and every identity column back (tests/test_undo.py replays it)."""
    from n4a_widgets.core.maintenance.batch_delete import chunks

    db = small_ws / "store.sqlite"
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    chain = dict(conn.execute("SELECT * FROM chains LIMIT 1").fetchone())
    pipeline = dict(conn.execute("SELECT * FROM pipelines WHERE pipeline_id = ?", [chain["pipeline_id"]]).fetchone())
    ids = [r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE pipeline_id = ?",
                                      [pipeline["pipeline_id"]])]
    refs_before = dict(conn.execute("SELECT artifact_id, ref_count FROM artifacts").fetchall())
    conn.close()
    store = api.open_store(small_ws)
    try:
        api.defer_auto_compaction(store)
        with store.transaction():
            for batch in chunks(ids, 500):
                api.delete_predictions(store, batch)
        assert store.get_chain(chain["chain_id"]) is None, "nirs4all no longer prunes empty chains"
        with store.transaction():
            api.insert_pipeline_row(store, pipeline)
            api.insert_chain_row(store, chain)
            from n4a_widgets.core.trash import chain_artifact_ids

            api.increment_artifact_refs(store, chain_artifact_ids(chain))
        row = dict(api.store_connection(store).execute("SELECT * FROM chains WHERE chain_id = ?",
                                                       [chain["chain_id"]]).fetchone())
    finally:
        store.close()
    cols = [d for d in chain if d in api._CHAIN_INSERT_COLUMNS]
    assert [row[c] for c in cols] == [chain[c] for c in cols]
    conn = sqlite3.connect(db)
    try:
        refs_after = dict(conn.execute("SELECT artifact_id, ref_count FROM artifacts").fetchall())
    finally:
        conn.close()
    for aid in chain_artifact_ids(chain):
        if aid in refs_after and aid in refs_before:
            assert refs_after[aid] >= 1


# ------------------------------------------------------------- merge


def test_repair_artifact_refcounts_raises_undercounts_to_the_chains_naming_them(small_ws: Path) -> None:
    """``_ensure_chain_artifact_refcounts``: ref_count becomes at least the number of chains naming the artifact."""
    db = small_ws / "store.sqlite"
    conn = sqlite3.connect(db)
    (aid,) = conn.execute("SELECT artifact_id FROM artifacts LIMIT 1").fetchone()
    conn.execute("UPDATE artifacts SET ref_count = 0 WHERE artifact_id = ?", [aid])  # an undercount, as after a merge
    conn.commit()
    conn.close()
    store = api.open_store(small_ws)
    try:
        api.repair_artifact_refcounts(store)
        assert store.gc_artifacts() == 0  # nothing a chain names is collected
    finally:
        store.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT ref_count FROM artifacts WHERE artifact_id = ?", [aid]).fetchone()[0] >= 1
    finally:
        conn.close()


def _records(prefix: str, n: int, *, labels: bool = False, dataset: str = "wheat v2.1") -> list[dict]:
    rng = np.random.default_rng(len(prefix) + n)
    out = []
    for i in range(n):
        rec = {
            "prediction_id": f"{prefix}{i:04d}", "dataset_name": dataset, "model_name": "PLS", "fold_id": str(i),
            "partition": "val", "metric": "rmse", "val_score": float(rng.random()),
            "task_type": "classification" if labels else "regression",
            "sample_indices": np.arange(5), "weights": rng.random(5),
            "sample_metadata": {"batch": [1, 2, 3, 4, 5]} if i % 2 else None,
        }
        if labels:
            rec["y_true"] = np.array(["a", "b", "a", "c", "b"], dtype=object)
            rec["y_pred"] = np.array(["a", "a", "b", "c", "b"], dtype=object)
            rec["y_proba"] = rng.random((5, 3))
        else:
            rec["y_true"] = rng.random(5)
            rec["y_pred"] = np.where(rng.random(5) < 0.2, np.nan, rng.random(5))
        out.append(rec)
    return out


def test_array_file_schema_and_write_options() -> None:
    base, labelled = api.array_file_schema(labels=False), api.array_file_schema(labels=True)
    assert "y_true_labels" in labelled.names and "y_true_labels" not in base.names
    assert labelled.names[: len(base.names)] == base.names
    assert {"prediction_id", "y_true", "y_pred", "y_proba", "sample_indices", "weights"} <= set(base.names)
    opts = api.array_write_options()
    assert set(opts) == {"compression", "compression_level"}


def test_array_records_to_table_and_align(tmp_path: Path) -> None:
    arrays = api.array_store(tmp_path)
    table = api.array_records_to_table(arrays, _records("r", 3))
    assert table.schema == api.array_file_schema(labels=False) and table.num_rows == 3
    labelled = api.array_records_to_table(arrays, _records("c", 2, labels=True))
    assert "y_true_labels" in labelled.schema.names
    aligned = api.align_array_table(table, api.array_file_schema(labels=True))
    assert aligned.schema == api.array_file_schema(labels=True)
    assert aligned.column("y_true_labels").null_count == 3


@pytest.mark.parametrize("labels", ["none", "all", "mid_file"])
def test_streamed_array_file_equals_save_batch(tmp_path: Path, labels: str) -> None:
    """The migration's streamed row groups hold exactly what save_batch would write, and ArrayStore reads them."""
    from n4a_widgets.core.migration.array_writer import StreamedArrayFile

    batches = [
        _records("a", 7, labels=labels == "all"),
        _records("b", 5, labels=labels in ("all", "mid_file")),
        _records("c", 3, labels=labels == "all"),
    ]
    plain, streamed = tmp_path / "plain", tmp_path / "streamed"
    store = api.array_store(plain)
    for batch in batches:
        store.save_batch(batch)
    writer = StreamedArrayFile(streamed, "wheat v2.1")
    for batch in batches:
        writer.write(batch)
    writer.close()

    path_plain = api.array_file_path(plain, "wheat v2.1")
    path_streamed = api.array_file_path(streamed, "wheat v2.1")
    assert path_streamed.name == path_plain.name == "wheat_v2_1.parquet"
    assert not list(path_streamed.parent.glob("*.n4a-tmp*"))
    assert pq.ParquetFile(path_streamed).num_row_groups == 3
    a, b = pq.read_table(path_plain), pq.read_table(path_streamed)
    assert a.schema == b.schema
    assert json.dumps(a.to_pylist()) == json.dumps(b.to_pylist())  # NaN-aware, chunking-blind
    assert pq.ParquetFile(path_streamed).metadata.row_group(0).column(0).compression == \
        pq.ParquetFile(path_plain).metadata.row_group(0).column(0).compression

    ids = [r["prediction_id"] for batch in batches for r in batch]
    got, want = api.array_store(streamed, read_only=True).load_batch(ids), store.load_batch(ids)
    assert set(got) == set(want) == set(ids)
    for pid in ids:
        assert set(got[pid]) == set(want[pid])
        for key, value in want[pid].items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(np.asarray(got[pid][key]), value, equal_nan=value.dtype.kind == "f"), key
            else:
                assert got[pid][key] == value, key


def test_streamed_array_file_refuses_another_dataset(tmp_path: Path) -> None:
    from n4a_widgets.core.migration.array_writer import StreamedArrayFile

    writer = StreamedArrayFile(tmp_path, "wheat")
    with pytest.raises(ValueError):
        writer.write(_records("x", 1, dataset="corn"))
    writer.abort()
    assert not list((tmp_path / "arrays").glob("*.parquet*"))


def test_duckdb_storage_info_counts_list_values(tmp_path: Path) -> None:
    """The migration reader sizes inline arrays from DuckDB's storage info (no scan of the lists)."""
    import duckdb

    from n4a_widgets.core.migration.readers import DuckDBReader

    ws = tmp_path / "ws"
    ws.mkdir()
    conn = duckdb.connect(str(ws / "store.duckdb"))
    conn.execute("CREATE TABLE predictions (prediction_id VARCHAR, dataset_name VARCHAR, pipeline_id VARCHAR)")
    conn.execute("CREATE TABLE prediction_arrays (prediction_id VARCHAR PRIMARY KEY, y_true DOUBLE[], "
                 "y_pred DOUBLE[], y_proba DOUBLE[], sample_indices INTEGER[], weights DOUBLE[])")
    conn.execute("INSERT INTO prediction_arrays SELECT 'p' || i, list_transform(range(7), lambda x: x::DOUBLE), "
                 "list_transform(range(7), lambda x: x::DOUBLE), NULL, "
                 "list_transform(range(7), lambda x: x::INTEGER), NULL "
                 "FROM range(50) t(i)")
    conn.execute("CHECKPOINT")
    want = conn.execute("SELECT sum(len(y_true) * 8 + len(y_pred) * 8 + len(sample_indices) * 4) "
                        "FROM prediction_arrays").fetchone()[0]
    conn.close()
    with DuckDBReader(ws, "duckdb-inline-arrays") as reader:
        assert reader.array_bytes() == want == 50 * 7 * 20


def test_duckdb_lookup_grows_the_pool_for_a_row_larger_than_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from n4a_widgets.core.migration import readers

    ws = tmp_path / "ws"
    ws.mkdir()
    conn = duckdb.connect(str(ws / "store.duckdb"))
    conn.execute("CREATE TABLE predictions (prediction_id VARCHAR, dataset_name VARCHAR, pipeline_id VARCHAR)")
    conn.execute("CREATE TABLE prediction_arrays (prediction_id VARCHAR PRIMARY KEY, y_true DOUBLE[])")
    conn.execute("INSERT INTO prediction_arrays SELECT 'p' || i, list_transform(range(1500000), lambda x: x::DOUBLE) "
                 "FROM range(3) t(i)")
    conn.execute("CHECKPOINT")
    conn.close()
    monkeypatch.setattr(readers, "DUCKDB_MEMORY_LIMIT_MB", 16)
    with readers.DuckDBReader(ws, "duckdb-inline-arrays") as reader:
        table = reader._lookup("SELECT * FROM prediction_arrays WHERE prediction_id IN (?, ?)", ["p0", "p2"])
        assert sorted(table.column("prediction_id").to_pylist()) == ["p0", "p2"]
        assert len(table.column("y_true")[0]) == 1_500_000
        grown = reader.conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        assert grown != "16.0 MiB", "the look-up should not have fit in the first pool"
