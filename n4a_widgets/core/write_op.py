"""The one skeleton every write runs through: plan → guard → re-plan → check → execute.

Every destructive operation (compact, clean dead links, remove bottom, merge,
migrate, undo, purge) is a ``WriteOperation``: a read-only ``plan`` that
returns an object with a ``plan_id``, a ``preview`` that turns that plan into
the dry-run report, and an ``execute`` that carries the plan out in batches.
``run_write`` is the only code that sequences them (docs/ARCHITECTURE.md,
"The write skeleton"):

1. ``validate`` — bad input fails before anything, even the lock, is touched;
2. dry run: ``plan`` then ``preview``; nothing is written;
3. execution: take ``exclusive_write`` (our job lock + no nirs4all writer),
   ``plan`` again from the current workspace, refuse with
   ``PlanChangedError`` unless it has the ``plan_id`` the user previewed,
   honour a Cancel pressed so far, then ``execute``.

So "dry run == real run" holds by construction: both reports come from the
same plan object.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .guard import exclusive_write
from .plans import check_plan
from .progress import Progress, Ticker, as_ticker


class Plan(Protocol):
    plan_id: str


@dataclass
class WriteContext:
    """What an executing operation gets besides its plan.

    ``before_delete(store, ids)`` must be called before any prediction is
    deleted (it is where whatever is needed to undo the delete is kept);
    ``added_ids``/``removed_ids`` are what the action did, for the history.
    """

    root: Path
    ticker: Ticker
    force: bool = False
    action_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)

    def before_delete(self, store: Any, prediction_ids: list[str]) -> None:
        """Hook run with the open writable store before ``prediction_ids`` are deleted."""


PlanT = TypeVar("PlanT", bound=Plan)
ReportT = TypeVar("ReportT")


class WriteOperation(Generic[PlanT, ReportT]):
    """One destructive operation, split into the steps ``run_write`` sequences."""

    name: str = "write"
    """Recorded in the lock holder (and the history): ``remove_bottom``, ``merge``..."""
    label: str = "write"
    """How messages name it: "remove-bottom", "merge"..."""
    probe_writers: bool = True
    """Refuse while a nirs4all run writes (False only where no 1.x run can write: legacy sources)."""

    def validate(self, root: Path) -> None:
        """Check the arguments against the workspace, read-only; raise before anything is locked."""

    def lock_marker(self, root: Path) -> Path | None:
        """Where the job lock lives (None: inside the workspace)."""
        return None

    def plan(self, root: Path, ticker: Ticker) -> PlanT:
        """Compute the exact plan from the workspace as it is now, read-only."""
        raise NotImplementedError

    def preview(self, root: Path, plan: PlanT) -> ReportT:
        """The dry-run report of ``plan`` (the same counts the execution reports)."""
        raise NotImplementedError

    def execute(self, root: Path, plan: PlanT, ctx: WriteContext) -> ReportT:
        """Carry ``plan`` out (the guard is held and the plan was checked); progress via ``ctx.ticker``."""
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        """The operation's arguments, as recorded with the action."""
        return {}


def run_write(
    root: Path,
    op: WriteOperation[PlanT, ReportT],
    *,
    dry_run: bool = True,
    plan_id: str | None = None,
    force: bool = False,
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
) -> ReportT:
    """Run ``op`` on ``root``: a dry run, or a guarded, plan-checked execution."""
    ticker = as_ticker(progress, cancel)
    op.validate(root)
    if dry_run:
        plan = op.plan(root, ticker.span(0.0, 0.95))
        report = op.preview(root, plan)
        ticker.done()
        return report
    with exclusive_write(root, op.name, force=force, marker=op.lock_marker(root), probe_writers=op.probe_writers):
        plan = op.plan(root, ticker.span(0.0, 0.1))
        check_plan(plan_id, plan.plan_id, op.label)
        ticker.check(op.label.capitalize())
        ctx = WriteContext(root, ticker.span(0.1, 1.0), force=force)
        return op.execute(root, plan, ctx)
