"""What "undo gives back exactly" compares: every prediction column, every array value, chains, artifacts."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

#: Re-issued by nirs4all's write API on restore (save_prediction has no created_at argument).
VOLATILE = {"created_at", "completed_at"}


def _conn(ws: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{(ws / 'store.sqlite').as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def predictions(ws: Path) -> dict[str, dict[str, Any]]:
    conn = _conn(ws)
    try:
        rows = conn.execute("SELECT * FROM predictions").fetchall()
        return {r["prediction_id"]: {k: r[k] for k in r.keys() if k not in VOLATILE} for r in rows}  # noqa: SIM118 - sqlite3.Row
    finally:
        conn.close()


def table(ws: Path, name: str, key: str, columns: str = "*") -> dict[str, dict[str, Any]]:
    conn = _conn(ws)
    try:
        rows = conn.execute(f"SELECT {columns} FROM {name}").fetchall()  # noqa: S608 - test helper
        return {r[key]: {k: r[k] for k in r.keys() if k not in VOLATILE} for r in rows}  # noqa: SIM118 - sqlite3.Row
    finally:
        conn.close()


def arrays(ws: Path, ids: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every prediction's arrays as nirs4all's own ArrayStore decodes them."""
    from nirs4all.pipeline.storage.array_store import ArrayStore

    wanted = sorted(ids if ids is not None else predictions(ws))
    return ArrayStore(ws, read_only=True).load_batch(wanted)


def assert_same_arrays(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    assert set(a) == set(b), f"array ids differ: {sorted(set(a) ^ set(b))[:5]}"
    for pid, left in a.items():
        right = b[pid]
        assert set(left) == set(right), pid
        for key, value in left.items():
            other = right[key]
            if isinstance(value, np.ndarray) or isinstance(other, np.ndarray):
                assert value is not None and other is not None, (pid, key)
                assert np.asarray(value).shape == np.asarray(other).shape, (pid, key)
                assert np.array_equal(np.asarray(value), np.asarray(other), equal_nan=value.dtype.kind == "f"), (
                    pid, key,
                )
            else:
                assert value == other, (pid, key)


def _close(a: Any, b: Any) -> bool:
    """Equal, with JSON text compared parsed and floats to 1e-12 (chain summaries are nirs4all's own
    averages: its bulk and per-chain summary functions sum in a different order, last-ulp apart)."""
    import json
    import math

    if isinstance(a, str) and isinstance(b, str) and a[:1] in "{[" and b[:1] in "{[":
        try:
            return _close(json.loads(a), json.loads(b))
        except ValueError:
            return a == b
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def snapshot(ws: Path) -> dict[str, Any]:
    """Everything undo must give back."""
    preds = predictions(ws)
    return {
        "predictions": preds,
        "arrays": arrays(ws, set(preds)),
        "chains": table(ws, "chains", "chain_id"),
        "pipelines": set(table(ws, "pipelines", "pipeline_id", "pipeline_id")),
        "artifacts": table(ws, "artifacts", "artifact_id", "artifact_id, artifact_path, content_hash, ref_count"),
        "artifact_files": sorted(str(p.relative_to(ws)) for p in (ws / "artifacts").rglob("*") if p.is_file()),
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert set(before["predictions"]) == set(after["predictions"])
    for pid, row in before["predictions"].items():
        assert after["predictions"][pid] == row, pid
    assert_same_arrays(before["arrays"], after["arrays"])
    assert set(before["chains"]) == set(after["chains"])
    for cid, row in before["chains"].items():
        other = after["chains"][cid]
        bad = [k for k in row if not _close(row[k], other[k])]
        assert not bad, (cid, bad)
    assert before["pipelines"] == after["pipelines"]
    assert before["artifact_files"] == after["artifact_files"]
    assert before["artifacts"] == after["artifacts"]


def nirs4all_reads_cleanly(ws: Path) -> None:
    """integrity_check, a query, a replay of every chain's artifacts, and a new nirs4all.run into it."""
    import nirs4all.pipeline.storage  # noqa: F401
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    from n4a_widgets.demo import run_dataset

    store = WorkspaceStore.open_readonly(ws)
    try:
        live = set(predictions(ws))
        check = store.array_store.integrity_check(expected_ids=live)
        assert check == {"orphan_ids": [], "missing_ids": [], "corrupt_files": []}, check
        frame = store.query_predictions()
        assert set(frame["prediction_id"].to_list()) == live
    finally:
        store.close()
    before = len(predictions(ws))
    run_dataset(ws, "after_undo", "regression", 60, 3, n_models=1)
    assert len(predictions(ws)) > before
