"""Health of a SQLite + Parquet workspace without a Python object per prediction.

At 1M predictions, sets of Python strings (one for the metadata ids, one for
the array ids, their unions and differences) cost more than the whole check
nirs4all does (issue 14: 693 MB against 613 MB).  Here every id stays in Arrow
string arrays and the comparisons are hash lookups in Arrow (``pc.is_in``):

- metadata: the ids come from the primary-key index (``SELECT prediction_id``
  is a covering-index scan: it never reads the 1 GB table), the per-dataset
  counts from the ``dataset_name`` index; a dataset is only needed for the
  (normally few) metadata orphans, looked up by primary key;
- arrays: each file's ``prediction_id`` and ``dataset_name`` columns, one file
  at a time, reduced to unique ids per dataset (nirs4all appends on
  ``save_batch`` and deduplicates at compaction: ids count, not rows).

The result is exactly what the set-based path in ``health.py`` computes
(``tests/test_health.py`` compares both on damaged workspaces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .arrays_readonly import parquet_path_for
from .errors import CorruptStoreError
from .readonly_sqlite import open_readonly, table_names

Report = Callable[[float, str], None]

#: Ids fetched from SQLite per round trip (bounds the transient Python strings).
FETCH = 100_000
#: Parameters per ``IN (...)`` lookup (SQLite's default limit is 999 before 3.32).
LOOKUP = 900
#: Share of the progress bar for reading the metadata ids; the files get the rest up to 0.95.
META_SHARE = 0.35


@dataclass
class ArrowHealth:
    """The pieces of a health report that depend on the data (see ``health.compute_health``)."""

    datasets: list[dict[str, Any]] = field(default_factory=list)
    total_predictions: int = 0
    orphan_metadata_count: int = 0
    orphan_array_count: int = 0
    orphan_metadata_ids: tuple[str, ...] = ()
    orphan_array_ids: tuple[str, ...] = ()
    corrupt_files: list[str] = field(default_factory=list)
    parquet_total_bytes: int = 0


#: Separator of ids inside one ``group_concat`` (ids are checked not to contain it).
SEP = "\n"


def empty_strings() -> Any:
    """An empty Arrow string array (``pa.array([])`` would import pandas on first use)."""
    import struct

    import pyarrow as pa

    return pa.StringArray.from_buffers(0, pa.py_buffer(struct.pack("<i", 0)), pa.py_buffer(b""))


def strings_from_joined(joined: str, expected: int) -> Any:
    """An Arrow string array from ``SEP``-joined text, without a Python object per value.

    ``pa.array(list_of_str)`` would make one Python string per id and, on the
    first call in a process, import pandas (seconds in a fresh CLI process).
    ``expected`` guards against a separator inside a value.
    """
    import struct

    import pyarrow as pa
    import pyarrow.compute as pc

    if expected == 0:
        return empty_strings()
    data = joined.encode("utf-8")
    whole = pa.StringArray.from_buffers(1, pa.py_buffer(struct.pack("<ii", 0, len(data))), pa.py_buffer(data))
    parts = pc.list_flatten(pc.split_pattern(whole, SEP))
    if len(parts) != expected:
        raise ValueError(f"a value contains the separator ({len(parts)} parts, {expected} expected)")
    return parts


def _metadata(db: Path, report: Report) -> tuple[Any, dict[str, int]]:
    """(every prediction id as one Arrow string array, {dataset: count}).

    Keyset pages over the primary-key index (``prediction_id > last ORDER BY
    prediction_id``): a covering-index read that never touches the table's
    rows, ``FETCH`` ids a page, joined by SQLite itself so Python sees one
    string per page; progress after every page.
    """
    import pyarrow as pa

    page_sql = (
        "SELECT group_concat(prediction_id, char(10)), max(prediction_id), count(*) FROM "
        "(SELECT prediction_id FROM predictions WHERE prediction_id > ? ORDER BY prediction_id LIMIT ?)"
    )
    with open_readonly(db) as conn:
        if "predictions" not in table_names(conn):
            raise CorruptStoreError(f"{db} has no predictions table.")
        rows = conn.execute("SELECT dataset_name, COUNT(*) FROM predictions GROUP BY dataset_name").fetchall()
        counts = {str(ds or ""): int(n) for ds, n in rows}
        total = sum(counts.values())
        chunks = []
        done = 0
        last = ""
        report(0.0, f"Reading prediction ids (0/{total:,})")
        while True:
            joined, last_id, n = conn.execute(page_sql, [last, FETCH]).fetchone()
            if not n:
                break
            try:
                chunks.append(strings_from_joined(joined, n))
            except ValueError:  # an id with a newline: page it the slow way
                page = conn.execute(
                    "SELECT prediction_id FROM predictions WHERE prediction_id > ? ORDER BY prediction_id LIMIT ?",
                    [last, FETCH],
                ).fetchall()
                chunks.append(pa.array([r[0] for r in page], pa.string()))
            last = last_id
            done += n
            report(META_SHARE * done / max(total, 1), f"Reading prediction ids ({done:,}/{total:,})")
    ids = pa.concat_arrays(chunks) if chunks else empty_strings()
    return ids, counts


def _metadata_datasets(db: Path, ids: list[str]) -> dict[str, int]:
    """{dataset: how many of ``ids``} by primary-key lookups (used for orphans only)."""
    out: dict[str, int] = {}
    with open_readonly(db) as conn:
        for start in range(0, len(ids), LOOKUP):
            part = ids[start : start + LOOKUP]
            marks = ",".join("?" * len(part))
            sql = f"SELECT dataset_name, COUNT(*) FROM predictions WHERE prediction_id IN ({marks}) GROUP BY 1"
            for ds, n in conn.execute(sql, part):
                out[str(ds or "")] = out.get(str(ds or ""), 0) + int(n)
    return out


def _scan_files(root: Path, deep: bool, report: Report, result: ArrowHealth) -> tuple[dict[str, Any], dict[str, Path]]:
    """{dataset: unique array ids (Arrow)} and {dataset: first file holding it}."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    arrays = root / layout.ARRAYS_DIR
    files = sorted(arrays.glob("*.parquet")) if arrays.is_dir() else []
    chunks: dict[str, list[Any]] = {}
    first_file: dict[str, Path] = {}
    for index, path in enumerate(files):
        report(
            META_SHARE + (0.95 - META_SHARE) * index / len(files), f"Checking {path.name} ({index + 1}/{len(files)})"
        )
        try:
            result.parquet_total_bytes += path.stat().st_size
            pf = pq.ParquetFile(path)
            table = pf.read(columns=["prediction_id", "dataset_name"])
            if deep:
                for _batch in pf.iter_batches(batch_size=2048):
                    pass
        except Exception:  # noqa: BLE001 - any read failure means the file is unusable
            result.corrupt_files.append(str(path))
            continue
        ids = table.column("prediction_id").combine_chunks().cast(pa.string())
        names = table.column("dataset_name").combine_chunks().cast(pa.string())
        if names.null_count:  # a Python fill value costs a pandas import: only when needed
            names = pc.fill_null(names, path.stem)
        del table
        distinct = pc.unique(names).to_pylist()
        for name in distinct:
            part = ids if len(distinct) == 1 else ids.filter(pc.equal(names, name))
            chunks.setdefault(name, []).append(pc.unique(part))
            first_file.setdefault(name, path)
    # Each part is unique already; only a dataset spread over several files needs another pass.
    per_dataset = {
        name: parts[0] if len(parts) == 1 else pc.unique(pa.concat_arrays(parts)) for name, parts in chunks.items()
    }
    return per_dataset, first_file


def _sorted_sample(values: Any, n: int) -> tuple[str, ...]:
    """The ``n`` smallest ids (reports list a stable sample; counts are exact)."""
    import pyarrow.compute as pc

    if len(values) == 0:
        return ()
    return tuple(str(v) for v in values.take(pc.array_sort_indices(values)[:n]).to_pylist())


def sqlite_parquet_health(root: Path, tombstones: set[str], *, deep: bool, report: Report) -> ArrowHealth:
    """Counts and orphans of a workspace whose metadata is ``store.sqlite`` and arrays are ``arrays/*.parquet``."""
    import pyarrow as pa

    db = root / layout.STORE_SQLITE
    result = ArrowHealth()
    report(0.0, "Reading metadata")
    meta_ids, counts = _metadata(db, report)
    result.total_predictions = len(meta_ids)
    per_dataset, first_file = _scan_files(root, deep, report, result)
    report(0.95, "Comparing metadata and arrays")

    try:
        tomb = strings_from_joined(SEP.join(sorted(tombstones)), len(tombstones))
    except ValueError:
        tomb = pa.array(sorted(tombstones), pa.string())
    names = sorted(set(counts) | set(per_dataset))
    empty = empty_strings()
    all_arrays = pa.concat_arrays([per_dataset.get(n, empty) for n in names]) if names else empty
    lengths = {n: len(per_dataset.get(n, empty)) for n in names}
    del per_dataset  # every id lives in one copy at a time: Arrow until it is handed to polars
    # Hash lookups in polars (about 1.5x faster than pc.is_in on 1M strings here); Arrow buffers
    # convert without a Python object per id.
    import polars as pl

    arrays_s = pl.Series("id", all_arrays)
    del all_arrays
    meta_s = pl.Series("id", meta_ids)
    del meta_ids
    in_meta_s = arrays_s.is_in(meta_s.implode())
    in_tomb_s = (
        arrays_s.is_in(pl.Series("id", tomb).implode()) if len(tomb) else pl.repeat(False, len(arrays_s), eager=True)
    )
    orphan_s = ~(in_meta_s | in_tomb_s)
    del in_meta_s
    in_tomb = in_tomb_s.to_arrow()
    orphan_mask = orphan_s.to_arrow()

    orphan_meta = meta_s.filter(~meta_s.is_in(arrays_s.implode())).to_arrow()
    del meta_s
    result.orphan_metadata_count = len(orphan_meta)
    result.orphan_metadata_ids = _sorted_sample(orphan_meta, _ID_SAMPLE)
    orphan_meta_by_ds = _metadata_datasets(db, orphan_meta.to_pylist()) if len(orphan_meta) else {}

    orphan_arrays = arrays_s.filter(orphan_s).unique().to_arrow()
    result.orphan_array_count = len(orphan_arrays)
    result.orphan_array_ids = _sorted_sample(orphan_arrays, _ID_SAMPLE)

    offset = 0
    for name in names:
        n = lengths[name]
        window = slice(offset, offset + n)
        offset += n
        path = first_file.get(name)
        if path is None:
            candidate = parquet_path_for(root, name)
            path = candidate if candidate.exists() else None
        result.datasets.append(
            {
                "name": name,
                "prediction_count": counts.get(name, 0),
                "parquet_size_bytes": path.stat().st_size if path is not None and path.exists() else 0,
                "pending_tombstones": _count_true(in_tomb[window]),
                "array_rows": n,
                "orphan_metadata_count": orphan_meta_by_ds.get(name, 0),
                "orphan_array_count": _count_true(orphan_mask[window]),
                "parquet_file": str(path) if path is not None else None,
            }
        )
    return result


def _count_true(mask: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(mask).as_py() or 0)


#: Same sample size as the report's (``health.ID_SAMPLE``); kept here to avoid an import cycle.
_ID_SAMPLE = 50
