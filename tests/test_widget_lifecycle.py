"""Issue 16 (lifecycle): every widget can be collected after close(), and a process that drops
widgets without closing them exits cleanly.  (SqlConsole's exit path is tested with the SQL engine.)"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

import n4a_widgets.widgets as W

REPO = Path(__file__).resolve().parents[1]
NAMES = [n for n in W.__all__ if n != "SqlConsole"]


@pytest.mark.parametrize("name", NAMES)
def test_closed_widget_is_collected(name: str, demo_ws: Path) -> None:
    cls = getattr(W, name)
    w = cls(demo_ws)
    assert w.wait(120)
    if name == "MaintenancePanel":  # exercise the preview mixin too
        w.preview_remove_bottom(0.2)
        assert w.wait(120)
    ref = weakref.ref(w)
    w.close()
    del w
    gc.collect()
    assert ref() is None, f"{name} is still referenced after close(): {gc.get_referrers(ref())[:3]}"


def test_process_that_drops_widgets_exits_cleanly(demo_ws: Path, legacy_copy) -> None:
    legacy = legacy_copy("v0_9_4_sqlite")
    code = textwrap.dedent(f"""
        import n4a_widgets.widgets as W
        ws, legacy = {str(demo_ws)!r}, {str(legacy)!r}
        kept = []
        for name in {NAMES!r}:
            w = getattr(W, name)(legacy if name == "MigrationWizard" else ws)
            kept.append(w)   # built, maybe still loading: never closed
        kept[0].wait(60)
        mid = W.MaintenancePanel(ws)
        mid.preview_remove_bottom(0.2)   # exit while a job may still run
        print("BUILT", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "BUILT" in proc.stdout, proc.stderr
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
