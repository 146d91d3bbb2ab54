"""DuckDB / inline-array sources: rebuilt through nirs4all's WorkspaceStore write API.

One ``_Converter`` per build; each legacy table has its own step, in dependency
order (artifacts, runs and pipelines, chains, predictions with their arrays,
logs, then run completion and chain summaries).  Run, pipeline and chain ids
are re-issued by nirs4all; ``id_map`` keeps old -> new for the receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..errors import MigrationError
from .build_upgrade import _copy_tree
from .context import _Run
from .journal import _kill_point

if TYPE_CHECKING:
    from .readers import LegacyReader

BATCH_BYTES = 16 * 1024 * 1024

_SAVE_FIELDS = (
    "dataset_name", "model_name", "model_class", "fold_id", "partition", "val_score", "test_score",
    "train_score", "metric", "task_type", "n_samples", "n_features", "scores", "best_params", "branch_id",
    "branch_name", "exclusion_count", "exclusion_rate", "preprocessings", "refit_context", "prediction_scope",
    "prediction_level", "evaluation_scope", "reduction_role", "reduction_id", "physical_sample_id",
    "origin_sample_id", "derived_unit_id", "unit_level", "unit_id", "row_id", "sample_influence_weight",
)
#: save_prediction's required keywords that legacy rows may lack.
_REQUIRED_NONE = ("branch_id", "branch_name", "exclusion_count", "exclusion_rate", "n_samples", "n_features",
                  "val_score", "test_score", "train_score")


def _g(row: dict[str, Any], key: str) -> Any:
    """A legacy column value (may be NULL; nirs4all stores NULL as given)."""
    return row.get(key)


def _build_convert(run: _Run, reader: LegacyReader, staging: Path, skip: set[str]) -> dict[str, Any]:
    """DuckDB / inline-array sources: rebuild through WorkspaceStore calls; returns the receipt's id maps."""
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    staging.mkdir()
    skip_top = {layout.STORE_DUCKDB, f"{layout.STORE_DUCKDB}.wal", layout.STORE_SQLITE, layout.ARRAYS_DIR,
                layout.JOB_LOCK_FILE, *(p.name for p in layout.sqlite_sidecars(run.source))}
    _copy_tree(run, run.source, staging, skip_top=skip_top, weight=(0.0, 0.05))
    store = WorkspaceStore(staging)
    try:
        conv = _Converter(run, reader, store, skip, staging)
        conv.artifacts()
        runs = conv.runs_and_pipelines()
        conv.chains()
        conv.predictions()
        conv.logs()
        conv.finish(runs)
    finally:
        store.close()
    return {"id_map": conv.id_map, "legacy_created_at": conv.legacy_created}


@dataclass
class _Converter:
    run: _Run
    reader: LegacyReader
    store: Any
    skip: set[str]
    store_root: Path
    id_map: dict[str, dict[str, str]] = field(default_factory=lambda: {"runs": {}, "pipelines": {}, "chains": {}})
    legacy_created: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"runs": {}, "pipelines": {}, "chains": {}})
    pipeline_dataset: dict[str, Any] = field(default_factory=dict)

    def artifacts(self) -> None:
        self.run.ticker.step(0.05, "Registering artifacts")
        for art in self.reader.rows("artifacts", order_by="artifact_id"):
            self.run.check()
            self.store.register_existing_artifact(
                str(art["artifact_id"]), str(art["artifact_path"]), str(art.get("content_hash") or ""),
                _g(art, "operator_class"), _g(art, "artifact_type"), art.get("format") or "joblib",
                int(art.get("size_bytes") or 0),
            )

    def runs_and_pipelines(self) -> list[dict[str, Any]]:
        """Runs first (a pipeline needs one; orphans get a new run), then pipelines with their status."""
        run, store = self.run, self.store
        run.ticker.step(0.06, "Runs and pipelines")
        runs = self.reader.rows("runs", order_by="created_at, run_id")
        pipelines = self.reader.rows("pipelines", order_by="created_at, pipeline_id")
        known_runs = {r["run_id"] for r in runs}
        if any(p["run_id"] not in known_runs for p in pipelines):
            runs.append({"run_id": "__orphans__", "name": "migrated pipelines without a run", "config": {},
                         "datasets": [], "status": "completed", "summary": {}})
            run.warnings.append("Some legacy pipelines had no run; they were grouped under a new run "
                                "'migrated pipelines without a run'.")
        for r in runs:
            new_id = store.begin_run(str(r.get("name") or "migrated run"), r.get("config"), r.get("datasets") or [])
            self.id_map["runs"][str(r["run_id"])] = new_id
            self.legacy_created["runs"][str(r["run_id"])] = str(r.get("created_at"))
        for p in pipelines:
            run.check()
            run_id = self.id_map["runs"].get(str(p["run_id"])) or self.id_map["runs"]["__orphans__"]
            new_id = store.begin_pipeline(
                run_id, str(p.get("name") or "pipeline"), p.get("expanded_config"), p.get("generator_choices") or [],
                str(p.get("dataset_name") or ""), p.get("dataset_hash") or "",
                original_template=p.get("original_template"),
            )
            self.id_map["pipelines"][str(p["pipeline_id"])] = new_id
            self.legacy_created["pipelines"][str(p["pipeline_id"])] = str(p.get("created_at"))
            self.pipeline_dataset[str(p["pipeline_id"])] = p.get("dataset_name")
            if p.get("status") == "completed":
                store.complete_pipeline(new_id, _g(p, "best_val"), _g(p, "best_test"), _g(p, "metric"),
                                        _g(p, "duration_ms"))
            elif p.get("status") == "failed":
                store.fail_pipeline(new_id, str(p.get("error") or "failed (legacy)"))
        return runs

    def chains(self) -> None:
        self.run.ticker.step(0.08, "Chains")
        for c in self.reader.rows("chains", order_by="created_at, chain_id"):
            self.run.check()
            pid = self.id_map["pipelines"].get(str(c["pipeline_id"]))
            if pid is None:
                self.run.warnings.append(
                    f"Chain {c['chain_id']} has no pipeline in the legacy store; not carried over.")
                continue
            new_id = self.store.save_chain(
                pid, c.get("steps") or [], int(c.get("model_step_idx") or 0), str(c.get("model_class") or ""),
                c.get("preprocessings") or "", c.get("fold_strategy") or "per_fold", c.get("fold_artifacts") or {},
                c.get("shared_artifacts") or {}, branch_path=c.get("branch_path"), source_index=c.get("source_index"),
                dataset_name=c.get("dataset_name") or self.pipeline_dataset.get(str(c["pipeline_id"])),
                relation_replay_manifest=c.get("relation_replay_manifest"),
            )
            self.id_map["chains"][str(c["chain_id"])] = new_id
            self.legacy_created["chains"][str(c["chain_id"])] = str(c.get("created_at"))

    def predictions(self) -> None:
        """Every prediction: one transaction per ~BATCH_BYTES of arrays, written as one row group.

        The arrays go into the dataset's file as streamed row groups
        (``StreamedArrayFile``), not through ``save_batch``, which rewrites the
        whole file per call: memory stays bounded by a batch.
        """
        from .array_writer import StreamedArrayFile

        datasets = self.reader.datasets()
        total = max(1, sum(datasets.values()))
        done = 0
        for dataset in datasets:
            writer = StreamedArrayFile(self.store_root, dataset)
            try:
                for batch in _sized_batches(self.reader, dataset, self.skip):
                    self.run.check()
                    writer.write(self._save_metadata(batch))
                    first = done == 0
                    done += len(batch)
                    self.run.ticker.step(0.1 + 0.55 * done / total,
                                         f"Converting {dataset}: {done}/{total} predictions")
                    if first:
                        _kill_point("converting")
                writer.close()
            finally:
                writer.abort()

    def _save_metadata(self, batch: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """Save the batch's metadata rows in one transaction; return the array records to save."""
        records = []
        with self.store.transaction():
            for meta, arrays in batch:
                saved = self.store.save_prediction(prediction_id=str(meta["prediction_id"]),
                                                   **self._prediction_kwargs(meta))
                if saved != meta["prediction_id"]:
                    raise MigrationError(f"nirs4all merged prediction {meta['prediction_id']} into {saved}.")
                if arrays is not None:
                    records.append(_array_record(saved, meta, arrays))
        return records

    def _prediction_kwargs(self, meta: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: meta.get(k) for k in _SAVE_FIELDS if k in meta}
        kwargs["pipeline_id"] = self.id_map["pipelines"][str(meta["pipeline_id"])]
        chain = meta.get("chain_id")
        kwargs["chain_id"] = self.id_map["chains"].get(str(chain)) if chain is not None else None
        kwargs.setdefault("preprocessings", "")
        for opt in ("scores", "best_params"):
            kwargs[opt] = kwargs.get(opt)
        for req in _REQUIRED_NONE:
            kwargs.setdefault(req, None)
        return kwargs

    def logs(self) -> None:
        self.run.ticker.step(0.66, "Logs")
        for chunk in self.reader.iter_rows("logs", "log_id"):
            self.run.check()
            with self.store.transaction():
                for log in chunk:
                    pid = self.id_map["pipelines"].get(str(log.get("pipeline_id")))
                    if pid is None:
                        continue
                    self.store.log_step(pid, int(log.get("step_idx") or 0), _g(log, "operator_class"),
                                        str(log.get("event") or ""), log.get("duration_ms"), log.get("message"),
                                        log.get("details"), str(log.get("level") or "info"))

    def finish(self, runs: list[dict[str, Any]]) -> None:
        """Runs get their legacy status; chain summaries are computed once, after ANALYZE."""
        for r in runs:
            new_id = self.id_map["runs"][str(r["run_id"])]
            if r.get("status") == "completed":
                self.store.complete_run(new_id, r.get("summary") or {})
            elif r.get("status") == "failed":
                self.store.fail_run(new_id, str(r.get("error") or "failed (legacy)"))
        self.run.ticker.step(0.68, "Chain summaries")
        chain_ids = list(self.id_map["chains"].values())
        if chain_ids:
            from ..nirs4all_api import analyze

            analyze(self.store)
            self.store.bulk_update_chain_summaries(chain_ids)


def _array_record(saved: str, meta: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """The ``ArrayStore.save_batch`` record of one prediction."""
    return {
        "prediction_id": saved, "dataset_name": meta["dataset_name"],
        "model_name": meta.get("model_name") or "", "fold_id": meta.get("fold_id") or "",
        "partition": meta.get("partition") or "", "metric": meta.get("metric") or "",
        "val_score": meta.get("val_score"), "task_type": meta.get("task_type") or "",
        **{k: v for k, v in arrays.items() if v is not None},
    }


def _sized_batches(reader: LegacyReader, dataset: str, skip: set[str]) -> Any:
    """Regroup the reader's batches so one save_batch holds about BATCH_BYTES of arrays."""
    pending: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    size = 0
    for batch in reader.iter_batches(dataset, batch_rows=128, skip=skip):
        for meta, arrays in batch:
            pending.append((meta, arrays))
            if arrays is not None:
                size += sum(int(getattr(v, "nbytes", 0)) for v in arrays.values())
            if size >= BATCH_BYTES or len(pending) >= 5000:
                yield pending
                pending, size = [], 0
    if pending:
        yield pending
