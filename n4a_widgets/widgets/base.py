"""Common widget plumbing: job state traits, button messages, method twins.

Python owns job state (``state``, ``progress``, ``message``, ``report``,
``error``); the JS front-end only renders it and sends button clicks as
custom messages ``{"action": name, "args": {...}}``.  Every action is a
public Python method marked with ``@action`` (collected per class in
``__init_subclass__``, the way anywidget's experimental ``@command`` is), so
runbooks and tests drive widgets without a browser and the page can only
call what a class declares.  See docs/ARCHITECTURE.md ("one click").
"""

from __future__ import annotations

import inspect
import os
import pathlib
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import anywidget
import traitlets as t

from .. import jobs
from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.workspace import Workspace, as_workspace
from .messages import user_error

STATIC = pathlib.Path(__file__).parent.parent / "static"

STATES = ("idle", "running", "done", "error", "cancelled")
"""The closed set of ``state`` values (``jobs`` uses the last four)."""

F = TypeVar("F", bound=Callable[..., Any])

_ACTION_ATTR = "_n4a_action_names"


def _asset(path: pathlib.Path) -> str | pathlib.Path:
    """The text of a built asset, read once at import.

    Given a *path*, anywidget connects every instance to a class-level file
    watcher signal (a strong reference: no widget could ever be collected) and
    reads the file again per widget.  Text avoids both.  With ``ANYWIDGET_HMR``
    set (front-end development) the path is kept so edits reload live.
    """
    if os.environ.get("ANYWIDGET_HMR"):
        return path
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: build the front-end first (npm run build).") from None


def bundle(name: str) -> pathlib.Path:
    """Path of the built ES module for widget ``name`` (built at install).

    Widget classes set ``_esm = bundle(...)``; ``WorkspaceWidget`` turns it into
    the file's text when the class is made (see ``_asset``).
    """
    return STATIC / f"{name}.js"


def action(fn: F | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
    """Mark a method as a button handler: the page may send ``{"action": <method name>}``.

    ``aliases`` are extra action names for the same method (old front-ends,
    old runbooks).  Only marked methods can be called from the page.
    """

    def mark(f: F) -> F:
        setattr(f, _ACTION_ATTR, (f.__name__, *aliases))
        return f

    return mark(fn) if fn is not None else mark


def _collect_actions(cls: type) -> dict[str, str]:
    """Action name -> attribute name, base classes first so subclasses win."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            for name in getattr(value, _ACTION_ATTR, ()):
                found[name] = attr
    return found


class WorkspaceWidget(anywidget.AnyWidget):
    """Base class: one workspace, one job at a time, state synced to the page.

    Keyword arguments must name a public trait (``TypeError`` otherwise, as in
    lonboard), so a typo such as ``MaintenancePanel(ws, fracton=0.2)`` fails
    loudly instead of being ignored.
    """

    _css = _asset(STATIC / "widgets.css")
    _actions: ClassVar[dict[str, str]] = {}

    workspace_path = t.Unicode("").tag(sync=True)
    state = t.Enum(STATES, default_value="idle").tag(sync=True)
    progress = t.Float(0.0).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    elapsed = t.Float(0.0).tag(sync=True)
    job_name = t.Unicode("").tag(sync=True)
    report = t.Dict().tag(sync=True)
    error = t.Dict().tag(sync=True)

    workspace: Workspace | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        for key in ("_esm", "_css"):
            value = cls.__dict__.get(key)
            if isinstance(value, pathlib.Path):
                setattr(cls, key, _asset(value))
        super().__init_subclass__(**kwargs)
        cls._actions = _collect_actions(cls)

    def __init__(self, workspace: str | pathlib.Path | Workspace, **kwargs: Any) -> None:
        self._check_kwargs(kwargs)
        self._job: jobs.Job | None = None
        self._loading: jobs.Job | None = None
        try:
            ws = as_workspace(workspace)
        except WorkspaceError as exc:
            super().__init__(**kwargs)
            self.workspace = None
            self.workspace_path = str(workspace)
            self._show_error(exc)
            return
        # Shown to people: normalised ("…/notebooks/../ws" reads as "…/ws").
        super().__init__(workspace_path=os.path.normpath(ws.path), **kwargs)
        self.workspace = ws
        self.on_msg(self._on_message)

    @classmethod
    def _check_kwargs(cls, kwargs: dict[str, Any]) -> None:
        allowed = {name for name in cls.class_trait_names() if not name.startswith("_")}
        unknown = sorted(k for k in kwargs if k not in allowed)
        if unknown:
            raise TypeError(
                f"{cls.__name__}() got unexpected keyword argument(s): {', '.join(unknown)}. "
                f"See help({cls.__name__}) for the options it accepts."
            )

    # ------------------------------------------------------------ messages

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            self._dispatch(content)
        except Exception as exc:  # noqa: BLE001 - shown in the error area, not as a traceback
            self._show_error(exc)

    def _dispatch(self, content: Any) -> Any:
        """Call the ``@action`` method the page asked for; anything else is an InvalidArgumentError."""
        name = content.get("action") if isinstance(content, dict) else None
        attr = self._actions.get(name) if isinstance(name, str) else None
        if attr is None:
            raise InvalidArgumentError(
                f"The page asked for an action this widget does not have ({name!r}).",
                "Run the cell again to reload the widget; if it persists, please report it.",
            )
        args = content.get("args") or {}
        method = getattr(self, attr)
        try:
            bound = inspect.signature(method).bind(**args) if isinstance(args, dict) else None
        except TypeError as exc:
            bound = None
            detail = f" ({exc})"
        else:
            detail = ""
        if bound is None:
            raise InvalidArgumentError(
                f"The page sent unexpected options for {name!r}{detail}.",
                "Run the cell again to reload the widget; if it persists, please report it.",
            )
        return method(*bound.args, **bound.kwargs)

    @classmethod
    def action_names(cls) -> list[str]:
        """The actions the page may send to this widget (its buttons)."""
        return sorted(cls._actions)

    def refresh(self) -> None:
        """Re-read what the widget shows.  Subclasses override it."""

    def _load_now(self) -> None:
        """Start ``refresh()`` at construction; a WorkspaceError lands in the error area.

        Widgets load in a background job, so the cell returns at once and the
        page paints "Loading workspace…" (never an empty workspace that is not
        known to be empty).  The first action waits for that load to end.
        """
        if self.workspace is None:
            return
        try:
            self.refresh()
        except WorkspaceError as exc:
            self._show_error(exc)
        else:
            self._loading = self._job

    def _show_error(self, exc: BaseException) -> None:
        self.error = user_error(exc, type(self).__name__)
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
        loading, self._loading = self._loading, None
        if loading is not None and loading is not self._job:
            loading = None
        if loading is not None and threading.current_thread() is not loading.thread:
            loading.wait()  # one job at a time per widget: let the first load finish
        widget_name = type(self).__name__

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
            if update.exception is not None:
                self.error = user_error(update.exception, widget_name)
            elif update.state == jobs.RUNNING:
                self.error = {}
            self.state = update.state

        self.job_name = name
        self._job = jobs.start_job(name, self.workspace.path, work, on_update=on_update, writes=writes)
        return self._job

    @action
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

    def _require_idle(self) -> None:
        if self.busy:
            raise WorkspaceError(f"'{self.job_name}' is running.", "Wait for it to finish or press Cancel first.")


WorkspaceWidget._actions = _collect_actions(WorkspaceWidget)
