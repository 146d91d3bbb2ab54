"""Migrate a legacy workspace into the current nirs4all format, never in place.

``migrate(source, dry_run=True, output=None, plan_id=None, force=False, action="auto")``
(``Workspace.migrate``) is a ``WriteOperation`` run by ``write_op.run_write``,
the skeleton every write shares (docs/ARCHITECTURE.md, "The write skeleton"):

1. **Dry run** (the default) reads the source read-only and reports what would
   be migrated (rows, datasets, sizes, an estimated duration measured on a
   sample) with a ``plan_id``: a fingerprint of the source's files and of the
   plan (format, datasets and counts, output or backup name).  It writes
   nothing anywhere.  Executing with that ``plan_id`` refuses with
   ``PlanChangedError`` if the source changed since; the backup name's
   timestamp is carried in the ``plan_id``, so the name the dry run shows is
   the name used.
2. **Execute** builds the new workspace in a staging folder beside the source
   (``layout.migration_staging_dir``), writing ONLY through nirs4all's API:
   ``upgrade_workspace_copy`` for SQLite schema 2-4, a ``WorkspaceStore`` opened
   on a *copy* for schema 0/1, and for DuckDB / inline-array stores
   ``WorkspaceStore`` calls (``register_existing_artifact``, ``begin_run``,
   ``begin_pipeline``, ``save_chain``, ``save_prediction(prediction_id=...)``,
   ``array_store.save_batch``, ``log_step``, ``complete_run``,
   ``bulk_update_chain_summaries``).  Run, pipeline and chain ids are re-issued
   by nirs4all; the old -> new map is kept in ``.n4a_migration_receipt.json``.
3. **Verify everything** (``verify``): ids, metadata, scores, every
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
beside the source (never inside it), removed when the migration ends.

Test hook: ``N4A_MIGRATION_TEST_KILL_AT=<point>`` makes the process kill itself
with SIGKILL at a named point (see ``KILL_POINTS``); the crash-safety tests use
it.  It does nothing unless that variable is set.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import InvalidArgumentError, MigrationError, WorkspaceError
from ..plans import make_plan_id
from ..progress import Progress, Ticker
from ..reports import utc_now
from ..write_op import WriteContext, WriteOperation, run_write
from .context import _Run, lock_marker, lock_still_ours, remove_lock_marker
from .execute import RECEIPT_FILE, _replace, execute_plan
from .journal import _publish, _rollback, read_journal
from .plan import _classify, _empty_report, _estimate, _plan, _plan_reader, backup_name, new_stamp, tree_state_token
from .report import MigrationReport

__all__ = ["ACTIONS", "RECEIPT_FILE", "MigrateOperation", "MigrationPlan", "migrate"]

ACTIONS = ("auto", "resume", "rollback")
#: A plan_id that names a backup starts with the backup's timestamp.
_STAMPED = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]+$")


@dataclass
class MigrationPlan:
    """What an execution will do, computed read-only; ``plan_id`` fingerprints it with the source state."""

    plan_id: str
    kind: str
    """``convert``, ``upgrade``, ``reopen-copy``; ``resume`` / ``rollback`` for an interrupted migration."""
    layout_name: str
    report: MigrationReport
    """The dry-run report (without the estimate, which is only measured for a dry run)."""
    skip: frozenset[str] = frozenset()
    output: Path | None = None
    backup: Path | None = None
    journal: dict[str, Any] | None = field(default=None, compare=False)


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
    """Migrate ``source`` into the current format (see the module docstring)."""
    source = Path(source)
    op = MigrateOperation(output=output, action=action, plan_id=plan_id)
    try:
        return run_write(source, op, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress,
                         cancel=cancel)
    finally:
        if not dry_run:
            remove_lock_marker(source)


def _interrupted(source: Path) -> bool:
    return layout.migration_journal(source).is_file() or layout.migration_staging_dir(source).exists()


class MigrateOperation(WriteOperation[MigrationPlan, MigrationReport]):
    """A migration on the one write skeleton: its lock beside the source, no 1.x writer probe."""

    name = "migrate"
    label = "migration"
    probe_writers = False
    """A legacy source cannot be written by a nirs4all 1.x run (the arrays lock is still checked)."""

    def __init__(self, *, output: str | os.PathLike[str] | None, action: str, plan_id: str | None) -> None:
        if action not in ACTIONS:
            raise InvalidArgumentError(f"Unknown action {action!r}.", f"Use one of {', '.join(ACTIONS)}.")
        self.output = Path(output).expanduser().absolute() if output is not None else None
        self.action = action
        stamped = _STAMPED.match(plan_id or "")
        self.stamp = stamped.group(1) if stamped else new_stamp()
        self.started = time.monotonic()
        self.started_at = utc_now()

    def parameters(self) -> dict[str, Any]:
        return {"output": str(self.output) if self.output else None, "action": self.action}

    def lock_marker(self, root: Path) -> Path:
        return lock_marker(root)

    def history_root(self, root: Path) -> Path | None:
        """Not recorded in the action history: that would write into the source, which is never written."""
        return None

    def validate(self, root: Path) -> None:
        if _interrupted(root):
            return
        if self.action != "auto":
            raise MigrationError(f"No interrupted migration of {root} to {self.action}.",
                                 "Run the migration itself (action='auto').")
        if not root.is_dir():
            raise WorkspaceError(f"{root} does not exist.")
        _classify(root)
        if self.output is not None:
            _check_output(root, self.output)

    def _run(self, root: Path, layout_name: str, ticker: Ticker) -> _Run:
        return _Run(root, layout_name, ticker, started=self.started, started_at=self.started_at)

    def plan(self, root: Path, ticker: Ticker) -> MigrationPlan:
        if _interrupted(root):
            return self._plan_interrupted(root, ticker)
        layout_name, kind = _classify(root)
        run = self._run(root, layout_name, ticker)
        backup = None if self.output is not None else backup_name(root, self.stamp)
        ticker.step(0.1, "Reading the legacy store")
        report, skip = _plan(run, kind, self.output, backup)
        params = {
            "kind": kind, "layout": layout_name, "output": str(self.output) if self.output else None,
            "backup": str(backup) if backup else None, "datasets": report.datasets,
            "counts": report.table_counts_before, "errors": report.errors,
        }
        digest = make_plan_id("migrate", params, skip, tree_state_token(root))
        plan_id = f"{self.stamp}-{digest}" if backup is not None else digest
        return MigrationPlan(plan_id, kind, layout_name, report, frozenset(skip), self.output, backup)

    def _plan_interrupted(self, root: Path, ticker: Ticker) -> MigrationPlan:
        """Resume (publish a verified copy, or rebuild) or roll back what an interrupted migration left."""
        journal = read_journal(root)
        j = journal or {}
        phase = j.get("phase", "staging")
        saved = j.get("report") or {}
        verified = phase in ("verified", "source_renamed", "published") and bool(saved)
        chosen = self.action if self.action != "auto" else "resume"
        run = self._run(root, str(j.get("source_format") or "?"), ticker)
        what = (
            ("finish publishing the verified copy" if verified else "discard the unfinished staging copy and "
             "migrate again from the untouched source")
            if chosen == "resume" else "remove the staging copy and restore the original workspace at its path"
        )
        report = _empty_report(
            run, action="inspect", state="mid_migration", output_path=j.get("output") or str(root),
            backup_path=j.get("backup"),
            warnings=(f"An interrupted migration was found (phase '{phase}'). {chosen.capitalize()} would {what}.",),
            total_rows=int(saved.get("total_rows") or 0),
        )
        staging = layout.migration_staging_dir(root)
        state = {
            "journal": j, "staging": staging.exists(), "source": tree_state_token(root) if root.exists() else None,
            "backup": bool(j.get("backup")) and Path(str(j.get("backup"))).exists(),
            "output": bool(j.get("output")) and Path(str(j.get("output"))).exists(),
        }
        plan_id = make_plan_id("migrate-" + chosen, {"verified": verified}, (), repr(sorted(state.items(), key=str)))
        return MigrationPlan(plan_id, chosen, run.layout_name, report, journal=journal)

    def preview(self, root: Path, plan: MigrationPlan) -> MigrationReport:
        seconds = plan.report.estimated_duration_seconds
        if plan.kind not in ("resume", "rollback"):
            with _plan_reader(root, plan.layout_name) as reader:
                datasets = {d["name"]: int(d["predictions"]) for d in plan.report.datasets}
                seconds = _estimate(reader, plan.kind, datasets, plan.report.legacy_array_bytes)
        return _replace(plan.report, estimated_duration_seconds=seconds, plan_id=plan.plan_id,
                        duration_seconds=round(time.monotonic() - self.started, 3))

    def execute(self, root: Path, plan: MigrationPlan, ctx: WriteContext) -> MigrationReport:
        lock_still_ours(root)
        run = self._run(root, plan.layout_name, ctx.ticker)
        if plan.kind in ("resume", "rollback"):
            report = self._execute_interrupted(run, plan)
        else:
            report = execute_plan(run, plan)
        _record_published(report, ctx.action_id, self.parameters(), self.started_at)
        return report

    def _execute_interrupted(self, run: _Run, plan: MigrationPlan) -> MigrationReport:
        source, journal = run.source, plan.journal
        j = journal or {}
        saved = j.get("report") or {}
        verified = j.get("phase") in ("verified", "source_renamed", "published") and bool(saved)
        jout = j.get("output")
        if plan.kind == "rollback" or not verified:
            _rollback(source, journal)
            if plan.kind == "rollback":
                return _empty_report(run, dry_run=False, action="rollback", state="rolled_back",
                                     output_path=str(source), backup_path=None, plan_id=plan.plan_id)
            return self._rebuild(run, Path(jout) if jout else self.output, j.get("backup"), plan.plan_id)
        staging = layout.migration_staging_dir(source)
        final, backup_path = _publish(source, staging, Path(jout) if jout else None, j)
        data = {k: v for k, v in saved.items() if k in MigrationReport.__dataclass_fields__}
        data.update(dry_run=False, action="resume", state="published", output_path=str(final),
                    backup_path=str(backup_path) if backup_path else None, started_at=run.started_at,
                    plan_id=plan.plan_id)
        for key in ("datasets", "mismatch_details", "merged_duplicates", "errors", "warnings"):
            data[key] = tuple(data.get(key) or ())
        return MigrationReport(**data)

    def _rebuild(self, run: _Run, out: Path | None, old_backup: str | None, plan_id: str) -> MigrationReport:
        """Resume of an unverified migration: rolled back, now migrate the untouched source (lock still held)."""
        source = run.source
        run.layout_name, kind = _classify(source)
        backup = None
        if out is None:
            backup = Path(old_backup) if old_backup and not Path(old_backup).exists() else backup_name(
                source, new_stamp())
        report, skip = _plan(run, kind, out, backup)
        fresh = MigrationPlan(plan_id, kind, run.layout_name, report, frozenset(skip), out, backup)
        return _replace(execute_plan(run, fresh), action="resume")


def _check_output(source: Path, out: Path) -> None:
    if out == source or source in out.parents or out in source.parents:
        raise InvalidArgumentError(f"Output {out} must be outside the source workspace {source} (and not contain it).")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidArgumentError(f"Output {out} already exists and is not an empty folder.",
                                   "Choose a new folder name; the migration never overwrites anything.")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"The parent folder of {out} does not exist.", "Create it first.")


def _record_published(report: MigrationReport, action_id: str, parameters: dict[str, Any], started_at: str) -> None:
    """Record the migration in the workspace it published (the source is never written).

    An in-place migration (a backup was kept) is undoable: ``undo`` swaps the backup back while
    the published workspace's state token still matches, i.e. nothing was written since.
    """
    if report.state != "published" or not report.output_path:
        return
    from ..history import record_completed
    from ..plans import workspace_state_token

    out = Path(report.output_path)
    params = {**parameters, "output_path": str(out), "backup_path": report.backup_path,
              "state_token": workspace_state_token(out)}
    record_completed(out, action_id, "migrate", parameters=params, plan_id=report.plan_id or None,
                     counts={"added": int(report.rows_migrated)}, started_at=started_at)
