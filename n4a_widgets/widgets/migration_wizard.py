"""``MigrationWizard``: migrate a legacy workspace safely, from a notebook."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import WorkspaceError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, bundle


class MigrationWizard(WorkspaceWidget):
    """Convert a legacy nirs4all workspace into the current format.

    ``display(MigrationWizard(path))`` shows what is on disk.  **Dry run**
    (``w.dry_run()``) reports what would be migrated and writes nothing;
    **Start** (``w.start()``) converts into a staging folder, verifies every
    prediction and array, then publishes (the original is kept, renamed, as
    the backup; or pass ``output=`` to leave it in place and write elsewhere).
    For an interrupted migration, **Resume** (``w.resume()``) or **Roll back**
    (``w.rollback()``).  ``w.cancel()`` stops a running job (source untouched),
    ``w.wait()`` blocks until it ends.  ``report`` holds ``MigrationReport.to_dict()``.
    """

    _esm = bundle("migration_wizard")

    status = t.Dict().tag(sync=True)
    """``Workspace.status()`` as a dict (refreshed after each job)."""
    stats = t.Dict().tag(sync=True)
    """Current size of the source, ``{"size_bytes": ..., "files": ...}``."""
    plan = t.Dict().tag(sync=True)
    """The last dry-run report (what Start will do)."""
    output = t.Unicode("").tag(sync=True)
    """Where to write the result; empty = replace the source and keep it as a backup."""

    def __init__(
        self, workspace: str | pathlib.Path | Workspace, *, output: str | pathlib.Path | None = None, **kwargs: Any
    ) -> None:
        super().__init__(workspace, **kwargs)
        if output is not None:
            self.output = str(output)
        if self.workspace is not None:
            try:
                self.refresh()
            except WorkspaceError as exc:
                self._show_error(exc)

    def _actions(self) -> dict[str, Callable[..., Any]]:
        return {
            **super()._actions(), "refresh": self.refresh, "dry_run": self.dry_run, "start": self.start,
            "resume": self.resume, "rollback": self.rollback, "set_output": self.set_output,
        }

    def set_output(self, output: str = "") -> None:
        """Choose the output folder ("" = migrate in place, keeping a backup)."""
        self.output = str(output or "")
        self.plan = {}

    def refresh(self) -> None:
        """Re-read the storage status (read-only, immediate)."""
        ws = self.workspace
        assert ws is not None
        from ..core.migration import tree_size

        self.status = ws.status().to_dict()
        self.stats = {"size_bytes": tree_size(ws.path)}

    def _out(self) -> str | None:
        return self.output or None

    def dry_run(self) -> None:
        """Report what would be migrated (rows, datasets, sizes, estimated time). Writes nothing."""
        ws = self.workspace
        assert ws is not None
        action = "resume" if self.status.get("storage_mode") == "mid_migration" else "auto"

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading the legacy store (read-only)")
            return ws.migrate(dry_run=True, output=self._out(), action=action, progress=progress,
                              cancel=cancel).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            self.plan = result
            self.report = result

        self._run("Dry run", work, writes=False, on_result=on_result)

    def start(self) -> None:
        """Migrate: build, verify everything, publish. The original is kept as the backup."""
        self._migrate("Migration", "auto")

    def resume(self) -> None:
        """Finish an interrupted migration (or rebuild it when it was not yet verified)."""
        self._migrate("Resume", "resume")

    def rollback(self) -> None:
        """Undo an interrupted migration: the original workspace is restored at its path."""
        self._migrate("Roll back", "rollback")

    def _migrate(self, name: str, action: str) -> None:
        ws = self.workspace
        assert ws is not None
        # Execute the previewed plan (refused if the source changed), when the preview was of this action.
        previewed = (action == "auto" and self.plan.get("action") == "migrate") or (
            action == "resume" and self.plan.get("state") == "mid_migration")
        plan_id = (self.plan.get("plan_id") or None) if previewed else None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.migrate(dry_run=False, output=self._out(), action=action, plan_id=plan_id,
                              progress=progress, cancel=cancel).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            self.report = result
            self.plan = {}
            self._refresh_quietly()

        self._run(name, work, writes=True, on_result=on_result)

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
