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
import errno
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..errors import (
    InvalidArgumentError,
    MigrationError,
    OperationCancelledError,
    WorkspaceError,
)
from ..progress import Progress
from ..reports import utc_now
from .build_convert import _build_convert
from .build_upgrade import _build_upgrade
from .context import _Cancelled, _check_not_busy, _checker, _lock_marker, _Run
from .journal import _kill_point, _publish, _remove_journal, _remove_staging, _rollback, read_journal, write_journal
from .plan import _arrays_size, _backup_name, _classify, _empty_report, _plan, _plan_reader, tree_size
from .report import MigrationReport

if TYPE_CHECKING:
    pass



ACTIONS = ("auto", "resume", "rollback")
RECEIPT_FILE = ".n4a_migration_receipt.json"
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


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
    from ..locking import WorkspaceLock

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
    from .verify import verify

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
    from ..locking import WorkspaceLock

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
