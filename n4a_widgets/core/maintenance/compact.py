"""Compact: apply pending deletes to the array files that have any, one dataset at a time.

Does what ``WorkspaceStore.compact_arrays(dataset)`` does (under nirs4all's
``arrays/.lock``: snapshot the live ids from committed SQLite, drop tombstoned
rows that are not live, de-duplicate, re-sort, rewrite), but

- without opening a writable store, whose constructor would first compact
  every file in one unreported, uncancellable pass (and upgrade old schemas);
- only for files with something to apply (a tombstoned, non-live row or a
  duplicated id): a file with nothing pending is not rewritten, so compacting
  a clean workspace costs one read of the id columns (issue #14);
- with a report whose ``bytes_reclaimed`` is never negative (a rewrite may
  compress a little worse; that is not space reclaimed).

A ``WriteOperation`` run by ``run_write`` (recorded in the history; nothing to
undo: only rows of already-deleted predictions go, and those of our own
deletes are in the trash).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from .. import nirs4all_api as api
from ..arrays_readonly import live_prediction_ids, parquet_path_for, read_tombstones
from ..errors import InvalidArgumentError
from ..paths import require_current
from ..plans import make_plan_id, workspace_state_token
from ..progress import Progress, Ticker
from ..write_op import WriteContext, WriteOperation, run_write
from .batch_delete import dataset_of_files
from .choices import _fmt_choices, maintenance_choices
from .reports import CompactReport, DatasetCompaction


def _count_file(path: Path, dead: set[str]) -> tuple[int, int]:
    """(rows_before, rows_after) that compaction of ``path`` produces (reads the id column only).

    Counted in Arrow (no Python string per row): on a clean workspace this read
    is all that compact costs, so it decides the "nothing pending" figure.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pq.read_table(path, columns=["prediction_id"]).column("prediction_id")
    before = len(ids)
    if dead:
        ids = ids.filter(pc.invert(pc.is_in(ids, value_set=pa.array(sorted(dead), type=ids.type))))
    return before, len(pc.unique(ids))


@dataclass
class _CompactPlan:
    files: list[tuple[str, str, int, int, int]]
    """(path, dataset name, rows_before, rows_after, bytes_before) per file."""
    pending: int
    plan_id: str


class Compact(WriteOperation[_CompactPlan, CompactReport]):
    name = "compact"
    label = "compact"

    def __init__(self, dataset_name: str | None) -> None:
        self.dataset_name = dataset_name

    def parameters(self) -> dict[str, Any]:
        return {"dataset_name": self.dataset_name}

    def validate(self, root: Path) -> None:
        require_current(root)
        if self.dataset_name is not None:
            known = sorted(set(dataset_of_files(root).values()) | set(maintenance_choices(root).datasets))
            if self.dataset_name not in known:
                raise InvalidArgumentError(
                    f"Unknown dataset {self.dataset_name!r}.", f"Valid choices: {_fmt_choices(known)}."
                )

    def _files(self, root: Path) -> dict[str, str]:
        names = dataset_of_files(root)
        if self.dataset_name is not None:
            target = str(parquet_path_for(root, self.dataset_name))
            names = {p: n for p, n in names.items() if p == target}
        return names

    def plan(self, root: Path, ticker: Ticker) -> _CompactPlan:
        names = self._files(root)
        tombstones = set(read_tombstones(root))
        dead = tombstones - live_prediction_ids(root) if tombstones else set()
        files = []
        for i, (path, name) in enumerate(names.items()):
            ticker.step(i / max(len(names), 1), f"Reading {Path(path).name}")
            before, after = _count_file(Path(path), dead)
            files.append((path, name, before, after, Path(path).stat().st_size))
        plan_id = make_plan_id("compact", self.parameters(), [], workspace_state_token(root, scores=False))
        return _CompactPlan(files, len(tombstones), plan_id)

    def preview(self, root: Path, plan: _CompactPlan) -> CompactReport:
        rows = [DatasetCompaction(n, p, b, a, b - a, size, None) for p, n, b, a, size in plan.files]
        return _compact_report(root, True, self.dataset_name, rows, plan.pending, False, plan.plan_id)

    def execute(self, root: Path, plan: _CompactPlan, ctx: WriteContext) -> CompactReport:
        arrays = api.array_store(root)
        rows: list[DatasetCompaction] = []
        cancelled = False
        todo = [f for f in plan.files if f[3] != f[2]]
        for path, name, before, after, size in plan.files:
            if after == before:  # nothing to apply: not rewritten (issue #14)
                rows.append(DatasetCompaction(name, path, before, before, 0, size, size))
        # Live ids are read once, under nirs4all's process lock held for the whole pass (as
        # compact_arrays does), so a concurrent delete cannot make a fresh tombstone look stale.
        with api.arrays_process_lock(arrays) if todo else _nothing():
            live = live_prediction_ids(root) if todo else set()
            for i, (_path, name, *_rest) in enumerate(todo):
                if ctx.ticker.cancelled:
                    cancelled = True
                    break
                ctx.ticker.step(i / max(len(todo), 1), f"Compacting {name} ({i + 1}/{len(todo)})")
                stats = api.compact_dataset_unlocked(arrays, name, live)
                rows.extend(_rows(root, name, stats))
        ctx.ticker.done("Cancelled" if cancelled else "Done")
        rows.sort(key=lambda r: r.file)
        return _compact_report(root, False, self.dataset_name, rows, plan.pending, cancelled, plan.plan_id)


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()


def _rows(root: Path, name: str, stats: dict[str, dict[str, Any]]) -> list[DatasetCompaction]:
    out = []
    for stem, s in stats.items():
        out.append(
            DatasetCompaction(
                name,
                str(root / layout.ARRAYS_DIR / f"{stem}.parquet"),
                int(s["rows_before"]),
                int(s["rows_after"]),
                int(s["rows_removed"]),
                int(s["bytes_before"]),
                int(s["bytes_after"]),
            )
        )
    return out


def _compact_report(
    root: Path,
    dry_run: bool,
    dataset_name: str | None,
    rows: list[DatasetCompaction],
    pending: int,
    cancelled: bool,
    plan_id: str,
) -> CompactReport:
    before = sum(r.rows_before for r in rows)
    after = sum(r.rows_after for r in rows)
    bytes_before = sum(r.bytes_before for r in rows)
    bytes_after = None if dry_run else sum(r.bytes_after or 0 for r in rows)
    return CompactReport(
        path=str(root),
        dry_run=dry_run,
        dataset_name=dataset_name,
        datasets=tuple(rows),
        rows_before=before,
        rows_after=after,
        rows_removed=before - after,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        bytes_reclaimed=None if bytes_after is None else max(bytes_before - bytes_after, 0),
        pending_tombstones_before=pending,
        cancelled=cancelled,
        plan_id=plan_id,
    )


def compact(
    root: Path,
    *,
    dataset_name: str | None = None,
    dry_run: bool = True,
    plan_id: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> CompactReport:
    """Apply pending deletes and rewrite the array files that have any (per dataset).

    ``dry_run=True`` (default) reports rows before/after per file without
    writing (``bytes_after`` is then None) and a ``plan_id``; progress and
    cancel are per dataset; a cancelled compaction leaves the remaining files
    as they were (still consistent).
    """
    op = Compact(dataset_name)
    return run_write(root, op, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
