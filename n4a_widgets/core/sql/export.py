"""Where a query's full result may be written: outside the workspace, never into it.

``resolve_export_path`` checks the destination as given and with links resolved
(``paths.is_inside``: a user's ``arrays/`` may itself be a link to another disk);
``SafeDestination`` then writes relative to the folder it opened once, so a
folder swapped for a link between the check and the write cannot redirect it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _fd_path(fd: int) -> Path | None:
    """Where an open folder really is (Linux: ``/proc/self/fd``), or None when the OS cannot say."""
    with contextlib.suppress(OSError):
        link = os.readlink(f"/proc/self/fd/{fd}")
        if link.startswith("/"):
            return Path(link)
    return None


def _refuse_inside(path: Path) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{path} is inside the workspace; the console never writes into a workspace.",
        "Choose a path outside the workspace folder.",
    )


class SafeDestination:
    """A temporary file in the destination folder, renamed to the destination only when complete.

    The folder is opened once; its real location (the open descriptor's, not
    the path's) must lie outside the workspace.  The temporary file is created
    relative to that descriptor, exclusively and without following links.
    Before the rename the path is checked to still name the same folder (a
    folder swapped for a link while the export ran is refused) and the rename
    happens inside the opened folder.  Without ``overwrite`` the final step is
    a hard link, which fails instead of replacing a file that appeared since.
    """

    def __init__(self, root: Path, target: Path, *, overwrite: bool) -> None:
        self.root = root
        self.target = target
        self.folder = target.parent
        self.name = target.name
        self.overwrite = overwrite
        self.size_bytes = 0
        self.tmp = f".{self.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        self.dir_fd = -1
        self.file: Any = None

    def __enter__(self) -> SafeDestination:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.dir_fd = os.open(self.folder, flags)
        except OSError as exc:
            raise InvalidArgumentError(
                f"Folder {self.folder} cannot be opened for the export.", "Pick a folder that exists and you can "
                "write to.",
            ) from exc
        try:
            self._check_folder()
            try:
                st = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise InvalidArgumentError(f"{self.target} is a folder.", "Give a file name ending in .parquet.")
            if st is not None and not self.overwrite:
                raise InvalidArgumentError(f"{self.target} already exists.", "Pick another name, or pass "
                                           "overwrite=True.")
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o644, dir_fd=self.dir_fd)
        except BaseException:
            os.close(self.dir_fd)
            raise
        self.file = os.fdopen(fd, "wb")
        return self

    def _check_folder(self) -> None:
        """The opened folder lies outside the workspace, and the path still names it."""
        real = _fd_path(self.dir_fd)
        mine = os.fstat(self.dir_fd)
        if real is None:  # no /proc: compare with the resolved path's identity
            real = self.folder.resolve()
            st = os.stat(real)
            if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
                raise self._changed()
        if is_inside(real, self.root) or is_inside(real / self.name, self.root):
            raise _refuse_inside(self.target)
        root_st = None
        with contextlib.suppress(OSError):
            root_st = os.stat(self.root)
        if root_st is not None and (root_st.st_dev, root_st.st_ino) == (mine.st_dev, mine.st_ino):
            raise _refuse_inside(self.target)
        try:
            now = os.stat(self.folder)
        except OSError as exc:
            raise self._changed() from exc
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            raise self._changed()

    def _changed(self) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"The folder {self.folder} changed while the export was prepared or written; nothing was written there.",
            "Check the folder (is it a link now?) and export again.",
        )

    def commit(self) -> None:
        """Publish the complete temporary file under the destination name."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.size_bytes = os.fstat(self.file.fileno()).st_size
        self.file.close()
        self._check_folder()
        if self.overwrite:
            os.rename(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        else:
            try:
                os.link(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False)
            except FileExistsError as exc:
                raise InvalidArgumentError(f"{self.target} already exists.", "Pick another name, or pass "
                                           "overwrite=True.") from exc
            except OSError:  # no hard links here (some network or FAT file systems): check, then rename
                with contextlib.suppress(FileNotFoundError):
                    os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
                    raise InvalidArgumentError(f"{self.target} already exists.", "Pick another name.") from None
                os.rename(self.tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)

    def __exit__(self, *exc: object) -> None:
        if self.file is not None and not self.file.closed:
            with contextlib.suppress(OSError):
                self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp, dir_fd=self.dir_fd)
        with contextlib.suppress(OSError):
            os.close(self.dir_fd)
