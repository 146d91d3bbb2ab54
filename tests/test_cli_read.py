"""The CLI's read-only verbs, run as a user runs them (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from n4a_widgets import Workspace

from helpers import tree_hash


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "n4a_widgets", *args], capture_output=True, text=True, timeout=120)


def test_health_json_is_the_report(demo_ws: Path) -> None:
    before = tree_hash(demo_ws)
    out = cli("health", str(demo_ws), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    expected = Workspace(demo_ws).health().to_dict()
    data.pop("checked_at"), expected.pop("checked_at")
    assert data == expected
    assert tree_hash(demo_ws) == before


def test_status_and_stats(demo_ws: Path) -> None:
    out = cli("status", str(demo_ws), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["storage_mode"] == "migrated"
    out = cli("stats", str(demo_ws))
    assert out.returncode == 0 and "Prediction arrays" in out.stdout
    out = cli("health", str(demo_ws))
    assert out.returncode == 0 and "wheat.protein v2" in out.stdout


def test_errors_exit_non_zero_with_message(tmp_path: Path) -> None:
    out = cli("health", str(tmp_path / "missing"), "--json")
    assert out.returncode == 1
    assert "does not exist" in out.stderr and "hint:" in out.stderr
    assert out.stdout == ""
    (tmp_path / "notes.txt").write_text("x")
    out = cli("status", str(tmp_path))
    assert out.returncode == 1 and "not a nirs4all workspace" in out.stderr
    out = cli("frobnicate", str(tmp_path))
    assert out.returncode == 2


def test_import_is_light() -> None:
    heavy = "('nirs4all', 'duckdb', 'polars', 'pyarrow', 'anywidget')"
    code = f"import sys, n4a_widgets; print(any(m.startswith({heavy}) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
