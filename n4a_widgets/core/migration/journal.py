"""The fsynced journal, atomic renames, publish and rollback: what makes a crash recoverable."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..crash import kill_point
from ..errors import (
    MigrationError,
)
from ..paths import fsync_dir
from ..reports import utc_now

if TYPE_CHECKING:
    pass



KILL_ENV = "N4A_MIGRATION_TEST_KILL_AT"
KILL_POINTS = (
    "journal_written",   # staging journal on disk, nothing built yet
    "converting",        # first batch of predictions written into staging
    "before_verify",     # staging complete, not yet verified
    "verified",          # journal says verified, nothing renamed yet
    "source_renamed",    # source renamed to the backup, journal not yet updated
    "staging_renamed",   # staging renamed into place, journal not yet updated
    "published",         # journal says published, not yet removed
)


def _kill_point(name: str) -> None:
    """Test hook: SIGKILL ourselves at ``name`` when ``N4A_MIGRATION_TEST_KILL_AT`` says so."""
    kill_point(name, env=KILL_ENV)




def write_journal(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace the journal (temp file + fsync + rename + fsync dir)."""
    tmp = path.with_name(path.name + ".tmp")
    payload = json.dumps({**data, "updated_at": utc_now()}, indent=2).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_journal(source: Path) -> dict[str, Any] | None:
    path = layout.migration_journal(source)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"phase": "staging", "corrupt": True}
    return data if isinstance(data, dict) else {"phase": "staging", "corrupt": True}


def _remove_journal(source: Path) -> None:
    for p in (layout.migration_journal(source), layout.migration_journal(source).with_suffix(".json.tmp")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    fsync_dir(source.parent)


def _rename(src: Path, dst: Path) -> None:
    os.rename(src, dst)
    fsync_dir(dst.parent)


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_staging(source: Path) -> None:
    staging = layout.migration_staging_dir(source)
    _rmtree(staging)
    # upgrade_workspace_copy builds in its own temp folder beside its output.
    for leftover in source.parent.glob(f".{staging.name}-upgrade-*"):
        _rmtree(leftover)



def _publish(source: Path, staging: Path, output: Path | None, journal: dict[str, Any]) -> tuple[Path, Path | None]:
    """Rename staging into place; every step is recorded so a crash can be resumed."""
    jpath = layout.migration_journal(source)
    if output is not None:
        if staging.exists():
            _rename(staging, output)
        _kill_point("staging_renamed")
        write_journal(jpath, {**journal, "phase": "published"})
        _kill_point("published")
        _remove_journal(source)
        return output, None
    backup = Path(journal["backup"])
    if source.exists() and staging.exists() and not backup.exists():
        _rename(source, backup)
    _kill_point("source_renamed")
    write_journal(jpath, {**journal, "phase": "source_renamed"})
    if staging.exists() and not source.exists():
        _rename(staging, source)
    _kill_point("staging_renamed")
    write_journal(jpath, {**journal, "phase": "published"})
    _kill_point("published")
    _remove_journal(source)
    return source, backup


def _rollback(source: Path, journal: dict[str, Any] | None) -> Path:
    """Undo whatever a migration left: the source ends up untouched at its path."""
    staging = layout.migration_staging_dir(source)
    backup = Path(journal["backup"]) if journal and journal.get("backup") else None
    output = Path(journal["output"]) if journal and journal.get("output") else None
    if output is not None and journal and journal.get("phase") == "published" and output.exists() \
            and not staging.exists():
        _rename(output, staging)  # an unfinished publish to output: drop the result
    if backup is not None and backup.exists():
        if source.exists():
            if staging.exists():
                raise MigrationError(
                    f"Cannot roll back automatically: {source}, {staging} and {backup} all exist.",
                    f"Your original workspace is {backup}. Inspect the three folders and remove the wrong one.",
                )
            _rename(source, staging)  # the published result goes away with the staging
        _rename(backup, source)
    _remove_staging(source)
    _remove_journal(source)
    return source

