"""The trash: what a destructive action deleted, kept inside the workspace until purged.

``keep(root, store, action_id, ids)`` runs (through ``WriteContext.before_delete``)
with the writable store open, inside the delete's first transaction, before a
single row goes.  It writes one *part* per call under
``.n4a_trash/<action_id>/``:

- ``rows.json`` — the prediction rows (every column), the chain and pipeline
  rows nirs4all will prune because they become empty, and the ``artifacts``
  rows those chains reference;
- ``arrays/<file>.parquet`` — the array rows of those predictions, copied as
  they are in nirs4all's Parquet files (same schema, so nirs4all's own
  ``ArrayStore`` reads them back on undo — a compaction in between does not
  matter);
- ``artifacts/<path>`` — the fitted-model files of the pruned chains
  (hard links where the file system allows, else copies), which nirs4all's
  ``gc_artifacts`` would otherwise delete.

A part is built under ``part-N.partial`` and renamed when complete, so a crash
leaves either a complete part or a ``.partial`` folder that recovery removes
(nothing was deleted before the rename).  ``ids.json`` (the action's removed and
added ids) is written when the action ends.  Only ``purge_trash`` deletes
anything here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .paths import fsync_dir

IDS_FILE = "ids.json"
_IN_CHUNK = 900  # SQLite's default limit on host parameters is 999


def trash_root(root: Path) -> Path:
    return root / layout.TRASH_DIR


def trash_dir(root: Path, action_id: str) -> Path:
    return trash_root(root) / action_id


def trash_size(root: Path) -> tuple[int, int]:
    """(bytes, files) held by the trash of ``root`` (hard links count at full size)."""
    total = files = 0
    base = trash_root(root)
    if not base.is_dir():
        return 0, 0
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
                files += 1
    return total, files




def write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield list(items[start : start + _IN_CHUNK])


def _rows(conn: Any, table: str, key: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        cur = conn.execute(f"SELECT * FROM {table} WHERE {key} IN ({marks})", chunk)  # noqa: S608 - fixed names
        cols = [d[0] for d in cur.description]
        out.extend(dict(zip(cols, r, strict=True)) for r in cur.fetchall())
    return out


def _counts(conn: Any, key: str, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {key}, count(*) FROM predictions WHERE {key} IN ({marks}) GROUP BY {key}"  # noqa: S608
        out.update({str(k): int(n) for k, n in conn.execute(sql, chunk)})
    return out


def chain_artifact_ids(row: dict[str, Any]) -> list[str]:
    """Artifact ids a chain row references (fold and shared artifacts), as nirs4all counts them."""
    ids: list[str] = []
    for column in ("fold_artifacts", "shared_artifacts"):
        raw = row.get(column)
        value = json.loads(raw) if isinstance(raw, str) and raw else raw
        if not isinstance(value, dict):
            continue
        for key, v in value.items():
            if column == "shared_artifacts" and str(key).startswith("_"):
                continue
            for aid in v if isinstance(v, list) else [v]:
                if isinstance(aid, str) and aid and aid not in ids:
                    ids.append(aid)
    return ids


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def keep(root: Path, store: Any, action_id: str, ids: Sequence[str]) -> Path:
    """Copy into the trash what restoring ``ids`` needs; returns the part folder.

    Call with the writable ``store`` open, inside the transaction that deletes
    them (so nothing changes in between), before the delete.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .arrays_readonly import parquet_path_for, take_rows
    from .nirs4all_api import store_connection

    conn = store_connection(store)
    ids = list(dict.fromkeys(ids))
    predictions = _rows(conn, "predictions", "prediction_id", ids)
    # Chains and pipelines nirs4all prunes when they lose their last prediction.
    gone_by_chain: dict[str, int] = {}
    gone_by_pipeline: dict[str, int] = {}
    for row in predictions:
        if row.get("chain_id"):
            gone_by_chain[row["chain_id"]] = gone_by_chain.get(row["chain_id"], 0) + 1
        gone_by_pipeline[row["pipeline_id"]] = gone_by_pipeline.get(row["pipeline_id"], 0) + 1
    chain_totals = _counts(conn, "chain_id", list(gone_by_chain))
    emptied_chains = [c for c, n in gone_by_chain.items() if chain_totals.get(c, 0) <= n]
    pipe_totals = _counts(conn, "pipeline_id", list(gone_by_pipeline))
    emptied_pipes = [p for p, n in gone_by_pipeline.items() if pipe_totals.get(p, 0) <= n]
    chains = _rows(conn, "chains", "chain_id", emptied_chains)
    pipelines = _rows(conn, "pipelines", "pipeline_id", emptied_pipes)
    artifact_ids = sorted({a for c in chains for a in chain_artifact_ids(c)})
    artifacts = _rows(conn, "artifacts", "artifact_id", artifact_ids)

    base = trash_dir(root, action_id)
    base.mkdir(parents=True, exist_ok=True)
    index = 1 + sum(1 for p in base.iterdir() if p.name.startswith("part-") and not p.name.endswith(".partial"))
    staging = base / f"part-{index:04d}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "arrays").mkdir(parents=True)

    # Arrays: the files of the datasets involved (every file when some ids have no metadata row).
    with_rows = {r["prediction_id"] for r in predictions}
    if len(with_rows) == len(ids):
        files = sorted({parquet_path_for(root, r["dataset_name"]) for r in predictions})
    else:
        files = sorted((root / layout.ARRAYS_DIR).glob("*.parquet"))
    wanted = pa.array(ids, pa.string())
    kept_arrays = 0
    for path in files:
        if not path.exists():
            continue
        # The ids first (cheap), then only the matching rows, streamed: a whole file decoded
        # at once was most of this operation's peak memory at 1M predictions.
        file_ids = pq.read_table(path, columns=["prediction_id"]).column("prediction_id")
        rows = pc.indices_nonzero(pc.is_in(file_ids, value_set=wanted)).to_pylist()
        if rows:
            pq.write_table(take_rows(path, rows), staging / "arrays" / path.name)
            kept_arrays += len(rows)
    artifacts_dir = root / layout.ARTIFACTS_DIR
    for art in artifacts:
        src = artifacts_dir / str(art["artifact_path"])
        if src.is_file():
            _link_or_copy(src, staging / "artifacts" / str(art["artifact_path"]))
    payload = {
        "action_id": action_id,
        "ids": ids,
        "predictions": predictions,
        "chains": chains,
        "pipelines": pipelines,
        "artifacts": artifacts,
        "array_rows": kept_arrays,
    }
    with open(staging / "rows.json", "w", encoding="utf-8") as fh:
        json.dump(payload, fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    final = base / f"part-{index:04d}"
    os.replace(staging, final)
    fsync_dir(base)
    return final


@dataclass
class TrashContent:
    """Everything the parts of one action's trash hold."""

    path: Path
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    kept_ids: list[str] = field(default_factory=list)
    parts: list[Path] = field(default_factory=list)

    def artifact_file(self, artifact_path: str) -> Path | None:
        for part in self.parts:
            p = part / "artifacts" / artifact_path
            if p.is_file():
                return p
        return None


def read_trash(root: Path, action_id: str) -> TrashContent:
    base = trash_dir(root, action_id)
    out = TrashContent(base)
    if not base.is_dir():
        return out
    for part in sorted(p for p in base.iterdir() if p.name.startswith("part-") and not p.name.endswith(".partial")):
        data = json.loads((part / "rows.json").read_text(encoding="utf-8"))
        out.parts.append(part)
        for pid in data["ids"]:
            if pid not in out.kept_ids:
                out.kept_ids.append(pid)
        for key, table in (
            ("prediction_id", "predictions"), ("chain_id", "chains"), ("pipeline_id", "pipelines"),
            ("artifact_id", "artifacts"),
        ):
            target = getattr(out, table)
            for row in data[table]:
                target.setdefault(row[key], row)
    return out


def load_trashed_arrays(content: TrashContent, ids: Sequence[str]) -> list[dict[str, Any]]:
    """``save_batch`` records for ``ids`` from the trash, decoded by nirs4all's own ``ArrayStore``.

    Each part's folder is laid out like a workspace (``arrays/<file>.parquet``),
    so a read-only ``ArrayStore`` on it reads them exactly as it reads the
    workspace.  The last part holding an id wins.
    """
    import pyarrow.parquet as pq

    from .nirs4all_api import array_store

    wanted = set(ids)
    records: dict[str, dict[str, Any]] = {}
    for part in content.parts:
        reader = array_store(part, read_only=True)
        for path in sorted((part / "arrays").glob("*.parquet")):
            meta = pq.read_table(path, columns=["prediction_id", "dataset_name", "model_name", "fold_id",
                                                "partition", "metric", "val_score", "task_type"]).to_pylist()
            here = [m for m in meta if m["prediction_id"] in wanted]
            if not here:
                continue
            by_ds: dict[str, list[dict[str, Any]]] = {}
            for m in here:
                by_ds.setdefault(m["dataset_name"], []).append(m)
            for ds, rows in by_ds.items():
                loaded = reader.load_batch([m["prediction_id"] for m in rows], dataset_name=None)
                for m in rows:
                    arrays = loaded.get(m["prediction_id"])
                    if arrays is not None:
                        records[m["prediction_id"]] = {**m, **arrays, "dataset_name": ds}
    return list(records.values())


def remove_partials(root: Path, action_id: str) -> None:
    base = trash_dir(root, action_id)
    if base.is_dir():
        for p in base.iterdir():
            if p.name.endswith(".partial"):
                shutil.rmtree(p, ignore_errors=True)


def write_ids(root: Path, action_id: str, *, removed: Sequence[str], added: Sequence[str]) -> None:
    base = trash_dir(root, action_id)
    base.mkdir(parents=True, exist_ok=True)
    write_json_atomic(base / IDS_FILE, {"removed": list(removed), "added": list(added)})


def read_ids(root: Path, action_id: str) -> dict[str, list[str]] | None:
    path = trash_dir(root, action_id) / IDS_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"removed": list(data.get("removed", [])), "added": list(data.get("added", []))}


def purge(root: Path, action_id: str) -> None:
    """Delete one action's trash for good (the history records it first)."""
    base = trash_dir(root, action_id)
    if base.exists():
        doomed = base.with_name(base.name + ".purging")
        os.replace(base, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def trash_size_of(root: Path, action_id: str) -> int:
    """Bytes held by one action's trash."""
    base = trash_dir(root, action_id)
    total = 0
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total


#: Health warns when the trash holds more than this many bytes ...
LARGE_TRASH_BYTES = 1 << 30
#: ... or more than this fraction of the rest of the workspace.
LARGE_TRASH_FRACTION = 0.25


def trash_note(root: Path, workspace_bytes: int) -> str | None:
    """The health warning for a large trash (None when small): what it holds and how to purge it."""
    nbytes, _files = trash_size(root)
    if nbytes == 0 or (nbytes < LARGE_TRASH_BYTES and nbytes < LARGE_TRASH_FRACTION * max(workspace_bytes, 1)):
        return None
    base = trash_root(root)
    actions = sum(1 for p in base.iterdir() if p.is_dir()) if base.is_dir() else 0
    return (
        f"The trash holds {nbytes / 1e6:,.1f} MB for {actions} action(s) (kept so they can be undone); "
        "purge what you no longer need: ws.purge_trash(older_than_days=30)."
    )
