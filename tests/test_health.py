"""health() exactness on real workspaces, with orphans made through nirs4all's own API."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from n4a_widgets import Workspace
from n4a_widgets.core.arrays_readonly import parquet_path_for

from helpers import prediction_ids, sqlite_rows, tree_hash


def _ids_by_dataset(ws: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pid, ds in sqlite_rows(ws / "store.sqlite", "SELECT prediction_id, dataset_name FROM predictions"):
        out.setdefault(ds, set()).add(pid)
    return out


def test_demo_health_matches_the_store(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    r = Workspace(demo_ws).health()
    by_ds = _ids_by_dataset(demo_ws)
    tomb = json.loads((demo_ws / "arrays" / "_tombstones.json").read_text())
    assert r.total_predictions == sum(len(v) for v in by_ds.values())
    assert r.total_datasets == 3
    assert {d.name: d.prediction_count for d in r.datasets} == {k: len(v) for k, v in by_ds.items()}
    # dataset names are dataset_name, not the sanitized file stem
    assert "wheat.protein v2" in {d.name for d in r.datasets}
    for d in r.datasets:
        assert d.parquet_size_bytes == parquet_path_for(demo_ws, d.name).stat().st_size
    assert r.pending_tombstones == len(tomb) == 4
    assert sum(d.pending_tombstones for d in r.datasets) == 4
    assert (r.orphan_metadata_count, r.orphan_array_count, r.corrupt_files) == (0, 0, ())
    assert r.healthy
    assert tree_hash(demo_ws) == before
    d = r.to_dict()
    assert set(d["datasets"][0]) >= {"name", "prediction_count", "parquet_size_bytes", "pending_tombstones"}
    json.dumps(d)


def test_orphans_on_both_sides_are_counted_exactly(demo_ws: Path) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    store = WorkspaceStore(demo_ws)  # writable open applies pending tombstones first
    try:
        df = store.query_predictions(dataset_name="corn moisture")
        victims = df["prediction_id"].to_list()[:3]
        # Array orphans: arrays whose metadata row vanished without a tombstone.
        with store.transaction():
            for pid in victims:
                store._conn.execute("DELETE FROM predictions WHERE prediction_id = ?", [pid])  # noqa: SLF001
    finally:
        store.close()
    # Metadata orphans: remove two rows from the wheat array file via nirs4all's ArrayStore.
    from nirs4all.pipeline.storage.array_store import ArrayStore

    arrays = ArrayStore(demo_ws)
    wheat = sorted(_ids_by_dataset(demo_ws)["wheat.protein v2"])[:2]
    arrays.delete_batch(set(wheat))
    arrays.compact("wheat.protein v2")

    r = Workspace(demo_ws).health()
    assert r.orphan_array_count == 3
    assert set(r.orphan_array_ids) == set(victims)
    assert r.orphan_metadata_count == 2
    assert set(r.orphan_metadata_ids) == set(wheat)
    per = {d.name: d for d in r.datasets}
    assert per["corn moisture"].orphan_array_count == 3
    assert per["wheat.protein v2"].orphan_metadata_count == 2
    assert not r.healthy


def test_tombstoned_rows_are_not_orphans(demo_ws: Path) -> None:
    r = Workspace(demo_ws).health()
    tablets = next(d for d in r.datasets if d.name == "tablets")
    assert tablets.pending_tombstones == 4
    assert tablets.array_rows == tablets.prediction_count + 4
    assert r.orphan_array_count == 0


def test_truncated_parquet_is_named(demo_ws: Path) -> None:
    path = parquet_path_for(demo_ws, "tablets")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = tree_hash(demo_ws)
    r = Workspace(demo_ws).health()
    assert r.corrupt_files == (str(path),)
    tablets = next(d for d in r.datasets if d.name == "tablets")
    # its predictions have no readable arrays any more
    assert tablets.orphan_metadata_count == tablets.prediction_count > 0
    assert r.orphan_metadata_count == tablets.prediction_count
    assert "tablets.parquet" in r.message
    assert tree_hash(demo_ws) == before


def test_deep_check_finds_damage_past_the_id_columns(demo_ws: Path) -> None:
    path = parquet_path_for(demo_ws, "corn moisture")
    meta = pq.read_metadata(path)
    # Overwrite bytes inside the y_true column chunk; footer and ids stay intact.
    col = next(i for i in range(meta.num_columns) if meta.schema.column(i).path.startswith("y_true"))
    chunk = meta.row_group(0).column(col)
    start = chunk.data_page_offset
    raw = bytearray(path.read_bytes())
    raw[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    quick = Workspace(demo_ws).health()
    assert quick.corrupt_files == ()
    deep = Workspace(demo_ws).health(deep=True)
    assert deep.corrupt_files == (str(path),)


def test_health_progress_and_cancel(demo_ws: Path) -> None:
    import threading

    from n4a_widgets import OperationCancelledError

    seen: list[tuple[float, str]] = []
    Workspace(demo_ws).health(deep=True, progress=lambda f, m: seen.append((f, m)))
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0
    assert any("Checking" in m for _, m in seen)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelledError):
        Workspace(demo_ws).health(cancel=cancel)


def test_stats_categories(demo_ws: Path) -> None:
    (demo_ws / "exports").mkdir()
    (demo_ws / "exports" / "a.csv").write_text("x" * 100)
    s = Workspace(demo_ws).stats()
    names = [u.name for u in s.space_usage]
    assert names == ["Metadata store", "Prediction arrays", "Artifacts", "Exports", "Logs", "Trash", "Other"]
    arrays = s.usage("Prediction arrays")
    files = [p for p in (demo_ws / "arrays").iterdir() if p.is_file()]
    assert arrays.size_bytes == sum(p.stat().st_size for p in files)
    assert arrays.file_count == len(files)
    assert s.usage("Exports").size_bytes == 100
    assert s.usage("Metadata store").size_bytes >= (demo_ws / "store.sqlite").stat().st_size
    assert s.total_size_bytes == sum(u.size_bytes for u in s.space_usage)
    assert abs(sum(u.percentage for u in s.space_usage) - 100) < 0.1


def test_duplicate_array_rows_count_once(demo_ws: Path) -> None:
    """nirs4all appends on save_batch and deduplicates at compaction: count ids, not rows."""
    from nirs4all.pipeline.storage.array_store import ArrayStore

    arrays = ArrayStore(demo_ws)
    pid = sorted(_ids_by_dataset(demo_ws)["corn moisture"])[0]
    record = arrays.load_single(pid, dataset_name="corn moisture")
    assert record is not None
    record = {
        **record,
        "prediction_id": pid,
        "dataset_name": "corn moisture",
        "model_name": "m",
        "fold_id": "0",
        "partition": "val",
        "metric": "rmse",
        "val_score": 0.0,
        "task_type": "regression",
    }
    arrays.save_batch([record])
    path = parquet_path_for(demo_ws, "corn moisture")
    rows = pq.read_metadata(path).num_rows
    r = Workspace(demo_ws).health()
    corn = next(d for d in r.datasets if d.name == "corn moisture")
    assert rows == corn.prediction_count + 1
    assert corn.array_rows == corn.prediction_count
    assert r.healthy
    assert r.total_predictions == len(prediction_ids(demo_ws))


def test_file_naming_and_tombstones_match_nirs4all(demo_ws: Path) -> None:
    """Health reproduces ArrayStore's file naming and tombstone reading without importing nirs4all."""
    from nirs4all.pipeline.storage import array_store

    from n4a_widgets.core import arrays_readonly

    assert arrays_readonly.UNSAFE_FILENAME_RE.pattern == array_store._UNSAFE_FILENAME_RE.pattern  # noqa: SLF001
    store = array_store.ArrayStore(demo_ws, read_only=True)
    names = ["corn moisture", "wheat.protein v2", "a/b\\c:d", "...", "", " x ", "tab\there", "ünï cödé", "x*?<>|y"]
    for name in names:
        assert arrays_readonly.parquet_path_for(demo_ws, name) == store._parquet_path(name), name  # noqa: SLF001
    theirs = store._read_tombstones()  # noqa: SLF001
    assert theirs and arrays_readonly.read_tombstones(demo_ws) == theirs


def _both_engines(ws: Path) -> tuple[dict, dict]:
    from n4a_widgets.core.health import compute_health

    status = Workspace(ws).status()
    fast = compute_health(ws, status).to_dict()
    sets = compute_health(ws, status, engine="sets").to_dict()
    for d in (fast, sets):
        d.pop("checked_at")
    return fast, sets


def test_arrow_engine_equals_set_engine_on_damage(demo_ws: Path) -> None:
    """Arrow path (current stores) == set path (legacy stores): orphans both ways, a row moved
    to another dataset's file, duplicates, tombstones, a truncated file, an array-less dataset."""
    import sqlite3

    from nirs4all.pipeline.storage.array_store import ArrayStore

    fast, sets = _both_engines(demo_ws)
    assert fast == sets and fast["healthy"]

    ids = _ids_by_dataset(demo_ws)
    db = sqlite3.connect(demo_ws / "store.sqlite")
    with db:  # metadata rows vanish (array orphans), one prediction changes dataset
        corn = sorted(ids["corn moisture"])
        db.executemany("DELETE FROM predictions WHERE prediction_id = ?", [(p,) for p in corn[:3]])
        db.execute("UPDATE predictions SET dataset_name = 'tablets' WHERE prediction_id = ?", [corn[5]])
    db.close()
    arrays = ArrayStore(demo_ws)
    wheat = sorted(ids["wheat.protein v2"])[:2]
    arrays.delete_batch(set(wheat))
    arrays.compact("wheat.protein v2")
    fast, sets = _both_engines(demo_ws)
    assert fast == sets
    assert fast["orphan_array_count"] == 3 and fast["orphan_metadata_count"] == 2

    path = parquet_path_for(demo_ws, "tablets")
    path.write_bytes(path.read_bytes()[:100])
    fast, sets = _both_engines(demo_ws)
    assert fast == sets and fast["corrupt_files"] == [str(path)]
    tablets = next(d for d in fast["datasets"] if d["name"] == "tablets")
    # every tablets prediction lost its arrays, except the one moved in from corn (arrays in corn's file)
    assert tablets["orphan_metadata_count"] == tablets["prediction_count"] - 1 > 0
