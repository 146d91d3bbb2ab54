"""Read-only questions the MaintenancePanel asks: valid inputs, the ranking, the score histogram.

Ranking (``remove_bottom``) follows nirs4all's ``Predictions.remove_bottom``:
for ``val_score``/``test_score``/``train_score`` rows are grouped by their
``metric`` (different units are ranked separately), ``int(len(group) *
fraction)`` rows are removed per group, the direction comes from
``nirs4all.core.metrics.infer_ascending`` and NaN/NULL scores count as the
worst.  Among equal scores the oldest rows go first (nirs4all ranks rows
fetched newest first), then ``prediction_id``, so a plan is reproducible.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..paths import require_current, store_db
from ..readonly_sqlite import open_readonly
from .reports import SCORE_COLUMNS, MaintenanceChoices, ScoreDistribution, ScoreGroup

_NUMERIC_TYPES = ("REAL", "INT", "NUM", "FLOA", "DOUB", "DEC")


def _fmt_choices(values: Sequence[Any]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


def _numeric_columns(conn: sqlite3.Connection) -> list[str]:
    cols = []
    for _cid, name, decl, *_ in conn.execute("PRAGMA table_info(predictions)"):
        if any(t in str(decl or "").upper() for t in _NUMERIC_TYPES):
            cols.append(str(name))
    return cols


def maintenance_choices(root: Path) -> MaintenanceChoices:
    """Metric columns, partitions and datasets present in the workspace (read-only)."""
    require_current(root)
    with open_readonly(store_db(root)) as conn:
        metrics = _numeric_columns(conn)
        partitions = [r[0] for r in conn.execute("SELECT DISTINCT partition FROM predictions ORDER BY 1") if r[0]]
        datasets = [r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions ORDER BY 1") if r[0]]
    scores = [m for m in SCORE_COLUMNS if m in metrics]
    return MaintenanceChoices(tuple(metrics), tuple(scores), tuple(partitions), tuple(datasets))


def _validate_remove_bottom(
    conn: sqlite3.Connection, fraction: Any, metric: str, partition: str | None, dataset_name: str | None
) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise InvalidArgumentError(
            f"fraction must be a number between 0 and 1, got {fraction!r}.", "For example 0.1 removes the worst 10 %."
        )
    value = float(fraction)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(
            f"fraction must be between 0 and 1, got {fraction!r}.",
            "For example 0.1 removes the worst 10 %; valid range is [0, 1].",
        )
    metrics = _numeric_columns(conn)
    if metric not in metrics:
        raise InvalidArgumentError(
            f"Unknown metric column {metric!r}.",
            "Valid choices: "
            + _fmt_choices([m for m in SCORE_COLUMNS if m in metrics] + [m for m in metrics if m not in SCORE_COLUMNS])
            + ".",
        )
    if partition is not None:
        partitions = [r[0] for r in conn.execute("SELECT DISTINCT partition FROM predictions ORDER BY 1") if r[0]]
        if partition not in partitions:
            raise InvalidArgumentError(
                f"Unknown partition {partition!r}.", f"Valid choices: {_fmt_choices(partitions)}, or None for all."
            )
    if dataset_name is not None:
        datasets = [r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions ORDER BY 1") if r[0]]
        if dataset_name not in datasets:
            raise InvalidArgumentError(
                f"Unknown dataset {dataset_name!r}.", f"Valid choices: {_fmt_choices(datasets)}, or None for all."
            )
    return value


def _scope_frame(conn: sqlite3.Connection, metric: str, partition: str | None, dataset_name: str | None) -> Any:
    """The rows ``remove_bottom`` ranks, with only the columns it needs."""
    import polars as pl

    where, params = [], []
    if partition is not None:
        where.append("partition = ?")
        params.append(partition)
    if dataset_name is not None:
        where.append("dataset_name = ?")
        params.append(dataset_name)
    sql = f'SELECT prediction_id, dataset_name, metric, "{metric}" AS score, CAST(created_at AS TEXT) FROM predictions'
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql, params).fetchall()
    schema = {
        "prediction_id": pl.Utf8,
        "dataset_name": pl.Utf8,
        "metric": pl.Utf8,
        "score": pl.Float64,
        "created_at": pl.Utf8,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.col("score").fill_nan(None))


def _ranked_groups(frame: Any, metric: str) -> list[tuple[str | None, bool, Any]]:
    """[(metric name, lower_is_better, rows sorted best → worst)] like nirs4all."""
    from nirs4all.core.metrics import infer_ascending

    if frame.height == 0:
        return []
    groups = frame.partition_by("metric", maintain_order=True) if metric in SCORE_COLUMNS else [frame]
    out = []
    for group in groups:
        name = group["metric"][0] if metric in SCORE_COLUMNS else metric
        ascending = bool(infer_ascending(name or "rmse"))
        # nirs4all sorts rows it fetched newest first (ORDER BY created_at DESC), so
        # among equal scores the oldest go first; prediction_id settles the rest.
        ordered = group.sort(
            ["score", "created_at", "prediction_id"],
            descending=[not ascending, True, False],
            nulls_last=True,
            maintain_order=True,
        )
        out.append((name if metric in SCORE_COLUMNS else metric, ascending, ordered))
    return out


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def score_distribution(
    root: Path,
    metric: str = "val_score",
    partition: str | None = "val",
    dataset_name: str | None = None,
    *,
    bins: int = 30,
) -> ScoreDistribution:
    """Histogram per metric group and the cut for every whole percent (read-only).

    The MaintenancePanel computes this once per metric/partition/dataset choice;
    the page then moves the cut line with the slider without asking Python.
    """
    import numpy as np

    require_current(root)
    with open_readonly(store_db(root)) as conn:
        _validate_remove_bottom(conn, 0.0, metric, partition, dataset_name)
        frame = _scope_frame(conn, metric, partition, dataset_name)
    out = []
    for name, ascending, ordered in _ranked_groups(frame, metric):
        n = ordered.height
        scores = ordered["score"].to_list()
        finite = np.array([s for s in scores if s is not None and math.isfinite(s)], dtype=float)
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
        else:
            counts, edges = np.zeros(0, dtype=int), np.zeros(0)
        cut_scores: list[float | None] = []
        cut_counts: list[int] = []
        for pct in range(101):
            k = int(n * (pct / 100))
            cut_counts.append(k)
            cut_scores.append(_float_or_none(scores[n - k]) if k else None)
        out.append(
            ScoreGroup(
                name,
                ascending,
                n,
                n - int(finite.size),
                tuple(float(e) for e in edges),
                tuple(int(c) for c in counts),
                tuple(cut_scores),
                tuple(cut_counts),
            )
        )
    return ScoreDistribution(metric, partition, dataset_name, frame.height, tuple(out))

