"""Every nirs4all workspace under a folder: ``scan_workspaces(root)``.

People accumulate workspaces: one per project, old ones written by 0.7-0.11,
one per nirs4all-cluster task (often as ``workspace.zip``).  The scan walks a
folder tree read-only and returns one ``FleetEntry`` per workspace, whatever
its format.  It is cheap on purpose: ``stat`` and directory listings for the
walk and the sizes, one small read-only query per store for the counts,
Parquet footers at most; no array file is decoded, so the time grows with the
number of workspaces and files, not with their bytes.

Walk rules: a folder that is a workspace is not descended into (its
``arrays/``, ``artifacts/``, ``runs/`` are never searched for workspaces);
hidden folders (``.git``, migration staging folders) are skipped; symlinked
folders are followed once (a folder reached again, a link loop for instance,
is listed in ``skipped``); unreadable folders are skipped with a note.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import layout
from ..errors import InvalidArgumentError, WorkspaceError
from ..progress import Progress, Ticker, as_ticker
from ..reports import utc_now
from ..status import LEGACY, MID_MIGRATION
from .archive import probe_archive
from .probe import probe
from .report import UNKNOWN, FleetEntry, FleetReport, SkippedFolder

__all__ = ["UNKNOWN", "FleetEntry", "FleetReport", "SkippedFolder", "scan"]

_JOURNAL_SUFFIX = ".n4a-migration.json"
_STAGING_SUFFIX = ".n4a-migration-staging"


def _has_runs_tree(folder: Path) -> bool:
    return any((folder / layout.RUNS_DIR).glob("*/*/manifest.yaml"))


def _looks_like_workspace(folder: Path, entries: dict[str, os.DirEntry[str]]) -> bool:
    """Decided from the listing (plus the runs/ glob): no file is opened."""
    for store in (layout.STORE_SQLITE, layout.STORE_DUCKDB):
        if store in entries:
            return True
    if layout.RUNS_DIR in entries and _has_runs_tree(folder):
        return True
    visible = [n for n in entries if not n.startswith(".")]
    has_own = layout.ARRAYS_DIR in entries or layout.ARTIFACTS_DIR in entries
    # Only nirs4all's own folders: a workspace created but not yet written ("new").
    return has_own and all(n in layout.NIRS4ALL_FOLDERS for n in visible)


class _Walk:
    """Phase 1: find workspace folders and archives (listings only)."""

    def __init__(self, root: Path, max_depth: int, ticker: Ticker) -> None:
        self.root = root
        self.max_depth = max_depth
        self.ticker = ticker
        self.folders: dict[Path, None] = {}
        self.archives: list[Path] = []
        self.skipped: list[SkippedFolder] = []
        self.scanned = 0
        self._seen: set[tuple[int, int]] = set()

    def run(self) -> None:
        stack: list[tuple[Path, int]] = [(self.root, 0)]
        done = 0.0
        while stack and not self.ticker.cancelled:
            folder, depth = stack.pop()
            self._visit(folder, depth, stack)
            done = max(done, self.scanned / (self.scanned + len(stack)))
            if self.scanned % 50 == 0:
                self.ticker.step(done, f"Looking for workspaces: {self.scanned} folders, {len(self.folders)} found")

    def _skip(self, folder: Path, reason: str) -> None:
        self.skipped.append(SkippedFolder(str(folder), reason))

    def _visit(self, folder: Path, depth: int, stack: list[tuple[Path, int]]) -> None:
        try:
            st = folder.stat()
        except OSError as exc:
            self._skip(folder, f"cannot be read ({exc.strerror or exc})")
            return
        key = (st.st_dev, st.st_ino)
        if key in self._seen:
            self._skip(folder, "already scanned through another path (a symlink, possibly a loop); not followed")
            return
        self._seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = {e.name: e for e in it}
        except PermissionError:
            self._skip(folder, "permission denied; skipped (workspaces below it, if any, are not listed)")
            return
        except OSError as exc:
            self._skip(folder, f"cannot be listed ({exc.strerror or exc}); skipped")
            return
        self.scanned += 1
        if _looks_like_workspace(folder, entries):
            self.folders[folder] = None
            # A workspace is not searched further (arrays/, artifacts/, runs/ and the rest are its own),
            # but archives lying in it are still listed below.
            subfolders = False
        else:
            subfolders = depth < self.max_depth
        for name, entry in sorted(entries.items(), reverse=True):
            if name.startswith("."):
                self._hidden(folder, name, entries)
                continue
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_file and name.lower().endswith(".zip"):
                self.archives.append(Path(entry.path))
            elif is_dir and subfolders:
                stack.append((Path(entry.path), depth + 1))

    def _hidden(self, folder: Path, name: str, entries: dict[str, os.DirEntry[str]]) -> None:
        """Migration journals and staging folders mark their source as a (mid_migration) workspace."""
        for suffix in (_JOURNAL_SUFFIX, _STAGING_SUFFIX):
            if name.endswith(suffix) and len(name) > len(suffix) + 1:
                source = folder / name[1 : -len(suffix)]
                self.folders[source] = None  # also when the source was swapped out (missing)


def _totals(entries: list[FleetEntry]) -> dict[str, int]:
    legacy = [e for e in entries if e.storage_mode in (LEGACY, MID_MIGRATION)]
    backups = [e for e in entries if e.backup_of]
    backup_bytes = sum(e.size_bytes for e in backups)
    return {
        "workspace_count": len(entries),
        "legacy_count": len(legacy),
        "archive_count": sum(1 for e in entries if e.is_archive),
        "total_bytes": sum(e.size_bytes for e in entries),
        "legacy_bytes": sum(e.size_bytes for e in legacy),
        "reclaimable_bytes": sum(e.reclaimable_bytes for e in entries) + backup_bytes,
        "backup_bytes": backup_bytes,
    }


def scan(
    root: Path,
    *,
    max_depth: int = 6,
    progress: Progress | Ticker | None = None,
    cancel: threading.Event | None = None,
    on_entry: Callable[[FleetEntry], None] | None = None,
) -> FleetReport:
    """List every workspace under ``root`` (read-only); see the module docstring.

    ``on_entry`` is called with each row as soon as it is known (the browser
    fills its table progressively).  A cancel stops the scan between folders
    or workspaces and returns what was found, with ``cancelled=True``.
    """
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0:
        raise InvalidArgumentError(f"max_depth must be a whole number >= 0, not {max_depth!r}.")
    started = time.monotonic()
    ticker = as_ticker(progress, cancel)
    if not root.is_dir():
        raise WorkspaceError(f"{root} is not a folder.", "Pass the folder that holds your workspaces.")
    walk = _Walk(root, max_depth, ticker.span(0.0, 0.2))
    walk.run()
    found: list[FleetEntry] = []
    targets: list[Path] = sorted(walk.folders)
    probing = ticker.span(0.2, 1.0)
    count = len(targets) + len(walk.archives)
    for index, folder in enumerate(targets):
        if ticker.cancelled:
            break
        probing.step(index / max(count, 1), f"Reading {folder.name} ({index + 1}/{count})")
        entry = probe(folder)
        found.append(entry)
        if on_entry is not None:
            on_entry(entry)
    for index, archive in enumerate(sorted(walk.archives), start=len(targets)):
        if ticker.cancelled:
            break
        probing.step(index / max(count, 1), f"Reading archive {archive.name} ({index + 1}/{count})")
        for entry in probe_archive(archive):
            found.append(entry)
            if on_entry is not None:
                on_entry(entry)
    cancelled = ticker.cancelled
    found.sort(key=lambda e: (e.path, e.archive_member or ""))
    notes = [f"{s.path}: {s.reason}" for s in walk.skipped]
    if cancelled:
        notes.append("Scan cancelled: the list is incomplete.")
    ticker.done(f"Found {len(found)} workspaces")
    return FleetReport(
        str(root), tuple(found), tuple(walk.skipped), **_totals(found), folders_scanned=walk.scanned,
        max_depth=max_depth, cancelled=cancelled, checked_at=utc_now(),
        elapsed_s=round(time.monotonic() - started, 3), notes=tuple(notes),
    )
