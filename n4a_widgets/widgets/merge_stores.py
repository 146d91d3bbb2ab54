"""``MergeStores``: merge other workspaces into this one, with an exact conflict preview."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.workspace import Workspace
from .base import action, bundle
from .preview import PreviewConfirm, Work


class MergeStores(PreviewConfirm):
    """Merge other workspaces (sources) into this one: ``display(MergeStores(target))``.

    Two steps, like every destructive action here: ``preview()`` is an exact
    dry run (what will be added, which target predictions each conflict
    replaces, per source) and ``confirm()`` executes *that* previewed plan
    (its ``plan_id``) and nothing else.  Changing a source, the strategy or
    the dataset filter clears the preview.  Sources are never modified.

    Python twins of the controls: ``add_source(path)``, ``remove_source(path)``,
    ``set_strategy(name)``, ``set_datasets([...])``, ``preview_merge()`` (or
    ``preview()``), ``confirm()``, ``discard_preview()``, ``cancel()``,
    ``wait()``, ``refresh_siblings()``.

    A source is a workspace folder or a ``.zip`` of one (nirs4all-cluster's
    ``workspace.zip``); a legacy, unreadable or non-workspace source is refused
    when it is added, not at preview.

    Traits: ``sources`` (paths, in merge order), ``source_info`` (what each
    holds), ``siblings`` (folders and ``.zip`` files next to the target that
    hold a nirs4all store, offered for one-click add),
    ``strategy`` and ``strategies`` (name -> one-line explanation),
    ``datasets`` (the filter; empty = all) and ``available_datasets``,
    ``preview`` (the pending dry run, ``{"operation", "inputs", "report"}``),
    ``report`` (the executed merge); ``plan_id`` and ``preview_report`` mirror
    ``preview`` (its plan id, "" when none, and its report) for older code.
    """

    _esm = bundle("merge_stores")
    _main_preview = "preview_merge"

    sources = t.List(t.Unicode()).tag(sync=True)
    source_info = t.List(t.Dict()).tag(sync=True)
    """Per source, as checked when it was added: ``{path, name, archive, predictions, datasets}``."""
    siblings = t.List(t.Dict()).tag(sync=True)
    strategy = t.Unicode("keep_best").tag(sync=True)
    strategies = t.Dict().tag(sync=True)
    datasets = t.List(t.Unicode()).tag(sync=True)
    available_datasets = t.List(t.Unicode()).tag(sync=True)
    plan_id = t.Unicode("").tag(sync=True)
    """Alias: ``preview["report"]["plan_id"]`` ("" when nothing is previewed)."""
    preview_report = t.Dict().tag(sync=True)
    """Alias: ``preview["report"]``."""

    def __init__(
        self,
        workspace: str | pathlib.Path | Workspace,
        sources: list[str | pathlib.Path] | None = None,
        *,
        strategy: str = "keep_best",
        **kwargs: Any,
    ) -> None:
        from ..core.merge import STRATEGIES

        super().__init__(workspace, **kwargs)
        self.strategies = dict(STRATEGIES)
        self.set_strategy(strategy)
        if self.workspace is None:
            return
        try:
            for src in sources or []:
                self.add_source(src)
            self.refresh_siblings()
        except WorkspaceError as exc:
            self._show_error(exc)

    @t.observe("preview")
    def _mirror_preview(self, change: dict[str, Any]) -> None:
        report = dict(change["new"].get("report") or {})
        self.preview_report = report
        self.plan_id = str(report.get("plan_id") or "")

    # -------------------------------------------------------------- inputs

    def _inputs_changed(self) -> None:
        self.discard_preview()
        if self.state in ("error", "done", "cancelled"):
            self.error = {}

    @action
    def add_source(self, path: str | pathlib.Path) -> None:
        """Add a workspace folder or a ``.zip`` of one; refused at once if merge cannot read it (legacy, not one)."""
        from ..core.merge import check_source

        self._require_idle()
        text = str(path).strip()
        if not text:
            raise InvalidArgumentError("Type the path of a workspace folder (or a .zip of one) to add.")
        assert self.workspace is not None
        candidate = pathlib.Path(text).expanduser().absolute()
        if any(pathlib.Path(s).resolve() == candidate.resolve() for s in self.sources):
            raise InvalidArgumentError(f"{candidate} is already a source.")
        info = check_source(self.workspace.path, candidate)
        self.sources = [*self.sources, info["path"]]
        self.source_info = [*self.source_info, info]
        self._datasets_changed()
        self._inputs_changed()
        self._update_siblings()

    @action
    def remove_source(self, path: str | pathlib.Path) -> None:
        """Drop a source from the list."""
        self._require_idle()
        self.sources = [s for s in self.sources if s != str(path)]
        self.source_info = [i for i in self.source_info if i["path"] != str(path)]
        self._datasets_changed()
        self._inputs_changed()
        self._update_siblings()

    def _datasets_changed(self) -> None:
        names = {d for info in self.source_info for d in info.get("datasets", [])}
        self.available_datasets = sorted(names)
        self.datasets = [d for d in self.datasets if d in names]

    @action
    def set_strategy(self, strategy: str) -> None:
        """``keep_best``, ``keep_existing`` or ``overwrite`` (nirs4all's names)."""
        self._require_idle()
        if strategy not in self.strategies:
            raise InvalidArgumentError(f"Unknown strategy {strategy!r}.", f"Use one of: {', '.join(self.strategies)}.")
        if strategy != self.strategy:
            self.strategy = strategy
            self._inputs_changed()

    @action
    def set_datasets(self, datasets: list[str] | None) -> None:
        """Merge only these datasets (``[]`` or ``None``: all)."""
        self._require_idle()
        chosen = list(dict.fromkeys(datasets or []))
        if chosen != self.datasets:
            self.datasets = chosen
            self._inputs_changed()

    @action
    def refresh_siblings(self) -> None:
        """Look again for workspaces next to the target."""
        from ..core.merge import sibling_workspaces

        assert self.workspace is not None
        self._all_siblings = sibling_workspaces(self.workspace.path)
        self._update_siblings()

    def _update_siblings(self) -> None:
        taken = {pathlib.Path(s).resolve() for s in self.sources}
        found = getattr(self, "_all_siblings", [])
        self.siblings = [s for s in found if pathlib.Path(s["path"]).resolve() not in taken]

    # ---------------------------------------------------------------- jobs

    def _inputs_for(self, operation: str) -> dict[str, Any]:
        return {"sources": list(self.sources), "on_conflict": self.strategy, "datasets": list(self.datasets)}

    @action(aliases=("preview",))
    def preview_merge(self) -> Any:
        """Dry run: exactly what the merge will add, replace and skip (read-only)."""
        ws = self.workspace
        assert ws is not None
        if not self.sources:
            raise InvalidArgumentError("Add at least one source workspace first.")
        inputs = self._inputs_for("merge")

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.merge(inputs["sources"], on_conflict=inputs["on_conflict"],
                            datasets=inputs["datasets"] or None, dry_run=True, progress=progress,
                            cancel=cancel).to_dict()

        return self._start_preview("merge", "Preview merge", work)

    def _execute(self, operation: str, inputs: dict[str, Any], plan_id: str | None,
                 force: bool) -> tuple[str, Work]:
        ws = self.workspace
        assert ws is not None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.merge(inputs["sources"], on_conflict=inputs["on_conflict"],
                            datasets=inputs["datasets"] or None, dry_run=False, plan_id=plan_id, force=force,
                            progress=progress, cancel=cancel).to_dict()

        return "Merge", work
