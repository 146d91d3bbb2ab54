"""MergeStores widget (driven through its Python twins) and the ``merge`` CLI verb."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from n4a_widgets import MergeStores, Workspace
from n4a_widgets.core.errors import InvalidArgumentError


@pytest.fixture
def family(small_master: Path, tmp_path: Path) -> dict[str, Path]:
    """target + two siblings in one folder (siblings are copies of a real run; one extra run makes conflicts)."""
    from n4a_widgets.demo import run_dataset

    root = tmp_path / "team"
    root.mkdir()
    shutil.copytree(small_master, root / "alice")
    shutil.copytree(small_master, root / "bob")
    run_dataset(root / "bob", "tablets", "classification", 90, 3, n_models=1)
    (root / "target").mkdir()
    (root / "not_a_workspace").mkdir()
    return {"root": root, "target": root / "target", "alice": root / "alice", "bob": root / "bob"}


def test_widget_preview_confirm(family: dict[str, Path]) -> None:
    w = MergeStores(family["target"])
    assert {s["name"] for s in w.siblings} == {"alice", "bob"}
    assert set(w.strategies) == {"keep_best", "keep_existing", "overwrite"}
    w.add_source(family["alice"])
    assert [s["name"] for s in w.siblings] == ["bob"]
    w.add_source(family["bob"])
    assert w.available_datasets == ["synthetic_regression", "tablets"]
    with pytest.raises(InvalidArgumentError):
        w.add_source(family["bob"])
    with pytest.raises(InvalidArgumentError):
        w.confirm()  # nothing previewed
    w.preview()
    assert w.wait(120)
    assert w.state == "done", w.error
    assert w.plan_id and w.preview_report["dry_run"] is True
    first = w.preview_report
    # changing an input clears the preview
    w.set_strategy("overwrite")
    assert w.plan_id == "" and w.preview_report == {}
    w.set_strategy("keep_best")
    w.set_datasets(["tablets"])
    assert w.plan_id == ""
    w.set_datasets([])
    w.preview()
    assert w.wait(120) and w.state == "done"
    assert w.preview_report == first
    w.confirm()
    assert w.wait(300)
    assert w.state == "done", w.error
    rep = w.report
    assert rep["dry_run"] is False and rep["plan_id"] == first["plan_id"]
    assert rep["added"] == first["added"] and rep["sources"][1]["conflicts"] > 0  # bob repeats alice's run
    assert w.plan_id == ""
    h = Workspace(family["target"]).health()
    assert h.total_predictions == rep["predictions_after"] and h.orphan_metadata_count == 0


def test_widget_refuses_changed_plan_and_shows_errors(family: dict[str, Path]) -> None:
    from n4a_widgets.demo import run_dataset

    w = MergeStores(family["target"], sources=[family["alice"]])
    w.preview()
    assert w.wait(120) and w.plan_id
    run_dataset(family["alice"], "corn", "regression", 60, 0, n_models=1)
    w.confirm()
    assert w.wait(120)
    assert w.state == "error" and w.error["type"] == "PlanChangedError"
    assert w.plan_id == ""  # preview again
    w._on_message(w, {"action": "add_source", "args": {"path": str(family["root"] / "missing")}}, [])
    assert w.state == "error" and "does not exist" in w.error["message"]


def test_widget_refuses_a_legacy_source_when_added_and_points_to_migration_wizard(
    family: dict[str, Path], legacy_copy,
) -> None:
    from n4a_widgets.core.errors import UnsupportedFormatError

    legacy = legacy_copy("v0_8_11_sqlite")
    w = MergeStores(family["target"], sources=[legacy])
    assert w.sources == []  # refused at once, not at preview
    assert w.state == "error" and w.error["type"] == "UnsupportedFormatError"
    assert "MigrationWizard" in w.error["hint"]
    with pytest.raises(UnsupportedFormatError):
        w.add_source(legacy)
    with pytest.raises(InvalidArgumentError, match="holds no nirs4all store"):
        w.add_source(family["root"] / "not_a_workspace")
    with pytest.raises(InvalidArgumentError, match="target workspace itself"):
        w.add_source(family["target"])
    assert w.sources == []


def test_widget_takes_a_zip_source_and_lists_archives_next_to_the_target(family: dict[str, Path]) -> None:
    import zipfile

    archive = family["root"] / "workspace.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in family["bob"].rglob("*"):
            if p.is_file():
                zf.write(p, f"workspace/{p.relative_to(family['bob']).as_posix()}")
    w = MergeStores(family["target"])
    assert any(s["archive"] and s["name"] == "workspace.zip" for s in w.siblings)
    w.add_source(archive)
    assert w.source_info[0]["archive"] and w.source_info[0]["predictions"] > 0
    assert w.available_datasets == ["synthetic_regression", "tablets"]
    w.preview()
    assert w.wait(120) and w.state == "done", w.error
    assert w.preview_report["sources"][0]["archive"] and w.preview_report["chains_added"] > 0
    w.confirm()
    assert w.wait(300) and w.state == "done", w.error
    assert w.report["added"] == w.report["predictions_after"] > 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "n4a_widgets", "merge", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_dry_run_then_plan(family: dict[str, Path]) -> None:
    t, a, b = (str(family[k]) for k in ("target", "alice", "bob"))
    dry = _cli(t, a, b, "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True and not (family["target"] / "store.sqlite").exists()
    human = _cli(t, a, b, "--on-conflict", "overwrite")
    assert human.returncode == 0 and "plan id:" in human.stdout and "alice" in human.stdout
    stale = _cli(t, a, b, "--yes", "--plan-id", "0" * 24)
    assert stale.returncode == 1 and "changed since" in stale.stderr
    done = _cli(t, a, b, "--yes", "--plan-id", plan["plan_id"], "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["dry_run"] is False and out["added"] == plan["added"]
    same = _cli(t, t)
    assert same.returncode == 1 and "target workspace itself" in same.stderr
    bad = _cli(t, a, "--dataset", "nope")
    assert bad.returncode == 1 and "No source has dataset" in bad.stderr
