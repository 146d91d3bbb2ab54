"""MergeStores in real JupyterLab: add a sibling source, Preview (exact counts), Confirm, target holds the merge."""

from __future__ import annotations

import shutil
from pathlib import Path

from jlab import show_widget


def test_merge_stores_preview_then_confirm(jupyter_server, page, demo_master: Path) -> None:
    from n4a_widgets import Workspace
    from n4a_widgets.demo import run_dataset

    team = jupyter_server.root / "team"
    if team.exists():
        shutil.rmtree(team)
    team.mkdir()
    target, source = team / "target", team / "lab_b"
    shutil.copytree(demo_master, target)
    # Another machine's copy of the demo (every row conflicts) that then ran a new dataset (added).
    shutil.copytree(demo_master, source)
    run_dataset(source, "synthetic_regression", "regression", 90, 5, n_models=1)
    expected = Workspace(target).merge([source], on_conflict="overwrite").to_dict()
    assert expected["added"] > 0 and expected["conflicts"] > 0 and expected["removed"] > 0

    nb, widget = show_widget(page, jupyter_server, "merge.ipynb", [
        "from n4a_widgets import MergeStores\nw = MergeStores('team/target')\nw",
        "print('WAITED', w.wait(120), w.state, w.report.get('added'), w.report.get('removed'))",
    ], "n4a-merge-stores")

    # The sibling list offers lab_b: one click adds it as a source.
    widget.locator("[data-list=siblings] [data-action=add_sibling]").first.wait_for()
    assert widget.locator("[data-list=siblings] [data-sibling]").count() == 1
    widget.locator("[data-list=siblings] [data-action=add_sibling]").click()
    widget.locator("[data-list=sources] [data-source]").wait_for()
    assert (widget.locator("[data-list=sources] [data-source]").get_attribute("data-source") or "").endswith("lab_b")
    assert widget.locator("[data-list=siblings] [data-sibling]").count() == 0

    widget.locator("input[data-strategy=overwrite]").check()
    widget.locator("input[data-strategy=overwrite]:checked").wait_for()
    widget.locator("button[data-action=preview]").click()
    preview = widget.locator("[data-summary=preview]")
    preview.wait_for(timeout=120_000)
    assert preview.get_attribute("data-added") == str(expected["added"])
    assert preview.get_attribute("data-removed") == str(expected["removed"])
    assert preview.get_attribute("data-conflicts") == str(expected["conflicts"])
    assert f"plan {expected['plan_id']}" in preview.inner_text()
    assert widget.locator("[data-table=sources] tbody tr").count() == 1
    assert widget.locator("[data-table=conflicts] tbody tr").count() == min(50, expected["conflicts"])

    widget.locator("button[data-action=confirm]").click()
    done = widget.locator("[data-summary=done]")
    done.wait_for(timeout=180_000)
    assert done.get_attribute("data-added") == str(expected["added"])
    assert f"WAITED True done {expected['added']} {expected['removed']}" in nb.run_python(1)

    health = Workspace(target).health()
    assert health.total_predictions == expected["predictions_after"]
    assert health.orphan_metadata_count == 0 and health.orphan_array_count == 0
    assert not health.corrupt_files
