"""Benchmark: maintenance through n4a_widgets vs nirs4all's own path, same run, same copies.

1. remove-bottom 10 % at N predictions:
   ours  = ``Workspace.remove_bottom(f)`` (``--fraction f``, default 0.1) dry run + execution with its plan_id
   theirs= ``Predictions(store=WorkspaceStore(path)).remove_bottom(f)`` (one delete at a
           time, an automatic compaction every 64 tombstones).  It is capped at
           ``--timeout`` seconds; the total is then EXTRAPOLATED from its measured
           deletion rate (the output says so).
2. compact at N predictions, on identical copies, two cases:
   (a) nothing pending (both rewrite every file), (b) 10 % deleted but not compacted.
   ours  = ``Workspace.compact()``
   theirs= ``WorkspaceStore(path)`` (whose constructor applies pending tombstones) +
           ``compact_arrays()``; both parts are timed.

Each measurement runs in its own child process; peak memory is the child's peak RSS.

    .venv/bin/python bench/bench_maintenance.py [--n 100000] [--timeout 60] [--only remove|compact|trash]
    .venv/bin/python bench/bench_maintenance.py --only trash --workspace ~/.cache/n4a_bench/ws1000000_<key>
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


#: The share remove-bottom removes (``--fraction``; children get it through the environment).
FRACTION = float(os.environ.get("N4A_BENCH_FRACTION", "0.1"))


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _count(ws: Path) -> int:
    conn = sqlite3.connect(f"{(ws / 'store.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        conn.close()


# ------------------------------------------------------------------ children


def child(op: str, path: str) -> None:
    import logging

    logging.getLogger("nirs4all").setLevel(logging.ERROR)
    ws = Path(path)
    out: dict[str, float | int | str] = {}
    # Import the libraries first in every child: only the operation is timed.
    import nirs4all.pipeline.storage  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from nirs4all.core import metrics  # noqa: F401
    from nirs4all.data import predictions  # noqa: F401

    # Ours too (the modules an operation imports lazily): only the operation is timed.
    import n4a_widgets.core.history  # noqa: F401
    import n4a_widgets.core.maintenance  # noqa: F401
    import n4a_widgets.core.recovery  # noqa: F401
    import n4a_widgets.core.trash  # noqa: F401

    if op in ("ours_remove", "ours_remove_undo"):
        from n4a_widgets import Workspace

        t0 = time.perf_counter()
        plan = Workspace(ws).remove_bottom(FRACTION)
        t1 = time.perf_counter()
        done = Workspace(ws).remove_bottom(FRACTION, dry_run=False, plan_id=plan.plan_id)
        t2 = time.perf_counter()
        out = {"preview_s": t1 - t0, "execute_s": t2 - t1, "seconds": t2 - t0, "removed": done.removed}
        if op == "ours_remove_undo":  # then take it back: dry run + execution
            from n4a_widgets.core.trash import trash_size

            out["trash_bytes"] = trash_size(ws)[0]
            action = Workspace(ws).history()[0].action_id
            t3 = time.perf_counter()
            preview = Workspace(ws).undo(action)
            t4 = time.perf_counter()
            undone = Workspace(ws).undo(action, dry_run=False, plan_id=preview.plan_id)
            t5 = time.perf_counter()
            out.update(undo_preview_s=t4 - t3, undo_execute_s=t5 - t4, restored=undone.restored)
    elif op == "ours_remove_notrash":
        # The same operation on the same skeleton, with no history and no trash (the cost of undo = the difference).
        from n4a_widgets.core.maintenance import RemoveBottom
        from n4a_widgets.core.write_op import run_write

        class NoTrash(RemoveBottom):
            def history_root(self, root: Path) -> Path | None:
                return None

        def op_() -> NoTrash:
            return NoTrash(FRACTION, "val_score", "val", None, 2000)

        t0 = time.perf_counter()
        plan = run_write(ws, op_())
        t1 = time.perf_counter()
        done = run_write(ws, op_(), dry_run=False, plan_id=plan.plan_id)
        t2 = time.perf_counter()
        out = {"preview_s": t1 - t0, "execute_s": t2 - t1, "seconds": t2 - t0, "removed": done.removed}
    elif op == "theirs_remove":
        import nirs4all.pipeline.storage  # noqa: F401
        from nirs4all.data.predictions import Predictions
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        print("START", flush=True)
        t0 = time.perf_counter()
        result = Predictions(store=WorkspaceStore(ws)).remove_bottom(FRACTION)
        out = {"seconds": time.perf_counter() - t0, "removed": int(result["removed"])}
    elif op == "ours_compact":
        from n4a_widgets import Workspace

        t0 = time.perf_counter()
        rep = Workspace(ws).compact(dry_run=False)
        out = {"seconds": time.perf_counter() - t0, "rows_removed": rep.rows_removed}
    elif op == "theirs_compact":
        import nirs4all.pipeline.storage  # noqa: F401
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        t0 = time.perf_counter()
        store = WorkspaceStore(ws)
        t1 = time.perf_counter()
        stats = store.compact_arrays()
        t2 = time.perf_counter()
        store.close()
        out = {
            "open_s": t1 - t0,
            "compact_arrays_s": t2 - t1,
            "seconds": t2 - t0,
            "rows_removed": sum(int(s["rows_removed"]) for s in stats.values()),
        }
    elif op == "tombstone10":
        import nirs4all.pipeline.storage  # noqa: F401
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        conn = sqlite3.connect(f"{(ws / 'store.sqlite').as_uri()}?mode=ro", uri=True)
        ids = [r[0] for r in conn.execute("SELECT prediction_id FROM predictions ORDER BY prediction_id")][::10]
        conn.close()
        store = WorkspaceStore(ws)
        store.AUTO_COMPACT_TOMBSTONE_THRESHOLD = 1 << 62
        store._ensure_open().execute("ANALYZE")
        for start in range(0, len(ids), 5000):
            store._delete_predictions_matching(prediction_ids=ids[start : start + 5000])
        store.close()
        out = {"tombstoned": len(ids)}
    out["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


def run_child(op: str, path: Path, timeout: float | None = None, watch: Path | None = None) -> dict:
    """Run one measurement in a child; with ``timeout``, kill it and extrapolate."""
    cmd = [sys.executable, __file__, "--child", op, str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    start = time.perf_counter()
    if timeout is None:
        stdout, _ = proc.communicate()
        return _parse(stdout, op)
    before = _count(watch) if watch else 0
    first_delete: float | None = None
    peak_kb = 0
    while proc.poll() is None and time.perf_counter() - start < timeout:
        time.sleep(0.5)
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        if first_delete is None and watch is not None and _count(watch) < before:
            first_delete = time.perf_counter() - start
    if proc.poll() is not None:
        stdout = proc.stdout.read() if proc.stdout else ""
        return _parse(stdout, op)
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    removed = before - _count(watch) if watch else 0
    return {
        "timed_out": True,
        "elapsed": elapsed,
        "removed_so_far": removed,
        "first_delete_s": first_delete or 0.0,
        "peak_rss_mb": peak_kb / 1024,
    }


def _parse(stdout: str, op: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"child {op} printed no result:\n{stdout}")


# ---------------------------------------------------------------------- main


def main() -> int:
    global FRACTION
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="predictions in the workspace")
    parser.add_argument("--timeout", type=float, default=60.0, help="cap for nirs4all's remove_bottom (seconds)")
    parser.add_argument("--only", choices=("remove", "compact", "trash"), help="run one of the benchmarks")
    parser.add_argument("--workspace", type=Path, help="use this workspace as the master (copied, never modified)")
    parser.add_argument("--fraction", type=float, default=FRACTION, help="remove-bottom fraction (issue 14: 0.01)")
    parser.add_argument("--child", nargs=2, metavar=("OP", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    FRACTION = args.fraction
    os.environ["N4A_BENCH_FRACTION"] = repr(args.fraction)
    if args.child:
        child(*args.child)
        return 0

    from workspace_factory import cached_master

    master = args.workspace if args.workspace else cached_master(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="n4a_bench_maint_"))
    try:

        def copy(name: str, source: Path = master) -> Path:
            dest = tmp / name
            shutil.copytree(source, dest)
            return dest

        n = _count(master)
        print(
            f"workspace: {n:,} predictions (bench/workspace_factory.py), nirs4all path capped at {args.timeout:.0f} s"
        )

        if args.only in (None, "remove"):
            bench_remove(args, copy)
        if args.only in (None, "compact"):
            bench_compact(copy, master)
        if args.only in (None, "trash"):
            bench_trash(copy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def bench_remove(args: argparse.Namespace, copy: Callable[..., Path]) -> None:
    ours = run_child("ours_remove", copy("rb_ours"))
    theirs_ws = copy("rb_theirs")
    theirs = run_child("theirs_remove", theirs_ws, timeout=args.timeout, watch=theirs_ws)
    planned = ours["removed"]
    if theirs.get("timed_out"):
        done = theirs["removed_so_far"]
        active = theirs["elapsed"] - theirs["first_delete_s"]
        rate = done / active if active > 0 and done else 0.0
        est = theirs["first_delete_s"] + planned / rate if rate else float("inf")
        theirs_s = est
        how = (
            f"EXTRAPOLATED: killed after {theirs['elapsed']:.0f} s having removed {done:,}/{planned:,} "
            f"({rate:.1f}/s after {theirs['first_delete_s']:.1f} s of setup)"
        )
    else:
        theirs_s = theirs["seconds"]
        how = "measured to completion"
    print(f"\nremove_bottom({FRACTION})")
    print(
        f"  ours   : {ours['seconds']:8.2f} s (preview {ours['preview_s']:.2f} s + execute "
        f"{ours['execute_s']:.2f} s), removed {planned:,}, peak RSS {ours['peak_rss_mb']:.0f} MB"
    )
    print(f"  nirs4all Predictions.remove_bottom: {theirs_s:8.1f} s ({how}), peak RSS {theirs['peak_rss_mb']:.0f} MB")
    print(f"  speed-up: {theirs_s / ours['seconds']:.0f}x  (goal >= 50x)")


def bench_compact(copy: Callable[..., Path], master: Path) -> None:
    print("\ncompact")
    pending = copy("pending_master")
    run_child("tombstone10", pending)
    for label, source in (("nothing pending", master), ("10% deleted, not compacted", pending)):
        a = run_child("ours_compact", copy(f"c_ours_{len(label)}", source))
        b = run_child("theirs_compact", copy(f"c_theirs_{len(label)}", source))
        print(
            f"  [{label}] ours {a['seconds']:.2f} s (rows removed {a['rows_removed']:,}, peak RSS "
            f"{a['peak_rss_mb']:.0f} MB) | nirs4all WorkspaceStore(path) {b['open_s']:.2f} s + "
            f"compact_arrays() {b['compact_arrays_s']:.2f} s = {b['seconds']:.2f} s (rows removed "
            f"{b['rows_removed']:,}, peak RSS {b['peak_rss_mb']:.0f} MB)"
        )
        one_pass = b["compact_arrays_s"] if label == "nothing pending" else b["open_s"]
        print(
            f"      ratio ours / nirs4all total = {a['seconds'] / b['seconds']:.2f}; "
            f"ours / one nirs4all compaction pass = {a['seconds'] / one_pass:.2f} (goal <= 1.2)"
        )


def bench_trash(copy: Callable[..., Path]) -> None:
    """Issue #11: remove-bottom 10 % with the trash (undo) vs without, same run; then the undo itself.

    Also issue #14: the whole remove-bottom against nirs4all's ``compact_arrays`` alone on the same
    workspace (the deletes should cost little next to rewriting the files).
    """
    print(f"\nremove_bottom({FRACTION}) with the trash (undoable) vs without; then undo")
    plain = run_child("ours_remove_notrash", copy("t_plain"))
    trashed = run_child("ours_remove_undo", copy("t_trash"))
    floor = run_child("theirs_compact", copy("t_floor"))
    print(
        f"  without trash: {plain['seconds']:.2f} s (execute {plain['execute_s']:.2f} s), removed "
        f"{plain['removed']:,}, peak RSS {plain['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  with trash   : {trashed['seconds']:.2f} s (execute {trashed['execute_s']:.2f} s), trash "
        f"{trashed['trash_bytes'] / 1e6:.1f} MB, peak RSS {trashed['peak_rss_mb']:.0f} MB"
    )
    print(f"      overhead with/without = {trashed['seconds'] / plain['seconds']:.2f}x (goal < 1.5x)")
    print(
        f"  undo: preview {trashed['undo_preview_s']:.2f} s + execute {trashed['undo_execute_s']:.2f} s, restored "
        f"{trashed['restored']:,}"
    )
    print(
        f"  nirs4all compact_arrays() alone on the same workspace: {floor['compact_arrays_s']:.2f} s; "
        f"remove_bottom with trash / that = {trashed['seconds'] / floor['compact_arrays_s']:.2f} (goal <= 1.5)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    raise SystemExit(main())
