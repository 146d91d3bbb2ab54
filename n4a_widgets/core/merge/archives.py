"""Workspace archives (``.zip``) as merge sources, read safely.

nirs4all-cluster hands each task's workspace back as ``workspace.zip`` (the
folder at the archive's root or one level down).  A merge reads such an
archive by extracting the one workspace folder it holds into a *private*
temporary folder (``tempfile.mkdtemp``, mode 0700, in the system temp
folder, never beside the user's files), which is removed when the merge
ends.  An archive is untrusted input, so:

- a member whose name is absolute, has a drive, or walks out with ``..`` is
  refused (path traversal), as is any symlink member;
- sizes are checked twice: the declared sizes against per-member and total
  limits and a compression-ratio limit, and the bytes actually written while
  streaming (a header may lie), so a zip bomb stops at the limit;
- anything without exactly one ``store.sqlite`` (or a legacy ``store.duckdb``)
  at the root or one folder down is refused with a clear error.

The state token of an archive source is the archive's own listing (names,
CRCs, sizes), so a preview and its confirmation agree although each extracts
afresh.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import layout
from ..errors import InvalidArgumentError

#: Limits against zip bombs (module attributes so a deployment or a test can tighten them).
MAX_MEMBER_BYTES = 8 << 30
MAX_TOTAL_BYTES = 32 << 30
MAX_RATIO = 200
"""Largest uncompressed/compressed ratio accepted for members above ``RATIO_MIN_BYTES``."""
RATIO_MIN_BYTES = 1 << 20
MAX_MEMBERS = 200_000
_CHUNK = 1 << 20
_STORE_NAMES = (layout.STORE_SQLITE, layout.STORE_DUCKDB)


def is_archive(path: Path) -> bool:
    """True for a file that is a zip archive (by name or content)."""
    return path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path))


def _refuse(archive: Path, what: str, hint: str = "") -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Archive {archive} {what}; it was not merged (nothing of it was kept).",
        hint or "Give a .zip made from a nirs4all workspace folder (for example nirs4all-cluster's workspace.zip).",
    )


def _member_parts(archive: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in pure.parts:
        raise _refuse(archive, f"has a member that points outside its folder ({info.filename!r})")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(archive, f"has a symbolic link member ({info.filename!r})")
    return tuple(p for p in pure.parts if p not in ("", "."))


def _check_sizes(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise _refuse(archive, f"has {len(infos)} members (limit {MAX_MEMBERS})")
    total = 0
    for info in infos:
        if info.file_size > MAX_MEMBER_BYTES:
            raise _refuse(archive, f"has a member of {info.file_size} bytes ({info.filename!r}; "
                          f"limit {MAX_MEMBER_BYTES})")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _refuse(archive, f"has a member compressed more than {MAX_RATIO}:1 ({info.filename!r}): a zip bomb?")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise _refuse(archive, f"expands to {total} bytes (limit {MAX_TOTAL_BYTES})")


def _workspace_prefix(archive: Path, members: list[tuple[tuple[str, ...], zipfile.ZipInfo]]) -> tuple[str, ...]:
    """The folder inside the archive that holds the store: the root or one level down."""
    roots = {parts[:-1] for parts, info in members if not info.is_dir() and parts and parts[-1] in _STORE_NAMES
             and len(parts) <= 2}
    if not roots:
        raise _refuse(
            archive, "holds no nirs4all workspace (no store.sqlite at its root or one folder down)",
            "Zip the workspace folder itself (the one holding store.sqlite, arrays/ and artifacts/).",
        )
    if len(roots) > 1:
        names = ", ".join(sorted("/".join(r) or "(root)" for r in roots))
        raise _refuse(archive, f"holds several workspaces ({names})", "Zip one workspace per archive.")
    return next(iter(roots))


def archive_token(archive: Path) -> str:
    """Fingerprint of an archive's content from its central directory (names, CRCs, sizes)."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                h.update(f"{info.filename}\0{info.CRC}\0{info.file_size}\n".encode())
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(archive, f"cannot be read as a zip ({exc})") from exc
    return h.hexdigest()


def extract_workspace(archive: Path, into: Path) -> Path:
    """Extract the workspace folder of ``archive`` below ``into`` (a private folder); returns it."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(archive, f"cannot be read as a zip ({exc})") from exc
    with zf:
        infos = zf.infolist()
        members = [(_member_parts(archive, info), info) for info in infos]
        _check_sizes(archive, infos)
        prefix = _workspace_prefix(archive, members)
        dest = into / (prefix[-1] if prefix else archive.stem or "workspace")
        dest.mkdir(parents=True, exist_ok=False)
        written = 0
        for parts, info in members:
            if parts[: len(prefix)] != prefix or len(parts) == len(prefix):
                continue
            rel = parts[len(prefix):]
            out = dest.joinpath(*rel)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            member_written = 0
            if out.exists():
                raise _refuse(archive, f"lists {info.filename!r} twice")
            with zf.open(info) as src, open(out, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    member_written += len(chunk)
                    written += len(chunk)
                    if member_written > max(info.file_size, 0) or member_written > MAX_MEMBER_BYTES:
                        raise _refuse(archive, f"member {info.filename!r} holds more bytes than it declares")
                    if written > MAX_TOTAL_BYTES:
                        raise _refuse(archive, f"expands past {MAX_TOTAL_BYTES} bytes")
                    dst.write(chunk)
    return dest


@dataclass
class ArchiveSet:
    """The private temporary folders of one merge's archive sources; ``close()`` removes them."""

    folders: list[Path] = field(default_factory=list)

    def open(self, archive: Path) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix="n4a-merge-src-"))
        self.folders.append(tmp)
        try:
            return extract_workspace(archive, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self.folders.remove(tmp)
            raise

    def close(self) -> None:
        while self.folders:
            shutil.rmtree(self.folders.pop(), ignore_errors=True)

    def __enter__(self) -> ArchiveSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
