"""CLI verbs history / undo / purge-trash: dry run by default, --yes --plan-id, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n4a_widgets.cli import main

from helpers import prediction_ids


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_history_undo_purge_from_the_cli(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(demo_ws)
    assert _json(capsys, "history", ws) == []
    plan = _json(capsys, "remove-bottom", ws, "--fraction", "0.3")
    done = _json(capsys, "remove-bottom", ws, "--fraction", "0.3", "--yes", "--plan-id", plan["plan_id"])
    assert done["removed"] == plan["removed"] > 0
    history = _json(capsys, "history", ws)
    assert history[0]["operation"] == "remove_bottom" and history[0]["undoable"] is True
    aid = history[0]["action_id"]
    assert main(["history", ws]) == 0 and aid in capsys.readouterr().out

    before = prediction_ids(demo_ws)
    preview = _json(capsys, "undo", ws, aid)
    assert preview["dry_run"] is True and preview["restored"] == done["removed"]
    assert prediction_ids(demo_ws) == before
    assert main(["undo", ws, aid, "--yes"]) == 1 and "--plan-id" in capsys.readouterr().err
    result = _json(capsys, "undo", ws, aid, "--yes", "--plan-id", preview["plan_id"])
    assert result["restored"] == done["removed"] and set(done["prediction_ids"]) <= prediction_ids(demo_ws)
    assert main(["undo", ws, aid]) == 1 and "already undone" in capsys.readouterr().err

    purge = _json(capsys, "purge-trash", ws, "--older-than-days", "0")
    assert purge["dry_run"] is True and purge["purged_actions"] >= 1
    gone = _json(capsys, "purge-trash", ws, "--older-than-days", "0", "--yes", "--plan-id", purge["plan_id"])
    assert gone["purged_actions"] == purge["purged_actions"]
    assert not any((demo_ws / ".n4a_trash").iterdir())


def test_compact_cli_prints_a_plan_id(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _json(capsys, "compact", str(demo_ws))
    assert plan["dry_run"] is True and plan["plan_id"]
    done = _json(capsys, "compact", str(demo_ws), "--yes", "--plan-id", plan["plan_id"])
    assert done["rows_removed"] == plan["rows_removed"] and done["bytes_reclaimed"] >= 0
