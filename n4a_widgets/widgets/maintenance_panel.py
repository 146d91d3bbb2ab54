"""``MaintenancePanel``: compact, clean dead links, remove the bottom %, integrity check."""

from __future__ import annotations

import pathlib
from typing import Any

import traitlets as t

from .. import jobs
from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.workspace import Workspace
from .base import action, bundle
from .preview import PreviewConfirm, Work

REMOVE_BOTTOM = "remove_bottom"
CLEAN_DEAD_LINKS = "clean_dead_links"


class MaintenancePanel(PreviewConfirm):
    """Tidy and prune a workspace safely: ``display(MaintenancePanel(path))``.

    Destructive actions always run in two steps: a preview (an exact dry run,
    read-only) and ``confirm()``, which executes *that* previewed plan
    (its ``plan_id``) and nothing else.  Changing any remove-bottom input
    clears the preview, so a plan can only run with the inputs it was
    previewed with; if the workspace changed in between, ``confirm()``
    refuses (``PlanChangedError``) and nothing is deleted.

    Python twins of the buttons (for scripts and runbooks):

    - ``compact()`` — apply pending deletes, rewrite array files (per dataset).
    - ``preview_clean_dead_links()`` then ``confirm()``.
    - ``preview_remove_bottom(fraction, metric=, partition=, dataset=)`` then ``confirm()``.
    - ``discard_preview()``, ``integrity_check()``, ``refresh()``, ``cancel()``, ``wait()``.

    Traits: ``fraction``, ``metric``, ``partition`` ("" = all), ``dataset``
    ("" = all) are the remove-bottom inputs; ``choices`` what the dropdowns
    offer; ``distribution`` the score histogram of the current choice
    (``core.maintenance.score_distribution``); ``preview`` the pending dry run
    (``{"operation", "inputs", "report"}``); ``report`` the last finished
    action's report and ``last_action`` its name; ``busy_reason`` why actions
    are unavailable right now.
    """

    _esm = bundle("maintenance_panel")
    _main_preview = "preview_remove_bottom"

    choices = t.Dict().tag(sync=True)
    fraction = t.Float(0.1).tag(sync=True)
    metric = t.Unicode("val_score").tag(sync=True)
    partition = t.Unicode("val").tag(sync=True)
    dataset = t.Unicode("").tag(sync=True)
    distribution = t.Dict().tag(sync=True)
    last_action = t.Unicode("").tag(sync=True)
    busy_reason = t.Unicode("").tag(sync=True)

    def __init__(self, workspace: str | pathlib.Path | Workspace, *, autoload: bool = True, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        if autoload:
            self._load_now()

    # ------------------------------------------------------------- inputs

    def _inputs(self) -> dict[str, Any]:
        return {
            "fraction": float(self.fraction),
            "metric": self.metric,
            "partition": self.partition or None,
            "dataset_name": self.dataset or None,
        }

    @t.observe("fraction", "metric", "partition", "dataset")
    def _on_input(self, change: dict[str, Any]) -> None:
        if self.preview.get("operation") == REMOVE_BOTTOM:
            self.preview = {}
        if change["name"] != "fraction" and self.workspace is not None:
            self._load_distribution()

    def _load_distribution(self, *, raise_errors: bool = False) -> None:
        from ..core.maintenance import score_distribution

        assert self.workspace is not None
        try:
            inputs = self._inputs()
            self.distribution = score_distribution(
                self.workspace, inputs["metric"], inputs["partition"], inputs["dataset_name"]
            ).to_dict()
        except WorkspaceError as exc:
            self.distribution = {}
            if raise_errors:
                raise
            self._show_error(exc)

    def _inputs_for(self, operation: str) -> dict[str, Any]:
        return self._inputs() if operation == REMOVE_BOTTOM else {}

    @action
    def refresh(self) -> jobs.Job:
        """Re-read the dropdown choices, the histogram and the busy reason (read-only, in the background)."""
        ws = self.workspace
        assert ws is not None

        def work(progress: Any, cancel: Any) -> None:
            progress(0.0, "Loading workspace…")
            self._reload()

        return self._run("Loading workspace", work, writes=False)

    def _reload(self) -> None:
        """The refresh itself, on the calling thread (a job's, after a change)."""
        from ..core.maintenance import maintenance_choices

        assert self.workspace is not None
        self.choices = maintenance_choices(self.workspace).to_dict()
        self._load_distribution(raise_errors=True)
        self.busy_reason = self._busy_reason()

    def _busy_reason(self) -> str:
        assert self.workspace is not None
        for job in jobs.active_jobs(self.workspace.path):
            if job is not self._job and job.writes:
                return f"'{job.name}' is running on this workspace in this kernel."
        return self.workspace.busy_reason() or ""

    # ------------------------------------------------------------ actions

    def _after_change(self, operation: str, report: Any) -> None:
        self.preview = {}
        self.report = report if isinstance(report, dict) else report.to_dict()
        self.last_action = operation
        try:
            self._reload()
        except WorkspaceError as exc:
            self._show_error(exc)

    @action
    def compact(self, *, force: bool = False) -> jobs.Job:
        """Apply pending deletes and rewrite the array files, one dataset at a time."""
        ws = self.workspace
        assert ws is not None
        return self._run(
            "Compact",
            lambda progress, cancel: ws.compact(dry_run=False, force=force, progress=progress, cancel=cancel),
            writes=True,
            on_result=lambda r: self._after_change("compact", r),
        )

    @action
    def integrity_check(self) -> jobs.Job:
        """Decode every array file and compare ids with the metadata (read-only; ``ws.health(deep=True)``)."""
        ws = self.workspace
        assert ws is not None

        def done(r: Any) -> None:
            self.report = r.to_dict()
            self.last_action = "integrity_check"

        return self._run(
            "Integrity check",
            lambda progress, cancel: ws.health(deep=True, progress=progress, cancel=cancel),
            writes=False,
            on_result=done,
        )

    @action
    def preview_clean_dead_links(self) -> jobs.Job:
        """Dry run of clean dead links: the exact predictions and array rows it would remove."""
        ws = self.workspace
        assert ws is not None
        return self._start_preview(
            CLEAN_DEAD_LINKS, "Preview clean dead links",
            lambda progress, cancel: ws.clean_dead_links(dry_run=True, progress=progress, cancel=cancel),
        )

    @action
    def preview_remove_bottom(
        self,
        fraction: float | None = None,
        metric: str | None = None,
        partition: str | None = None,
        dataset: str | None = None,
    ) -> jobs.Job:
        """Dry run of remove-bottom with the current inputs (arguments given here set them first).

        ``partition``/``dataset`` "" mean all.
        """
        ws = self.workspace
        assert ws is not None
        with self.hold_trait_notifications():
            if fraction is not None:
                self.fraction = float(fraction)
            if metric is not None:
                self.metric = metric
            if partition is not None:
                self.partition = partition
            if dataset is not None:
                self.dataset = dataset
        inputs = self._inputs()
        return self._start_preview(
            REMOVE_BOTTOM, "Preview remove bottom",
            lambda progress, cancel: ws.remove_bottom(**inputs, dry_run=True, progress=progress, cancel=cancel),
        )

    def _execute(self, operation: str, inputs: dict[str, Any], plan_id: str | None,
                 force: bool) -> tuple[str, Work]:
        ws = self.workspace
        assert ws is not None
        if operation == REMOVE_BOTTOM:
            return "Remove bottom", lambda progress, cancel: ws.remove_bottom(
                **inputs, dry_run=False, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
        if operation == CLEAN_DEAD_LINKS:
            return "Clean dead links", lambda progress, cancel: ws.clean_dead_links(
                dry_run=False, plan_id=plan_id, force=force, progress=progress, cancel=cancel)
        raise InvalidArgumentError(f"Unknown previewed operation {operation!r}.")  # pragma: no cover

    def _after_confirm(self, operation: str, report: dict[str, Any]) -> None:
        self._after_change(operation, report)
