"""``StorageHealth``: format badge, storage breakdown, integrity, per-dataset table."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.errors import WorkspaceError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, bundle


class StorageHealth(WorkspaceWidget):
    """See a workspace's health at a glance: ``display(StorageHealth(path))``.

    Refresh re-reads status, sizes and the quick health check (id columns
    only); "Run integrity check" also decodes every array file.  Both are
    read-only.  ``status`` and ``stats`` hold ``Workspace.status()`` and
    ``Workspace.stats()`` as dicts, ``report`` the last ``health()``.
    """

    _esm = bundle("storage_health")

    status = t.Dict().tag(sync=True)
    stats = t.Dict().tag(sync=True)

    def __init__(self, workspace: str | pathlib.Path | Workspace, *, autoload: bool = True, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        if autoload:
            self._load_now()

    def _actions(self) -> dict[str, Callable[..., Any]]:
        return {**super()._actions(), "refresh": self.refresh, "integrity_check": self.integrity_check}

    def refresh(self) -> None:
        """Re-read status, disk usage and the quick health check (read-only)."""
        self._check(deep=False, name="Refresh")

    def integrity_check(self) -> None:
        """Decode every array file and compare ids with the metadata (read-only)."""
        self._check(deep=True, name="Integrity check")

    def _check(self, *, deep: bool, name: str) -> None:
        ws = self.workspace
        assert ws is not None
        # The first paint: status reads a few SQLite pragmas without importing
        # nirs4all, so the format badge shows before the job even starts.
        try:
            first_status = ws.status().to_dict()
        except WorkspaceError as exc:
            self._show_error(exc)
            return
        self.status = first_status

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading status")
            status = ws.status().to_dict()
            progress(0.0, "Measuring disk usage")
            stats = ws.stats().to_dict()
            health = ws.health(deep=deep, progress=progress, cancel=cancel).to_dict()
            return {"status": status, "stats": stats, "health": health}

        def on_result(result: dict[str, Any]) -> None:
            self.status = result["status"]
            self.stats = result["stats"]
            self.report = result["health"]

        self._run(name, work, writes=False, on_result=on_result)
