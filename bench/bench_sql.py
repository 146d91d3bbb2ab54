"""SQL console latency and memory, against the old in-process engine and the plain polars way, in one run.

    .venv/bin/python bench/bench_sql.py [--n 100000] [--repeat 3] [--old-commit dd0a24c] [--skip-1m]

What it measures (median of ``--repeat``; each side in a fresh subprocess, so peak memory is its own):

1. 100k: the first page (50 rows) of ``predictions ⋈ arrays`` — cold (new session: worker start,
   engine set-up, loading the columns) and warm (the same session's next query); goal < 1 s cold.
2. 100k: a warm metadata aggregate, ours (worker process) against the old in-process engine of
   commit ``--old-commit`` (default dd0a24c), run from a temporary ``git worktree`` of that commit
   in the same run: the ratio is the cost of the worker (one round trip, pages converted there).
3. 1M (issue 14's SQL target): the first page of
   ``predictions ⋈ arrays WHERE partition='val' ORDER BY val_score LIMIT 50`` against the plain
   polars way (read the metadata from SQLite, scan the Parquet arrays, join, sort, head 50);
   goal: at most 0.5x polars' time and under 600 MB (worker peak + kernel peak).

Workspaces come from ``bench/workspace_factory.py`` (100k: a private copy of the cached build; 1M:
the cached build is used read-only in place — SQL never writes — found under the bench cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

JOIN_SQL = (
    "SELECT p.dataset_name, p.model_name, p.fold_id, p.partition, p.val_score, a.y_true, a.y_pred "
    "FROM predictions p JOIN arrays a USING (prediction_id) WHERE p.partition = 'test'"
)
AGG_SQL = (
    "SELECT dataset_name, model_name, partition, count(*) AS n, avg(val_score) AS mean_val, min(val_score) AS best "
    "FROM predictions GROUP BY dataset_name, model_name, partition ORDER BY dataset_name, model_name, partition"
)
AGG_SQL_2 = (
    "SELECT model_name, count(*) AS n, max(val_score) AS worst FROM predictions "
    "WHERE partition = 'val' GROUP BY model_name ORDER BY model_name"
)
PAGE_1M_SQL = (
    "SELECT p.prediction_id, p.dataset_name, p.model_name, p.val_score, a.y_true, a.y_pred "
    "FROM predictions p JOIN arrays a USING (prediction_id) WHERE p.partition = 'val' "
    "ORDER BY p.val_score LIMIT 50"
)

# ---------------------------------------------------------------- child side (one measurement per process)

CHILD = r'''
import json, os, statistics, sys, time
from pathlib import Path
mode, ws, repeat = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
J, A1, A2, P = (json.loads(x) for x in sys.argv[4:8])

def hwm(pid="self"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0

def med(fn):
    out = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return statistics.median(out)

def worker_pid(s):
    proc = getattr(s, "_proc", None)
    return proc.pid if proc is not None else None

res = {}
if mode == "session":  # ours or the old engine, whichever n4a_widgets is first on sys.path
    from n4a_widgets.core.sql import SqlSession
    def cold_join():
        with SqlSession(ws) as s:
            s.execute(J, limit=1000, page_size=50).result(0)
    cold_join()  # page cache and imports warm for both sides
    res["join_cold"] = med(cold_join)
    s = SqlSession(ws)
    s.execute(J, limit=1000, page_size=50).result(0)
    res["join_warm"] = med(lambda: s.execute(J, limit=1000, page_size=50).result(0))
    s.execute(A1, limit=10000).result()
    res["agg_warm"] = med(lambda: s.execute(A2, limit=10000).result())
    pid = worker_pid(s)
    res["worker_hwm"] = hwm(pid) if pid else 0
    s.close()
elif mode == "page1m":
    from n4a_widgets.core.sql import SqlSession
    s = SqlSession(ws)
    t = time.perf_counter(); rows = s.execute(P, limit=1000, page_size=50, timeout_s=600).result(0).rows
    res["cold"] = time.perf_counter() - t
    res["warm"] = med(lambda: s.execute(P, limit=1000, page_size=50, timeout_s=600).result(0))
    res["rows"] = len(rows); res["first"] = rows[0][0]
    pid = worker_pid(s)
    res["worker_hwm"] = hwm(pid) if pid else 0
    s.close()
elif mode == "console1m":  # what SqlConsole does: warm up while the user types, then the first query
    from n4a_widgets.core.sql import SqlSession
    s = SqlSession(ws)
    t = time.perf_counter(); s.warm_up(); res["warm_up"] = time.perf_counter() - t
    t = time.perf_counter(); rows = s.execute(P, limit=1000, page_size=50, timeout_s=600).result(0).rows
    res["first"] = time.perf_counter() - t
    res["rows"] = len(rows)
    pid = worker_pid(s)
    res["worker_hwm"] = hwm(pid) if pid else 0
    s.close()
elif mode == "polars1m":
    import sqlite3
    import polars as pl
    def plain():
        con = sqlite3.connect(f"file:{ws / 'store.sqlite'}?mode=ro&immutable=1", uri=True)
        try:
            meta = pl.read_database(
                "SELECT prediction_id, dataset_name, model_name, val_score FROM predictions "
                "WHERE partition = 'val'", con)
        finally:
            con.close()
        arrays = pl.scan_parquet(str(ws / "arrays" / "*.parquet")).select(["prediction_id", "y_true", "y_pred"])
        return meta.lazy().join(arrays, on="prediction_id").sort("val_score").head(50).collect()
    t = time.perf_counter(); out = plain(); res["cold"] = time.perf_counter() - t
    res["warm"] = med(plain)
    res["rows"] = out.height; res["first"] = out["prediction_id"][0]
res["kernel_hwm"] = hwm()
print("RESULT " + json.dumps(res))
'''


def run_child(mode: str, ws: Path, repeat: int, pythonpath: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    args = [json.dumps(s) for s in (JOIN_SQL, AGG_SQL, AGG_SQL_2, PAGE_1M_SQL)]
    # cwd outside any checkout: ``python -c`` puts the cwd first on sys.path
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(ws), str(repeat), *args], env=env,
                          capture_output=True, text=True, timeout=3600, check=False, cwd=tempfile.gettempdir())
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{mode} with {pythonpath} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return dict(json.loads(line[-1][7:]))


def old_worktree(commit: str, dest: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(dest), commit], check=True,
                   capture_output=True)
    return dest


def find_1m() -> Path | None:
    from workspace_factory import cache_root

    for cand in sorted(cache_root().glob("ws1000000_*")):
        if (cand / ".complete").exists() and (cand / "ws" / "store.sqlite").exists():
            return cand / "ws"
    return None


def mb(n: float) -> str:
    return f"{n / 1e6:7.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="predictions in the workspace for 1. and 2.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-commit", default="dd0a24c", help="commit whose in-process engine is the baseline")
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--ws-1m", type=Path, default=None, help="a 1M-prediction workspace (default: bench cache)")
    args = parser.parse_args(argv)

    from workspace_factory import cached_workspace

    ws = cached_workspace(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="n4a_bench_sql_old_"))
    old = tmp / "old"
    try:
        old_worktree(args.old_commit, old)
        ours = run_child("session", ws, args.repeat, REPO)
        base = run_child("session", ws, args.repeat, old)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True,
                       check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ws.parent, ignore_errors=True)

    print(f"\n{args.n:,} predictions — ours (worker process) vs the in-process engine of {args.old_commit}:")
    for key, label in (("join_cold", "join, first page, new session"), ("join_warm", "join, first page, warm"),
                       ("agg_warm", "metadata aggregate, warm")):
        print(f"  {label:32s} ours {ours[key] * 1000:8.1f} ms   old {base[key] * 1000:8.1f} ms"
              f"   ratio {ours[key] / base[key]:5.2f}")
    ok = "OK" if ours["join_cold"] < 1 else "MISSED"
    print(f"  goal: join first page (cold) < 1 s: {ok}")
    print(f"  peak memory: ours kernel {mb(ours['kernel_hwm'])} + worker {mb(ours['worker_hwm'])};"
          f" old kernel {mb(base['kernel_hwm'])}")

    if args.skip_1m:
        return 0
    big = args.ws_1m or find_1m()
    if big is None:
        print("\n1M: no cached 1M workspace (python bench/workspace_factory.py 1000000 OUT --cached builds one)")
        return 0
    page = run_child("page1m", big, args.repeat, REPO)
    plain = run_child("polars1m", big, args.repeat, REPO)
    assert page["rows"] == plain["rows"] == 50, (page, plain)
    total = page["kernel_hwm"] + page["worker_hwm"]
    print(f"\n1M predictions ({big}): first page of predictions ⋈ arrays WHERE val ORDER BY val_score LIMIT 50")
    for key in ("cold", "warm"):
        print(f"  {key:5s} ours {page[key]:7.2f} s   polars {plain[key]:7.2f} s   ratio {page[key] / plain[key]:5.2f}")
    print(f"  peak memory: ours kernel {mb(page['kernel_hwm'])} + worker {mb(page['worker_hwm'])} = {mb(total)};"
          f" polars {mb(plain['kernel_hwm'])}")
    console = run_child("console1m", big, args.repeat, REPO)
    print(f"  SqlConsole path (warm-up while the user types: {console['warm_up']:.2f} s, then the first query):"
          f" {console['first']:.2f} s, ratio {console['first'] / plain['cold']:.2f} to polars cold;"
          f" worker peak {mb(console['worker_hwm'])}")
    ratio = page["cold"] / plain["cold"]
    print(f"  goal: <= 0.5x polars and < 600 MB: {'OK' if ratio <= 0.5 and total < 600e6 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
