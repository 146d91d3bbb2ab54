"""Workspaces inside ``.zip`` archives, found without extracting.

nirs4all-cluster returns each task's workspace as ``workspace.zip`` (the
folder at the archive's root or one level down).  We read the zip's central
directory (member names and sizes) and, for a SQLite store, only its first
100 bytes: the header holds ``PRAGMA user_version`` (offset 60), which tells a
current store from an outdated one.  Nothing is written and no array member is
read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from .. import layout
from ..status import LEGACY, MIGRATED, current_schema_version
from .report import UNKNOWN, FleetEntry

_SQLITE_MAGIC = b"SQLite format 3\x00"


def _workspace_prefixes(names: list[str]) -> dict[str, str]:
    """{folder inside the archive: kind} for each workspace at depth 0 or 1."""
    found: dict[str, str] = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if not parts or parts[0] == "__MACOSX":
            continue
        for depth in (0, 1):
            if len(parts) <= depth:
                continue
            prefix = "/".join(parts[:depth])
            rest = parts[depth:]
            if len(rest) == 1 and rest[0] in (layout.STORE_SQLITE, layout.STORE_DUCKDB):
                if found.get(prefix) != layout.STORE_SQLITE:  # SQLite wins over a DuckDB beside it
                    found[prefix] = rest[0]
            elif len(rest) == 4 and rest[0] == layout.RUNS_DIR and rest[3] == "manifest.yaml":
                found.setdefault(prefix, layout.RUNS_DIR)
    return found


def _member(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _sqlite_version(zf: zipfile.ZipFile, member: str) -> int | None:
    with zf.open(member) as fh:
        header = fh.read(100)
    if len(header) < 64 or not header.startswith(_SQLITE_MAGIC):
        return None
    return int.from_bytes(header[60:64], "big")


def probe_archive(path: Path) -> list[FleetEntry]:
    """One entry per workspace inside the zip at ``path``; [] when it holds none."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            prefixes = _workspace_prefixes(names)
            entries = []
            for prefix, kind in sorted(prefixes.items()):
                entries.append(_entry(path, zf, infos, prefix, kind))
            return entries
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        if path.name.lower() in ("workspace.zip",):
            return [_broken(path, exc)]
        return []


def _broken(path: Path, exc: BaseException) -> FleetEntry:
    size = path.stat().st_size if path.exists() else 0
    return FleetEntry(
        str(path), UNKNOWN, "zip-archive", False, size, None, (), None, None,
        f"Cannot read the archive {path} ({exc}).", "zip-unreadable", None, True, None, 0, 0, 0, None,
        "Unreadable archive.", (),
    )


def _entry(path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], prefix: str, kind: str) -> FleetEntry:
    base = f"{prefix}/" if prefix else ""
    mine = [i for i in infos if i.filename.startswith(base) and not i.is_dir()]
    size = sum(i.compress_size for i in mine)
    arrays_prefix = f"{base}{layout.ARRAYS_DIR}/"
    array_files = [i for i in mine if i.filename.startswith(arrays_prefix) and i.filename.endswith(".parquet")]
    datasets = tuple(sorted(PurePosixPath(i.filename).stem for i in array_files))
    notes = ["datasets are array file names (sanitized dataset names); open or extract the archive for counts"]
    error = None
    version: int | None = None
    if kind == layout.STORE_SQLITE:
        try:
            version = _sqlite_version(zf, _member(prefix, layout.STORE_SQLITE))
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
            error = f"Cannot read store.sqlite inside {path} ({exc})."
        if version is None and error is None:
            error = f"store.sqlite inside {path} is not a SQLite database."
        current = current_schema_version()
        mode = UNKNOWN if version is None else (MIGRATED if version >= current else LEGACY)
        fmt, lay = "sqlite-workspace-v2", f"zip:sqlite-schema-{version}"
        msg = "Current-format workspace in an archive." if mode == MIGRATED else (
            f"Workspace in an archive with outdated SQLite schema {version}: extract it, then migrate."
        )
    elif kind == layout.STORE_DUCKDB:
        mode, fmt, lay, msg = LEGACY, "duckdb-workspace", "zip:duckdb", "Legacy DuckDB workspace in an archive."
    else:
        mode, fmt, lay, msg = LEGACY, "fs-runs-legacy", "zip:runs-manifest-tree", "Legacy runs/ tree in an archive."
    arrays = sum(i.compress_size for i in array_files)
    stores = (layout.STORE_SQLITE, layout.STORE_DUCKDB)
    metadata = sum(i.compress_size for i in mine if PurePosixPath(i.filename).name.startswith(stores))
    return FleetEntry(
        str(path), mode, fmt, mode != MIGRATED, size, None, datasets, None, None, error, lay, version, True, prefix,
        arrays, metadata, 0, None, msg, tuple(notes),
    )
