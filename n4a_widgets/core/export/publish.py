"""Temporary files, error mapping and the final rename (or zip) into place.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ..errors import (
    WorkspaceError,
)
from .plan import _DatasetPlan
from .reports import ExportedFile
from .target import _Target

# ------------------------------------------------------------------ cleanup


class _Scratch:
    """Temporary files and folders of one export; ``discard`` removes them all."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.dirs: list[Path] = []

    def temp_name(self, folder: Path, final_name: str) -> Path:
        path = folder / f".{final_name}.n4a-export-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        self.paths.append(path)
        return path

    def discard(self) -> None:
        for path in self.paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass
        for folder in reversed(self.dirs):
            try:
                folder.rmdir()
            except OSError:
                pass


def _map_write_error(exc: OSError, where: Path) -> WorkspaceError:
    import errno

    if exc.errno == errno.ENOSPC:
        return WorkspaceError(f"The disk is full while writing {where}.", "Free some space and export again; "
                              "nothing was left behind.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WorkspaceError(f"Cannot write {where} ({exc.strerror}).", "Pick a folder you can write to.")
    return WorkspaceError(f"Writing {where} failed: {exc}.", "Check the destination and export again.")


def _publish(target: _Target, written: list[tuple[_DatasetPlan, Path, str]], scratch: _Scratch,
             overwrite: bool) -> list[ExportedFile]:
    """Rename (or zip) the finished temporary files into place."""
    import zipfile

    files: list[ExportedFile] = []
    if target.format == "zip":
        tmp_zip = scratch.temp_name(target.final.parent, target.final.name)
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for plan, tmp, method in written:
                zf.write(tmp, arcname=plan.file_name, compress_type=zipfile.ZIP_STORED)
                size = tmp.stat().st_size
                tmp.unlink()
                files.append(ExportedFile(plan.name, str(target.final), plan.rows, size, plan.file_name, method))
        _replace(tmp_zip, target.final, overwrite)
        return files
    for plan, tmp, method in written:
        final = target.final / plan.file_name if target.format == "folder" else target.final
        size = tmp.stat().st_size
        _replace(tmp, final, overwrite)
        files.append(ExportedFile(plan.name, str(final), plan.rows, size, None, method))
    return files


def _replace(tmp: Path, final: Path, overwrite: bool) -> None:
    if not overwrite and final.exists():
        raise WorkspaceError(f"{final} appeared while exporting.", "Pick another name, or pass overwrite=True.")
    os.replace(tmp, final)


