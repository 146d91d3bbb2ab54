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


def test_failures_print_no_traceback_or_machine_path(demo_ws: Path) -> None:
    """Through a real subprocess, as a user's terminal sees it: one error line and a hint, exit 1."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HTTP_PROXY": "http://user:s3cr3t@127.0.0.1:9"}
    for sql, args in [
        ("SELECT 'infinity'::DATE AS d, " + "(" * 3000 + "1" + ")" * 3000, []),
        ("SELECT * FROM read_text('/etc/passwd')", []),
        ("SELECT * FROM register_external_resource('a', 'b')", []),
        ("SELECT length(repeat('xy', 1500000000))", ["--timeout", "1"]),
        ("SELECT current_setting('http_proxy') AS p", ["--json"]),
        ("SELECT 1 FROM range(3) WHERE " + " OR ".join(f"range = {i}" for i in range(8000)), []),
    ]:
        proc = subprocess.run([sys.executable, "-m", "n4a_widgets", "query", str(demo_ws), sql, *args],
                              capture_output=True, text=True, env=env, timeout=120)
        text = proc.stdout + proc.stderr
        assert "Traceback" not in text and "site-packages" not in text and ".venv" not in text, text
        assert "s3cr3t" not in text
        if proc.returncode:
            assert proc.returncode == 1 and proc.stderr.startswith("error: "), text
