"""Executing a merge plan on the one write skeleton (``core/write_op.py``).

``MergeOperation`` is a ``WriteOperation``: ``plan`` is read-only (and reuses
the previewed plan when nothing it depends on changed: confirming a preview
does not read every source again), ``run_write`` takes the guard and checks
the ``plan_id``, and ``execute`` writes one transaction and one
``save_batch`` per dataset (crash windows: ``plan``'s docstring).

Lineage (``lineage``): model files are copied first (content-addressed,
verified against their hash, renamed into place: a crash leaves at most an
unreferenced file), then, per dataset and inside its transaction, the
artifacts are registered (``register_existing_artifact``), each source run,
pipeline and chain is re-created with its steps and remapped artifact ids,
the predictions saved, ``ctx.before_delete`` called (the undo helper keeps
what is needed to restore), and the replaced predictions deleted.  One
garbage collection runs at the end, after nirs4all's reference-count repair,
so no artifact a surviving or merged chain names is ever collected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import (
    CorruptStoreError,
    OperationCancelledError,
    PlanChangedError,
    WorkspaceBusyError,
    WorkspaceError,
)
from ..progress import Progress, Ticker
from ..write_op import WriteContext, WriteOperation, run_write
from . import plan as _plan_mod
from .archives import ArchiveSet
from .arrays import _records
from .lineage import ArtifactAdd, chain_artifact_ids, remap
from .plan import _DatasetWrite, _json, _Plan, _remember, _request, _reuse_plan, _SourceInfo
from .reports import _EXTRA_COLUMNS, MergeReport

# ------------------------------------------------------------- execution


def _live_ids(store: Any, dataset: str) -> set[str]:
    """The target's ids for ``dataset`` on the store's own connection (inside its transaction)."""
    from ..nirs4all_api import store_connection

    conn = store_connection(store)
    return {r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", [dataset])}


def _copy_artifact_files(root: Path, plan: _Plan, ticker: Ticker) -> None:
    """Copy the model files the plan adds, verified against their content hash, renamed into place."""
    assert plan.lineage is not None
    todo = [a for a in plan.lineage.adds.values() if a.copy]
    for i, add in enumerate(todo):
        info = plan.sources[add.source_index]
        src = info.path / layout.ARTIFACTS_DIR / add.rel_path
        dst = root / layout.ARTIFACTS_DIR / add.rel_path
        ticker.step(i / max(len(todo), 1), f"Copying model files from {info.name}")
        if dst.exists():
            continue
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise PlanChangedError(f"Model file {src} of source {info.origin} cannot be read ({exc}).") from exc
        expected = add.row.get("content_hash")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise CorruptStoreError(
                f"Model file {add.rel_path} of source {info.origin} does not match its recorded hash; nothing was "
                "merged.", "Check the source (a damaged copy or archive?).",
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.n4a-merge-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dst)


def _register(store: Any, add: ArtifactAdd) -> None:
    a = add.row
    store.register_existing_artifact(
        add.new_id, add.rel_path, str(a.get("content_hash") or ""), str(a.get("operator_class") or ""),
        str(a.get("artifact_type") or ""), str(a.get("format") or "joblib"), int(a.get("size_bytes") or 0),
    )


def _write_dataset(
    store: Any, plan: _Plan, write: _DatasetWrite, expected: set[str], on_conflict: str,
    records: list[dict[str, Any]], step: Callable[[str], None], ctx: WriteContext,
) -> None:
    ds = write.dataset
    lineage = plan.lineage
    assert lineage is not None
    with store.transaction():
        checked = False
        for info, adds, replaced in write.parts:
            si = plan.sources.index(info)
            mapping = lineage.maps[si]
            chains = {row["chain_id"] for row, _ in adds}
            needed = {mapping[a] for c in chains for a in chain_artifact_ids(info.chains.get(c) or {}) if a in mapping}
            for aid in sorted(needed & lineage.adds.keys()):
                _register(store, lineage.adds[aid])
            if not checked:
                # After the first write we hold SQLite's write lock: nothing can change the target under us.
                checked = True
                if _live_ids(store, ds) != expected:
                    raise PlanChangedError(
                        f"The target's dataset {ds!r} changed since the merge preview (another writer?); this batch "
                        "was rolled back.",
                    )
            step(f"Writing predictions from {info.name}")
            _save_predictions(store, info, ds, adds, mapping, on_conflict, replaced)
        if not checked and _live_ids(store, ds) != expected:
            raise PlanChangedError(
                f"The target's dataset {ds!r} changed since the merge preview (another writer?); this batch was "
                "rolled back.",
            )
        step("Writing arrays")
        store.array_store.save_batch(records)
        if write.removes:
            from ..nirs4all_api import delete_predictions

            ctx.before_delete(store, list(write.removes))
            delete_predictions(store, list(write.removes))
        step("Committing")


def _save_predictions(
    store: Any, info: _SourceInfo, ds: str, adds: list[tuple[dict[str, Any], str]], mapping: dict[str, str],
    on_conflict: str, replaced: int,
) -> None:
    """Runs, pipelines and chains (steps, models) of the source, then ``save_prediction`` per row."""
    runs: dict[str, str] = {}
    pipes: dict[str, str] = {}
    chains: dict[str, tuple[str, str]] = {}  # source chain -> (target pipeline, target chain)
    json_cache: dict[str, Any] = {}
    extra_cols = [k for k in _EXTRA_COLUMNS if adds and k in adds[0][0]]
    save = store.save_prediction
    for row, new_id in adds:
        ctx = chains.get(row["chain_id"])
        if ctx is None:
            src_chain = info.chains.get(row["chain_id"]) or {}
            src_pipe_id = row["pipeline_id"] or src_chain.get("pipeline_id") or ""
            src_pipe = info.pipelines.get(src_pipe_id) or {}
            pipeline_id = pipes.get(src_pipe_id)
            if pipeline_id is None:
                src_run_id = src_pipe.get("run_id") or ""
                run_id = runs.get(src_run_id)
                if run_id is None:
                    run_id = runs[src_run_id] = _begin_run(store, info, src_run_id, ds, on_conflict)
                pipeline_id = pipes[src_pipe_id] = store.begin_pipeline(
                    run_id=run_id, name=src_pipe.get("name") or f"merge_{info.name}",
                    expanded_config=_json(src_pipe.get("expanded_config")) or [],
                    generator_choices=_json(src_pipe.get("generator_choices")) or [],
                    dataset_name=ds, dataset_hash=src_pipe.get("dataset_hash") or "merged",
                    original_template=_json_or_empty(src_pipe.get("original_template")),
                )
            chain_id = store.save_chain(
                pipeline_id=pipeline_id, steps=remap(_json_or_empty(src_chain.get("steps")) or [], mapping),
                model_step_idx=src_chain.get("model_step_idx") or 0,
                model_class=src_chain.get("model_class") or row.get("model_class") or "",
                preprocessings=src_chain.get("preprocessings") or row.get("preprocessings") or "",
                fold_strategy=src_chain.get("fold_strategy") or "per_fold",
                fold_artifacts=remap(_json_or_empty(src_chain.get("fold_artifacts")) or {}, mapping),
                shared_artifacts=remap(_json_or_empty(src_chain.get("shared_artifacts")) or {}, mapping),
                branch_path=_json(src_chain.get("branch_path")), source_index=src_chain.get("source_index"),
                dataset_name=ds, relation_replay_manifest=_json_or_empty(src_chain.get("relation_replay_manifest")),
            )
            ctx = chains[row["chain_id"]] = (pipeline_id, chain_id)
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
    for src_pipe_id, pipeline_id in pipes.items():
        src_pipe = info.pipelines.get(src_pipe_id) or {}
        store.complete_pipeline(
            pipeline_id, src_pipe.get("best_val"), src_pipe.get("best_test"), src_pipe.get("metric") or "", 0,
        )
    for run_id in runs.values():
        store.complete_run(run_id, summary={"merged_predictions": len(adds), "replaced": replaced})


def _begin_run(store: Any, info: _SourceInfo, src_run_id: str, ds: str, on_conflict: str) -> str:
    """A target run for one source run (per dataset written), its configuration kept with where it came from."""
    src = info.runs.get(src_run_id) or {}
    config = _json_or_empty(src.get("config"))
    merged = {"merged_by": "n4a_widgets", "source": str(info.origin), "source_run_id": src_run_id,
              "on_conflict": on_conflict}
    if isinstance(config, dict):
        config = {**config, "n4a_merge": merged}
    else:
        config = {"source_config": config, "n4a_merge": merged}
    listed = _json_or_empty(src.get("datasets"))
    datasets = [d for d in listed if isinstance(d, dict) and d.get("name") == ds] if isinstance(listed, list) else []
    name = src.get("name") or f"merge_{info.name}"
    return str(store.begin_run(name, config=config, datasets=datasets or [{"name": ds}]))


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


class MergeOperation(WriteOperation[_Plan, MergeReport]):
    """A merge of ``sources`` into the target, run by ``run_write``."""

    name = "merge"
    label = "merge"

    def __init__(
        self, sources: Sequence[Any], *, on_conflict: str, datasets: Sequence[str] | None,
        reuse_plan_id: str | None = None,
    ) -> None:
        self.sources = list(sources) if not isinstance(sources, (str, Path)) else [sources]
        self.on_conflict = on_conflict
        self.datasets = datasets
        self.reuse_plan_id = reuse_plan_id
        self.archives = ArchiveSet()

    def validate(self, root: Path) -> None:
        _request(root, self.sources, self.on_conflict, self.datasets)

    def parameters(self) -> dict[str, Any]:
        return {"sources": [str(getattr(s, "path", s)) for s in self.sources], "on_conflict": self.on_conflict,
                "datasets": list(self.datasets) if self.datasets is not None else None}

    def plan(self, root: Path, ticker: Ticker) -> _Plan:
        reused = _reuse_plan(root, self.sources, self.on_conflict, self.datasets, self.reuse_plan_id, self.archives)
        if reused is not None:
            return reused
        return _plan_mod.build_plan(
            root, self.sources, self.on_conflict, self.datasets, progress=ticker.step, cancel=ticker.cancel,
            archives=self.archives,
        )

    def preview(self, root: Path, plan: _Plan) -> MergeReport:
        _remember(plan)
        return plan.report

    def execute(self, root: Path, plan: _Plan, ctx: WriteContext) -> MergeReport:
        result = dataclasses.replace(plan.report, dry_run=False)
        if plan.writes:
            _execute(root, plan, self.on_conflict, ctx)
        ctx.ticker.done("Merge complete" if plan.writes else "Nothing to merge")
        return result

    def close(self) -> None:
        self.archives.close()


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
    """Merge ``sources`` (workspace folders or ``.zip`` archives of them) into ``target``; a dry run by default.

    The dry run returns the exact plan and its ``plan_id``; pass that id back
    with ``dry_run=False`` to execute it (``PlanChangedError`` if the target or
    a source changed meanwhile).  ``plan_id=None`` executes a fresh plan.
    """
    if not dry_run and not target.exists():
        raise WorkspaceError(f"Target folder {target} does not exist.", "Create the folder first.")
    op = MergeOperation(sources, on_conflict=on_conflict, datasets=datasets, reuse_plan_id=None if dry_run else plan_id)
    try:
        return run_write(target, op, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
    finally:
        op.close()


def _execute(target: Path, plan: _Plan, on_conflict: str, ctx: WriteContext) -> None:
    from ..nirs4all_api import analyze, defer_auto_compaction, open_store, repair_artifact_refcounts

    writes = plan.writes
    ticker = ctx.ticker
    _copy_artifact_files(target, plan, ticker.span(0.0, 0.05))
    total = sum(w.work for w in writes) or 1
    done = 0
    expected = {ds: set(ids) for ds, ids in plan.target_ids.items()}
    try:
        store = open_store(target)
    except sqlite3.OperationalError as exc:
        raise _busy(target, exc) from exc
    try:
        # Deletes must not trigger nirs4all's automatic compaction mid-batch; we compact once at the end.
        defer_auto_compaction(store)
        analyzed_at = -1
        touched: set[str] = set()
        span = ticker.span(0.05, 0.95)
        for index, write in enumerate(writes):
            if ticker.cancelled:
                raise OperationCancelledError(
                    f"Merge cancelled after {index} of {len(writes)} batch(es) (one per dataset); the finished "
                    "batches hold complete predictions with their chains and models.",
                    "Preview again to merge the rest.",
                )
            label = f"{', '.join(info.name for info, _, _ in write.parts) or 'replacements'} / {write.dataset}"
            frac = done / total
            span.step(frac, f"Reading arrays: {label}")
            records = [rec for info, adds, _ in write.parts for rec in _records(info, write.dataset, adds)]
            ds_expected = expected.setdefault(write.dataset, set())

            def step(what: str, frac: float = frac, label: str = label) -> None:
                span.step(frac, f"{what}: {label}")

            if write.removes and done > 2 * analyzed_at:
                # The delete re-runs update_chain_summary for each touched chain; SQLite plans its query
                # badly without fresh statistics (29 ms a chain at 100k).  Private call, guarded.
                analyze(store)
                analyzed_at = max(done, 1)
            try:
                _write_dataset(store, plan, write, ds_expected, on_conflict, records, step, ctx)
            except sqlite3.OperationalError as exc:
                raise _busy(target, exc) from exc
            del records
            added = [nid for _, adds, _ in write.parts for _, nid in adds]
            ctx.added_ids.extend(added)
            ctx.removed_ids.extend(write.removes)
            ds_expected |= set(added)
            ds_expected -= set(write.removes)
            if write.removes:
                touched.add(write.dataset)
            done += write.work
            span.step(done / total, f"Merged {label}")
        if touched:
            # nirs4all defers its artifact clean-up inside our transactions; run it once, after its own
            # reference-count repair, so nothing a surviving or merged chain names can be collected.
            repair_artifact_refcounts(store)
            store.gc_artifacts()
        for ds in sorted(touched):
            ticker.step(0.96, f"Compacting {ds}")
            store.compact_arrays(ds)
    finally:
        store.close()
