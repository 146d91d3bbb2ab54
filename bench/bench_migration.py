"""Benchmark: migrate a large legacy nirs4all 0.7.1 DuckDB workspace.

The legacy source is SYNTHETIC: we copy the real 0.7.1 fixture
(tests/fixtures/legacy/v0_7_1_duckdb_inline, written by nirs4all 0.7.1 + duckdb 1.x,
so the schema is exactly the one that release creates) and bulk-insert extra
predictions with random inline arrays into that copy with duckdb SQL.

Prints predictions/s, MB/s (legacy array bytes), peak RSS of the migration
process, and the ratio to plainly reading the same rows with duckdb (streamed to
numpy) measured in the same run.  Each side runs in its own child process so
peak memory is its own.

    .venv/bin/python bench/bench_migration.py                 # ~100 MB of arrays, 10k predictions
    .venv/bin/python bench/bench_migration.py --values 6250   # ~1 GB of arrays

Compare with an older version of the code in the same run (its own child, same
source): ``git worktree add /tmp/n4a_base dd0a24c`` then
``--baseline-tree /tmp/n4a_base``.  ``--workdir DIR`` keeps the built source in
DIR and reuses it on the next run (building 3 GB takes minutes).

    .venv/bin/python bench/bench_migration.py --values 15500 --workdir /tmp/bm3g \
        --baseline-tree /tmp/n4a_base      # >= 3 GB of legacy arrays

Measured here (2 cores, 2026-12-01, 10,042 predictions, 3.10 GB of inline arrays, full verification):
dd0a24c 424.0 s = 136.8 s/GB (CPU 132.2 s/GB), peak RSS 7014 MB; streamed row groups + batched
look-ups 97.3 s = 31.4 s/GB (CPU 29.7 s/GB), peak RSS 1289 MB (0.23x the time, 0.18x the memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import _proc_status_mb, _reset_peak

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "legacy" / "v0_7_1_duckdb_inline"


def build(root: Path, n: int, values: int, datasets: int) -> Path:
    import duckdb

    ws = root / "legacy_ws"
    shutil.copytree(FIXTURE, ws)
    conn = duckdb.connect(str(ws / "store.duckdb"))
    pipes = conn.execute(
        "SELECT p.pipeline_id, c.chain_id FROM pipelines p JOIN chains c USING (pipeline_id)"
    ).fetchall()
    conn.execute(
        "CREATE TEMP TABLE pc AS SELECT * FROM (VALUES "
        + ", ".join(f"({i}, '{p}', '{c}')" for i, (p, c) in enumerate(pipes))
        + ") t(k, pipeline_id, chain_id)"
    )
    conn.execute(f"""
        INSERT INTO predictions (prediction_id, pipeline_id, chain_id, dataset_name, model_name, model_class, fold_id,
            partition, val_score, test_score, train_score, metric, task_type, n_samples, n_features, scores,
            best_params, preprocessings, branch_id, branch_name, exclusion_count, exclusion_rate, refit_context,
            created_at)
        SELECT printf('bench%011d', i), pc.pipeline_id, pc.chain_id, 'bench dataset ' || (i % {datasets}),
            'PLSRegression', 'sklearn.cross_decomposition.PLSRegression', 'fold_' || i, 'val', random(), random(),
            random(), 'rmse', 'regression', {values}, 100, '{{"val": {{"rmse": 0.5}}}}', '{{}}', 'MinMax', NULL, NULL,
            0, 0.0, NULL, now()
        FROM range({n}) r(i) JOIN pc ON pc.k = i % {len(pipes)}""")
    conn.execute(f"""
        INSERT INTO prediction_arrays
        SELECT printf('bench%011d', i), list_transform(range({values}), lambda x: random()),
            list_transform(range({values}), lambda x: random()), NULL,
            list_transform(range({values}), lambda x: x::INTEGER), NULL
        FROM range({n}) r(i)""")
    conn.execute("CHECKPOINT")
    conn.close()
    return ws


def child_migrate(path: str, out: str) -> dict:
    import nirs4all.pipeline.storage.workspace_store  # noqa: F401  (import time is not migration time)

    from n4a_widgets import Workspace

    reset = _reset_peak()
    t0 = time.perf_counter()
    c0 = time.process_time()
    r = Workspace(path).migrate(dry_run=False, output=out)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "rows": r.rows_migrated,
        "passed": r.verification_passed,
        "legacy_bytes": r.legacy_array_bytes,
        "parquet": r.parquet_total_size,
        "maxrss_mb": _peak_mb(reset),
    }


def child_read(path: str) -> dict:
    import duckdb
    import numpy as np

    reset = _reset_peak()
    t0 = time.perf_counter()
    conn = duckdb.connect(str(Path(path) / "store.duckdb"), read_only=True)
    rel = conn.sql("SELECT p.*, a.* FROM predictions p LEFT JOIN prediction_arrays a USING (prediction_id)")
    rows = 0
    total = 0.0
    for batch in rel.to_arrow_reader(256):
        for name in ("y_true", "y_pred"):
            col = batch.column(name)
            total += float(np.asarray(col.values.to_numpy(zero_copy_only=False)).sum())
        rows += batch.num_rows
    conn.close()
    return {
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "maxrss_mb": _peak_mb(reset),
    }


def _peak_mb(reset: bool) -> float:
    """Peak RSS during the measured call: VmHWM after a reset (a subprocess inherits
    its parent's ``ru_maxrss``, see bench/_measure.py), else ``ru_maxrss``."""
    hwm = _proc_status_mb("VmHWM") if reset else None
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str, tree: Path | None = None) -> dict:
    """One measured side in a fresh process; ``tree``: import n4a_widgets from that checkout instead."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree or REPO)
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=REPO,
                          env=env)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    # Anything else a migration printed (progress bars, logs) would land in a notebook's output.
    result["stray_output"] = len("\n".join(lines[:-1])) + len(proc.stderr.strip())
    return result


def _print_migration(label: str, mig: dict) -> None:
    gb = mig["legacy_bytes"] / 1e9
    print(
        f"{label:18}: {mig['seconds']:.1f} s, {mig['rows'] / mig['seconds']:.0f} predictions/s, "
        f"{mig['seconds'] / gb:.1f} s/GB (CPU {mig.get('cpu_seconds', float('nan')) / gb:.1f} s/GB), "
        f"peak RSS {mig['maxrss_mb']:.0f} MB, verified={mig['passed']}, "
        f"stray output {mig['stray_output']} chars"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--predictions", type=int, default=10_000)
    ap.add_argument("--values", type=int, default=600, help="values per y_true / y_pred array")
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--workdir", type=Path, help="build (or reuse) the legacy source here instead of a temp dir")
    ap.add_argument("--baseline-tree", type=Path, help="also migrate with the n4a_widgets of this checkout")
    ap.add_argument("--skip-read", action="store_true", help="skip the plain duckdb read")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_migrate(*rest) if kind == "migrate" else child_read(*rest)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_migration_") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ws = work / "legacy_ws"
        if not (ws / "store.duckdb").is_file():
            t0 = time.perf_counter()
            ws = build(work, args.predictions, args.values, args.datasets)
            print(f"built synthetic 0.7.1 legacy workspace in {time.perf_counter() - t0:.1f} s")
        print(f"source: {ws} ({sum(p.stat().st_size for p in ws.rglob('*') if p.is_file()) / 1e9:.2f} GB on disk)")
        if not args.skip_read:
            read = run_child("read", str(ws))
            print(
                f"plain duckdb read : {read['seconds']:.2f} s, {read['rows'] / read['seconds']:.0f} rows/s, "
                f"peak RSS {read['maxrss_mb']:.0f} MB"
            )
        sides = [("baseline", args.baseline_tree)] if args.baseline_tree else []
        sides.append(("this tree", None))
        results = {}
        for label, tree in sides:
            out = Path(tmp) / f"out_{label.replace(' ', '_')}"
            results[label] = mig = run_child("migrate", str(ws), str(out), tree=tree)
            shutil.rmtree(out, ignore_errors=True)
        mb = mig["legacy_bytes"] / 1e6
        print(f"predictions: {mig['rows']}  legacy arrays: {mb:.0f} MB  new parquet: {mig['parquet'] / 1e6:.0f} MB")
        for label, _tree in sides:
            _print_migration(f"migrate {label}", results[label])
        if not args.skip_read:
            print(f"ratio migrate / plain read: {mig['seconds'] / read['seconds']:.1f}x")
        if args.baseline_tree:
            base = results["baseline"]
            print(f"ratio this tree / baseline: time {mig['seconds'] / base['seconds']:.2f}x, "
                  f"CPU {mig['cpu_seconds'] / base['cpu_seconds']:.2f}x, "
                  f"peak RSS {mig['maxrss_mb'] / base['maxrss_mb']:.2f}x")
        print(f"projected for 1 GB of legacy arrays: {1000 / (mb / mig['seconds']):.0f} s")

if __name__ == "__main__":
    main()
