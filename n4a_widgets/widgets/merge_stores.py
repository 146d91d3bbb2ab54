"""``MergeStores``: merge other workspaces into this one, with an exact conflict preview."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError, WorkspaceError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, bundle


class MergeStores(WorkspaceWidget):
    """Merge other workspaces (sources) into this one: ``display(MergeStores(target))``.

    Two steps, like every destructive action here: ``preview()`` is an exact
    dry run (what will be added, which target predictions each conflict
    replaces, per source) and ``confirm()`` executes *that* previewed plan
    (its ``plan_id``) and nothing else.  Changing a source, the strategy or
    the dataset filter clears the preview.  Sources are never modified.

    Python twins of the controls: ``add_source(path)``, ``remove_source(path)``,
    ``set_strategy(name)``, ``set_datasets([...])``, ``preview()``,
    ``confirm()``, ``cancel()``, ``wait()``, ``refresh_siblings()``.

    A source is a workspace folder or a ``.zip`` of one (nirs4all-cluster's
    ``workspace.zip``); a legacy, unreadable or non-workspace source is refused
    when it is added, not at preview.

    Traits: ``sources`` (paths, in merge order), ``source_info`` (what each
    holds), ``siblings`` (folders and ``.zip`` files next to the target that
    hold a nirs4all store, offered for one-click add),
    ``strategy`` and ``strategies`` (name -> one-line explanation),
    ``datasets`` (the filter; empty = all) and ``available_datasets``,
    ``plan_id`` (the previewed plan, "" when none), ``preview_report`` (the dry
    run) and ``report`` (the executed merge).
    """

    _esm = bundle("merge_stores")

    sources = t.List(t.Unicode()).tag(sync=True)
    source_info = t.List(t.Dict()).tag(sync=True)
    """Per source, as checked when it was added: ``{path, name, archive, predictions, datasets}``."""
    siblings = t.List(t.Dict()).tag(sync=True)
    strategy = t.Unicode("keep_best").tag(sync=True)
    strategies = t.Dict().tag(sync=True)
    datasets = t.List(t.Unicode()).tag(sync=True)
    available_datasets = t.List(t.Unicode()).tag(sync=True)
    plan_id = t.Unicode("").tag(sync=True)
    preview_report = t.Dict().tag(sync=True)

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

    def _actions(self) -> dict[str, Callable[..., Any]]:
        return {
            **super()._actions(), "add_source": self.add_source, "remove_source": self.remove_source,
            "set_strategy": self.set_strategy, "set_datasets": self.set_datasets, "preview": self.preview,
            "confirm": self.confirm, "refresh_siblings": self.refresh_siblings,
        }

    # -------------------------------------------------------------- inputs

    def _inputs_changed(self) -> None:
        self.plan_id = ""
        self.preview_report = {}
        if self.state in ("error", "done", "cancelled"):
            self.error = {}

    def _require_idle(self) -> None:
        if self.busy:
            raise WorkspaceError("A merge job is running.", "Wait for it to finish or cancel it first.")

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

    def set_strategy(self, strategy: str) -> None:
        """``keep_best``, ``keep_existing`` or ``overwrite`` (nirs4all's names)."""
        self._require_idle()
        if strategy not in self.strategies:
            raise InvalidArgumentError(f"Unknown strategy {strategy!r}.", f"Use one of: {', '.join(self.strategies)}.")
        if strategy != self.strategy:
            self.strategy = strategy
            self._inputs_changed()

    def set_datasets(self, datasets: list[str] | None) -> None:
        """Merge only these datasets (``[]`` or ``None``: all)."""
        self._require_idle()
        chosen = list(dict.fromkeys(datasets or []))
        if chosen != self.datasets:
            self.datasets = chosen
            self._inputs_changed()

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

    def _inputs(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        return tuple(self.sources), self.strategy, tuple(self.datasets)

    def preview(self) -> None:
        """Dry run: exactly what the merge will add, replace and skip (read-only)."""
        ws = self.workspace
        assert ws is not None
        if not self.sources:
            raise InvalidArgumentError("Add at least one source workspace first.")
        inputs = self._inputs()
        self.plan_id = ""
        self.preview_report = {}

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.merge(list(inputs[0]), on_conflict=inputs[1], datasets=list(inputs[2]) or None,
                            dry_run=True, progress=progress, cancel=cancel).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            if self._inputs() != inputs:  # inputs changed while the preview ran: it is stale
                return
            self.preview_report = result
            self.plan_id = result["plan_id"]

        self._run("Preview merge", work, writes=False, on_result=on_result)

    def confirm(self) -> None:
        """Execute the previewed plan (and only it); refused if anything changed since."""
        ws = self.workspace
        assert ws is not None
        if not self.plan_id:
            raise InvalidArgumentError("Nothing to confirm.", "Run the preview first, then confirm it.")
        plan_id = self.plan_id
        self.plan_id = ""  # a plan runs once; after a refusal, preview again
        sources, strategy, datasets = self._inputs()

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.merge(list(sources), on_conflict=strategy, datasets=list(datasets) or None, dry_run=False,
                            plan_id=plan_id, progress=progress, cancel=cancel).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            self.report = result
            self.preview_report = {}

        self._run("Merge", work, writes=True, on_result=on_result)
