"""SQLite sources: nirs4all upgrades a copy (schema 2-4) or reopens a copy (schema 0/1)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..errors import (
    MigrationError,
)
from .context import _Run
from .journal import _kill_point

if TYPE_CHECKING:
    pass



def _copy_tree(run: _Run, source: Path, dest: Path, *, skip_top: set[str], weight: tuple[float, float]) -> None:
    """Copy every file except the legacy stores (whole-file copies, metadata kept)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip_top]
            filenames = [f for f in filenames if f not in skip_top]
        (dest / rel).mkdir(parents=True, exist_ok=True)
        files.extend(Path(dirpath) / f for f in filenames)
    total = max(1, len(files))
    for i, path in enumerate(files):
        run.check()
        target = dest / path.relative_to(source)
        shutil.copy2(path, target)
        run.ticker.step(weight[0] + (weight[1] - weight[0]) * (i + 1) / total, f"Copying files ({i + 1}/{total})")


def _build_upgrade(run: _Run, staging: Path, kind: str) -> None:
    """SQLite sources: nirs4all upgrades a copy; the source is only read."""
    run.ticker.step(0.02, "Copying and upgrading the SQLite store (nirs4all upgrade_workspace_copy)")
    if kind == "upgrade":
        from nirs4all.workspace.upgrade import upgrade_workspace_copy

        try:
            upgrade_workspace_copy(run.source, staging)
        except (ValueError, RuntimeError) as exc:
            raise MigrationError(f"nirs4all could not upgrade a copy of {run.source}: {exc}") from exc
        # The copy includes our own markers if any; they are not part of the workspace.
        with contextlib.suppress(FileNotFoundError):
            (staging / layout.JOB_LOCK_FILE).unlink()
    else:
        staging.mkdir()
        _copy_tree(run, run.source, staging, skip_top={layout.JOB_LOCK_FILE}, weight=(0.02, 0.4))
        from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

        run.ticker.step(0.45, "Upgrading the copied SQLite schema (nirs4all WorkspaceStore)")
        store = WorkspaceStore(staging)  # upgrades the COPY's schema in place
        store.close()
    _kill_point("converting")
    run.ticker.step(0.6, "Upgrade done")
