"""Clean dead links: predictions without arrays, array rows without a prediction.

Array rows of predictions already deleted (pending tombstones) are not
orphans: ``compact`` reclaims them.  A ``WriteOperation`` run by ``run_write``;
what it deletes goes to the trash first (``ctx.before_delete``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..arrays_readonly import read_tombstones, scan_array_files
from ..errors import CorruptStoreError
from ..paths import require_current, store_db
from ..plans import make_plan_id, metadata_digest, workspace_state_token
from ..progress import Progress, Ticker
from ..readonly_sqlite import open_readonly
from ..write_op import WriteContext, WriteOperation, run_write
from .batch_delete import delete_in_batches
from .reports import BATCH_SIZE, CleanDeadLinksReport, DatasetOrphans


@dataclass
class _CleanPlan:
    meta_orphans: list[str]
    array_orphans: list[str]
    datasets: list[DatasetOrphans]
    array_datasets: list[str]
    digest: str
    plan_id: str

    def report(
        self, root: Path, *, dry: bool, removed_meta: Sequence[str], removed_arrays: int, cancelled: bool = False
    ) -> CleanDeadLinksReport:
        return CleanDeadLinksReport(
            path=str(root),
            dry_run=dry,
            metadata_orphan_count=len(self.meta_orphans),
            metadata_orphan_ids=tuple(self.meta_orphans),
            array_orphan_count=len(self.array_orphans),
            array_orphan_ids=tuple(self.array_orphans),
            removed_metadata=len(removed_meta),
            removed_array_rows=removed_arrays,
            datasets=tuple(self.datasets),
            plan_id=self.plan_id,
            cancelled=cancelled,
        )


def _plan_clean(root: Path) -> _CleanPlan:
    with open_readonly(store_db(root)) as conn:
        meta: dict[str, str] = {
            str(pid): str(ds or "") for pid, ds in conn.execute("SELECT prediction_id, dataset_name FROM predictions")
        }
        digest = metadata_digest(conn)
    scan = scan_array_files(root)
    if scan.corrupt_files:
        raise CorruptStoreError(
            "Cannot look for dead links while array file(s) are unreadable: "
            + ", ".join(Path(p).name for p in scan.corrupt_files)
            + " (every prediction of those datasets would look orphaned).",
            "Restore the file(s) from a backup, or export what is readable; nothing was changed.",
        )
    tombstones = set(read_tombstones(root))
    array_ids = scan.all_ids
    meta_orphans = sorted(set(meta) - array_ids)
    per_ds: dict[str, list[int]] = {}
    for pid in meta_orphans:
        per_ds.setdefault(meta[pid], [0, 0])[0] += 1
    array_orphans: list[str] = []
    array_datasets: list[str] = []
    for ds, ids in sorted(scan.ids_by_dataset.items()):
        orphans = ids - set(meta) - tombstones
        if orphans:
            per_ds.setdefault(ds, [0, 0])[1] += len(orphans)
            array_orphans.extend(orphans)
            array_datasets.append(ds)
    array_orphans.sort()
    datasets = [DatasetOrphans(ds, m, a) for ds, (m, a) in sorted(per_ds.items())]
    plan_id = make_plan_id("clean_dead_links", {}, [*meta_orphans, *array_orphans], workspace_state_token(root, digest))
    return _CleanPlan(meta_orphans, array_orphans, datasets, array_datasets, digest, plan_id)


class CleanDeadLinks(WriteOperation[_CleanPlan, CleanDeadLinksReport]):
    name = "clean_dead_links"
    label = "clean dead links"

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        self.batch_size = batch_size

    def validate(self, root: Path) -> None:
        require_current(root)

    def plan(self, root: Path, ticker: Ticker) -> _CleanPlan:
        ticker.step(0.0, "Comparing metadata with array files")
        return _plan_clean(root)

    def preview(self, root: Path, plan: _CleanPlan) -> CleanDeadLinksReport:
        return plan.report(root, dry=True, removed_meta=plan.meta_orphans, removed_arrays=len(plan.array_orphans))

    def execute(self, root: Path, plan: _CleanPlan, ctx: WriteContext) -> CleanDeadLinksReport:
        if not plan.meta_orphans and not plan.array_orphans:
            ctx.ticker.done("Nothing to clean")
            return plan.report(root, dry=False, removed_meta=[], removed_arrays=0)
        done, cancelled = delete_in_batches(
            root,
            plan.meta_orphans,
            plan.digest,
            ctx,
            array_orphans=plan.array_orphans,
            compact_datasets=plan.array_datasets,
            batch_size=self.batch_size,
        )
        return plan.report(
            root,
            dry=False,
            removed_meta=done,
            removed_arrays=0 if cancelled else len(plan.array_orphans),
            cancelled=cancelled,
        )

    def parameters(self) -> dict[str, Any]:
        return {}


def clean_dead_links(
    root: Path,
    *,
    dry_run: bool = True,
    plan_id: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
    batch_size: int = BATCH_SIZE,
) -> CleanDeadLinksReport:
    """Delete predictions that have no arrays and array rows that have no prediction.

    Refuses while any array file is unreadable.  Dry run by default; see
    ``remove_bottom`` for ``plan_id`` and ``force``.
    """
    op = CleanDeadLinks(batch_size)
    return run_write(root, op, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
