"""Run ONE measured operation in a fresh process and print its cost as JSON.

Benchmarks call this as a subprocess (``python bench/_measure.py SIDE PATH``)
so each side gets a clean peak RSS.  Every side imports the same libraries
first, so the ``baseline`` side (imports only) is the floor that
``peak_rss_mb`` is compared against.

Why not plain ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: on Linux a child
started by ``subprocess`` (vfork + exec) inherits its parent's high-water RSS in
``ru_maxrss`` (a child of a 610 MB parent reports 611 MB), which hides an
operation's memory entirely.  So after the imports we reset the high-water mark
(``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and read ``VmHWM`` from
``/proc/self/status`` after the operation: the peak RSS *during the operation*.
``ru_maxrss`` is still reported (``rusage_peak_mb``), and used when the reset is
not available (``hwm_reset: false``).

Sides:
- ``baseline``  imports only;
- ``health``    ``n4a_widgets.Workspace(path).health()``;
- ``health_deep`` ``health(deep=True)`` (decodes every array column; informational);
- ``nirs4all``  the nirs4all calls health needs, all read-only:
  ``Predictions(store=WorkspaceStore.open_readonly(path)).store_stats()``, the live
  ids through ``Predictions.query``, then ``ArrayStore.integrity_check(ids)``.

Output (one JSON line): ``{"side", "seconds", "peak_rss_mb", "import_rss_mb", "rusage_peak_mb",
"hwm_reset", "summary"}``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _rusage_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's high-water RSS mark of this process (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _proc_status_mb("VmHWM") is not None


def import_libraries() -> None:
    """The same imports on every side, so their RSS cancels out."""
    import nirs4all.data.predictions  # noqa: F401
    import nirs4all.pipeline.storage.array_store  # noqa: F401
    import nirs4all.pipeline.storage.workspace_store  # noqa: F401
    import nirs4all.workspace.compat  # noqa: F401
    import numpy  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import n4a_widgets.core.arrays_readonly  # noqa: F401
    import n4a_widgets.core.health  # noqa: F401
    import n4a_widgets.core.status  # noqa: F401
    import n4a_widgets.core.workspace  # noqa: F401


def run_health(path: Path, deep: bool = False) -> dict[str, Any]:
    from n4a_widgets import Workspace

    report = Workspace(path).health(deep=deep)
    return {
        "total_predictions": report.total_predictions,
        "healthy": report.healthy,
        "orphans": report.orphan_metadata_count + report.orphan_array_count,
        "corrupt": len(report.corrupt_files),
    }


def run_nirs4all(path: Path) -> dict[str, Any]:
    from nirs4all.data.predictions import Predictions
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    store = WorkspaceStore.open_readonly(path)
    try:
        predictions = Predictions(store=store)
        stats = predictions.store_stats()
        ids = set(predictions.query("SELECT prediction_id FROM predictions")["prediction_id"].to_list())
        check = store.array_store.integrity_check(ids)
    finally:
        store.close()
    return {
        "total_predictions": int(stats["tables"]["predictions"]),
        "array_rows": int(stats["arrays"]["total_rows"]),
        "orphans": len(check["orphan_ids"]) + len(check["missing_ids"]),
        "corrupt": len(check["corrupt_files"]),
    }


SIDES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "baseline": lambda path: {},
    "health": run_health,
    "health_deep": lambda path: run_health(path, deep=True),
    "nirs4all": run_nirs4all,
}


def main(argv: list[str]) -> int:
    side, path = argv[0], Path(argv[1])
    import_libraries()
    import_rss = _proc_status_mb("VmRSS") or _rusage_peak_mb()
    reset = _reset_peak()
    t0 = time.perf_counter()
    summary = SIDES[side](path)
    seconds = time.perf_counter() - t0
    rusage_peak = _rusage_peak_mb()
    peak = (_proc_status_mb("VmHWM") or rusage_peak) if reset else rusage_peak
    out = {
        "side": side,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "import_rss_mb": import_rss,
        "rusage_peak_mb": rusage_peak,
        "hwm_reset": reset,
        "summary": summary,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
