"""Where a query's full result may be written: outside the workspace, never into it."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidArgumentError
from ..paths import is_inside
from ..reports import Report


@dataclass(frozen=True)
class QueryExportReport(Report):
    """What ``export_result`` wrote: the full result (no row cap) as one Parquet file."""

    sql: str
    path: str
    row_count: int
    size_bytes: int
    duration_seconds: float


def default_export_path(root: Path, now: _dt.datetime | None = None) -> Path:
    """``<parent of workspace>/<name>-query-<timestamp>.parquet`` (or the cwd when the parent is read-only)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{root.name}-query-{stamp}.parquet"
    parent = root.parent
    if os.access(parent, os.W_OK):
        return parent / name
    cwd = Path.cwd()
    if not is_inside(cwd, root) and os.access(cwd, os.W_OK):
        return cwd / name
    raise InvalidArgumentError(
        f"No writable default folder for the export ({parent} is read-only).", "Give an explicit path outside the "
        "workspace.",
    )


def resolve_export_path(root: Path, dest: str | os.PathLike[str] | None, *, overwrite: bool = False) -> Path:
    """Validate where an export goes: outside the workspace, in an existing folder."""
    if dest is None or str(dest).strip() == "":
        return default_export_path(root)
    target = Path(dest).expanduser()
    if not target.is_absolute():
        target = Path.cwd() / target
    if target.suffix.lower() != ".parquet":
        target = target.with_name(target.name + ".parquet")
    if is_inside(target, root) or is_inside(target.parent, root):
        raise InvalidArgumentError(
            f"{target} is inside the workspace; the console never writes into a workspace.",
            "Choose a path outside the workspace folder.",
        )
    if not target.parent.is_dir():
        raise InvalidArgumentError(f"Folder {target.parent} does not exist.", "Create it first or pick another path.")
    if target.is_dir():
        raise InvalidArgumentError(f"{target} is a folder.", "Give a file name ending in .parquet.")
    if target.exists() and not overwrite:
        raise InvalidArgumentError(f"{target} already exists.", "Pick another name, or pass overwrite=True.")
    if not os.access(target.parent, os.W_OK):
        raise InvalidArgumentError(f"No permission to write in {target.parent}.", "Pick a folder you can write to.")
    return target
