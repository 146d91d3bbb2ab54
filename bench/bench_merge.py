"""Benchmark: ``Workspace.merge`` vs nirs4all's ``Predictions.merge_stores``, same run, identical copies.

For N in ``--sizes`` (default 1000 and 10000): two source workspaces of N
predictions each (``bench/workspace_factory.py``, seeds 0 and 1: they share part
of their conflict keys) are merged with ``keep_best``

- into an empty target, and
- into an overlapping target (a copy of the seed-2 workspace of N predictions).

ours   = ``Workspace(target).merge(sources)`` dry run + execution with its plan_id
theirs = ``Predictions.merge_stores(sources, target)``, row by row.  It runs in a
         child process killed after ``--timeout`` seconds; the predictions it wrote
         by then give its rate, and its total is EXTRAPOLATED linearly from that rate
         (optimistic for nirs4all: it rewrites the whole array file per row, so it
         slows down as the target grows).  The output marks extrapolated figures.

Then ``--big`` (default 100000) predictions are merged with our path only, into an
empty target (goal: under a minute here).

``--workers`` (default 100): the nirs4all-cluster case.  That many worker-sized
workspaces (1000 predictions each, one dataset, ``workspace_factory`` seeds 100..,
cached) are merged into one empty target; every other one is given as a
``workspace.zip`` (the folder one level down, zipped once and cached), which our
merge reads from a private temporary folder.  nirs4all's ``merge_stores`` cannot
read archives, so it gets the folders (it is spared the unzipping); it is capped
by ``--timeout`` and extrapolated as above.  The factory workspaces carry chains
but no model files, so this measures the runs/pipelines/chains bookkeeping, not
artifact copying (the tests cover that on real ``nirs4all.run`` workspaces).

Each side runs in a fresh child process; peak memory is the child's peak RSS during
the operation (imports excluded: high-water mark reset after importing).

    .venv/bin/python bench/bench_merge.py [--sizes 1000 10000] [--big 100000] [--workers 100] [--timeout 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _hwm_mb() -> float:
    from _measure import _proc_status_mb

    return _proc_status_mb("VmHWM") or float("nan")


def _child(side: str, target: str, sources: list[str]) -> None:
    """Run one side and print ``{"seconds", "peak_rss_mb", ...}`` as JSON."""
    import nirs4all.pipeline.storage  # noqa: F401 - registers the store backend merge_stores needs
    from nirs4all.data.predictions import Predictions

    from n4a_widgets import Workspace

    from _measure import _reset_peak

    _reset_peak()  # peak RSS of this call only (a subprocess inherits its parent's)
    t0 = time.perf_counter()
    if side == "ours":
        ws = Workspace(target)
        plan = ws.merge(sources)
        t_plan = time.perf_counter() - t0
        rep = ws.merge(sources, dry_run=False, plan_id=plan.plan_id)
        out = {"added": rep.added, "removed": rep.removed, "conflicts": rep.conflicts, "plan_seconds": t_plan,
               "chains_added": rep.chains_added, "artifacts_added": rep.artifacts_added}
    else:
        r = Predictions.merge_stores(sources, target, on_conflict="keep_best")
        out = {"added": r.predictions_merged, "conflicts": r.conflicts_resolved}
    out |= {"seconds": time.perf_counter() - t0, "peak_rss_mb": _hwm_mb()}
    print(json.dumps(out), flush=True)


def _count(target: Path) -> int:
    db = target / "store.sqlite"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        conn.close()


def _merged_rows(target: Path) -> int:
    """Predictions in the target that a merge wrote (in merge_* runs): a lower bound of rows written,
    since rows written then replaced by a later source are gone."""
    db = target / "store.sqlite"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(
            "SELECT count(*) FROM predictions p JOIN pipelines pl ON p.pipeline_id = pl.pipeline_id "
            "JOIN runs r ON pl.run_id = r.run_id WHERE r.name LIKE 'merge_%'"
        ).fetchone()[0])
    finally:
        conn.close()


def run_side(side: str, target: Path, sources: list[Path], timeout: float | None) -> dict:
    cmd = [sys.executable, __file__, "--child", side, str(target), *map(str, sources)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
        return json.loads(stdout.strip().splitlines()[-1]) | {"extrapolated": False}
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        elapsed = time.perf_counter() - t0
        return {"seconds": elapsed, "extrapolated": True, "rows_in_target_at_kill": _merged_rows(target)}


def scenario(label: str, n: int, empty_target: bool, timeout: float, work: Path) -> None:
    from n4a_widgets import Workspace

    from workspace_factory import cached_master

    sources = [cached_master(n, seed=0), cached_master(n, seed=1)]
    results = {}
    for side in ("ours", "nirs4all"):
        target = work / f"{label}_{side}"
        if empty_target:
            target.mkdir(parents=True)
        else:
            shutil.copytree(cached_master(n, seed=2), target)
        plan = Workspace(target).merge(sources)  # what both sides will write
        res = run_side(side, target, sources, timeout if side == "nirs4all" else None)
        if res.get("extrapolated"):
            written = res["rows_in_target_at_kill"]
            rate = written / res["seconds"] if written else 0.0
            res["written_before_kill"] = written
            res["seconds"] = plan.added / rate if rate else float("inf")
            res["added"] = plan.added
        res["rate"] = res["added"] / res["seconds"] if res["seconds"] else float("inf")
        results[side] = res
        shutil.rmtree(target, ignore_errors=True)
    ours, theirs = results["ours"], results["nirs4all"]
    mark = (
        " (EXTRAPOLATED from >= {written_before_kill} rows written in {t:.0f} s; lower bound)".format(
            written_before_kill=theirs.get("written_before_kill"), t=timeout
        )
        if theirs["extrapolated"]
        else ""
    )
    print(f"\n{label}: 2 sources x {n} predictions -> {'empty' if empty_target else 'overlapping'} target, keep_best")
    print(
        f"  ours      {ours['seconds']:8.2f} s  {ours['rate']:10.0f} pred/s  peak {ours['peak_rss_mb']:7.1f} MB"
        f"  (plan {ours['plan_seconds']:.2f} s; added {ours['added']}, replaced {ours['removed']}, "
        f"conflicts {ours['conflicts']})"
    )
    peak = f"peak {theirs['peak_rss_mb']:7.1f} MB" if "peak_rss_mb" in theirs else "peak n/a (killed)"
    print(f"  nirs4all  {theirs['seconds']:8.2f} s  {theirs['rate']:10.0f} pred/s  {peak}{mark}")
    print(f"  ratio     {theirs['seconds'] / ours['seconds']:8.1f}x faster")


def big(n: int, work: Path) -> None:
    from workspace_factory import cached_master

    target = work / "big"
    target.mkdir()
    res = run_side("ours", target, [cached_master(n)], None)
    print(
        f"\n{n} predictions -> empty target, ours only: {res['seconds']:.1f} s "
        f"({res['added'] / res['seconds']:.0f} pred/s, plan {res['plan_seconds']:.1f} s), "
        f"peak {res['peak_rss_mb']:.0f} MB; goal < 60 s: {'met' if res['seconds'] < 60 else 'NOT met'}"
    )
    shutil.rmtree(target, ignore_errors=True)


def _zipped(folder: Path) -> Path:
    """A cached ``workspace.zip`` of ``folder`` (the workspace one level down, as nirs4all-cluster writes it)."""
    import zipfile

    from workspace_factory import cache_root

    dest = cache_root() / "zips" / f"{folder.parent.name}.zip"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.name != ".lock":
                    zf.write(path, f"workspace/{path.relative_to(folder).as_posix()}")
        tmp.rename(dest)
    return dest


def workers(count: int, timeout: float, work: Path) -> None:
    from workspace_factory import cached_master

    folders = [cached_master(1000, seed=100 + i, n_datasets=1) for i in range(count)]
    ours_sources = [_zipped(f) if i % 2 == 0 else f for i, f in enumerate(folders)]
    n_zip = sum(1 for s in ours_sources if s.suffix == ".zip")
    results = {}
    for side, sources in (("ours", ours_sources), ("nirs4all", folders)):
        target = work / f"workers_{side}"
        target.mkdir(parents=True)
        res = run_side(side, target, sources, timeout if side == "nirs4all" else None)
        if res.get("extrapolated"):
            written = res["rows_in_target_at_kill"]
            rate = written / res["seconds"] if written else 0.0
            res["written_before_kill"] = written
            res["added"] = results["ours"]["added"]
            res["seconds"] = res["added"] / rate if rate else float("inf")
        res["rate"] = res["added"] / res["seconds"] if res["seconds"] else float("inf")
        results[side] = res
        shutil.rmtree(target, ignore_errors=True)
    ours, theirs = results["ours"], results["nirs4all"]
    mark = (f" (EXTRAPOLATED from {theirs['written_before_kill']} rows written in {timeout:.0f} s; lower bound)"
            if theirs["extrapolated"] else "")
    print(f"\nworkers: {count} workspaces x 1000 predictions ({n_zip} as .zip) -> empty target, keep_best")
    print(
        f"  ours      {ours['seconds']:8.2f} s  {ours['rate']:10.0f} pred/s  peak {ours['peak_rss_mb']:7.1f} MB"
        f"  (plan {ours['plan_seconds']:.2f} s; added {ours['added']}, replaced {ours['removed']}, "
        f"conflicts {ours['conflicts']}, chains {ours['chains_added']})"
    )
    peak = f"peak {theirs['peak_rss_mb']:7.1f} MB" if "peak_rss_mb" in theirs else "peak n/a (killed)"
    print(f"  nirs4all  {theirs['seconds']:8.2f} s  {theirs['rate']:10.0f} pred/s  {peak}{mark}")
    print(f"  ratio     {theirs['seconds'] / ours['seconds']:8.1f}x faster")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--big", type=int, default=100000, help="0 to skip")
    parser.add_argument("--workers", type=int, default=100, help="worker workspaces to merge at once (0 to skip)")
    parser.add_argument("--timeout", type=float, default=60.0, help="cap for each nirs4all run (seconds)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="n4a_bench_merge_"))
    try:
        for n in args.sizes:
            scenario(f"{n}_empty", n, True, args.timeout, work)
            scenario(f"{n}_overlap", n, False, args.timeout, work)
        if args.workers:
            workers(args.workers, args.timeout, work)
        if args.big:
            big(args.big, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
