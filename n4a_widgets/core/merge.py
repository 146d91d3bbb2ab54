"""Merge other workspaces (sources) into this one (the target), batched.

Same semantics as nirs4all's ``Predictions.merge_stores`` — its conflict key
(dataset, model, fold, partition, preprocessing, branch, metric, refit context
and the model specification: expanded config, generator choices, best params,
model step, branch path, source index), its strategies and its tie rules —
but planned in memory first, so a dry run reports exactly what will happen,
and written in batches: per dataset, one SQLite transaction and one
``ArrayStore.save_batch`` for all sources (nirs4all rewrites the whole array
file per row).  A source row that a later source replaces is counted as
nirs4all counts it (added, then removed) but never written.  Confirming a
preview in the same process reuses the previewed plan when the target's and
every source's state token are unchanged (else it plans again and compares
plan ids).  Arrays are read column-wise (``_load_arrays``, checked against
nirs4all's ``load_batch``) and written with nirs4all's ``save_batch``.

How a batch is written, and why (crash windows)::

    BEGIN
      per source: begin_run / begin_pipeline / save_chain / save_prediction ...  (SQLite, uncommitted)
      re-check the target's ids for this dataset (plan still valid?)
      array_store.save_batch(new rows of every source)                   (arrays published)
      _delete_predictions_matching(replaced target ids)                  (SQLite + tombstones)
    COMMIT

A kill before ``save_batch`` leaves the target as it was.  A kill between
``save_batch`` and ``COMMIT`` leaves array rows without a prediction (harmless:
nirs4all reads through SQLite, ``clean_dead_links`` removes them) and maybe
tombstones of rows that are still live (nirs4all's validated compaction drops
stale tombstones and keeps the arrays).  A prediction is never committed
before its arrays exist, so there is never a prediction without arrays.  A
kill between batches leaves complete predictions of the finished batches.
Artifact garbage collection is deferred by nirs4all inside a transaction and
run once after the batch commits.

Where we differ from ``merge_stores``, on purpose: one merge run per source
and dataset (completed, not left ``running``) instead of one never-completed
run per source chain; source rows whose arrays are missing are skipped and
reported instead of being saved as predictions without arrays; the extra
schema-5 columns (prediction scope, unit ids, ...) are copied too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .errors import (
    CorruptStoreError,
    InvalidArgumentError,
    OperationCancelledError,
    PlanChangedError,
    UnsupportedFormatError,
    WorkspaceBusyError,
    WorkspaceError,
)
from .reports import Report

Progress = Callable[[float, str], None]

#: nirs4all's strategy names, with the one-line explanation the widget and CLI show.
STRATEGIES: dict[str, str] = {
    "keep_best": "Keep whichever prediction has the better validation score (ties keep the target's).",
    "keep_existing": "Keep the target's prediction; add only predictions the target does not have.",
    "overwrite": "Replace the target's prediction with the source's.",
}

#: Columns of the conflict key, in nirs4all's order (``Predictions._merge_conflict_key``).
KEY_COLUMNS = (
    "dataset_name", "model_name", "model_class", "fold_id", "partition", "preprocessings", "branch_id", "metric",
    "refit_context",
)
#: Columns copied by ``save_prediction`` besides the ids.
_COPY_COLUMNS = (
    "model_name", "model_class", "fold_id", "partition", "val_score", "test_score", "train_score", "metric",
    "task_type", "n_samples", "n_features", "scores", "best_params", "preprocessings", "branch_id", "branch_name",
    "exclusion_count", "exclusion_rate", "refit_context",
)
#: Schema-5 columns that ``merge_stores`` drops and we keep (copied when present).
_EXTRA_COLUMNS = (
    "prediction_scope", "prediction_level", "evaluation_scope", "reduction_role", "reduction_id",
    "physical_sample_id", "origin_sample_id", "derived_unit_id", "unit_level", "unit_id", "row_id",
    "sample_influence_weight",
)
_key_values = operator.itemgetter(*KEY_COLUMNS)
#: Conflicts listed in detail per source (counts are always exact).
CONFLICT_SAMPLE = 200
_ID_NAMESPACE = uuid.UUID("6f1d0b3e-3c51-4e6a-9a57-5a0f3d2c8e11")


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class MergeConflict(Report):
    """One source prediction whose conflict key the target already holds."""

    key: dict[str, Any]
    """The conflict key: dataset, model, fold, partition, ... and a digest of the model specification."""
    source_id: str
    target_id: str
    """The target prediction compared against (the first one when several share the key)."""
    winner: str
    """``"source"`` (the target's prediction(s) are replaced) or ``"target"`` (the source row is skipped)."""
    source_score: float | None
    target_score: float | None
    new_id: str | None
    """Id the source prediction gets in the target when it wins."""
    replaced_ids: tuple[str, ...]


@dataclass(frozen=True)
class MergeSourceReport(Report):
    path: str
    name: str
    predictions: int
    """Source predictions considered (after the dataset filter)."""
    added: int
    """Predictions written into the target (to write, in a dry run), replacements included."""
    removed: int
    """Target predictions this source's predictions replace."""
    conflicts: int
    """Source predictions whose conflict key the target already held (nirs4all's ``conflicts_resolved``)."""
    kept_existing: int
    """Conflicts the target's prediction won (the source row is not written)."""
    skipped: int
    """Source rows not written for another reason (no arrays in the source)."""
    datasets: tuple[str, ...]
    bytes: int
    """Array bytes to copy, estimated from the compressed size of the source files."""
    conflict_details: tuple[MergeConflict, ...]
    conflicts_truncated: bool
    errors: tuple[str, ...]


@dataclass(frozen=True)
class MergeReport(Report):
    """What a merge did (or, with ``dry_run=True``, exactly what it will do)."""

    target: str
    dry_run: bool
    plan_id: str
    on_conflict: str
    datasets_filter: tuple[str, ...] | None
    sources: tuple[MergeSourceReport, ...]
    added: int
    """Predictions written into the target, replacements included."""
    removed: int
    """Target predictions replaced (deleted)."""
    conflicts: int
    kept_existing: int
    skipped: int
    datasets_merged: tuple[str, ...]
    bytes: int
    prediction_ids: tuple[str, ...]
    """Exactly the target prediction ids the merge removes."""
    predictions_before: int
    predictions_after: int
    message: str


# ------------------------------------------------------------- planning


@dataclass
class _Entry:
    """A prediction in the (simulated) target."""

    prediction_id: str
    val_score: float | None


@dataclass
class _Batch:
    source_index: int
    dataset: str
    adds: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass
class _SourceInfo:
    path: Path
    token: str
    rows: list[dict[str, Any]]
    pipelines: dict[str, dict[str, Any]]
    chains: dict[str, dict[str, Any]]
    array_ids: dict[str, set[str]]
    file_info: dict[str, tuple[int, int]]  # dataset -> (bytes, rows)


@dataclass
class _Plan:
    plan_id: str
    report: MergeReport
    batches: list[_Batch]
    sources: list[_SourceInfo]
    target_ids: dict[str, set[str]]
    params: dict[str, Any] = field(default_factory=dict)
    target_token: str = ""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class _KeyMaker:
    """``Predictions._merge_conflict_key`` without a store round trip per row."""

    def __init__(self, pipelines: dict[str, dict[str, Any]], chains: dict[str, dict[str, Any]]) -> None:
        self.pipelines = pipelines
        self.chains = chains
        self._cache: dict[tuple[Any, Any, Any], str] = {}

    def spec(self, row: dict[str, Any]) -> str:
        cache_key = (row.get("pipeline_id"), row.get("chain_id"), row.get("best_params"))
        spec = self._cache.get(cache_key)
        if spec is None:
            pipeline = self.pipelines.get(row.get("pipeline_id") or "") or {}
            chain = self.chains.get(row.get("chain_id") or "") or {}
            params = _json(row.get("best_params"))
            spec = json.dumps(
                [_json(pipeline.get("expanded_config")) or [], _json(pipeline.get("generator_choices")) or [],
                 params or {}, chain.get("model_step_idx"), _json(chain.get("branch_path")), chain.get("source_index")],
                sort_keys=True,
            )
            self._cache[cache_key] = spec
        return spec

    def key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return (*_key_values(row), self.spec(row))


def conflict_key_dict(key: tuple[Any, ...]) -> dict[str, Any]:
    """Readable form of a conflict key (the specification as a short digest)."""
    out = dict(zip(KEY_COLUMNS, key[:-1], strict=True))
    out["specification"] = hashlib.sha256(str(key[-1]).encode()).hexdigest()[:12]
    return out


def _query(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _read_store(root: Path, *, full: bool, datasets: set[str] | None) -> tuple[
    list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]
]:
    """Predictions (only the columns needed), pipelines and chains of ``root``, read-only.

    Rows come in ``query_predictions``' order (``created_at DESC``), which
    decides ties between rows of one source that share a conflict key.
    """
    from .readonly_sqlite import open_readonly

    db = root / layout.STORE_SQLITE
    if not db.exists():
        return [], {}, {}
    with open_readonly(db) as conn:
        have = _columns(conn, "predictions")
        wanted = ["prediction_id", "pipeline_id", "chain_id", *KEY_COLUMNS, "best_params", "val_score"]
        if full:
            wanted += [c for c in (*_COPY_COLUMNS, *_EXTRA_COLUMNS) if c in have]
        cols = ", ".join(dict.fromkeys(wanted))
        rows = _query(conn, f"SELECT {cols} FROM predictions ORDER BY created_at DESC")
        if datasets is not None:
            rows = [r for r in rows if r["dataset_name"] in datasets]
        pcols = "pipeline_id, name, expanded_config, generator_choices, best_val, best_test, metric"
        pipelines = {r["pipeline_id"]: r for r in _query(conn, f"SELECT {pcols} FROM pipelines")}
        ccols = "chain_id, pipeline_id, model_step_idx, branch_path, source_index"
        chains = {r["chain_id"]: r for r in _query(conn, f"SELECT {ccols} FROM chains")}
    return rows, pipelines, chains


def _array_index(root: Path, datasets: set[str]) -> tuple[dict[str, set[str]], dict[str, tuple[int, int]]]:
    """Ids present (and not tombstoned) in each dataset's array file, plus (bytes, rows) of the file."""
    import pyarrow.parquet as pq

    from .arrays_readonly import parquet_path_for, read_tombstones

    tomb = set(read_tombstones(root))
    ids: dict[str, set[str]] = {}
    info: dict[str, tuple[int, int]] = {}
    for ds in sorted(datasets):
        path = parquet_path_for(root, ds)
        if not path.exists():
            ids[ds] = set()
            info[ds] = (0, 0)
            continue
        try:
            pf = pq.ParquetFile(path)
            col = pf.read(columns=["prediction_id", "dataset_name"])
        except Exception as exc:  # noqa: BLE001 - any decode failure means the file is unusable
            raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc
        names = col.column("dataset_name").to_pylist()
        pids = col.column("prediction_id").to_pylist()
        ids[ds] = {p for p, n in zip(pids, names, strict=True) if n == ds} - tomb
        info[ds] = (path.stat().st_size, pf.metadata.num_rows)
    return ids, info


def _check_source(path: Path) -> None:
    from .status import LEGACY, MID_MIGRATION, MIGRATED, NEW, current_schema_version, detect_status

    st = detect_status(path)
    if st.storage_mode == MIGRATED:
        if st.schema_version is not None and st.schema_version != current_schema_version():
            raise UnsupportedFormatError(
                f"Source {path} has schema {st.schema_version}; this nirs4all reads schema {current_schema_version()}.",
                "Upgrade nirs4all to merge this workspace.",
            )
        return
    if st.storage_mode == NEW:
        raise InvalidArgumentError(
            f"Source {path} holds no nirs4all store.", "Pick a folder that contains store.sqlite.",
        )
    if st.storage_mode in (LEGACY, MID_MIGRATION):
        raise UnsupportedFormatError(
            f"Source {path} is a {st.storage_mode.replace('_', '-')} workspace ({st.format}); merge reads only the "
            "current format.",
            "Open it with MigrationWizard (or `python -m n4a_widgets migrate SOURCE`), migrate it, then merge the "
            "migrated workspace.",
        )
    raise UnsupportedFormatError(f"Source {path} has an unknown storage mode {st.storage_mode!r}.")


def _check_target(path: Path) -> str:
    from .status import MIGRATED, NEW, current_schema_version, detect_status

    st = detect_status(path)
    if st.storage_mode == NEW:
        return NEW
    if st.storage_mode != MIGRATED:
        raise UnsupportedFormatError(
            f"Target {path} is a {st.storage_mode.replace('_', '-')} workspace; merge writes only into the "
            "current format.",
        )
    if st.schema_version is not None and st.schema_version != current_schema_version():
        raise UnsupportedFormatError(
            f"Target {path} has schema {st.schema_version}; this nirs4all writes schema {current_schema_version()}.",
            "Upgrade nirs4all first.",
        )
    return MIGRATED


def _resolve_sources(target: Path, sources: Sequence[Any]) -> list[Path]:
    from .workspace import Workspace

    if isinstance(sources, (str, Path)) or not sources:
        if isinstance(sources, (str, Path)):
            sources = [sources]
        else:
            raise InvalidArgumentError("No source workspace given.", "Pass one or more workspace folders to merge.")
    seen: dict[Path, Path] = {}
    out: list[Path] = []
    target_real = target.resolve()
    for src in sources:
        ws = src if isinstance(src, Workspace) else Workspace(src)
        real = ws.path.resolve()
        if real == target_real:
            raise InvalidArgumentError(
                f"Source {ws.path} is the target workspace itself.", "Remove it from the sources.",
            )
        if real in seen:
            raise InvalidArgumentError(
                f"Source {ws.path} is listed twice (same folder as {seen[real]}).", "List each source once.",
            )
        seen[real] = ws.path
        out.append(ws.path)
    return out


def _new_id(seed: str, source_index: int, source_pid: str) -> str:
    """``str(uuid.uuid5(_ID_NAMESPACE, f"{seed}:{source_index}:{source_pid}"))``, without the UUID object."""
    b = bytearray(hashlib.sha1(_ID_NAMESPACE.bytes + f"{seed}:{source_index}:{source_pid}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def build_plan(
    target: Path,
    sources: Sequence[Any],
    on_conflict: str,
    datasets: Sequence[str] | None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> _Plan:
    """Compute, read-only, exactly what the merge will write and delete."""
    from nirs4all.core.metrics import infer_ascending

    from .plans import make_plan_id, workspace_state_token

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * fraction, message)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise OperationCancelledError("Merge preview cancelled; nothing was changed.")

    ds_filter, source_paths, params = _request(target, sources, on_conflict, datasets)

    # Sources: rows, specs, array ids.
    infos: list[_SourceInfo] = []
    for i, path in enumerate(source_paths):
        check_cancel()
        report(0.6 * i / len(source_paths), f"Reading source {path.name}")
        token = workspace_state_token(path)
        rows, pipelines, chains = _read_store(path, full=True, datasets=set(ds_filter) if ds_filter else None)
        ds_set = {r["dataset_name"] for r in rows}
        array_ids, file_info = _array_index(path, ds_set)
        infos.append(_SourceInfo(path, token, rows, pipelines, chains, array_ids, file_info))

    all_source_ds = set().union(*({r["dataset_name"] for r in s.rows} for s in infos))
    if ds_filter is not None:
        missing = [d for d in ds_filter if d not in all_source_ds]
        if missing:
            avail = set().union(*(_dataset_names(s.path) for s in infos))
            raise InvalidArgumentError(
                f"No source has dataset(s) {', '.join(map(repr, missing))}.",
                f"Datasets in the sources: {', '.join(sorted(avail)) or 'none'}.",
            )

    # Target: the predictions that can conflict (same datasets).
    check_cancel()
    report(0.65, "Reading target")
    target_token = workspace_state_token(target)
    t_rows, t_pipes, t_chains = _read_store(target, full=False, datasets=all_source_ds)
    target_keys = _KeyMaker(t_pipes, t_chains)
    state: dict[tuple[Any, ...], list[_Entry]] = {}
    target_ids: dict[str, set[str]] = {}
    for r in t_rows:
        state.setdefault(target_keys.key(r), []).append(_Entry(r["prediction_id"], r.get("val_score")))
        target_ids.setdefault(r["dataset_name"], set()).add(r["prediction_id"])
    predictions_before = _count_predictions(target)

    seed = hashlib.sha256("|".join([target_token, *(s.token for s in infos)]).encode()).hexdigest()

    # Simulate merge_stores, source by source, row by row.
    batches: list[_Batch] = []
    source_reports: list[MergeSourceReport] = []
    removed_all: list[str] = []
    for si, info in enumerate(infos):
        check_cancel()
        report(0.7 + 0.3 * si / len(infos), f"Planning {info.path.name}")
        keys = _KeyMaker(info.pipelines, info.chains)
        snapshot = state  # nirs4all compares only with rows present before this source
        additions: list[tuple[tuple[Any, ...], _Entry]] = []
        by_ds: dict[str, _Batch] = {}
        conflicts = kept = skipped = removed = 0
        details: list[MergeConflict] = []
        errors: list[str] = []
        no_arrays: dict[str, int] = {}
        ds_seen: set[str] = set()
        for row in info.rows:
            ds = row["dataset_name"]
            ds_seen.add(ds)
            pid = row["prediction_id"]
            if pid not in info.array_ids.get(ds, set()):
                skipped += 1
                no_arrays[ds] = no_arrays.get(ds, 0) + 1
                continue
            key = keys.key(row)
            existing = snapshot.get(key, [])
            winner = "source"
            if existing:
                conflicts += 1
                if on_conflict == "keep_existing":
                    winner = "target"
                elif on_conflict == "keep_best":
                    src = row.get("val_score")
                    if src is None or (isinstance(src, float) and math.isnan(src)):
                        winner = "target"
                    else:
                        ascending = infer_ascending(row.get("metric") or "rmse")
                        for ex in existing:
                            ex_s = ex.val_score
                            if ex_s is not None and not (isinstance(ex_s, float) and math.isnan(ex_s)) and (
                                ex_s <= src if ascending else ex_s >= src
                            ):
                                winner = "target"
                                break
            new_id = _new_id(seed, si, pid) if winner == "source" else None
            replaced: tuple[str, ...] = ()
            if existing:
                if winner == "target":
                    kept += 1
                else:
                    replaced = tuple(e.prediction_id for e in existing)
                if len(details) < CONFLICT_SAMPLE:
                    details.append(MergeConflict(
                        conflict_key_dict(key), pid, existing[0].prediction_id, winner, _finite(row.get("val_score")),
                        _finite(existing[0].val_score), new_id, replaced,
                    ))
            if winner == "target":
                continue
            batch = by_ds.get(ds)
            if batch is None:
                batch = by_ds[ds] = _Batch(si, ds)
            if replaced:
                batch.removes.extend(replaced)
                removed += len(replaced)
                removed_all.extend(replaced)
                snapshot[key] = []
            assert new_id is not None
            batch.adds.append((row, new_id))
            additions.append((key, _Entry(new_id, row.get("val_score"))))
        for key, entry in additions:
            state.setdefault(key, []).append(entry)
        for ds, n in sorted(no_arrays.items()):
            errors.append(f"{n} prediction(s) of dataset {ds!r} have no arrays in the source and were skipped.")
        total_bytes = 0
        for ds, batch in by_ds.items():
            size, nrows = info.file_info.get(ds, (0, 0))
            batch.bytes = round(size * len(batch.adds) / nrows) if nrows else 0
            total_bytes += batch.bytes
        batches.extend(by_ds[d] for d in sorted(by_ds))
        source_reports.append(MergeSourceReport(
            path=str(info.path), name=info.path.name, predictions=len(info.rows),
            added=sum(len(b.adds) for b in by_ds.values()), removed=removed, conflicts=conflicts,
            kept_existing=kept, skipped=skipped, datasets=tuple(sorted(ds_seen)), bytes=total_bytes,
            conflict_details=tuple(details), conflicts_truncated=conflicts > len(details), errors=tuple(errors),
        ))

    added = sum(s.added for s in source_reports)
    removed_total = len(removed_all)
    ids = [f"-{p}" for p in removed_all] + [f"+{nid}" for b in batches for _, nid in b.adds]
    plan_id = make_plan_id("merge", params, ids, seed)
    datasets_merged = tuple(sorted(set().union(*(set(s.datasets) for s in source_reports))))
    conflicts_total = sum(s.conflicts for s in source_reports)
    msg = (
        f"{added} prediction(s) to add from {len(infos)} source(s), {removed_total} target prediction(s) replaced, "
        f"{conflicts_total} conflict(s)."
    )
    rep = MergeReport(
        target=str(target), dry_run=True, plan_id=plan_id, on_conflict=on_conflict, datasets_filter=ds_filter,
        sources=tuple(source_reports), added=added, removed=removed_total, conflicts=conflicts_total,
        kept_existing=sum(s.kept_existing for s in source_reports), skipped=sum(s.skipped for s in source_reports),
        datasets_merged=datasets_merged, bytes=sum(s.bytes for s in source_reports),
        prediction_ids=tuple(removed_all), predictions_before=predictions_before,
        predictions_after=predictions_before + added - removed_total, message=msg,
    )
    report(1.0, "Plan ready")
    return _Plan(plan_id, rep, batches, infos, target_ids, params, target_token)


def _request(
    target: Path, sources: Sequence[Any], on_conflict: str, datasets: Sequence[str] | None,
) -> tuple[tuple[str, ...] | None, list[Path], dict[str, Any]]:
    """Validate a merge request: (dataset filter, source paths, the parameters the plan_id covers)."""
    if on_conflict not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown conflict strategy {on_conflict!r}.", f"Use one of: {', '.join(STRATEGIES)}.",
        )
    if isinstance(datasets, str):
        datasets = [datasets]
    ds_filter = None if datasets is None else tuple(dict.fromkeys(str(d) for d in datasets))
    if ds_filter is not None and not ds_filter:
        raise InvalidArgumentError("The dataset filter is empty.", "Pass None to merge every dataset.")
    source_paths = _resolve_sources(target, sources)
    target_mode = _check_target(target)
    for path in source_paths:
        _check_source(path)
    params = {
        "on_conflict": on_conflict, "datasets": list(ds_filter) if ds_filter else None,
        "sources": [str(p.resolve()) for p in source_paths], "target": str(target.resolve()),
        "target_mode": target_mode,
    }
    return ds_filter, source_paths, params


# The last previewed plan, so that confirming it does not plan everything again.  It is reused only for
# the same request while the target's and every source's state token are unchanged (the token covers
# every prediction id and score and every array file), which is exactly when a fresh plan would be equal.
_PLAN_CACHE_LOCK = threading.Lock()
_PLAN_CACHE: dict[str, _Plan] = {}


def _remember(plan: _Plan) -> None:
    with _PLAN_CACHE_LOCK:
        _PLAN_CACHE.clear()
        _PLAN_CACHE[plan.plan_id] = plan


def _forget() -> None:
    """Drop the remembered preview (tests; frees its memory)."""
    with _PLAN_CACHE_LOCK:
        _PLAN_CACHE.clear()


def _reuse_plan(
    target: Path, sources: Sequence[Any], on_conflict: str, datasets: Sequence[str] | None, plan_id: str | None,
) -> _Plan | None:
    """The remembered preview ``plan_id`` when nothing it depends on changed, else None (plan again)."""
    from .plans import workspace_state_token

    if plan_id is None:
        return None
    with _PLAN_CACHE_LOCK:
        plan = _PLAN_CACHE.pop(plan_id, None)  # a plan runs once
    if plan is None:
        return None
    _, _, params = _request(target, sources, on_conflict, datasets)
    if params != plan.params or workspace_state_token(target) != plan.target_token:
        return None
    if any(workspace_state_token(info.path) != info.token for info in plan.sources):
        return None
    return plan


def _dataset_names(root: Path) -> set[str]:
    from .readonly_sqlite import open_readonly

    with open_readonly(root / layout.STORE_SQLITE) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions")}


def source_datasets(root: Path) -> set[str]:
    """Dataset names in a workspace's store (empty when it has none or cannot be read)."""
    try:
        return _dataset_names(root) if (root / layout.STORE_SQLITE).is_file() else set()
    except (WorkspaceError, sqlite3.Error):
        return set()


def sibling_workspaces(target: Path) -> list[dict[str, Any]]:
    """Folders next to ``target`` that hold a ``store.sqlite``: candidates to merge from."""
    out: list[dict[str, Any]] = []
    parent = target.parent
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            if entry.resolve() == target.resolve() or not (entry / layout.STORE_SQLITE).is_file():
                continue
            count: int | None = _count_predictions(entry)
        except (OSError, WorkspaceError, sqlite3.Error):
            count = None
        out.append({"path": str(entry), "name": entry.name, "predictions": count})
    return out


def _count_predictions(root: Path) -> int:
    from .readonly_sqlite import open_readonly

    db = root / layout.STORE_SQLITE
    if not db.exists():
        return 0
    with open_readonly(db) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


# ------------------------------------------------------------- execution


def _live_ids(store: Any, dataset: str) -> set[str]:
    """The target's ids for ``dataset`` on the store's own connection (inside its transaction)."""
    from .nirs4all_api import store_connection

    conn = store_connection(store)
    return {r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", [dataset])}


def _load_arrays(root: Path, dataset: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``ArrayStore.load_batch(ids, dataset_name=dataset)`` of ``root``, column-wise.

    Same result (same dtypes, shapes and label decoding; the last row of a duplicated id wins),
    but each list column is converted to NumPy once and sliced per row, instead of building
    Python lists row by row.  Typed classification labels go through nirs4all's own codec.
    ``tests/test_merge_nirs4all_api.py`` checks it against ``load_batch`` value for value.
    """
    import contextlib

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .arrays_readonly import parquet_path_for
    from .nirs4all_api import decode_target_array

    path = parquet_path_for(root, dataset)
    if not ids or not path.exists():
        return {}
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any decode failure means the file is unusable
        raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc
    table = table.filter(pc.is_in(table.column("prediction_id"), value_set=pa.array(ids, pa.string())))
    n = table.num_rows
    names = set(table.column_names)

    def lists(name: str, dtype: Any) -> list[Any]:
        """Per row: a NumPy view of the list (None for null)."""
        if name not in names:
            return [None] * n
        arr = table.column(name).combine_chunks()
        values = arr.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        offsets = arr.offsets.to_numpy()
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return [values[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(n)]

    def plain(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in names else [None] * n

    pids = plain("prediction_id")
    task = plain("task_type")
    cols = {f: lists(f, np.float64) for f in ("y_true", "y_pred", "y_proba", "X", "spectra", "weights")}
    cols["sample_indices"] = lists("sample_indices", np.int32)
    other = {f: plain(f) for f in (
        "y_true_shape", "y_pred_shape", "y_proba_shape", "X_shape", "spectra_shape", "y_true_labels", "y_pred_labels",
        "sample_metadata", "result_metadata",
    )}

    def meta(raw: Any) -> Any:
        if raw is not None and isinstance(raw, str):
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, TypeError):
                return {}
        return {}

    out: dict[str, dict[str, Any]] = {}
    for i in range(n):
        arrays: dict[str, Any] = {}
        for target in ("y_true", "y_pred"):
            if other[f"{target}_labels"][i] is None:
                values, shape = cols[target][i], other[f"{target}_shape"][i]
                arrays[target] = None if values is None else values.reshape(shape) if shape is not None else values
            else:
                arrays[target] = decode_target_array({
                    f"{target}_labels": other[f"{target}_labels"][i], target: cols[target][i], "task_type": task[i],
                    f"{target}_shape": other[f"{target}_shape"][i],
                }, target)
        for name, shape_name in (("y_proba", "y_proba_shape"), ("X", "X_shape"), ("spectra", "spectra_shape")):
            value, shape = cols[name][i], other[shape_name][i]
            if value is not None and shape is not None and len(shape) > 1:
                with contextlib.suppress(ValueError):
                    value = value.reshape(shape)
            arrays[name] = value
        arrays["weights"] = cols["weights"][i]
        arrays["sample_indices"] = cols["sample_indices"][i]
        arrays["sample_metadata"] = meta(other["sample_metadata"][i])
        arrays["result_metadata"] = meta(other["result_metadata"][i])
        out[pids[i]] = arrays
    return out


def _records(info: _SourceInfo, dataset: str, adds: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Array records for ``save_batch``, decoded by nirs4all's own (read-only) ArrayStore."""
    ids = [row["prediction_id"] for row, _ in adds]
    loaded = _load_arrays(info.path, dataset, ids)
    missing = [i for i in ids if i not in loaded]
    if missing:
        raise PlanChangedError(
            f"Source {info.path} changed since the preview: {len(missing)} prediction(s) of {dataset!r} "
            f"lost their arrays (e.g. {missing[0]}).",
        )
    out = []
    for row, new_id in adds:
        arrays = loaded[row["prediction_id"]]
        out.append({
            "prediction_id": new_id, "dataset_name": dataset, "model_name": row.get("model_name", ""),
            "fold_id": row.get("fold_id", ""), "partition": row.get("partition", ""), "metric": row.get("metric", ""),
            "val_score": row.get("val_score"), "task_type": row.get("task_type", ""),
            **{k: arrays.get(k) for k in _ARRAY_FIELDS},
        })
    return out


_ARRAY_FIELDS = (
    "y_true", "y_pred", "y_proba", "X", "spectra", "sample_indices", "weights", "sample_metadata", "result_metadata",
)


@dataclass
class _DatasetWrite:
    """Every source's batch for one dataset, written in one transaction and one ``save_batch``.

    A source row that a later source replaces (its new id is in a later batch's removes) is the
    same net result whether it is written then deleted, as ``merge_stores`` does, or never
    written: it is not written (no array rewrite, tombstone or compaction for it).  The report
    still counts it as added by its source and removed by the later one, as nirs4all would.
    """

    dataset: str
    parts: list[tuple[_SourceInfo, list[tuple[dict[str, Any], str]], int]]  # (source, surviving adds, replaced)
    removes: list[str]  # target predictions (present before the merge) to delete
    work: int  # adds + removes of the plan's batches (progress units)


def _dataset_writes(plan: _Plan) -> list[_DatasetWrite]:
    groups: dict[str, list[_Batch]] = {}
    for batch in plan.batches:
        groups.setdefault(batch.dataset, []).append(batch)
    out = []
    for ds in sorted(groups):
        batches = groups[ds]
        before = plan.target_ids.get(ds, set())
        superseded = {pid for b in batches for pid in b.removes if pid not in before}
        parts = []
        for b in batches:
            adds = [(row, nid) for row, nid in b.adds if nid not in superseded]
            if adds:
                parts.append((plan.sources[b.source_index], adds, len(b.removes)))
        removes = [pid for b in batches for pid in b.removes if pid in before]
        out.append(_DatasetWrite(ds, parts, removes, sum(len(b.adds) + len(b.removes) for b in batches)))
    return out


def _write_dataset(
    store: Any, write: _DatasetWrite, expected: set[str], on_conflict: str, records: list[dict[str, Any]],
    step: Callable[[str], None], ctx: Any = None,
) -> None:
    ds = write.dataset
    if ctx is not None:  # core/write_op.WriteContext: announce the ids (undo after a crash)
        ctx.before_add([nid for _info, adds, _n in write.parts for _row, nid in adds])
    with store.transaction():
        for index, (info, adds, replaced) in enumerate(write.parts):
            name = info.path.name
            run_id = store.begin_run(
                f"merge_{name}",
                config={"source": str(info.path), "merged_by": "n4a_widgets", "on_conflict": on_conflict},
                datasets=[{"name": ds}],
            )
            # After the first write we hold SQLite's write lock: nothing can change the target under us.
            if index == 0 and _live_ids(store, ds) != expected:
                raise PlanChangedError(
                    f"The target's dataset {ds!r} changed since the merge preview (another writer?); this batch "
                    "was rolled back.",
                )
            step(f"Writing predictions from {name}")
            _save_predictions(store, run_id, info, ds, adds)
            store.complete_run(run_id, summary={"merged_predictions": len(adds), "replaced": replaced})
        if not write.parts and _live_ids(store, ds) != expected:
            raise PlanChangedError(
                f"The target's dataset {ds!r} changed since the merge preview (another writer?); this batch was "
                "rolled back.",
            )
        step("Writing arrays")
        store.array_store.save_batch(records)
        if write.removes:
            from .nirs4all_api import delete_predictions

            if ctx is not None:  # the trash keeps the replaced predictions (undo)
                ctx.before_delete(store, list(write.removes))
            delete_predictions(store, list(write.removes))
        step("Committing")
    if ctx is not None:
        ctx.added_ids.extend(nid for _info, adds, _n in write.parts for _row, nid in adds)
        ctx.removed_ids.extend(write.removes)


def _save_predictions(
    store: Any, run_id: str, info: _SourceInfo, ds: str, adds: list[tuple[dict[str, Any], str]],
) -> None:
    """One pipeline + chain per source chain, then ``save_prediction`` per row (nirs4all's write API)."""
    name = info.path.name
    contexts: dict[tuple[str, str], tuple[str, str]] = {}
    pipelines: list[tuple[str, dict[str, Any]]] = []
    json_cache: dict[str, Any] = {}
    extra_cols = [k for k in _EXTRA_COLUMNS if adds and k in adds[0][0]]
    save = store.save_prediction
    for row, new_id in adds:
        ctx_key = (row["pipeline_id"], row["chain_id"])
        ctx = contexts.get(ctx_key)
        if ctx is None:
            src_pipe = info.pipelines.get(row["pipeline_id"]) or {}
            src_chain = info.chains.get(row["chain_id"]) or {}
            pipeline_id = store.begin_pipeline(
                run_id=run_id, name=src_pipe.get("name") or f"merge_{name}",
                expanded_config=_json(src_pipe.get("expanded_config")) or [],
                generator_choices=_json(src_pipe.get("generator_choices")) or [],
                dataset_name=ds, dataset_hash="merged",
            )
            chain_id = store.save_chain(
                pipeline_id=pipeline_id, steps=[], model_step_idx=src_chain.get("model_step_idx") or 0,
                model_class=row.get("model_class") or "merged", preprocessings=row.get("preprocessings") or "",
                fold_strategy="merged", fold_artifacts={}, shared_artifacts={},
                branch_path=_json(src_chain.get("branch_path")), source_index=src_chain.get("source_index"),
            )
            ctx = contexts[ctx_key] = (pipeline_id, chain_id)
            pipelines.append((pipeline_id, src_pipe))
        best_params = row.get("best_params")
        if isinstance(best_params, str):  # few distinct values: decode each once
            if best_params not in json_cache:
                json_cache[best_params] = _json_or_empty(best_params)
            best_params = json_cache[best_params]
        save(
            pipeline_id=ctx[0], chain_id=ctx[1], dataset_name=ds, model_name=row.get("model_name", ""),
            model_class=row.get("model_class", ""), fold_id=row.get("fold_id", ""),
            partition=row.get("partition", ""), val_score=row.get("val_score"), test_score=row.get("test_score"),
            train_score=row.get("train_score"), metric=row.get("metric", "rmse"),
            task_type=row.get("task_type", "regression"), n_samples=row.get("n_samples") or 0,
            n_features=row.get("n_features") or 0, scores=_json_or_empty(row.get("scores")) or {},
            best_params=best_params or {}, preprocessings=row.get("preprocessings", ""),
            branch_id=row.get("branch_id"), branch_name=row.get("branch_name"),
            exclusion_count=row.get("exclusion_count") or 0, exclusion_rate=row.get("exclusion_rate") or 0.0,
            refit_context=row.get("refit_context"), prediction_id=new_id, **{k: row[k] for k in extra_cols},
        )
    for pipeline_id, src_pipe in pipelines:
        store.complete_pipeline(
            pipeline_id, src_pipe.get("best_val"), src_pipe.get("best_test"), src_pipe.get("metric") or "", 0,
        )


def _json_or_empty(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, TypeError):
            return {}
    return value


def _busy(target: Path, exc: sqlite3.OperationalError) -> WorkspaceError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return WorkspaceBusyError(
            f"The target {target} is locked by another writer ({exc}); the batch was rolled back.",
        )
    return CorruptStoreError(f"Writing to {target} failed: {exc}.")


def merge(
    target: Path,
    sources: Sequence[Any],
    *,
    on_conflict: str = "keep_best",
    datasets: Sequence[str] | None = None,
    dry_run: bool = True,
    plan_id: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> MergeReport:
    """Merge ``sources`` into ``ws`` (the target); a dry run by default.

    The dry run returns the exact plan and its ``plan_id``; pass that id back
    with ``dry_run=False`` to execute it (``PlanChangedError`` if the target or
    a source changed meanwhile).  ``plan_id=None`` executes a fresh plan.
    """
    from .locking import arrays_lock_held, exclusive_job

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, fraction)), message)

    if dry_run:
        plan = build_plan(target, sources, on_conflict, datasets, progress=progress, cancel=cancel)
        _remember(plan)
        return plan.report

    if not target.exists():
        raise WorkspaceError(f"Target folder {target} does not exist.", "Create the folder first.")
    with exclusive_job(target, "merge", force=force):
        if arrays_lock_held(target):
            raise WorkspaceBusyError(f"A nirs4all run is writing arrays into {target}.")
        report(0.0, "Checking the plan")
        reused = _reuse_plan(target, sources, on_conflict, datasets, plan_id)
        plan = reused or build_plan(
            target, sources, on_conflict, datasets, progress=progress, cancel=cancel, span=(0.0, 0.15),
        )
        from .plans import check_plan

        check_plan(plan_id, plan.plan_id, "merge")
        result = dataclasses.replace(plan.report, dry_run=False)
        if not plan.batches:
            report(1.0, "Nothing to merge")
            return result
        _execute(target, plan, on_conflict, report, cancel)
        return result


def _execute(
    target: Path, plan: _Plan, on_conflict: str, report: Progress, cancel: threading.Event | None, ctx: Any = None,
) -> None:
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    writes = _dataset_writes(plan)
    total = sum(w.work for w in writes) or 1
    done = 0
    expected = {ds: set(ids) for ds, ids in plan.target_ids.items()}
    try:
        store = WorkspaceStore(target)
    except sqlite3.OperationalError as exc:
        raise _busy(target, exc) from exc
    try:
        # Deletes must not trigger nirs4all's automatic compaction mid-batch; we compact once at the end.
        from .nirs4all_api import analyze, defer_auto_compaction

        defer_auto_compaction(store)
        analyzed_at = -1
        touched: set[str] = set()
        for index, write in enumerate(writes):
            if cancel is not None and cancel.is_set():
                raise OperationCancelledError(
                    f"Merge cancelled after {index} of {len(writes)} batch(es) (one per dataset); the finished "
                    "batches hold complete predictions.",
                    "Preview again to merge the rest.",
                )
            label = f"{', '.join(info.path.name for info, _, _ in write.parts) or 'replacements'} / {write.dataset}"
            frac = 0.15 + 0.8 * done / total
            report(frac, f"Reading arrays: {label}")
            records = [rec for info, adds, _ in write.parts for rec in _records(info, write.dataset, adds)]
            ds_expected = expected.setdefault(write.dataset, set())

            def step(what: str, frac: float = frac, label: str = label) -> None:
                report(frac, f"{what}: {label}")

            if write.removes and done > 2 * analyzed_at:
                # The delete re-runs update_chain_summary for each touched chain; SQLite plans its query
                # badly without fresh statistics (field notes: 29 ms a chain at 100k).  Private call, guarded.
                analyze(store)
                analyzed_at = max(done, 1)
            try:
                _write_dataset(store, write, ds_expected, on_conflict, records, step, ctx)
            except sqlite3.OperationalError as exc:
                raise _busy(target, exc) from exc
            del records
            ds_expected |= {nid for _, adds, _ in write.parts for _, nid in adds}
            ds_expected -= set(write.removes)
            if write.removes:
                touched.add(write.dataset)
                store.gc_artifacts()
            done += write.work
            report(0.15 + 0.8 * done / total, f"Merged {label}")
        for ds in sorted(touched):
            report(0.96, f"Compacting {ds}")
            store.compact_arrays(ds)
    finally:
        store.close()
    report(1.0, "Merge complete")
