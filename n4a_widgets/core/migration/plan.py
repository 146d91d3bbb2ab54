"""Read-only survey of a legacy source: its layout, counts, estimate and the dry-run report."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import layout
from ..errors import (
    MigrationError,
    UnsupportedFormatError,
)
from .context import _Run
from .report import MigrationReport

if TYPE_CHECKING:
    from .readers import LegacyReader



CONVERT_COST_FACTOR = 4.0


def tree_size(root: Path) -> int:
    total = 0
    if not root.exists():
        return 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total


def _arrays_size(root: Path) -> int:
    arrays = root / layout.ARRAYS_DIR
    return sum(p.stat().st_size for p in arrays.glob("*.parquet")) if arrays.is_dir() else 0


def _metadata_store(root: Path) -> Path:
    duck = root / layout.STORE_DUCKDB
    return duck if duck.is_file() and not (root / layout.STORE_SQLITE).is_file() else root / layout.STORE_SQLITE



def _plan_reader(source: Path, layout_name: str) -> LegacyReader:
    from .readers import open_reader

    return open_reader(source, layout_name)


def _classify(source: Path) -> tuple[str, str]:
    """(layout, conversion kind) of a legacy source; raises for anything else."""
    from ..status import LEGACY, MIGRATED, NEW, detect_status

    st = detect_status(source)
    if st.storage_mode in (MIGRATED, NEW):
        raise MigrationError(
            f"{source} is already in the current format ({st.layout}); there is nothing to migrate.",
            "Open it with nirs4all 1.x as it is.",
        )
    if st.storage_mode != LEGACY:
        raise MigrationError(f"{source} is in state {st.storage_mode}: {st.message}")
    if st.layout == "runs-manifest-tree":
        raise UnsupportedFormatError(*_runs_tree_refusal(source))
    if st.layout in ("duckdb-inline-arrays", "duckdb-parquet-sidecars", "sqlite-inline-arrays"):
        return st.layout, "convert"
    if st.layout.startswith("sqlite-schema-"):
        version = st.schema_version or 0
        wal = source / f"{layout.STORE_SQLITE}-wal"
        wal_dirty = wal.is_file() and wal.stat().st_size > 0
        return st.layout, ("upgrade" if version >= 2 and not wal_dirty else "reopen-copy")
    raise UnsupportedFormatError(f"{source} has an unknown storage layout ({st.layout}).")


def _runs_tree_refusal(source: Path) -> tuple[str, str]:
    """Explain what a <=0.6 runs/ tree holds and why it is not carried over."""
    import pyarrow.parquet as pq

    metas = sorted(source.glob("*.meta.parquet"))
    rows = 0
    for m in metas:
        with contextlib.suppress(Exception):
            rows += pq.read_metadata(m).num_rows
    manifests = len(list((source / layout.RUNS_DIR).glob("*/*/manifest.yaml")))
    models = len(list((source / "binaries").rglob("*"))) if (source / "binaries").is_dir() else 0
    message = (
        f"{source} is a nirs4all <= 0.6 runs/ tree ({manifests} pipeline manifests, {rows} prediction rows in "
        f"{len(metas)} *.meta.parquet files, {models} model files in binaries/). It cannot be carried over "
        "faithfully: that release has no runs/pipelines/chains tables, its models are referenced by per-run "
        "paths that nirs4all 1.x chains cannot replay, and its prediction rows lack the chain links the current "
        "store requires."
    )
    hint = (
        "Nothing was changed. Keep this folder as an archive (its *.meta.parquet / *.arrays.parquet files are "
        "plain Parquet you can read with pandas or polars), and re-run the pipelines with nirs4all 1.x into a "
        "new workspace to get replayable models."
    )
    return message, hint


# -------------------------------------------------------------- dry run


def _estimate(reader: LegacyReader, kind: str, datasets: dict[str, int], legacy_bytes: int) -> float:
    """Seconds, extrapolated from timing a read-only sample of the source."""
    if not datasets:
        return 0.0
    total = sum(datasets.values())
    if kind != "convert":
        # upgrade: dominated by copying the bytes; time reading the largest array file.
        files = sorted((reader.root / layout.ARRAYS_DIR).glob("*.parquet"), key=lambda p: p.stat().st_size)
        size = tree_size(reader.root)
        if not files or size == 0:
            return 0.5
        t0 = time.perf_counter()
        with files[-1].open("rb") as fh:
            read = len(fh.read(8 * 1024 * 1024))
        elapsed = max(time.perf_counter() - t0, 1e-4)
        return round(0.5 + size / max(read / elapsed, 1.0) * CONVERT_COST_FACTOR, 2)
    import nirs4all.pipeline.storage.array_store  # noqa: F401  (import cost is not migration cost)

    biggest = max(datasets, key=lambda d: datasets[d])
    next(iter(reader.iter_batches(biggest, batch_rows=8)), None)  # warm caches and query plans
    t0 = time.perf_counter()
    sampled = 0
    for batch in reader.iter_batches(biggest, batch_rows=128):
        sampled += len(batch)
        if sampled >= 256 or time.perf_counter() - t0 > 2.0:
            break
    elapsed = time.perf_counter() - t0
    per_row = elapsed / max(sampled, 1)
    return round(0.5 + per_row * total * CONVERT_COST_FACTOR, 2)


def _empty_report(run: _Run, **kw: Any) -> MigrationReport:
    base: dict[str, Any] = dict(
        source_path=str(run.source), source_format=run.layout_name, dry_run=True, action="migrate",
        state="planned", total_rows=0, rows_migrated=0, datasets_migrated=0, datasets=(),
        verification_passed=False, verification_sample_size=0, verification_mismatches=0, mismatch_details=(),
        arrays_verified=0, array_values_verified=0, artifacts_verified=0, duckdb_size_before=0,
        duckdb_size_after=0, parquet_total_size=0, legacy_array_bytes=0, size_before_bytes=0, size_after_bytes=0,
        duration_seconds=0.0, estimated_duration_seconds=None, table_counts_before={}, table_counts_after={},
        merged_duplicates=(), output_path=None, backup_path=None, errors=(), warnings=tuple(run.warnings),
        started_at=run.started_at,
    )
    base.update(kw)
    return MigrationReport(**base)


def _plan(
    run: _Run, kind: str, output: Path | None, backup: Path | None, *, estimate: bool = False
) -> tuple[MigrationReport, set[str]]:
    """Read-only survey of the source: the dry-run report and the ids to skip."""
    with _plan_reader(run.source, run.layout_name) as reader:
        counts = reader.table_counts()
        datasets = reader.datasets()
        dups = reader.natural_key_duplicates() if kind == "convert" else set()
        orphans = reader.orphan_predictions() if kind == "convert" else []
        legacy_bytes = reader.array_bytes()
        seconds = _estimate(reader, kind, datasets, legacy_bytes) if estimate else None
    errors: list[str] = []
    if orphans:
        errors.append(
            f"{len(orphans)} predictions reference a pipeline that does not exist (e.g. {orphans[0]}); "
            "nirs4all 1.x requires every prediction to belong to a pipeline."
        )
    warnings = list(run.warnings)
    if dups:
        warnings.append(
            f"{len(dups)} legacy predictions share their natural key (pipeline, chain, fold, partition, model, "
            "branch) with a newer prediction; nirs4all 1.x keeps one per key, so the newest is kept and these "
            "are listed in merged_duplicates."
        )
    report = _empty_report(
        run,
        total_rows=sum(datasets.values()),
        datasets=tuple({"name": k, "predictions": v, "migrated": v} for k, v in datasets.items()),
        datasets_migrated=len(datasets),
        rows_migrated=sum(datasets.values()) - len(dups),
        duckdb_size_before=_metadata_store(run.source).stat().st_size,
        legacy_array_bytes=legacy_bytes,
        size_before_bytes=tree_size(run.source),
        estimated_duration_seconds=seconds,
        table_counts_before=counts,
        merged_duplicates=tuple(sorted(dups)),
        output_path=str(output) if output is not None else str(run.source),
        backup_path=str(backup) if backup is not None else None,
        errors=tuple(errors),
        warnings=tuple(warnings),
    )
    return report, dups


STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def new_stamp() -> str:
    """The UTC timestamp of a backup name, taken once per plan (the dry run's is carried by its plan_id)."""
    return _dt.datetime.now(_dt.UTC).strftime(STAMP_FORMAT)


def backup_name(source: Path, stamp: str) -> Path:
    """``<name>.legacy-<stamp>``, or ``-2``, ``-3``... when that name is taken."""
    candidate = source.parent / f"{layout.migration_backup_prefix(source)}{stamp}"
    n = 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = source.parent / f"{layout.migration_backup_prefix(source)}{stamp}-{n}"
    return candidate


def tree_state_token(root: Path) -> str:
    """Fingerprint of every file under ``root`` (path, size, mtime): changes when anything is written.

    A legacy source has few files (one store, its sidecars, the artifacts), so
    stat-ing them all is cheap next to reading them.
    """
    h = hashlib.sha256()
    if not root.exists():
        return "absent"
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = path.stat()
                h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    return h.hexdigest()
