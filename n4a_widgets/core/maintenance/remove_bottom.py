"""Remove the worst ``fraction`` of predictions, ranked as nirs4all ranks them.

A ``WriteOperation`` run by ``run_write`` (core/write_op.py): the plan is the
exact list of ids, computed read-only; the execution re-plans under the guard,
checks the ``plan_id``, hands the ids to ``ctx.before_delete`` (the trash keeps
what an undo needs) and deletes them in batches (``batch_delete``).  The
ranking rules are in ``choices``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import require_current, store_db
from ..plans import SCORE_COLUMNS, make_plan_id, metadata_digest, workspace_state_token
from ..progress import Progress, Ticker
from ..readonly_sqlite import open_readonly
from ..write_op import WriteContext, WriteOperation, run_write
from .batch_delete import delete_in_batches
from .choices import _float_or_none, _ranked_groups, _scope_frame, _validate_remove_bottom
from .reports import BATCH_SIZE, DatasetCut, MetricGroupCut, RemoveBottomReport


@dataclass
class _RemovePlan:
    fraction: float
    metric: str
    partition: str | None
    dataset_name: str | None
    total: int
    ids: list[str]
    groups: list[MetricGroupCut]
    datasets: list[DatasetCut]
    digest: str
    plan_id: str = ""
    state_token: str = ""

    def report(
        self,
        root: Path,
        *,
        dry_run: bool,
        removed_ids: Sequence[str] | None = None,
        cancelled: bool = False,
    ) -> RemoveBottomReport:
        ids = sorted(self.ids if removed_ids is None else removed_ids)
        datasets = self.datasets
        if removed_ids is not None and len(removed_ids) != len(self.ids):
            done = set(removed_ids)
            by_ds: dict[str, int] = {}
            for pid, ds in self._id_dataset.items():
                if pid in done:
                    by_ds[ds] = by_ds.get(ds, 0) + 1
            datasets = [
                DatasetCut(
                    d.dataset_name, d.total, by_ds.get(d.dataset_name, 0), d.total - by_ds.get(d.dataset_name, 0)
                )
                for d in self.datasets
            ]
        threshold = self.groups[0].threshold_score if len(self.groups) == 1 else None
        return RemoveBottomReport(
            path=str(root),
            dry_run=dry_run,
            fraction=self.fraction,
            metric=self.metric,
            partition=self.partition,
            dataset_name=self.dataset_name,
            total=self.total,
            planned=len(self.ids),
            removed=len(ids),
            remaining=self.total - len(ids),
            threshold_score=threshold,
            groups=tuple(self.groups),
            datasets=tuple(datasets),
            prediction_ids=tuple(ids),
            plan_id=self.plan_id,
            cancelled=cancelled,
        )

    _id_dataset: dict[str, str] = field(default_factory=dict)


def _plan_remove_bottom(
    root: Path, fraction: Any, metric: str, partition: str | None, dataset_name: str | None
) -> _RemovePlan:
    import polars as pl

    with open_readonly(store_db(root)) as conn:
        value = _validate_remove_bottom(conn, fraction, metric, partition, dataset_name)
        frame = _scope_frame(conn, metric, partition, dataset_name)
        digest = metadata_digest(conn, scores=_digest_scores(metric))
    groups: list[MetricGroupCut] = []
    removals = []
    for name, ascending, ordered in _ranked_groups(frame, metric):
        n = ordered.height
        k = int(n * value)
        tail = ordered.tail(k) if k else ordered.clear()
        removals.append(tail)
        threshold = _float_or_none(tail["score"][0]) if k else None
        worst_kept = _float_or_none(ordered["score"][n - k - 1]) if n - k > 0 else None
        groups.append(MetricGroupCut(name, ascending, n, k, threshold, worst_kept))
    removed = pl.concat(removals) if removals else frame.clear()
    ids = removed["prediction_id"].to_list()
    totals = frame.group_by("dataset_name").len()
    gone = removed.group_by("dataset_name").len()
    gone_by = dict(zip(gone["dataset_name"].to_list(), gone["len"].to_list(), strict=True))
    datasets = [
        DatasetCut(str(ds), int(n), int(gone_by.get(ds, 0)), int(n) - int(gone_by.get(ds, 0)))
        for ds, n in sorted(
            zip(totals["dataset_name"].to_list(), totals["len"].to_list(), strict=True), key=lambda x: str(x[0])
        )
    ]
    plan = _RemovePlan(value, metric, partition, dataset_name, frame.height, ids, groups, datasets, digest)
    plan._id_dataset = dict(zip(ids, removed["dataset_name"].to_list(), strict=True))
    params = {"fraction": value, "metric": metric, "partition": partition, "dataset_name": dataset_name}
    plan.state_token = workspace_state_token(root, digest)
    plan.plan_id = make_plan_id("remove_bottom", params, ids, plan.state_token)
    return plan


def _digest_scores(metric: str) -> bool | str:
    """What remove-bottom's digest covers: its own score column (index-covered), else every score."""
    return metric if metric in SCORE_COLUMNS else True


class RemoveBottom(WriteOperation[_RemovePlan, RemoveBottomReport]):
    name = "remove_bottom"
    label = "remove-bottom"

    def __init__(
        self, fraction: Any, metric: str, partition: str | None, dataset_name: str | None, batch_size: int
    ) -> None:
        self.fraction, self.metric, self.partition, self.dataset_name = fraction, metric, partition, dataset_name
        self.batch_size = batch_size

    def parameters(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction,
            "metric": self.metric,
            "partition": self.partition,
            "dataset_name": self.dataset_name,
        }

    def validate(self, root: Path) -> None:
        require_current(root)
        with open_readonly(store_db(root)) as conn:
            _validate_remove_bottom(conn, self.fraction, self.metric, self.partition, self.dataset_name)

    def plan(self, root: Path, ticker: Ticker) -> _RemovePlan:
        ticker.step(0.0, "Ranking predictions")
        return _plan_remove_bottom(root, self.fraction, self.metric, self.partition, self.dataset_name)

    def preview(self, root: Path, plan: _RemovePlan) -> RemoveBottomReport:
        return plan.report(root, dry_run=True)

    def state_token(self, root: Path) -> str | None:
        with open_readonly(store_db(root)) as conn:
            digest = metadata_digest(conn, scores=_digest_scores(self.metric))
        return workspace_state_token(root, digest)

    def execute(self, root: Path, plan: _RemovePlan, ctx: WriteContext) -> RemoveBottomReport:
        datasets = [d.dataset_name for d in plan.datasets if d.removed]
        done, cancelled = delete_in_batches(
            root, plan.ids, plan.digest, ctx, compact_datasets=datasets, batch_size=self.batch_size
        )
        return plan.report(root, dry_run=False, removed_ids=done, cancelled=cancelled)


def remove_bottom(
    root: Path,
    fraction: float,
    *,
    metric: str = "val_score",
    partition: str | None = "val",
    dataset_name: str | None = None,
    dry_run: bool = True,
    plan_id: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
    batch_size: int = BATCH_SIZE,
) -> RemoveBottomReport:
    """Remove the worst ``fraction`` of predictions (ranking: see ``choices``).

    ``dry_run=True`` (default) is read-only and returns the exact plan with its
    ``plan_id``.  ``dry_run=False`` executes; with ``plan_id`` it refuses
    (``PlanChangedError``) unless the plan is still the same.  ``partition=None``
    or ``dataset_name=None`` mean all.  ``force`` overrides a stale job marker
    or a run left 'running' by a crashed process.
    """
    op = RemoveBottom(fraction, metric, partition, dataset_name, batch_size)
    return run_write(root, op, dry_run=dry_run, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
