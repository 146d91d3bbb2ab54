"""Bulk actions over many workspaces: migrate every legacy one, compact all, merge several into one.

Each bulk action is a preview (one dry run per workspace, through the
``Workspace`` methods) followed by an execution of exactly the previewed
rows, each with its own ``plan_id``.  One row per workspace; a failure (a
busy workspace, a refused plan, a failed verification) is recorded in its row
and the next workspace proceeds.  Every write goes through the workspace's
own method, so its one-writer guard, its verification and its "never in
place" rules apply unchanged; this module only loops, reports and stops on
cancel between workspaces.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, OperationCancelledError, WorkspaceError
from ..progress import Progress, Ticker, as_ticker
from ..reports import Report, utc_now

MIGRATE, COMPACT, MERGE = "migrate", "compact", "merge"
OPERATIONS = (MIGRATE, COMPACT, MERGE)

#: Row outcomes.  ``planned`` after a preview; the rest after an execution.
PLANNED, NOTHING, DONE, FAILED = "planned", "nothing_to_do", "done", "failed"
SKIPPED, CANCELLED = "skipped", "cancelled"

#: Default suffix of the migrated copy beside each legacy workspace (never in place unless chosen).
MIGRATED_SUFFIX = "-migrated"


@dataclass(frozen=True)
class BulkRow(Report):
    """One workspace of a bulk action."""

    path: str
    outcome: str
    """``planned``, ``nothing_to_do``, ``done``, ``failed``, ``skipped`` or ``cancelled``."""
    plan_id: str | None
    output_path: str | None
    message: str
    report: dict[str, Any]
    """The workspace method's report (``to_dict()``), empty when it did not run."""
    error: dict[str, str] | None


@dataclass(frozen=True)
class BulkReport(Report):
    """A bulk preview (``dry_run=True``) or its execution: one row per workspace."""

    operation: str
    dry_run: bool
    parameters: dict[str, Any]
    rows: tuple[BulkRow, ...]
    planned: int
    done: int
    failed: int
    skipped: int
    cancelled: bool
    checked_at: str


def _error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, WorkspaceError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "hint": ""}


def _summary(operation: str, dry_run: bool, parameters: dict[str, Any], rows: list[BulkRow],
             cancelled: bool) -> BulkReport:
    count = {o: sum(1 for r in rows if r.outcome == o) for o in (PLANNED, DONE, FAILED, SKIPPED)}
    return BulkReport(operation, dry_run, parameters, tuple(rows), count[PLANNED], count[DONE], count[FAILED],
                      count[SKIPPED], cancelled, utc_now())


def migration_output(path: Path, *, in_place: bool, output_root: Path | None, scan_root: Path | None) -> Path | None:
    """Where the migrated copy of ``path`` goes: None = in place (original kept as a backup)."""
    if in_place:
        return None
    if output_root is not None:
        # flat names (``projects__a``) so every output sits directly in ``output_root``, which must exist
        rel = Path(os.path.relpath(path, scan_root)) if scan_root is not None else Path(path.name)
        parts = rel.parts if rel.parts and rel.parts[0] not in ("..", ".") else (path.name,)
        return output_root / "__".join(parts)
    return path.with_name(path.name + MIGRATED_SUFFIX)


def _each(paths: Sequence[Path], ticker: Ticker, verb: str,
          one: Callable[[Path, Ticker], BulkRow]) -> tuple[list[BulkRow], bool]:
    """Run ``one`` per workspace; a failure is a row, a cancel skips the rest."""
    rows: list[BulkRow] = []
    n = max(len(paths), 1)
    for index, path in enumerate(paths):
        if ticker.cancelled:
            rows += [BulkRow(str(p), CANCELLED, None, None, "Not started: cancelled.", {}, None)
                     for p in paths[index:]]
            return rows, True
        sub = ticker.span(index / n, (index + 1) / n)
        sub.step(0.0, f"{verb} {path.name} ({index + 1}/{len(paths)})")
        try:
            rows.append(one(path, sub))
        except Exception as exc:  # noqa: BLE001 - one workspace failing never stops the others
            rows.append(BulkRow(str(path), FAILED, None, None, str(exc), {}, _error(exc)))
    ticker.done(f"{verb}: {len(paths)} workspaces")
    return rows, False


def _paths(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out = [Path(p) for p in paths]
    if len(set(out)) != len(out):
        raise InvalidArgumentError("The same workspace is listed twice.")
    return out


# ------------------------------------------------------------------ migrate


def preview_migrate(
    paths: Sequence[str | os.PathLike[str]],
    *,
    in_place: bool = False,
    output_root: Path | None = None,
    scan_root: Path | None = None,
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
) -> BulkReport:
    """Dry-run ``migrate`` of each legacy workspace; nothing is written.

    By default each goes to ``<name>-migrated`` beside it (the source is not
    touched); ``output_root`` mirrors the scanned tree under another folder;
    ``in_place=True`` publishes under the original name, keeping the
    original as ``<name>.legacy-<timestamp>``.
    """
    from ..workspace import Workspace

    params = {"in_place": in_place, "output_root": str(output_root) if output_root else None}
    if output_root is not None and not output_root.is_dir():
        raise InvalidArgumentError(f"Output folder {output_root} does not exist.", "Create it first.")

    def one(path: Path, sub: Ticker) -> BulkRow:
        out = migration_output(path, in_place=in_place, output_root=output_root, scan_root=scan_root)
        if out is not None and out.exists():
            return BulkRow(str(path), SKIPPED, None, str(out), f"{out} already exists; choose another output.", {},
                           None)
        report = Workspace(path).migrate(dry_run=True, output=out, progress=sub.step, cancel=sub.cancel)
        data = report.to_dict()
        if data.get("state") not in ("planned", None):
            return BulkRow(str(path), SKIPPED, None, str(out) if out else None,
                           f"Not a plain migration ({data.get('state')}): open it in MigrationWizard.", data, None)
        return BulkRow(str(path), PLANNED, data.get("plan_id"), str(out) if out else str(path),
                       f"{data.get('total_rows', 0)} predictions to convert and verify.", data, None)

    ticker = as_ticker(progress, cancel)
    rows, cancelled = _each(_paths(paths), ticker, "Planning migration of", one)
    return _summary(MIGRATE, True, params, rows, cancelled)


def _run_migrate(row: BulkRow, sub: Ticker, force: bool) -> BulkRow:
    from ..workspace import Workspace

    path = Path(row.path)
    out = None if row.output_path in (None, row.path) else Path(str(row.output_path))
    report = Workspace(path).migrate(dry_run=False, output=out, plan_id=row.plan_id, force=force,
                                     progress=sub.step, cancel=sub.cancel)
    data = report.to_dict()
    ok = data.get("state") == "published" and data.get("verification_passed", False)
    msg = (f"Migrated and verified {data.get('rows_migrated', 0)} predictions into {data.get('output_path')}."
           if ok else f"Migration ended in state {data.get('state')}: {'; '.join(data.get('errors') or [])}")
    return dataclasses.replace(row, outcome=DONE if ok else FAILED, output_path=data.get("output_path"), message=msg,
                               report=data, error=None if ok else {"type": "MigrationError", "message": msg,
                                                                    "hint": "The source is untouched."})


# ------------------------------------------------------------------ compact


def preview_compact(
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
) -> BulkReport:
    """Dry-run ``compact`` of each workspace: rows and bytes a compaction would remove."""
    from ..workspace import Workspace

    def one(path: Path, sub: Ticker) -> BulkRow:
        data = Workspace(path).compact(dry_run=True, progress=sub.step, cancel=sub.cancel).to_dict()
        removed = int(data.get("rows_removed") or 0)
        outcome = PLANNED if removed or data.get("pending_tombstones_before") else NOTHING
        return BulkRow(str(path), outcome, data.get("plan_id"), None,
                       f"{removed} array rows to drop ({data.get('pending_tombstones_before', 0)} pending deletes).",
                       data, None)

    rows, cancelled = _each(_paths(paths), as_ticker(progress, cancel), "Planning compaction of", one)
    return _summary(COMPACT, True, {}, rows, cancelled)


def _run_compact(row: BulkRow, sub: Ticker, force: bool) -> BulkRow:
    from ..workspace import Workspace

    kwargs: dict[str, Any] = {"dry_run": False, "force": force, "progress": sub.step, "cancel": sub.cancel}
    data = Workspace(row.path).compact(**kwargs).to_dict()
    msg = f"Dropped {data.get('rows_removed', 0)} rows, reclaimed {data.get('bytes_reclaimed') or 0} bytes."
    return dataclasses.replace(row, outcome=DONE, message=msg, report=data)


# -------------------------------------------------------------------- merge


def preview_merge(
    target: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    *,
    on_conflict: str = "keep_best",
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
) -> BulkReport:
    """Dry-run merge of ``sources`` (folders or ``.zip`` archives) into ``target``: one row, the target."""
    from ..workspace import Workspace

    tgt = Path(target)
    srcs = _paths(sources)
    if not srcs:
        raise InvalidArgumentError("Select at least one workspace to merge.")
    if tgt in srcs:
        raise InvalidArgumentError(f"{tgt} is both the target and a source.", "Pick a target outside the selection.")
    params = {"target": str(tgt), "sources": [str(s) for s in srcs], "on_conflict": on_conflict}

    def one(path: Path, sub: Ticker) -> BulkRow:
        data = Workspace(path).merge(srcs, on_conflict=on_conflict, dry_run=True, progress=sub.step,
                                     cancel=sub.cancel).to_dict()
        return BulkRow(str(path), PLANNED, data.get("plan_id"), str(path),
                       f"{data.get('added', 0)} predictions to add, {data.get('removed', 0)} to replace, "
                       f"from {len(srcs)} workspaces.", data, None)

    rows, cancelled = _each([tgt], as_ticker(progress, cancel), "Planning merge into", one)
    return _summary(MERGE, True, params, rows, cancelled)


def _run_merge(row: BulkRow, sub: Ticker, force: bool, params: dict[str, Any]) -> BulkRow:
    from ..workspace import Workspace

    data = Workspace(row.path).merge(
        [Path(s) for s in params["sources"]], on_conflict=params["on_conflict"], dry_run=False, plan_id=row.plan_id,
        force=force, progress=sub.step, cancel=sub.cancel,
    ).to_dict()
    return dataclasses.replace(row, outcome=DONE, report=data,
                               message=f"Added {data.get('added', 0)}, replaced {data.get('removed', 0)}.")


# ---------------------------------------------------------------- execution


def execute(
    plan: BulkReport | dict[str, Any],
    *,
    force: bool = False,
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
) -> BulkReport:
    """Run exactly the ``planned`` rows of a bulk preview, each with its own ``plan_id``.

    Rows that were not planned are carried over as ``skipped``.  A workspace
    that changed since its preview refuses (``PlanChangedError``) in its row;
    a busy one (another job, a nirs4all run) too; the others proceed.
    """
    data = plan.to_dict() if isinstance(plan, BulkReport) else dict(plan)
    if not data.get("dry_run", False):
        raise InvalidArgumentError("This report is an execution, not a preview.", "Preview again, then confirm.")
    operation = data["operation"]
    if operation not in OPERATIONS:
        raise InvalidArgumentError(f"Unknown bulk operation {operation!r}.")
    params = dict(data.get("parameters") or {})
    rows = [BulkRow(**{**r, "error": r.get("error")}) for r in data["rows"]]
    todo = [r for r in rows if r.outcome == PLANNED]
    by_path = {r.path: r for r in todo}

    def one(path: Path, sub: Ticker) -> BulkRow:
        row = by_path[str(path)]
        try:
            if operation == MIGRATE:
                return _run_migrate(row, sub, force)
            if operation == COMPACT:
                return _run_compact(row, sub, force)
            return _run_merge(row, sub, force, params)
        except OperationCancelledError as exc:  # stopped inside this workspace; the method left it consistent
            return dataclasses.replace(row, outcome=CANCELLED, message=str(exc), error=_error(exc))
        except Exception as exc:  # noqa: BLE001 - recorded in this workspace's row
            return dataclasses.replace(row, outcome=FAILED, message=str(exc), error=_error(exc))

    done, cancelled = _each([Path(r.path) for r in todo], as_ticker(progress, cancel), operation.capitalize(), one)
    result = {r.path: r for r in done}
    for path, r in result.items():  # not started: keep the previewed row (plan id, output), marked cancelled
        if r.outcome == CANCELLED and not r.report:
            result[path] = dataclasses.replace(by_path[path], outcome=CANCELLED, message=r.message)
    final = [result.get(r.path) or dataclasses.replace(r, outcome=SKIPPED if r.outcome != NOTHING else NOTHING)
             for r in rows]
    return _summary(operation, False, params, final, cancelled)
