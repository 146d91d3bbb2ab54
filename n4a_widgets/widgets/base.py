"""Common widget plumbing: job state traits, button messages, method twins.

Python owns job state (``state``, ``progress``, ``message``, ``report``,
``error``); the JS front-end only renders it and sends button clicks as
custom messages ``{"action": name, ...}``.  Every action is also a public
Python method, so runbooks and tests drive widgets without a browser.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from .. import jobs
from ..core.errors import WorkspaceError
from ..core.workspace import Workspace, as_workspace

STATIC = pathlib.Path(__file__).parent.parent / "static"


def bundle(name: str) -> pathlib.Path:
    """Path of the built ES module for widget ``name`` (built at install)."""
    return STATIC / f"{name}.js"


class WorkspaceWidget(anywidget.AnyWidget):
    """Base class: one workspace, one job at a time, state synced to the page."""

    _css = STATIC / "widgets.css"

    workspace_path = t.Unicode("").tag(sync=True)
    state = t.Unicode("idle").tag(sync=True)
    """idle / running / done / error / cancelled"""
    progress = t.Float(0.0).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    elapsed = t.Float(0.0).tag(sync=True)
    job_name = t.Unicode("").tag(sync=True)
    report = t.Dict().tag(sync=True)
    error = t.Dict().tag(sync=True)

    workspace: Workspace | None

    def __init__(self, workspace: str | pathlib.Path | Workspace, **kwargs: Any) -> None:
        self._job: jobs.Job | None = None
        try:
            ws = as_workspace(workspace)
        except WorkspaceError as exc:
            super().__init__(**kwargs)
            self.workspace = None
            self.workspace_path = str(workspace)
            self.state = "error"
            self.error = exc.to_dict()
            return
        super().__init__(workspace_path=str(ws.path), **kwargs)
        self.workspace = ws
        self.on_msg(self._on_message)

    # ------------------------------------------------------------ messages

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        handler = self._actions().get(str(action))
        if handler is None:
            return
        args = content.get("args") or {}
        try:
            handler(**args)
        except WorkspaceError as exc:
            self._show_error(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the error area, not as a traceback
            self._show_error(exc)

    def _actions(self) -> dict[str, Callable[..., Any]]:
        """Button name -> Python twin.  Subclasses extend this."""
        return {"cancel": self.cancel}

    def refresh(self) -> None:
        """Re-read what the widget shows.  Subclasses override it."""

    def _load_now(self) -> None:
        """Run ``refresh()`` at construction; a WorkspaceError lands in the error area."""
        if self.workspace is None:
            return
        try:
            self.refresh()
        except WorkspaceError as exc:
            self._show_error(exc)

    def _show_error(self, exc: BaseException) -> None:
        self.error = jobs.error_to_dict(exc)
        self.state = "error"

    # ---------------------------------------------------------------- jobs

    def _run(
        self,
        name: str,
        work: Callable[[Callable[[float, str], None], threading.Event], Any],
        *,
        writes: bool,
        on_result: Callable[[Any], None] | None = None,
    ) -> jobs.Job:
        """Start ``work`` as a background job and mirror it into the traits."""
        if self.workspace is None:
            raise WorkspaceError(self.error.get("message", "No workspace."))

        def on_update(update: jobs.JobUpdate) -> None:
            self.progress = update.progress
            self.message = update.message
            self.elapsed = round(update.elapsed, 1)
            if update.state == jobs.DONE and on_result is not None:
                try:
                    on_result(update.result)
                except Exception as exc:  # noqa: BLE001
                    self._show_error(exc)
                    return
            if update.error is not None:
                self.error = update.error
            elif update.state == jobs.RUNNING:
                self.error = {}
            self.state = update.state

        self.job_name = name
        self._job = jobs.start_job(name, self.workspace.path, work, on_update=on_update, writes=writes)
        return self._job

    def cancel(self) -> None:
        """Cancel the running job (the Cancel button)."""
        if self._job is not None:
            self._job.cancel()

    def wait(self, timeout: float | None = 120) -> bool:
        """Block until the current job ends (for scripts and tests)."""
        job = self._job
        return True if job is None else job.wait(timeout)

    @property
    def busy(self) -> bool:
        return self.state == "running"
