"""StorageHealth driven through its Python twins (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

from n4a_widgets import StorageHealth, Workspace

from helpers import tree_hash


def test_widget_loads_and_refreshes(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    w = StorageHealth(demo_ws)
    assert w.wait(60)
    assert w.state == "done", w.error
    assert w.status["storage_mode"] == "migrated"
    assert w.report["total_predictions"] == Workspace(demo_ws).health().total_predictions
    assert [u["name"] for u in w.stats["space_usage"]][1] == "Prediction arrays"
    assert w.report["deep"] is False
    w.integrity_check()
    assert w.wait(60)
    assert w.report["deep"] is True and w.report["corrupt_files"] == []
    assert w.progress == 1.0
    json.dumps(w.report)
    assert tree_hash(demo_ws) == before


def test_button_messages_reach_the_twins(demo_ws: Path) -> None:
    w = StorageHealth(demo_ws, autoload=False)
    assert w.report == {}
    w._on_message(w, {"action": "refresh"}, [])  # what the JS Refresh button sends
    assert w.wait(60)
    assert w.report["total_datasets"] == 3
    w._on_message(w, {"action": "no-such-action"}, [])  # never silently dropped
    assert w.state == "error" and w.error["type"] == "InvalidArgumentError"
    assert "no-such-action" in w.error["message"]


def test_bad_path_shows_error_not_traceback(tmp_path: Path) -> None:
    w = StorageHealth(tmp_path / "missing")
    assert w.state == "error"
    assert w.error["type"] == "WorkspaceError"
    assert "does not exist" in w.error["message"] and w.error["hint"]


def test_corrupt_store_shows_error(demo_ws: Path) -> None:
    (demo_ws / "store.sqlite").write_bytes(b"garbage" * 200)
    w = StorageHealth(demo_ws)
    w.wait(60)
    assert w.state == "error"
    assert w.error["type"] == "CorruptStoreError"


def test_second_job_refused_while_busy(demo_ws: Path) -> None:
    import threading

    from n4a_widgets import jobs

    gate = threading.Event()
    blocker = jobs.start_job("compact", Workspace(demo_ws).path, lambda p, c: gate.wait(10), writes=True)
    try:
        w = StorageHealth(demo_ws)
        assert w.state == "error"
        assert w.error["type"] == "WorkspaceBusyError"
        assert "compact" in w.error["message"]
    finally:
        gate.set()
        blocker.wait(5)
    w.refresh()
    assert w.wait(60) and w.state == "done"


def test_legacy_workspace_shows_migration_needed(legacy_copy) -> None:
    w = StorageHealth(legacy_copy("v0_7_1_duckdb_inline"))
    assert w.wait(60)
    assert w.status["storage_mode"] == "legacy" and w.status["migration_needed"] is True
    assert w.report["migration_needed"] is True


def test_esm_bundle_is_built() -> None:
    from n4a_widgets.widgets.base import bundle

    path = bundle("storage_health")
    assert path.exists(), "run `npm run build`"
    assert "integrity_check" in path.read_text()


def test_path_is_normalised_and_other_is_explained(demo_ws: Path) -> None:
    w = StorageHealth(str(demo_ws / "arrays" / ".."))
    assert w.workspace_path == str(demo_ws)  # not ".../arrays/.."
    assert w.wait(60) and w.state == "done", w.error
    other = w.usage_notes["Other"]
    assert "native_results/" in [e["name"] for e in other["entries"]] and "result bundle" in other["text"]
    assert "Prediction arrays" not in w.usage_notes  # real Parquet files: their size says it all


def test_legacy_duckdb_says_arrays_are_inside_the_duckdb_file(legacy_copy) -> None:
    w = StorageHealth(legacy_copy("v0_7_1_duckdb_inline"))
    assert w.wait(60)
    assert w.usage_notes["Prediction arrays"]["inline"] is True
    assert "store.duckdb" in w.usage_notes["Prediction arrays"]["text"]
