"""``python -m n4a_widgets query PATH "SQL"``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n4a_widgets.cli import main

from helpers import tree_hash


def test_query_prints_table_and_json(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_hash(demo_ws)
    sql = "SELECT dataset_name, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1"
    assert main(["query", str(demo_ws), sql]) == 0
    out = capsys.readouterr().out
    assert "dataset_name" in out and "corn moisture" in out and "3 rows" in out
    assert main(["query", str(demo_ws), sql, "--limit", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["columns"] == ["dataset_name", "n"] and len(data["rows"]) == 2 and data["truncated"] is True
    assert tree_hash(demo_ws) == before


def test_query_rejects_writes_with_exit_1(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_hash(demo_ws)
    assert main(["query", str(demo_ws), "DROP TABLE predictions"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["query", str(demo_ws), "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) "
                 "SELECT max(n) FROM r", "--timeout", "1"]) == 1
    assert "longer than 1 s" in capsys.readouterr().err
    assert tree_hash(demo_ws) == before
