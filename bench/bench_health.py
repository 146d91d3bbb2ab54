"""Benchmark ``Workspace.health()`` against the nirs4all calls it needs, in the same run.

For each size (default 100k and 1M predictions, issue 14's scale shape: 8
datasets of 40-sample predictions) it takes a private copy of a cached factory
workspace (``bench/workspace_factory.py --scale``), then runs, each in a
fresh subprocess (``bench/_measure.py``) so peak RSS is clean:

- ``baseline``: a process that only imports the libraries;
- ``health``:   ``Workspace(path).health()``;
- ``nirs4all``: ``Predictions(store=WorkspaceStore.open_readonly(path)).store_stats()``
  + the live ids (``Predictions.query``) + ``ArrayStore.integrity_check(ids)``.

The sides alternate (``--repeat`` rounds, after one untimed warm-up of each so
the page cache is warm for both); the table shows median seconds, median peak
RSS above the baseline process, and the ratios health / nirs4all.  Goal (issue
14) at every size: at most 1x nirs4all's calls in time and in memory.

    .venv/bin/python bench/bench_health.py [--sizes 100000,1000000] [--repeat 3] [--deep] [--default-shape]

The machine these run on is small and shared: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

TIME_GOAL = 1.0
MEMORY_GOAL = 1.0


def measure(side: str, path: Path) -> dict[str, Any]:
    """One fresh process running one side; returns _measure.py's JSON."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), side, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{side} on {path} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def private_copy(n: int, scale: bool = True) -> Path:
    """A fresh copy of the cached factory workspace, made in a subprocess.

    Building (or copying) in this process would raise its RSS, and children
    started by ``subprocess`` inherit the parent's high-water RSS in ``ru_maxrss``.
    """
    dest = Path(tempfile.mkdtemp(prefix=f"n4a_bench_health_{n}_")) / "ws"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "workspace_factory.py"),
            str(n),
            str(dest),
            "--cached",
            *(["--scale"] if scale else []),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return dest


def bench_size(n: int, repeat: int, sides: list[str], scale: bool = True) -> dict[str, Any]:
    ws = private_copy(n, scale)
    try:
        for side in sides:  # warm-up: page cache, .pyc files
            measure(side, ws)
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in ["baseline", *sides]}
        for round_ in range(repeat):
            order = ["baseline", *sides]
            for side in order if round_ % 2 == 0 else order[::-1]:  # alternate who goes first
                runs[side].append(measure(side, ws))
    finally:
        shutil.rmtree(ws.parent, ignore_errors=True)
    base_rss = statistics.median(r["peak_rss_mb"] for r in runs["baseline"])
    out: dict[str, Any] = {"n": n, "baseline_rss_mb": base_rss}
    for side in sides:
        out[side] = {
            "seconds": statistics.median(r["seconds"] for r in runs[side]),
            "best_seconds": min(r["seconds"] for r in runs[side]),
            "above_baseline_mb": statistics.median(r["peak_rss_mb"] - base_rss for r in runs[side]),
            "summary": runs[side][-1]["summary"],
        }
    got, want = out["health"]["summary"]["total_predictions"], out["nirs4all"]["summary"]["total_predictions"]
    if got != want or got != n:
        raise RuntimeError(f"size {n}: health counted {got}, nirs4all {want}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--default-shape", action="store_true", help="4 datasets of 50 samples, no summaries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deep", action="store_true", help="also time health(deep=True) (informational)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args(argv)
    sides = ["health", "nirs4all", *(["health_deep"] if args.deep else [])]
    sizes = [int(s) for s in args.sizes.split(",")]

    results = []
    header = (
        f"{'predictions':>11} | {'health s':>8} {'nirs4all s':>10} {'ratio':>6} {'best':>6} | "
        f"{'health MB':>9} {'nirs4all MB':>11} {'ratio':>6} | baseline MB"
    )
    print("Workspace.health() vs Predictions.store_stats() + ArrayStore.integrity_check()")
    print(
        f"(median of {args.repeat} fresh processes per side; 'best' = ratio of the fastest runs; "
        "MB = peak RSS during the call above an import-only process)"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        r = bench_size(n, args.repeat, sides, scale=not args.default_shape)
        results.append(r)
        h, b = r["health"], r["nirs4all"]
        t_ratio = h["seconds"] / b["seconds"] if b["seconds"] else float("inf")
        m_ratio = h["above_baseline_mb"] / b["above_baseline_mb"] if b["above_baseline_mb"] > 0 else float("nan")
        best_ratio = h["best_seconds"] / b["best_seconds"] if b["best_seconds"] else float("inf")
        r["time_ratio"], r["best_time_ratio"], r["memory_ratio"] = t_ratio, best_ratio, m_ratio
        print(
            f"{n:>11} | {h['seconds']:>8.3f} {b['seconds']:>10.3f} {t_ratio:>5.2f}x {best_ratio:>5.2f}x | "
            f"{h['above_baseline_mb']:>9.1f} {b['above_baseline_mb']:>11.1f} {m_ratio:>5.2f}x | "
            f"{r['baseline_rss_mb']:.0f}"
        )
        if "health_deep" in r:
            d = r["health_deep"]
            print(
                f"{'':>11} | deep: {d['seconds']:.3f} s ({d['seconds'] / b['seconds']:.2f}x), "
                f"{d['above_baseline_mb']:.1f} MB above baseline"
            )
    print()
    for r in results:
        ok_time = r["time_ratio"] <= TIME_GOAL
        ok_mem = r["memory_ratio"] <= MEMORY_GOAL
        print(
            f"goal at {r['n']}: time <= {TIME_GOAL}x -> {'PASS' if ok_time else 'MISS'} ({r['time_ratio']:.2f}x); "
            f"memory <= {MEMORY_GOAL}x -> {'PASS' if ok_mem else 'MISS'} ({r['memory_ratio']:.2f}x)"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
