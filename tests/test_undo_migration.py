"""Undo of an in-place migration: the original comes back while nothing was written since; refused otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from n4a_widgets import Workspace, WorkspaceError

from helpers import tree_hash


def _migrated(legacy_copy) -> tuple[Path, Path, str]:  # type: ignore[no-untyped-def]
    source = legacy_copy("v0_9_4_sqlite")
    before = tree_hash(source)
    preview = Workspace(source).migrate()
    report = Workspace(source).migrate(dry_run=False, plan_id=preview.plan_id)
    backup = Path(report.backup_path)
    assert tree_hash(backup) == before  # the source itself was never written (no history inside it)
    records = [r for r in Workspace(source).history() if r.operation == "migrate"]
    assert len(records) == 1 and records[0].undoable and records[0].outcome == "done"
    return source, backup, records[0].action_id


def test_undo_of_in_place_migration_puts_the_original_back(legacy_copy) -> None:  # type: ignore[no-untyped-def]
    source, backup, aid = _migrated(legacy_copy)
    original = tree_hash(backup)
    ws = Workspace(source)
    assert ws.status().storage_mode == "migrated"
    preview = ws.undo(aid)
    assert preview.dry_run and "original back" in preview.message
    done = Workspace(source).undo(aid, dry_run=False, plan_id=preview.plan_id)
    assert not backup.exists() and "kept at" in done.message
    assert Workspace(source).status().storage_mode == "legacy"
    leftovers = set(tree_hash(source)) - set(original)
    assert leftovers <= {".n4a_widgets.lock"}, leftovers  # nothing of ours but the (empty) job lock marker
    assert {k: v for k, v in tree_hash(source).items() if k in original} == original
    aside = next(source.parent.glob(f"{source.name}.undone-migration-*"))
    assert any(r.operation == "undo" and r.outcome == "done" for r in Workspace(aside).history())


def test_undo_of_migration_refused_after_a_write(legacy_copy) -> None:  # type: ignore[no-untyped-def]
    source, backup, aid = _migrated(legacy_copy)
    Workspace(source).remove_bottom(0.2, dry_run=False)
    with pytest.raises(WorkspaceError, match="written to since"):
        Workspace(source).undo(aid)
    assert backup.is_dir() and Workspace(source).status().storage_mode == "migrated"
