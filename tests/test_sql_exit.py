"""A Python process that drops a SqlSession or SqlConsole without close() exits cleanly (issue 16).

Each scenario runs in a fresh interpreter: exit code 0, nothing on stderr
(no "terminate called ...", no "Exception ignored ..."), no hang (the
subprocess timeout is the hang detector), and no worker process left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCENARIOS = {
    "session dropped": """
        s = SqlSession(WS)
        s.execute("SELECT count(*) FROM predictions JOIN arrays USING (prediction_id)").result()
    """,
    "session with a running query at exit": """
        import threading, time
        s = SqlSession(WS)
        t = threading.Thread(target=lambda: s.execute(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
            timeout_s=60), daemon=True)
        t.start()
        time.sleep(0.5)
    """,
    "session collected": """
        import gc
        s = SqlSession(WS)
        s.execute("SELECT 1").result()
        pid = s._proc.pid
        del s
        gc.collect()
        import time
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("worker still alive after the session was collected")
    """,
    "console dropped while warming up": """
        from n4a_widgets import SqlConsole
        w = SqlConsole(WS)
    """,
    "console dropped after a query": """
        from n4a_widgets import SqlConsole
        w = SqlConsole(WS, warm_up=False)
        w.run("SELECT p.model_name, a.y_pred FROM predictions p JOIN arrays a USING (prediction_id)")
        assert w.wait(60) and w.state == "done", w.error
    """,
    "console dropped during a query": """
        import time
        from n4a_widgets import SqlConsole
        w = SqlConsole(WS, warm_up=False)
        w.run(" UNION ALL ".join(f"SELECT {i}" for i in range(4500)))
        time.sleep(0.3)
    """,
}


def _workers_of(pid: int) -> list[int]:
    """Live processes started by ``pid`` (the SQL workers run in their own session, so look by parent)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_dropping_without_close_exits_cleanly(name: str, demo_ws: Path) -> None:
    code = "import os\nfrom pathlib import Path\nfrom n4a_widgets.core.sql import SqlSession\n"
    code += f"WS = Path({str(demo_ws)!r})\n" + textwrap.dedent(SCENARIOS[name])
    code += f"\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    code += "from test_sql_exit import _workers_of\nprint('WORKERS', *_workers_of(os.getpid()))\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{name}: the process hung at exit")
    assert proc.returncode == 0, (name, out, err)
    assert err.strip() == "", (name, err)
    workers = [int(p) for p in out.split("WORKERS", 1)[1].split()]
    deadline = time.monotonic() + 10
    while workers and time.monotonic() < deadline:  # they end with their parent (stdin closed, death signal)
        workers = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        time.sleep(0.1)
    assert not workers, (name, workers)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
