"""WorkspaceBrowser driven through its Python twins (and the page's messages) on a real tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from n4a_widgets import MaintenancePanel, StorageHealth, WorkspaceBrowser

from helpers import LEGACY_FIXTURES, prediction_ids, tree_hash


@pytest.fixture
def tree(tmp_path: Path, demo_master: Path, small_master: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(LEGACY_FIXTURES / "v0_8_11_sqlite", root / "old" / "a")
    shutil.copytree(LEGACY_FIXTURES / "v0_8_0_duckdb_sidecars", root / "old" / "b")
    shutil.copytree(LEGACY_FIXTURES / "v0_6_2_runs_tree", root / "old" / "c_runs")
    shutil.copytree(demo_master, root / "current" / "demo")
    shutil.copytree(small_master, root / "current" / "small")
    return root


def _modes(w: WorkspaceBrowser, root: Path) -> dict[str, str]:
    return {str(Path(r["path"]).relative_to(root)): r["storage_mode"] for r in w.rows}


def test_table_totals_and_health(tree: Path) -> None:
    w = WorkspaceBrowser(tree)
    assert w.wait()
    assert w.state == "done", w.error
    assert _modes(w, tree) == {"old/a": "legacy", "old/b": "legacy", "old/c_runs": "legacy",
                               "current/demo": "migrated", "current/small": "migrated"}
    assert w.totals["workspace_count"] == 5 and w.totals["legacy_count"] == 3
    assert w.totals["reclaimable_bytes"] > 0  # the demo has pending deletes
    assert set(w.health) == {str(tree / "current/demo"), str(tree / "current/small")}
    assert all(h["healthy"] for h in w.health.values())


def test_bulk_migrate_preview_confirm(tree: Path) -> None:
    w = WorkspaceBrowser(tree)
    w.wait()
    sources = {p: tree_hash(tree / p) for p in ("old/a", "old/b", "old/c_runs")}
    w.preview_migrate()
    w.wait()
    rows = {Path(r["path"]).name: r for r in w.preview["report"]["rows"]}
    assert rows["a"]["outcome"] == rows["b"]["outcome"] == "planned"
    assert rows["c_runs"]["outcome"] == "failed"  # a 0.6 runs tree is refused, with its reason, in the preview
    assert not (tree / "old" / "a-migrated").exists()
    w.confirm()
    w.wait(300)
    assert w.state == "done", w.error
    result = {Path(r["path"]).name: r for r in w.report["rows"]}
    assert result["a"]["outcome"] == result["b"]["outcome"] == "done"
    assert result["c_runs"]["outcome"] == "skipped"
    assert w.report["done"] == 2
    for name in ("a", "b"):
        out = tree / "old" / f"{name}-migrated"
        assert result[name]["output_path"] == str(out)
        assert len(prediction_ids(out)) == result[name]["report"]["rows_migrated"]
    assert {p: tree_hash(tree / p) for p in sources} == sources  # never in place
    # the table was rescanned: the two new copies are current workspaces
    assert _modes(w, tree)["old/a-migrated"] == "migrated" and _modes(w, tree)["old/b-migrated"] == "migrated"


def test_compact_merge_and_open_through_page_messages(tree: Path) -> None:
    w = WorkspaceBrowser(tree)
    w.wait()
    demo, small = str(tree / "current/demo"), str(tree / "current/small")
    w._on_message(w, {"action": "preview_compact", "args": {}}, [])
    w.wait()
    assert {r["path"]: r["outcome"] for r in w.preview["report"]["rows"]} == {demo: "planned", small: "nothing_to_do"}
    w._on_message(w, {"action": "confirm", "args": {}}, [])
    w.wait()
    assert w.state == "done", w.error
    assert next(r for r in w.rows if r["path"] == demo)["pending_tombstones"] == 0

    before = len(prediction_ids(Path(small)))
    w._on_message(w, {"action": "select", "args": {"paths": [demo]}}, [])
    w._on_message(w, {"action": "preview_merge", "args": {"target": small}}, [])
    w.wait()
    added = w.preview["report"]["rows"][0]["report"]["added"]
    assert added > 0
    w.discard_preview()
    w._on_message(w, {"action": "confirm", "args": {}}, [])  # nothing to confirm: an error, nothing runs
    assert w.state == "error" and "Nothing to confirm" in w.error["message"]
    assert len(prediction_ids(Path(small))) == before
    w.preview_merge(small)
    w.wait()
    w.confirm()
    w.wait()
    assert w.report["rows"][0]["outcome"] == "done"
    assert len(prediction_ids(Path(small))) == before + added - w.report["rows"][0]["report"]["removed"]

    opened = w.open_widget(demo, "maintenance")
    assert isinstance(opened, MaintenancePanel) and w.opened == {"path": demo, "kind": "maintenance"}
    w._on_message(w, {"action": "open_widget", "args": {"path": demo, "kind": "health"}}, [])
    assert isinstance(w.opened_widget, StorageHealth)
    shown = w._output.outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert shown["model_id"] == w.opened_widget.model_id
    with pytest.raises(Exception, match="Unknown kind"):
        w.open_widget(demo, "nope")


def test_bad_root_is_an_error_in_the_widget(tmp_path: Path) -> None:
    w = WorkspaceBrowser(tmp_path / "missing")
    assert w.state == "error" and "does not exist" in w.error["message"]
