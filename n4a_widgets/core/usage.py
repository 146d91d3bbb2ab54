"""Disk usage of a workspace by category: ``Workspace.stats()``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .reports import Report, utc_now

#: Category names, in display order; "Prediction arrays" matches nirs4all Studio.
CATEGORIES = ("Metadata store", "Prediction arrays", "Artifacts", "Exports", "Logs", "Other")


@dataclass(frozen=True)
class SpaceUsage(Report):
    name: str
    size_bytes: int
    file_count: int
    percentage: float


@dataclass(frozen=True)
class WorkspaceStats(Report):
    """Bytes and file counts per category; read-only (``stat`` calls only)."""

    path: str
    space_usage: tuple[SpaceUsage, ...]
    total_size_bytes: int
    total_files: int
    checked_at: str

    def usage(self, name: str) -> SpaceUsage:
        """The entry for category ``name`` (e.g. ``"Prediction arrays"``)."""
        for item in self.space_usage:
            if item.name == name:
                return item
        raise KeyError(name)


def _category(relative: Path) -> str:
    top = relative.parts[0]
    if top.startswith(layout.STORE_SQLITE) or top.startswith(layout.STORE_DUCKDB):
        return "Metadata store"
    if top == layout.ARRAYS_DIR:
        return "Prediction arrays"
    if top == layout.ARTIFACTS_DIR:
        return "Artifacts"
    if top == layout.EXPORTS_DIR:
        return "Exports"
    if top == layout.LOGS_DIR or relative.suffix == ".log":
        return "Logs"
    return "Other"


def compute_stats(root: Path) -> WorkspaceStats:
    sizes = dict.fromkeys(CATEGORIES, 0)
    counts = dict.fromkeys(CATEGORIES, 0)
    if root.exists():
        for dirpath, _dirnames, filenames in os.walk(root):
            for fname in filenames:
                full = Path(dirpath) / fname
                try:
                    if full.is_symlink():
                        continue
                    size = full.stat().st_size
                except OSError:
                    continue
                cat = _category(full.relative_to(root))
                sizes[cat] += size
                counts[cat] += 1
    total = sum(sizes.values())
    usage = tuple(
        SpaceUsage(name, sizes[name], counts[name], round(100.0 * sizes[name] / total, 2) if total else 0.0)
        for name in CATEGORIES
    )
    return WorkspaceStats(str(root), usage, total, sum(counts.values()), utc_now())


def largest_entries(root: Path, category: str = "Other", limit: int = 5) -> list[dict[str, int | str]]:
    """The biggest top-level files/folders of ``root`` counted in ``category``, largest first.

    Read-only (``stat`` only).  StorageHealth uses it to say what "Other" holds.
    """
    sizes: dict[str, int] = {}
    if root.exists():
        for dirpath, _dirnames, filenames in os.walk(root):
            for fname in filenames:
                full = Path(dirpath) / fname
                relative = full.relative_to(root)
                if _category(relative) != category:
                    continue
                try:
                    if full.is_symlink():
                        continue
                    size = full.stat().st_size
                except OSError:
                    continue
                top = relative.parts[0] + ("/" if len(relative.parts) > 1 else "")
                sizes[top] = sizes.get(top, 0) + size
    ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"name": name, "size_bytes": size} for name, size in ranked]
