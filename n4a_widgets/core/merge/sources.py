"""Reading merge sources and the target, read-only: stores, array indexes, format checks, siblings."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from ..errors import (
    CorruptStoreError,
    InvalidArgumentError,
    UnsupportedFormatError,
    WorkspaceError,
)
from .reports import _COPY_COLUMNS, _EXTRA_COLUMNS, KEY_COLUMNS


def _query(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _read_store(root: Path, *, full: bool, datasets: set[str] | None) -> tuple[
    list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]
]:
    """Predictions (only the columns needed), pipelines and chains of ``root``, read-only.

    Rows come in ``query_predictions``' order (``created_at DESC``), which
    decides ties between rows of one source that share a conflict key.
    """
    from ..readonly_sqlite import open_readonly

    db = root / layout.STORE_SQLITE
    if not db.exists():
        return [], {}, {}
    with open_readonly(db) as conn:
        have = _columns(conn, "predictions")
        wanted = ["prediction_id", "pipeline_id", "chain_id", *KEY_COLUMNS, "best_params", "val_score"]
        if full:
            wanted += [c for c in (*_COPY_COLUMNS, *_EXTRA_COLUMNS) if c in have]
        cols = ", ".join(dict.fromkeys(wanted))
        rows = _query(conn, f"SELECT {cols} FROM predictions ORDER BY created_at DESC")
        if datasets is not None:
            rows = [r for r in rows if r["dataset_name"] in datasets]
        pcols = "pipeline_id, name, expanded_config, generator_choices, best_val, best_test, metric"
        if full:
            pcols += ", run_id, dataset_hash, original_template"
        pipelines = {r["pipeline_id"]: r for r in _query(conn, f"SELECT {pcols} FROM pipelines")}
        ccols = ("chain_id, pipeline_id, model_step_idx, branch_path, source_index, fold_artifacts, shared_artifacts, "
                 "model_class, preprocessings, dataset_name")
        if full:
            ccols += ", steps, fold_strategy, relation_replay_manifest"
        chains = {r["chain_id"]: r for r in _query(conn, f"SELECT {ccols} FROM chains")}
    return rows, pipelines, chains


def _read_lineage(root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Runs and artifacts of ``root`` (read-only): what a merged chain needs besides its row."""
    from ..readonly_sqlite import open_readonly

    db = root / layout.STORE_SQLITE
    if not db.exists():
        return {}, {}
    with open_readonly(db) as conn:
        runs = {r["run_id"]: r for r in _query(conn, "SELECT run_id, name, config, datasets FROM runs")}
        acols = "artifact_id, artifact_path, content_hash, operator_class, artifact_type, format, size_bytes, ref_count"
        artifacts = {r["artifact_id"]: r for r in _query(conn, f"SELECT {acols} FROM artifacts")}
    return runs, artifacts


def _array_index(root: Path, datasets: set[str]) -> tuple[dict[str, set[str]], dict[str, tuple[int, int]]]:
    """Ids present (and not tombstoned) in each dataset's array file, plus (bytes, rows) of the file."""
    import pyarrow.parquet as pq

    from ..arrays_readonly import parquet_path_for, read_tombstones

    tomb = set(read_tombstones(root))
    ids: dict[str, set[str]] = {}
    info: dict[str, tuple[int, int]] = {}
    for ds in sorted(datasets):
        path = parquet_path_for(root, ds)
        if not path.exists():
            ids[ds] = set()
            info[ds] = (0, 0)
            continue
        try:
            pf = pq.ParquetFile(path)
            col = pf.read(columns=["prediction_id", "dataset_name"])
        except Exception as exc:  # noqa: BLE001 - any decode failure means the file is unusable
            raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc
        names = col.column("dataset_name").to_pylist()
        pids = col.column("prediction_id").to_pylist()
        ids[ds] = {p for p, n in zip(pids, names, strict=True) if n == ds} - tomb
        info[ds] = (path.stat().st_size, pf.metadata.num_rows)
    return ids, info


def _check_source(root: Path, *, label: str | None = None) -> None:
    """``root`` is what is read (an archive's extracted folder); ``label`` how the user named it."""
    from ..status import LEGACY, MID_MIGRATION, MIGRATED, NEW, current_schema_version, detect_status

    st = detect_status(root)
    path = label or str(root)
    if st.storage_mode == MIGRATED:
        if st.schema_version is not None and st.schema_version != current_schema_version():
            raise UnsupportedFormatError(
                f"Source {path} has schema {st.schema_version}; this nirs4all reads schema {current_schema_version()}.",
                "Upgrade nirs4all to merge this workspace.",
            )
        return
    if st.storage_mode == NEW:
        raise InvalidArgumentError(
            f"Source {path} holds no nirs4all store.", "Pick a folder that contains store.sqlite.",
        )
    if st.storage_mode in (LEGACY, MID_MIGRATION):
        raise UnsupportedFormatError(
            f"Source {path} is a {st.storage_mode.replace('_', '-')} workspace ({st.format}); merge reads only the "
            "current format.",
            "Open it with MigrationWizard (or `python -m n4a_widgets migrate SOURCE`), migrate it, then merge the "
            "migrated workspace.",
        )
    raise UnsupportedFormatError(f"Source {path} has an unknown storage mode {st.storage_mode!r}.")


def _check_target(path: Path) -> str:
    from ..status import MIGRATED, NEW, current_schema_version, detect_status

    st = detect_status(path)
    if st.storage_mode == NEW:
        return NEW
    if st.storage_mode != MIGRATED:
        raise UnsupportedFormatError(
            f"Target {path} is a {st.storage_mode.replace('_', '-')} workspace; merge writes only into the "
            "current format.",
        )
    if st.schema_version is not None and st.schema_version != current_schema_version():
        raise UnsupportedFormatError(
            f"Target {path} has schema {st.schema_version}; this nirs4all writes schema {current_schema_version()}.",
            "Upgrade nirs4all first.",
        )
    return MIGRATED


@dataclass(frozen=True)
class SourceRef:
    """A merge source as the user gave it: a workspace folder or a ``.zip`` of one."""

    origin: Path
    archive: bool

    @property
    def name(self) -> str:
        return self.origin.stem if self.archive else self.origin.name


def _resolve_sources(target: Path, sources: Sequence[Any]) -> list[SourceRef]:
    from .archives import is_archive

    if isinstance(sources, (str, Path)) or not sources:
        if isinstance(sources, (str, Path)):
            sources = [sources]
        else:
            raise InvalidArgumentError(
                "No source workspace given.", "Pass one or more workspace folders (or .zip archives) to merge.",
            )
    seen: dict[Path, Path] = {}
    out: list[SourceRef] = []
    target_real = target.resolve()
    for src in sources:
        path = Path(getattr(src, "path", src)).expanduser().absolute()  # a Workspace or a path
        archive = is_archive(path)
        if not archive and not path.is_dir():
            if not path.exists():
                raise WorkspaceError(f"Source folder {path} does not exist.", "Check the path.")
            raise InvalidArgumentError(
                f"Source {path} is a file, neither a workspace folder nor a .zip of one.",
                "Pick the workspace folder (the one holding store.sqlite) or a .zip of it.",
            )
        real = path.resolve()
        if real == target_real:
            raise InvalidArgumentError(
                f"Source {path} is the target workspace itself.", "Remove it from the sources.",
            )
        if real in seen:
            raise InvalidArgumentError(
                f"Source {path} is listed twice (same as {seen[real]}).", "List each source once.",
            )
        seen[real] = path
        out.append(SourceRef(path, archive))
    return out


def check_source(target: Path, source: Any) -> dict[str, Any]:
    """Refuse a source that merge cannot read (legacy, not a workspace, a bad archive), read-only.

    What widgets call when a source is added, so a bad one is refused at once,
    not at preview.  Returns ``{path, name, archive, predictions, datasets}``.
    """
    from .archives import ArchiveSet

    (ref,) = _resolve_sources(target, [source])
    with ArchiveSet() as archives:
        root = archives.open(ref.origin) if ref.archive else ref.origin
        _check_source(root, label=str(ref.origin))
        return {
            "path": str(ref.origin), "name": ref.name, "archive": ref.archive,
            "predictions": _count_predictions(root), "datasets": sorted(_dataset_names(root)),
        }


def _dataset_names(root: Path) -> set[str]:
    from ..readonly_sqlite import open_readonly

    with open_readonly(root / layout.STORE_SQLITE) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions")}


def source_datasets(root: Path) -> set[str]:
    """Dataset names in a workspace's store (empty when it has none or cannot be read)."""
    try:
        return _dataset_names(root) if (root / layout.STORE_SQLITE).is_file() else set()
    except (WorkspaceError, sqlite3.Error):
        return set()


def sibling_workspaces(target: Path) -> list[dict[str, Any]]:
    """Folders next to ``target`` that hold a ``store.sqlite``, and ``.zip`` files: candidates to merge from.

    Archives are listed without being opened (``predictions`` is None); they are checked when added.
    """
    out: list[dict[str, Any]] = []
    parent = target.parent
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return out
    for entry in entries:
        try:
            if entry.is_file() and entry.suffix.lower() == ".zip":
                out.append({"path": str(entry), "name": entry.name, "predictions": None, "archive": True})
                continue
            if entry.resolve() == target.resolve() or not (entry / layout.STORE_SQLITE).is_file():
                continue
            count: int | None = _count_predictions(entry)
        except (OSError, WorkspaceError, sqlite3.Error):
            count = None
        out.append({"path": str(entry), "name": entry.name, "predictions": count, "archive": False})
    return out


def _count_predictions(root: Path) -> int:
    from ..readonly_sqlite import open_readonly

    db = root / layout.STORE_SQLITE
    if not db.exists():
        return 0
    with open_readonly(db) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


