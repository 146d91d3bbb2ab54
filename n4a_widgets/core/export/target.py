"""Where an export goes: format, file names, and refusing bad destinations early.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import layout
from ..errors import (
    InvalidArgumentError,
    WorkspaceError,
)
from ..paths import is_inside

FORMATS = ("auto", "parquet", "zip", "folder")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


# ------------------------------------------------------------------ helpers


def safe_file_stem(name: str) -> str:
    """A file name (no extension) for ``name`` that is safe on every OS and in zips."""
    stem = _SAFE_NAME.sub("_", name).strip("._ ") or "dataset"
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    return stem[:120]


def unique_file_names(datasets: Sequence[str], suffix: str = ".parquet") -> dict[str, str]:
    """``{dataset: file name}``; names that sanitize alike get ``-2``, ``-3``..."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in datasets:
        stem = safe_file_stem(name)
        candidate, n = stem, 1
        while (candidate + suffix).lower() in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add((candidate + suffix).lower())
        out[name] = candidate + suffix
    return out




def _resolved(path: Path) -> Path:
    """``path`` with symlinks of its existing part resolved."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


@dataclass
class _Target:
    """Where the export goes: ``final`` path and the resolved format."""

    final: Path
    format: str
    file_names: dict[str, str]
    create_exports_dir: bool = False


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
    return fmt


def resolve_target(ws_root: Path, dest: str | os.PathLike[str], datasets: Sequence[str], fmt: str,
                   overwrite: bool) -> _Target:
    """Decide the final path and format; refuse bad destinations before any work."""
    _check_format(fmt)
    dest_path = Path(dest).expanduser().absolute()
    if fmt == "auto":
        explicit_zip = dest_path.suffix.lower() == ".zip" and not dest_path.is_dir()
        fmt = "parquet" if len(datasets) == 1 and not explicit_zip else "zip"
    if fmt == "parquet" and len(datasets) != 1:
        raise InvalidArgumentError(
            f"A single Parquet file holds one dataset; {len(datasets)} are selected.",
            "Export to a .zip or a folder (format='zip' or 'folder'), or select one dataset.",
        )
    names = unique_file_names(datasets)
    final = dest_path
    if fmt in ("parquet", "zip") and dest_path.is_dir():
        # A folder given as destination: put the file inside it with a default name.
        default = names[datasets[0]] if fmt == "parquet" else f"{safe_file_stem(ws_root.name)}_predictions.zip"
        final = dest_path / default

    ws_real = _resolved(ws_root)
    final_real = _resolved(final)
    create_exports = False
    if is_inside(final, ws_root) or is_inside(final_real, ws_real):
        exports = ws_real / layout.EXPORTS_DIR
        if not is_inside(final_real, exports) or (final_real == exports and fmt != "folder"):
            raise InvalidArgumentError(
                f"{final} is inside the workspace; an export never writes there.",
                f"Pick a folder outside the workspace, or its '{layout.EXPORTS_DIR}/' subfolder.",
            )
        create_exports = not exports.exists()

    parent = final.parent
    if fmt == "folder":
        if final.exists() and not final.is_dir():
            raise InvalidArgumentError(f"{final} is a file; a folder export needs a folder.",
                                       "Pick a new folder name, or use format='parquet' or 'zip'.")
        if not overwrite:
            clashes = [final / n for n in names.values() if (final / n).exists()]
            if clashes:
                raise WorkspaceError(
                    f"{clashes[0]} already exists" + (f" (and {len(clashes) - 1} more)." if len(clashes) > 1 else "."),
                    "Pick another folder, or pass overwrite=True (--overwrite) to replace those files.",
                )
    else:
        if final.is_dir():
            raise InvalidArgumentError(f"{final} is a folder.", "Give a file name ending in .parquet or .zip.")
        if final.exists() and not overwrite:
            raise WorkspaceError(f"{final} already exists.",
                                 "Pick another name, or pass overwrite=True (--overwrite) to replace it.")
    check_dir = final if fmt == "folder" and final.exists() else parent
    if not check_dir.exists() and not (create_exports and _resolved(check_dir) == ws_real / layout.EXPORTS_DIR):
        raise WorkspaceError(f"Folder {check_dir} does not exist.", "Create it first, or pick another destination.")
    if check_dir.exists() and not os.access(check_dir, os.W_OK | os.X_OK):
        raise WorkspaceError(f"Cannot write to {check_dir} (permission denied).",
                             "Pick a folder you can write to, such as your home folder.")
    return _Target(final=final, format=fmt, file_names=names, create_exports_dir=create_exports)


