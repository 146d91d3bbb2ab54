"""``MigrationWizard``: migrate a legacy workspace safely, from a notebook."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.workspace import Workspace
from .base import action, bundle
from .preview import PreviewConfirm, Work

MIGRATE = "migrate"


class MigrationWizard(PreviewConfirm):
    """Convert a legacy nirs4all workspace into the current format.

    ``display(MigrationWizard(path))`` shows what is on disk.  Two steps, like
    every write here: **Preview** (``w.preview_migration()``, also
    ``w.preview()`` or the old ``w.dry_run()``) reports what would be migrated,
    where the original will be kept (``preview["report"]["backup_path"]``), and
    writes nothing; **Start** (``w.confirm()``, old name ``w.start()``)
    converts into a staging folder, verifies every prediction and array, then
    publishes that plan (the original kept, renamed, as the backup the preview
    named; or set ``output`` to leave it in place and write elsewhere).  Start
    without a preview is refused.  For an interrupted migration, **Resume**
    (``w.resume()``) or **Roll back** (``w.rollback()``).  ``w.cancel()`` stops
    a running job (source untouched), ``w.wait()`` blocks until it ends.
    ``report`` holds the executed ``MigrationReport.to_dict()``.
    """

    _esm = bundle("migration_wizard")
    _main_preview = "preview_migration"

    status = t.Dict().tag(sync=True)
    """``Workspace.status()`` as a dict (refreshed after each job)."""
    stats = t.Dict().tag(sync=True)
    """Current size of the source, ``{"size_bytes": ..., "files": ...}``."""
    plan = t.Dict().tag(sync=True)
    """Alias: ``preview["report"]`` (what Start will do), ``{}`` when nothing is previewed."""
    output = t.Unicode("").tag(sync=True)
    """Where to write the result; empty = replace the source and keep it as a backup."""
    health = t.Dict().tag(sync=True)
    """After "Open StorageHealth": the traits of a StorageHealth of the migrated workspace."""

    _HEALTH_TRAITS = ("workspace_path", "state", "progress", "message", "elapsed", "job_name", "report", "error",
                      "status", "stats", "usage_notes")

    def __init__(
        self, workspace: str | pathlib.Path | Workspace, *, output: str | pathlib.Path | None = None, **kwargs: Any
    ) -> None:
        self._health: Any = None
        super().__init__(workspace, **kwargs)
        if output is not None:
            self.output = str(output)
        self._load_now()

    @t.observe("preview")
    def _mirror_preview(self, change: dict[str, Any]) -> None:
        self.plan = dict(change["new"].get("report") or {})

    @t.observe("output")
    def _on_output(self, _change: dict[str, Any]) -> None:
        self.discard_preview()

    @action
    def set_output(self, output: str = "") -> None:
        """Choose the output folder ("" = migrate in place, keeping a backup)."""
        self._require_idle()
        self.output = str(output or "")

    @action
    def refresh(self) -> None:
        """Re-read the storage status (read-only, immediate)."""
        ws = self.workspace
        assert ws is not None
        from ..core.migration import tree_size

        self.status = ws.status().to_dict()
        self.stats = {"size_bytes": tree_size(ws.path)}

    def _out(self) -> str | None:
        return self.output or None

    def _inputs_for(self, operation: str) -> dict[str, Any]:
        action_name = "resume" if self.status.get("storage_mode") == "mid_migration" else "auto"
        return {"output": self._out(), "action": action_name}

    @action(aliases=("dry_run",))
    def preview_migration(self) -> Any:
        """Report what would be migrated (rows, datasets, sizes, estimated time, backup name). Writes nothing."""
        ws = self.workspace
        assert ws is not None
        inputs = self._inputs_for(MIGRATE)

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading the legacy store (read-only)")
            return ws.migrate(dry_run=True, output=inputs["output"], action=inputs["action"], progress=progress,
                              cancel=cancel).to_dict()

        return self._start_preview(MIGRATE, "Dry run", work)

    dry_run = preview_migration

    @action
    def start(self, *, force: bool = False) -> Any:
        """Run the previewed migration (the Start button); refused without a preview."""
        if not self.preview:
            raise InvalidArgumentError(
                "Preview the migration first.",
                "Press Preview: it shows what will be converted and where the original will be kept; "
                "then press Start.",
            )
        return self.confirm(force=force)

    def _execute(self, operation: str, inputs: dict[str, Any], plan_id: str | None,
                 force: bool) -> tuple[str, Work]:
        return ("Migration" if inputs["action"] == "auto" else "Resume"), self._work(inputs["action"], inputs["output"],
                                                                                      plan_id, force)

    def _work(self, action_name: str, output: str | None, plan_id: str | None, force: bool) -> Work:
        ws = self.workspace
        assert ws is not None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.migrate(dry_run=False, output=output, action=action_name, plan_id=plan_id, force=force,
                              progress=progress, cancel=cancel).to_dict()

        return work

    def _after_confirm(self, operation: str, report: dict[str, Any]) -> None:
        self.report = report
        self._refresh_quietly()

    @action
    def resume(self) -> None:
        """Finish an interrupted migration (or rebuild it when it was not yet verified)."""
        self._recover("Resume", "resume")

    @action
    def rollback(self) -> None:
        """Undo an interrupted migration: the original workspace is restored at its path."""
        self._recover("Roll back", "rollback")

    def _recover(self, name: str, action_name: str) -> None:
        self._require_idle()
        self.discard_preview()
        self._run(name, self._work(action_name, self._out(), None, False), writes=True,
                  on_result=lambda r: self._after_confirm(action_name, r))

    @action
    def open_storage_health(self) -> Any:
        """Check the migrated workspace: a ``StorageHealth`` of it, shown inside the wizard and returned."""
        from .storage_health import StorageHealth

        target = self.report.get("output_path") if self.report.get("state") == "published" else None
        if not target:
            raise InvalidArgumentError("There is no migrated workspace to open yet.", "Run the migration first.")
        if self._health is not None:
            self._health.close()
        widget = StorageHealth(target)
        self._health = widget

        def mirror(_change: Any = None) -> None:
            self.health = {name: getattr(widget, name) for name in self._HEALTH_TRAITS}

        widget.observe(mirror, names=list(self._HEALTH_TRAITS))
        mirror()
        return widget

    @action
    def health_action(self, content: dict[str, Any]) -> None:
        """A button of the embedded StorageHealth (its errors land in its own error area)."""
        if self._health is None:
            raise InvalidArgumentError("StorageHealth is not open.", "Press Open StorageHealth first.")
        self._health._on_message(self._health, content, [])

    def close(self) -> None:
        """Close the widget and the StorageHealth it opened."""
        if self._health is not None:
            self._health.close()
            self._health = None
        super().close()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except WorkspaceError:
            pass

    def wait(self, timeout: float | None = 600) -> bool:
        """Block until the current job ends; then the status is re-read."""
        done = super().wait(timeout)
        if done and self.workspace is not None and self.state in ("error", "cancelled"):
            self._refresh_quietly()
        return done
