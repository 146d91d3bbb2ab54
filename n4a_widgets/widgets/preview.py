"""One preview → confirm flow for every widget that writes (dry run first; docs/ARCHITECTURE.md, "The write skeleton").

``preview_*()`` runs a dry run as a read-only background job and stores it in
the ``preview`` trait as ``{"operation", "inputs", "report"}``; ``confirm()``
executes *that* plan (its ``plan_id``) and nothing else, once;
``discard_preview()`` forgets it.  A preview whose inputs changed while it
ran is dropped, and subclasses discard the pending preview when an input
changes, so a plan only ever runs with the inputs it was previewed with.

``w.preview`` is the pending preview (a dict, ``{}`` when none); calling it,
``w.preview()``, runs the widget's main preview (the documented twin of the
Preview button).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import traitlets as t

from .. import jobs
from ..core.errors import InvalidArgumentError
from .base import WorkspaceWidget, action

Work = Callable[[Callable[[float, str], None], Any], Any]


class Preview(dict):  # type: ignore[type-arg]
    """The pending preview; calling it starts the owner's main preview."""

    __slots__ = ("_owner",)
    _owner: weakref.ReferenceType[Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner() if getattr(self, "_owner", None) is not None else None
        if owner is None:
            raise TypeError("this preview is not attached to a widget")
        return getattr(owner, owner._main_preview)(*args, **kwargs)


class PreviewTrait(t.Dict):  # type: ignore[type-arg]
    """A ``Dict`` trait whose value is a ``Preview`` bound (weakly) to its widget."""

    def validate(self, obj: Any, value: Any) -> Any:
        value = super().validate(obj, value)
        bound = Preview(value)
        bound._owner = weakref.ref(obj)
        return bound


def _as_dict(report: Any) -> dict[str, Any]:
    return report if isinstance(report, dict) else report.to_dict()


class PreviewConfirm(WorkspaceWidget):
    """Mixin base for MaintenancePanel, MergeStores and MigrationWizard.

    Subclasses implement ``_inputs_for(operation)`` (the inputs a plan depends
    on, compared when a preview lands) and ``_execute(operation, inputs,
    plan_id, force)`` (job name + work running the plan), and may override
    ``_after_confirm``.  ``_main_preview`` names the method ``w.preview()`` calls.
    """

    _main_preview: ClassVar[str] = ""

    preview = PreviewTrait().tag(sync=True)
    """The pending dry run: ``{"operation", "inputs", "report"}``, or ``{}``."""

    def _inputs_for(self, operation: str) -> dict[str, Any]:
        raise NotImplementedError

    def _execute(self, operation: str, inputs: dict[str, Any], plan_id: str | None,
                 force: bool) -> tuple[str, Work]:
        raise NotImplementedError

    def _after_confirm(self, operation: str, report: dict[str, Any]) -> None:
        self.report = report

    def _start_preview(self, operation: str, name: str, work: Work) -> jobs.Job:
        """Run the dry run ``work`` as a read-only job; store it unless its inputs changed meanwhile."""
        inputs = self._inputs_for(operation)
        self.preview = {}

        def done(report: Any) -> None:
            if self._inputs_for(operation) != inputs:  # stale: the user changed something meanwhile
                return
            self.preview = {"operation": operation, "inputs": inputs, "report": _as_dict(report)}

        return self._run(name, work, writes=False, on_result=done)

    @action
    def discard_preview(self) -> None:
        """Forget the pending preview (nothing runs)."""
        self.preview = {}

    @action
    def confirm(self, *, force: bool = False) -> jobs.Job:
        """Execute the previewed plan (and only it).  Raises when there is no preview.

        The preview is consumed: whether the plan runs or is refused because the
        workspace changed (``PlanChangedError``), a new preview is needed next time.
        """
        self._require_idle()
        pending = dict(self.preview)
        if not pending:
            raise InvalidArgumentError("Nothing to confirm.", "Press Preview first, then confirm what it shows.")
        operation = pending["operation"]
        name, work = self._execute(operation, dict(pending["inputs"]), pending["report"].get("plan_id"), force)
        job = self._run(name, work, writes=True, on_result=lambda r: self._after_confirm(operation, _as_dict(r)))
        self.preview = {}
        return job
