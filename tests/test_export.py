"""Workspace.export: round trip, filters, tombstones, zip, names, errors, read-only."""

from __future__ import annotations

import io
import json
import math
import os
import threading
import zipfile
from pathlib import Path

import pytest

from n4a_widgets import Workspace
from n4a_widgets.core.errors import (
    CorruptStoreError,
    InvalidArgumentError,
    OperationCancelledError,
    WorkspaceError,
)

from helpers import sqlite_rows, tree_hash

STORED = ("prediction_id", "dataset_name", "model_name", "fold_id", "partition", "metric", "val_score", "task_type")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty folder for export destinations (the workspaces live next to it)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def tombstones(ws: Path) -> set[str]:
    path = ws / "arrays" / "_tombstones.json"
    return set(json.loads(path.read_text())) if path.exists() else set()


def live_ids(ws: Path, dataset: str, where: str = "", params: tuple = ()) -> set[str]:
    rows = sqlite_rows(ws / "store.sqlite", f"SELECT prediction_id FROM predictions WHERE dataset_name = ? {where}",
                       (dataset, *params))
    return {r[0] for r in rows} - tombstones(ws)


def read_polars(path: Path | bytes):
    import polars as pl

    return pl.read_parquet(io.BytesIO(path) if isinstance(path, bytes) else path)


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


# ------------------------------------------------------------- round trip


def test_round_trip_every_value_matches_nirs4all(demo_ws: Path, out: Path) -> None:
    """Export everything, read back with polars only, compare with nirs4all's own readers."""
    from nirs4all.pipeline.storage.array_store import ArrayStore
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    before = tree_hash(demo_ws)
    report = Workspace(demo_ws).export(out / "all.zip")
    assert tree_hash(demo_ws) == before  # read-only on the workspace
    assert report.format == "zip"
    members = zip_members(out / "all.zip")
    assert sorted(members) == ["corn_moisture.parquet", "tablets.parquet", "wheat.protein_v2.parquet"]
    assert report.total_rows == sum(f.rows for f in report.files)

    arrays = ArrayStore(demo_ws, read_only=True)
    store = WorkspaceStore.open_readonly(demo_ws)
    try:
        for f in report.files:
            exported = read_polars(members[f.member])
            expected_ids = live_ids(demo_ws, f.dataset)
            assert set(exported["prediction_id"]) == expected_ids
            assert exported.height == len(expected_ids) == f.rows
            stored = arrays.load_dataset(f.dataset)
            stored = stored.filter(stored["prediction_id"].is_in(list(expected_ids)))
            assert exported.columns[: len(stored.columns)] == stored.columns  # the arrays "as stored", in order
            by_id = {r["prediction_id"]: r for r in stored.iter_rows(named=True)}
            for row in exported.iter_rows(named=True):
                original = by_id[row["prediction_id"]]
                for column, value in original.items():
                    assert same(row[column], value), (f.dataset, row["prediction_id"], column)
            meta = store.query_predictions(dataset_name=f.dataset)
            meta_by_id = {r["prediction_id"]: r for r in meta.iter_rows(named=True)}
            for row in exported.iter_rows(named=True):
                m = meta_by_id[row["prediction_id"]]
                for column in ("test_score", "train_score", "model_class", "preprocessings", "pipeline_id", "chain_id",
                               "n_samples", "best_params", "scores"):
                    expected = m[column]
                    if column in ("best_params", "scores") and not isinstance(expected, str):
                        assert json.loads(row[column]) == expected, column
                    else:
                        assert same(row[column], expected), (column, row[column], expected)
                assert row["run_name"] and row["pipeline_name"]
    finally:
        store.close()


def test_copy_path_and_rewrite_path_give_the_same_table(demo_ws: Path, out: Path, monkeypatch) -> None:
    """The fast path (column chunks copied) reads exactly like the streaming rewrite, in polars, pyarrow and duckdb."""
    import duckdb
    import pyarrow.parquet as pq

    from n4a_widgets.core.export import writers as export_mod
    from n4a_widgets.core.parquet_splice import SpliceUnsupported

    ws = Workspace(demo_ws)
    fast = ws.export(out / "fast.parquet", datasets=["corn moisture"])
    assert fast.files[0].method == "copy"

    def refuse(*_a, **_k):
        raise SpliceUnsupported("forced for the test")

    monkeypatch.setattr(export_mod, "_write_copy", refuse)
    slow = ws.export(out / "slow.parquet", datasets=["corn moisture"])
    assert slow.files[0].method == "rewrite"
    # The copy started early for the fast path was stopped and removed before the rewrite.
    assert sorted(p.name for p in out.iterdir()) == ["fast.parquet", "slow.parquet"]

    a, b = read_polars(out / "fast.parquet"), read_polars(out / "slow.parquet")
    assert a.schema == b.schema
    assert a.equals(b)
    assert pq.read_table(out / "fast.parquet").equals(pq.read_table(out / "slow.parquet"))
    q = "SELECT count(*), sum(val_score), sum(test_score), sum(len(y_pred)), max(run_name) FROM read_parquet(?)"
    assert duckdb.execute(q, [str(out / "fast.parquet")]).fetchall() == duckdb.execute(
        q, [str(out / "slow.parquet")]).fetchall()
    info = json.loads(pq.read_metadata(out / "fast.parquet").metadata[b"n4a_widgets.export"])
    assert info["workspace"] == demo_ws.name


@pytest.mark.parametrize("partition", [None, "val"])
def test_metadata_read_by_adbc_equals_the_python_path(demo_ws: Path, out: Path, monkeypatch, partition) -> None:
    """The metadata columns read straight into Arrow (ADBC) are exactly those of the Python path,
    and a value of another storage class sends the scan back to the Python path with the same result."""
    import sqlite3

    import pyarrow.parquet as pq

    from n4a_widgets.core.export.metadata import _Metadata

    used: list[bool] = []
    original = _Metadata._scan_arrow

    def watch(self, *a, **k):  # type: ignore[no-untyped-def]
        got = original(self, *a, **k)
        used.append(got is not None)
        return got

    monkeypatch.setattr(_Metadata, "_scan_arrow", watch)
    ws = Workspace(demo_ws)
    ws.export(out / "adbc.parquet", datasets=["corn moisture"], partition=partition)
    assert used == [True]
    monkeypatch.setattr(_Metadata, "_scan_arrow", lambda *a, **k: None)
    ws.export(out / "python.parquet", datasets=["corn moisture"], partition=partition)
    assert pq.read_table(out / "adbc.parquet").equals(pq.read_table(out / "python.parquet"))

    # A text where SQLite stores reals: ADBC's column type no longer means the same values.
    with sqlite3.connect(demo_ws / "store.sqlite") as conn:
        conn.execute("UPDATE predictions SET test_score = 'n/a' WHERE rowid = (SELECT min(rowid) FROM predictions "
                     "WHERE dataset_name = 'corn moisture' AND partition = coalesce(?, partition))", (partition,))
    monkeypatch.setattr(_Metadata, "_scan_arrow", watch)
    used.clear()
    ws.export(out / "mixed_adbc.parquet", datasets=["corn moisture"], partition=partition)
    assert used == [False], "a text among reals must send the scan back to the Python path"
    monkeypatch.setattr(_Metadata, "_scan_arrow", lambda *a, **k: None)
    ws.export(out / "mixed_python.parquet", datasets=["corn moisture"], partition=partition)
    assert pq.read_table(out / "mixed_adbc.parquet").equals(pq.read_table(out / "mixed_python.parquet"))


def test_pandas_reads_the_export(demo_ws: Path, out: Path) -> None:
    pd = pytest.importorskip("pandas")
    Workspace(demo_ws).export(out / "t.parquet", datasets=["tablets"])
    frame = pd.read_parquet(out / "t.parquet")
    assert len(frame) == len(live_ids(demo_ws, "tablets"))


# ---------------------------------------------------------- rows and filters


def test_pending_tombstones_never_appear(demo_ws: Path, out: Path) -> None:
    dead = tombstones(demo_ws)
    assert len(dead) == 4
    report = Workspace(demo_ws).export(out / "t.parquet", datasets=["tablets"])
    exported = set(read_polars(out / "t.parquet")["prediction_id"])
    assert not exported & dead
    assert report.excluded_tombstoned == 4
    assert report.files[0].method == "rewrite"
    assert report.files[0].rows == 30
    # The copy started before the rows were selected (no filters) was dropped without a trace.
    assert [p.name for p in out.iterdir()] == ["t.parquet"]


@pytest.mark.parametrize(
    ("kwargs", "where", "params"),
    [
        ({"partition": "val"}, "AND partition = ?", ("val",)),
        ({"fold_id": "avg"}, "AND fold_id = ?", ("avg",)),
        ({"partition": "test", "fold_id": "0"}, "AND partition = ? AND fold_id = ?", ("test", "0")),
        ({"model_name": "PLSRegression", "partition": "train"}, "AND model_name = ? AND partition = ?",
         ("PLSRegression", "train")),
    ],
)
def test_filters_select_exactly_the_right_rows(demo_ws: Path, out: Path, kwargs, where, params) -> None:
    report = Workspace(demo_ws).export(out / "out", format="folder", **kwargs)
    for f in report.files:
        frame = read_polars(Path(f.path))
        assert set(frame["prediction_id"]) == live_ids(demo_ws, f.dataset, where, params)
        assert frame.height == f.rows
        for key, value in kwargs.items():
            assert set(frame[key]) == {value}
    expected_total = sum(len(live_ids(demo_ws, d, where, params)) for d in ("corn moisture", "tablets",
                                                                           "wheat.protein v2"))
    assert report.total_rows == expected_total


def test_duplicates_keep_the_last_copy_and_orphans_are_left_out(make_workspace, out: Path) -> None:
    """Rows written through nirs4all's save_batch: an upsert (duplicate id) and an array row without a prediction."""
    import numpy as np
    from nirs4all.pipeline.storage.array_store import ArrayStore

    ws = make_workspace("dups", [("corn", "regression", 90, 3)])
    first = read_polars(ws / "arrays" / "corn.parquet").row(0, named=True)
    pid = first["prediction_id"]
    new_pred = np.arange(len(first["y_pred"]), dtype=float)
    record = {k: first[k] for k in STORED} | {"y_true": np.array(first["y_true"]), "y_pred": new_pred}
    orphan = dict(record, prediction_id="orphan-0000000000")
    ArrayStore(ws).save_batch([record, orphan])

    report = Workspace(ws).export(out / "c.parquet")
    frame = read_polars(out / "c.parquet")
    assert frame["prediction_id"].to_list().count(pid) == 1
    assert frame.filter(frame["prediction_id"] == pid)["y_pred"].to_list()[0] == new_pred.tolist()
    assert "orphan-0000000000" not in set(frame["prediction_id"])
    assert report.excluded_duplicates == 1 and report.excluded_orphans == 1
    assert set(frame["prediction_id"]) == live_ids(ws, "corn")


# ----------------------------------------------------------- names and zips


def test_special_names_and_colliding_file_names(make_workspace, out: Path) -> None:
    """'a b' and 'a_b' share one nirs4all file; a name with a slash gets a safe file name."""
    from n4a_widgets.core.arrays_readonly import parquet_path_for

    ws = make_workspace("names", [("plant/leaf v1.2", "regression", 80, 1), ("a b", "regression", 80, 2),
                                  ("a_b", "regression", 80, 3)])
    assert parquet_path_for(ws, "a b") == parquet_path_for(ws, "a_b")
    report = Workspace(ws).export(out / "n.zip")
    members = zip_members(out / "n.zip")
    assert sorted(members) == ["a_b-2.parquet", "a_b.parquet", "plant_leaf_v1.2.parquet"]
    for f in report.files:
        frame = read_polars(members[f.member])
        assert set(frame["dataset_name"]) == {f.dataset}
        assert set(frame["prediction_id"]) == live_ids(ws, f.dataset)
    one = Workspace(ws).export(out / "slash.parquet", datasets=["plant/leaf v1.2"])
    assert one.files[0].rows == len(live_ids(ws, "plant/leaf v1.2"))


def test_zip_members_are_stored_not_recompressed(demo_ws: Path, out: Path) -> None:
    Workspace(demo_ws).export(out / "a.zip", datasets=["corn moisture", "tablets"], partition="val")
    with zipfile.ZipFile(out / "a.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["corn_moisture.parquet", "tablets.parquet"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert zf.testzip() is None


def test_auto_format_and_folder_destinations(demo_ws: Path, out: Path) -> None:
    ws = Workspace(demo_ws)
    r = ws.export(out, datasets=["tablets"])  # an existing folder: file named after the dataset
    assert r.format == "parquet" and Path(r.dest) == out / "tablets.parquet"
    r = ws.export(out, datasets=["tablets", "corn moisture"])
    assert r.format == "zip" and Path(r.dest) == out / f"{demo_ws.name}_predictions.zip"
    r = ws.export(out / "one.zip", datasets=["tablets"])
    assert r.format == "zip" and zip_members(out / "one.zip").keys() == {"tablets.parquet"}
    r = ws.export(out / "dir", format="folder")
    assert sorted(p.name for p in (out / "dir").iterdir()) == [
        "corn_moisture.parquet", "tablets.parquet", "wheat.protein_v2.parquet"]
    assert not [p for p in out.rglob("*.tmp")]


# ------------------------------------------------------------------- errors


def test_unknown_dataset_lists_the_known_ones(demo_ws: Path, out: Path) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        Workspace(demo_ws).export(out / "x.parquet", datasets=["barley"])
    assert "barley" in err.value.message
    assert "corn moisture" in err.value.hint and "tablets" in err.value.hint
    assert list(out.iterdir()) == []


def test_filters_matching_nothing_write_nothing(demo_ws: Path, out: Path) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        Workspace(demo_ws).export(out / "x.zip", partition="holdout")
    assert "holdout" in err.value.message and "nothing was written" in err.value.message
    assert "'val'" in err.value.hint  # says which partitions exist
    assert list(out.iterdir()) == []


def test_filter_empty_in_one_dataset_skips_it(demo_ws: Path, out: Path) -> None:
    report = Workspace(demo_ws).export(out / "x.zip", model_name="LogisticRegression")
    assert report.datasets == ("tablets",) and set(report.skipped_datasets) == {"corn moisture", "wheat.protein v2"}
    assert zip_members(out / "x.zip").keys() == {"tablets.parquet"}


def test_existing_destination_needs_overwrite(demo_ws: Path, out: Path) -> None:
    dest = out / "t.parquet"
    dest.write_text("keep me")
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace(demo_ws).export(dest, datasets=["tablets"])
    assert dest.read_text() == "keep me"
    Workspace(demo_ws).export(dest, datasets=["tablets"], overwrite=True)
    assert read_polars(dest).height == 30


def test_bad_destinations(demo_ws: Path, out: Path) -> None:
    ws = Workspace(demo_ws)
    with pytest.raises(WorkspaceError, match="does not exist"):
        ws.export(out / "missing" / "x.parquet", datasets=["tablets"])
    with pytest.raises(InvalidArgumentError, match="one dataset"):
        ws.export(out / "x.parquet", format="parquet")
    with pytest.raises(InvalidArgumentError, match="Unknown export format"):
        ws.export(out / "x.parquet", format="csv")
    with pytest.raises(WorkspaceError):  # the kernel refuses to create files in /proc, even for root
        ws.export("/proc/n4a_export_test.parquet", datasets=["tablets"])
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_destination_folder(demo_ws: Path, out: Path) -> None:
    folder = out / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(WorkspaceError, match="permission"):
        Workspace(demo_ws).export(folder / "x.parquet", datasets=["tablets"])


def test_refuses_to_write_inside_the_workspace_except_exports(demo_ws: Path) -> None:
    ws = Workspace(demo_ws)
    before = tree_hash(demo_ws)
    for dest in (demo_ws / "x.parquet", demo_ws / "arrays" / "x.parquet", demo_ws):
        with pytest.raises(InvalidArgumentError, match="inside the workspace"):
            ws.export(dest, datasets=["tablets"])
    assert tree_hash(demo_ws) == before
    r = ws.export(demo_ws / "exports" / "t.parquet", datasets=["tablets"])
    assert read_polars(Path(r.dest)).height == 30
    changed = set(tree_hash(demo_ws)) - set(before)
    assert changed == {"exports/", "exports/t.parquet"}


def test_corrupt_source_is_reported_and_nothing_is_left(demo_ws: Path, out: Path) -> None:
    source = demo_ws / "arrays" / "corn_moisture.parquet"
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(CorruptStoreError, match=r"corn_moisture\.parquet"):
        Workspace(demo_ws).export(out / "all.zip")
    assert list(out.iterdir()) == []


def test_cancel_removes_partial_files(demo_ws: Path, out: Path) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("Writing"):
            cancel.set()

    with pytest.raises(OperationCancelledError):
        Workspace(demo_ws).export(out / "out", format="folder", progress=progress, cancel=cancel)
    assert any(m.startswith("Writing") for m in seen)
    assert list(out.iterdir()) == []


def test_legacy_workspace_is_refused(out: Path) -> None:
    from n4a_widgets.core.errors import UnsupportedFormatError

    ws = out / "legacy"
    ws.mkdir()
    import sqlite3

    conn = sqlite3.connect(ws / "store.duckdb")  # a file with the legacy name is enough for status()
    conn.close()
    with pytest.raises((UnsupportedFormatError, WorkspaceError)):
        Workspace(ws).export(out / "x.parquet")


# ------------------------------------------------------- library contracts


def test_nirs4all_private_calls_we_rely_on(demo_ws: Path) -> None:
    """Fails loudly if nirs4all renames what the export uses (file naming, tombstones, one row group)."""
    import pyarrow.parquet as pq
    from nirs4all.pipeline.storage.array_store import _PARQUET_SCHEMA, ArrayStore

    store = ArrayStore(demo_ws, read_only=True)
    assert store._parquet_path("wheat.protein v2").name == "wheat_protein_v2.parquet"
    assert set(store._read_tombstones()) == tombstones(demo_ws)
    assert list(_PARQUET_SCHEMA.names[:8]) == list(STORED)
    assert pq.ParquetFile(store._parquet_path("tablets")).metadata.num_row_groups == 1


def test_thrift_footer_round_trips(demo_ws: Path) -> None:
    """Full decoding and the splice's lazy decoding (column chunks kept as bytes) both re-encode byte for byte."""
    from n4a_widgets.core.parquet_splice import SOURCE_FOOTER_PLAN, RawStruct, decode, encode, read_footer

    for path in (demo_ws / "arrays").glob("*.parquet"):
        data = path.read_bytes()
        meta, start = read_footer(io.BytesIO(data), len(data))
        assert encode(meta) == data[start:-8]
        lazy = decode(data[start:-8], SOURCE_FOOTER_PLAN)
        chunks = lazy.get(4).items[0].get(1).items
        assert chunks and all(isinstance(c, RawStruct) and 3 in c.field_ids for c in chunks)
        assert encode(lazy) == data[start:-8]


def test_pyarrow_private_reader_we_rely_on(demo_ws: Path) -> None:
    """The rewrite decodes through pyarrow's private ``ParquetReader(memory_pool=...)`` (``pq.ParquetFile`` takes
    no pool); fails loudly if that stops allocating from our pool or yields other rows than ``pq.read_table``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow._parquet import ParquetReader

    from n4a_widgets.core.export import _DatasetPlan, _iter_source

    assert callable(ParquetReader(memory_pool=pa.system_memory_pool()).close)
    source = demo_ws / "arrays" / "corn_moisture.parquet"
    pool = pa.proxy_memory_pool(pa.system_memory_pool())
    batches = list(_iter_source(_DatasetPlan("corn moisture", source, "x.parquet"), 7, pool))
    try:
        assert pool.bytes_allocated() > 0  # the decoded batches live in our pool
        assert len(batches) > 1 and all(b.num_rows <= 7 for b in batches)
        assert pa.Table.from_batches(batches).equals(pq.read_table(source))
    finally:
        del batches  # before the proxy pool goes away


def test_splice_abort_stops_the_copy_and_closes(demo_ws: Path, out: Path) -> None:
    """An early copy that turns out not to be needed is stopped; its file can be removed, no descriptor leaks."""
    from n4a_widgets.core.parquet_splice import Splice

    source = demo_ws / "arrays" / "corn_moisture.parquet"
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    splice = Splice(source, out / "partial.parquet")
    splice.abort()
    (out / "partial.parquet").unlink()
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(FileExistsError):  # never overwrites: the temporary name is created exclusively
        (out / "x.parquet").write_bytes(b"")
        Splice(source, out / "x.parquet")


def test_export_predictions_takes_a_root_path_and_keyword_options(demo_ws: Path, out: Path) -> None:
    import inspect

    from n4a_widgets.core.export import export_predictions

    params = inspect.signature(export_predictions).parameters
    assert list(params)[:2] == ["root", "dest"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in params.items() if name not in ("root", "dest"))
    report = export_predictions(demo_ws, out / "corn.parquet", datasets=["corn moisture"])
    assert report.total_rows > 0
    with pytest.raises(TypeError):
        export_predictions(demo_ws, out / "x.parquet", ["corn moisture"])  # type: ignore[misc]


def test_export_refuses_a_destination_reached_through_a_linked_arrays_folder(demo_ws: Path, tmp_path: Path) -> None:
    """arrays/ linked to another disk: writing into the link's target is writing into the workspace."""
    import shutil

    from n4a_widgets import InvalidArgumentError

    elsewhere = tmp_path / "other_disk_arrays"
    shutil.move(str(demo_ws / "arrays"), elsewhere)
    (demo_ws / "arrays").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InvalidArgumentError):
        Workspace(demo_ws).export(elsewhere / "leak.parquet", datasets=["corn moisture"])
    assert not (elsewhere / "leak.parquet").exists()
