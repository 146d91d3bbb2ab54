"""Migrate a legacy workspace into the current nirs4all format, never in place.

``migrate(ws, dry_run=True, output=None, action="auto")`` (``Workspace.migrate``):

1. **Dry run** (the default) reads the source read-only and reports what would
   be migrated (rows, datasets, sizes, an estimated duration measured on a
   sample).  It writes nothing anywhere.
2. **Execute** builds the new workspace in a staging folder beside the source
   (``layout.migration_staging_dir``), writing ONLY through nirs4all's API:
   ``upgrade_workspace_copy`` for SQLite schema 2-4, a ``WorkspaceStore`` opened
   on a *copy* for schema 0/1, and for DuckDB / inline-array stores
   ``WorkspaceStore`` calls (``register_existing_artifact``, ``begin_run``,
   ``begin_pipeline``, ``save_chain``, ``save_prediction(prediction_id=...)``,
   ``array_store.save_batch``, ``log_step``, ``complete_run``,
   ``bulk_update_chain_summaries``).  Run, pipeline and chain ids are re-issued
   by nirs4all; the old -> new map is kept in ``.n4a_migration_receipt.json``.
3. **Verify everything** (``migration_verify``): ids, metadata, scores, every
   array value (NaN-aware), per-table counts, artifact bytes.  Any mismatch
   aborts: staging removed, source untouched.
4. **Publish** with atomic renames, recorded in a fsynced journal
   (``layout.migration_journal``; phases staging -> verified -> source_renamed
   -> published).  ``output=DIR``: staging becomes DIR, the source is untouched.
   ``output=None``: the source becomes ``<name>.legacy-<UTC timestamp>`` (the
   backup) and staging takes the source's name.

A crash at any instant leaves the untouched source or a ``mid_migration`` state
that ``migrate(action="resume")`` finishes (or rebuilds, if verification had not
completed) and ``migrate(action="rollback")`` undoes.  ``action="auto"``
resumes.  Two migrations of one source exclude each other through a lock file
beside the source (never inside it).

Test hook: ``N4A_MIGRATION_TEST_KILL_AT=<point>`` makes the process kill itself
with SIGKILL at a named point (see ``KILL_POINTS``); the crash-safety tests use
it.  It does nothing unless that variable is set.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .errors import (
    InvalidArgumentError,
    MigrationError,
    OperationCancelledError,
    UnsupportedFormatError,
    WorkspaceBusyError,
    WorkspaceError,
)
from .reports import Report, utc_now

if TYPE_CHECKING:
    from .migration_readers import LegacyReader

Progress = Callable[[float, str], None]

ACTIONS = ("auto", "resume", "rollback")
KILL_ENV = "N4A_MIGRATION_TEST_KILL_AT"
KILL_POINTS = (
    "journal_written",   # staging journal on disk, nothing built yet
    "converting",        # first batch of predictions written into staging
    "before_verify",     # staging complete, not yet verified
    "verified",          # journal says verified, nothing renamed yet
    "source_renamed",    # source renamed to the backup, journal not yet updated
    "staging_renamed",   # staging renamed into place, journal not yet updated
    "published",         # journal says published, not yet removed
)
RECEIPT_FILE = ".n4a_migration_receipt.json"
#: Measured on this machine (bench/bench_migration.py): converting + verifying costs
#: about this many times a plain read of the same legacy rows.
CONVERT_COST_FACTOR = 4.0
BATCH_BYTES = 32 * 1024 * 1024
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class MigrationReport(Report):
    """What a migration did (or, with ``dry_run=True``, would do)."""

    source_path: str
    source_format: str
    """``StorageStatus.layout`` of the source, e.g. ``duckdb-inline-arrays``."""
    dry_run: bool
    action: str
    """``migrate``, ``resume``, ``rollback`` or ``inspect`` (dry run of a mid-migration state)."""
    state: str
    """``planned``, ``published``, ``rolled_back``, ``failed``, ``mid_migration``."""
    total_rows: int
    rows_migrated: int
    datasets_migrated: int
    datasets: tuple[dict[str, Any], ...]
    verification_passed: bool
    verification_sample_size: int
    verification_mismatches: int
    mismatch_details: tuple[str, ...]
    arrays_verified: int
    array_values_verified: int
    artifacts_verified: int
    duckdb_size_before: int
    """Bytes of the legacy metadata store (``store.duckdb`` or the old ``store.sqlite``)."""
    duckdb_size_after: int
    """Bytes of the new ``store.sqlite`` (0 in a dry run)."""
    parquet_total_size: int
    """Bytes of the new ``arrays/*.parquet`` (0 in a dry run)."""
    legacy_array_bytes: int
    size_before_bytes: int
    size_after_bytes: int
    duration_seconds: float
    estimated_duration_seconds: float | None
    table_counts_before: dict[str, int]
    table_counts_after: dict[str, int]
    merged_duplicates: tuple[str, ...]
    """Legacy predictions sharing a natural key with a newer one (nirs4all 1.x keeps one per key)."""
    output_path: str | None
    backup_path: str | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    started_at: str


# ---------------------------------------------------------------- helpers


def _kill_point(name: str) -> None:
    """Test hook: SIGKILL ourselves at ``name`` when ``N4A_MIGRATION_TEST_KILL_AT`` says so."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_journal(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace the journal (temp file + fsync + rename + fsync dir)."""
    tmp = path.with_name(path.name + ".tmp")
    payload = json.dumps({**data, "updated_at": utc_now()}, indent=2).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_journal(source: Path) -> dict[str, Any] | None:
    path = layout.migration_journal(source)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"phase": "staging", "corrupt": True}
    return data if isinstance(data, dict) else {"phase": "staging", "corrupt": True}


def _remove_journal(source: Path) -> None:
    for p in (layout.migration_journal(source), layout.migration_journal(source).with_suffix(".json.tmp")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    _fsync_dir(source.parent)


def _rename(src: Path, dst: Path) -> None:
    os.rename(src, dst)
    _fsync_dir(dst.parent)


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_staging(source: Path) -> None:
    staging = layout.migration_staging_dir(source)
    _rmtree(staging)
    # upgrade_workspace_copy builds in its own temp folder beside its output.
    for leftover in source.parent.glob(f".{staging.name}-upgrade-*"):
        _rmtree(leftover)


def tree_size(root: Path) -> int:
    total = 0
    if not root.exists():
        return 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total


def _arrays_size(root: Path) -> int:
    arrays = root / layout.ARRAYS_DIR
    return sum(p.stat().st_size for p in arrays.glob("*.parquet")) if arrays.is_dir() else 0


def _metadata_store(root: Path) -> Path:
    duck = root / layout.STORE_DUCKDB
    return duck if duck.is_file() and not (root / layout.STORE_SQLITE).is_file() else root / layout.STORE_SQLITE


def _lock_marker(source: Path) -> Path:
    return source.parent / f".{source.name}.n4a-migration.lock"


def _check_not_busy(source: Path) -> None:
    """Refuse while a nirs4all run or one of our jobs writes to the source (read-only probes)."""
    from .guard import job_lock_holder
    from .locking import arrays_lock_held

    if source.is_dir() and arrays_lock_held(source):
        raise WorkspaceBusyError(f"nirs4all is writing arrays in {source}.")
    held = job_lock_holder(source) if source.is_dir() else None
    if held:
        raise WorkspaceBusyError(held)


class _Cancelled(Exception):
    pass


def _checker(cancel: threading.Event | None) -> Callable[[], None]:
    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise _Cancelled()

    return check


# ----------------------------------------------------------------- context


@dataclass
class _Run:
    source: Path
    layout_name: str
    progress: Progress | None
    check: Callable[[], None]
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)

    def report_progress(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(max(0.0, min(1.0, fraction)), message)


def _plan_reader(source: Path, layout_name: str) -> LegacyReader:
    from .migration_readers import open_reader

    return open_reader(source, layout_name)


def _classify(source: Path) -> tuple[str, str]:
    """(layout, conversion kind) of a legacy source; raises for anything else."""
    from .status import LEGACY, MIGRATED, NEW, detect_status

    st = detect_status(source)
    if st.storage_mode in (MIGRATED, NEW):
        raise MigrationError(
            f"{source} is already in the current format ({st.layout}); there is nothing to migrate.",
            "Open it with nirs4all 1.x as it is.",
        )
    if st.storage_mode != LEGACY:
        raise MigrationError(f"{source} is in state {st.storage_mode}: {st.message}")
    if st.layout == "runs-manifest-tree":
        raise UnsupportedFormatError(*_runs_tree_refusal(source))
    if st.layout in ("duckdb-inline-arrays", "duckdb-parquet-sidecars", "sqlite-inline-arrays"):
        return st.layout, "convert"
    if st.layout.startswith("sqlite-schema-"):
        version = st.schema_version or 0
        wal = source / f"{layout.STORE_SQLITE}-wal"
        wal_dirty = wal.is_file() and wal.stat().st_size > 0
        return st.layout, ("upgrade" if version >= 2 and not wal_dirty else "reopen-copy")
    raise UnsupportedFormatError(f"{source} has an unknown storage layout ({st.layout}).")


def _runs_tree_refusal(source: Path) -> tuple[str, str]:
    """Explain what a <=0.6 runs/ tree holds and why it is not carried over."""
    import pyarrow.parquet as pq

    metas = sorted(source.glob("*.meta.parquet"))
    rows = 0
    for m in metas:
        with contextlib.suppress(Exception):
            rows += pq.read_metadata(m).num_rows
    manifests = len(list((source / layout.RUNS_DIR).glob("*/*/manifest.yaml")))
    models = len(list((source / "binaries").rglob("*"))) if (source / "binaries").is_dir() else 0
    message = (
        f"{source} is a nirs4all <= 0.6 runs/ tree ({manifests} pipeline manifests, {rows} prediction rows in "
        f"{len(metas)} *.meta.parquet files, {models} model files in binaries/). It cannot be carried over "
        "faithfully: that release has no runs/pipelines/chains tables, its models are referenced by per-run "
        "paths that nirs4all 1.x chains cannot replay, and its prediction rows lack the chain links the current "
        "store requires."
    )
    hint = (
        "Nothing was changed. Keep this folder as an archive (its *.meta.parquet / *.arrays.parquet files are "
        "plain Parquet you can read with pandas or polars), and re-run the pipelines with nirs4all 1.x into a "
        "new workspace to get replayable models."
    )
    return message, hint


# -------------------------------------------------------------- dry run


def _estimate(reader: LegacyReader, kind: str, datasets: dict[str, int], legacy_bytes: int) -> float:
    """Seconds, extrapolated from timing a read-only sample of the source."""
    if not datasets:
        return 0.0
    total = sum(datasets.values())
    if kind != "convert":
        # upgrade: dominated by copying the bytes; time reading the largest array file.
        files = sorted((reader.root / layout.ARRAYS_DIR).glob("*.parquet"), key=lambda p: p.stat().st_size)
        size = tree_size(reader.root)
        if not files or size == 0:
            return 0.5
        t0 = time.perf_counter()
        with files[-1].open("rb") as fh:
            read = len(fh.read(8 * 1024 * 1024))
        elapsed = max(time.perf_counter() - t0, 1e-4)
        return round(0.5 + size / max(read / elapsed, 1.0) * CONVERT_COST_FACTOR, 2)
    import nirs4all.pipeline.storage.array_store  # noqa: F401  (import cost is not migration cost)

    biggest = max(datasets, key=lambda d: datasets[d])
    next(iter(reader.iter_batches(biggest, batch_rows=8)), None)  # warm caches and query plans
    t0 = time.perf_counter()
    sampled = 0
    for batch in reader.iter_batches(biggest, batch_rows=128):
        sampled += len(batch)
        if sampled >= 256 or time.perf_counter() - t0 > 2.0:
            break
    elapsed = time.perf_counter() - t0
    per_row = elapsed / max(sampled, 1)
    return round(0.5 + per_row * total * CONVERT_COST_FACTOR, 2)


def _empty_report(run: _Run, **kw: Any) -> MigrationReport:
    base: dict[str, Any] = dict(
        source_path=str(run.source), source_format=run.layout_name, dry_run=True, action="migrate",
        state="planned", total_rows=0, rows_migrated=0, datasets_migrated=0, datasets=(),
        verification_passed=False, verification_sample_size=0, verification_mismatches=0, mismatch_details=(),
        arrays_verified=0, array_values_verified=0, artifacts_verified=0, duckdb_size_before=0,
        duckdb_size_after=0, parquet_total_size=0, legacy_array_bytes=0, size_before_bytes=0, size_after_bytes=0,
        duration_seconds=0.0, estimated_duration_seconds=None, table_counts_before={}, table_counts_after={},
        merged_duplicates=(), output_path=None, backup_path=None, errors=(), warnings=tuple(run.warnings),
        started_at=run.started_at,
    )
    base.update(kw)
    return MigrationReport(**base)


def _plan(run: _Run, kind: str, output: Path | None, *, estimate: bool = True) -> tuple[MigrationReport, set[str]]:
    """Read-only survey of the source: the dry-run report and the ids to skip."""
    with _plan_reader(run.source, run.layout_name) as reader:
        counts = reader.table_counts()
        datasets = reader.datasets()
        dups = reader.natural_key_duplicates() if kind == "convert" else set()
        orphans = reader.orphan_predictions() if kind == "convert" else []
        legacy_bytes = reader.array_bytes()
        seconds = _estimate(reader, kind, datasets, legacy_bytes) if estimate else None
    errors: list[str] = []
    if orphans:
        errors.append(
            f"{len(orphans)} predictions reference a pipeline that does not exist (e.g. {orphans[0]}); "
            "nirs4all 1.x requires every prediction to belong to a pipeline."
        )
    warnings = list(run.warnings)
    if dups:
        warnings.append(
            f"{len(dups)} legacy predictions share their natural key (pipeline, chain, fold, partition, model, "
            "branch) with a newer prediction; nirs4all 1.x keeps one per key, so the newest is kept and these "
            "are listed in merged_duplicates."
        )
    report = _empty_report(
        run,
        total_rows=sum(datasets.values()),
        datasets=tuple({"name": k, "predictions": v, "migrated": v} for k, v in datasets.items()),
        datasets_migrated=len(datasets),
        rows_migrated=sum(datasets.values()) - len(dups),
        duckdb_size_before=_metadata_store(run.source).stat().st_size,
        legacy_array_bytes=legacy_bytes,
        size_before_bytes=tree_size(run.source),
        estimated_duration_seconds=seconds,
        table_counts_before=counts,
        merged_duplicates=tuple(sorted(dups)),
        output_path=str(output) if output is not None else str(run.source),
        backup_path=None if output is not None else str(_backup_name(run.source, preview=True)),
        errors=tuple(errors),
        warnings=tuple(warnings),
    )
    return report, dups


def _backup_name(source: Path, *, preview: bool = False) -> Path:
    """``<name>.legacy-<UTC time the legacy store was last written>``, the first free one.

    Derived from the source's state, not the clock, so the dry run names exactly
    the backup the real run then creates (issue 16); ``preview`` is kept for
    callers and changes nothing.
    """
    del preview
    try:
        written = _metadata_store(source).stat().st_mtime
    except OSError:
        written = _dt.datetime.now(_dt.UTC).timestamp()
    stamp = _dt.datetime.fromtimestamp(written, _dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = source.parent / f"{layout.migration_backup_prefix(source)}{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = source.parent / f"{layout.migration_backup_prefix(source)}{stamp}-{n}"
    return candidate


# -------------------------------------------------------------- building


def _copy_tree(run: _Run, source: Path, dest: Path, *, skip_top: set[str], weight: tuple[float, float]) -> None:
    """Copy every file except the legacy stores (whole-file copies, metadata kept)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip_top]
            filenames = [f for f in filenames if f not in skip_top]
        (dest / rel).mkdir(parents=True, exist_ok=True)
        files.extend(Path(dirpath) / f for f in filenames)
    total = max(1, len(files))
    for i, path in enumerate(files):
        run.check()
        target = dest / path.relative_to(source)
        shutil.copy2(path, target)
        run.report_progress(weight[0] + (weight[1] - weight[0]) * (i + 1) / total, f"Copying files ({i + 1}/{total})")


def _build_upgrade(run: _Run, staging: Path, kind: str) -> None:
    """SQLite sources: nirs4all upgrades a copy; the source is only read."""
    run.report_progress(0.02, "Copying and upgrading the SQLite store (nirs4all upgrade_workspace_copy)")
    if kind == "upgrade":
        from nirs4all.workspace.upgrade import upgrade_workspace_copy

        try:
            upgrade_workspace_copy(run.source, staging)
        except (ValueError, RuntimeError) as exc:
            raise MigrationError(f"nirs4all could not upgrade a copy of {run.source}: {exc}") from exc
        # The copy includes our own markers if any; they are not part of the workspace.
        with contextlib.suppress(FileNotFoundError):
            (staging / layout.JOB_LOCK_FILE).unlink()
    else:
        staging.mkdir()
        _copy_tree(run, run.source, staging, skip_top={layout.JOB_LOCK_FILE}, weight=(0.02, 0.4))
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        run.report_progress(0.45, "Upgrading the copied SQLite schema (nirs4all WorkspaceStore)")
        store = WorkspaceStore(staging)  # upgrades the COPY's schema in place
        store.close()
    _kill_point("converting")
    run.report_progress(0.6, "Upgrade done")


def _build_convert(run: _Run, reader: LegacyReader, staging: Path, skip: set[str]) -> dict[str, Any]:
    """DuckDB / inline-array sources: rebuild through WorkspaceStore calls."""
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    staging.mkdir()
    skip_top = {layout.STORE_DUCKDB, f"{layout.STORE_DUCKDB}.wal", layout.STORE_SQLITE, layout.ARRAYS_DIR,
                layout.JOB_LOCK_FILE, *(p.name for p in layout.sqlite_sidecars(run.source))}
    _copy_tree(run, run.source, staging, skip_top=skip_top, weight=(0.0, 0.05))
    id_map: dict[str, dict[str, str]] = {"runs": {}, "pipelines": {}, "chains": {}}
    legacy_created: dict[str, dict[str, str]] = {"runs": {}, "pipelines": {}, "chains": {}}
    store = WorkspaceStore(staging)
    try:
        run.report_progress(0.05, "Registering artifacts")
        for art in reader.rows("artifacts", order_by="artifact_id"):
            run.check()
            store.register_existing_artifact(
                str(art["artifact_id"]), str(art["artifact_path"]), str(art.get("content_hash") or ""),
                _g(art, "operator_class"), _g(art, "artifact_type"), art.get("format") or "joblib",
                int(art.get("size_bytes") or 0),
            )
        run.report_progress(0.06, "Runs and pipelines")
        runs = reader.rows("runs", order_by="created_at, run_id")
        pipelines = reader.rows("pipelines", order_by="created_at, pipeline_id")
        known_runs = {r["run_id"] for r in runs}
        if any(p["run_id"] not in known_runs for p in pipelines):
            runs.append({"run_id": "__orphans__", "name": "migrated pipelines without a run", "config": {},
                         "datasets": [], "status": "completed", "summary": {}})
            run.warnings.append("Some legacy pipelines had no run; they were grouped under a new run "
                                "'migrated pipelines without a run'.")
        for r in runs:
            new_id = store.begin_run(str(r.get("name") or "migrated run"), r.get("config"), r.get("datasets") or [])
            id_map["runs"][str(r["run_id"])] = new_id
            legacy_created["runs"][str(r["run_id"])] = str(r.get("created_at"))
        for p in pipelines:
            run.check()
            run_id = id_map["runs"].get(str(p["run_id"])) or id_map["runs"]["__orphans__"]
            new_id = store.begin_pipeline(
                run_id, str(p.get("name") or "pipeline"), p.get("expanded_config"), p.get("generator_choices") or [],
                str(p.get("dataset_name") or ""), p.get("dataset_hash") or "", original_template=p.get(
                    "original_template"),
            )
            id_map["pipelines"][str(p["pipeline_id"])] = new_id
            legacy_created["pipelines"][str(p["pipeline_id"])] = str(p.get("created_at"))
            if p.get("status") == "completed":
                store.complete_pipeline(new_id, _g(p, "best_val"), _g(p, "best_test"), _g(p, "metric"),
                                        _g(p, "duration_ms"))
            elif p.get("status") == "failed":
                store.fail_pipeline(new_id, str(p.get("error") or "failed (legacy)"))
        run.report_progress(0.08, "Chains")
        pipeline_dataset = {str(p["pipeline_id"]): p.get("dataset_name") for p in pipelines}
        for c in reader.rows("chains", order_by="created_at, chain_id"):
            run.check()
            pid = id_map["pipelines"].get(str(c["pipeline_id"]))
            if pid is None:
                run.warnings.append(f"Chain {c['chain_id']} has no pipeline in the legacy store; not carried over.")
                continue
            new_id = store.save_chain(
                pid, c.get("steps") or [], int(c.get("model_step_idx") or 0), str(c.get("model_class") or ""),
                c.get("preprocessings") or "", c.get("fold_strategy") or "per_fold", c.get("fold_artifacts") or {},
                c.get("shared_artifacts") or {}, branch_path=c.get("branch_path"), source_index=c.get("source_index"),
                dataset_name=c.get("dataset_name") or pipeline_dataset.get(str(c["pipeline_id"])),
                relation_replay_manifest=c.get("relation_replay_manifest"),
            )
            id_map["chains"][str(c["chain_id"])] = new_id
            legacy_created["chains"][str(c["chain_id"])] = str(c.get("created_at"))

        datasets = reader.datasets()
        total = max(1, sum(datasets.values()))
        done = 0
        first = True
        for dataset in datasets:
            for batch in _sized_batches(reader, dataset, skip):
                run.check()
                records = []
                with store.transaction():
                    for meta, arrays in batch:
                        kwargs = {k: meta.get(k) for k in _SAVE_FIELDS if k in meta}
                        kwargs["pipeline_id"] = id_map["pipelines"][str(meta["pipeline_id"])]
                        chain = meta.get("chain_id")
                        kwargs["chain_id"] = id_map["chains"].get(str(chain)) if chain is not None else None
                        kwargs.setdefault("preprocessings", "")
                        for opt in ("scores", "best_params"):
                            kwargs[opt] = kwargs.get(opt)
                        for req in ("branch_id", "branch_name", "exclusion_count", "exclusion_rate", "n_samples",
                                    "n_features", "val_score", "test_score", "train_score"):
                            kwargs.setdefault(req, None)
                        saved = store.save_prediction(prediction_id=str(meta["prediction_id"]), **kwargs)
                        if saved != meta["prediction_id"]:
                            raise MigrationError(f"nirs4all merged prediction {meta['prediction_id']} into {saved}.")
                        if arrays is not None:
                            records.append({
                                "prediction_id": saved, "dataset_name": meta["dataset_name"],
                                "model_name": meta.get("model_name") or "", "fold_id": meta.get("fold_id") or "",
                                "partition": meta.get("partition") or "", "metric": meta.get("metric") or "",
                                "val_score": meta.get("val_score"), "task_type": meta.get("task_type") or "",
                                **{k: v for k, v in arrays.items() if v is not None},
                            })
                if records:
                    store.array_store.save_batch(records)
                done += len(batch)
                run.report_progress(0.1 + 0.55 * done / total,
                                    f"Converting {dataset}: {done}/{total} predictions")
                if first:
                    first = False
                    _kill_point("converting")
        run.report_progress(0.66, "Logs")
        for chunk in reader.iter_rows("logs", "log_id"):
            run.check()
            with store.transaction():
                for log in chunk:
                    pid = id_map["pipelines"].get(str(log.get("pipeline_id")))
                    if pid is None:
                        continue
                    store.log_step(pid, int(log.get("step_idx") or 0), _g(log, "operator_class"),
                                   str(log.get("event") or ""), log.get("duration_ms"), log.get("message"),
                                   log.get("details"), str(log.get("level") or "info"))
        for r in runs:
            new_id = id_map["runs"][str(r["run_id"])]
            if r.get("status") == "completed":
                store.complete_run(new_id, r.get("summary") or {})
            elif r.get("status") == "failed":
                store.fail_run(new_id, str(r.get("error") or "failed (legacy)"))
        run.report_progress(0.68, "Chain summaries")
        chain_ids = list(id_map["chains"].values())
        if chain_ids:
            from .nirs4all_api import analyze

            analyze(store)
            store.bulk_update_chain_summaries(chain_ids)
    finally:
        store.close()
    return {"id_map": id_map, "legacy_created_at": legacy_created}


def _g(row: dict[str, Any], key: str) -> Any:
    """A legacy column value (may be NULL; nirs4all stores NULL as given)."""
    return row.get(key)


_SAVE_FIELDS = tuple(
    f for f in (
        "dataset_name", "model_name", "model_class", "fold_id", "partition", "val_score", "test_score",
        "train_score", "metric", "task_type", "n_samples", "n_features", "scores", "best_params", "branch_id",
        "branch_name", "exclusion_count", "exclusion_rate", "preprocessings", "refit_context", "prediction_scope",
        "prediction_level", "evaluation_scope", "reduction_role", "reduction_id", "physical_sample_id",
        "origin_sample_id", "derived_unit_id", "unit_level", "unit_id", "row_id", "sample_influence_weight",
    )
)


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


# -------------------------------------------------------------- publish


def _publish(source: Path, staging: Path, output: Path | None, journal: dict[str, Any]) -> tuple[Path, Path | None]:
    """Rename staging into place; every step is recorded so a crash can be resumed."""
    jpath = layout.migration_journal(source)
    if output is not None:
        if staging.exists():
            _rename(staging, output)
        _kill_point("staging_renamed")
        write_journal(jpath, {**journal, "phase": "published"})
        _kill_point("published")
        _remove_journal(source)
        return output, None
    backup = Path(journal["backup"])
    if source.exists() and staging.exists() and not backup.exists():
        _rename(source, backup)
    _kill_point("source_renamed")
    write_journal(jpath, {**journal, "phase": "source_renamed"})
    if staging.exists() and not source.exists():
        _rename(staging, source)
    _kill_point("staging_renamed")
    write_journal(jpath, {**journal, "phase": "published"})
    _kill_point("published")
    _remove_journal(source)
    return source, backup


def _rollback(source: Path, journal: dict[str, Any] | None) -> Path:
    """Undo whatever a migration left: the source ends up untouched at its path."""
    staging = layout.migration_staging_dir(source)
    backup = Path(journal["backup"]) if journal and journal.get("backup") else None
    output = Path(journal["output"]) if journal and journal.get("output") else None
    if output is not None and journal and journal.get("phase") == "published" and output.exists() \
            and not staging.exists():
        _rename(output, staging)  # an unfinished publish to output: drop the result
    if backup is not None and backup.exists():
        if source.exists():
            if staging.exists():
                raise MigrationError(
                    f"Cannot roll back automatically: {source}, {staging} and {backup} all exist.",
                    f"Your original workspace is {backup}. Inspect the three folders and remove the wrong one.",
                )
            _rename(source, staging)  # the published result goes away with the staging
        _rename(backup, source)
    _remove_staging(source)
    _remove_journal(source)
    return source


# -------------------------------------------------------------- entry


def migrate(
    source: Path,
    *,
    dry_run: bool = True,
    output: str | os.PathLike[str] | None = None,
    plan_id: str | None = None,
    force: bool = False,
    action: str = "auto",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MigrationReport:
    """Migrate ``ws`` into the current format (see module docstring)."""
    if action not in ACTIONS:
        raise InvalidArgumentError(f"Unknown action {action!r}.", f"Use one of {', '.join(ACTIONS)}.")
    source = Path(source)
    out = Path(output).expanduser().absolute() if output is not None else None
    journal = read_journal(source)
    staging = layout.migration_staging_dir(source)
    run = _Run(source, "?", progress, _checker(cancel))

    if journal is not None or staging.exists():
        return _handle_interrupted(run, journal, dry_run, out, action, cancel)
    if action != "auto":
        raise MigrationError(f"No interrupted migration of {source} to {action}.",
                             "Run the migration itself (action='auto').")
    if not source.is_dir():
        raise WorkspaceError(f"{source} does not exist.")
    layout_name, kind = _classify(source)
    run.layout_name = layout_name
    if out is not None:
        _check_output(source, out)
    if dry_run:
        report, _ = _plan(run, kind, out)
        return _replace(report, duration_seconds=round(time.monotonic() - run.started, 3))
    return _execute(run, kind, out)


def _check_output(source: Path, out: Path) -> None:
    if out == source or source in out.parents or out in source.parents:
        raise InvalidArgumentError(f"Output {out} must be outside the source workspace {source} (and not contain it).")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgumentError(f"Output {out} already exists and is not an empty folder.",
                                   "Choose a new folder name; the migration never overwrites anything.")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"The parent folder of {out} does not exist.", "Create it first.")


def _replace(report: MigrationReport, **kw: Any) -> MigrationReport:
    import dataclasses

    return dataclasses.replace(report, **kw)


def _execute(run: _Run, kind: str, out: Path | None) -> MigrationReport:
    from .locking import WorkspaceLock

    source = run.source
    staging = layout.migration_staging_dir(source)
    _check_not_busy(source)
    lock = WorkspaceLock(source, "migrate", marker=_lock_marker(source)).acquire()
    try:
        plan, skip = _plan(run, kind, out, estimate=False)
        if plan.errors:
            raise MigrationError("The legacy store cannot be migrated as is: " + " ".join(plan.errors))
        backup = None if out is not None else _backup_name(source)
        journal = {
            "version": 1, "phase": "staging", "source": str(source), "staging": str(staging),
            "output": str(out) if out is not None else None, "backup": str(backup) if backup else None,
            "source_format": run.layout_name, "kind": kind, "pid": os.getpid(), "started_at": run.started_at,
        }
        write_journal(layout.migration_journal(source), journal)
        _kill_point("journal_written")
        try:
            result = _build_and_verify(run, kind, staging, skip, plan)
        except BaseException as exc:
            _cleanup_failed(source)
            raise _as_migration_error(exc, source) from exc
        journal = {**journal, "phase": "verified", "report": result.to_dict()}
        write_journal(layout.migration_journal(source), journal)
        _kill_point("verified")
        run.report_progress(0.97, "Publishing")
        final, backup_path = _publish(source, staging, out, journal)
        run.report_progress(1.0, "Done")
        return _replace(result, state="published", output_path=str(final),
                        backup_path=str(backup_path) if backup_path else None,
                        duration_seconds=round(time.monotonic() - run.started, 3), warnings=tuple(run.warnings))
    finally:
        lock.release()


def _cleanup_failed(source: Path) -> None:
    with contextlib.suppress(OSError):
        _remove_staging(source)
    with contextlib.suppress(OSError):
        _remove_journal(source)


def _as_migration_error(exc: BaseException, source: Path) -> BaseException:
    if isinstance(exc, _Cancelled):
        return OperationCancelledError(
            "Migration cancelled.", f"Your original workspace {source} is untouched; the staging folder was removed."
        )
    if isinstance(exc, OperationCancelledError):
        return exc
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain).lower()
    disk_full = any(isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS for e in chain)
    # SQLite reports ENOSPC/EFBIG as "database or disk is full" or "disk I/O error".
    disk_full = disk_full or any(s in text for s in ("disk is full", "file too large", "no space left", "disk i/o"))
    if disk_full:
        return MigrationError(
            f"Not enough disk space (or a file size limit / write error) while writing the migrated copy: {exc}.",
            f"Your original workspace {source} is untouched and the staging folder was removed. Free at least "
            "the size of the workspace on its disk (or pass output= on another disk) and run the migration again.",
        )
    if isinstance(exc, WorkspaceError):
        if isinstance(exc, MigrationError):
            return exc
        return MigrationError(exc.message, exc.hint)
    if isinstance(exc, Exception):
        return MigrationError(f"Migration failed: {type(exc).__name__}: {exc}")
    return exc


def _build_and_verify(run: _Run, kind: str, staging: Path, skip: set[str], plan: MigrationReport) -> MigrationReport:
    from .migration_verify import verify

    source = run.source
    receipt: dict[str, Any] = {}
    with _plan_reader(source, run.layout_name) as reader:
        if kind == "convert":
            receipt = _build_convert(run, reader, staging, skip)
            counts_before = plan.table_counts_before
            expected = {
                "runs": len(receipt["id_map"]["runs"]), "pipelines": len(receipt["id_map"]["pipelines"]),
                "chains": len(receipt["id_map"]["chains"]), "artifacts": counts_before.get("artifacts", 0),
                "predictions": counts_before.get("predictions", 0) - len(skip), "logs": counts_before.get("logs", 0),
            }
        else:
            _build_upgrade(run, staging, kind)
            expected = {t: plan.table_counts_before.get(t, 0) for t in ("runs", "pipelines", "chains",
                                                                       "predictions", "artifacts", "logs")}
        _kill_point("before_verify")
        artifact_pairs = []
        for art in reader.rows("artifacts"):
            rel = str(art["artifact_path"])
            src = source / layout.ARTIFACTS_DIR / rel
            if src.is_file():
                artifact_pairs.append((src, staging / layout.ARTIFACTS_DIR / rel))
        checked = verify(
            reader, staging, skip=skip, expected_counts=expected, artifact_pairs=artifact_pairs,
            progress=lambda f, m: run.report_progress(0.7 + 0.25 * f, m), cancel=_cancel_event(run),
        )
    if checked.mismatch_count:
        raise MigrationError(
            f"Verification found {checked.mismatch_count} differences between the source and the migrated copy "
            f"(first: {checked.mismatches[0]}). Nothing was published.",
        )
    receipt_data = {
        "source": str(source), "source_format": run.layout_name, "kind": kind, "migrated_at": utc_now(),
        "merged_duplicates": sorted(skip), **receipt,
    }
    (staging / RECEIPT_FILE).write_text(json.dumps(receipt_data, indent=1))
    return _replace(
        plan, dry_run=False, action="migrate", rows_migrated=checked.table_counts_output.get("predictions", 0),
        verification_passed=True, verification_sample_size=checked.checked, verification_mismatches=0,
        arrays_verified=checked.arrays_checked, array_values_verified=checked.array_values_checked,
        artifacts_verified=checked.artifacts_checked, duckdb_size_after=(staging / layout.STORE_SQLITE).stat().st_size,
        parquet_total_size=_arrays_size(staging), size_after_bytes=tree_size(staging),
        table_counts_after=checked.table_counts_output, estimated_duration_seconds=None,
    )


def _cancel_event(run: _Run) -> threading.Event | None:
    # verify() takes an Event; adapt our checker by probing it.
    class _Probe(threading.Event):
        def is_set(self) -> bool:
            try:
                run.check()
            except _Cancelled:
                return True
            return False

    return _Probe()


def _handle_interrupted(
    run: _Run, journal: dict[str, Any] | None, dry_run: bool, out: Path | None, action: str,
    cancel: threading.Event | None,
) -> MigrationReport:
    from .locking import WorkspaceLock

    source = run.source
    phase = (journal or {}).get("phase", "staging")
    run.layout_name = str((journal or {}).get("source_format") or "?")
    saved = (journal or {}).get("report") or {}
    verified = phase in ("verified", "source_renamed", "published") and bool(saved)
    chosen = action if action != "auto" else "resume"
    backup = (journal or {}).get("backup")
    jout = (journal or {}).get("output")
    if dry_run:
        what = (
            ("finish publishing the verified copy" if verified else "discard the unfinished staging copy and "
             "migrate again from the untouched source")
            if chosen == "resume" else "remove the staging copy and restore the original workspace at its path"
        )
        return _empty_report(
            run, action="inspect", state="mid_migration", output_path=jout or str(source), backup_path=backup,
            warnings=(f"An interrupted migration was found (phase '{phase}'). {chosen.capitalize()} would {what}.",),
            total_rows=int(saved.get("total_rows") or 0),
        )
    lock = WorkspaceLock(source, "migrate", marker=_lock_marker(source)).acquire()
    try:
        if chosen == "rollback" or not verified:
            _rollback(source, journal)
            if chosen == "rollback":
                return _empty_report(run, dry_run=False, action="rollback", state="rolled_back",
                                     output_path=str(source), backup_path=None)
        else:
            staging = layout.migration_staging_dir(source)
            target = Path(jout) if jout else None
            final, backup_path = _publish(source, staging, target, journal or {})
            data = {k: v for k, v in saved.items() if k in MigrationReport.__dataclass_fields__}
            data.update(dry_run=False, action="resume", state="published", output_path=str(final),
                        backup_path=str(backup_path) if backup_path else None, started_at=run.started_at)
            for key in ("datasets", "mismatch_details", "merged_duplicates", "errors", "warnings"):
                data[key] = tuple(data.get(key) or ())
            return MigrationReport(**data)
    finally:
        lock.release()
    # Not verified and asked to resume: rebuild from the untouched source.
    if out is None and jout:
        out = Path(jout)
    rerun = _Run(source, "?", run.progress, run.check)
    layout_name, kind = _classify(source)
    rerun.layout_name = layout_name
    result = _execute(rerun, kind, out)
    return _replace(result, action="resume")
