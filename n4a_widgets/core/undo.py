"""Undo a recorded action, and purge the trash: ``ws.undo``, ``ws.purge_trash``.

Undo is generic, from what the action recorded (core/history.py) and kept
(core/trash.py): the predictions it *added* go (through the same batched,
trashed delete as remove-bottom, so the undo can itself be undone), the ones
it *removed* come back through nirs4all's write API — ``save_prediction`` with
the same ``prediction_id`` and every column, ``ArrayStore.save_batch`` with the
arrays nirs4all's own reader decodes from the trash, the pruned pipelines and
chains re-created with their own ids (``nirs4all_api.insert_*_row``) and their
artifacts put back and re-referenced; nirs4all then recomputes the chain
summaries itself.  A compaction in between does not matter: the arrays come
from the trash, not from the array files.

An undo of an in-place migration swaps the backup back when nothing was
written to the migrated workspace since (its state token still matches), and
refuses otherwise.

Both are ``WriteOperation``s run by ``run_write``: dry run first, ``plan_id``,
one writer, recorded in the history.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import history, trash
from .arrays_readonly import live_prediction_ids
from .crash import kill_point
from .errors import InvalidArgumentError, WorkspaceError
from .paths import store_db
from .plans import make_plan_id, metadata_digest, workspace_state_token
from .progress import Progress, Ticker
from .readonly_sqlite import map_sqlite_error, open_readonly
from .reports import Report
from .write_op import WriteContext, WriteOperation, run_write


@dataclass(frozen=True)
class UndoReport(Report):
    """What ``undo`` brings back and takes away (dry run: will)."""

    path: str
    action_id: str
    operation: str
    dry_run: bool
    restored: int
    removed: int
    restored_ids: tuple[str, ...]
    removed_ids: tuple[str, ...]
    already_present: tuple[str, ...]
    """Ids the action removed that are live again (left as they are)."""
    missing: tuple[str, ...]
    """Ids the action removed of which the trash holds nothing (deleted before the trash existed)."""
    plan_id: str
    cancelled: bool = False
    message: str = ""


@dataclass(frozen=True)
class PurgeReport(Report):
    """Trash folders deleted for good (dry run: that will be)."""

    path: str
    dry_run: bool
    older_than_days: float
    action_ids: tuple[str, ...]
    purged_actions: int
    bytes: int
    plan_id: str
    cancelled: bool = False


# ------------------------------------------------------------------- undo


def _target(root: Path, action_id: str) -> history.ActionRecord:
    if not isinstance(action_id, str) or not action_id:
        raise InvalidArgumentError(f"action_id must be a non-empty string, got {action_id!r}.",
                                   "Take it from ws.history() (or `python -m n4a_widgets history PATH`).")
    record = history.find(root, action_id)
    if record is None:
        raise WorkspaceError(f"No action {action_id!r} in the history of {root}.",
                             "List the actions with ws.history() (or the CLI verb `history`).")
    if record.outcome == history.RUNNING:
        raise WorkspaceError(f"Action {action_id} ({record.operation}) is still running.", "Wait for it to end.")
    if record.undone:
        raise WorkspaceError(
            f"Action {action_id} ({record.operation}) was already undone by {record.undone_by}.",
            f"To redo it, undo the undo: ws.undo({record.undone_by!r}).",
        )
    if record.purged:
        raise WorkspaceError(
            f"The trash of action {action_id} ({record.operation}) was purged; what it deleted is gone for good.",
            "Nothing can be restored; restore from a backup of the workspace if you have one.",
        )
    if record.operation not in history.UNDOABLE:
        raise WorkspaceError(
            f"Action {action_id} ({record.operation}) cannot be undone: it deletes nothing that was live "
            "(compact only reclaims rows of predictions already deleted, which are in their own action's trash).",
            "Undo the action that deleted the predictions instead.",
        )
    if not record.undoable:
        raise WorkspaceError(
            f"Action {action_id} ({record.operation}, {record.outcome}) changed nothing that can be taken back.",
            "Nothing to undo.",
        )
    return record


@dataclass
class _UndoPlan:
    record: history.ActionRecord
    restore: list[str]
    remove: list[str]
    already: list[str]
    missing: list[str]
    digest: str
    plan_id: str
    content: trash.TrashContent = field(repr=False)


class Undo(WriteOperation[_UndoPlan, UndoReport]):
    name = "undo"
    label = "undo"

    def __init__(self, action_id: str) -> None:
        self.action_id = action_id
        self.undoes = action_id
        self._moved_to: Path | None = None

    def history_root_after(self, home: Path) -> Path:
        return self._moved_to or home

    def parameters(self) -> dict[str, Any]:
        return {"action_id": self.action_id}

    def validate(self, root: Path) -> None:
        record = _target(root, self.action_id)
        if record.operation == "migrate":
            _check_migration_undo(root, record)

    def plan(self, root: Path, ticker: Ticker) -> _UndoPlan:
        record = _target(root, self.action_id)
        ticker.step(0.0, "Reading the trash")
        if record.operation == "migrate":
            token = workspace_state_token(root)
            return _UndoPlan(record, [], [], [], [], "", make_plan_id("undo", self.parameters(), [], token),
                             trash.TrashContent(root))
        ids = trash.read_ids(root, record.action_id) or {"removed": [], "added": []}
        content = trash.read_trash(root, record.action_id)
        live = live_prediction_ids(root)
        in_trash = set(content.predictions) | set(content.kept_ids)
        restore = [i for i in ids["removed"] if i not in live and i in in_trash]
        already = [i for i in ids["removed"] if i in live]
        missing = [i for i in ids["removed"] if i not in live and i not in in_trash]
        remove = [i for i in ids["added"] if i in live]
        with open_readonly(store_db(root)) as conn:
            digest = metadata_digest(conn)
        plan_id = make_plan_id("undo", self.parameters(), [*restore, *remove], workspace_state_token(root, digest))
        return _UndoPlan(record, restore, remove, already, missing, digest, plan_id, content)

    def preview(self, root: Path, plan: _UndoPlan) -> UndoReport:
        return self._report(root, plan, dry_run=True)

    def _report(self, root: Path, plan: _UndoPlan, *, dry_run: bool, message: str = "") -> UndoReport:
        if plan.record.operation == "migrate" and not message:
            p = plan.record.parameters
            message = f"Puts the original back: {p.get('backup_path')} -> {root}."
        return UndoReport(
            path=str(root), action_id=plan.record.action_id, operation=plan.record.operation, dry_run=dry_run,
            restored=len(plan.restore), removed=len(plan.remove), restored_ids=tuple(sorted(plan.restore)),
            removed_ids=tuple(sorted(plan.remove)), already_present=tuple(sorted(plan.already)),
            missing=tuple(sorted(plan.missing)), plan_id=plan.plan_id, message=message,
        )

    def execute(self, root: Path, plan: _UndoPlan, ctx: WriteContext) -> UndoReport:
        if plan.record.operation == "migrate":
            return _undo_migration(root, plan, self, ctx)
        if plan.remove:
            from .maintenance.batch_delete import delete_in_batches

            datasets = _datasets_of(root, plan.remove)
            # same lists, narrower progress span: the deleted ids land in this undo's own trash
            sub = dataclasses.replace(ctx, ticker=ctx.ticker.span(0.0, 0.4))
            delete_in_batches(root, plan.remove, plan.digest, sub, compact_datasets=datasets)
        if plan.restore:
            ctx.before_add(list(plan.restore))
            restore(root, plan.content, plan.restore, ctx.ticker.span(0.4, 1.0))
            ctx.added_ids.extend(plan.restore)
        kill_point("undo_after_commit")
        history.mark(root, plan.record.action_id, "undone", by=ctx.action_id)
        if plan.record.operation == "undo" and plan.record.undoes:
            history.mark(root, plan.record.undoes, "redone", by=ctx.action_id)
        return self._report(root, plan, dry_run=False)


def _datasets_of(root: Path, ids: list[str]) -> list[str]:
    wanted = set(ids)
    with open_readonly(store_db(root)) as conn:
        return sorted({str(ds) for pid, ds in conn.execute("SELECT prediction_id, dataset_name FROM predictions")
                       if pid in wanted})


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, TypeError):
            return {}
    return value if value is not None else {}


def restore(root: Path, content: trash.TrashContent, ids: list[str], ticker: Ticker) -> None:
    """Put ``ids`` back from ``content`` through nirs4all's write API (one transaction)."""
    import inspect
    import sqlite3

    from . import nirs4all_api as api
    from .maintenance.batch_delete import open_store

    ticker.step(0.0, f"Reading {len(ids):,} predictions' arrays from the trash")
    records = trash.load_trashed_arrays(content, ids)
    rows = [content.predictions[i] for i in ids if i in content.predictions]
    store = open_store(root)
    try:
        params = set(inspect.signature(store.save_prediction).parameters)
        conn = api.store_connection(store)
        api.analyze(store)
        pipe_ids = {r["pipeline_id"] for r in rows}
        chain_ids = {r["chain_id"] for r in rows if r.get("chain_id")}

        def present(table: str, key: str, values: set[str]) -> set[str]:
            out: set[str] = set()
            vals = list(values)
            for start in range(0, len(vals), 900):
                chunk = vals[start:start + 900]
                sql = f"SELECT {key} FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})"  # noqa: S608
                out.update(str(r[0]) for r in conn.execute(sql, chunk))
            return out

        new_pipes = [content.pipelines[p] for p in sorted(pipe_ids - present("pipelines", "pipeline_id", pipe_ids))
                     if p in content.pipelines]
        new_chains = [content.chains[c] for c in sorted(chain_ids - present("chains", "chain_id", chain_ids))
                      if c in content.chains]
        refs = Counter(a for c in new_chains for a in trash.chain_artifact_ids(c))
        art_present = present("artifacts", "artifact_id", set(refs))
        artifacts_dir = root / "artifacts"
        for aid in refs:  # files first: a crash before the commit leaves only unreferenced copies
            art = content.artifacts.get(aid)
            if art is None:
                continue
            dst = artifacts_dir / str(art["artifact_path"])
            src = content.artifact_file(str(art["artifact_path"]))
            if not dst.exists() and src is not None:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        ticker.step(0.3, f"Restoring {len(rows):,} predictions")
        with store.transaction():
            for row in new_pipes:
                api.insert_pipeline_row(store, row)
            for row in new_chains:
                api.insert_chain_row(store, row)
            increments: list[str] = []
            for aid, n in refs.items():
                art = content.artifacts.get(aid)
                if aid not in art_present and art is not None:
                    store.register_existing_artifact(
                        aid, str(art["artifact_path"]), str(art["content_hash"]), str(art["operator_class"]),
                        str(art["artifact_type"]), str(art["format"]), int(art["size_bytes"] or 0),
                    )
                    n -= 1
                increments.extend([aid] * n)
            api.increment_artifact_refs(store, increments)
            for row in rows:
                kwargs = {k: v for k, v in row.items() if k in params}
                kwargs["scores"] = _json(row.get("scores"))
                kwargs["best_params"] = _json(row.get("best_params"))
                store.save_prediction(**kwargs)
            ticker.step(0.7, "Writing arrays")
            store.array_store.save_batch(records)
            kill_point("undo_before_commit")
        ticker.step(0.9, "Refreshing chain summaries")
        store.bulk_update_chain_summaries(sorted(chain_ids))
        for row in new_pipes:
            if row.get("status") == "completed":
                store.complete_pipeline(row["pipeline_id"], row.get("best_val"), row.get("best_test"),
                                        row.get("metric") or "", int(row.get("duration_ms") or 0))
        ticker.done()
    except sqlite3.OperationalError as exc:
        raise map_sqlite_error(store_db(root), exc) from exc
    finally:
        store.close()


def _check_migration_undo(root: Path, record: history.ActionRecord) -> None:
    p = record.parameters
    backup = p.get("backup_path")
    if not backup or not Path(str(backup)).is_dir():
        raise WorkspaceError(
            f"The migration {record.action_id} kept no backup that still exists ({backup}).",
            "Nothing to put back; the original is gone.",
        )
    if p.get("output_path") and Path(str(p["output_path"])).absolute() != root.absolute():
        raise WorkspaceError("That migration wrote into another folder; this workspace was not changed by it.",
                             f"Delete {p['output_path']} if you do not want the copy.")
    later = [a for a in history.history(root, limit=-1) if a.started_at > record.started_at
             and a.operation != "undo"]
    token = p.get("state_token")
    if later or (token and token != workspace_state_token(root)):
        raise WorkspaceError(
            f"Cannot undo migration {record.action_id}: the migrated workspace was written to since "
            f"({', '.join(a.operation for a in later) or 'its predictions or arrays changed'}); putting the "
            "original back would lose that.",
            f"The original is kept at {backup}; copy what you need from it by hand.",
        )


def _undo_migration(root: Path, plan: _UndoPlan, op: Undo, ctx: WriteContext) -> UndoReport:
    """Swap the backup back in: the migrated folder is kept beside it (renamed), nothing is deleted."""
    backup = Path(str(plan.record.parameters["backup_path"]))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = root.with_name(f"{root.name}.undone-migration-{stamp}")
    history.mark(root, plan.record.action_id, "undone", by=ctx.action_id)
    os.replace(root, aside)
    op._moved_to = aside  # the record (begin, end) stays with the migrated workspace; the original is untouched
    os.replace(backup, root)
    return op._report(root, plan, dry_run=False,
                      message=f"Original put back at {root}; the migrated workspace is kept at {aside}.")


def undo(
    root: Path,
    action_id: str,
    *,
    dry_run: bool = True,
    plan_id: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> UndoReport:
    """Take back action ``action_id`` (dry run by default; see the module docstring)."""
    return run_write(root, Undo(action_id), dry_run=dry_run, plan_id=plan_id, force=force, progress=progress,
                     cancel=cancel)


# ------------------------------------------------------------------ purge


@dataclass
class _PurgePlan:
    action_ids: list[str]
    nbytes: int
    plan_id: str


class PurgeTrash(WriteOperation[_PurgePlan, PurgeReport]):
    name = "purge_trash"
    label = "purge trash"

    def __init__(self, older_than_days: float) -> None:
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float)) or older_than_days < 0:
            raise InvalidArgumentError(f"older_than_days must be a number >= 0, got {older_than_days!r}.",
                                       "For example 30 purges the trash of actions older than 30 days; 0 all.")
        self.older_than_days = float(older_than_days)

    def parameters(self) -> dict[str, Any]:
        return {"older_than_days": self.older_than_days}

    def plan(self, root: Path, ticker: Ticker) -> _PurgePlan:
        cutoff = (datetime.now(UTC) - timedelta(days=self.older_than_days)).strftime("%Y-%m-%dT%H:%M:%S")
        base = trash.trash_root(root)
        ids: list[str] = []
        nbytes = 0
        records = {r.action_id: r for r in history.history(root, limit=-1)}
        for folder in sorted(base.iterdir()) if base.is_dir() else []:
            if not folder.is_dir() or folder.name.endswith(".purging"):
                continue
            rec = records.get(folder.name)
            if rec is not None and rec.outcome == history.RUNNING:
                continue
            when = rec.finished_at or rec.started_at if rec is not None else ""
            if rec is None or when[:19] <= cutoff:
                ids.append(folder.name)
                nbytes += trash.trash_size_of(root, folder.name)
        return _PurgePlan(ids, nbytes, make_plan_id("purge_trash", self.parameters(), ids, str(nbytes)))

    def preview(self, root: Path, plan: _PurgePlan) -> PurgeReport:
        return PurgeReport(str(root), True, self.older_than_days, tuple(plan.action_ids), len(plan.action_ids),
                           plan.nbytes, plan.plan_id)

    def execute(self, root: Path, plan: _PurgePlan, ctx: WriteContext) -> PurgeReport:
        done: list[str] = []
        cancelled = False
        for i, aid in enumerate(plan.action_ids):
            if ctx.ticker.cancelled:
                cancelled = True
                break
            ctx.ticker.step(i / max(len(plan.action_ids), 1), f"Purging the trash of {aid}")
            history.mark(root, aid, "purged", by=ctx.action_id)  # recorded first: never undoable half-purged
            trash.purge(root, aid)
            done.append(aid)
        ctx.ticker.done()
        return PurgeReport(str(root), False, self.older_than_days, tuple(done), len(done), plan.nbytes, plan.plan_id,
                           cancelled)


def purge_trash(
    root: Path,
    older_than_days: float = 30,
    *,
    dry_run: bool = True,
    plan_id: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> PurgeReport:
    """Delete for good the trash of actions older than ``older_than_days`` (dry run by default)."""
    return run_write(root, PurgeTrash(older_than_days), dry_run=dry_run, plan_id=plan_id, force=force,
                     progress=progress, cancel=cancel)
