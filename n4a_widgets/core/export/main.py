"""``export_predictions``: the export operation, from selection to publishing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import layout
from ..arrays_readonly import parquet_path_for, read_tombstones
from ..errors import (
    CorruptStoreError,
    InvalidArgumentError,
    OperationCancelledError,
    UnsupportedFormatError,
    WorkspaceError,
)
from ..progress import Progress
from ..readonly_sqlite import open_readonly
from ..reports import utc_now
from .metadata import _Metadata
from .plan import (
    _DatasetPlan,
    _plan_dataset,
)
from .publish import _map_write_error, _publish, _Scratch
from .reports import ExportChoices, ExportedFile, ExportReport
from .target import _check_format, resolve_target
from .writers import (
    EXPORT_INFO_KEY,
    _start_splice,
    _write_one,
)

if TYPE_CHECKING:
    import sqlite3

    from ..parquet_splice import Splice


# --------------------------------------------------------------------- main


def export_predictions(
    root: Path,
    dest: str | os.PathLike[str],
    *,
    datasets: Sequence[str] | None = None,
    partition: str | None = None,
    model_name: str | None = None,
    format: str = "auto",
    fold_id: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ExportReport:
    """Export live predictions of ``datasets`` (all by default) to Parquet at ``dest``.

    See the module docstring for the columns, the row rules and the two write
    paths.  ``format``: ``auto`` (a file for one dataset, a zip for several),
    ``parquet``, ``zip`` (Parquet files stored uncompressed in the zip) or
    ``folder``.  ``dest`` may be an existing folder for ``parquet``/``zip``:
    the file is then named after the dataset / the workspace.  Raises
    ``InvalidArgumentError`` (unknown dataset, nothing matches, bad format),
    ``WorkspaceError`` (destination exists, not writable),
    ``CorruptStoreError`` (unreadable array file) or
    ``OperationCancelledError``; on any error nothing is left at ``dest``.
    """
    from ..status import MIGRATED, detect_status

    started = time.perf_counter()
    root = Path(root)
    _check_format(format)
    for label, value in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{label} must be a string, not {type(value).__name__}.")
    if isinstance(datasets, str):
        datasets = [datasets]

    def report_progress(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise OperationCancelledError("Export cancelled; partial files were removed.")

    status = detect_status(root)
    if status.storage_mode != MIGRATED:
        raise UnsupportedFormatError(f"Export reads the current storage format; this workspace is "
                                     f"{status.storage_mode} ({status.format}).")
    report_progress(0.0, "Reading metadata")
    db = root / layout.STORE_SQLITE
    try:
        tombstones = set(read_tombstones(root))
    except Exception as exc:  # noqa: BLE001
        raise CorruptStoreError(f"{root / layout.ARRAYS_DIR / layout.TOMBSTONES_FILE} cannot be read ({exc}).") from exc

    with open_readonly(db) as conn:
        known = sorted(r[0] for r in conn.execute("SELECT DISTINCT dataset_name FROM predictions") if r[0] is not None)
        if datasets is None:
            chosen = known
        else:
            chosen = list(dict.fromkeys(datasets))
            unknown = [d for d in chosen if d not in known]
            if unknown:
                raise InvalidArgumentError(
                    f"Unknown dataset{'s' if len(unknown) > 1 else ''}: {', '.join(map(repr, unknown))}.",
                    "Known datasets: " + (", ".join(map(repr, known)) if known else "none (the workspace is empty)")
                    + ".",
                )
        if not chosen:
            raise InvalidArgumentError("The workspace has no predictions to export.", "Run nirs4all first.")
        target = resolve_target(root, dest, chosen, format, overwrite)

        filters = {k: v for k, v in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id))
                   if v is not None}
        folder = target.final if target.format == "folder" else target.final.parent
        plans: list[_DatasetPlan] = []
        metas: dict[str, _Metadata] = {}
        scratch = _Scratch()
        early: dict[str, Splice] = {}
        files: list[ExportedFile] = []
        try:
            if target.create_exports_dir:
                (root / layout.EXPORTS_DIR).mkdir(exist_ok=True)
                scratch.dirs.append(root / layout.EXPORTS_DIR)
            if target.format == "folder" and not target.final.exists():
                target.final.mkdir()
                scratch.dirs.append(target.final)
            for i, name in enumerate(chosen):
                check_cancel()
                report_progress(0.02 * i / len(chosen), f"Selecting rows of {name}")
                source = parquet_path_for(root, name)
                plan = _DatasetPlan(name, source if source.is_file() else None, target.file_names[name])
                if i == 0 and not filters and plan.source is not None:
                    # Most likely a plain copy: let the kernel start copying while we select rows.
                    opened = _start_splice(plan.source, scratch.temp_name(folder, plan.file_name))
                    if opened is not None:
                        early[name] = opened
                meta = _Metadata(conn, skip=_array_columns(plan.source), db=db)
                count = conn.execute("SELECT COUNT(*) FROM predictions WHERE dataset_name = ?", (name,)).fetchone()[0]
                seen = [0]

                def on_rows(n: int, i: int = i, name: str = name, count: int = count, seen: list[int] = seen) -> None:
                    seen[0] += n
                    check_cancel()
                    report_progress(0.02 * (i + seen[0] / max(count, 1)) / len(chosen),
                                    f"Selecting rows of {name} ({seen[0]}/{count})")

                live, selected = meta.scan(name, filters, on_rows)
                _plan_dataset(plan, live, selected, tombstones)
                del live, selected
                plans.append(plan)
                metas[name] = meta
            for name in list(early):
                plan = next(p for p in plans if p.name == name)
                if plan.rows == 0 or plan.needs_filtering:  # the guess was wrong: drop the copy
                    dropped = early.pop(name)
                    dropped.abort()
                    dropped.out.unlink(missing_ok=True)

            to_write = [p for p in plans if p.rows > 0]
            skipped = tuple(p.name for p in plans if p.rows == 0)
            if not to_write:
                what = ", ".join(f"{k}={v!r}" for k, v in filters.items())
                raise InvalidArgumentError(
                    "No live prediction matches " + (what if what else "the selection") + " in "
                    + ", ".join(map(repr, chosen)) + "; nothing was written.",
                    _filter_hint(conn, chosen) if filters
                    else "The selected datasets have no live predictions with arrays.",
                )

            notes: list[str] = []
            for p in plans:
                if p.source is None:
                    notes.append(f"{p.name}: no array file, skipped.")
                elif p.rows == 0:
                    notes.append(f"{p.name}: no live prediction matches the filters, skipped.")

            info = {
                EXPORT_INFO_KEY: json.dumps({
                    "exported_at": utc_now(), "workspace": root.name, "filters": filters,
                    "nirs4all": _nirs4all_version(), "n4a_widgets": _our_version(),
                }),
            }
            total_work = sum(p.source_rows for p in to_write) or 1
            done = [0]
            current = [""]

            def tick(rows: int) -> None:
                done[0] += rows
                check_cancel()
                report_progress(0.02 + 0.96 * done[0] / total_work,
                                f"Writing {current[0]} ({done[0]}/{total_work} rows)")

            written: list[tuple[_DatasetPlan, Path, str]] = []
            for plan in to_write:
                check_cancel()
                current[0] = plan.name
                splice = early.get(plan.name)  # stays in ``early`` until done: an error aborts it
                tmp = splice.out if splice is not None else scratch.temp_name(folder, plan.file_name)
                assert plan.source is not None and plan.schema is not None
                meta = metas.pop(plan.name)
                method = _write_one(plan, meta, tmp, info, tick, splice)
                early.pop(plan.name, None)
                written.append((plan, tmp, method))
            check_cancel()
            report_progress(0.99, "Publishing")
            files = _publish(target, written, scratch, overwrite)
        except BaseException as exc:
            for pending in early.values():
                pending.abort()
            scratch.discard()
            if isinstance(exc, OSError) and not isinstance(exc, WorkspaceError):
                raise _map_write_error(exc, target.final) from exc
            raise

    report_progress(1.0, "Done")
    return ExportReport(
        workspace=str(root),
        dest=str(target.final),
        format=target.format,
        files=tuple(files),
        total_rows=sum(f.rows for f in files),
        total_bytes=(target.final.stat().st_size if target.format == "zip" else sum(f.bytes for f in files)),
        duration_seconds=round(time.perf_counter() - started, 3),
        datasets=tuple(p.name for p in to_write),
        partition=partition,
        model_name=model_name,
        fold_id=fold_id,
        excluded_tombstoned=sum(p.tombstoned for p in plans),
        excluded_orphans=sum(p.orphans for p in plans),
        excluded_duplicates=sum(p.duplicates for p in plans),
        excluded_by_filters=sum(p.filtered for p in plans),
        skipped_datasets=skipped,
        exported_at=utc_now(),
        notes=tuple(notes),
    )


def _array_columns(source: Path | None) -> set[str]:
    """Column names of an array file (its footer only); metadata columns it already has are skipped."""
    import pyarrow.parquet as pq

    if source is None:
        return set()
    try:
        return set(pq.read_schema(source).names)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the row selection
        return set()


def _filter_hint(conn: sqlite3.Connection, datasets: Sequence[str]) -> str:
    marks = ",".join("?" * len(datasets))
    parts = []
    for column in ("partition", "model_name", "fold_id"):
        values = [r[0] for r in conn.execute(
            f"SELECT DISTINCT {column} FROM predictions WHERE dataset_name IN ({marks}) ORDER BY 1", list(datasets))]
        parts.append(f"{column}: {', '.join(map(repr, values[:12]))}{' ...' if len(values) > 12 else ''}")
    return "Values present — " + "; ".join(parts) + "."


def _nirs4all_version() -> str:
    import sys

    module = sys.modules.get("nirs4all")  # imported already (file naming); importlib.metadata scans sys.path
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("nirs4all")
    except PackageNotFoundError:
        return "unknown"


def _our_version() -> str:
    from ... import __version__

    return __version__


def export_choices(root: Path) -> ExportChoices:
    """Datasets (live predictions, array file size) and the distinct filter values (read-only)."""
    from ..health import compute_health
    from ..status import detect_status

    root = Path(root)
    health = compute_health(root, detect_status(root))
    with open_readonly(root / layout.STORE_SQLITE) as conn:
        def distinct(column: str) -> tuple[str, ...]:
            return tuple(str(r[0]) for r in conn.execute(
                f"SELECT DISTINCT {column} FROM predictions WHERE {column} IS NOT NULL ORDER BY 1"))

        partitions, models, folds = distinct("partition"), distinct("model_name"), distinct("fold_id")
    datasets = tuple(
        {"name": d.name, "prediction_count": d.prediction_count, "parquet_size_bytes": d.parquet_size_bytes,
         "pending_tombstones": d.pending_tombstones}
        for d in health.datasets if d.prediction_count > 0
    )
    return ExportChoices(datasets=datasets, partitions=partitions, models=models, folds=folds)


