"""Executing a merge plan: one transaction and one ``save_batch`` per dataset (see ``plan``'s docstring)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptStoreError,
    OperationCancelledError,
    PlanChangedError,
    WorkspaceBusyError,
    WorkspaceError,
)
from ..progress import Progress
from . import plan as _plan_mod
from .arrays import _records
from .plan import _Batch, _json, _Plan, _remember, _reuse_plan, _SourceInfo
from .reports import _EXTRA_COLUMNS, MergeReport

# ------------------------------------------------------------- execution


def _live_ids(store: Any, dataset: str) -> set[str]:
    """The target's ids for ``dataset`` on the store's own connection (inside its transaction)."""
    from ..nirs4all_api import store_connection

    conn = store_connection(store)
    return {r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", [dataset])}


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
    step: Callable[[str], None],
) -> None:
    ds = write.dataset
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
            from ..nirs4all_api import delete_predictions

            delete_predictions(store, list(write.removes))
        step("Committing")


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
    from ..locking import arrays_lock_held, exclusive_job

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, fraction)), message)

    if dry_run:
        plan = _plan_mod.build_plan(target, sources, on_conflict, datasets, progress=progress, cancel=cancel)
        _remember(plan)
        return plan.report

    if not target.exists():
        raise WorkspaceError(f"Target folder {target} does not exist.", "Create the folder first.")
    with exclusive_job(target, "merge", force=force):
        if arrays_lock_held(target):
            raise WorkspaceBusyError(f"A nirs4all run is writing arrays into {target}.")
        report(0.0, "Checking the plan")
        reused = _reuse_plan(target, sources, on_conflict, datasets, plan_id)
        plan = reused or _plan_mod.build_plan(
            target, sources, on_conflict, datasets, progress=progress, cancel=cancel, span=(0.0, 0.15),
        )
        from ..plans import check_plan

        check_plan(plan_id, plan.plan_id, "merge")
        result = dataclasses.replace(plan.report, dry_run=False)
        if not plan.batches:
            report(1.0, "Nothing to merge")
            return result
        _execute(target, plan, on_conflict, report, cancel)
        return result


def _execute(
    target: Path, plan: _Plan, on_conflict: str, report: Progress, cancel: threading.Event | None,
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
        from ..nirs4all_api import analyze, defer_auto_compaction

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
                _write_dataset(store, write, ds_expected, on_conflict, records, step)
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
