"""Which rows of a dataset an export takes: live, not tombstoned, last copy, matching the filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    CorruptStoreError,
)

if TYPE_CHECKING:
    import sqlite3

    import numpy as np
    import pyarrow as pa



#: Read-ahead buffer per column of the source (pre_buffer off): small, a file has ~20 columns.
READ_BUFFER_BYTES = 64 << 10


# ---------------------------------------------------------------- selection


@dataclass
class _DatasetPlan:
    name: str
    source: Path | None
    file_name: str
    keep: np.ndarray | None = None
    source_rows: int = 0
    rows: int = 0
    tombstoned: int = 0
    orphans: int = 0
    duplicates: int = 0
    filtered: int = 0
    other_dataset: int = 0
    source_bytes: int = 0
    decoded_bytes: int = 0
    ids: pa.Array | None = None
    """The source's ``prediction_id`` column (Arrow), read while planning."""
    schema: pa.Schema | None = None
    """The source's Arrow schema (from its footer, read once while planning)."""
    row_group_rows: list[int] | None = None

    @property
    def needs_filtering(self) -> bool:
        return self.rows != self.source_rows


def _sqlite_ids(conn: sqlite3.Connection, name: str, partition: str | None, model_name: str | None,
                fold_id: str | None) -> tuple[list[str], list[str] | None]:
    """(every live id of ``name``, the live ids matching the filters or None when there are no filters)."""
    live = [r[0] for r in conn.execute("SELECT prediction_id FROM predictions WHERE dataset_name = ?", (name,))]
    clauses, params = ["dataset_name = ?"], [name]
    for column, value in (("partition", partition), ("model_name", model_name), ("fold_id", fold_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if len(clauses) == 1:
        return live, None
    sql = f"SELECT prediction_id FROM predictions WHERE {' AND '.join(clauses)}"
    return live, [r[0] for r in conn.execute(sql, params)]


def _open_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unreadable
        raise CorruptStoreError(f"Array file {path} cannot be read ({exc}).") from exc


def _is_in(ids: pa.Array, values: Sequence[str] | set[str] | pa.Array) -> np.ndarray:
    """``ids[i] in values`` as a numpy bool array (nulls are never in)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.zeros(len(ids), dtype=bool)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        value_set = values if values.type == ids.type else values.cast(ids.type)
    else:
        value_set = pa.array(list(values), type=ids.type)
    return _to_bools(pc.is_in(ids, value_set=value_set))


def _to_bools(values: pa.BooleanArray) -> np.ndarray:
    """Arrow booleans as numpy (nulls as False), unpacking the bits ourselves: pyarrow's
    ``to_numpy(zero_copy_only=False)`` imports its pandas layer on first use (over 1 ms)."""
    import numpy as np

    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)

    def unpack(buffer: pa.Buffer) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
        return bits[values.offset:values.offset + n].astype(bool)

    validity, data = values.buffers()
    out = unpack(data)
    if values.null_count and validity is not None:
        out &= unpack(validity)
    return out


def _last_copies(ids: pa.Array) -> np.ndarray:
    """True for the last row of each id (nirs4all's "keep last" rule); nulls count as one id."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(ids)
    encoded = pc.dictionary_encode(ids)
    if len(encoded.dictionary) == n and ids.null_count == 0:
        return np.ones(n, dtype=bool)  # no duplicates: the common case, no sort
    codes = _codes(encoded)
    _, first_from_end = np.unique(codes[::-1], return_index=True)
    last = np.zeros(n, dtype=bool)
    last[n - 1 - first_from_end] = True
    return last


def _equals(values: pa.Array, value: str) -> np.ndarray:
    """``values[i] == value`` as a numpy bool array (nulls are not equal); one distinct value per dataset file."""
    import numpy as np
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    hits = np.array([v == value for v in encoded.dictionary.to_pylist()] + [False], dtype=bool)
    return hits[_codes(encoded)]


def _codes(encoded: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as numpy, nulls as one more code (``len(dictionary)``)."""
    import pyarrow.compute as pc

    indices = encoded.indices
    if indices.null_count:  # pc.fill_null's first call costs ~1 ms: only when needed
        indices = pc.fill_null(indices, len(encoded.dictionary))
    return indices.to_numpy()


def _plan_dataset(plan: _DatasetPlan, live: Sequence[str] | pa.Array, selected: Sequence[str] | pa.Array | None,
                  tombstones: set[str]) -> None:
    """Fill ``plan.keep``: which rows of the source file are exported (reads two columns, vectorized)."""

    if plan.source is None:
        return
    pf = _open_parquet(plan.source)
    try:
        table = pf.read(columns=["prediction_id", "dataset_name"], use_threads=False)
    except Exception as exc:  # noqa: BLE001
        raise CorruptStoreError(f"Array file {plan.source} cannot be read ({exc}).") from exc
    md = pf.metadata
    plan.schema = pf.schema_arrow
    plan.row_group_rows = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
    pf.close()  # a zip of many datasets must not hold every file open
    plan.source_bytes = plan.source.stat().st_size
    plan.decoded_bytes = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    ids = table.column("prediction_id").combine_chunks()
    names = table.column("dataset_name").combine_chunks()
    n = len(ids)
    last = _last_copies(ids)
    ours = last & _equals(names, plan.name)
    tombstoned = ours & _is_in(ids, tombstones)
    rest = ours & ~tombstoned
    in_live = _is_in(ids, live)
    keep = rest & in_live
    plan.duplicates = int(n - last.sum())
    plan.other_dataset = int(last.sum() - ours.sum())
    plan.tombstoned = int(tombstoned.sum())
    plan.orphans = int(rest.sum() - keep.sum())
    if selected is not None:
        chosen = keep & _is_in(ids, selected)
        plan.filtered = int(keep.sum() - chosen.sum())
        keep = chosen
    plan.keep = keep
    plan.ids = ids
    plan.source_rows = n
    plan.rows = int(keep.sum())


