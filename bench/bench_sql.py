"""SQL console latency at ~100k predictions, against nirs4all's own read path, in the same run.

    .venv/bin/python bench/bench_sql.py [--n 100000] [--repeat 3]

Measures (median of ``--repeat`` runs each):

1. first page of a join of ``predictions`` with ``arrays`` (``SqlSession.execute``, page of 50);
   cold = a new session (engine set-up + loading the columns the query needs), warm = the same
   session's next query (what the console does after its first query);
2. a metadata-only aggregate, ours vs ``Predictions(store=WorkspaceStore.open_readonly(p)).query(sql)``
   on the same SQL; cold (open + query) and warm (query on an open object) for both.

Goals (issue 5): the aggregate no slower than ``Predictions.query``; the join's first page < 1 s.
Uses ``bench/workspace_factory.py`` (cached build of a real workspace via nirs4all's write API).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

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


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="predictions in the workspace")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import nirs4all.pipeline.storage  # noqa: F401  registers the store backend Predictions needs
    from nirs4all.data.predictions import Predictions
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    from n4a_widgets.core.sql import SqlSession

    from workspace_factory import cached_workspace

    t0 = time.perf_counter()
    ws = cached_workspace(args.n)
    print(f"workspace: {args.n} predictions at {ws} (ready in {time.perf_counter() - t0:.1f} s)")
    try:
        # Warm the OS page cache and imports for both sides (pyarrow imports pandas on its first
        # pa.array call), so cold means "new session", not "cold disk or first import".
        with SqlSession(ws) as s:
            s.execute("SELECT count(*) FROM runs")
        WorkspaceStore.open_readonly(ws).close()

        def ours_join_cold() -> int:
            with SqlSession(ws) as s:
                return s.execute(JOIN_SQL, limit=1000, page_size=50).result(0).row_count

        t_join_cold, n_join = timed(ours_join_cold, args.repeat)

        warm = SqlSession(ws)
        warm.execute(JOIN_SQL, limit=1000, page_size=50)
        t_join_warm, _ = timed(lambda: warm.execute(JOIN_SQL, limit=1000, page_size=50).result(0), args.repeat)

        def ours_agg_cold() -> list[list[Any]]:
            with SqlSession(ws) as s:
                return s.execute(AGG_SQL, limit=10_000).result().rows

        def theirs_agg_cold() -> Any:
            store = WorkspaceStore.open_readonly(ws)
            try:
                return Predictions(store=store).query(AGG_SQL)
            finally:
                store.close()

        t_agg_ours_cold, ours_rows = timed(ours_agg_cold, args.repeat)
        t_agg_theirs_cold, theirs_df = timed(theirs_agg_cold, args.repeat)
        assert len(ours_rows) == theirs_df.height, (len(ours_rows), theirs_df.height)

        warm.execute(AGG_SQL, limit=10_000)
        t_agg_ours_warm, _ = timed(lambda: warm.execute(AGG_SQL_2, limit=10_000).result(), args.repeat)
        store = WorkspaceStore.open_readonly(ws)
        preds = Predictions(store=store)
        t_agg_theirs_warm, _ = timed(lambda: preds.query(AGG_SQL_2), args.repeat)
        store.close()
        warm.close()
    finally:
        shutil.rmtree(ws.parent, ignore_errors=True)

    print(f"\njoin predictions x arrays, first page of 50 ({n_join} rows kept, cap 1000):")
    print(
        f"  cold (new session) {t_join_cold * 1000:8.1f} ms   goal < 1000 ms: {'OK' if t_join_cold < 1 else 'MISSED'}"
    )
    print(f"  warm (same session){t_join_warm * 1000:8.1f} ms")
    print("\nmetadata aggregate, same SQL:")
    print(
        f"  cold: ours {t_agg_ours_cold * 1000:7.1f} ms   Predictions.query {t_agg_theirs_cold * 1000:7.1f} ms"
        f"   ratio ours/theirs {t_agg_ours_cold / t_agg_theirs_cold:5.2f}"
    )
    print(
        f"  warm: ours {t_agg_ours_warm * 1000:7.1f} ms   Predictions.query {t_agg_theirs_warm * 1000:7.1f} ms"
        f"   ratio ours/theirs {t_agg_ours_warm / t_agg_theirs_warm:5.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
