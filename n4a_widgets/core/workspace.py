"""``Workspace``: the one object users, the CLI and the widgets talk to.

Each method is a thin door into one module of ``n4a_widgets.core`` so that
each capability (health, maintenance, migration, SQL, export, merge) lives in
its own small file.  Heavy libraries are imported inside those modules, only
when a method is called.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .errors import WorkspaceError
from .progress import Progress

if TYPE_CHECKING:
    from .export import ExportReport
    from .fleet import FleetReport
    from .health import StorageHealthReport
    from .history import ActionRecord
    from .maintenance import CleanDeadLinksReport, CompactReport, RemoveBottomReport
    from .merge import MergeReport
    from .migration import MigrationReport
    from .sql import QueryResult
    from .status import StorageStatus
    from .undo import PurgeReport, UndoReport
    from .usage import WorkspaceStats



class Workspace:
    """A nirs4all workspace folder, seen safely.

    ``Workspace(path)`` checks only that ``path`` is a folder; nothing is read
    or written until a method is called.  Read-only methods (``status``,
    ``health``, ``stats``, ``query``, ``export``) never change a byte under the
    workspace; destructive ones default to ``dry_run=True``.
    """

    path: Path
    """Absolute path of the workspace folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if isinstance(path, Workspace):
            path = path.path
        try:
            root = Path(path).expanduser().absolute()
        except TypeError as exc:
            raise WorkspaceError(f"Not a path: {path!r}.", "Pass the workspace folder as a string or Path.") from exc
        try:
            exists = root.exists()
            is_dir = root.is_dir()
            effective = os.access in os.supports_effective_ids
            readable = exists and os.access(root, os.R_OK | os.X_OK, effective_ids=effective)
        except PermissionError:
            exists, is_dir, readable = True, True, False
        if not exists:
            if not layout.migration_journal(root).exists():
                raise WorkspaceError(
                    f"Workspace folder {root} does not exist.",
                    "Check the path; it is the folder you passed to nirs4all as workspace_path.",
                )
        elif not is_dir:
            raise WorkspaceError(
                f"{root} is a file, not a workspace folder.",
                "Pass the folder that contains store.sqlite, not a file inside it.",
            )
        elif not readable:
            raise WorkspaceError(
                f"No permission to read {root}.",
                "Ask the owner for read access, or copy the workspace somewhere you can read.",
            )
        self.path = root

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ------------------------------------------------------------------ reads

    def busy_reason(self) -> str | None:
        """Why a write would be refused right now (another job, a nirs4all run), or None.

        Read-only: takes no lock.  Widgets ask this to disable their buttons.
        """
        from .guard import busy_reason

        return busy_reason(self.path)

    def status(self) -> StorageStatus:
        """Which storage format is on disk and whether it needs a migration."""
        from .status import detect_status

        return detect_status(self.path)

    def health(
        self,
        *,
        deep: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> StorageHealthReport:
        """Counts, sizes and integrity (orphans both ways, unreadable files).

        Read-only.  ``deep=True`` also decodes every column of every array file
        (the "integrity check"); the default reads only the id columns.
        """
        from .health import compute_health

        return compute_health(self.path, self.status(), deep=deep, progress=progress, cancel=cancel)

    def stats(self) -> WorkspaceStats:
        """Bytes and file counts per category (metadata, arrays, artifacts, ...)."""
        from .usage import compute_stats

        return compute_stats(self.path)

    def query(
        self,
        sql: str,
        *,
        limit: int = 1000,
        timeout_s: float = 30,
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        """Run one read-only SQL query over the metadata tables and ``arrays``.

        Tables: those of ``store.sqlite`` (``predictions``, ``runs``, ...) and
        ``arrays`` (live prediction arrays; join on ``prediction_id``).  Only a
        single SELECT runs, in an engine with no file access, in a worker
        process that is stopped at ``timeout_s`` (plus a small grace) or over
        its memory cap; more than ``limit`` rows sets ``truncated``.  Returns a
        ``QueryResult`` (``columns``, ``rows``, ``row_count``, ``truncated``);
        every failure is a ``WorkspaceError`` (``QueryRejectedError``,
        ``QueryTimeoutError``, ...).
        """
        from .sql import run_query

        return run_query(self.path, sql, limit=limit, timeout_s=timeout_s, cancel=cancel)

    def export(
        self,
        dest: str | os.PathLike[str],
        *,
        datasets: Sequence[str] | None = None,
        partition: str | None = None,
        model_name: str | None = None,
        format: str = "auto",
        fold_id: str | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ExportReport:
        """Write live predictions with their arrays to portable Parquet.

        One self-describing file per dataset (arrays plus scores and run
        context), a zip (``format="zip"``, or ``"auto"`` with several datasets)
        or a folder.  Filters: ``datasets`` (by ``dataset_name``),
        ``partition``, ``model_name``, ``fold_id``.  Deleted-but-not-compacted
        rows never appear; files are written under a temporary name, then
        renamed.  Read-only on the workspace.  Returns an ``ExportReport``.
        """
        from .export import export_predictions

        return export_predictions(
            self.path, dest, datasets=datasets, partition=partition, model_name=model_name, format=format,
            fold_id=fold_id, overwrite=overwrite, progress=progress, cancel=cancel,
        )

    # ----------------------------------------------------------- maintenance

    def compact(
        self,
        *,
        dataset_name: str | None = None,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> CompactReport:
        """Apply pending deletes and rewrite array files (per dataset).

        ``dry_run=True`` (the default, like every writing method) reports rows
        before/after without writing, and a ``plan_id``; only files with
        pending deletes are rewritten.  ``force`` overrides a stale job marker
        or a run left 'running' by a crash.
        """
        from .maintenance import compact

        return compact(
            self.path, dataset_name=dataset_name, progress=progress, cancel=cancel, dry_run=dry_run,
            plan_id=plan_id, force=force,
        )

    def clean_dead_links(
        self,
        *,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> CleanDeadLinksReport:
        """Remove predictions without arrays and array rows without predictions.

        ``dry_run=True`` (the default) changes nothing and returns the exact
        plan with its ``plan_id``; pass that ``plan_id`` with
        ``dry_run=False`` to execute it (``PlanChangedError`` if the workspace
        changed since).  Returns a ``CleanDeadLinksReport``.
        """
        from .maintenance import clean_dead_links

        return clean_dead_links(
            self.path, dry_run=dry_run, plan_id=plan_id, progress=progress, cancel=cancel, force=force
        )

    def remove_bottom(
        self,
        fraction: float,
        *,
        metric: str = "val_score",
        partition: str | None = "val",
        dataset_name: str | None = None,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> RemoveBottomReport:
        """Delete the worst ``fraction`` of predictions, ranked within each metric.

        Same ranking as nirs4all's ``Predictions.remove_bottom``: rows of
        ``partition`` (and ``dataset_name`` if given) are ranked by ``metric``
        separately per stored metric (rmse lower-is-better, accuracy
        higher-is-better), ``int(n * fraction)`` per group.  ``dry_run=True``
        returns the plan (``removed``, ``remaining``, ``prediction_ids``,
        thresholds, ``plan_id``) without changing anything; execute it with
        ``dry_run=False, plan_id=...``.  Deletes are batched (one transaction,
        one compaction).  Returns a ``RemoveBottomReport``.
        """
        from .maintenance import remove_bottom

        return remove_bottom(
            self.path, fraction, metric=metric, partition=partition, dataset_name=dataset_name,
            dry_run=dry_run, plan_id=plan_id, progress=progress, cancel=cancel, force=force,
        )

    # ------------------------------------------------------ migration, merge

    def migrate(
        self,
        *,
        dry_run: bool = True,
        output: str | os.PathLike[str] | None = None,
        plan_id: str | None = None,
        force: bool = False,
        action: str = "auto",
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> MigrationReport:
        """Convert a legacy store into the current format, never in place.

        Builds the new workspace in a staging folder beside this one, verifies
        every prediction, score and array value, then publishes: into
        ``output`` (this workspace untouched) or, by default, under this name
        with the original kept as ``<name>.legacy-<timestamp>``.  An
        interrupted migration (``status().storage_mode == "mid_migration"``)
        is resumed (``action="auto"``/``"resume"``) or undone
        (``action="rollback"``).  ``dry_run=True`` writes nothing and returns
        the plan.  Returns a ``MigrationReport``.
        """
        from .migration import migrate

        return migrate(
            self.path, dry_run=dry_run, output=output, plan_id=plan_id, force=force, action=action,
            progress=progress, cancel=cancel,
        )

    def merge(
        self,
        sources: Sequence[str | os.PathLike[str] | Workspace],
        *,
        on_conflict: str = "keep_best",
        datasets: Sequence[str] | None = None,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> MergeReport:
        """Merge predictions of ``sources`` into this workspace (the target).

        Same conflict key and strategies as nirs4all's
        ``Predictions.merge_stores`` (``keep_best``, ``keep_existing``,
        ``overwrite``), batched, with their models: merged predictions keep
        their run, pipeline, chain (steps) and model files, so
        ``nirs4all.predict(chain_id=..., workspace_path=target)`` works on
        them; a model another chain needs is never removed.  A source is a
        workspace folder or a ``.zip`` of one; sources are only read and must
        be current-format workspaces.  ``dry_run=True`` returns the exact plan
        (``added``, ``removed``, conflicts per source, ``plan_id``); execute it
        with ``dry_run=False, plan_id=...``.  Returns a ``MergeReport``.
        """
        from .merge import merge

        return merge(
            self.path, [as_workspace(s).path if isinstance(s, Workspace) else s for s in sources],
            on_conflict=on_conflict, datasets=datasets, dry_run=dry_run, plan_id=plan_id, force=force,
            progress=progress, cancel=cancel,
        )


    # ------------------------------------------------------- history, undo

    def history(self, *, limit: int = 100) -> tuple[ActionRecord, ...]:
        """The write actions run on this workspace, newest first (read-only).

        Every write of n4a_widgets (compact, clean dead links, remove bottom,
        merge, migrate, undo, purge) is recorded inside the workspace, crash-
        safely, with its parameters, ``plan_id``, UTC start/end, user, host,
        counts and outcome (``done`` / ``failed`` / ``cancelled``); ``undoable``
        says whether ``undo(action_id)`` can take it back.
        """
        from .history import history

        return history(self.path, limit=limit)

    def undo(
        self,
        action_id: str,
        *,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> UndoReport:
        """Take back a recorded action: what it removed comes back, what it added goes.

        Restores from the trash through nirs4all's write API (same
        ``prediction_id``s, scores, arrays, chains and artifacts), also after a
        compaction.  ``dry_run=True`` (the default) says exactly what comes back
        (``restored``) and what goes (``removed``) and returns a ``plan_id``;
        execute with ``dry_run=False, plan_id=...``.  The undo is recorded too,
        and can itself be undone.  An action already undone, or whose trash was
        purged, raises ``WorkspaceError`` saying so.
        """
        from .undo import undo

        return undo(self.path, action_id, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress,
                    cancel=cancel)

    def purge_trash(
        self,
        older_than_days: float = 30,
        *,
        dry_run: bool = True,
        plan_id: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> PurgeReport:
        """Delete for good the trash of actions older than ``older_than_days`` (their undo ends).

        Nothing else ever empties the trash.  ``dry_run=True`` (the default)
        lists the actions and bytes; execute with ``dry_run=False, plan_id=...``.
        """
        from .undo import purge_trash

        return purge_trash(self.path, older_than_days, dry_run=dry_run, plan_id=plan_id, force=force,
                           progress=progress, cancel=cancel)

def scan_workspaces(
    root: str | os.PathLike[str],
    *,
    max_depth: int = 6,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> FleetReport:
    """Every nirs4all workspace under the folder ``root``, read-only: a ``FleetReport``.

    Finds folders in any format (current, legacy 0.6-0.11, half-migrated,
    new) and workspaces inside ``.zip`` archives, down to ``max_depth``
    folder levels.  Each row (``report.workspaces``) has ``path``,
    ``storage_mode``, ``format``, ``migration_needed``, ``size_bytes``,
    ``total_predictions``, ``datasets``, ``last_run_at``,
    ``pending_tombstones`` and ``error``.  No array file is decoded and no
    byte is written; unreadable folders and symlink loops are listed in
    ``report.skipped``.
    """
    from .fleet import scan

    try:
        folder = Path(root).expanduser().absolute()
    except TypeError as exc:
        raise WorkspaceError(f"Not a path: {root!r}.", "Pass the folder as a string or Path.") from exc
    if not folder.exists():
        raise WorkspaceError(f"Folder {folder} does not exist.", "Check the path of the folder to scan.")
    if not folder.is_dir():
        raise WorkspaceError(f"{folder} is a file, not a folder.", "Pass the folder that holds your workspaces.")
    effective = os.access in os.supports_effective_ids
    if not os.access(folder, os.R_OK | os.X_OK, effective_ids=effective):
        raise WorkspaceError(f"No permission to read {folder}.", "Scan a folder you can read.")
    return scan(folder, max_depth=max_depth, progress=progress, cancel=cancel)


def as_workspace(value: Any) -> Workspace:
    """Accept a path or a ``Workspace`` wherever a workspace is expected."""
    return value if isinstance(value, Workspace) else Workspace(value)
