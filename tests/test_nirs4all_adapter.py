"""Contract tests of the private nirs4all calls in core/nirs4all_api.py (one per function).

A nirs4all upgrade that changes one of them fails here, by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from n4a_widgets.core import nirs4all_api as n4


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
    base, labelled = n4.array_file_schema(labels=False), n4.array_file_schema(labels=True)
    assert "y_true_labels" in labelled.names and "y_true_labels" not in base.names
    assert labelled.names[: len(base.names)] == base.names
    assert {"prediction_id", "y_true", "y_pred", "y_proba", "sample_indices", "weights"} <= set(base.names)
    opts = n4.array_write_options()
    assert set(opts) == {"compression", "compression_level"}


def test_array_records_to_table_and_align(tmp_path: Path) -> None:
    arrays = n4.array_store(tmp_path)
    table = n4.array_records_to_table(arrays, _records("r", 3))
    assert table.schema == n4.array_file_schema(labels=False) and table.num_rows == 3
    labelled = n4.array_records_to_table(arrays, _records("c", 2, labels=True))
    assert "y_true_labels" in labelled.schema.names
    aligned = n4.align_array_table(table, n4.array_file_schema(labels=True))
    assert aligned.schema == n4.array_file_schema(labels=True)
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
    store = n4.array_store(plain)
    for batch in batches:
        store.save_batch(batch)
    writer = StreamedArrayFile(streamed, "wheat v2.1")
    for batch in batches:
        writer.write(batch)
    writer.close()

    path_plain = n4.array_file_path(plain, "wheat v2.1")
    path_streamed = n4.array_file_path(streamed, "wheat v2.1")
    assert path_streamed.name == path_plain.name == "wheat_v2_1.parquet"
    assert not list(path_streamed.parent.glob("*.n4a-tmp*"))
    assert pq.ParquetFile(path_streamed).num_row_groups == 3
    a, b = pq.read_table(path_plain), pq.read_table(path_streamed)
    assert a.schema == b.schema
    assert json.dumps(a.to_pylist()) == json.dumps(b.to_pylist())  # NaN-aware, chunking-blind
    assert pq.ParquetFile(path_streamed).metadata.row_group(0).column(0).compression == \
        pq.ParquetFile(path_plain).metadata.row_group(0).column(0).compression

    ids = [r["prediction_id"] for batch in batches for r in batch]
    got, want = n4.array_store(streamed, read_only=True).load_batch(ids), store.load_batch(ids)
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
