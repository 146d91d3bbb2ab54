"""MigrationWizard driven through its Python twins, and the ``migrate`` CLI verb."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from n4a_widgets import MigrationWizard, Workspace
from n4a_widgets.cli import main

from helpers import tree_hash

REPO = Path(__file__).resolve().parents[1]


def test_wizard_dry_run_then_start(legacy_copy) -> None:
    source = legacy_copy("v0_7_1_duckdb_inline")
    before = tree_hash(source)
    w = MigrationWizard(source)
    assert w.status["storage_mode"] == "legacy" and w.stats["size_bytes"] > 0
    w.dry_run()
    assert w.wait(120)
    assert w.state == "done", w.error
    assert w.plan["dry_run"] and w.plan["total_rows"] == 42
    assert w.plan["backup_path"].startswith(str(source) + ".legacy-")
    promised = w.plan["backup_path"]
    assert tree_hash(source) == before
    w.start()
    assert w.wait(300)
    assert w.state == "done", w.error
    assert w.report["state"] == "published" and w.report["verification_passed"]
    assert w.report["backup_path"] == promised  # the dry run named the real backup (issue 16)
    assert not list(source.parent.glob(".*.n4a-migration.lock"))
    assert w.status["storage_mode"] == "migrated"
    assert tree_hash(Path(w.report["backup_path"])) == before


def test_wizard_button_messages_and_output(legacy_copy, tmp_path: Path) -> None:
    source = legacy_copy("v0_9_4_sqlite")
    w = MigrationWizard(source)
    w._on_message(w, {"action": "set_output", "args": {"output": str(tmp_path / "new")}}, [])
    assert w.output == str(tmp_path / "new")
    w._on_message(w, {"action": "start"}, [])  # Start without a preview is refused
    assert w.state == "error" and "Preview the migration first" in w.error["message"]
    assert Workspace(source).status().storage_mode == "legacy" and not (tmp_path / "new").exists()
    w._on_message(w, {"action": "dry_run"}, [])
    assert w.wait(120) and w.state == "done", w.error
    assert w.plan["output_path"] == str(tmp_path / "new") and w.preview["operation"] == "migrate"
    w._on_message(w, {"action": "start"}, [])
    assert w.wait(300) and w.state == "done", w.error
    assert w.report["output_path"] == str(tmp_path / "new") and w.report["backup_path"] is None
    assert Workspace(source).status().storage_mode == "legacy"
    assert not list(source.parent.glob(".*.n4a-migration.lock"))  # no empty lock file left beside the source
    health = w.open_storage_health()  # the "Open StorageHealth" button's twin
    assert health.wait(60) and health.state == "done", health.error
    assert w.health["workspace_path"] == str(tmp_path / "new") and w.health["report"]["total_predictions"] > 0
    w._on_message(w, {"action": "health_action", "args": {"content": {"action": "integrity_check"}}}, [])
    assert health.wait(60) and w.health["report"]["deep"] is True
    w.close()
    assert health.comm is None  # closed with the wizard


def test_wizard_shows_failure_and_keeps_source(legacy_copy) -> None:
    source = legacy_copy("v0_6_2_runs_tree")
    w = MigrationWizard(source)
    w.preview()
    w.wait(60)
    assert w.state == "error" and w.error["type"] == "UnsupportedFormatError"
    assert w.preview == {}


def test_wizard_resume_and_rollback_of_mid_migration(legacy_copy) -> None:
    env_script = (
        "import sys; from n4a_widgets import Workspace; Workspace(sys.argv[1]).migrate(dry_run=False)"
    )
    source = legacy_copy("v0_8_0_duckdb_sidecars")
    before = tree_hash(source)
    proc = subprocess.run([sys.executable, "-c", env_script, str(source)], cwd=REPO, capture_output=True,
                          env={**__import__("os").environ, "N4A_MIGRATION_TEST_KILL_AT": "source_renamed"})
    assert proc.returncode == -9
    w = MigrationWizard(source)
    assert w.status["storage_mode"] == "mid_migration"
    w.dry_run()
    assert w.wait(60) and w.plan["state"] == "mid_migration"
    w.rollback()
    assert w.wait(120) and w.state == "done", w.error
    assert w.report["state"] == "rolled_back" and w.status["storage_mode"] == "legacy"
    assert tree_hash(source) == before


def test_cli_defaults_to_dry_run(legacy_copy, capsys) -> None:
    source = legacy_copy("v0_7_1_duckdb_inline")
    before = tree_hash(source.parent)
    assert main(["migrate", str(source), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is True and data["total_rows"] == 42
    assert main(["migrate", str(source)]) == 0
    assert "DRY RUN" in capsys.readouterr().out
    assert tree_hash(source.parent) == before


def test_cli_yes_migrates_and_errors_exit_nonzero(legacy_copy, tmp_path: Path, capsys) -> None:
    source = legacy_copy("v0_10_3_sqlite")
    assert main(["migrate", str(source), "--yes", "--output", str(tmp_path / "o"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "published" and data["verification_passed"]
    assert main(["migrate", str(tmp_path / "o"), "--yes"]) == 1
    assert "nothing to migrate" in capsys.readouterr().err
    assert main(["migrate", str(source), "--rollback", "--yes"]) == 1
