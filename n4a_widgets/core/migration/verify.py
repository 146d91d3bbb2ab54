"""Verify a migrated workspace against its legacy source: everything, not a sample.

For every prediction the source would carry over: same id, same metadata
(scores JSON included, NaN-aware), same pipeline name, and every array equal
element by element (NaN-aware).  Plus per-table counts and byte-identical
artifact files.  The migrated side is read the way nirs4all 1.4 reads it:
``WorkspaceStore.open_readonly`` must accept it, targets are decoded with
nirs4all's own codec, array files are named by nirs4all's sanitizer.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import layout
from ..arrays_readonly import tombstone_ids
from ..errors import OperationCancelledError
from ..progress import Ticker
from .readers import (
    CORE_TABLES,
    FLOAT_ARRAYS,
    INT_ARRAYS,
    LegacyReader,
    SQLiteReader,
    iter_parquet_arrays,
    sanitize_dataset_filename,
)

#: Metadata compared per prediction (when the source has the column).
COMPARED_FIELDS = (
    "dataset_name", "model_name", "model_class", "fold_id", "partition", "val_score", "test_score", "train_score",
    "metric", "task_type", "n_samples", "n_features", "scores", "best_params", "preprocessings", "branch_id",
    "branch_name", "exclusion_count", "exclusion_rate", "refit_context", "pipeline_name",
)
MAX_LISTED = 50


def same_value(a: Any, b: Any) -> bool:
    """Deep equality where NaN equals NaN and ints equal floats of the same value."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def same_array(a: Any, b: Any) -> bool:
    import numpy as np

    if a is None or b is None:
        return a is None and b is None
    x, y = np.asarray(a).ravel(), np.asarray(b).ravel()
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        return bool(np.array_equal(x.astype(np.float64), y.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(x, y))


def legacy_empty(value: Any) -> bool:
    """Legacy stores wrote ``{}``/``""``/NULL interchangeably for "nothing"."""
    return value is None or value == {} or value == "" or value == []


@dataclass
class VerifyResult:
    checked: int = 0
    arrays_checked: int = 0
    array_values_checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0
    table_counts_source: dict[str, int] = field(default_factory=dict)
    table_counts_output: dict[str, int] = field(default_factory=dict)
    artifacts_checked: int = 0

    def add(self, text: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MAX_LISTED:
            self.mismatches.append(text)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify(
    reader: LegacyReader,
    output: Path,
    *,
    skip: set[str],
    expected_counts: dict[str, int],
    artifact_pairs: list[tuple[Path, Path]],
    batch_rows: int = 256,
    ticker: Ticker | None = None,
) -> VerifyResult:
    """Compare ``reader`` (the untouched source) with the workspace at ``output``."""
    from nirs4all.pipeline.storage.workspace_store import WorkspaceStore

    result = VerifyResult()
    store = WorkspaceStore.open_readonly(output)  # must accept the result
    store.close()
    new = SQLiteReader(output, "sqlite-schema-current")
    try:
        result.table_counts_source = {t: reader.count(t) for t in CORE_TABLES}
        result.table_counts_output = {t: new.count(t) for t in CORE_TABLES}
        for table, want in expected_counts.items():
            found = result.table_counts_output.get(table, 0)
            if found != want:
                result.add(f"table {table}: expected {want} rows, found {found}")

        datasets = reader.datasets()
        total = max(1, sum(datasets.values()))
        done = 0
        new_tomb = tombstone_ids(output)
        source_ids: set[str] = set()
        for dataset in datasets:
            new_path = output / layout.ARRAYS_DIR / f"{sanitize_dataset_filename(dataset)}.parquet"
            new_live = set(new.live_ids(dataset))
            new_stream = (
                iter_parquet_arrays(new_path, new_live, tombstones=new_tomb, batch_rows=batch_rows)
                if new_path.is_file() else iter(())
            )
            pending_src: dict[str, dict[str, Any]] = {}
            pending_new: dict[str, dict[str, Any]] = {}
            for batch in reader.iter_batches(dataset, batch_rows=batch_rows, skip=skip):
                if ticker is not None and ticker.cancelled:
                    raise OperationCancelledError("Migration cancelled during verification.")
                ids = [str(meta["prediction_id"]) for meta, _ in batch]
                source_ids.update(ids)
                new_meta = new.predictions_meta(ids)
                for meta, arrays in batch:
                    pid = str(meta["prediction_id"])
                    result.checked += 1
                    got = new_meta.get(pid)
                    if got is None:
                        result.add(f"prediction {pid} ({dataset}) is missing from the output")
                        continue
                    for key in COMPARED_FIELDS:
                        if key not in meta:
                            continue
                        a, b = meta[key], got.get(key)
                        if not same_value(a, b) and not (legacy_empty(a) and legacy_empty(b)):
                            result.add(f"prediction {pid}: {key} differs ({a!r} != {b!r})")
                    if arrays is not None:
                        pending_src[pid] = arrays
                # Pull the output's rows until every source row of this batch is matched.
                _match(pending_src, pending_new, result)
                while pending_src:
                    try:
                        pid, arrays = next(new_stream)
                    except StopIteration:
                        break
                    pending_new[pid] = arrays
                    _match(pending_src, pending_new, result)
                done += len(batch)
                if ticker is not None:
                    ticker.step(done / total, f"Verifying {dataset}: {done}/{total} predictions")
            for pid, arrays in new_stream:
                pending_new[pid] = arrays
            _match(pending_src, pending_new, result)
            for pid in pending_src:
                result.add(f"prediction {pid} ({dataset}): arrays missing from the output")
            for pid in pending_new:
                result.add(f"prediction {pid} ({dataset}): output has arrays the source does not have")
        extra = new.count("predictions") - len(source_ids)
        if extra > 0:
            result.add(f"output has {extra} predictions that are not in the source")
        for src, dst in artifact_pairs:
            result.artifacts_checked += 1
            if not dst.is_file():
                result.add(f"artifact file {dst.name} is missing from the output")
            elif src.stat().st_size != dst.stat().st_size or sha256_file(src) != sha256_file(dst):
                result.add(f"artifact file {dst.name} differs from the source")
    finally:
        new.close()
    return result


def _match(src: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], result: VerifyResult) -> None:
    for pid in [p for p in src if p in new]:
        a, b = src.pop(pid), new.pop(pid)
        result.arrays_checked += 1
        for name in (*FLOAT_ARRAYS, *INT_ARRAYS):
            x, y = a.get(name), b.get(name)
            if x is None and name not in a:
                continue  # the legacy layout has no such column
            if not same_array(x, y):
                result.add(f"prediction {pid}: array {name} differs")
            elif x is not None:
                result.array_values_checked += int(getattr(x, "size", 0))
        meta_a, meta_b = a.get("sample_metadata"), b.get("sample_metadata")
        if "sample_metadata" in a and not same_value(meta_a, meta_b) and not (
            legacy_empty(meta_a) and legacy_empty(meta_b)
        ):
            result.add(f"prediction {pid}: sample_metadata differs")
