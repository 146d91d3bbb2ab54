"""``WorkspaceBrowser``: every workspace under a folder, and bulk migrate / compact / merge.

The table is ``scan_workspaces(root)`` (read-only, filled progressively, then
a quick health check per current workspace fills the Health column).  Bulk
actions follow the preview -> confirm flow of the other widgets: a preview is
one dry run per workspace (``core.fleet.bulk``), ``confirm()`` executes
exactly those plans, one report row per workspace; a failure in one does not
stop the others and every write goes through that workspace's own guarded
method.  The page sorts and filters rows itself (view state only).
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.fleet import bulk
from ..core.workspace import Workspace
from .base import action, bundle
from .preview import PreviewConfirm, Work

#: ``kind`` names accepted by ``open_widget`` and the widget classes they open.
OPEN_KINDS = {
    "health": "StorageHealth",
    "maintenance": "MaintenancePanel",
    "sql": "SqlConsole",
    "migration": "MigrationWizard",
}

#: How often progressive scan rows are pushed to the page (seconds).
_PUSH_EVERY = 0.25


def _health_summary(report: dict[str, Any]) -> dict[str, Any]:
    orphans = int(report.get("orphan_metadata_count") or 0) + int(report.get("orphan_array_count") or 0)
    corrupt = len(report.get("corrupt_files") or [])
    return {"healthy": bool(report.get("healthy")), "orphans": orphans, "corrupt_files": corrupt,
            "pending_tombstones": int(report.get("pending_tombstones") or 0), "message": report.get("message", "")}


class WorkspaceBrowser(PreviewConfirm):
    """All the workspaces under a folder: ``display(WorkspaceBrowser(root))``.

    Python twins of the buttons:

    - ``refresh()`` — scan again (read-only), then fill the health column.
    - ``preview_migrate(in_place=False, output_root=None)`` — plan migrating every
      legacy workspace (each to ``<name>-migrated`` beside it unless ``in_place``).
    - ``preview_compact()`` — plan compacting every current workspace.
    - ``preview_merge(target, sources=None)`` — plan merging ``sources`` (default:
      the ``selected`` rows) into ``target``.
    - ``confirm(force=False)`` — execute the previewed plans; ``discard_preview()``.
    - ``open_widget(path, kind)`` — a StorageHealth / MaintenancePanel / SqlConsole /
      MigrationWizard for one row, shown below the table; returns it.
    - ``select(paths)``, ``cancel()``, ``wait()``.

    Traits: ``rows`` (the scan's entries as dicts), ``totals``, ``skipped``,
    ``health`` ({path: summary}), ``selected``, ``preview``
    (``{"operation", "inputs", "report"}``), ``report`` (the last bulk
    execution), ``current`` (the workspace a bulk job is on, with its own
    progress), ``opened`` (the row shown below).
    """

    _esm = bundle("workspace_browser")
    _main_preview = "preview_migrate"

    root = t.Unicode("").tag(sync=True)
    max_depth = t.Int(6).tag(sync=True)
    rows: t.List[dict[str, Any]] = t.List().tag(sync=True)
    totals = t.Dict().tag(sync=True)
    skipped: t.List[dict[str, Any]] = t.List().tag(sync=True)
    health = t.Dict().tag(sync=True)
    selected = t.List(t.Unicode()).tag(sync=True)
    current = t.Dict().tag(sync=True)
    opened = t.Dict().tag(sync=True)

    def __init__(self, root: str | pathlib.Path, *, max_depth: int = 6, autoload: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(root, max_depth=max_depth, **kwargs)
        self.root = self.workspace_path
        self.opened_widget: Any = None
        self._options: dict[str, dict[str, Any]] = {}
        self._output: Any = None
        self._box: Any = None
        if autoload:
            self._load_now()

    # ------------------------------------------------------------------ scan

    def _root_path(self) -> pathlib.Path:
        if self.workspace is None:
            raise WorkspaceError(self.error.get("message", "No folder."))
        return self.workspace.path

    def _scan_work(self, progress: Callable[[float, str], None], cancel: threading.Event) -> dict[str, Any]:
        """Scan (rows pushed as they come), then a quick health check per current workspace."""
        from ..core.fleet import scan

        pending: list[dict[str, Any]] = []
        last = [time.monotonic()]
        self.rows, self.health = [], {}

        def on_entry(entry: Any) -> None:
            pending.append(entry.to_dict())
            if time.monotonic() - last[0] >= _PUSH_EVERY:
                self.rows = [*self.rows, *pending]
                pending.clear()
                last[0] = time.monotonic()

        report = scan(self._root_path(), max_depth=int(self.max_depth), progress=lambda f, m: progress(0.6 * f, m),
                      cancel=cancel, on_entry=on_entry)
        data = report.to_dict()
        self.rows = list(data["workspaces"])
        self.totals = {k: v for k, v in data.items() if k not in ("workspaces", "skipped")}
        self.skipped = list(data["skipped"])
        current = [e for e in report.workspaces if e.storage_mode == "migrated" and not e.is_archive and not e.error]
        for index, entry in enumerate(current):
            if cancel.is_set():
                break
            progress(0.6 + 0.4 * index / max(len(current), 1), f"Health of {pathlib.Path(entry.path).name}")
            try:
                summary = _health_summary(Workspace(entry.path).health(cancel=cancel).to_dict())
            except WorkspaceError as exc:
                summary = {"healthy": False, "error": exc.message}
            self.health = {**self.health, entry.path: summary}
        return data

    @action
    def refresh(self) -> None:
        """Scan the folder again (read-only) and re-check each workspace's health."""
        self._require_idle()
        self._run("Scan", self._scan_work, writes=False)

    @action
    def select(self, paths: list[str]) -> None:
        """Choose the rows a merge uses (paths as listed in ``rows``)."""
        known = {r["path"] for r in self.rows}
        unknown = [p for p in paths if p not in known]
        if unknown:
            raise InvalidArgumentError(f"Not in the table: {', '.join(unknown)}.")
        self.selected = list(paths)

    # --------------------------------------------------------------- previews
    # The shared PreviewConfirm flow: ``_start_preview`` stores the dry run in ``preview`` unless its
    # inputs changed meanwhile; ``confirm()`` calls ``_execute`` with the previewed inputs, once.

    def _rows_where(self, test: Callable[[dict[str, Any]], bool]) -> list[str]:
        return [r["path"] for r in self.rows if test(r)]

    def _inputs_for(self, operation: str) -> dict[str, Any]:
        """What a bulk plan depends on: the rows it takes (from the current table) and its options."""
        options = dict(self._options.get(operation, {}))
        if operation == bulk.MIGRATE:
            paths = self._rows_where(lambda r: r["storage_mode"] == "legacy" and not r["is_archive"] and not r["error"])
            return {"paths": paths, **options}
        if operation == bulk.COMPACT:
            return {"paths": self._rows_where(
                lambda r: r["storage_mode"] == "migrated" and not r["is_archive"] and not r["error"])}
        return options

    @action
    def preview_migrate(self, *, in_place: bool = False, output_root: str | None = None) -> None:
        """Plan (dry run) migrating every legacy folder; archives and half-finished ones are left out."""
        self._require_idle()
        out = pathlib.Path(output_root).expanduser().absolute() if output_root else None
        self._options[bulk.MIGRATE] = {"in_place": bool(in_place), "output_root": str(out) if out else None}
        paths = self._inputs_for(bulk.MIGRATE)["paths"]
        scan_root = self._root_path()
        self._start_preview(bulk.MIGRATE, "Preview migrate", lambda progress, cancel: bulk.preview_migrate(
            paths, in_place=bool(in_place), output_root=out, scan_root=scan_root, progress=progress, cancel=cancel))

    @action
    def preview_compact(self) -> None:
        """Plan (dry run) compacting every current-format folder."""
        self._require_idle()
        paths = self._inputs_for(bulk.COMPACT)["paths"]
        self._start_preview(bulk.COMPACT, "Preview compact", lambda progress, cancel: bulk.preview_compact(
            paths, progress=progress, cancel=cancel))

    @action
    def preview_merge(self, target: str, sources: list[str] | None = None, *, on_conflict: str = "keep_best") -> None:
        """Plan (dry run) merging ``sources`` (default: the selected rows) into the workspace ``target``."""
        self._require_idle()
        if not target:
            raise InvalidArgumentError("Choose the workspace to merge into.")
        chosen = [s for s in (self.selected if sources is None else sources) if s != target]
        if not chosen:
            raise InvalidArgumentError("Select the workspaces to merge (tick their rows), then preview again.")
        self._options[bulk.MERGE] = {"target": target, "sources": chosen, "on_conflict": on_conflict}
        self._start_preview(bulk.MERGE, "Preview merge", lambda progress, cancel: bulk.preview_merge(
            target, chosen, on_conflict=on_conflict, progress=progress, cancel=cancel))

    def _execute(self, operation: str, inputs: dict[str, Any], plan_id: str | None, force: bool) -> tuple[str, Work]:
        """Run the previewed bulk plan (each row with its own plan_id), then scan again.

        Called by ``confirm()`` while ``preview`` still holds the plan; a bulk plan has
        one ``plan_id`` per row, so the whole previewed report is what runs.
        """
        plan = dict(self.preview["report"])
        todo = [r["path"] for r in plan["rows"] if r["outcome"] == bulk.PLANNED]

        def work(progress: Callable[[float, str], None], cancel: threading.Event) -> dict[str, Any]:
            def on_progress(fraction: float, message: str) -> None:
                n = max(len(todo), 1)
                index = min(int(fraction * n), n - 1)
                local = fraction * n - index if fraction < 1.0 else 1.0
                self.current = {"path": todo[index] if todo else "", "index": index, "count": len(todo),
                                "fraction": round(local, 3), "message": message}
                progress(0.8 * fraction, message)

            result = bulk.execute(plan, force=force, progress=on_progress, cancel=cancel).to_dict()
            self.current = {}
            self.report = result
            self._scan_work(lambda f, m: progress(0.8 + 0.2 * f, m), threading.Event())
            return result

        return f"{operation.capitalize()} ({len(todo)} workspaces)", work

    # ---------------------------------------------------------------- open one

    @action
    def open_widget(self, path: str, kind: str = "health") -> Any:
        """Open one row in StorageHealth / MaintenancePanel / SqlConsole / MigrationWizard, below the table."""
        from .. import widgets

        if kind not in OPEN_KINDS:
            raise InvalidArgumentError(f"Unknown kind {kind!r}.", f"Use one of {', '.join(OPEN_KINDS)}.")
        if path not in {r["path"] for r in self.rows}:
            raise InvalidArgumentError(f"{path} is not in the table.")
        widget = getattr(widgets, OPEN_KINDS[kind])(path)
        self.opened_widget = widget
        self.opened = {"path": path, "kind": kind}
        output = self._opened_output()
        if output is not None:
            bundle_ = widget._repr_mimebundle_()
            data = bundle_[0] if isinstance(bundle_, tuple) else bundle_
            output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
        return widget

    def _opened_output(self) -> Any:
        if self._output is None:
            try:
                import ipywidgets

                self._output = ipywidgets.Output()
            except ImportError:  # pragma: no cover - ipywidgets ships with anywidget
                return None
        return self._output

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Displayed as the browser with an output area below it, where opened rows appear."""
        output = self._opened_output()
        if output is None:
            return super()._repr_mimebundle_(**kwargs)
        if self._box is None:
            import ipywidgets

            self._box = ipywidgets.VBox([self, output])
        return self._box._repr_mimebundle_(**kwargs)
