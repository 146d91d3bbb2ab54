"""Path questions every operation asks: is this inside that, which store is current.

Two kinds of "inside": ``is_inside(path, folder)`` compares the paths *as
given* and also once links are resolved, because a user's ``arrays/`` may be a
symlink to another disk (a destination can be inside the workspace either
way).  Operations take ``root: Path``; only ``Workspace`` turns user input
into a ``Path``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import layout
from .errors import UnsupportedFormatError


def _lexical(path: Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):  # link loops
        return _lexical(path)


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or below it, as given or with links resolved."""
    for p, f in ((_lexical(path), _lexical(folder)), (_resolved(path), _resolved(folder))):
        if p == f or f in p.parents:
            return True
    # arrays/ (or any sub-folder) may itself be a link: resolve the folder's children too
    lex = _lexical(path)
    for child in (folder / layout.ARRAYS_DIR, folder / layout.ARTIFACTS_DIR):
        if child.is_symlink():
            target = _resolved(child)
            if _resolved(lex) == target or target in _resolved(lex).parents:
                return True
    return False


def store_db(root: Path) -> Path:
    """The current-format metadata store of ``root``."""
    return root / layout.STORE_SQLITE


def require_current(root: Path) -> None:
    """Refuse (``UnsupportedFormatError``) unless ``root`` is a current-format workspace."""
    from .status import MIGRATED, detect_status

    status = detect_status(root)
    if status.storage_mode != MIGRATED:
        if status.storage_mode == "new":
            raise UnsupportedFormatError(
                f"{root} holds no predictions yet (no store.sqlite).",
                "Run nirs4all with workspace_path pointing here first; there is nothing to do yet.",
            )
        raise UnsupportedFormatError(f"{root} is not in the current storage format ({status.message}).")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (best effort: some filesystems refuse)."""
    import contextlib

    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
