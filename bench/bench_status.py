"""Benchmark the first answer: ``python -m n4a_widgets status PATH`` vs a bare nirs4all import.

Issue 14's target: in a fresh process, ``status`` (the first answer of the CLI
and of every widget) takes at most 0.3x the time of a bare
``import nirs4all.pipeline.storage`` (which pulls scikit-learn).  Every side is
a whole fresh process, timed from outside (interpreter start included):

- ``python``    ``python -c pass`` (the floor: interpreter start-up);
- ``import``    ``python -c "import nirs4all.pipeline.storage"`` (the plain way's floor);
- ``status``    ``python -m n4a_widgets status PATH --json``;
- ``widget``    ``StorageHealth(PATH)`` constructed, its ``status`` trait filled
                (the widget's first paint; the process then exits without waiting
                for the background health job).

Sides alternate, ``--repeat`` rounds after one warm-up (page cache, .pyc files);
medians are printed with the ratio to ``import``.  Status reads the cached scale
workspaces read-only (``bench/workspace_factory.py --scale``)::

    .venv/bin/python bench/bench_status.py [--sizes 100000,1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOAL = 0.3

WIDGET = (
    "import os, sys\n"
    "from n4a_widgets import StorageHealth\n"
    "w = StorageHealth(sys.argv[1])\n"
    "assert w.status.get('storage_mode') == 'migrated', w.status\n"
    "sys.stdout.flush()\n"
    "os._exit(0)\n"
)


def command(side: str, path: Path) -> list[str]:
    py = sys.executable
    if side == "python":
        return [py, "-c", "pass"]
    if side == "import":
        return [py, "-c", "import nirs4all.pipeline.storage"]
    if side == "status":
        return [py, "-m", "n4a_widgets", "status", str(path), "--json"]
    if side == "widget":
        return [py, "-c", WIDGET, str(path)]
    raise ValueError(side)


def timed(side: str, path: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(command(side, path), capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{proc.stderr[-2000:]}")
    if side == "status" and json.loads(proc.stdout)["storage_mode"] != "migrated":
        raise RuntimeError(f"unexpected status: {proc.stdout}")
    return elapsed


def bench(path: Path, repeat: int) -> dict[str, Any]:
    sides = ["python", "import", "status", "widget"]
    for side in sides:
        timed(side, path)
    runs: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(repeat):
        for side in sides if r % 2 == 0 else sides[::-1]:
            runs[side].append(timed(side, path))
    med = {s: statistics.median(v) for s, v in runs.items()}
    return {"seconds": med, "best": {s: min(v) for s, v in runs.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from workspace_factory import scale_master

    print(f"fresh-process seconds (median of {args.repeat}; ratio = side / bare `import nirs4all.pipeline.storage`)")
    header = (
        f"{'predictions':>11} | {'python':>7} {'import':>7} | {'status':>7} {'ratio':>6} | {'widget':>7} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        path = scale_master(n)
        r = bench(path, args.repeat)
        s = r["seconds"]
        r["n"] = n
        r["status_ratio"] = s["status"] / s["import"]
        r["widget_ratio"] = s["widget"] / s["import"]
        results.append(r)
        print(
            f"{n:>11} | {s['python']:>7.3f} {s['import']:>7.3f} | {s['status']:>7.3f} {r['status_ratio']:>5.2f}x | "
            f"{s['widget']:>7.3f} {r['widget_ratio']:>5.2f}x"
        )
    worst = max(r["status_ratio"] for r in results)
    print(f"\ngoal: status <= {GOAL}x the bare import -> {'PASS' if worst <= GOAL else 'MISS'} (worst {worst:.2f}x)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
