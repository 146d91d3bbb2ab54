"""How fast ``scan_workspaces`` lists a folder of many workspaces.

Builds trees of N copies of a small real workspace (made by nirs4all's write
API, ``bench/workspace_factory.py``), then times, in the same process and
alternating, on the same tree:

- ``scan``      ``scan_workspaces(root)``: walk + status + counts + sizes of every workspace;
- ``per_path``  ``Workspace(p).status()`` + ``Workspace(p).stats()`` on each known path
  (the plain way; it is given the paths, so it does no walk, and counts no predictions).

and prints the median of ``--repeat`` runs, the ratio, and how the scan's time
grows with the number of workspaces and with the size of their array files
(same number of predictions and files, ``--samples`` times longer arrays).
Both sides run after the imports are warm (nirs4all's import alone costs
seconds and is paid once per kernel either way).  Not a test: no assertion.

    .venv/bin/python bench/bench_scan.py                    # 50,100,250,500 workspaces
    .venv/bin/python bench/bench_scan.py --counts 500 --repeat 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from n4a_widgets import Workspace, scan_workspaces  # noqa: E402

from workspace_factory import build_large_workspace  # noqa: E402


def _tree(master: Path, root: Path, count: int) -> list[Path]:
    """``count`` copies of ``master`` in folders of 25 (``group_00/ws_000`` ...)."""
    paths = []
    for i in range(count):
        dest = root / f"group_{i // 25:02d}" / f"ws_{i:03d}"
        shutil.copytree(master, dest)
        paths.append(dest)
    return paths


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _per_path(paths: list[Path]) -> None:
    for p in paths:
        ws = Workspace(p)
        ws.status()
        ws.stats()


def _array_bytes(ws: Path) -> int:
    return sum(p.stat().st_size for p in (ws / "arrays").glob("*.parquet"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,100,250,500", help="numbers of workspaces in the tree")
    parser.add_argument("--predictions", type=int, default=40, help="predictions per workspace")
    parser.add_argument("--samples", type=int, default=50, help="array length of the small workspaces")
    parser.add_argument("--big-samples", type=int, default=5000, help="array length of the big-array variant")
    parser.add_argument("--many-predictions", type=int, default=1000, help="predictions of the many-rows variant")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]

    work = Path(tempfile.mkdtemp(prefix="n4a_bench_scan_"))
    try:
        small = build_large_workspace(work / "master_small", args.predictions, n_datasets=2, n_samples=args.samples)
        big = build_large_workspace(work / "master_big", args.predictions, n_datasets=2, n_samples=args.big_samples)
        many = build_large_workspace(work / "master_many", args.many_predictions, n_datasets=2,
                                     n_samples=args.samples)
        # warm the imports (nirs4all, duckdb, pyarrow) on both sides
        scan_workspaces(small)
        _per_path([small])
        print(f"workspace: {args.predictions} predictions, 2 datasets; arrays {_array_bytes(small) / 1e3:.0f} KB "
              f"(samples={args.samples}) vs {_array_bytes(big) / 1e6:.1f} MB (samples={args.big_samples}); "
              f"many: {args.many_predictions} predictions, {_array_bytes(many) / 1e6:.1f} MB")
        print(f"{'workspaces':>10} {'variant':>8} {'scan s':>8} {'per-ws ms':>10} {'status+stats s':>15} {'ratio':>6}")
        first: tuple[int, float] | None = None
        for label, master in (("small", small), ("big", big), ("many", many)):
            for count in counts if label == "small" else counts[-1:]:
                root = work / f"tree_{label}_{count}"
                paths = _tree(master, root, count)
                report = scan_workspaces(root)
                assert report.workspace_count == count, report.workspace_count
                t_scan = _median(lambda root=root: scan_workspaces(root), args.repeat)
                t_plain = _median(lambda paths=paths: _per_path(paths), args.repeat)
                if first is None:
                    first = (count, t_scan)
                print(f"{count:>10} {label:>8} {t_scan:>8.2f} {1000 * t_scan / count:>10.2f} {t_plain:>15.2f} "
                      f"{t_plain / t_scan:>5.2f}x")
                shutil.rmtree(root)
        print("ratio = status+stats time / scan time (>1: the scan, which also counts predictions, is faster).")
        print("Growth: compare per-ws ms across counts (linear => flat), small vs big arrays (flat => time does "
              "not depend on array bytes) and small vs many predictions (one count query per store).")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
