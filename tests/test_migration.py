"""Migration of every real legacy fixture, checked against nirs4all 1.4.x itself.

The legacy side is read here with plain duckdb / sqlite3 / pyarrow (not with
the migration's own readers), the migrated side with nirs4all's
``WorkspaceStore.open_readonly`` and its ``ArrayStore.load_batch``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from n4a_widgets import MigrationError, UnsupportedFormatError, Workspace
from n4a_widgets.core import layout

from helpers import tree_hash

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text()) if (FIXTURES / "manifest.json").exists() else {}
CONVERTIBLE = sorted(
    name for name, info in MANIFEST.get("fixtures", {}).items() if info["storage_format"] != "fs-runs-manifest-yaml"
)
RUNS_TREES = sorted(
    name for name, info in MANIFEST.get("fixtures", {}).items() if info["storage_format"] == "fs-runs-manifest-yaml"
)
ARRAYS = ("y_true", "y_pred", "y_proba", "sample_indices", "weights")


def legacy_truth(root: Path) -> tuple[dict[str, tuple], dict[str, dict[str, np.ndarray | None]]]:
    """{id: (dataset, val, test, train)} and {id: arrays}, read with plain libraries."""
    import pyarrow.parquet as pq

    sql = "SELECT prediction_id, dataset_name, val_score, test_score, train_score FROM predictions"
    if (root / "store.duckdb").exists():
        import duckdb

        conn = duckdb.connect(str(root / "store.duckdb"), read_only=True)
        rows = conn.execute(sql).fetchall()
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        inline = {}
        if "prediction_arrays" in tables:
            for r in conn.execute(f"SELECT prediction_id, {', '.join(ARRAYS)} FROM prediction_arrays").fetchall():
                values = zip(ARRAYS, r[1:], strict=True)
                inline[r[0]] = {k: None if v is None else np.asarray(v, dtype=float) for k, v in values}
        conn.close()
    else:
        conn = sqlite3.connect(f"{(root / 'store.sqlite').as_uri()}?mode=ro&immutable=1", uri=True)
        rows = conn.execute(sql).fetchall()
        conn.close()
        inline = {}
    meta = {r[0]: tuple(r[1:]) for r in rows}
    arrays = dict(inline)
    for path in sorted((root / "arrays").glob("*.parquet")) if (root / "arrays").is_dir() else []:
        for rec in pq.read_table(path).to_pylist():
            arrays[rec["prediction_id"]] = {
                k: None if rec.get(k) is None else np.asarray(rec[k], dtype=float) for k in ARRAYS
            }
    return meta, arrays


def assert_same_as_nirs4all(legacy_root: Path, migrated: Path) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    meta, arrays = legacy_truth(legacy_root)
    store = WorkspaceStore.open_readonly(migrated)
    try:
        df = store.query_predictions()
        got = {
            r["prediction_id"]: (r["dataset_name"], r["val_score"], r["test_score"], r["train_score"])
            for r in df.iter_rows(named=True)
        }
        assert set(got) == set(meta), "prediction ids differ"
        for pid, values in meta.items():
            assert got[pid][0] == values[0]
            np.testing.assert_array_equal(np.array(got[pid][1:], dtype=float), np.array(values[1:], dtype=float))
        loaded = store.array_store.load_batch(list(meta))
        assert set(loaded) == set(arrays)
        for pid, legacy in arrays.items():
            for name in ARRAYS:
                a, b = legacy[name], loaded[pid].get(name)
                if a is None:
                    assert b is None, (pid, name)
                else:
                    np.testing.assert_array_equal(np.ravel(b).astype(float), a, err_msg=f"{pid} {name}")
        art = store._fetch_pl("SELECT artifact_id FROM artifacts")["artifact_id"].to_list()
        assert art, "no artifacts carried over"
        for artifact_id in art:
            model = store.load_artifact(artifact_id)
            assert hasattr(model, "fit") or hasattr(model, "transform")
    finally:
        store.close()


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_migrate_fixture_to_output(name: str, legacy_copy, tmp_path: Path) -> None:
    source = legacy_copy(name)
    before = tree_hash(source)
    ws = Workspace(source)
    assert ws.status().storage_mode == "legacy"
    plan = ws.migrate(dry_run=True)
    assert tree_hash(source) == before
    info = MANIFEST["fixtures"][name]
    assert plan.total_rows == info["predictions_total"]
    assert {d["name"]: d["predictions"] for d in plan.datasets} == info["predictions_per_dataset"]
    assert plan.estimated_duration_seconds is not None and plan.estimated_duration_seconds > 0
    out = tmp_path / "migrated"
    report = ws.migrate(dry_run=False, output=out)
    assert report.verification_passed and report.verification_mismatches == 0
    assert report.rows_migrated == info["predictions_total"] == report.verification_sample_size
    assert report.arrays_verified == info["predictions_with_arrays"]
    assert report.output_path == str(out) and report.backup_path is None
    assert report.table_counts_after["predictions"] == info["predictions_total"]
    for table in ("runs", "pipelines", "chains", "artifacts", "logs"):
        assert report.table_counts_after[table] == info["tables"][table], table
    assert tree_hash(source, ignore_empty_sidecars=True) == before, "the source changed"
    assert not layout.migration_staging_dir(source).exists()
    assert not layout.migration_journal(source).exists()
    assert Workspace(out).status().storage_mode == "migrated"
    assert_same_as_nirs4all(source, out)


@pytest.mark.parametrize("name", ["v0_7_1_duckdb_inline", "v0_9_4_sqlite"])
def test_migrate_in_place_keeps_backup_and_accepts_new_run(name: str, legacy_copy) -> None:
    from n4a_widgets.demo import run_dataset

    source = legacy_copy(name)
    before = tree_hash(source)
    report = Workspace(source).migrate(dry_run=False)
    backup = Path(report.backup_path)
    assert backup.name.startswith(f"{name}.legacy-")
    assert tree_hash(backup, ignore_empty_sidecars=True) == before
    assert report.output_path == str(source)
    assert Workspace(source).status().storage_mode == "migrated"
    assert_same_as_nirs4all(backup, source)
    run_dataset(source, "after migration", "regression", 60, 3, n_models=1)
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    with WorkspaceStore.open_readonly(source) as store:
        names = set(store.query_predictions()["dataset_name"].to_list())
    assert "after migration" in names
    assert set(MANIFEST["fixtures"][name]["datasets"]) <= names


def test_dry_run_writes_nothing_anywhere(legacy_copy) -> None:
    source = legacy_copy("v0_8_0_duckdb_sidecars")
    parent_before = tree_hash(source.parent)
    report = Workspace(source).migrate()
    assert report.dry_run and report.state == "planned"
    assert report.backup_path and Path(report.backup_path).name.startswith("v0_8_0_duckdb_sidecars.legacy-")
    assert tree_hash(source.parent) == parent_before


@pytest.mark.parametrize("name", RUNS_TREES)
def test_runs_tree_is_refused_with_an_explanation(name: str, legacy_copy) -> None:
    source = legacy_copy(name)
    before = tree_hash(source.parent)
    for dry in (True, False):
        with pytest.raises(UnsupportedFormatError) as info:
            Workspace(source).migrate(dry_run=dry)
        assert "cannot be carried over" in info.value.message and "Nothing was changed" in info.value.hint
    assert tree_hash(source.parent) == before


def test_current_workspace_has_nothing_to_migrate(small_ws: Path) -> None:
    with pytest.raises(MigrationError, match="nothing to migrate"):
        Workspace(small_ws).migrate(dry_run=False)


def test_output_inside_source_or_existing_is_refused(legacy_copy, tmp_path: Path) -> None:
    from n4a_widgets import InvalidArgumentError

    source = legacy_copy("v0_7_1_duckdb_inline")
    with pytest.raises(InvalidArgumentError):
        Workspace(source).migrate(dry_run=False, output=source / "inside")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    with pytest.raises(InvalidArgumentError):
        Workspace(source).migrate(dry_run=False, output=taken)


def test_natural_key_duplicates_are_reported_not_silently_merged(legacy_copy, tmp_path: Path) -> None:
    import duckdb

    source = legacy_copy("v0_7_1_duckdb_inline")
    conn = duckdb.connect(str(source / "store.duckdb"))  # a test-only edit of the private copy
    old = conn.execute("SELECT prediction_id FROM predictions ORDER BY prediction_id LIMIT 1").fetchone()[0]
    conn.execute(
        "INSERT INTO predictions SELECT 'dup0000000000001' AS prediction_id, * EXCLUDE (prediction_id, created_at), "
        "created_at + INTERVAL 1 HOUR FROM predictions WHERE prediction_id = ?", [old]
    )
    conn.execute(
        "INSERT INTO prediction_arrays SELECT 'dup0000000000001', * EXCLUDE (prediction_id) FROM prediction_arrays "
        "WHERE prediction_id = ?", [old]
    )
    conn.close()
    plan = Workspace(source).migrate(dry_run=True)
    assert plan.merged_duplicates == (old,)
    assert plan.total_rows == 43 and plan.rows_migrated == 42
    assert any("merged_duplicates" in w for w in plan.warnings)
    report = Workspace(source).migrate(dry_run=False, output=tmp_path / "out")
    assert report.merged_duplicates == (old,) and report.rows_migrated == 42 and report.verification_passed
    receipt = json.loads((tmp_path / "out" / ".n4a_migration_receipt.json").read_text())
    assert receipt["merged_duplicates"] == [old]


def test_verification_catches_a_corrupted_copy(legacy_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage one array value after conversion: nothing may be published."""
    from n4a_widgets.core.migration import execute as migration

    source = legacy_copy("v0_7_1_duckdb_inline")
    before = tree_hash(source)
    real = migration._build_convert

    def sabotaged(run, reader, staging, skip):
        result = real(run, reader, staging, skip)
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        store = WorkspaceStore(staging)
        pid = store._fetch_pl("SELECT prediction_id, dataset_name FROM predictions LIMIT 1").row(0)
        arrays = store.array_store.load_batch([pid[0]])[pid[0]]
        arrays["y_pred"] = arrays["y_pred"] + 1e-9
        store.array_store.save_batch([{"prediction_id": pid[0], "dataset_name": pid[1], **arrays}])
        store.close()
        return result

    monkeypatch.setattr(migration, "_build_convert", sabotaged)
    with pytest.raises(MigrationError, match="Verification found"):
        Workspace(source).migrate(dry_run=False)
    assert tree_hash(source) == before
    assert not layout.migration_staging_dir(source).exists()
    assert not layout.migration_journal(source).exists()


def test_private_nirs4all_calls_we_rely_on_still_exist() -> None:
    """Fails loudly when nirs4all changes an internal the migration uses."""
    import inspect

    from nirs4all.data._predictions.target_codec import decode_target_array
    from nirs4all.pipeline.storage.array_store import _sanitize_dataset_filename
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore
    from nirs4all.workspace.upgrade import upgrade_workspace_copy

    assert callable(decode_target_array) and callable(upgrade_workspace_copy)
    assert _sanitize_dataset_filename("wheat.v2") == "wheat_v2"
    assert hasattr(WorkspaceStore, "_ensure_open")
    params = inspect.signature(WorkspaceStore.save_prediction).parameters
    assert "prediction_id" in params
    assert list(inspect.signature(WorkspaceStore.register_existing_artifact).parameters)[1:] == [
        "artifact_id", "path", "content_hash", "operator_class", "artifact_type", "format", "size_bytes",
    ]


def test_concurrent_migration_is_refused(legacy_copy) -> None:
    from n4a_widgets import WorkspaceBusyError
    from n4a_widgets.core.locking import WorkspaceLock
    from n4a_widgets.core.migration import _lock_marker

    source = legacy_copy("v0_7_1_duckdb_inline")
    lock = WorkspaceLock(source, "migrate", marker=_lock_marker(source)).acquire()
    try:
        with pytest.raises(WorkspaceBusyError):
            Workspace(source).migrate(dry_run=False)
    finally:
        lock.release()
    assert Workspace(source).status().storage_mode == "legacy"


def test_cancel_leaves_source_untouched(legacy_copy) -> None:
    import threading

    from n4a_widgets import OperationCancelledError

    source = legacy_copy("v0_8_0_duckdb_sidecars")
    before = tree_hash(source)
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if "Converting" in message:
            cancel.set()

    with pytest.raises(OperationCancelledError):
        Workspace(source).migrate(dry_run=False, progress=progress, cancel=cancel)
    assert tree_hash(source) == before
    assert not layout.migration_staging_dir(source).exists()
    assert Workspace(source).status().storage_mode == "legacy"


def test_report_is_plain_json(legacy_copy, tmp_path: Path) -> None:
    report = Workspace(legacy_copy("v0_10_3_sqlite")).migrate(dry_run=False, output=tmp_path / "o")
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    for key in ("total_rows", "rows_migrated", "datasets_migrated", "verification_passed", "verification_sample_size",
                "verification_mismatches", "duckdb_size_before", "duckdb_size_after", "parquet_total_size",
                "duration_seconds", "errors", "source_format", "output_path", "backup_path"):
        assert key in data
    shutil.rmtree(tmp_path / "o")
