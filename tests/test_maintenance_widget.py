"""MaintenancePanel driven through its Python twins on real workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from n4a_widgets.core.errors import InvalidArgumentError
from n4a_widgets.widgets.maintenance_panel import MaintenancePanel

from helpers import prediction_ids


def _done(w: MaintenancePanel) -> None:
    assert w.wait(120)
    assert w.state == "done", w.error


def test_loads_choices_and_histogram(demo_ws: Path) -> None:
    w = MaintenancePanel(demo_ws)
    _done(w)  # loads in the background: the cell is not blocked
    assert w.choices["datasets"] == ["corn moisture", "tablets", "wheat.protein v2"]
    assert "val_score" in w.choices["score_metrics"] and "val" in w.choices["partitions"]
    groups = w.distribution["groups"]
    assert {g["metric"] for g in groups} == {"rmse", "balanced_accuracy"}
    for g in groups:
        assert len(g["cut_scores"]) == 101 and sum(g["counts"]) + g["missing"] == g["total"]
    w.dataset = "tablets"
    assert [g["metric"] for g in w.distribution["groups"]] == ["balanced_accuracy"]
    assert w.busy_reason == ""


def test_preview_then_confirm_removes_exactly_the_preview(demo_ws: Path) -> None:
    w = MaintenancePanel(demo_ws)
    before = prediction_ids(demo_ws)
    w.preview_remove_bottom(0.3)
    _done(w)
    preview = w.preview["report"]
    assert w.preview["operation"] == "remove_bottom" and preview["dry_run"] is True
    assert prediction_ids(demo_ws) == before
    w.confirm()
    assert w.preview == {}
    _done(w)
    assert w.last_action == "remove_bottom"
    assert w.report["removed"] == preview["removed"] and w.report["plan_id"] == preview["plan_id"]
    assert before - prediction_ids(demo_ws) == set(preview["prediction_ids"])


def test_changing_an_input_clears_the_preview_and_confirm_refuses(demo_ws: Path) -> None:
    w = MaintenancePanel(demo_ws)
    w.preview_remove_bottom(0.3)
    _done(w)
    assert w.preview
    w.fraction = 0.5
    assert w.preview == {}
    with pytest.raises(InvalidArgumentError, match="Nothing to confirm"):
        w.confirm()
    # Through the front-end message path the error lands in the error trait.
    w._on_message(w, {"action": "confirm", "args": {}}, [])
    assert w.error["type"] == "InvalidArgumentError"


def test_confirm_after_the_workspace_changed_deletes_nothing(demo_ws: Path) -> None:
    from n4a_widgets.demo import run_dataset

    w = MaintenancePanel(demo_ws)
    w.preview_remove_bottom(0.3)
    _done(w)
    run_dataset(demo_ws, "late arrival", "regression", 90, 7, n_models=1)
    before = prediction_ids(demo_ws)
    w.confirm()
    w.wait(120)
    assert w.state == "error" and w.error["type"] == "PlanChangedError"
    assert prediction_ids(demo_ws) == before
    assert w.preview == {}


def test_compact_clean_and_integrity(demo_ws: Path) -> None:
    w = MaintenancePanel(demo_ws)
    w.compact()
    _done(w)
    assert w.last_action == "compact" and w.report["rows_removed"] == 4
    w.preview_clean_dead_links()
    _done(w)
    assert w.preview["operation"] == "clean_dead_links" and w.preview["report"]["removed_metadata"] == 0
    w.confirm()
    _done(w)
    assert w.last_action == "clean_dead_links" and w.report["dry_run"] is False
    w.integrity_check()
    _done(w)
    assert w.last_action == "integrity_check" and w.report["healthy"] is True and w.report["deep"] is True


def test_busy_reason_names_another_processes_job(demo_ws: Path) -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from n4a_widgets.core.locking import exclusive_job
        with exclusive_job(Path({str(demo_ws)!r}), "other kernel's compact"):
            print("READY", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        w = MaintenancePanel(demo_ws)
        _done(w)
        assert "other kernel's compact" in w.busy_reason
        w.compact()
        w.wait(60)
        assert w.state == "error" and w.error["type"] == "WorkspaceBusyError"
    finally:
        proc.kill()
        proc.wait()
    w.refresh()
    _done(w)
    assert w.busy_reason == ""


def test_construction_does_not_wait_for_the_workspace(demo_ws: Path) -> None:
    """Issue 16: the cell returns at once; the load runs as a job and the first action waits for it."""
    w = MaintenancePanel(demo_ws)
    assert w.job_name == "Loading workspace" and w._loading is not None
    w.preview_remove_bottom(0.3)  # waits for the load, then previews
    _done(w)
    assert w.choices["datasets"] and w.preview["operation"] == "remove_bottom"


def test_bad_path_shows_error() -> None:
    w = MaintenancePanel("/no/such/workspace")
    assert w.state == "error" and "does not exist" in w.error["message"]
