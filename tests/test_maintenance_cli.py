"""CLI verbs compact, clean, remove-bottom: dry run by default, --yes --plan-id to execute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n4a_widgets.cli import main

from helpers import prediction_ids, tree_hash


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_remove_bottom_dry_run_then_execute(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_hash(demo_ws, ignore_empty_sidecars=True)
    dry = _json(capsys, ["remove-bottom", str(demo_ws), "--fraction", "0.3", "--json"])
    assert dry["dry_run"] is True and tree_hash(demo_ws, ignore_empty_sidecars=True) == before
    assert main(["remove-bottom", str(demo_ws), "--fraction", "0.3", "--yes"]) == 1
    assert "--plan-id" in capsys.readouterr().err
    real = _json(
        capsys, ["remove-bottom", str(demo_ws), "--fraction", "0.3", "--yes", "--plan-id", dry["plan_id"], "--json"]
    )
    assert real["removed"] == dry["removed"] and real["prediction_ids"] == dry["prediction_ids"]
    assert not set(dry["prediction_ids"]) & prediction_ids(demo_ws)
    # The same plan again: the workspace changed, so it is refused with a hint.
    assert main(["remove-bottom", str(demo_ws), "--fraction", "0.3", "--yes", "--plan-id", dry["plan_id"]]) == 1
    err = capsys.readouterr().err
    assert "changed since" in err and "hint:" in err


def test_human_output_and_validation(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remove-bottom", str(demo_ws), "--fraction", "0.2", "--partition", "all"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "--yes --plan-id" in out
    assert main(["remove-bottom", str(demo_ws), "--fraction", "2"]) == 1
    assert "[0, 1]" in capsys.readouterr().err
    assert main(["remove-bottom", str(demo_ws), "--fraction", "0.1", "--dataset", "nope"]) == 1
    assert "'tablets'" in capsys.readouterr().err


def test_clean_and_compact(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dry = _json(capsys, ["compact", str(demo_ws), "--json"])
    assert dry["dry_run"] is True and dry["rows_removed"] == 4
    real = _json(capsys, ["compact", str(demo_ws), "--yes", "--json"])
    assert real["rows_removed"] == 4 and real["bytes_after"] is not None
    plan = _json(capsys, ["clean", str(demo_ws), "--json"])
    done = _json(capsys, ["clean", str(demo_ws), "--yes", "--plan-id", plan["plan_id"], "--json"])
    assert done["dry_run"] is False and done["removed_metadata"] == plan["removed_metadata"]
