"""Executing a checked plan: journal, build into staging, verify everything, publish.

Called by ``MigrateOperation.execute`` with the lock beside the source held.
Any failure before publishing removes the staging folder and the journal: the
source is untouched (it is only ever read).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..errors import MigrationError, OperationCancelledError, WorkspaceError
from ..reports import utc_now
from .build_convert import _build_convert
from .build_upgrade import _build_upgrade
from .context import _Run
from .journal import _kill_point, _publish, _remove_journal, _remove_staging, write_journal
from .plan import _arrays_size, _plan_reader, tree_size
from .report import MigrationReport

if TYPE_CHECKING:
    from .operation import MigrationPlan

RECEIPT_FILE = ".n4a_migration_receipt.json"
#: Predictions compared per step: source and migrated batches both stay small (a few arrays each).
VERIFY_BATCH_ROWS = 64
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _replace(report: MigrationReport, **kw: Any) -> MigrationReport:
    return dataclasses.replace(report, **kw)


def execute_plan(run: _Run, plan: MigrationPlan) -> MigrationReport:
    """Build, verify and publish ``plan`` (a convert / upgrade plan of an untouched source)."""
    source = run.source
    staging = layout.migration_staging_dir(source)
    if plan.report.errors:
        raise MigrationError("The legacy store cannot be migrated as is: " + " ".join(plan.report.errors))
    out, backup = plan.output, plan.backup
    journal = {
        "version": 1, "phase": "staging", "source": str(source), "staging": str(staging),
        "output": str(out) if out is not None else None, "backup": str(backup) if backup else None,
        "source_format": run.layout_name, "kind": plan.kind, "pid": os.getpid(), "started_at": run.started_at,
        "plan_id": plan.plan_id,
    }
    write_journal(layout.migration_journal(source), journal)
    _kill_point("journal_written")
    try:
        result = _build_and_verify(run, plan.kind, staging, set(plan.skip), plan.report)
    except BaseException as exc:
        _cleanup_failed(source)
        raise _as_migration_error(exc, source) from exc
    journal = {**journal, "phase": "verified", "report": result.to_dict()}
    write_journal(layout.migration_journal(source), journal)
    _kill_point("verified")
    run.ticker.step(0.97, "Publishing")
    final, backup_path = _publish(source, staging, out, journal)
    run.ticker.step(1.0, "Done")
    return _replace(result, state="published", output_path=str(final),
                    backup_path=str(backup_path) if backup_path else None,
                    duration_seconds=round(time.monotonic() - run.started, 3), warnings=tuple(run.warnings),
                    plan_id=plan.plan_id)


def _cleanup_failed(source: Path) -> None:
    with contextlib.suppress(OSError):
        _remove_staging(source)
    with contextlib.suppress(OSError):
        _remove_journal(source)


def _as_migration_error(exc: BaseException, source: Path) -> BaseException:
    """One ``WorkspaceError`` with a next step for whatever went wrong while building."""
    if isinstance(exc, OperationCancelledError):
        return OperationCancelledError(
            "Migration cancelled.", f"Your original workspace {source} is untouched; the staging folder was removed."
        )
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
        checked = verify(reader, staging, skip=skip, expected_counts=expected, artifact_pairs=artifact_pairs,
                         batch_rows=VERIFY_BATCH_ROWS, ticker=run.ticker.span(0.7, 0.95))
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
