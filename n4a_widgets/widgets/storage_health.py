"""``StorageHealth``: format badge, storage breakdown, integrity, per-dataset table."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import traitlets as t

from ..core.workspace import Workspace
from .base import WorkspaceWidget, action, bundle

#: What nirs4all keeps in top-level entries that are none of store, arrays, artifacts, exports, logs.
KNOWN_OTHER = {
    "native_results/": "nirs4all's own result bundle per run (manifest, scores, predictions, refit model)",
    "workspace.json": "the workspace's settings",
}


def usage_notes(root: pathlib.Path, status: dict[str, Any]) -> dict[str, Any]:
    """Words for the storage breakdown: what "Other" holds, where legacy arrays live."""
    from ..core.usage import largest_entries

    entries = largest_entries(root, "Other")
    known = [KNOWN_OTHER[e["name"]] for e in entries if e["name"] in KNOWN_OTHER]  # type: ignore[index]
    text = ("Files outside the store, arrays and artifacts" + (f": {'; '.join(known)}" if known else "")
            + ". These tools only count them.")
    notes: dict[str, Any] = {"Other": {"text": text, "entries": entries}}
    if str(status.get("layout", "")).startswith("duckdb-inline") or (
            str(status.get("format", "")).startswith("duckdb") and status.get("has_prediction_arrays_table")):
        notes["Prediction arrays"] = {
            "text": "Inside store.duckdb (legacy format), so counted under Metadata store; "
                    "a migration moves them into one Parquet file per dataset.",
            "entries": [], "inline": True,
        }
    return notes


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
    usage_notes = t.Dict().tag(sync=True)
    """Category -> what it holds, in words (``{"text", "entries": [{name, size_bytes}]}``)."""

    def __init__(self, workspace: str | pathlib.Path | Workspace, *, autoload: bool = True, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        if autoload:
            self._load_now()

    @action
    def refresh(self) -> None:
        """Re-read status, disk usage and the quick health check (read-only)."""
        self._check(deep=False, name="Refresh")

    @action
    def integrity_check(self) -> None:
        """Decode every array file and compare ids with the metadata (read-only)."""
        self._check(deep=True, name="Integrity check")

    def _check(self, *, deep: bool, name: str) -> None:
        ws = self.workspace
        assert ws is not None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading status")
            status = ws.status().to_dict()
            stats = ws.stats().to_dict()
            health = ws.health(deep=deep, progress=progress, cancel=cancel).to_dict()
            return {"status": status, "stats": stats, "health": health, "notes": usage_notes(ws.path, status)}

        def on_result(result: dict[str, Any]) -> None:
            self.status = result["status"]
            self.stats = result["stats"]
            self.usage_notes = result["notes"]
            self.report = result["health"]

        self._run(name, work, writes=False, on_result=on_result)
