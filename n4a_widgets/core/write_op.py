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

import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .errors import OperationCancelledError
from .guard import exclusive_write
from .plans import check_plan
from .progress import Progress, Ticker, as_ticker


class Plan(Protocol):
    plan_id: str


@dataclass
class WriteContext:
    """What an executing operation gets besides its plan.

    - ``before_delete(store, ids)`` must be called with the writable store
      open, inside the delete's transaction, before any of ``ids`` is deleted:
      the trash keeps what an undo needs (core/trash.py).
    - ``before_add(ids)`` before predictions with these ids are written: the
      intent is recorded, so an interrupted action can still be undone.
    - ``removed_ids`` / ``added_ids``: what the action committed (append as
      batches commit); the history and ``undo`` read them.
    """

    root: Path
    ticker: Ticker
    force: bool = False
    action_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    keep_trash: bool = False
    """False for calls outside ``run_write``'s recording (tests, helpers): the hooks then do nothing."""
    planned_added: list[str] = field(default_factory=list)

    def before_delete(self, store: Any, prediction_ids: list[str]) -> None:
        """Keep in the trash what restoring ``prediction_ids`` needs (rows, arrays, artifacts)."""
        if self.keep_trash and prediction_ids:
            from .crash import kill_point
            from .trash import keep

            keep(self.root, store, self.action_id, prediction_ids)
            kill_point("after_trash")

    def before_add(self, prediction_ids: list[str]) -> None:
        """Record that ``prediction_ids`` are about to be written (for undo after a crash)."""
        if self.keep_trash and prediction_ids:
            from .trash import write_ids

            self.planned_added.extend(prediction_ids)
            write_ids(self.root, self.action_id, removed=[], added=self.planned_added)


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

    def history_root(self, root: Path) -> Path | None:
        """Where the action is recorded (and its trash kept); None: not recorded.

        The workspace itself by default.  A migration, which must never write
        into its source, records into the workspace it publishes.
        """
        return root

    def recorded_parameters(self, report: ReportT) -> dict[str, Any] | None:
        """Extra parameters known only after executing (a migration's backup path), or None."""
        return None

    undoes: str | None = None
    """For an undo: the action it takes back (recorded with it)."""

    def state_token(self, root: Path) -> str | None:
        """A cheap fingerprint of everything ``plan`` depends on, or None (the default: always re-plan).

        When it is given and still equals the ``state_token`` attribute of the plan a dry
        run in this process just computed, the execution re-uses that plan instead of
        computing it again: the plan is a pure function of that state and the parameters,
        so it would come out the same (at 1M predictions, re-ranking remove-bottom's
        333k rows costs 1.3 s; the fingerprint 0.2 s).  The delete's own transaction
        re-checks the digest anyway.
        """
        return None

    def history_root_after(self, home: Path) -> Path:
        """Where the end record goes (an undone migration moved the recorded workspace aside)."""
        return home


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
        _remember(root, op, plan)
        ticker.done()
        return report
    with exclusive_write(root, op.name, force=force, marker=op.lock_marker(root), probe_writers=op.probe_writers):
        home = op.history_root(root)
        if home is not None:
            from .recovery import recover

            recover(home)  # finish the record of an action a crash interrupted (we hold the lock)
        plan = _previewed(root, op, plan_id) or op.plan(root, ticker.span(0.0, 0.1))
        check_plan(plan_id, plan.plan_id, op.label)
        ticker.check(op.label.capitalize())
        ctx = WriteContext(root, ticker.span(0.1, 1.0), force=force, keep_trash=home is not None)
        if home is None:
            return op.execute(root, plan, ctx)
        from . import history

        history.begin(
            home, ctx.action_id, op.name, parameters=op.parameters(), plan_id=plan.plan_id, undoes=op.undoes
        )
        from .crash import kill_point

        try:
            kill_point("after_begin")
            report = op.execute(root, plan, ctx)
            kill_point("before_end")
        except OperationCancelledError as exc:
            _finish(home, op, ctx, history.CANCELLED, None, str(exc))
            raise
        except BaseException as exc:
            _finish(home, op, ctx, history.FAILED, None, f"{type(exc).__name__}: {exc}")
            raise
        outcome = history.CANCELLED if getattr(report, "cancelled", False) else history.DONE
        _finish(home, op, ctx, outcome, report, "")
        return report


#: Plans of this process's latest dry runs, by (workspace, operation, plan_id); see ``state_token``.
_PREVIEWED: dict[tuple[str, str, str], Any] = {}
_PREVIEWED_MAX = 4
_PREVIEWED_LOCK = threading.Lock()


def _remember(root: Path, op: WriteOperation[Any, Any], plan: Any) -> None:
    if getattr(plan, "state_token", None) is None or type(op).state_token is WriteOperation.state_token:
        return
    with _PREVIEWED_LOCK:
        _PREVIEWED[(str(root), op.name, plan.plan_id)] = plan
        while len(_PREVIEWED) > _PREVIEWED_MAX:
            _PREVIEWED.pop(next(iter(_PREVIEWED)))


def _previewed(root: Path, op: WriteOperation[PlanT, Any], plan_id: str | None) -> PlanT | None:
    """The plan the dry run of ``plan_id`` computed, if the workspace is still in the state it saw."""
    if plan_id is None:
        return None
    with _PREVIEWED_LOCK:
        plan = _PREVIEWED.pop((str(root), op.name, plan_id), None)
    if plan is None:
        return None
    token = op.state_token(root)
    return plan if token is not None and token == plan.state_token else None


_COUNT_KEYS = (
    "removed", "added", "restored", "rows_removed", "removed_metadata", "removed_array_rows", "bytes_reclaimed",
    "purged_actions",
)


def _finish(
    home: Path, op: WriteOperation[Any, Any], ctx: WriteContext, outcome: str, report: Any, message: str
) -> None:
    """Write the action's ids (what undo takes back) and its ``end`` record."""
    from . import history, trash

    home = op.history_root_after(home)

    counts: dict[str, int] = {}
    if report is not None and hasattr(report, "to_dict"):
        for key, value in report.to_dict().items():
            if key in _COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
                counts[key] = value
    counts.setdefault("removed", len(ctx.removed_ids))
    counts.setdefault("added", len(ctx.added_ids))
    if ctx.removed_ids or ctx.added_ids:
        trash.write_ids(home, ctx.action_id, removed=ctx.removed_ids, added=ctx.added_ids)
    elif trash.trash_dir(home, ctx.action_id).exists():  # nothing was committed: nothing to undo
        shutil.rmtree(trash.trash_dir(home, ctx.action_id), ignore_errors=True)
    nbytes = trash.trash_size_of(home, ctx.action_id)
    extra = op.recorded_parameters(report) if report is not None else None
    params = {**op.parameters(), **extra} if extra else None
    history.finish(home, ctx.action_id, outcome, counts=counts, nbytes=nbytes, message=message, parameters=params)
