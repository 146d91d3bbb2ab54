"""Reading a source's arrays column-wise and shaping them into ``save_batch`` records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptStoreError,
    PlanChangedError,
)
from .plan import _SourceInfo


def _load_arrays(root: Path, dataset: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``ArrayStore.load_batch(ids, dataset_name=dataset)`` of ``root``, column-wise.

    Same result (same dtypes, shapes and label decoding; the last row of a duplicated id wins),
    but each list column is converted to NumPy once and sliced per row, instead of building
    Python lists row by row.  Typed classification labels go through nirs4all's own codec.
    ``tests/test_merge_nirs4all_api.py`` checks it against ``load_batch`` value for value.
    """
    import contextlib

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..arrays_readonly import parquet_path_for
    from ..nirs4all_api import decode_target_array

    path = parquet_path_for(root, dataset)
    if not ids or not path.exists():
        return {}
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any decode failure means the file is unusable
        raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc
    table = table.filter(pc.is_in(table.column("prediction_id"), value_set=pa.array(ids, pa.string())))
    n = table.num_rows
    names = set(table.column_names)

    def lists(name: str, dtype: Any) -> list[Any]:
        """Per row: a NumPy view of the list (None for null)."""
        if name not in names:
            return [None] * n
        arr = table.column(name).combine_chunks()
        values = arr.values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        offsets = arr.offsets.to_numpy()
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return [values[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(n)]

    def plain(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in names else [None] * n

    pids = plain("prediction_id")
    task = plain("task_type")
    cols = {f: lists(f, np.float64) for f in ("y_true", "y_pred", "y_proba", "X", "spectra", "weights")}
    cols["sample_indices"] = lists("sample_indices", np.int32)
    other = {f: plain(f) for f in (
        "y_true_shape", "y_pred_shape", "y_proba_shape", "X_shape", "spectra_shape", "y_true_labels", "y_pred_labels",
        "sample_metadata", "result_metadata",
    )}

    def meta(raw: Any) -> Any:
        if raw is not None and isinstance(raw, str):
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, TypeError):
                return {}
        return {}

    out: dict[str, dict[str, Any]] = {}
    for i in range(n):
        arrays: dict[str, Any] = {}
        for target in ("y_true", "y_pred"):
            if other[f"{target}_labels"][i] is None:
                values, shape = cols[target][i], other[f"{target}_shape"][i]
                arrays[target] = None if values is None else values.reshape(shape) if shape is not None else values
            else:
                arrays[target] = decode_target_array({
                    f"{target}_labels": other[f"{target}_labels"][i], target: cols[target][i], "task_type": task[i],
                    f"{target}_shape": other[f"{target}_shape"][i],
                }, target)
        for name, shape_name in (("y_proba", "y_proba_shape"), ("X", "X_shape"), ("spectra", "spectra_shape")):
            value, shape = cols[name][i], other[shape_name][i]
            if value is not None and shape is not None and len(shape) > 1:
                with contextlib.suppress(ValueError):
                    value = value.reshape(shape)
            arrays[name] = value
        arrays["weights"] = cols["weights"][i]
        arrays["sample_indices"] = cols["sample_indices"][i]
        arrays["sample_metadata"] = meta(other["sample_metadata"][i])
        arrays["result_metadata"] = meta(other["result_metadata"][i])
        out[pids[i]] = arrays
    return out


def _records(info: _SourceInfo, dataset: str, adds: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Array records for ``save_batch``, decoded by nirs4all's own (read-only) ArrayStore."""
    ids = [row["prediction_id"] for row, _ in adds]
    loaded = _load_arrays(info.path, dataset, ids)
    missing = [i for i in ids if i not in loaded]
    if missing:
        raise PlanChangedError(
            f"Source {info.path} changed since the preview: {len(missing)} prediction(s) of {dataset!r} "
            f"lost their arrays (e.g. {missing[0]}).",
        )
    out = []
    for row, new_id in adds:
        arrays = loaded[row["prediction_id"]]
        out.append({
            "prediction_id": new_id, "dataset_name": dataset, "model_name": row.get("model_name", ""),
            "fold_id": row.get("fold_id", ""), "partition": row.get("partition", ""), "metric": row.get("metric", ""),
            "val_score": row.get("val_score"), "task_type": row.get("task_type", ""),
            **{k: arrays.get(k) for k in _ARRAY_FIELDS},
        })
    return out


_ARRAY_FIELDS = (
    "y_true", "y_pred", "y_proba", "X", "spectra", "sample_indices", "weights", "sample_metadata", "result_metadata",
)

